"""Rebuilding a fine-tuned model from its run directory (config.yaml, vocab.txt, labels.txt, model.weights.h5).

Lives with the models, not with training, so that export can load a run without importing the training stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import keras

from tfpipe.config import Config, load_config
from tfpipe.models.backbone import BertEncoder, build_encoder
from tfpipe.models.classifier import SequenceClassifier
from tfpipe.models.regressor import SequenceRegressor
from tfpipe.models.tagger import TokenTagger
from tfpipe.models.task import TaskModel
from tfpipe.text.labels import LabelVocab
from tfpipe.text.tokenizer import WordPieceTokenizer


@dataclass
class LoadedRun:
    config: Config
    tokenizer: WordPieceTokenizer
    labels: Optional[LabelVocab]
    model: TaskModel


def build_head(task: str, encoder: BertEncoder, labels: Optional[LabelVocab], dropout: float,
               pooling: str = "cls") -> TaskModel:
    if task == "classification":
        return SequenceClassifier(encoder, len(labels), dropout, pooling)
    if task == "regression":
        return SequenceRegressor(encoder, dropout, pooling)
    return TokenTagger(encoder, len(labels), dropout)


def load_run(run: str | Path, weights: str = "model.weights.h5") -> LoadedRun:
    """Rebuilds a fine-tuned model from its run directory and loads its weights, in float32."""
    run = Path(run)
    for name in ("config.yaml", "vocab.txt", weights):
        if not (run / name).is_file():
            raise FileNotFoundError(f"{run / name}: missing; is {run} the output directory of `tfpipe finetune`?")
    config = load_config(Config, run / "config.yaml")
    tokenizer = WordPieceTokenizer(run / "vocab.txt", config.tokenizer.lowercase)
    labels = LabelVocab.load(run / "labels.txt") if config.task != "regression" else None
    keras.mixed_precision.set_global_policy("float32")  # inference weights and outputs in float32
    model = build_head(config.task, build_encoder(config.model, tokenizer.vocabulary_size), labels, 0.0,
                       config.model.pooling)
    model.load_weights(str(run / weights))
    return LoadedRun(config, tokenizer, labels, model)
