"""Small real SavedModels with the signatures of a tfpipe export (raw `text` in; `labels`/`probabilities`,
`predictions` or `words`/`tags`/`num_words` out; `classify` on tf.Examples), built with plain TensorFlow ops so
client and offline-prediction tests run without training a model. Rules stand in for weights: a text is "pos"
when it has more "good" than "bad" words; capitalised words are tagged B-LOC."""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

LABELS = ["neg", "pos"]


def _logits(text: tf.Tensor) -> tf.Tensor:
    words = tf.strings.split(tf.strings.lower(text))
    good = tf.reduce_sum(tf.cast(words == "good", tf.float32), axis=1)
    bad = tf.reduce_sum(tf.cast(words == "bad", tf.float32), axis=1)
    return tf.stack([bad - good, good - bad], axis=1)


def _classification(text: tf.Tensor) -> dict:
    logits = _logits(text)
    ids = tf.argmax(logits, axis=1)
    return {"logits": logits, "probabilities": tf.nn.softmax(logits), "label_ids": ids,
            "labels": tf.gather(tf.constant(LABELS), ids)}


class _Classifier(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serving_default(self, text):
        return _classification(text)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def classify(self, inputs):
        text = tf.io.parse_example(inputs, {"text": tf.io.FixedLenFeature([], tf.string)})["text"]
        result = _classification(text)
        return {"classes": tf.tile(tf.constant([LABELS]), [tf.shape(text)[0], 1]), "scores": result["probabilities"]}


class _PairRegressor(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text"),
                                  tf.TensorSpec([None], tf.string, name="text_pair")])
    def serving_default(self, text, text_pair):
        # Word-count difference: a deterministic "similarity score" to check pairs arrive aligned.
        a = tf.strings.split(text).row_lengths()
        b = tf.strings.split(text_pair).row_lengths()
        return {"predictions": tf.cast(a - b, tf.float32)}


class _Tagger(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serving_default(self, text):
        words = tf.strings.split(text)
        capital = tf.strings.regex_full_match(words, "[A-Z].*")
        tags = tf.ragged.map_flat_values(lambda c: tf.where(c, "B-LOC", "O"), capital)
        return {"words": words.to_tensor(""), "tags": tags.to_tensor(""),
                "num_words": tf.cast(words.row_lengths(), tf.int32)}


def save(kind: str, export_dir: Path) -> Path:
    """Writes `kind` ("classifier", "pair-regressor", "tagger") to `export_dir` (a version folder)."""
    module = {"classifier": _Classifier, "pair-regressor": _PairRegressor, "tagger": _Tagger}[kind]()
    signatures = {"serving_default": module.serving_default.get_concrete_function()}
    if kind == "classifier":
        signatures["classify"] = module.classify.get_concrete_function()
    tf.saved_model.save(module, str(export_dir), signatures=signatures)
    if kind == "classifier":
        # tf.saved_model.save writes every method name as .../predict; TF Serving's Classify needs its own.
        proto = saved_model_pb2.SavedModel.FromString((export_dir / "saved_model.pb").read_bytes())
        proto.meta_graphs[0].signature_def["classify"].method_name = "tensorflow/serving/classify"
        (export_dir / "saved_model.pb").write_bytes(proto.SerializeToString())
        (export_dir / "fingerprint.pb").unlink(missing_ok=True)  # its checksum was of the old saved_model.pb
    return export_dir
