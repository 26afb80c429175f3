"""A 50 MB line costs the readers no more memory than the line limit (1 MiB by default): it is read past in
chunks, reported as `file:line` (or counted under skip), and the lines around it are read as usual."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from tfpipe.config.schemas import MAX_LINE_BYTES, ReaderConfig
from tfpipe.text.readers import DataError, ErrorLog, read_records

MB = 1 << 20
LINE_MB = 50
TSV = {"text_column": "text", "label_column": "label"}

# format → (file name, reader options, task, bytes before the long line, its start, its end, bytes after)
FORMATS = {
    "tsv": ("big.tsv", TSV, "classification", b"text\tlabel\nok\t0\n", b"", b"\t1\n", b"fine\t1\n"),
    "csv": ("big.csv", TSV, "classification", b"text,label\nok,0\n", b"", b",1\n", b"fine,1\n"),
    "jsonl": ("big.jsonl", {}, "classification", b'{"text": "ok", "label": 0}\n', b'{"text": "', b'", "label": 1}\n',
              b'{"text": "fine", "label": 1}\n'),
    "conll": ("big.conll", {}, "token-classification", b"ok O\n\n", b"", b" O\n", b"\nfine O\n"),
    "text": ("big.txt", {}, "classification", b"ok\n", b"", b"\n", b"fine\n"),
}


def write_big(path: Path, before: bytes, start: bytes, end: bytes, after: bytes, fill: bytes = b"a") -> Path:
    """The file, written a megabyte at a time (the test itself never holds the line)."""
    chunk = fill * (MB // len(fill))
    with path.open("wb") as out:
        out.write(before + start)
        for _ in range(LINE_MB):
            out.write(chunk)
        out.write(end + after)
    return path


@pytest.fixture(scope="module", params=sorted(FORMATS))
def big(request, tmp_path_factory):
    name, options, task, before, start, end, after = FORMATS[request.param]
    path = write_big(tmp_path_factory.mktemp(request.param) / name, before, start, end, after)
    # the long line's number, and its length without the line feed
    return path, options, task, before.count(b"\n") + 1, len(start) + LINE_MB * MB + len(end) - 1


def test_a_50mb_line_is_counted_and_read_past_in_bounded_memory(big):
    path, options, task, line, size = big
    log = ErrorLog("skip")
    tracemalloc.start()
    try:
        records = list(read_records(path, ReaderConfig(**options, on_error="skip"), task, log=log))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MB, f"peak Python allocation {peak / MB:.1f} MiB for a {LINE_MB} MiB line"
    assert len(records) == 2
    assert dict(log.skipped) == {"line too long": 1}
    (error,) = log.errors
    assert str(error) == (f"{path}:{line}: line of {size} bytes is longer than the limit of {MAX_LINE_BYTES} "
                          "(--max-line-bytes)")


def test_a_50mb_line_under_raise_names_file_and_line(big):
    path, options, task, line, _ = big
    with pytest.raises(DataError, match=r"line of \d+ bytes is longer than the limit") as info:
        list(read_records(path, ReaderConfig(**options), task))
    assert (info.value.path, info.value.line, info.value.kind) == (str(path), line, "line too long")


def test_peak_rss_of_a_fresh_process_grows_far_less_than_the_line(big):
    path, options, task, _, _ = big
    script = (
        "import json, resource, sys\n"
        "from tfpipe.config.schemas import ReaderConfig\n"
        "from tfpipe.text.readers import ErrorLog, read_records\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "log = ErrorLog('skip')\n"
        "n = len(list(read_records(sys.argv[1], ReaderConfig(**json.loads(sys.argv[2]), on_error='skip'), "
        "sys.argv[3], log=log)))\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(json.dumps({'records': n, 'skipped': dict(log.skipped), 'growth_kib': after - before}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(path), json.dumps(options), task], check=True,
                          capture_output=True, text=True, timeout=120)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["records"] == 2 and result["skipped"] == {"line too long": 1}
    assert result["growth_kib"] * 1024 < 8 * MB, result  # the line is 50 MiB; the limit 1 MiB


def test_an_unbalanced_csv_quote_over_many_short_lines_is_bounded_too(tmp_path):
    # Each line is short, but the quoted record they would form is 50 MB: the record, not the line, is bounded.
    path = write_big(tmp_path / "quote.csv", b"text,label\nok,0\n", b'"', b"\n", b"fine,1\n", fill=b"word word\n")
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as info:
            list(read_records(path, ReaderConfig(**TSV), "classification"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (info.value.line, info.value.kind) == (3, "csv")
    assert f"it spans more than {MAX_LINE_BYTES} bytes (--max-line-bytes)" in info.value.reason
    assert peak < 8 * MB, f"peak Python allocation {peak / MB:.1f} MiB"


def test_inspect_data_on_a_50mb_line_reports_it_in_bounded_memory(tmp_path):
    from tfpipe.text.inspect_data import inspect_dataset

    _, options, task, before, start, end, after = FORMATS["tsv"]
    path = write_big(tmp_path / "big.tsv", before, start, end, after)
    tracemalloc.start()
    try:
        report = inspect_dataset(path, task, ReaderConfig(**options))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * MB, f"peak Python allocation {peak / MB:.1f} MiB"
    assert report["records"] == 2 and report["errors_by_kind"] == {"line too long": 1}
    assert report["errors"][0].startswith(f"{path}:3: line of ")


def test_split_streams_and_stops_at_a_50mb_line_in_bounded_memory(tmp_path):
    from tfpipe.text.split import split_file

    _, _, _, before, start, end, after = FORMATS["tsv"]
    path = write_big(tmp_path / "big.tsv", before, start, end, after)
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="is longer than the limit of 1048576") as info:
            split_file(path, tmp_path / "out", (0.5, 0.5))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MB, f"peak Python allocation {peak / MB:.1f} MiB"
    assert (info.value.path, info.value.line) == (str(path), 3)
    assert not (tmp_path / "out" / "train.tsv").exists()
