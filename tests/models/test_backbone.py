"""Encoders: named sizes, the exact-GELU option, config round trip, and the Hugging Face import's parity."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from tests.conftest import shared_path
from tfpipe.config import ModelConfig
from tfpipe.models.backbone import SIZES, BertEncoder, build_encoder, load_hf_checkpoint, resolve_dimensions


def _inputs(batch=2, seq=5):
    ids = np.random.RandomState(0).randint(5, 40, size=(batch, seq)).astype("int32")
    return {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": np.ones_like(ids)}


@pytest.mark.parametrize("size", sorted(SIZES))
def test_named_sizes_resolve_to_google_miniatures(size):
    resolved = resolve_dimensions(ModelConfig(size=size))
    assert (resolved.num_layers, resolved.hidden_dim, resolved.num_heads, resolved.intermediate_dim) == SIZES[size]


def test_explicit_dimensions_override_a_named_size():
    resolved = resolve_dimensions(ModelConfig(size="mini", num_layers=2))
    assert (resolved.num_layers, resolved.hidden_dim) == (2, 256)
    with pytest.raises(ValueError, match="num_layers"):
        resolve_dimensions(_custom_without_dims())


def _custom_without_dims():
    config = ModelConfig()
    config.size = "custom"
    return config


def test_encoder_activation_and_config_round_trip():
    keras.utils.set_random_seed(0)
    encoder = build_encoder(ModelConfig(size="custom", num_layers=1, hidden_dim=8, num_heads=2,
                                        intermediate_dim=16, dropout=0.0), vocabulary_size=40)
    dense = encoder.transformer_layers[0]._feedforward_intermediate_dense
    assert dense.activation is keras.activations.gelu
    clone = BertEncoder.from_config(encoder.get_config())
    clone.set_weights(encoder.get_weights())
    assert clone.activation == "gelu"
    np.testing.assert_allclose(clone(_inputs())["sequence_output"], encoder(_inputs())["sequence_output"],
                               atol=1e-6)
    approximate = BertEncoder.from_config({**encoder.get_config(), "activation": "gelu_approximate"})
    approximate.set_weights(encoder.get_weights())
    difference = np.abs(np.asarray(approximate(_inputs())["sequence_output"])
                        - np.asarray(encoder(_inputs())["sequence_output"])).max()
    assert difference > 0  # the tanh approximation gives other numbers


def test_hugging_face_import_matches_reference_outputs():
    folder = shared_path("checkpoints", "minilm-l6-h384-uncased")
    encoder, tokenizer, config = load_hf_checkpoint(folder)
    reference = np.load(folder / "reference_outputs.npz")
    out = encoder({"token_ids": reference["input_ids"], "segment_ids": reference["token_type_ids"],
                   "padding_mask": reference["attention_mask"]})
    assert np.abs(np.asarray(out["sequence_output"]) - reference["sequence_output"]).max() <= 5e-3
    assert np.abs(np.asarray(out["pooled_output"]) - reference["pooled_output"]).max() <= 1e-3
    # The tokenizer comes with it and produces the reference's ids.
    assert tokenizer.vocabulary_size == 30522 and tokenizer.lowercase
    texts = ["The quick brown fox jumps over the lazy dog."]
    ids = tokenizer.encode(np.array(texts))[0].to_list()[0]
    assert ids == reference["input_ids"][0][: len(ids)].tolist()
    hf = json.loads((folder / "config.json").read_text())
    assert (config.num_layers, config.hidden_dim, config.activation) == (hf["num_hidden_layers"],
                                                                         hf["hidden_size"], "gelu")


def test_import_errors_name_the_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint folder not found"):
        load_hf_checkpoint(tmp_path / "nope")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(FileNotFoundError, match="vocab.txt"):
        load_hf_checkpoint(tmp_path)
    (tmp_path / "vocab.txt").write_text("[PAD]\n")
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_hf_checkpoint(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ValueError, match="not a BERT checkpoint"):
        load_hf_checkpoint(tmp_path)
