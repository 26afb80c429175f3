"""The one place tfpipe touches Keras and keras-hub internals. Each use below names the public API it lacks, and
importing this module checks that every one still exists: a Keras that moved one fails here, loudly, instead of
training silently wrong. setup.cfg pins the Keras minor they were checked against (`TESTED_KERAS`).
"""

from __future__ import annotations

import importlib
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

import keras
import keras_hub
import tensorflow as tf

TESTED_KERAS = "3.15"  # setup.cfg: keras>=3.15,<3.16


class KerasInternalsError(ImportError):
    """A Keras (or keras-hub) internal tfpipe relies on is missing from the installed version."""


@dataclass(frozen=True)
class Internal:
    """`owner.name`: a private attribute tfpipe uses, and the public API whose absence makes it necessary."""

    owner: str  # dotted path of a module or a class
    name: str
    missing: str
    instance: bool = False  # set on instances (in __init__, build or compile): looked for in the owner's source
    parameters: tuple[str, ...] = ()  # of a method tfpipe overrides or calls by keyword


INTERNALS = (
    Internal("keras.Model", "_maybe_symbolic_build", "no public hook to build a distributed model from one "
             "replica's batch (Keras averages a first batch across replicas, which fails for dict inputs)",
             parameters=("iterator", "data_batch")),
    Internal("keras.Model", "_distribute_strategy", "`distribute_strategy` falls back to the default strategy, "
             "so it cannot say whether the model was built under one", instance=True),
    Internal("keras.Model", "_loss_tracker", "a custom train_step cannot reach the `loss` metric that Keras's "
             "own steps update", instance=True),
    Internal("keras.src.losses.loss", "unscale_loss_for_distribution", "no public inverse of the per-replica "
             "scaling `compute_loss` applies"),
    Internal("keras.Model", "_initial_epoch", "no public way to undo the epoch BackupAndRestore restores over "
             "fit's `initial_epoch`", instance=True),
    Internal("keras.callbacks.BackupAndRestore", "_save_model", "no public 'back up now'"),
    Internal("keras.callbacks.BackupAndRestore", "_should_save_on_batch", "no public view of its step schedule"),
    Internal("keras.callbacks.BackupAndRestore", "_current_epoch", "no public way to set the epoch a backup "
             "records", instance=True),
    Internal("keras.callbacks.BackupAndRestore", "_last_batch_seen", "no public way to reset its step schedule "
             "at an epoch's end", instance=True),
    Internal("keras.callbacks.BackupAndRestore", "_weights_path", "no public view of the backup's file names",
             instance=True),
    Internal("keras.callbacks.BackupAndRestore", "_training_metadata_path", "no public view of the backup's file "
             "names", instance=True),
    Internal("keras.callbacks.BackupAndRestore", "_prev_weights_path", "no public view of the backup's file names",
             instance=True),
    Internal("keras.callbacks.BackupAndRestore", "_prev_training_metadata_path", "no public view of the backup's "
             "file names", instance=True),
    Internal("keras.callbacks.EarlyStopping", "_set_monitor_op", "monitor_op is set lazily, on a first epoch"),
    Internal("keras.callbacks.EarlyStopping", "_is_improvement", "no public 'is this value better than best'"),
    Internal("keras.callbacks.ModelCheckpoint", "_set_monitor_op", "monitor_op is set lazily, on a first epoch"),
    Internal("keras.callbacks.ModelCheckpoint", "_is_improvement", "no public 'is this value better than best'"),
    Internal("keras.optimizers.Optimizer", "_iterations", "`iterations` counts updates (divided by "
             "gradient_accumulation_steps), not the batches a resumed run must skip", instance=True),
    Internal("keras_hub.layers.TransformerEncoder", "_feedforward_intermediate_dense", "BertBackbone fixes the "
             "feed-forward activation to approximate GELU; exact GELU (as Hugging Face BERT) needs its Dense",
             instance=True),
)


def _versions() -> str:
    return f"Keras {keras.version()}, keras-hub {keras_hub.__version__}"


def _message(names: Iterable[str]) -> str:
    return (f"tfpipe relies on Keras internals that this installation ({_versions()}) lacks: {', '.join(names)}. "
            f"tfpipe is tested with Keras {TESTED_KERAS} (setup.cfg pins keras>={TESTED_KERAS},<3.16): install "
            "that, or update tfpipe/models/keras_compat.py")


def _resolve(dotted: str) -> Optional[Any]:
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for part in parts[split:]:
            found = getattr(found, part, None)
        return found
    return None


def _in_source(owner: type, name: str) -> bool:
    # The source files of the class and its Keras bases (whole files: parsing out each class is slow).
    for cls in inspect.getmro(owner):
        if cls.__module__.split(".")[0] in ("keras", "keras_hub"):
            try:
                if f"self.{name}" in inspect.getsource(sys.modules[cls.__module__]):
                    return True
            except (OSError, TypeError, KeyError):
                continue
    return False


def resolves(internal: Internal) -> bool:
    """Whether the installed Keras still has `internal` (with the parameters tfpipe passes)."""
    owner = _resolve(internal.owner)
    if owner is None:
        return False
    if internal.instance:
        return inspect.isclass(owner) and _in_source(owner, internal.name)
    found = getattr(owner, internal.name, None)
    if found is None:
        return False
    return all(p in inspect.signature(found).parameters for p in internal.parameters)


def check_internals(internals: Iterable[Internal] = INTERNALS) -> None:
    """Raises `KerasInternalsError` naming the installed versions and every internal that is missing."""
    missing = [f"{i.owner}.{i.name} ({i.missing})" for i in internals if not resolves(i)]
    if missing:
        raise KerasInternalsError(_message(missing))


def _get(obj: Any, name: str) -> Any:
    try:
        return getattr(obj, name)
    except AttributeError:
        raise KerasInternalsError(_message([f"{type(obj).__name__}.{name}"])) from None


check_internals()


# === Models ===
class ReplicaBatchBuildModel(keras.Model):
    """A `keras.Model` that, under a strategy, builds from one replica's first batch (the shapes are the same):
    Keras averages the batch across replicas just to learn its shapes, which fails for dict inputs under
    MultiWorkerMirroredStrategy."""

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if iterator is not None and data_batch is None and _get(self, "_distribute_strategy"):
            strategy = self.distribute_strategy
            for _, _, it in iterator:
                batch = next(it)
                data_batch = tf.nest.map_structure(
                    lambda v: strategy.experimental_local_results(v)[0]
                    if isinstance(v, tf.distribute.DistributedValues) else v, batch)
                break
            iterator = None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)


def loss_tracker(model: keras.Model) -> keras.metrics.Mean:
    """The `loss` metric of a compiled model, which a custom train_step updates as Keras's own does."""
    return _get(model, "_loss_tracker")


def unscale_loss_for_distribution(loss: Any) -> Any:
    """The loss before `compute_loss` divided it by the number of replicas (for logging)."""
    return _get(importlib.import_module("keras.src.losses.loss"), "unscale_loss_for_distribution")(loss)


def set_feedforward_activation(layer: keras.layers.Layer, activation: Any) -> None:
    """Sets a keras-hub TransformerEncoder's feed-forward activation (after it is built)."""
    _get(layer, "_feedforward_intermediate_dense").activation = activation


# === Training ===
def optimizer_steps(optimizer: keras.optimizers.Optimizer) -> int:
    """Batches the optimizer has taken, counting gradient-accumulation micro-steps."""
    # A LossScaleOptimizer (mixed_float16) never counts its own steps: its inner optimizer does.
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    counter = _get(inner, "_iterations") if inner.gradient_accumulation_steps else inner.iterations
    return int(keras.ops.convert_to_numpy(counter))


def clear_restored_epoch(model: keras.Model) -> None:
    """Drops the epoch BackupAndRestore restored, so `fit` starts at the `initial_epoch` it is given."""
    _get(model, "_initial_epoch")
    model._initial_epoch = None


def ensure_monitor_op(callback: keras.callbacks.Callback) -> None:
    """Sets an EarlyStopping's or ModelCheckpoint's comparison (mode, min_delta) before its first epoch."""
    if callback.monitor_op is None:  # set lazily by Keras; setting it twice would flip min_delta twice
        _get(callback, "_set_monitor_op")()


def is_improvement(callback: keras.callbacks.Callback, value: float, reference: Optional[float]) -> bool:
    """Whether `value` beats `reference` by the rule of an EarlyStopping or ModelCheckpoint."""
    ensure_monitor_op(callback)
    return bool(_get(callback, "_is_improvement")(value, reference))


def save_backup(backup: keras.callbacks.BackupAndRestore) -> None:
    """Writes a BackupAndRestore's backup now (weights, optimizer state and the epoch it records)."""
    _get(backup, "_save_model")()


def backup_files(backup: keras.callbacks.BackupAndRestore | str | Path) -> tuple[Path, Path, Path, Path]:
    """A BackupAndRestore's files (or those of one backing up to the folder `backup`): the weights, the training
    metadata, and the previous copies of both that `double_checkpoint` keeps."""
    if not isinstance(backup, keras.callbacks.BackupAndRestore):
        backup = keras.callbacks.BackupAndRestore(str(backup))  # names its files, touches none
    return (Path(_get(backup, "_weights_path")), Path(_get(backup, "_training_metadata_path")),
            Path(_get(backup, "_prev_weights_path")), Path(_get(backup, "_prev_training_metadata_path")))


def backup_due(backup: keras.callbacks.BackupAndRestore, batch: int) -> bool:
    """Whether a step-based BackupAndRestore would back up after `batch` (advances its count, as Keras does)."""
    return bool(_get(backup, "_should_save_on_batch")(batch))


def backup_epoch_ended(backup: keras.callbacks.BackupAndRestore, epoch: int) -> None:
    """Records `epoch` as finished in a BackupAndRestore, as its own `on_epoch_end` does before saving."""
    _get(backup, "_current_epoch")
    backup._current_epoch = epoch + 1
    backup._last_batch_seen = 0
