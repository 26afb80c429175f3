"""Exports of real tiny runs: layout, versions, signatures and method names, outputs equal to `tfpipe evaluate`,
float32 weights, warm-up and metadata files, and a loader with only TensorFlow + the tf-text kernels."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from tfpipe.export.exporter import ExportError, export_run
from tfpipe.export.layout import next_version
from tfpipe.export.savedmodel_files import read_saved_model
from tfpipe.text.tokenizer import WordPieceTokenizer


def _methods(export_dir) -> dict:
    return {k: v.method_name for k, v in read_saved_model(export_dir).meta_graphs[0].signature_def.items()
            if not k.startswith("__")}


def _predictions(run, stem) -> list[dict]:
    return [json.loads(line) for line in (run / "eval" / stem / "predictions.jsonl").read_text().splitlines()]


def test_classification_export_layout_and_signatures(tiny_runs, tiny_exports):
    base, name, path = tiny_exports("classification")
    assert path == base / name / "1"
    for rel in ("saved_model.pb", "variables/variables.index", "assets/vocab.txt", "assets/labels.txt",
                "assets.extra/tf_serving_warmup_requests", "assets.extra/tfpipe_metadata.json", "fingerprint.pb"):
        assert (path / rel).is_file(), rel
    assert not [p for p in (base / name).iterdir() if not p.name.isdigit()]  # no temporary folder left
    assert _methods(path) == {"serving_default": "tensorflow/serving/predict",
                              "classify": "tensorflow/serving/classify", "predict_ids": "tensorflow/serving/predict"}
    run = tiny_runs("classification")
    meta = json.loads((path / "assets.extra" / "tfpipe_metadata.json").read_text())
    assert meta["task"] == "classification" and meta["labels"] == ["neg", "pos"] and meta["version"] == 1
    assert meta["vocabulary_sha256"] == WordPieceTokenizer(run / "vocab.txt").hash
    assert meta["validation_metrics"]["accuracy"] == json.loads((run / "metrics.json").read_text())["accuracy"]
    assert meta["config"]["training"]["mixed_precision"] == "mixed_bfloat16" and meta["tfpipe_version"]
    loaded = tf.saved_model.load(str(path))
    # Trained in bf16, exported in float32.
    assert {v.dtype for v in loaded.variables if v.dtype.is_floating} == {tf.float32}
    # Every warm-up record is a serving_default PredictRequest on raw text.
    records = list(tf.data.TFRecordDataset(str(path / "assets.extra" / "tf_serving_warmup_requests")))
    assert len(records) >= 5
    for record in records:  # one text each, so a server batching with any max_batch_size accepts them
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        assert log.predict_log.request.model_spec.signature_name == "serving_default"
        assert tf.make_ndarray(log.predict_log.request.inputs["text"]).shape == (1,)


def test_served_predictions_equal_evaluate(tiny_runs, tiny_exports):
    run, (_, _, path) = tiny_runs("classification"), tiny_exports("classification")
    records = _predictions(run, "dev")
    fn = tf.saved_model.load(str(path)).signatures["serving_default"]
    out = fn(text=tf.constant([r["text"] for r in records]))
    assert [s.decode() for s in out["labels"].numpy()] == [r["prediction"] for r in records]
    probabilities = out["probabilities"].numpy()
    np.testing.assert_allclose(probabilities.sum(1), 1.0, rtol=1e-6)
    assert out["label_ids"].dtype == tf.int64 and out["logits"].shape == (len(records), 2)


def test_classify_and_predict_ids_agree_with_serving_default(tiny_runs, tiny_exports):
    _, _, path = tiny_exports("classification")
    loaded = tf.saved_model.load(str(path))
    texts = ["good movie", "the cat is bad", "a " * 300]  # the last is longer than max_seq_length: trimmed
    default = loaded.signatures["serving_default"](text=tf.constant(texts))
    examples = [tf.train.Example(features=tf.train.Features(feature={"text": tf.train.Feature(
        bytes_list=tf.train.BytesList(value=[t.encode()]))})).SerializeToString() for t in texts]
    classified = loaded.signatures["classify"](inputs=tf.constant(examples))
    np.testing.assert_allclose(classified["scores"].numpy(), default["probabilities"].numpy(), atol=1e-6)
    assert classified["classes"].numpy().tolist() == [[b"neg", b"pos"]] * 3
    tokenizer = WordPieceTokenizer(tiny_runs("classification") / "vocab.txt")
    ids, types = tokenizer.encode(tf.constant(texts), max_length=128)
    by_ids = loaded.signatures["predict_ids"](input_word_ids=ids.to_tensor(), input_mask=tf.ones_like(ids).to_tensor(),
                                              input_type_ids=types.to_tensor())
    np.testing.assert_allclose(by_ids["logits"].numpy(), default["logits"].numpy(), atol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="text"):  # an Example without the feature
        loaded.signatures["classify"](inputs=tf.constant([tf.train.Example().SerializeToString()]))


def test_tagging_export_windows_and_matches_evaluate(tiny_runs, tiny_exports):
    run, (_, _, path) = tiny_runs("tagging"), tiny_exports("tagging")
    assert set(_methods(path).values()) == {"tensorflow/serving/predict"}
    records = _predictions(run, "dev")
    assert max(len(r["words"]) for r in records) == 40  # longer than 16 pieces: windows
    out = tf.saved_model.load(str(path)).signatures["serving_default"](
        text=tf.constant([" ".join(r["words"]) for r in records] + ["", "John, in New-York!"]))
    num = out["num_words"].numpy()
    words, tags = out["words"].numpy(), out["tags"].numpy()
    for i, record in enumerate(records):
        assert [w.decode() for w in words[i][:num[i]]] == record["words"]
        assert [t.decode() for t in tags[i][:num[i]]] == record["prediction"]
        assert set(tags[i][num[i]:].tolist()) <= {b""}
    assert num[-2] == 0 and words[-1][:num[-1]].tolist() == [b"John", b",", b"in", b"New", b"-", b"York", b"!"]


def test_regression_and_pair_exports(tiny_exports):
    _, _, path = tiny_exports("regression")
    assert _methods(path)["regress"] == "tensorflow/serving/regress"
    loaded = tf.saved_model.load(str(path))
    default = loaded.signatures["serving_default"](text=tf.constant(["good movie", "bad movie"]))["predictions"]
    example = [tf.train.Example(features=tf.train.Features(feature={"text": tf.train.Feature(
        bytes_list=tf.train.BytesList(value=[t]))})).SerializeToString() for t in (b"good movie", b"bad movie")]
    np.testing.assert_allclose(loaded.signatures["regress"](inputs=tf.constant(example))["outputs"], default,
                               atol=1e-6)
    assert default.shape == (2,) and default[0] > default[1]
    _, _, pair_path = tiny_exports("pair")
    signature = tf.saved_model.load(str(pair_path)).signatures["serving_default"]
    assert set(signature.structured_input_signature[1]) == {"text", "text_pair"}
    out = signature(text=tf.constant(["the cat", "john"]), text_pair=tf.constant(["the cat", "a dog"]))
    assert out["labels"].shape == (2,)


def test_versions_never_overwrite(tiny_runs, tmp_path):
    run = tiny_runs("regression")
    first = export_run(run, tmp_path, "m", version=7, verify=False, log=lambda _: None)
    assert first.path == tmp_path / "m" / "7" and next_version(tmp_path / "m") == 8
    before = (first.path / "saved_model.pb").read_bytes()
    with pytest.raises(FileExistsError, match="never overwrite"):
        export_run(run, tmp_path, "m", version=7, verify=False, log=lambda _: None)
    assert (first.path / "saved_model.pb").read_bytes() == before
    assert export_run(run, tmp_path, "m", verify=False, log=lambda _: None).version == 8


def test_failed_check_removes_the_partial_export(tiny_runs, tmp_path, monkeypatch):
    import tfpipe.export.exporter as exporter

    real = exporter.build_cases

    def off_by_a_little(*args):  # the in-process reference disagrees with the export by 1e-3
        cases = real(*args)
        logits = cases["predict_ids"]["expected"]["predictions"]
        logits["values"] = (np.asarray(logits["values"]) + 1e-3).tolist()
        return cases

    monkeypatch.setattr(exporter, "build_cases", off_by_a_little)
    with pytest.raises(ExportError, match="max abs diff"):
        export_run(tiny_runs("regression"), tmp_path, "m", log=lambda _: None)
    assert list((tmp_path / "m").iterdir()) == []


def test_loads_with_tf_text_kernels_and_fails_without(tiny_exports, tmp_path):
    _, _, path = tiny_exports("classification")
    script = tmp_path / "load.py"
    script.write_text(
        "import sys\n"
        "for m in ('keras', 'keras_hub', 'tfpipe', 'tensorflow_text'): sys.modules[m] = None\n"
        "import tensorflow as tf\n"
        f"tf.saved_model.load({str(path)!r})\n")
    done = subprocess.run([sys.executable, "-I", str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "not registered" in done.stderr  # the tf-text kernels are needed
