"""Offline batch prediction on real SavedModels with a tfpipe export's raw-text signatures: input order across
batches, every output decoded, words/tags trimmed, pairs, reader flags and the export's own reader settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.serving import raw_text_models
from tfpipe.config import ReaderConfig
from tfpipe.serving.offline import predict_file, prediction_reader
from tfpipe.text.readers import DataError


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("exports")
    return {kind: raw_text_models.save(kind, base / kind / "1") for kind in ("classifier", "pair-regressor", "tagger")}


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_classifier_keeps_input_order_across_batches(exports, tmp_path):
    texts = ["good movie", "bad movie", "good good bad", "bad bad good", "a good one", "bad"]
    data = tmp_path / "reviews.tsv"
    data.write_text("sentence\tlabel\n" + "".join(f"{t}\tx\n" for t in texts), encoding="utf-8")
    out = tmp_path / "out" / "predictions.jsonl"
    summary = predict_file(exports["classifier"], data, out, ReaderConfig(text_column="sentence"), batch_size=4,
                           progress=False)
    assert summary["records"] == 6 and summary["outputs"] == ["label_ids", "labels", "logits", "probabilities"]
    rows = _lines(out)
    assert [r["text"] for r in rows] == texts
    assert [r["labels"] for r in rows] == ["pos", "neg", "pos", "neg", "pos", "neg"]
    assert [r["label_ids"] for r in rows] == [1, 0, 1, 0, 1, 0]
    for row in rows:
        assert len(row["probabilities"]) == 2 and sum(row["probabilities"]) == pytest.approx(1.0, abs=1e-6)
        assert "label" not in row  # no label column was asked for


def test_gold_label_is_kept_when_a_label_column_is_read(exports, tmp_path):
    data = tmp_path / "reviews.jsonl"
    data.write_text(json.dumps({"text": "good", "gold": "pos"}) + "\n" + json.dumps({"text": "bad", "gold": 0}) + "\n")
    out = tmp_path / "p.jsonl"
    predict_file(exports["classifier"], data, out, ReaderConfig(label_column="gold"), progress=False)
    rows = _lines(out)
    assert [(r["label"], r["labels"]) for r in rows] == [("pos", "pos"), ("0", "neg")]
    assert list(rows[0])[:2] == ["text", "label"]


def test_jsonl_without_labels_and_empty_text_errors(exports, tmp_path):
    data = tmp_path / "in.jsonl"
    data.write_text('{"text": "good film"}\n\n{"text": "   "}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"in.jsonl:3: empty text"):
        predict_file(exports["classifier"], data, tmp_path / "p.jsonl", ReaderConfig(), progress=False)
    predict_file(exports["classifier"], data, tmp_path / "p.jsonl", ReaderConfig(on_error="skip"), progress=False)
    assert [r["labels"] for r in _lines(tmp_path / "p.jsonl")] == ["pos"]


def test_tagger_words_and_tags_are_trimmed_to_num_words(exports, tmp_path):
    data = tmp_path / "ner.conll"
    data.write_text("John\tB-PER\nlives\tO\nin\tO\nNew\tB-LOC\nYork\tI-LOC\n\nhello\tO\n", encoding="utf-8")
    out = tmp_path / "tags.jsonl"
    predict_file(exports["tagger"], data, out, ReaderConfig(), progress=False)
    rows = _lines(out)
    assert rows[0]["words"] == ["John", "lives", "in", "New", "York"]
    assert rows[0]["tags"] == ["B-LOC", "O", "O", "B-LOC", "B-LOC"]
    assert rows[1] == {"text": "hello", "num_words": 1, "tags": ["O"], "words": ["hello"]}


def test_pairs_need_their_column(exports, tmp_path):
    data = tmp_path / "pairs.csv"
    data.write_text("a,b\none two three,one\nx,y z\n", encoding="utf-8")
    out = tmp_path / "p.jsonl"
    predict_file(exports["pair-regressor"], data, out, ReaderConfig(text_column="a", text_pair_column="b"),
                 progress=False)
    assert [(r["text_pair"], r["predictions"]) for r in _lines(out)] == [("one", 2.0), ("y z", -1.0)]
    with pytest.raises(ValueError, match="text pairs.*--text-pair-column"):
        predict_file(exports["pair-regressor"], data, out, ReaderConfig(text_column="a"), progress=False)


def test_bad_export_folder_and_signature(exports, tmp_path):
    data = tmp_path / "t.txt"
    data.write_text("good\n", encoding="utf-8")
    with pytest.raises(FileNotFoundError, match="no saved_model.pb.*version folder"):
        predict_file(exports["classifier"].parent, data, tmp_path / "p.jsonl", progress=False)
    with pytest.raises(ValueError, match="no signature 'nope'; it has classify, serving_default"):
        predict_file(exports["classifier"], data, tmp_path / "p.jsonl", signature="nope", progress=False)
    with pytest.raises(ValueError, match=r"takes \['inputs'\], not raw `text`"):
        predict_file(exports["classifier"], data, tmp_path / "p.jsonl", signature="classify", progress=False)


def test_reader_settings_come_from_the_export_metadata(exports, tmp_path):
    export = tmp_path / "sst2" / "1"
    raw_text_models.save("classifier", export)
    assert prediction_reader(export) == ReaderConfig()  # not a tfpipe export: defaults
    (export / "assets.extra").mkdir()
    (export / "assets.extra" / "tfpipe_metadata.json").write_text(json.dumps(
        {"task": "classification", "config": {"reader": {"text_column": "sentence", "label_column": "label",
                                                         "format": "tsv"}}}))
    reader = prediction_reader(export)
    assert (reader.text_column, reader.format, reader.label_column) == ("sentence", "tsv", None)
    data = tmp_path / "dev.tsv"
    data.write_text("sentence\nso good\n", encoding="utf-8")
    predict_file(export, data, tmp_path / "p.jsonl", progress=False)
    assert _lines(tmp_path / "p.jsonl")[0]["labels"] == "pos"
