"""tfpipe.text.split: deterministic train/validation/test files in the input's own format, bytes kept."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path

import pytest

from tfpipe.text.readers import DataError
from tfpipe.text.split import parse_ratios, split_file

THREE = (0.8, 0.1, 0.1)


def read_split(out: Path, suffix: str, names=("train", "validation", "test")) -> dict[str, bytes]:
    return {name: (out / f"{name}{suffix}").read_bytes() for name in names}


def data_lines(data: bytes, header: bytes = b"") -> list[bytes]:
    assert data.startswith(header)
    return data[len(header):].splitlines(keepends=True)


def blocks(data: bytes) -> list[bytes]:
    """Blank-line separated blocks, each with its line ends."""
    out, block = [], []
    for line in data.splitlines(keepends=True) + [b"\n"]:
        if line.strip():
            block.append(line)
        elif block:
            out.append(b"".join(block))
            block = []
    return out


def tsv_rows(n: int, labels=("pos", "neg"), eol: bytes = b"\n") -> list[bytes]:
    return [f"text number {i}\t{labels[i % len(labels)]}".encode() + eol for i in range(n)]


# --- parse_ratios -------------------------------------------------------------------------------------------


def test_parse_ratios_three_and_two_way():
    assert parse_ratios("0.8,0.1,0.1") == [0.8, 0.1, 0.1]
    assert parse_ratios("0.9,0.1") == [0.9, 0.1]
    assert parse_ratios(" 0.7 , 0.3 ") == [0.7, 0.3]
    assert parse_ratios([0.5, 0.25, 0.25]) == [0.5, 0.25, 0.25]
    assert parse_ratios("1,0") == [1.0, 0.0]


@pytest.mark.parametrize("text", ["0.8,0.1", "0.5,0.6", "0.9,0.2,-0.1", "0.5,0.25,0.25,0", "1", "0.4,0.3,0.2,0.1",
                                  "a,b", "0.8,x,0.1", "", "0.8;0.2"])
def test_bad_ratios_name_the_flag(text):
    with pytest.raises(ValueError) as info:
        parse_ratios(text)
    assert str(info.value).startswith(f"--ratios {text!r}:")


def test_nan_ratio_is_rejected():
    with pytest.raises(ValueError, match="--ratios"):
        parse_ratios("nan,0.5,0.5")


def test_split_file_rejects_bad_ratios_before_writing(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_bytes(b"text\tlabel\n" + b"".join(tsv_rows(5)))
    with pytest.raises(ValueError, match="--ratios"):
        split_file(path, tmp_path / "out", ratios="0.5,0.4")
    assert not (tmp_path / "out").exists()


# --- formats ------------------------------------------------------------------------------------------------


def test_tsv_header_repeated_and_row_bytes_kept_with_crlf_and_bom(tmp_path):
    header = b"\xef\xbb\xbftext\tlabel\r\n"
    rows = [f"caf\u00e9 \"quoted\" row {i}\t{i % 3}".encode() + b"\r\n" for i in range(40)]
    path = tmp_path / "data.tsv"
    path.write_bytes(header + b"".join(rows))
    counts = split_file(path, tmp_path / "out", THREE, seed=1)
    assert counts == {"train": 32, "validation": 4, "test": 4}
    outputs = read_split(tmp_path / "out", ".tsv")
    got = []
    for name, data in outputs.items():
        assert data.startswith(header)  # BOM and CRLF of the header kept, in every file
        lines = data_lines(data, header)
        assert len(lines) == counts[name]
        assert all(line.endswith(b"\r\n") for line in lines)
        # Within a split, rows keep the input order.
        assert lines == sorted(lines, key=rows.index)
        got.extend(lines)
    assert Counter(got) == Counter(rows)


def test_tsv_blank_lines_are_not_units(tmp_path):
    path = tmp_path / "d.tsv"
    rows = tsv_rows(10)
    path.write_bytes(b"text\tlabel\n" + b"".join(rows[:5]) + b"\n\n" + b"".join(rows[5:]))
    counts = split_file(path, tmp_path / "out", (0.5, 0.5))
    assert sum(counts.values()) == 10
    outputs = read_split(tmp_path / "out", ".tsv", ("train", "validation"))
    assert Counter(line for d in outputs.values() for line in data_lines(d, b"text\tlabel\n")) == Counter(rows)


def test_two_way_split_writes_train_and_validation_only(tmp_path):
    path = tmp_path / "reviews.tsv"
    path.write_bytes(b"text\tlabel\n" + b"".join(tsv_rows(20)))
    out = tmp_path / "out"
    counts = split_file(path, out, "0.9,0.1")
    assert counts == {"train": 18, "validation": 2}
    assert sorted(p.name for p in out.iterdir()) == ["train.tsv", "validation.tsv"]


def test_three_way_file_names_use_the_input_extension(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps({"text": f"t{i}", "label": i % 2}) + "\n" for i in range(10)))
    out = tmp_path / "nested" / "out"
    split_file(path, out, "0.8,0.1,0.1")
    assert sorted(p.name for p in out.iterdir()) == ["test.jsonl", "train.jsonl", "validation.jsonl"]


def test_csv_quoted_multiline_record_stays_whole(tmp_path):
    header = b"text,label\n"
    records = [b'"first line\nsecond line, with comma",pos\n', b'"he said ""hi""",neg\n', b"plain,pos\n"]
    records += [f"row {i},{'pos' if i % 2 else 'neg'}\n".encode() for i in range(17)]
    records.append(b'"crlf\r\ninside",neg\r\n')
    path = tmp_path / "d.csv"
    path.write_bytes(header + b"".join(records))
    counts = split_file(path, tmp_path / "out", THREE, seed=3)
    assert sum(counts.values()) == len(records) == 21
    got = []
    for name, data in read_split(tmp_path / "out", ".csv").items():
        assert data.startswith(header)
        parsed = list(csv.reader(io.StringIO(data[len(header):].decode(), newline="")))
        assert len(parsed) == counts[name]
        assert all(len(row) == 2 for row in parsed)
        got.extend(tuple(row) for row in parsed)
    expected = [tuple(row) for row in csv.reader(io.StringIO(b"".join(records).decode(), newline=""))]
    assert Counter(got) == Counter(expected)
    assert ("first line\nsecond line, with comma", "pos") in got
    assert ('he said "hi"', "neg") in got


def test_jsonl_lines_kept(tmp_path):
    lines = [json.dumps({"text": f"sentence {i}", "label": i % 2, "id": i}, ensure_ascii=False).encode() + b"\n"
             for i in range(30)]
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"".join(lines))
    counts = split_file(path, tmp_path / "out", THREE)
    assert counts == {"train": 24, "validation": 3, "test": 3}
    outputs = read_split(tmp_path / "out", ".jsonl")
    got = [line for data in outputs.values() for line in data_lines(data)]
    assert Counter(got) == Counter(lines)
    for data in outputs.values():
        for line in data.splitlines():
            json.loads(line)


def test_conll_sentences_whole_and_docstart_dropped(tmp_path):
    sentences = [f"Word{i} B-PER\nlives O\nin O\nCity{i} B-LOC\n.".encode() + b" O\n" for i in range(12)]
    body = b"-DOCSTART- -X- O O\n\n" + b"\n".join(sentences[:6]) + b"\n-DOCSTART- -X- O O\n\n" + \
        b"\n".join(sentences[6:])
    path = tmp_path / "ner.conll"
    path.write_bytes(body)
    counts = split_file(path, tmp_path / "out", THREE, seed=5)
    assert sum(counts.values()) == 12
    got = []
    for name, data in read_split(tmp_path / "out", ".conll").items():
        assert b"-DOCSTART-" not in data
        found = blocks(data)
        assert len(found) == counts[name]
        got.extend(found)
    assert Counter(got) == Counter(sentences)


def test_conll_txt_with_token_classification_task(tmp_path):
    sentences = [f"w{i} O\nx{i} B-LOC\n".encode() for i in range(10)]
    path = tmp_path / "ner.txt"
    path.write_bytes(b"\n".join(sentences))
    counts = split_file(path, tmp_path / "out", (0.8, 0.2), task="token-classification")
    assert counts == {"train": 8, "validation": 2}
    got = [b for d in read_split(tmp_path / "out", ".txt", ("train", "validation")).values() for b in blocks(d)]
    assert Counter(got) == Counter(sentences)


def test_plain_text_documents_kept_whole(tmp_path):
    docs = [f"Document {i} first line.\nDocument {i} second line.\n".encode() for i in range(10)]
    path = tmp_path / "corpus.txt"
    path.write_bytes(b"\n".join(docs))
    counts = split_file(path, tmp_path / "out", THREE, seed=2)
    assert counts == {"train": 8, "validation": 1, "test": 1}
    got = []
    for name, data in read_split(tmp_path / "out", ".txt").items():
        found = blocks(data)
        assert len(found) == counts[name]
        # Documents stay separated by exactly one blank line.
        assert data == b"\n".join(found)
        got.extend(found)
    assert Counter(got) == Counter(docs)


def test_explicit_format_overrides_the_extension(tmp_path):
    path = tmp_path / "rows.dat"
    path.write_bytes(b"text\tlabel\n" + b"".join(tsv_rows(10)))
    counts = split_file(path, tmp_path / "out", (0.5, 0.5), fmt="tsv")
    assert counts == {"train": 5, "validation": 5}
    assert (tmp_path / "out" / "train.dat").read_bytes().startswith(b"text\tlabel\n")


def test_no_header_tsv_has_no_header_in_outputs(tmp_path):
    rows = tsv_rows(10)
    path = tmp_path / "d.tsv"
    path.write_bytes(b"".join(rows))
    split_file(path, tmp_path / "out", (0.5, 0.5), no_header=True, stratify_column="1")
    outputs = read_split(tmp_path / "out", ".tsv", ("train", "validation"))
    assert Counter(line for d in outputs.values() for line in data_lines(d)) == Counter(rows)
    for data in outputs.values():
        labels = Counter(line.split(b"\t")[1].strip() for line in data_lines(data))
        assert set(labels) == {b"pos", b"neg"}
        assert all(count in (2, 3) for count in labels.values())  # 5 of each label, split half and half


def test_tsv_row_with_a_lone_carriage_return_stays_whole(tmp_path):
    rows = [f"old mac\rtext {i}\t{i % 2}\n".encode() for i in range(10)]
    path = tmp_path / "d.tsv"
    path.write_bytes(b"text\tlabel\n" + b"".join(rows))
    counts = split_file(path, tmp_path / "out", (0.5, 0.5))
    assert sum(counts.values()) == 10
    outputs = read_split(tmp_path / "out", ".tsv", ("train", "validation"))
    body = b"".join(data[len(b"text\tlabel\n"):] for data in outputs.values())
    assert Counter(body.split(b"\n")[:-1]) == Counter(row.rstrip(b"\n") for row in rows)


def test_csv_record_with_a_lone_carriage_return_is_kept(tmp_path):
    records = [f'"row {i}\rmore",{i % 2}\n'.encode() for i in range(6)]
    path = tmp_path / "d.csv"
    path.write_bytes(b"text,label\n" + b"".join(records))
    counts = split_file(path, tmp_path / "out", (0.5, 0.5))
    assert sum(counts.values()) == 6
    body = b"".join(d[len(b"text,label\n"):] for d in read_split(tmp_path / "out", ".csv", ("train", "validation"))
                    .values())
    assert sorted(body.split(b"\n")) == sorted((b"".join(records)).split(b"\n"))


# --- determinism and coverage -------------------------------------------------------------------------------


def make_tsv(tmp_path: Path, n: int = 60) -> Path:
    path = tmp_path / "d.tsv"
    path.write_bytes(b"text\tlabel\n" + b"".join(tsv_rows(n, ("a", "b", "c"))))
    return path


def test_same_seed_gives_identical_bytes(tmp_path):
    path = make_tsv(tmp_path)
    split_file(path, tmp_path / "one", THREE, seed=7)
    split_file(path, tmp_path / "two", THREE, seed=7)
    assert read_split(tmp_path / "one", ".tsv") == read_split(tmp_path / "two", ".tsv")


def test_different_seed_gives_a_different_assignment(tmp_path):
    path = make_tsv(tmp_path)
    first = split_file(path, tmp_path / "one", THREE, seed=7)
    second = split_file(path, tmp_path / "two", THREE, seed=8)
    assert first == second  # the sizes depend on the ratios only
    one, two = read_split(tmp_path / "one", ".tsv"), read_split(tmp_path / "two", ".tsv")
    assert one["train"] != two["train"]
    assert set(data_lines(one["test"], b"text\tlabel\n")) != set(data_lines(two["test"], b"text\tlabel\n"))


def test_every_row_lands_in_exactly_one_split(tmp_path):
    path = make_tsv(tmp_path, 37)
    rows = data_lines(path.read_bytes(), b"text\tlabel\n")
    split_file(path, tmp_path / "out", THREE, seed=11)
    outputs = {k: data_lines(v, b"text\tlabel\n") for k, v in read_split(tmp_path / "out", ".tsv").items()}
    for row in rows:
        assert sum(row in lines for lines in outputs.values()) == 1
    assert Counter(line for lines in outputs.values() for line in lines) == Counter(rows)


def test_duplicate_rows_are_each_kept(tmp_path):
    path = tmp_path / "d.tsv"
    rows = [b"same\tx\n"] * 5 + tsv_rows(5)
    path.write_bytes(b"text\tlabel\n" + b"".join(rows))
    split_file(path, tmp_path / "out", THREE)
    got = [line for d in read_split(tmp_path / "out", ".tsv").values() for line in data_lines(d, b"text\tlabel\n")]
    assert Counter(got) == Counter(rows)


def test_rewriting_an_output_dir_replaces_the_files(tmp_path):
    path = make_tsv(tmp_path)
    out = tmp_path / "out"
    split_file(path, out, THREE, seed=1)
    split_file(path, out, THREE, seed=2)
    split_file(path, tmp_path / "fresh", THREE, seed=2)
    assert read_split(out, ".tsv") == read_split(tmp_path / "fresh", ".tsv")


# --- stratification -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("ratios", [THREE, (0.9, 0.1), (0.6, 0.2, 0.2)])
def test_stratified_split_keeps_each_label_share(tmp_path, ratios):
    sizes = {"common": 41, "middle": 23, "rare": 7}
    rows = [f"{label} text {i}\t{label}\n".encode() for label, n in sizes.items() for i in range(n)]
    rows = rows[::2] + rows[1::2]  # interleave the labels a little
    path = tmp_path / "d.tsv"
    path.write_bytes(b"text\tlabel\n" + b"".join(rows))
    names = ("train", "validation", "test")[: len(ratios)]
    counts = split_file(path, tmp_path / "out", ratios, seed=4, stratify_column="label")
    outputs = read_split(tmp_path / "out", ".tsv", names)
    for ratio, name in zip(ratios, names):
        labels = Counter(line.rstrip(b"\n").split(b"\t")[1].decode() for line in data_lines(outputs[name],
                                                                                           b"text\tlabel\n"))
        assert sum(labels.values()) == counts[name]
        for label, n in sizes.items():
            assert abs(labels[label] - ratio * n) <= 1, (name, label, labels[label], ratio * n)
    got = [line for d in outputs.values() for line in data_lines(d, b"text\tlabel\n")]
    assert Counter(got) == Counter(rows)


def test_stratified_jsonl_split(tmp_path):
    lines = [json.dumps({"text": f"t{i}", "label": "x" if i < 20 else "y"}).encode() + b"\n" for i in range(30)]
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"".join(lines))
    split_file(path, tmp_path / "out", (0.8, 0.2), stratify_column="label")
    valid = [json.loads(line) for line in (tmp_path / "out" / "validation.jsonl").read_bytes().splitlines()]
    assert Counter(o["label"] for o in valid) == {"x": 4, "y": 2}


def test_stratified_csv_with_bom_header(tmp_path):
    rows = [f"r{i},{'p' if i % 3 else 'n'}\r\n".encode() for i in range(30)]
    path = tmp_path / "d.csv"
    path.write_bytes(b"\xef\xbb\xbftext,label\r\n" + b"".join(rows))
    split_file(path, tmp_path / "out", (0.8, 0.2), stratify_column="label")
    valid = data_lines((tmp_path / "out" / "validation.csv").read_bytes(), b"\xef\xbb\xbftext,label\r\n")
    assert Counter(line.strip().split(b",")[1] for line in valid) == {b"p": 4, b"n": 2}


def test_stratify_on_a_quoted_csv_header(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b'"text","label"\n' + b"".join(f'"r{i}",{i % 2}\n'.encode() for i in range(10)))
    counts = split_file(path, tmp_path / "out", (0.8, 0.2), stratify_column="label")
    assert counts == {"train": 8, "validation": 2}


def test_missing_stratify_column_names_file_line_and_columns(tmp_path):
    path = make_tsv(tmp_path)
    with pytest.raises(DataError) as info:
        split_file(path, tmp_path / "out", THREE, stratify_column="category")
    assert info.value.line == 1
    assert str(info.value) == f"{path}:1: stratify column 'category' not in the header; columns: text, label"


def test_missing_stratify_key_in_jsonl_names_the_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a", "label": 1}\n{"text": "b"}\n')
    with pytest.raises(DataError, match=r"d\.jsonl:2: stratify key 'label' missing"):
        split_file(path, tmp_path / "out", (0.5, 0.5), stratify_column="label")


@pytest.mark.parametrize("bad", [b"{bad json\n", b"[1, 2]\n"])
def test_bad_jsonl_line_when_stratifying_names_the_line(tmp_path, bad):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"text": "a", "label": 1}\n' + bad)
    with pytest.raises(DataError, match=r"d\.jsonl:2"):
        split_file(path, tmp_path / "out", (0.5, 0.5), stratify_column="label")


def test_stratify_on_plain_text_is_an_error(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("a\n\nb\n")
    with pytest.raises(DataError, match="--stratify-column works for TSV, CSV and JSONL"):
        split_file(path, tmp_path / "out", (0.5, 0.5), stratify_column="label")


def test_missing_input_file(tmp_path):
    with pytest.raises(DataError, match="file not found") as info:
        split_file(tmp_path / "nope.tsv", tmp_path / "out")
    assert str(tmp_path / "nope.tsv") in str(info.value)


def test_empty_delimited_file_needs_a_header(tmp_path):
    path = tmp_path / "e.tsv"
    path.write_bytes(b"")
    with pytest.raises(DataError, match=r"e\.tsv:1: empty file"):
        split_file(path, tmp_path / "out")


def test_unknown_extension_asks_for_format(tmp_path):
    path = tmp_path / "d.xyz"
    path.write_text("a\n")
    with pytest.raises(DataError, match="--format"):
        split_file(path, tmp_path / "out")
