"""The public Python API (`tfpipe.dataset`, `tfpipe.classifier`, `tfpipe.export`, ...): real files, a real fit,
a real export reloaded as a SavedModel."""

from __future__ import annotations

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfpipe
from tests.conftest import REPO, shared_path
from tests.training.conftest import write_conll, write_sentiment_tsv
from tfpipe.text.readers import DataError

TINY = {"num_layers": 1, "hidden_dim": 16, "num_heads": 2, "intermediate_dim": 32, "max_sequence_length": 64}


def test_import_is_light_and_names_resolve():
    code = ("import sys, tfpipe; heavy = [m for m in ('tensorflow', 'keras', 'tfpipe.api') if m in sys.modules]; "
            "print(heavy, callable(tfpipe.export), sorted(tfpipe.__all__))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == ("[] True ['callbacks', 'classifier', 'dataset', 'export', 'model', 'optimizer', "
                           "'tokenizer', 'vocabulary']")
    from tfpipe import api
    from tfpipe.export import exporter  # the package keeps its modules

    assert tfpipe.dataset is api.dataset and tfpipe.classifier is api.classifier
    assert exporter.export_run and tfpipe.export.exporter is exporter
    with pytest.raises(AttributeError):
        tfpipe.no_such_name  # noqa: B018


def test_dataset_labels_closed_set_and_order(tmp_path, tiny_vocab_file):
    train = tfpipe.dataset(write_sentiment_tsv(tmp_path / "train.tsv", 20, seed=1), tokenizer=tiny_vocab_file,
                           text_column="sentence", label_column="label", batch_size=8, max_seq_length=16)
    assert train.labels.labels == ["neg", "pos"] and train.cardinality().numpy() == 3
    x, y = next(iter(train))
    assert x["input_word_ids"].dtype == tf.int32 and x["input_word_ids"].shape[1] <= 16
    assert y.numpy().tolist() == [1, 0, 1, 0, 1, 0, 1, 0]  # file order: pos, neg, ...
    assert x["input_word_ids"].numpy()[0, 0] == train.tokenizer.cls_id
    dev = tmp_path / "dev.tsv"
    dev.write_text("label\tsentence\npos\tgood movie\nmaybe\ta movie\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"dev.tsv:3: unknown label 'maybe'"):
        tfpipe.dataset(dev, tokenizer=train.tokenizer, labels=train.labels, text_column="sentence",
                       label_column="label")
    skipped = tfpipe.dataset(dev, tokenizer=train.tokenizer, labels=["neg", "pos"], text_column="sentence",
                             label_column="label", on_error="skip")
    assert [y.numpy().tolist() for _, y in skipped] == [[1]]
    assert skipped.reading["records"] == 1 and skipped.reading["skipped"] == {"unknown label": 1}


def test_token_classification_dataset_windows_long_sentences(tmp_path, tiny_vocab_file):
    path = write_conll(tmp_path / "ner.conll", 6, seed=0, long_every=3)  # two 40-word sentences
    ds = tfpipe.dataset(path, "token-classification", tokenizer=tiny_vocab_file, max_seq_length=16,
                        batch_size=64)
    assert ds.labels.labels[0] == "O" and set(ds.labels.labels) == {"O", "B-LOC", "B-PER"}
    (x, tags, weights), = list(ds)
    assert x["input_word_ids"].shape[0] > 6 and x["input_word_ids"].shape[1] <= 16  # windows, not truncation
    words = sum(len(block.splitlines()) for block in path.read_text().strip().split("\n\n"))
    assert int(weights.numpy().sum()) == words  # one weighted position per word: nothing dropped


def test_model_sources_and_errors(tmp_path, tiny_vocab_file):
    with pytest.raises(ValueError, match="tokenizer="):
        tfpipe.classifier("tiny", 2)
    with pytest.raises(ValueError, match="num_labels"):
        tfpipe.model("custom", tokenizer=tiny_vocab_file, **TINY)
    with pytest.raises(FileNotFoundError, match="neither a size name"):
        tfpipe.classifier(tmp_path / "missing", 2)
    base = tfpipe.classifier("custom", 2, tokenizer=tiny_vocab_file, **TINY)
    tagger = tfpipe.model(base.encoder, "token-classification", num_labels=3)  # a shared encoder
    assert tagger.encoder is base.encoder and tagger.num_tags == 3
    assert type(tfpipe.model("tiny", "regression", tokenizer=tiny_vocab_file)).__name__ == "SequenceRegressor"


def test_checkpoint_model_and_tokenizer():
    folder = shared_path("checkpoints", "minilm-l6-h384-uncased")
    tok = tfpipe.tokenizer(folder)
    assert tok.lowercase and tok.vocabulary_size == 30522
    model = tfpipe.classifier(folder, 2)
    assert (model.encoder.num_layers, model.encoder.hidden_dim, model.encoder.activation) == (6, 384, "gelu")
    assert tfpipe.tokenizer(folder, lowercase=False).lowercase is False


def test_fit_with_callbacks_then_export_and_reload(tmp_path, tiny_vocab_file):
    keras.utils.set_random_seed(0)
    train = tfpipe.dataset(write_sentiment_tsv(tmp_path / "train.tsv", 64, seed=1), tokenizer=tiny_vocab_file,
                           text_column="sentence", label_column="label", batch_size=8, max_seq_length=32,
                           training=True)
    dev = tfpipe.dataset(write_sentiment_tsv(tmp_path / "dev.tsv", 16, seed=2), tokenizer=train.tokenizer,
                         labels=train.labels, text_column="sentence", label_column="label", max_seq_length=32)
    model = tfpipe.classifier("custom", len(train.labels), tokenizer=train.tokenizer, **TINY)
    model.compile(optimizer=tfpipe.optimizer(3e-3, total_steps=8 * 12),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    run = tmp_path / "run"
    history = model.fit(train, validation_data=dev, epochs=12, verbose=0, callbacks=tfpipe.callbacks(run))
    assert history.history["val_accuracy"][-1] >= 0.9  # "good" vs "bad" is learnable in a few steps
    assert (run / "checkpoints" / "best.weights.h5").is_file() and (run / "history.csv").is_file()
    assert not (run / "backup").exists()  # deleted when the fit ends

    texts = ["the good movie", "a bad cat", "Café déjà vu, 東京!"]
    result = tfpipe.export(model, train.tokenizer, tmp_path / "models", "reviews", labels=train.labels,
                           max_seq_length=32, samples=texts[:2], log=lambda _: None)
    assert result.path == tmp_path / "models" / "reviews" / "1"
    assert result.verification["max_abs_diff"] <= 1e-5
    assert (result.path / "assets" / "labels.txt").read_text() == "neg\npos\n"
    assert (result.path / "assets" / "vocab.txt").read_text().splitlines() == train.tokenizer.vocabulary
    metadata = json.loads((result.path / "assets.extra" / "tfpipe_metadata.json").read_text())
    assert metadata["task"] == "classification" and metadata["max_seq_length"] == 32

    served = tf.saved_model.load(str(result.path)).signatures["serving_default"]
    outputs = served(text=tf.constant(texts))
    keras_logits = model.predict(_features(train.tokenizer, texts, 32), verbose=0)
    np.testing.assert_allclose(outputs["logits"].numpy(), keras_logits, atol=1e-5)
    assert [s.decode() for s in outputs["labels"].numpy()] == \
        [train.labels.labels[i] for i in keras_logits.argmax(-1)]
    with pytest.raises(FileExistsError):
        tfpipe.export(model, train.tokenizer, tmp_path / "models", "reviews", version=1, labels=train.labels,
                      max_seq_length=32)


def _features(tokenizer, texts, max_length):
    ids, types = tokenizer.encode(tf.constant(texts), None, max_length)
    ids, types = ids.to_tensor(), types.to_tensor()
    return {"input_word_ids": ids, "input_mask": tf.cast(ids != 0, tf.int32), "input_type_ids": types}


def test_tagger_export_and_argument_checks(tmp_path, tiny_vocab_file):
    train = tfpipe.dataset(write_conll(tmp_path / "ner.conll", 12, seed=3), "token-classification",
                           tokenizer=tiny_vocab_file, max_seq_length=16, batch_size=4)
    tagger = tfpipe.model("custom", "token-classification", num_labels=len(train.labels), tokenizer=train.tokenizer,
                          **TINY)
    with pytest.raises(ValueError, match="needs labels="):
        tfpipe.export(tagger, train.tokenizer, tmp_path, "ner")
    with pytest.raises(ValueError, match="2 labels for a head of 3 outputs"):
        tfpipe.export(tagger, train.tokenizer, tmp_path, "ner", labels=["O", "B-PER"])
    with pytest.raises(ValueError, match="longer than the model's max_sequence_length=64"):
        tfpipe.export(tagger, train.tokenizer, tmp_path, "ner", labels=train.labels, max_seq_length=128)
    result = tfpipe.export(tagger, train.tokenizer, tmp_path, "ner", labels=train.labels, max_seq_length=16,
                           verify=False, log=lambda _: None)
    out = tf.saved_model.load(str(result.path)).signatures["serving_default"](text=tf.constant(["john lives in york"]))
    assert out["num_words"].numpy().tolist() == [4]
    assert {t.decode() for t in out["tags"].numpy()[0]} <= set(train.labels.labels)


def test_mixed_precision_model_is_refused(tmp_path, tiny_vocab_file):
    previous = keras.config.dtype_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = tfpipe.classifier("custom", 2, tokenizer=tiny_vocab_file, **TINY)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    with pytest.raises(ValueError, match="exports are float32"):
        tfpipe.export(model, tiny_vocab_file, tmp_path, "m")
