"""BERT encoders from keras-hub's `BertBackbone`: named miniature sizes, explicit dimensions, or a Hugging Face
checkpoint folder (config.json, model.safetensors, vocab.txt) imported offline with its tokenizer.

Hugging Face BERT uses the exact (erf) GELU while keras-hub's BERT hard-codes the tanh approximation; `BertEncoder`
takes the activation as an argument so imported checkpoints reproduce the reference outputs.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Optional

import keras
import keras_hub

from tfpipe.config.schemas import POOLINGS, ModelConfig
from tfpipe.models.keras_compat import set_feedforward_activation
from tfpipe.text.tokenizer import MODEL_INPUTS, WordPieceTokenizer

# Google's BERT miniatures: (layers, hidden, heads, intermediate).
SIZES = {
    "tiny": (2, 128, 2, 512),
    "mini": (4, 256, 4, 1024),
    "small": (4, 512, 8, 2048),
    "medium": (8, 512, 8, 2048),
    "base": (12, 768, 12, 3072),
}


@keras.saving.register_keras_serializable(package="tfpipe")
class BertEncoder(keras_hub.models.BertBackbone):
    """keras-hub `BertBackbone` with a choice of FFN activation.

    Args:
        activation: `"gelu"` (exact, as Hugging Face BERT) or `"gelu_approximate"` (keras-hub's default).
        **kwargs: `BertBackbone` arguments (`vocabulary_size`, `num_layers`, `num_heads`, `hidden_dim`,
            `intermediate_dim`, `dropout`, `max_sequence_length`, ...).

    Examples:
    >>> import numpy as np
    >>> encoder = BertEncoder(vocabulary_size=50, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16)
    >>> ids = np.array([[2, 7, 3]])
    >>> out = encoder({"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": np.ones_like(ids)})
    >>> tuple(out["sequence_output"].shape), tuple(out["pooled_output"].shape)
    ((1, 3, 8), (1, 8))
    """

    def __init__(self, activation: str = "gelu", **kwargs) -> None:
        super().__init__(**kwargs)
        if activation not in ("gelu", "gelu_approximate"):
            raise ValueError(f"activation: {activation!r} is not allowed; allowed values: gelu, gelu_approximate")
        self.activation = activation
        if activation == "gelu":
            for layer in self.transformer_layers:
                set_feedforward_activation(layer, keras.activations.gelu)

    def get_config(self) -> dict:
        return {**super().get_config(), "activation": self.activation}


def resolve_dimensions(config: ModelConfig) -> ModelConfig:
    """Fills num_layers/hidden_dim/num_heads/intermediate_dim from the named size (explicit values win)."""
    named = SIZES.get(config.size, (None, None, None, None))
    layers, hidden, heads, inter = (v if v is not None else d for v, d in zip(
        (config.num_layers, config.hidden_dim, config.num_heads, config.intermediate_dim), named))
    if None in (layers, hidden, heads):
        raise ValueError("model: give a named size or num_layers, hidden_dim and num_heads")
    return replace(config, num_layers=layers, hidden_dim=hidden, num_heads=heads, intermediate_dim=inter or 4 * hidden)


def build_encoder(config: ModelConfig, vocabulary_size: int) -> BertEncoder:
    """A randomly initialised encoder of the configured size."""
    config = resolve_dimensions(config)
    return BertEncoder(
        vocabulary_size=vocabulary_size, num_layers=config.num_layers, num_heads=config.num_heads,
        hidden_dim=config.hidden_dim, intermediate_dim=config.intermediate_dim, dropout=config.dropout,
        max_sequence_length=config.max_sequence_length, activation=config.activation,
    )


def _hf_file(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; a Hugging Face BERT folder needs config.json, "
                                "model.safetensors and vocab.txt")
    return path


def encoder_from_preset(
    folder: str | Path, activation: str, dropout: Optional[float] = None
) -> tuple[BertEncoder, ModelConfig]:
    """Loads a Hugging Face or keras-hub preset folder as a `BertEncoder` and its resolved `ModelConfig`.

    keras-hub converts the weights into its own `BertBackbone`; they are then moved into a `BertEncoder` of the
    same configuration, which only adds the activation.
    """
    converted = keras_hub.models.BertBackbone.from_preset(str(folder))
    settings = {k: v for k, v in converted.get_config().items() if k not in ("name", "trainable")}
    if dropout is not None:
        settings["dropout"] = dropout
    encoder = BertEncoder(activation=activation, **settings)
    encoder.set_weights(converted.get_weights())
    config = ModelConfig(size="custom", num_layers=encoder.num_layers, hidden_dim=encoder.hidden_dim,
                         num_heads=encoder.num_heads, intermediate_dim=encoder.intermediate_dim,
                         max_sequence_length=encoder.max_sequence_length, dropout=encoder.dropout,
                         activation=activation, init_checkpoint=str(folder))
    return encoder, config


def load_hf_checkpoint(folder: str | Path, dropout: Optional[float] = None) -> tuple[BertEncoder, WordPieceTokenizer,
                                                                                      ModelConfig]:
    """Imports a local Hugging Face BERT checkpoint (no network) as `(encoder, tokenizer, resolved config)`.

    Weights are converted by keras-hub's Transformers converter; the activation and lower-casing follow the
    checkpoint's `config.json` and `tokenizer_config.json`.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: checkpoint folder not found")
    hf = json.loads(_hf_file(folder, "config.json").read_text(encoding="utf-8"))
    _hf_file(folder, "vocab.txt")
    if not (folder / "model.safetensors").is_file() and not (folder / "model.safetensors.index.json").is_file():
        _hf_file(folder, "model.safetensors")
    if hf.get("model_type", "bert") != "bert":
        raise ValueError(f"{folder}/config.json: model_type {hf.get('model_type')!r} is not a BERT checkpoint")
    activation = "gelu" if hf.get("hidden_act", "gelu") == "gelu" else "gelu_approximate"
    encoder, config = encoder_from_preset(folder, activation, dropout)
    return encoder, hf_tokenizer(folder), config


def hf_tokenizer(folder: str | Path) -> WordPieceTokenizer:
    """The tokenizer of a Hugging Face BERT folder: its `vocab.txt`, lower-cased as `tokenizer_config.json` says."""
    folder = Path(folder)
    lowercase = True
    tokenizer_config = folder / "tokenizer_config.json"
    if tokenizer_config.is_file():
        lowercase = json.loads(tokenizer_config.read_text(encoding="utf-8")).get("do_lower_case", True)
    return WordPieceTokenizer(_hf_file(folder, "vocab.txt"), lowercase=lowercase)


def encoder_inputs() -> dict[str, keras.KerasTensor]:
    """Symbolic model inputs with tfpipe's names (int32 `[batch, seq]`)."""
    return {name: keras.Input(shape=(None,), dtype="int32", name=name) for name in MODEL_INPUTS}


def encode(encoder: BertEncoder, inputs: dict) -> dict:
    """Runs the encoder on tfpipe-named inputs; returns `sequence_output` and `pooled_output`."""
    return encoder({"token_ids": inputs["input_word_ids"], "segment_ids": inputs["input_type_ids"],
                    "padding_mask": inputs["input_mask"]})


def pool(encoder: BertEncoder, inputs: dict, pooling: str = "cls"):
    """One vector per sequence: BERT's pooled `[CLS]` output (`"cls"`), or the mean of the sequence output over
    real tokens (`"mean"`, as sentence encoders do; it leans less on what pretraining taught `[CLS]`)."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling: {pooling!r} is not allowed; allowed values: {', '.join(POOLINGS)}")
    outputs = encode(encoder, inputs)
    if pooling == "cls":
        return outputs["pooled_output"]
    encoder.pooled_dense.trainable = False  # unused: no gradient reaches it (and Keras would warn each step)
    sequence = outputs["sequence_output"]
    mask = keras.ops.expand_dims(keras.ops.cast(inputs["input_mask"], sequence.dtype), -1)
    total = keras.ops.sum(sequence * mask, axis=1)
    return total / keras.ops.maximum(keras.ops.sum(mask, axis=1), keras.ops.cast(1, sequence.dtype))
