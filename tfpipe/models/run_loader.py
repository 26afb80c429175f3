"""Rebuilding a fine-tuned model from its run directory (config.yaml, vocab.txt, labels.txt, model.weights.h5).

Lives with the models, not with training, so that export can load a run without importing the training stage.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import keras

from tfpipe.config import Config, load_config
from tfpipe.config.tasks import get_task
from tfpipe.models.backbone import BertEncoder, build_encoder
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
    """The registered task's model over `encoder`; an unknown task name is an error listing the known ones."""
    return get_task(task).build_model(encoder, labels, dropout, pooling)


@contextlib.contextmanager
def float32_policy() -> Iterator[None]:
    """Builds models in float32 inside the block; the global Keras dtype policy is restored afterwards."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def load_run(run: str | Path, weights: str = "model.weights.h5") -> LoadedRun:
    """Rebuilds a fine-tuned model from its run directory and loads its weights, in float32 (whatever the global
    Keras dtype policy is: it is left as it was)."""
    run = Path(run)
    for name in ("config.yaml", "vocab.txt", weights):
        if not (run / name).is_file():
            raise FileNotFoundError(f"{run / name}: missing; is {run} the output directory of `tfpipe finetune`?")
    config = load_config(Config, run / "config.yaml")
    tokenizer = WordPieceTokenizer(run / "vocab.txt", config.tokenizer.lowercase)
    task = get_task(config.task)
    labels = LabelVocab.load(run / "labels.txt") if task.uses_labels else None
    # Inference weights and outputs in float32, without changing the policy of the rest of the process.
    with float32_policy():
        model = task.build_model(build_encoder(config.model, tokenizer.vocabulary_size), labels, 0.0,
                                 config.model.pooling)
    model.load_weights(str(run / weights))
    return LoadedRun(config, tokenizer, labels, model)
