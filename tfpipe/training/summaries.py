"""TensorBoard beyond Keras' callback, in RUN/logs: the run's config and final metrics (HParams dashboard), the
model graph, tables of sample predictions and worst errors per evaluation (Text), [CLS] embeddings (Projector).

Keras' `TensorBoard` callback writes the epoch scalars to logs/train and logs/validation; this module's writer owns
logs/ itself, which is the run's HParams session, and each evaluation writes logs/eval/<data-file-stem>.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path
from typing import Any, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf
from tensorboard.plugins import projector
from tensorboard.plugins.hparams import api as hp
from tensorboard.plugins.hparams import api_pb2
from tensorboard.plugins.hparams import summary as hparams_summary

from tfpipe.config import Config
from tfpipe.config.atomic import write_text_atomic
from tfpipe.config.tasks import get_task
from tfpipe.data.pipelines import finetune_dataset
from tfpipe.models.backbone import encode
from tfpipe.text.tokenizer import WordPieceTokenizer

HPARAM_SECTIONS = ("model", "tokenizer", "pipeline", "training")  # what shapes a model; readers and spaCy don't
NOT_FINAL_METRICS = ("num_examples", "num_sentences", "num_entities", "optimizer_steps")
EMBEDDING = "embedding"  # the checkpointed projector variable
METADATA = "metadata.tsv"
TABLE_ROWS = 10


def tensorboard_command(logdir: str | Path) -> str:
    """The command line that opens `logdir` in TensorBoard.

    Examples:
    >>> tensorboard_command("runs/sst2 large/logs")
    "tensorboard --logdir 'runs/sst2 large/logs'"
    """
    return f"tensorboard --logdir {shlex.quote(str(logdir))}"


def config_hparams(config: Config, **data: Optional[str | Path]) -> dict[str, bool | int | float | str]:
    """The run's config as HParams values, `section.key` (lists as comma-separated text), plus `data.<role>` for
    the files it read. Unset (None) values are left out: a hyperparameter keeps one type across compared runs."""
    values: dict[str, Any] = {"task": config.task}
    for section in HPARAM_SECTIONS:
        for key, value in dataclasses.asdict(getattr(config, section)).items():
            if isinstance(value, (list, tuple)):
                value = ",".join(str(v) for v in value)
            if isinstance(value, (bool, int, float, str)):
                values[f"{section}.{key}"] = value
    values.update({f"data.{role}": str(path) for role, path in data.items() if path is not None})
    return values


def final_scalars(metrics: dict) -> dict[str, float]:
    """The top-level numbers of a metrics dict (not counts, nested tables or undefined values)."""
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and k not in NOT_FINAL_METRICS
            and np.isfinite(v)}


def _inference_graph(model, input_spec) -> tf.Graph:
    # The inference call traced once: what the Graphs dashboard draws (Keras 3 writes no op graph of its own).
    return tf.function(lambda features: model(features, training=False)).get_concrete_function(input_spec).graph


class RunLog:
    """The run's own writer at RUN/logs: one HParams session per run, begun with the config (and the model graph)
    when training starts, ended with the final metrics (`final/<name>` scalars) when it is done."""

    def __init__(self, logs_dir: str | Path) -> None:
        self.logs_dir = Path(logs_dir)
        self._writer = tf.summary.create_file_writer(str(self.logs_dir))

    def start(self, hparams: dict, model: Optional[keras.Model] = None, input_spec: Any = None) -> None:
        """The session's start (`hparams`, e.g. from `config_hparams`) and, given a model and its features'
        `tf.TensorSpec`s, its inference graph."""
        with self._writer.as_default():
            hp.hparams(hparams)  # trial id: a hash of the values, so repeats of one config group together
            if model is not None:
                tf.summary.graph(_inference_graph(model, input_spec))
        self._writer.flush()

    def finish(self, metrics: dict, step: int) -> None:
        """The numbers in `metrics` as `final/<name>` at `step`, then the session's end (status success)."""
        with self._writer.as_default():
            for name, value in sorted(final_scalars(metrics).items()):
                tf.summary.scalar(f"final/{name}", value, step=step)
            # The hparams API writes session ends only from its Keras callback, which lasts one `fit`; a resumed
            # run fits twice, so the end is written here, as that callback writes it.
            end = hparams_summary.session_end_pb(api_pb2.STATUS_SUCCESS)
            tf.summary.experimental.write_raw_pb(end.SerializeToString(), step=step)
        self._writer.close()


def run_step(run_dir: str | Path) -> int:
    """The optimizer steps a finished run recorded in metrics.json (0 when unknown): the step of its evaluations."""
    try:
        return int(json.loads((Path(run_dir) / "metrics.json").read_text(encoding="utf-8"))["training"]
                   ["optimizer_steps"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


# --- Text: predictions and worst errors -----------------------------------------------------------------------

def _flat(value: Any, width: int = 160) -> str:
    """One line of at most `width` characters (tabs and newlines would break a TSV row or a table row)."""
    text = " ".join(str(value).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _cell(value: Any) -> str:
    return _flat(value).replace("|", "\\|")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table, as TensorBoard's Text dashboard renders it (cells on one line, `|` escaped).

    Examples:
    >>> print(markdown_table(["text", "label"], [["a | b", "pos"]]))
    | text | label |
    |---|---|
    | a \\| b | pos |
    """
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows])


def prediction_tables(task: str, records: Sequence[Any], predicted: dict, labels: Any, gold_known: bool,
                      rows: int = TABLE_ROWS) -> dict[str, str]:
    """`predictions/samples` (the first `rows` records) and, with gold labels, `predictions/worst_errors`, as the
    task draws them (the most confident wrong classes, the largest regression errors, the most wrong tags...)."""
    return get_task(task).prediction_tables(records, predicted, labels, gold_known, rows)


def write_text(logdir: str | Path, tables: dict[str, str], step: int) -> None:
    """Markdown `tables` as text summaries in `logdir` (one TensorBoard run)."""
    writer = tf.summary.create_file_writer(str(logdir))
    with writer.as_default():
        for tag, markdown in tables.items():
            tf.summary.text(tag, markdown, step=step)
    writer.close()


# --- Projector: [CLS] embeddings ------------------------------------------------------------------------------

def cls_embeddings(encoder, tokenizer: WordPieceTokenizer, config: Config,
                   records: Sequence[Any]) -> np.ndarray:
    """The encoder's last-layer [CLS] vector of each record, in order (a tagging sentence: its words as text)."""
    texts = get_task(config.task).as_texts(records)
    # No buckets: they regroup examples, and the vectors must line up with the metadata rows.
    pipeline = dataclasses.replace(config.pipeline, cache=False, bucket_boundaries=[])
    ds = finetune_dataset(texts, tokenizer, "classification", None, pipeline)
    first = tf.function(lambda features: encode(encoder, features)["sequence_output"][:, 0, :],
                        input_signature=[ds.element_spec])
    return np.concatenate([np.asarray(first(features), np.float32) for features in ds])


def write_projector(logs_dir: str | Path, vectors: np.ndarray, records: Sequence[Any], task: str) -> Path:
    """`vectors` as a checkpointed variable, `metadata.tsv` (label, text per row: the task's `projector_label` and
    `as_texts`) and `projector_config.pbtxt` in `logs_dir`, where TensorBoard's Projector finds them."""
    logs_dir = Path(logs_dir)
    logs_dir.mkdir(parents=True, exist_ok=True)
    spec = get_task(task)
    rows = ["label\ttext"] + [f"{_flat(spec.projector_label(r), 80)}\t{_flat(t.text)}"
                              for r, t in zip(records, spec.as_texts(records))]
    write_text_atomic(logs_dir / METADATA, "\n".join(rows) + "\n")
    tf.train.Checkpoint(**{EMBEDDING: tf.Variable(vectors, name=EMBEDDING)}).save(str(logs_dir / "embedding.ckpt"))
    config = projector.ProjectorConfig()
    embedding = config.embeddings.add()
    embedding.tensor_name = f"{EMBEDDING}/.ATTRIBUTES/VARIABLE_VALUE"
    embedding.metadata_path = METADATA  # relative to the logs dir, so a moved run still finds it
    projector.visualize_embeddings(str(logs_dir), config)
    return logs_dir / "projector_config.pbtxt"
