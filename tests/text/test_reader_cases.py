"""One table of malformed (and borderline) files, each read twice through `read_records`: under
`on_error="raise"` it must fail with the expected `file:line: reason`, under `"skip"` it must keep exactly the
listed records and count exactly the listed skips by kind — or, for whole-file problems, fail the same way.

Every row here was read wrongly before issue 16 (accepted, dropped without a count, or reported with a
misleading reason); `tests/text/test_malformed_inputs.py` holds the cases that were already right.
"""

from __future__ import annotations

import gzip
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pytest

from tfpipe.config.schemas import ReaderConfig
from tfpipe.text.readers import DataError, ErrorLog, read_records

TC = "token-classification"
TSV = {"text_column": "text", "label_column": "label"}
DIRECTORY = b"<a directory>"  # `data` for a directory where a file is expected


@dataclass
class Row:
    filename: str
    data: bytes
    error: str  # under "raise": the expected message, `{f}` standing for the file; "" for a valid file
    kept: Optional[list[int]] = None  # under "skip": the lines of the records that come through; None: fatal
    skipped: dict = field(default_factory=dict)  # under "skip": counts by kind
    options: dict = field(default_factory=dict)  # ReaderConfig fields
    task: str = "classification"


def row(name: str, filename: str, data: bytes, error: str, kept: Optional[list[int]] = None,
        skipped: Optional[dict] = None, task: str = "classification", **options):
    return pytest.param(Row(filename, data, error, kept, skipped or {}, options, task), id=name)


LONG_CSV_QUOTE = b'text,label\n"unclosed,1\n' + b"ok,0\n" * 20
UTF16 = "hello\nworld\n".encode("utf-16-le")

CASES = [
    # --- seen in the issue ------------------------------------------------------------------------------------
    row("tsv-bom-mid-file-header-becomes-a-class", "a.tsv", b"text\tlabel\na\t0\nb\t1\n\xef\xbb\xbftext\tlabel\nc\t1\n",
        "{f}:4: UTF-8 byte-order mark at byte 0 of the line, inside the file (files concatenated?)",
        [2, 3, 5], {"byte-order mark": 1}, **TSV),
    row("tsv-bom-mid-file-label-first", "a.tsv", b"label\ttext\n0\ta\n\xef\xbb\xbf1\tb\n1\tc\n",
        "{f}:3: UTF-8 byte-order mark at byte 0", [2, 4], {"byte-order mark": 1}, **TSV),
    row("tsv-extra-field", "a.tsv", b"text\tlabel\na\t0\nb\t1\textra\nc\t0\n",
        "{f}:3: expected 2 fields (as in the header), got 3: extra field(s) ['extra']", [2, 4], {"field count": 1},
        **TSV),
    row("csv-unbalanced-quote-swallows-the-rows-after-it", "a.csv", b'text,label\n"never closed,1\nok,0\nfine,1\n',
        "{f}:2: malformed CSV: unexpected end of data", [3, 4], {"csv": 1}, **TSV),
    row("tsv-duplicate-header-column", "a.tsv", b"text\tlabel\tlabel\na\t0\t1\n",
        "{f}:1: duplicate column name 'label' in the header (columns 2 and 3)", **TSV),
    row("tsv-nul-byte", "a.tsv", b"text\tlabel\na\x00b\t0\nc\t1\n", "{f}:2: NUL byte at byte 1 of the line",
        [3], {"NUL byte": 1}, **TSV),
    row("tsv-header-only", "a.tsv", b"text\tlabel\n", "{f}:1: header only: no data rows", **TSV),
    row("tsv-every-row-skipped", "a.tsv", b"text\tlabel\n\t0\n \t1\n", "{f}:2: empty text", [],
        {"empty text": 2}, **TSV),
    row("jsonl-null-label", "a.jsonl", b'{"text": "a", "label": 1}\n{"text": "b", "label": null}\n',
        "{f}:2: key 'label' is null", [1], {"null value": 1}),
    row("tsv-long-line", "a.tsv", b"text\tlabel\nshort\t0\n" + b"x" * 40 + b"\t1\nok\t1\n",
        "{f}:3: line of 42 bytes is longer than the limit of 16 (--max-line-bytes)", [2, 4], {"line too long": 1},
        max_line_bytes=16, **TSV),
    # --- byte-order marks, NUL, line ends, encodings ----------------------------------------------------------
    row("jsonl-bom-mid-file", "a.jsonl", b'{"text": "a", "label": 0}\n\xef\xbb\xbf{"text": "b", "label": 1}\n',
        "{f}:2: UTF-8 byte-order mark at byte 0", [1], {"byte-order mark": 1}),
    row("conll-bom-mid-file", "a.conll", b"John B-PER\n\n\xef\xbb\xbfMary B-PER\n\nok O\n",
        "{f}:3: UTF-8 byte-order mark at byte 0", [1, 5], {"byte-order mark": 1}, TC),
    row("csv-nul-in-quoted-field", "a.csv", b'text,label\n"a\x00b",0\nc,1\n', "{f}:2: NUL byte at byte 2",
        [3], {"NUL byte": 1}, **TSV),
    row("jsonl-nul-escape", "a.jsonl", b'{"text": "a", "label": 0}\n{"text": "a\\u0000b", "label": 1}\n',
        "{f}:2: key 'text' has a NUL character at position 1", [1], {"encoding": 1}),
    row("spans-nul-escape", "a.jsonl", b'{"text": "ok", "entities": []}\n{"text": "a\\u0000b", "entities": []}\n',
        "{f}:2: key 'text' has a NUL character at position 1", [1], {"encoding": 1}, TC, format="spans"),
    row("jsonl-unpaired-surrogate", "a.jsonl", b'{"text": "a", "label": 0}\n{"text": "x\\ud800y", "label": 1}\n',
        "{f}:2: key 'text' has an unpaired surrogate '\\ud800' at position 1 (not valid Unicode)", [1],
        {"encoding": 1}),
    row("txt-utf16-without-bom", "a.txt", UTF16, "{f}:1: NUL byte at byte 1 of the line (a binary or UTF-16 file?)",
        [], {"NUL byte": 3}),
    row("tsv-utf16-with-bom", "a.tsv", b"\xff\xfe" + "text\tlabel\na\t0\n".encode("utf-16-le"),
        "{f}: the file is UTF-16 (little-endian byte-order mark): re-encode it as UTF-8", **TSV),
    row("tsv-stray-carriage-return", "a.tsv", b"text\tlabel\na\rb\t0\nc\t1\n",
        "{f}:2: carriage return (\\r) at byte 1 of the line, not before its line feed", [3], {"line ends": 1}, **TSV),
    row("tsv-cr-only-line-ends", "a.tsv", b"text\tlabel\ra\t0\rb\t1\r", "{f}:1: carriage return (\\r) at byte 10",
        **TSV),
    row("txt-cr-only-line-ends", "a.txt", b"first line\rsecond line\r", "{f}:1: carriage return (\\r) at byte 10",
        [], {"line ends": 1}),
    # --- fields and headers -----------------------------------------------------------------------------------
    row("tsv-trailing-tab", "a.tsv", b"text\tlabel\na\t0\t\nb\t1\n",
        "{f}:2: expected 2 fields (as in the header), got 3: extra field(s) ['']", [3], {"field count": 1}, **TSV),
    row("tsv-fewer-fields-than-the-header", "a.tsv", b"text\tlabel\tid\na\t0\t1\nb\t1\n",
        "{f}:3: expected 3 fields (as in the header), got 2", [2], {"field count": 1}, **TSV),
    row("tsv-no-header-row-wider-than-the-first", "a.tsv", b"a\t0\nb\t1\tx\nc\t0\n",
        "{f}:2: expected 2 fields (as on line 1), got 3", [1, 3], {"field count": 1},
        text_column="0", label_column="1", no_header=True),
    row("tsv-repeated-header", "a.tsv", b"text\tlabel\na\t0\ntext\tlabel\nb\t1\n",
        "{f}:3: the header line again (files concatenated?)", [2, 4], {"repeated header": 1}, **TSV),
    row("csv-extra-field", "a.csv", b'text,label\na,0\nb,1,x\n"c",0\n',
        "{f}:3: expected 2 fields (as in the header), got 3: extra field(s) ['x']", [2, 4], {"field count": 1},
        **TSV),
    row("csv-duplicate-header-column", "a.csv", b"text,text,label\na,b,0\n",
        "{f}:1: duplicate column name 'text' in the header (columns 1 and 2)", **TSV),
    row("csv-header-only-and-blank-lines", "a.csv", b"text,label\n\n\n", "{f}:1: header only: no data rows", **TSV),
    # --- CSV quoting ------------------------------------------------------------------------------------------
    row("csv-unbalanced-quote-closed-rows-later", "a.csv", b'text,label\n"bad,1\nok,0\n"x"y,1\nlast,0\n',
        "{f}:2: malformed CSV: ',' expected after '\"'", [3, 5], {"csv": 2}, **TSV),
    row("csv-unbalanced-quote-longer-than-the-limit", "a.csv", LONG_CSV_QUOTE,
        "{f}:2: malformed CSV: it spans more than 40 bytes (--max-line-bytes) by line 8: an unbalanced quote?",
        list(range(3, 23)), {"csv": 1}, max_line_bytes=40, **TSV),
    row("csv-quote-runs-into-invalid-utf8", "a.csv", b'text,label\n"open,1\nbad \xff,0\nok,1\n',
        "{f}:3: invalid UTF-8 at byte 4 of the line", [4], {"encoding": 1, "csv": 1}, **TSV),
    # --- JSONL ------------------------------------------------------------------------------------------------
    row("jsonl-duplicate-key", "a.jsonl", b'{"text": "a", "label": 0}\n{"text": "b", "label": 0, "label": 1}\n',
        "{f}:2: duplicate key 'label': which value is meant cannot be told", [1], {"json": 1}),
    row("jsonl-null-text-pair-asked-for", "a.jsonl",
        b'{"text": "a", "pair": "b", "label": 0}\n{"text": "a", "pair": null, "label": 1}\n',
        "{f}:2: key 'pair' is null", [1], {"null value": 1}, text_pair_column="pair"),
    row("jsonl-truncated-last-line", "a.jsonl", b'{"text": "a", "label": 0}\n{"text": "b", "lab',
        "{f}:2: invalid JSON: Unterminated string starting at column 15 (the line ends before the JSON does: "
        "truncated?)", [1], {"json": 1}),
    row("jsonl-long-line", "a.jsonl",
        b'{"text": "a", "label": 0}\n{"text": "' + b"y" * 100 + b'", "label": 1}\n{"text": "c", "label": 1}\n',
        "{f}:2: line of 124 bytes is longer than the limit of 32", [1, 3], {"line too long": 1}, max_line_bytes=32),
    # --- CoNLL ------------------------------------------------------------------------------------------------
    row("conll-word-with-a-space", "a.conll", b"John B-PER\nlives O\nin O\nNew York B-LOC\n\nok O\n",
        "{f}:4: expected 2 columns (as on line 1), got 3: 'New York B-LOC'", [6], {"field count": 1}, TC),
    row("conll-no-break-space-in-a-word", "a.conll", b"Paris B-LOC\n\nNew\xc2\xa0York B-LOC\n",
        "{f}:3: expected 2 columns (as on line 1), got 3", [1], {"field count": 1}, TC),
    row("conll-long-line", "a.conll", b"John B-PER\n" + b"x" * 30 + b" O\nruns O\n\nok O\n",
        "{f}:2: line of 32 bytes is longer than the limit of 16", [5], {"line too long": 1}, TC, max_line_bytes=16),
    row("conll-only-docstart", "a.conll", b"-DOCSTART- -X- O O\n\n", "{f}: no records in the file", task=TC),
    # --- plain text -------------------------------------------------------------------------------------------
    row("txt-long-line-crlf", "a.txt", b"short\r\n" + b"y" * 20 + b"\r\nok\r\n",
        "{f}:2: line of 20 bytes is longer than the limit of 8", [1, 3], {"line too long": 1}, max_line_bytes=8),
    row("txt-empty", "a.txt", b"", "{f}: no records in the file"),
    # --- whole files ------------------------------------------------------------------------------------------
    row("jsonl-empty", "a.jsonl", b"", "{f}: no records in the file"),
    row("jsonl-only-blank-lines", "a.jsonl", b"\n  \n\n", "{f}: no records in the file"),
    row("gzip-content-named-tsv", "a.tsv", gzip.compress(b"text\tlabel\na\t0\n", mtime=0),
        "{f}: the file is gzip-compressed: decompress it first (gunzip)", **TSV),
    row("gzip-extension", "a.tsv.gz", gzip.compress(b"text\tlabel\na\t0\n", mtime=0),
        "{f}: a compressed file (.gz): decompress it first", **TSV),
    row("zip-content-named-jsonl", "a.jsonl", b"PK\x03\x04\x14\x00\x00\x00data.jsonl",
        "{f}: the file is a zip archive: extract the data file first"),
    row("directory-given", "data.tsv", DIRECTORY, "{f}: is a directory, not a data file", **TSV),
    # --- borderline, valid --------------------------------------------------------------------------------------
    row("tsv-line-exactly-at-the-limit-with-crlf", "a.tsv", b"text\tlabel\r\nabcdefgh\t1\r\n", "", [2],
        max_line_bytes=10, **TSV),
]


def _write(tmp_path: Path, c: Row) -> Path:
    path = tmp_path / c.filename
    if c.data is DIRECTORY:
        path.mkdir()
    else:
        path.write_bytes(c.data)
    return path


def test_the_table_is_big_enough():
    assert len(CASES) >= 30
    assert len({p.id for p in CASES}) == len(CASES)


@pytest.mark.parametrize("c", CASES)
def test_raise(tmp_path, c: Row):
    path = _write(tmp_path, c)
    config = ReaderConfig(**c.options, on_error="raise")
    if not c.error:
        assert [r.line for r in read_records(path, config, c.task)] == c.kept
        return
    with pytest.raises(DataError) as info:
        list(read_records(path, config, c.task))
    assert c.error.format(f=path) in str(info.value)


@pytest.mark.parametrize("c", CASES)
def test_skip(tmp_path, c: Row):
    path = _write(tmp_path, c)
    config = ReaderConfig(**c.options, on_error="skip")
    log = ErrorLog.for_reader(config)
    if c.kept is None:  # a whole-file problem: no policy reads past it
        with pytest.raises(DataError) as info:
            list(read_records(path, config, c.task, log=log))
        where = c.error.format(f=path).split(": ")[0]
        assert str(info.value).startswith(where + ": "), str(info.value)
        return
    if not c.kept:  # every record skipped: each one counted, then the read fails (there is nothing to use)
        with pytest.raises(DataError, match="no valid records: all") as info:
            list(read_records(path, config, c.task, log=log))
        assert info.value.kind == "no records" and info.value.path == str(path)
    else:
        assert [r.line for r in read_records(path, config, c.task, log=log)] == c.kept
    assert log.skipped == Counter(c.skipped)
    assert log.kept == len(c.kept)
    if c.error:  # the first error counted is the one "raise" stops at
        assert str(log.errors[0]) == str(_raised(path, c)), log.errors
    assert log.summary()["skipped"] == dict(sorted(c.skipped.items()))


def _raised(path: Path, c: Row) -> DataError:
    with pytest.raises(DataError) as info:
        list(read_records(path, ReaderConfig(**c.options, on_error="raise"), c.task))
    return info.value
