"""Malformed input files, written to disk and read through `read_records`.

Every bad record must come back as a `DataError` naming `file:line` (the exact path and the 1-based line of the
bad record; 0 for errors about the whole file) and the reason. Under `on_error="skip"` bad records are counted
by kind in the `ErrorLog` and good records still come through; nothing is dropped without being counted.

"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pytest

from tfpipe.config.schemas import ReaderConfig
from tfpipe.text.readers import DataError, ErrorLog, Record, TokenRecord, read_records

TC = "token-classification"
TSV = ReaderConfig(text_column="text", label_column="label")
PAIR_TSV = ReaderConfig(text_column="text", text_pair_column="pair", label_column="label")
CSV = ReaderConfig(text_column="text", label_column="label")
JSONL = ReaderConfig()
CONLL = ReaderConfig()
SPANS = ReaderConfig(format="spans")
BINARY = {"0", "1"}
MISSING = None  # `data` for a file that is never written


@dataclass
class Case:
    filename: str
    data: Optional[bytes]
    config: ReaderConfig = field(default_factory=ReaderConfig)
    task: str = "classification"
    labels: Optional[set[str]] = None
    line: int = 0
    reason: str = ""
    fatal: bool = False  # stops the read under on_error="skip" too (besides FATAL_KINDS)
    bug: Optional[str] = None  # a reader bug seen under both policies
    skip_bug: Optional[str] = None  # a reader bug seen under on_error="skip" only


def case(name: str, filename: str, data: Optional[bytes], config: ReaderConfig, task: str, labels, line: int,
         reason: str, bug: Optional[str] = None, skip_bug: Optional[str] = None, fatal: bool = False):
    return name, Case(filename, data, config, task, labels, line, reason, fatal, bug, skip_bug)


def _params(cases, policy: str):
    params = []
    for name, c in cases:
        bug = c.bug or (c.skip_bug if policy == "skip" else None)
        marks = [pytest.mark.xfail(reason=bug, strict=True)] if bug else []
        params.append(pytest.param(c, id=name, marks=marks))
    return params


# (name, filename, file bytes, config, task, labels, expected line, expected substring of the reason)
CASES = [
    # --- TSV -------------------------------------------------------------------------------------------------
    case("tsv-missing-header-column", "a.tsv", b"sentence\tlabel\nhello\t1\n", TSV, "classification", None,
         1, "text column 'text' not in the header; columns: sentence, label"),
    case("tsv-missing-label-header-column", "a.tsv", b"text\tgold\nhello\t1\n", TSV, "classification", None,
         1, "label column 'label' not in the header; columns: text, gold"),
    case("tsv-too-few-fields", "a.tsv", b"text\tlabel\nhello\t1\nonly text here\nbye\t0\n", TSV,
         "classification", None, 3, "expected at least 2 fields, got 1; missing column(s): label"),
    case("tsv-empty-text", "a.tsv", b"text\tlabel\nhello\t1\n   \t0\n", TSV, "classification", None,
         3, "empty text"),
    case("tsv-empty-text-pair", "a.tsv", b"text\tpair\tlabel\na\tb\t1\nc\t\t0\n", PAIR_TSV, "classification",
         None, 3, "empty text pair"),
    case("tsv-missing-label", "a.tsv", b"text\tlabel\nhello\t1\nbye\t\n", TSV, "classification", None,
         3, "missing label"),
    case("tsv-unknown-label", "a.tsv", b"text\tlabel\nhello\t1\nbye\t2\n", TSV, "classification", BINARY,
         3, "unknown label '2'; known labels: 0, 1"),
    case("tsv-regression-non-numeric", "a.tsv", b"text\tlabel\nhello\t0.5\nbye\thigh\n", TSV, "regression",
         None, 3, "label 'high' is not a finite number (regression)"),
    case("tsv-regression-nan", "a.tsv", b"text\tlabel\nhello\t0.5\nbye\tnan\n", TSV, "regression", None,
         3, "label 'nan' is not a finite number"),
    case("tsv-regression-inf", "a.tsv", b"text\tlabel\nhello\t0.5\nbye\t-inf\n", TSV, "regression", None,
         3, "label '-inf' is not a finite number"),
    case("tsv-invalid-utf8-line-3", "a.tsv", b"text\tlabel\nhello\t1\nbye \xff\xfe\t0\nok\t1\n", TSV,
         "classification", None, 3, "invalid UTF-8 at byte 4 of the line"),
    case("tsv-invalid-utf8-header", "a.tsv", b"te\xc3xt\tlabel\nhello\t1\n", TSV, "classification", None,
         1, "invalid UTF-8 at byte 2 of the line", fatal=True),
    case("tsv-empty-file", "a.tsv", b"", TSV, "classification", None, 1, "empty file: expected a header line"),
    case("tsv-no-header-non-integer-column", "a.tsv", b"hello\t1\n", ReaderConfig(
        text_column="text", label_column="1", no_header=True), "classification", None,
         1, "text column 'text': with --no-header, columns are 0-based indices"),
    case("tsv-no-header-negative-column", "a.tsv", b"hello\t1\n", ReaderConfig(
        text_column="-1", no_header=True), "classification", None, 1, "indices start at 0"),
    case("tsv-no-header-index-out-of-range", "a.tsv", b"a\tb\t1\nc\td\n", ReaderConfig(
        text_column="0", text_pair_column="1", label_column="2", no_header=True), "classification", None,
         2, "expected at least 3 fields, got 2; missing column(s): 2"),
    case("tsv-for-token-classification", "a.tsv", b"text\tlabel\nhello\t1\n", TSV, TC, None,
         0, "token classification reads conll or spans files, not tsv"),
    case("unknown-extension", "a.xml", b"<a/>\n", ReaderConfig(), "classification", None,
         0, "cannot tell the format from the extension '.xml'"),
    case("missing-file", "missing.tsv", MISSING, TSV, "classification", None, 0, "file not found"),
    case("missing-jsonl-file", "missing.jsonl", MISSING, JSONL, "classification", None, 0, "file not found"),
    # --- CSV -------------------------------------------------------------------------------------------------
    case("csv-junk-after-closing-quote", "a.csv", b'text,label\nok,1\n"quoted"junk,0\nfine,1\n', CSV,
         "classification", None, 3, "malformed CSV: ',' expected after '\"'"),
    case("csv-unterminated-quote-last-line", "a.csv", b'text,label\nok,1\n"never closed,0\n', CSV,
         "classification", None, 3, "malformed CSV: unexpected end of data"),
    case("csv-unterminated-quote-mid-file", "a.csv", b'text,label\n"never closed,1\nok,0\nfine,1\n', CSV,
         "classification", None, 2, "malformed CSV: unexpected end of data"),
    case("csv-multiline-then-bad-quoting", "a.csv", b'text,label\n"two\nlines",1\n"bad"x,0\nok,1\n', CSV,
         "classification", None, 4, "malformed CSV: ',' expected after '\"'"),
    case("csv-multiline-then-too-few-fields", "a.csv", b'text,label\n"two\nlines",1\nno label\nok,1\n', CSV,
         "classification", None, 4, "expected at least 2 fields, got 1; missing column(s): label"),
    case("csv-multiline-then-unknown-label", "a.csv", b'text,label\n"a\nb\nc",1\nx,7\n', CSV,
         "classification", BINARY, 5, "unknown label '7'"),
    # --- JSONL -----------------------------------------------------------------------------------------------
    case("jsonl-invalid-json", "a.jsonl", b'{"text": "a", "label": 1}\n{"text": "b", "label": 1\n', JSONL,
         "classification", None, 2, "invalid JSON: Expecting ',' delimiter at column 25"),
    case("jsonl-single-quotes", "a.jsonl", b"{'text': 'a', 'label': 1}\n", JSONL, "classification", None,
         1, "invalid JSON: Expecting property name enclosed in double quotes"),
    case("jsonl-not-an-object", "a.jsonl", b'{"text": "a", "label": 1}\n["b", 1]\n', JSONL, "classification",
         None, 2, "expected a JSON object, got list"),
    case("jsonl-missing-text-key", "a.jsonl", b'{"text": "a", "label": 1}\n\n{"sentence": "b", "label": 0}\n',
         JSONL, "classification", None, 3, "missing key 'text'; keys present: label, sentence"),
    case("jsonl-null-text", "a.jsonl", b'{"text": null, "label": 0}\n', JSONL, "classification", None,
         1, "key 'text' is null"),
    case("jsonl-missing-label-key", "a.jsonl", b'{"text": "b"}\n', JSONL, "classification", None,
         1, "missing key 'label'; keys present: text"),
    case("jsonl-text-is-number", "a.jsonl", b'{"text": 42, "label": 1}\n', JSONL, "classification", None,
         1, "key 'text' must be a string, got int"),
    case("jsonl-text-is-list", "a.jsonl", b'{"text": ["a", "b"], "label": 1}\n', JSONL, "classification", None,
         1, "key 'text' must be a string, got list"),
    case("jsonl-renamed-text-is-number", "a.jsonl", b'{"sentence": 42, "label": 1}\n',
         ReaderConfig(text_column="sentence"), "classification", None, 1, "key 'sentence' must be a string, got int"),
    case("jsonl-text-pair-is-number", "a.jsonl", b'{"text": "a", "text_pair": 42, "label": 1}\n', JSONL,
         "classification", None, 1, "key 'text_pair' must be a string, got int"),
    case("jsonl-label-is-list", "a.jsonl", b'{"text": "a", "label": [1]}\n', JSONL, "classification", None,
         1, "key 'label' must be a string, got list"),
    case("jsonl-empty-text", "a.jsonl", b'{"text": "a", "label": 1}\n{"text": " ", "label": 0}\n', JSONL,
         "classification", None, 2, "empty text"),
    case("jsonl-invalid-utf8", "a.jsonl", b'{"text": "a", "label": 1}\n{"text": "\xe9t\xe9", "label": 0}\n',
         JSONL, "classification", None, 2, "invalid UTF-8 at byte 10 of the line"),
    case("jsonl-regression-bool-label", "a.jsonl", b'{"text": "a", "label": true}\n', JSONL, "regression",
         None, 1, "label 'true' is not a finite number"),
    case("jsonl-regression-nan-label", "a.jsonl", b'{"text": "a", "label": NaN}\n', JSONL, "regression",
         None, 1, "label 'nan' is not a finite number"),
    case("jsonl-for-token-classification", "a.jsonl", b'{"text": "a"}\n', JSONL, TC, None,
         0, "token classification reads conll or spans files, not jsonl"),
    # --- CoNLL -----------------------------------------------------------------------------------------------
    case("conll-one-column", "a.conll", b"John B-PER\nSmith\nruns O\n\n", CONLL, TC, None,
         2, "expected a word and a tag column, got 1 field(s): 'Smith'"),
    case("conll-tag-not-bio", "a.conll", b"-DOCSTART- -X- O O\n\nJohn PERSON\nruns O\n", CONLL, TC, None,
         3, "tag 'PERSON' is not O, B-TYPE or I-TYPE"),
    case("conll-i-after-o", "a.txt", b"The O\nUN I-ORG\nmet O\n", CONLL, TC, None,
         2, "I-ORG follows O: not valid BIO"),
    case("conll-i-after-other-type", "a.conll", b"ok O\n\nin O\nNew B-LOC\nYork I-PER\n", CONLL, TC, None,
         5, "I-PER follows B-LOC"),
    case("conll-i-at-sentence-start", "a.conll", b"a O\n\nUN I-ORG\nmet O\n", CONLL, TC, None,
         3, "I-ORG follows O"),
    case("conll-invalid-utf8", "a.conll", b"John B-PER\n\nZ\xfcrich B-LOC\n", CONLL, TC, None,
         3, "invalid UTF-8 at byte 1 of the line"),
    case("conll-unknown-entity-type", "a.conll", b"John B-PER\nSmith I-PER\nin O\nParis B-MISC\n\n", CONLL, TC,
         {"PER", "LOC"}, 4, "unknown entity type(s) ['MISC']"),
    case("conll-unknown-entity-type-first-token", "a.conll", b"Paris B-MISC\nis O\n", CONLL, TC,
         {"PER", "LOC"}, 1, "unknown entity type(s) ['MISC']"),
    # --- span JSONL ------------------------------------------------------------------------------------------
    case("spans-misaligned", "a.jsonl", b'{"text": "John Smith lives here", "entities": [[1, 4, "PER"]]}\n',
         SPANS, TC, None, 1, "entity [1, 4) 'ohn' (PER) does not align with word boundaries"),
    case("spans-misaligned-line-2", "a.jsonl",
         b'{"text": "Ann runs", "entities": [[0, 3, "PER"]]}\n{"text": "Paris, France", "entities": '
         b'[[0, 7, "LOC"]]}\n', SPANS, TC, None, 2, "entity [0, 7) 'Paris, ' (LOC)"),
    case("spans-overlap", "a.jsonl", b'{"text": "John Smith", "entities": [[0, 10, "PER"], [5, 10, "PER"]]}\n',
         SPANS, TC, None, 1, "entities [0, 10) and [5, 10) overlap"),
    case("spans-out-of-range", "a.jsonl", b'{"text": "John", "entities": [[0, 50, "PER"]]}\n', SPANS, TC,
         None, 1, "entity [0, 50, 'PER'] is outside the text (length 4)"),
    case("spans-empty-span", "a.jsonl", b'{"text": "John", "entities": [[2, 2, "PER"]]}\n', SPANS, TC,
         None, 1, "is outside the text (length 4)"),
    case("spans-not-a-triple", "a.jsonl", b'{"text": "John", "entities": [[0, 4]]}\n', SPANS, TC, None,
         1, "entity [0, 4] is not [start, end, label]"),
    case("spans-string-offsets", "a.jsonl", b'{"text": "John", "entities": [["0", "4", "PER"]]}\n', SPANS, TC,
         None, 1, "is not [start, end, label]"),
    case("spans-bool-offsets", "a.jsonl", b'{"text": "John", "entities": [[false, true, "PER"]]}\n', SPANS, TC,
         None, 1, "is not [start, end, label]"),
    case("spans-entities-not-list", "a.jsonl", b'{"text": "John", "entities": {"PER": [0, 4]}}\n', SPANS, TC,
         None, 1, "'entities' must be a list of [start, end, label]"),
    case("spans-missing-text", "a.jsonl", b'{"entities": []}\n', SPANS, TC, None,
         1, "missing or non-string 'text'"),
    case("spans-invalid-json", "a.jsonl", b'{"text": "a", "entities": []}\n{"text": \n', SPANS, TC, None,
         2, "invalid JSON"),
    case("spans-unknown-entity-type", "a.jsonl", b'{"text": "John Smith", "entities": [[0, 10, "PER"]]}\n',
         SPANS, TC, {"LOC"}, 1, "unknown entity type(s) ['PER']"),
]

FATAL_KINDS = {"file", "column"}  # errors about the whole file or the configuration stop the read under "skip" too


def _write(tmp_path: Path, filename: str, data: Optional[bytes]) -> Path:
    path = tmp_path / filename
    if data is not None:
        path.write_bytes(data)
    return path


def _check(error: DataError, path: Path, c: Case) -> None:
    assert error.path == str(path)
    assert error.line == c.line, str(error)
    assert c.reason in error.reason, str(error)
    where = f"{path}:{c.line}" if c.line else str(path)
    assert str(error) == f"{where}: {error.reason}"


def test_enough_cases():
    assert len(CASES) >= 24
    assert len({name for name, _ in CASES}) == len(CASES)


@pytest.mark.parametrize("c", _params(CASES, "raise"))
def test_malformed_file_raises_with_file_and_line(tmp_path, c: Case):
    path = _write(tmp_path, c.filename, c.data)
    config = ReaderConfig(**{**vars(c.config), "on_error": "raise"})
    with pytest.raises(DataError) as info:
        list(read_records(path, config, c.task, c.labels))
    _check(info.value, path, c)


@pytest.mark.parametrize("c", _params(CASES, "skip"))
def test_malformed_file_under_skip_is_counted_with_file_and_line(tmp_path, c: Case):
    path = _write(tmp_path, c.filename, c.data)
    config = ReaderConfig(**{**vars(c.config), "on_error": "skip"})
    log = ErrorLog("skip")
    try:
        records = list(read_records(path, config, c.task, c.labels, log))
    except DataError as error:
        if error.kind == "no records":  # every record was bad: each one counted, then the read fails
            assert f"all {log.num_errors} were skipped" in error.reason
            records = []
        else:  # whole-file and configuration errors cannot be skipped
            assert c.fatal or error.kind in FATAL_KINDS, str(error)
            _check(error, path, c)
            return
    assert log.errors, f"nothing reported; records: {records}"
    assert not c.fatal, f"a fatal error was skipped: {log.errors[0]}"
    first = log.errors[0]
    assert first.kind not in FATAL_KINDS
    _check(first, path, c)
    assert log.num_errors == len(log.errors)
    assert sum(log.skipped.values()) >= 1
    assert all(r.line != c.line for r in records), "the bad record came through"


# --- valid files that look odd -----------------------------------------------------------------------------

def test_bom_and_crlf_tsv_is_valid(tmp_path):
    path = tmp_path / "bom.tsv"
    path.write_bytes(b"\xef\xbb\xbftext\tlabel\r\nhello world\t1\r\n\r\nbye\t0\r\n")
    log = ErrorLog("raise")
    records = list(read_records(path, TSV, "classification", BINARY, log))
    assert [(r.text, r.label, r.line) for r in records] == [("hello world", "1", 2), ("bye", "0", 4)]
    assert all("\r" not in r.text + r.label for r in records)
    assert log.num_errors == 0 and log.notes["blank lines"] == 1


def test_bom_and_crlf_csv_and_jsonl_are_valid(tmp_path):
    csv_path = tmp_path / "bom.csv"
    csv_path.write_bytes(b'\xef\xbb\xbftext,label\r\n"a, b",1\r\nc,0\r\n')
    assert [(r.text, r.label, r.line) for r in read_records(csv_path, CSV)] == [("a, b", "1", 2), ("c", "0", 3)]
    jsonl_path = tmp_path / "bom.jsonl"
    jsonl_path.write_bytes(b'\xef\xbb\xbf{"text": "a", "label": 1}\r\n{"text": "b", "label": 0}\r\n')
    assert [(r.text, r.label, r.line) for r in read_records(jsonl_path, JSONL)] == [("a", "1", 1), ("b", "0", 2)]


def test_bom_no_header_tsv(tmp_path):
    path = tmp_path / "bom.tsv"
    path.write_bytes(b"\xef\xbb\xbfhello\t1\r\n")
    config = ReaderConfig(text_column="0", label_column="1", no_header=True)
    assert [(r.text, r.label) for r in read_records(path, config)] == [("hello", "1")]


def test_glue_tsv_stray_quotes_are_not_merged(tmp_path):
    lines = [
        "Quality\t#1 String\t#2 String",
        '1\t" The witness " said so .\tHe said " yes',
        '0\tA quote " opens here\t" and never closes',
        '1\tplain\ttext',
        '0\t"\t"',
    ]
    data = "\n".join(lines) + "\n"
    # A quoting reader would merge rows here: the test data really does exercise the no-quote path.
    assert len(list(csv.reader(io.StringIO(data), delimiter="\t"))) < len(lines)
    path = tmp_path / "train.tsv"
    path.write_text(data, encoding="utf-8")
    config = ReaderConfig(text_column="#1 String", text_pair_column="#2 String", label_column="Quality")
    records = list(read_records(path, config, "classification", BINARY))
    assert len(records) == len(lines) - 1
    assert [r.line for r in records] == [2, 3, 4, 5]
    assert records[0].text == '" The witness " said so .' and records[0].text_pair == 'He said " yes'
    assert records[3].text == '"' and records[3].text_pair == '"'


# --- skip policy: good records through, every bad one counted -----------------------------------------------

def test_skip_mixed_tsv_counts_every_bad_row(tmp_path):
    rows = [
        b"text\tlabel",          # 1 header
        b"good one\t1",          # 2
        b"too few fields",       # 3 missing column
        b"good two\t0",          # 4
        b"\t1",                  # 5 empty text
        b"",                     # 6 blank
        b"three\t2",             # 7 unknown label
        b"bad \xff bytes\t1",    # 8 encoding
        b"four\t",               # 9 missing label
        b"good three\t1",        # 10
        b"",                     # 11 blank
        b"four\t0\textra",       # 12 extra field (never dropped silently)
        b"good four\t0",         # 13
    ]
    path = tmp_path / "mixed.tsv"
    path.write_bytes(b"\n".join(rows) + b"\n")
    log = ErrorLog("skip")
    records = list(read_records(path, ReaderConfig(**{**vars(TSV), "on_error": "skip"}), "classification",
                                BINARY, log))
    assert [(r.text, r.line) for r in records] == [("good one", 2), ("good two", 4), ("good three", 10),
                                                   ("good four", 13)]
    assert log.skipped == Counter({"missing column": 1, "empty text": 1, "unknown label": 1, "encoding": 1,
                                   "missing label": 1, "field count": 1})
    assert sorted(e.line for e in log.errors) == [3, 5, 7, 8, 9, 12]
    data_lines = len(rows) - 1
    assert len(records) + log.num_errors + log.notes["blank lines"] == data_lines


def test_skip_mixed_jsonl_counts_every_bad_line(tmp_path):
    lines = [
        b'{"text": "good", "label": 1}',        # 1
        b'{"text": "no close", "label": 1',     # 2 json
        b'["a list"]',                           # 3 json
        b'',                                     # 4 blank
        b'{"sentence": "x", "label": 0}',       # 5 missing column
        b'{"text": 3, "label": 0}',             # 6 wrong type
        b'{"text": "", "label": 0}',            # 7 empty text
        b'{"text": "caf\xe9", "label": 0}',     # 8 encoding
        b'{"text": "good too", "label": "0"}',  # 9
        b'{"text": "x", "label": 5}',           # 10 unknown label
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    log = ErrorLog("skip")
    records = list(read_records(path, ReaderConfig(on_error="skip"), "classification", BINARY, log))
    assert [(r.text, r.label, r.line) for r in records] == [("good", "1", 1), ("good too", "0", 9)]
    assert log.skipped == Counter({"json": 2, "missing column": 1, "wrong type": 1, "empty text": 1,
                                   "encoding": 1, "unknown label": 1})
    assert sorted(e.line for e in log.errors) == [2, 3, 5, 6, 7, 8, 10]
    assert len(records) + log.num_errors + log.notes["blank lines"] == len(lines)


def test_skip_mixed_csv_counts_every_bad_record(tmp_path):
    data = (b'text,label\n'           # 1
            b'good,1\n'               # 2
            b'"bad"x,1\n'             # 3 csv
            b'"multi\nline good",0\n'  # 4-5
            b'no label\n'             # 6 missing column
            b'\n'                     # 7 blank
            b',1\n'                   # 8 empty text
            b'last good,0\n')         # 9
    path = tmp_path / "mixed.csv"
    path.write_bytes(data)
    log = ErrorLog("skip")
    records = list(read_records(path, ReaderConfig(**{**vars(CSV), "on_error": "skip"}), "classification",
                                BINARY, log))
    assert [(r.text, r.line) for r in records] == [("good", 2), ("multi\nline good", 4), ("last good", 9)]
    assert log.skipped == Counter({"csv": 1, "missing column": 1, "empty text": 1})
    assert sorted(e.line for e in log.errors) == [3, 6, 8]
    data_records = 7  # records after the header: 2, 3, 4-5, 6, 7 (blank), 8, 9
    assert len(records) + log.num_errors + log.notes["blank lines"] == data_records


def test_skip_mixed_conll_counts_every_bad_sentence(tmp_path):
    data = (b"-DOCSTART- -X- O O\n\n"      # 1-2
            b"John B-PER\nruns O\n\n"        # 3-4 good
            b"Bad\nsentence O\n\n"           # 6-7 missing column (line 6)
            b"The O\nUN I-ORG\n\n"           # 9-10 invalid BIO (line 10)
            b"Ann B-PER\nin O\nRome B-LOC\n\n"  # 12-14 unknown entity type LOC
            b"Bob B-PER\n")                  # 16 good
    path = tmp_path / "mixed.conll"
    path.write_bytes(data)
    log = ErrorLog("skip")
    records = list(read_records(path, ReaderConfig(on_error="skip"), TC, {"PER", "ORG"}, log))
    assert all(isinstance(r, TokenRecord) for r in records)
    assert [(r.words, r.tags, r.line) for r in records] == [(["John", "runs"], ["B-PER", "O"], 3),
                                                            (["Bob"], ["B-PER"], 16)]
    assert log.skipped == Counter({"missing column": 1, "invalid BIO": 1, "unknown label": 1})
    assert [e.line for e in log.errors][:2] == [6, 10]
    assert log.notes["-DOCSTART- lines"] == 1


def test_skip_mixed_spans_counts_every_bad_line(tmp_path):
    lines = [
        b'{"text": "John Smith runs", "entities": [[0, 10, "PER"]]}',    # 1 good
        b'{"text": "John Smith", "entities": [[1, 4, "PER"]]}',           # 2 misaligned
        b'{"text": "John Smith", "entities": [[0, 4, "PER"], [2, 10, "PER"]]}',  # 3 overlap
        b'{"text": "John", "entities": [[0, 9, "PER"]]}',                 # 4 out of range
        b'{"text": "John", "entities": [[0, 4]]}',                        # 5 not a triple
        b'',                                                              # 6 blank
        b'{"text": "Paris now", "entities": [[0, 5, "LOC"]]}',           # 7 good
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    log = ErrorLog("skip")
    records = list(read_records(path, ReaderConfig(format="spans", on_error="skip"), TC, None, log))
    assert [(r.words, r.tags, r.line) for r in records] == [
        (["John", "Smith", "runs"], ["B-PER", "I-PER", "O"], 1), (["Paris", "now"], ["B-LOC", "O"], 7)]
    assert log.skipped == Counter({"misaligned span": 1, "span": 2, "wrong type": 1})
    assert [e.line for e in log.errors] == [2, 3, 4, 5]
    assert "'ohn'" in log.errors[0].reason
    assert len(records) + log.num_errors + log.notes["blank lines"] == len(lines)


def test_skip_undecodable_header_is_not_replaced_by_a_data_row(tmp_path):
    path = tmp_path / "bad_header.tsv"
    path.write_bytes(b"\xfftext\tlabel\nhello\t1\nworld\t0\n")
    log = ErrorLog("skip")
    with pytest.raises(DataError) as info:
        list(read_records(path, ReaderConfig(**{**vars(TSV), "on_error": "skip"}), "classification", None, log))
    assert info.value.line == 1 and "invalid UTF-8" in info.value.reason


def test_skip_conll_undecodable_line_drops_the_whole_sentence(tmp_path):
    path = tmp_path / "bad.conll"
    path.write_bytes(b"New B-LOC\nY\xffork I-LOC\nis O\n\nok O\n")
    log = ErrorLog("skip")
    records = list(read_records(path, ReaderConfig(on_error="skip"), TC, None, log))
    assert log.skipped == Counter({"encoding": 1}) and log.errors[0].line == 2
    assert [r.words for r in records] == [["ok"]]


def test_records_are_records(tmp_path):
    path = tmp_path / "ok.tsv"
    path.write_bytes(b"text\tlabel\nhello\t1\n")
    (record,) = read_records(path, TSV)
    assert isinstance(record, Record) and record.source == str(path) and record.line == 2


# --- the real MRPC file ---------------------------------------------------------------------------------------

MRPC_TRAIN = Path(__file__).resolve().parents[3] / "shared" / "data" / "mrpc" / "train.tsv"


@pytest.mark.skipif(not MRPC_TRAIN.is_file(), reason=f"shared MRPC data not present at {MRPC_TRAIN}")
def test_real_mrpc_train_reads_every_row():
    config = ReaderConfig(text_column="#1 String", text_pair_column="#2 String", label_column="Quality")
    log = ErrorLog("raise")
    records = list(read_records(MRPC_TRAIN, config, "classification", BINARY, log))
    assert len(records) == 3667
    with MRPC_TRAIN.open("rb") as handle:
        assert len(records) == sum(1 for _ in handle) - 1
    assert log.num_errors == 0
    assert {r.label for r in records} == BINARY
    assert records[0].line == 2 and records[-1].line == 3668
    assert records[0].text.startswith("Amrozi accused his brother")
    assert any('"' in r.text for r in records)
