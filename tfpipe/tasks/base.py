"""`Task`: everything one task declares to the stages, in one class per task module.

A stage never asks "which task is this?"; it calls the registered task object (`tfpipe.config.tasks.get_task`):

| stage | asks the task |
|---|---|
| text (readers, inspect) | `formats_by_suffix`, `read`, `describe`, `as_texts` |
| labels | `labels_from_records`, `closed_labels`, `uses_labels` |
| data | `prepare`, `dataset` |
| models | `build_model`, `owns`, `export_labels` |
| training | `compile_args`, `class_weights`, `monitor` |
| evaluation | `predict`, `prediction_rows`, `score`, `prediction_tables` |
| export and serving | `endpoints`, `input_names`, `truncation`, `score_outputs` (conversion checks) |

Task modules import TensorFlow, Keras and the stages' building blocks inside the methods that use them, so that
listing the tasks (config validation, `--help`) and the server's SavedModel path stay light.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Iterator, Mapping, Optional, Sequence

from tfpipe.config.schemas import ReaderConfig


def record_line(records: Sequence[Any], index: int) -> int:
    """The line a record came from, for tables: its file line, else its 1-based position."""
    return records[index].line or index + 1


class Task:
    """Base class of tfpipe's tasks. Subclass it in one module, set `name`, override what differs, and register
    an instance with `tfpipe.config.tasks.register_task`.

    Class attributes:
        name: the `--task` / `task:` name.
        description: one line for `--help` and error messages.
        formats_by_suffix: file extensions this task reads in a format of its own (`{".txt": "conll"}`).
        monitor: the validation metric that picks the best checkpoint, and whether higher is better.
        uses_labels: whether the task has a label vocabulary (`labels.txt`); regression and QA have none.
        convertible: whether `tfpipe convert` can convert its encoder (the signatures take text and pairs).
        input_names: the raw-text inputs of its `serving_default`: the text and, for pairs, the second text.
        pairs_always: whether every example has both inputs (question and context), whatever the data's columns.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    formats_by_suffix: ClassVar[Mapping[str, str]] = {}
    monitor: ClassVar[tuple[str, str]] = ("val_accuracy", "max")
    uses_labels: ClassVar[bool] = True
    convertible: ClassVar[bool] = True
    input_names: ClassVar[tuple[str, str]] = ("text", "text_pair")
    pairs_always: ClassVar[bool] = False

    def __repr__(self) -> str:
        return f"<task {self.name!r}: {type(self).__module__}.{type(self).__qualname__}>"

    # --- text: reading and inspecting -------------------------------------------------------------------------

    def read(self, path: str | Path, config: ReaderConfig, fmt: str, labels: Optional[set[str]], log: Any,
             lang: str) -> Iterator[Any]:
        """The validated records of `path` in format `fmt`; bad ones go to `log` (a `readers.ErrorLog`)."""
        raise NotImplementedError

    def describe(self, records: Sequence[Any]) -> dict:
        """Task-specific figures for `tfpipe inspect-data` (label distribution, entity counts, ...)."""
        return {}

    def as_texts(self, records: Sequence[Any]) -> list[Any]:
        """The records as unlabelled `Record`s (text, and pair where there is one): for length statistics,
        duplicates, the projector and raw-text prediction."""
        raise NotImplementedError

    def projector_label(self, record: Any) -> str:
        """The label column of TensorBoard's projector metadata for one record."""
        label = getattr(record, "label", None)
        return "" if label is None else str(label)

    # --- labels -----------------------------------------------------------------------------------------------

    def labels_from_records(self, records: Sequence[Any]) -> Any:
        """The label vocabulary learned from the training records (`LabelVocab`), or None."""
        if not self.uses_labels:
            return None
        from tfpipe.text.labels import LabelVocab

        return LabelVocab.from_records(records)

    def closed_labels(self, labels: Any) -> Optional[set[str]]:
        """What a validation file's labels are checked against, given the training vocabulary."""
        return set(labels.labels) if labels is not None else None

    # --- data -------------------------------------------------------------------------------------------------

    def prepare(self, records: Sequence[Any], tokenizer: Any, max_seq_length: int) -> list[Any]:
        """Records as the model takes them (token classification cuts long sentences into windows)."""
        return list(records)

    def examples_per_epoch(self, records: Sequence[Any], tokenizer: Any, config: Any) -> int:
        """How many model examples one pass over `records` gives (QA: windows), for the steps in an epoch."""
        return len(records)

    def dataset(self, records: Sequence[Any], tokenizer: Any, labels: Any, config: Any, training: bool = False,
                repeat: bool = False, fixed_length: bool = False) -> Any:
        """`tf.data` batches for Keras `fit`/`evaluate` (`config`: `PipelineConfig`)."""
        raise NotImplementedError

    # --- models -----------------------------------------------------------------------------------------------

    def build_model(self, encoder: Any, labels: Any, dropout: float, pooling: str = "cls") -> Any:
        """The Keras task model (a `tfpipe.models.task.TaskModel`) over `encoder`."""
        raise NotImplementedError

    def owns(self, model: Any) -> bool:
        """Whether `model` is this task's head (how `tfpipe.export(model, ...)` finds the task)."""
        return False

    def export_labels(self, model: Any, labels: Any) -> Any:
        """The labels an in-memory model is exported with (`labels` as given, or a default), checked against the
        head's size."""
        return labels

    # --- training ---------------------------------------------------------------------------------------------

    def compile_args(self, labels: Any, training: Any) -> dict:
        """`loss`, `metrics` and `weighted_metrics` for `model.compile` (`training`: `TrainingConfig`)."""
        raise NotImplementedError

    def class_weights(self, records: Sequence[Any], labels: Any, training: Any) -> Optional[dict]:
        """Keras `class_weight` for `training.class_weights`, or None where the task has no classes."""
        return None

    # --- evaluation -------------------------------------------------------------------------------------------

    def predict(self, model: Any, tokenizer: Any, labels: Any, config: Any, records: Sequence[Any]) -> dict:
        """Predictions for `records` in input order (`config`: the run's `Config`)."""
        raise NotImplementedError

    def has_gold(self, records: Sequence[Any]) -> bool:
        """Whether every record carries its gold answer (only then are metrics computed)."""
        raise NotImplementedError

    def prediction_rows(self, records: Sequence[Any], predicted: dict, labels: Any) -> Iterator[dict]:
        """One predictions.jsonl row per record."""
        raise NotImplementedError

    def score(self, records: Sequence[Any], predicted: dict, labels: Any, output_dir: Path) -> dict:
        """The metrics of `predicted` against the gold records (plots go under `output_dir`)."""
        raise NotImplementedError

    def prediction_tables(self, records: Sequence[Any], predicted: dict, labels: Any, gold_known: bool,
                          rows: int) -> dict[str, str]:
        """TensorBoard text tables: `predictions/samples` and, with gold labels, `predictions/worst_errors`."""
        return {}

    # --- export -----------------------------------------------------------------------------------------------

    def endpoints(self, functions: Any) -> dict:
        """Signature name → (function, input signature, TF Serving method name), `serving_default` first, built
        from the building blocks of `functions` (a `tfpipe.export.signatures.SignatureFunctions`)."""
        raise NotImplementedError

    def truncation(self) -> str:
        """How an export treats inputs longer than its sequence length, in words (recorded in its metadata)."""
        return ("inputs are trimmed to max_seq_length word pieces with [CLS]/[SEP]; for pairs the longer segment "
                "loses its last pieces first (as in training)")

    def score_outputs(self, outputs: dict, records: Sequence[Any]) -> tuple[str, float]:
        """`(metric, value)` of `serving_default` outputs over labelled records (conversion accuracy checks);
        the metric's name ends in `error` where lower is better."""
        raise NotImplementedError
