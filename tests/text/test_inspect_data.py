"""tfpipe.text.inspect_data: the dataset report (counts, labels, lengths, duplicates, errors) and its text form."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tfpipe.config import ReaderConfig
from tfpipe.text.inspect_data import PERCENTILES, format_report, inspect_dataset
from tfpipe.text.readers import DataError
from tfpipe.text.tokenizer import WordPieceTokenizer

TSV = ReaderConfig(text_column="text", label_column="label")
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "movie", "bad", "the", "plot", "was", "fine", "a",
         "long", "review", "with", "many", "words", "in", "it", "##s", "film"]

CLEAN_TSV = (
    "text\tlabel\n"
    "good movie\tpos\n"
    "bad movie\tneg\n"
    "the plot was fine\tpos\n"
    "a long review with many words in it\tneg\n"
    "good film\tpos\n"
)

MESSY_TSV = (
    "text\tlabel\n"  # 1
    "good movie\tpos\n"  # 2
    "bad movie\tneg\n"  # 3
    "good movie\tpos\n"  # 4: duplicate, same label
    "good movie\tneg\n"  # 5: duplicate, other label
    "the plot was fine\tpos\n"  # 6
    "\tpos\n"  # 7: empty text
    "only text\n"  # 8: no label column
    "a long review with many words in it\tneg\n"  # 9
    "bad movie\t\n"  # 10: missing label
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tokenizer() -> WordPieceTokenizer:
    return WordPieceTokenizer(VOCAB)


def test_clean_tsv_report(tmp_path):
    path = write(tmp_path, "clean.tsv", CLEAN_TSV)
    report = inspect_dataset(path, "classification", TSV)
    assert report["file"] == str(path)
    assert report["task"] == "classification"
    assert report["records"] == 5
    assert report["label_distribution"] == {"neg": 2, "pos": 3}
    assert report["duplicates"] == 0
    assert report["conflicting_duplicates"] == 0
    assert report["num_errors"] == 0
    assert report["errors"] == []
    assert report["errors_by_kind"] == {}
    json.dumps(report)  # the CLI prints it as JSON


def test_word_length_percentiles(tmp_path):
    path = write(tmp_path, "clean.tsv", CLEAN_TSV)
    lengths = inspect_dataset(path, "classification", TSV)["length_words"]
    # Word counts are 2, 2, 4, 8, 2 → sorted 2, 2, 2, 4, 8; percentiles take the next higher value.
    assert list(lengths) == [f"p{p}" for p in PERCENTILES]
    assert lengths == {"p50": 2, "p90": 8, "p95": 8, "p99": 8, "p100": 8}
    assert "length_tokens" not in inspect_dataset(path, "classification", TSV)


def test_word_lengths_split_punctuation(tmp_path):
    path = write(tmp_path, "p.tsv", "text\tlabel\nWait, what?!\tx\n")
    # pre-split: wait , what ? !
    assert inspect_dataset(path, "classification", TSV)["length_words"]["p100"] == 5


def test_token_length_percentiles_with_a_vocabulary(tmp_path, tokenizer):
    path = write(tmp_path, "clean.tsv", CLEAN_TSV)
    report = inspect_dataset(path, "classification", TSV, tokenizer)
    assert "length_words" not in report
    # WordPiece tokens plus [CLS] and [SEP]: 4, 4, 6, 10, 4.
    assert report["length_tokens"] == {"p50": 4, "p90": 10, "p95": 10, "p99": 10, "p100": 10}


def test_token_lengths_count_word_pieces(tmp_path, tokenizer):
    path = write(tmp_path, "w.tsv", "text\tlabel\nfilms movies\tx\n")
    # [CLS] film ##s movie ##s [SEP]
    assert inspect_dataset(path, "classification", TSV, tokenizer)["length_tokens"]["p50"] == 6


def test_pair_lengths(tmp_path, tokenizer):
    path = write(tmp_path, "pairs.jsonl",
                 json.dumps({"text": "good movie", "text_pair": "the plot was fine", "label": 1}) + "\n"
                 + json.dumps({"text": "bad", "text_pair": "bad", "label": 0}) + "\n")
    words = inspect_dataset(path, "classification", ReaderConfig(text_column="text"))
    assert words["records"] == 2
    assert words["label_distribution"] == {"0": 1, "1": 1}
    # Word counts 2 + 4 and 1 + 1; with two values, every percentile from p50 up takes the higher one.
    assert words["length_words"] == {"p50": 6, "p90": 6, "p95": 6, "p99": 6, "p100": 6}
    tokens = inspect_dataset(path, "classification", ReaderConfig(text_column="text"), tokenizer)
    assert tokens["length_tokens"]["p100"] == 9  # [CLS] 2 [SEP] 4 [SEP]; the other pair has 5


def test_duplicates_conflicts_and_errors(tmp_path):
    path = write(tmp_path, "messy.tsv", MESSY_TSV)
    report = inspect_dataset(path, "classification", TSV)
    assert report["records"] == 6
    assert report["label_distribution"] == {"neg": 3, "pos": 3}
    assert report["duplicates"] == 2  # "good movie" three times
    assert report["conflicting_duplicates"] == 1  # "good movie" as pos and as neg
    assert report["num_errors"] == 3
    assert report["errors_by_kind"] == {"empty text": 1, "missing column": 1, "missing label": 1}
    assert report["errors"] == [
        f"{path}:7: empty text",
        f"{path}:8: expected at least 2 fields, got 1; missing column(s): label",
        f"{path}:10: missing label",
    ]


def test_same_text_with_same_label_is_not_a_conflict(tmp_path):
    path = write(tmp_path, "d.tsv", "text\tlabel\na\tx\na\tx\nb\ty\n")
    report = inspect_dataset(path, "classification", TSV)
    assert report["duplicates"] == 1
    assert report["conflicting_duplicates"] == 0


def test_pairs_are_duplicates_only_when_both_texts_match(tmp_path):
    config = ReaderConfig(text_column="a", text_pair_column="b", label_column="label")
    path = write(tmp_path, "p.tsv", "a\tb\tlabel\nx\ty\t1\nx\tz\t1\nx\ty\t0\n")
    report = inspect_dataset(path, "classification", config)
    assert report["duplicates"] == 1
    assert report["conflicting_duplicates"] == 1


def test_missing_column_is_one_fatal_error_naming_file_line(tmp_path):
    path = write(tmp_path, "d.tsv", CLEAN_TSV)
    report = inspect_dataset(path, "classification", ReaderConfig(text_column="sentence", label_column="label"))
    assert report["records"] == 0
    assert report["num_errors"] == 1
    assert report["errors_by_kind"] == {"column": 1}
    assert report["errors"] == [f"{path}:1: text column 'sentence' not in the header; columns: text, label"]
    assert "length_words" not in report


def test_bad_json_lines_are_errors(tmp_path):
    path = write(tmp_path, "d.jsonl", '{"text": "a", "label": "pos"}\n{"text": "b", "label": "meh"}\nnot json\n')
    # No closed label set is given, so "meh" is a label like any other; only the bad JSON line is an error.
    report = inspect_dataset(path, "classification", ReaderConfig(text_column="text"))
    assert report["records"] == 2
    assert report["num_errors"] == 1
    assert report["errors"][0].startswith(f"{path}:3: invalid JSON")


def test_regression_label_stats_and_bad_targets(tmp_path):
    path = write(tmp_path, "r.tsv", "text\tlabel\na\t1.5\nb\t-0.5\nc\t4\nd\thigh\ne\tnan\n")
    report = inspect_dataset(path, "regression", TSV)
    assert report["records"] == 3
    assert report["label_stats"] == {"min": -0.5, "mean": pytest.approx(5 / 3), "max": 4.0}
    assert report["errors_by_kind"] == {"bad label": 2}
    assert [e.split(": ")[0] for e in report["errors"]] == [f"{path}:5", f"{path}:6"]
    assert "conflicting_duplicates" not in report


def test_many_errors_are_capped_in_the_report_and_counted(tmp_path):
    path = write(tmp_path, "d.tsv", "text\tlabel\n" + "\tpos\n" * 60 + "ok\tpos\n")
    report = inspect_dataset(path, "classification", TSV)
    assert report["records"] == 1
    assert report["num_errors"] == 60
    assert len(report["errors"]) == 50
    assert report["errors"][-1] == f"{path}:51: empty text"
    assert format_report(report).splitlines()[-1] == "  ... and 10 more"


def test_blank_lines_are_notes_not_errors(tmp_path):
    path = write(tmp_path, "d.tsv", "text\tlabel\na\tx\n\nb\ty\n")
    report = inspect_dataset(path, "classification", TSV)
    assert report["num_errors"] == 0
    assert report["notes"] == {"blank lines": 1}


def test_format_report_lines(tmp_path):
    path = write(tmp_path, "messy.tsv", MESSY_TSV)
    text = format_report(inspect_dataset(path, "classification", TSV))
    lines = text.splitlines()
    assert lines[0] == f"{path} (classification): 6 valid records, 3 error(s), 2 duplicate(s)"
    assert "  label distribution: neg=3, pos=3" in lines
    assert "  length words: p50=2, p90=8, p95=8, p99=8, p100=8" in lines
    assert "  errors by kind: empty text=1, missing column=1, missing label=1" in lines
    assert "  duplicates with different labels: 1" in lines
    assert f"  error: {path}:7: empty text" in lines
    assert f"  error: {path}:10: missing label" in lines
    assert "more" not in lines[-1]


def test_format_report_of_a_clean_file_has_no_error_lines(tmp_path, tokenizer):
    path = write(tmp_path, "clean.tsv", CLEAN_TSV)
    lines = format_report(inspect_dataset(path, "classification", TSV, tokenizer)).splitlines()
    assert lines[0] == f"{path} (classification): 5 valid records, 0 error(s), 0 duplicate(s)"
    assert "  length tokens: p50=4, p90=10, p95=10, p99=10, p100=10" in lines
    assert not any("error" in line for line in lines[1:])


CONLL = (
    "-DOCSTART- -X- O O\n"  # 1
    "\n"
    "EU B-ORG\n"  # 3
    "rejects O\n"
    "German B-MISC\n"
    "call O\n"
    ". O\n"
    "\n"
    "Peter B-PER\n"  # 9
    "Blackburn I-PER\n"
    "\n"
    "John B-PER\n"  # 12
    "lives O\n"
    "in O\n"
    "New B-LOC\n"
    "York I-LOC\n"
    "and O\n"
    "Mary B-PER\n"
    "\n"
    "bad O\n"  # 20
    "tag I-PER\n"  # 21: I-PER after O
    "\n"
    "Peter B-PER\n"  # 23: duplicate sentence
    "Blackburn I-PER\n"
)


def test_token_classification_report(tmp_path):
    path = write(tmp_path, "ner.conll", CONLL)
    report = inspect_dataset(path, "token-classification")
    assert report["task"] == "token-classification"
    assert report["records"] == 4
    assert report["entities"] == {"LOC": 1, "MISC": 1, "ORG": 1, "PER": 4}
    assert report["tag_distribution"] == {"B-LOC": 1, "B-MISC": 1, "B-ORG": 1, "B-PER": 4, "I-LOC": 1, "I-PER": 2,
                                          "O": 6}
    assert "label_distribution" not in report
    assert report["duplicates"] == 1
    assert "conflicting_duplicates" not in report
    assert report["num_errors"] == 1
    assert report["errors_by_kind"] == {"invalid BIO": 1}
    assert report["errors"] == [f"{path}:21: I-PER follows O: not valid BIO (an I- tag must continue B-/I- of its "
                                "type)"]
    assert report["notes"] == {"-DOCSTART- lines": 1}
    # Sentence lengths in words: 5, 2, 7, 2.
    assert report["length_words"] == {"p50": 5, "p90": 7, "p95": 7, "p99": 7, "p100": 7}
    lines = format_report(report).splitlines()
    assert lines[0] == f"{path} (token-classification): 4 valid records, 1 error(s), 1 duplicate(s)"
    assert "  entities: LOC=1, MISC=1, ORG=1, PER=4" in lines
    assert "  notes: -DOCSTART- lines=1" in lines


def test_token_classification_token_lengths(tmp_path, tokenizer):
    path = write(tmp_path, "ner.conll", "good B-X\nmovie O\n\nthe O\nplot O\nwas O\nfine O\n")
    report = inspect_dataset(path, "token-classification", tokenizer=tokenizer)
    assert report["entities"] == {"X": 1}
    # [CLS] good movie [SEP] and [CLS] the plot was fine [SEP]: 4 and 6 tokens.
    assert report["length_tokens"] == {"p50": 6, "p90": 6, "p95": 6, "p99": 6, "p100": 6}
    words = inspect_dataset(path, "token-classification")
    assert words["length_words"] == {"p50": 4, "p90": 4, "p95": 4, "p99": 4, "p100": 4}


def test_missing_file_is_a_usage_error(tmp_path):
    # No file means nothing to inspect: raised (the CLI exits 2), not reported as a data problem.
    path = tmp_path / "nope.tsv"
    with pytest.raises(DataError, match="file not found") as info:
        inspect_dataset(path, "classification", TSV)
    assert info.value.path == str(path) and info.value.line == 0
