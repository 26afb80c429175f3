"""Resumable `fit`: a run killed at any step and restarted with the same command ends with the same number of
optimizer steps, on the same batches, as one that was never interrupted — and with the same best checkpoint and
early-stopping decision.

Keras's BackupAndRestore restores weights, optimizer state and the epoch, then restarts that epoch from its first
batch. Here the optimizer's step counter says exactly how far the run got: the data stream skips that many
batches, and an interrupted epoch is finished with only its remaining steps. Keras's monitoring callbacks start
each `fit` from nothing (the best value seen, early stopping's patience), so the logs of finished epochs are kept
beside the backup and replayed into them.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

EPOCH_LOGS = "epoch_logs.json"


def steps_done(model: keras.Model, backup_dir: Path) -> int:
    """Optimizer steps (batches, counting accumulation micro-steps) in the backup; 0 for a fresh run."""
    # Built here, not inside the first traced step: creating its variables there makes TensorFlow trace the
    # whole training step twice (~10 s for MiniLM).
    with model.distribute_strategy.scope():
        model.optimizer.build(model.trainable_variables)
    weights = Path(backup_dir) / "latest.weights.h5"
    if not weights.is_file():
        return 0
    model.load_weights(str(weights))
    return int(keras.ops.convert_to_numpy(model.optimizer._iterations))


class StopAtStep(keras.callbacks.Callback):
    """Ends `fit` once the optimizer has taken `steps` steps, inside an epoch if need be (with
    `steps_per_execution` k, at the end of the k-step execution that reaches it)."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps = steps

    def on_train_begin(self, logs=None) -> None:
        # Read the counter once and count batches after: reading it every step would sync the host each step.
        self._taken = int(keras.ops.convert_to_numpy(self.model.optimizer._iterations))

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self._last = -1

    def on_train_batch_end(self, batch, logs=None) -> None:
        self._taken += batch - self._last  # `batch` is the last batch index of the execution
        self._last = batch
        if self._taken >= self.steps:
            self.model.stop_training = True


class EpochMemory(keras.callbacks.Callback):
    """Writes each finished epoch's logs to `EPOCH_LOGS` in the backup folder and, at the start of every `fit`,
    replays those before `resumed_epoch` into the best-checkpoint and early-stopping callbacks. Goes after
    BackupAndRestore, whose idea of the epoch it overrides.

    Without it a restarted run's first validation always counts as the best (overwriting a better checkpoint) and
    early stopping's patience starts again, so a resumed run could train longer than an uninterrupted one. It goes
    after those callbacks too: EarlyStopping resets itself in its own `on_train_begin`.
    """

    def __init__(self, backup_dir: Path, resumed_epoch: int, callbacks: list) -> None:
        super().__init__()
        self.path = Path(backup_dir) / EPOCH_LOGS
        try:
            saved = json.loads(self.path.read_text()) if self.path.is_file() else {}
        except ValueError as error:  # replaced whole by this class: a hand edit, or a crash of the OS before a flush
            raise ValueError(f"{self.path}: not the JSON this run wrote ({error}); delete it to resume without "
                             "the earlier epochs' logs") from None
        # Epochs at or after the one resumed are run again; their old logs are dropped.
        self.epochs = {int(e): logs for e, logs in saved.items() if int(e) < resumed_epoch}
        self.monitors = [c for c in callbacks
                         if isinstance(c, keras.callbacks.EarlyStopping)
                         or (isinstance(c, keras.callbacks.ModelCheckpoint) and c.save_best_only)]

    def on_train_begin(self, logs=None) -> None:
        # BackupAndRestore has just set the epoch to resume from its metadata, which is one behind for a backup
        # taken on an epoch's last step (saved before that epoch's end): `fit` would run an extra epoch. The
        # epoch `fit_resumable` passes, from the optimizer's step count, is the right one.
        self.model._initial_epoch = None
        past = sorted(self.epochs.items())
        for callback in self.monitors:
            if callback.monitor_op is None:  # set lazily by Keras; setting it twice would flip min_delta twice
                callback._set_monitor_op()
            if isinstance(callback, keras.callbacks.EarlyStopping):
                for epoch, epoch_logs in past:  # its own rule, epoch by epoch: best, wait, best_epoch
                    callback.on_epoch_end(epoch, epoch_logs)
                # The weights it took now are not that epoch's; with restore_best_weights the first epoch after
                # the restart counts as the best one's weights (a known limit: keep ModelCheckpoint for the best).
                callback.best_weights = None
            else:
                for _, epoch_logs in past:
                    value = epoch_logs.get(callback.monitor)
                    if value is not None and callback._is_improvement(value, callback.best):
                        callback.best = value

    def on_epoch_end(self, epoch, logs=None) -> None:
        self.epochs[epoch] = {k: float(v) for k, v in (logs or {}).items() if np.ndim(v) == 0}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(f".{os.getpid()}.tmp")  # workers of a pretraining run share the folder
        partial.write_text(json.dumps({str(e): v for e, v in sorted(self.epochs.items())}))
        partial.replace(self.path)  # a kill mid-write leaves the previous file whole

    def history(self) -> dict[str, list]:
        """Every epoch of the run, before and after a restart, as `History.history` lays it out."""
        merged: dict[str, list] = {}
        for _, epoch_logs in sorted(self.epochs.items()):
            for key, value in epoch_logs.items():
                merged.setdefault(key, []).append(value)
        return merged


def fit_resumable(
    model: keras.Model, train: tf.data.Dataset, steps_per_epoch: int, epochs: int, backup_dir: Path,
    total_steps: Optional[int] = None, **fit_kwargs
) -> dict[str, list]:
    """`model.fit` over an endless `train` stream for `epochs × steps_per_epoch` batches, resuming a backup.

    `total_steps` (at most that product) ends the run there instead: the last epoch is cut short, as when
    pretraining's step count is not a multiple of its logging interval. Returns the history of every epoch of
    the run, those before a restart included.
    """
    callbacks = list(fit_kwargs.pop("callbacks", []))
    if total_steps is not None:
        callbacks.append(StopAtStep(total_steps))
    done = steps_done(model, backup_dir)
    epoch, into = divmod(done, steps_per_epoch)
    memory = EpochMemory(backup_dir, epoch, callbacks)
    callbacks.append(memory)
    backup = next((c for c in callbacks if isinstance(c, keras.callbacks.BackupAndRestore)), None)

    def run(first_epoch: int, steps: int, last_epoch: int) -> None:
        model.fit(train.skip(done), epochs=last_epoch, initial_epoch=first_epoch, steps_per_epoch=steps,
                  shuffle=False, callbacks=callbacks, **fit_kwargs)

    if into:  # finish the interrupted epoch with its remaining batches only
        delete = backup is not None and backup.delete_checkpoint
        if backup is not None:
            backup.delete_checkpoint = False  # the second fit must not start without a backup
        try:
            run(epoch, steps_per_epoch - into, epoch + 1)
        finally:
            if backup is not None:
                backup.delete_checkpoint = delete
        done += steps_per_epoch - into
        epoch += 1
        if backup is not None:
            if epoch < epochs and not model.stop_training:
                # Back up the state at the seam: a kill before the next fit's first backup resumes here, and that
                # fit's restore is this very state, not the last step-based backup, a few steps stale.
                backup._save_model()
            elif delete:
                shutil.rmtree(backup_dir, ignore_errors=True)
    if epoch < epochs and not model.stop_training:
        run(epoch, steps_per_epoch, epochs)
    return memory.history()
