"""Keras callbacks for every run: TensorBoard (learning rate, examples/s, the profiler on request), best checkpoint
on the validation metric, BackupAndRestore, EarlyStopping and a CSV log, laid out in the run directory."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import keras
import tensorflow as tf

from tfpipe.config.schemas import TrainingConfig, profile_range
from tfpipe.training.resume import EpochEndBackup


class LearningRateLogger(keras.callbacks.Callback):
    """Adds the optimizer's current learning rate to the epoch logs, for TensorBoard and the CSV log."""

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


class ExamplesPerSecond(keras.callbacks.Callback):
    """Training throughput, `epoch_examples_per_second` beside Keras' epoch scalars in `log_dir`: the examples of
    the batches after an epoch's first, over the time from its end to the last one's, so that tracing and
    compiling in the first step do not count (a one-step epoch is timed from the epoch's start). Written to its own
    event file, not into the logs, which the CSV log and a resumed run's replay would keep."""

    def __init__(self, log_dir: str | Path, batch_size: int) -> None:
        super().__init__()
        self.log_dir, self.batch_size = str(log_dir), batch_size
        self._writer = None

    def on_train_begin(self, logs=None) -> None:
        self._writer = tf.summary.create_file_writer(self.log_dir)

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self._start, self._first, self._last = time.perf_counter(), None, None

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        # `batch` is the last batch index of the step (several with steps_per_execution).
        self._last = (batch, time.perf_counter())
        self._first = self._first or self._last

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if self._last is None:
            return
        (first, started), (last, ended) = self._first, self._last
        batches, seconds = (last - first, ended - started) if last > first else (last + 1, ended - self._start)
        if seconds > 0:
            with self._writer.as_default():
                tf.summary.scalar("epoch_examples_per_second", batches * self.batch_size / seconds, step=epoch)

    def on_train_end(self, logs=None) -> None:
        self._writer.close()


def build_callbacks(
    run_dir: Path, config: TrainingConfig, monitor: Optional[str], mode: str = "max", chief: bool = True,
    batch_size: Optional[int] = None,
) -> list[keras.callbacks.Callback]:
    """The callbacks of a fit; workers other than the chief write nothing (they restore from the chief's backup).
    `batch_size` (global) turns on the examples/s scalar."""
    save_freq = config.checkpoint_every_steps or "epoch"
    callbacks: list[keras.callbacks.Callback] = [
        EpochEndBackup(str(run_dir / "backup"), save_freq=save_freq, delete_checkpoint=True, writer=chief),
        LearningRateLogger(),
    ]
    if monitor and config.early_stopping_patience:
        # On every worker: they see the same all-reduced validation metrics, so they stop together (a chief
        # stopping alone leaves the others waiting in an all-reduce).
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, mode=mode,
                                                       patience=config.early_stopping_patience))
    if not chief:
        return callbacks
    if monitor:
        (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        callbacks.append(keras.callbacks.ModelCheckpoint(
            str(run_dir / "checkpoints" / "best.weights.h5"), monitor=monitor, mode=mode, save_best_only=True,
            save_weights_only=True))
    # Keras' callback adds the learning rate to the epoch scalars and, with `profile_batch`, writes a profiler trace
    # to logs/train/plugins/profile (its graph covers plain Functional models only: `RunLog` writes ours).
    callbacks.append(keras.callbacks.TensorBoard(str(run_dir / "logs"), update_freq="epoch",
                                                 profile_batch=profile_range(config.profile) or 0))
    if batch_size:
        callbacks.append(ExamplesPerSecond(run_dir / "logs" / "train", batch_size))
    callbacks.append(keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True))
    return callbacks
