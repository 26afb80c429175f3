"""Run directories: what a training run writes and how a later step (evaluate, fine-tune from a pretraining run,
export) loads the model back from it.

Layout: config.yaml, vocab.txt, labels.txt, model.weights.h5 (final, best on validation when monitored),
encoder.weights.h5, checkpoints/, backup/, logs/ (TensorBoard), history.csv, metrics.json, plots/*.png.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import keras

from tfpipe.config import Config, load_config
from tfpipe.config.schemas import ModelConfig
from tfpipe.data.labels import LabelVocab
from tfpipe.models.backbone import (
    BertEncoder,
    build_encoder,
    encoder_from_preset,
    load_hf_checkpoint,
    resolve_dimensions,
)
from tfpipe.models.classifier import SequenceClassifier
from tfpipe.models.regressor import SequenceRegressor
from tfpipe.models.tagger import TokenTagger
from tfpipe.models.task import TaskModel
from tfpipe.text.tokenizer import WordPieceTokenizer


@dataclass
class LoadedRun:
    config: Config
    tokenizer: WordPieceTokenizer
    labels: Optional[LabelVocab]
    model: TaskModel


def build_head(task: str, encoder: BertEncoder, labels: Optional[LabelVocab], dropout: float) -> TaskModel:
    if task == "classification":
        return SequenceClassifier(encoder, len(labels), dropout)
    if task == "regression":
        return SequenceRegressor(encoder, dropout)
    return TokenTagger(encoder, len(labels), dropout)


def _keras_hub_preset(folder: Path) -> tuple[BertEncoder, WordPieceTokenizer, ModelConfig]:
    """A keras-hub preset folder (config.json with a keras class name, model.weights.h5, assets/tokenizer)."""
    encoder, config = encoder_from_preset(folder, "gelu_approximate")  # keras-hub BERT's own activation
    vocab = folder / "assets" / "tokenizer" / "vocabulary.txt"
    lowercase = True
    tokenizer_json = folder / "tokenizer.json"
    if tokenizer_json.is_file():
        lowercase = json.loads(tokenizer_json.read_text()).get("config", {}).get("lowercase", True)
    return encoder, WordPieceTokenizer(vocab, lowercase), config


def load_checkpoint(folder: str | Path) -> tuple[BertEncoder, WordPieceTokenizer, ModelConfig]:
    """A Hugging Face BERT folder or a keras-hub preset folder, told apart by their config.json."""
    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path}: missing; --init-checkpoint takes a Hugging Face BERT folder "
                                "(config.json, model.safetensors, vocab.txt) or a keras-hub preset folder")
    if "class_name" in json.loads(config_path.read_text(encoding="utf-8")):
        return _keras_hub_preset(folder)
    return load_hf_checkpoint(folder)


def load_pretrained_run(run: str | Path) -> tuple[BertEncoder, WordPieceTokenizer, ModelConfig]:
    """The encoder trained by `tfpipe pretrain` in `run` (config.yaml, vocab.txt, encoder.weights.h5)."""
    run = Path(run)
    weights = run / "encoder.weights.h5"
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: missing; is {run} the output directory of `tfpipe pretrain`?")
    config = load_config(Config, run / "config.yaml")
    tokenizer = WordPieceTokenizer(run / "vocab.txt", config.tokenizer.lowercase)
    encoder = build_encoder(config.model, tokenizer.vocabulary_size)
    encoder.load_weights(str(weights))
    model = resolve_dimensions(config.model)
    return encoder, tokenizer, model


def save_run_files(run: Path, config: Config, tokenizer: WordPieceTokenizer, labels: Optional[LabelVocab]) -> None:
    from tfpipe.config import save_config
    from tfpipe.text.vocab import write_vocabulary

    run.mkdir(parents=True, exist_ok=True)
    save_config(config, run)
    write_vocabulary(tokenizer.vocabulary, run / "vocab.txt")
    if labels is not None:
        labels.save(run / "labels.txt")


def load_run(run: str | Path, weights: str = "model.weights.h5") -> LoadedRun:
    """Rebuilds a fine-tuned model from its run directory and loads its weights."""
    run = Path(run)
    for name in ("config.yaml", "vocab.txt", weights):
        if not (run / name).is_file():
            raise FileNotFoundError(f"{run / name}: missing; is {run} the output directory of `tfpipe finetune`?")
    config = load_config(Config, run / "config.yaml")
    tokenizer = WordPieceTokenizer(run / "vocab.txt", config.tokenizer.lowercase)
    labels = LabelVocab.load(run / "labels.txt") if config.task != "regression" else None
    keras.mixed_precision.set_global_policy("float32")  # inference weights and outputs in float32
    model = build_head(config.task, build_encoder(config.model, tokenizer.vocabulary_size), labels, 0.0)
    model.load_weights(str(run / weights))
    return LoadedRun(config, tokenizer, labels, model)
