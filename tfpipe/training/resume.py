"""Resumable `fit`: a run killed at any step and restarted with the same command ends with the same number of
optimizer steps, on the same batches, as one that was never interrupted — and with the same best checkpoint and
early-stopping decision.

Keras's BackupAndRestore restores weights, optimizer state and the epoch, then restarts that epoch from its first
batch. Here the optimizer's step counter says exactly how far the run got: the data stream skips that many
batches, and an interrupted epoch is finished with only its remaining steps. Keras's monitoring callbacks start
each `fit` from nothing (the best value seen, early stopping's patience), so the logs of finished epochs are kept
beside the backup and replayed into them. A backup that would say an epoch is done (the epoch's last step, or
the end of an epoch) waits until that epoch's validation and logs are done too.

Under a multi-worker strategy only the chief writes the backup, and every worker restores from it (as tf.keras's
multi-worker BackupAndRestore did): the workers' weights are the same, so one copy is the truth, and workers with
copies of their own could restart from different steps — and wait for each other forever. They check that they
agree before the first step.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Optional

import h5py
import keras
import numpy as np
import tensorflow as tf

from tfpipe.config.atomic import copy_file_atomic, write_text_atomic
from tfpipe.models import keras_compat
from tfpipe.training.strategies import gather_across_workers

EPOCH_LOGS = "epoch_logs.json"
STOPPED = "stopped_after_epoch"  # in EPOCH_LOGS: the run ended after that epoch (early stopping, `total_steps`)


def steps_done(model: keras.Model, backup_dir: Path) -> int:
    """Optimizer steps (batches, counting accumulation micro-steps) in the backup; 0 for a fresh run."""
    # Built here, not inside the first traced step: creating its variables there makes TensorFlow trace the
    # whole training step twice (~10 s for MiniLM).
    with model.distribute_strategy.scope():
        model.optimizer.build(model.trainable_variables)
    weights = keras_compat.backup_files(backup_dir)[0]
    if not weights.is_file():
        return 0
    model.load_weights(str(weights))
    return keras_compat.optimizer_steps(model.optimizer)


def _weights_whole(path: Path) -> bool:
    datasets = 0

    def read(_: str, item: object) -> None:
        nonlocal datasets
        if isinstance(item, h5py.Dataset):
            item[()]  # a kill mid-write can leave a dataset's data, or the file's end, unwritten
            datasets += 1

    try:
        with h5py.File(path, "r") as handle:
            handle.visititems(read)
    except Exception:  # h5py raises OSError, KeyError, RuntimeError... for a damaged file
        return False
    return datasets > 0


def _metadata_whole(path: Path) -> bool:
    try:
        return "epoch" in json.loads(path.read_text())
    except (OSError, ValueError, TypeError):  # TypeError: JSON that is not an object
        return False


def repair_torn_backup(backup: keras.callbacks.BackupAndRestore) -> Optional[str]:
    """Makes a backup a kill left half-written loadable again; returns the line it printed, None if it was whole.

    Keras writes the weights, then the metadata, in place: a kill meanwhile leaves one torn, and its restore falls
    back to the previous pair (`double_checkpoint`) only on an OSError, not on torn JSON. A torn file is replaced by
    the whole previous pair; without one, torn metadata is dropped (the weights hold the optimizer's step count,
    all `fit_resumable` resumes from) and torn weights take the metadata with them: the run starts over.
    """
    weights, metadata, previous_weights, previous_metadata = keras_compat.backup_files(backup)
    torn_weights = weights.exists() and not _weights_whole(weights)
    torn_metadata = metadata.exists() and not _metadata_whole(metadata)
    if not (torn_weights or torn_metadata):
        return None
    torn = weights if torn_weights else metadata
    if _weights_whole(previous_weights) and _metadata_whole(previous_metadata):
        # Copied whole or not at all: a kill during the repair leaves no new torn file (it is redone next time).
        copy_file_atomic(previous_weights, weights)
        copy_file_atomic(previous_metadata, metadata)
        line = f"{torn}: torn by a kill while the backup was written; resuming from the previous backup " \
               f"({previous_weights.name}, {previous_metadata.name})"
    else:
        if torn_weights:
            weights.unlink()
        metadata.unlink(missing_ok=True)  # torn, or the epoch of weights that are gone
        then = f"resuming from {weights.name}" if weights.is_file() else \
            "the run starts from its beginning (nothing whole to resume)"
        line = f"{torn}: torn by a kill while the backup was written, and no whole previous backup; removed it: {then}"
    print(line, file=sys.stderr)
    return line


class StopAtStep(keras.callbacks.Callback):
    """Ends `fit` once the optimizer has taken `steps` steps, inside an epoch if need be (with
    `steps_per_execution` k, at the end of the k-step execution that reaches it)."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps = steps

    def on_train_begin(self, logs=None) -> None:
        # Read the counter once and count batches after: reading it every step would sync the host each step.
        self._taken = keras_compat.optimizer_steps(self.model.optimizer)

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self._last = -1

    def on_train_batch_end(self, batch, logs=None) -> None:
        self._taken += batch - self._last  # `batch` is the last batch index of the execution
        self._last = batch
        if self._taken >= self.steps:
            self.model.stop_training = True


class EpochEndBackup(keras.callbacks.BackupAndRestore):
    """BackupAndRestore whose backups that finish an epoch are written only once the epoch's logs are kept.

    Keras saves a step-based backup that falls on an epoch's last step before that epoch's validation, and an
    epoch backup before the callbacks after it have seen the epoch: a kill in between resumed at the next epoch,
    so the killed epoch was never validated, checkpointed or counted by early stopping. `EpochMemory` writes such
    a backup right after the epoch's logs; without one, this callback writes it at its own `on_epoch_end`.

    With `writer=False` (multi-worker runs, on every worker but the chief) it neither writes nor deletes
    `backup_dir`, and leaves restoring to `fit_resumable`, which reads the chief's backup before `fit`.
    """

    def __init__(self, *args, writer: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.writer = writer
        if not writer:
            self.delete_checkpoint = False
        self._pending = False
        self.flushed_by_memory = False  # set by the `EpochMemory` of the same fit

    def on_train_begin(self, logs=None) -> None:
        if self.writer:  # a reader's restore here could race the chief's backup at a `fit_resumable` seam
            super().on_train_begin(logs)

    def save_backup(self) -> None:
        """Writes the backup now (on the chief; a reader writes nothing)."""
        if self.writer:
            keras_compat.save_backup(self)

    def on_train_batch_end(self, batch, logs=None) -> None:
        if keras_compat.backup_due(self, batch):
            # Last step of the epoch, or of the run (`StopAtStep` goes first, so the flag is already set).
            if batch + 1 >= (self.params or {}).get("steps", float("inf")) or self.model.stop_training:
                self._pending = True
            else:
                self.save_backup()

    def on_epoch_end(self, epoch, logs=None) -> None:
        keras_compat.backup_epoch_ended(self, epoch)  # as BackupAndRestore, whose own save here is deferred
        self._pending = self._pending or self.save_freq == "epoch"
        if not self.flushed_by_memory:
            self.save_pending()

    def save_pending(self, force: bool = False) -> None:
        """Writes the deferred backup, if any (or `force`d)."""
        if self._pending or force:
            self._pending = False
            self.save_backup()


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
        # Epochs at or after the one resumed are run again; their old logs (and a stop after one) are dropped.
        self.epochs = {int(e): logs for e, logs in saved.items() if e.isdigit() and int(e) < resumed_epoch}
        stopped = saved.get(STOPPED)
        self.stopped_after: Optional[int] = stopped if stopped is not None and stopped < resumed_epoch else None
        self.monitors = [c for c in callbacks
                         if isinstance(c, keras.callbacks.EarlyStopping)
                         or (isinstance(c, keras.callbacks.ModelCheckpoint) and c.save_best_only)]
        self.backups = [c for c in callbacks if isinstance(c, EpochEndBackup)]
        self.writer = all(backup.writer for backup in self.backups)  # the chief's logs, read by every worker

    def on_train_begin(self, logs=None) -> None:
        # BackupAndRestore has just set the epoch to resume from its metadata, which is one behind for a backup
        # taken on an epoch's last step (saved before that epoch's end): `fit` would run an extra epoch. The
        # epoch `fit_resumable` passes, from the optimizer's step count, is the right one.
        keras_compat.clear_restored_epoch(self.model)
        for backup in self.backups:
            backup.flushed_by_memory = True
        self.replay()

    def on_train_end(self, logs=None) -> None:
        for backup in self.backups:  # a later fit without this memory saves its backups itself
            backup.flushed_by_memory = False

    def replay(self) -> None:
        """The earlier epochs' logs into the best-checkpoint and early-stopping callbacks (their models set)."""
        past = sorted(self.epochs.items())
        for callback in self.monitors:
            keras_compat.ensure_monitor_op(callback)
            if isinstance(callback, keras.callbacks.EarlyStopping):
                for epoch, epoch_logs in past:  # its own rule, epoch by epoch: best, wait, best_epoch
                    callback.on_epoch_end(epoch, epoch_logs)
                # The weights it took now are not that epoch's; with restore_best_weights the first epoch after
                # the restart counts as the best one's weights (a known limit: keep ModelCheckpoint for the best).
                callback.best_weights = None
            else:
                for _, epoch_logs in past:
                    value = epoch_logs.get(callback.monitor)
                    if value is not None and keras_compat.is_improvement(callback, value, callback.best):
                        callback.best = value

    def on_epoch_end(self, epoch, logs=None) -> None:
        self.epochs[epoch] = {k: float(v) for k, v in (logs or {}).items() if np.ndim(v) == 0}
        if self.model.stop_training:  # early stopping (which goes before) or the last step: the run is over
            self.stopped_after = epoch
        if self.writer:
            self._write()
        for backup in self.backups:  # only now may a backup say this epoch is done
            # The run's last epoch is always backed up: a kill before the backup's deletion restarts into nothing.
            backup.save_pending(force=self.model.stop_training)

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        saved: dict = {str(e): v for e, v in sorted(self.epochs.items())}
        if self.stopped_after is not None:
            saved[STOPPED] = self.stopped_after
        _replace_whole(self.path, json.dumps(saved))

    def history(self) -> dict[str, list]:
        """Every epoch of the run, before and after a restart, as `History.history` lays it out."""
        merged: dict[str, list] = {}
        for _, epoch_logs in sorted(self.epochs.items()):
            for key, value in epoch_logs.items():
                merged.setdefault(key, []).append(value)
        return merged


def _replace_whole(path: Path, text: str) -> None:
    """Writes `text` as `path` so that a kill mid-write leaves the previous file whole (line ends as given)."""
    write_text_atomic(path, text, newline="")


def _drop_rows_to_rerun(callbacks: list, first_epoch: int) -> None:
    """Drops a CSV log's rows for the epochs a restart runs again: logged before a kill that came before their
    backup, they would be written twice (`CSVLogger(append=True)` adds the rerun's)."""
    for log in (c for c in callbacks if isinstance(c, keras.callbacks.CSVLogger) and c.append):
        path = Path(log.filename)
        if not path.is_file():
            continue
        with path.open(newline="", encoding="utf-8") as handle:  # kept byte for byte, line ends included
            lines = handle.read().splitlines(keepends=True)
        kept = lines[:1] + [line for line in lines[1:]
                            if not (first := line.split(log.sep, 1)[0]).isdigit() or int(first) < first_epoch]
        if len(kept) < len(lines):
            _replace_whole(path, "".join(kept))


def _check_workers_agree(strategy: tf.distribute.Strategy, done: int, backup_dir: Path) -> None:
    steps = gather_across_workers(strategy, done)
    if len(set(steps)) > 1:
        found = ", ".join(f"worker {i}: {n}" for i, n in enumerate(steps))
        raise RuntimeError(
            f"the workers would resume from different optimizer steps ({found}): every worker restores from the "
            f"chief's backup {backup_dir}, so the run directory must be on storage that all workers read and see "
            "the same (a shared filesystem, GCS); on such storage, restart all workers with the same command")


def fit_resumable(
    model: keras.Model, train: tf.data.Dataset, steps_per_epoch: int, epochs: int, backup_dir: Path,
    total_steps: Optional[int] = None, **fit_kwargs
) -> dict[str, list]:
    """`model.fit` over an endless `train` stream for `epochs × steps_per_epoch` batches, resuming a backup.

    `total_steps` (at most that product) ends the run there instead: the last epoch is cut short, as when
    pretraining's step count is not a multiple of its logging interval. Returns the history of every epoch of
    the run, those before a restart included. With an `EpochEndBackup` (not a plain BackupAndRestore), a kill
    during an epoch's validation reruns that epoch rather than skipping its validation.
    """
    callbacks = list(fit_kwargs.pop("callbacks", []))
    if total_steps is not None:
        # First, so a backup on the run's last step sees the stop; it reads the step count the backup restored,
        # as `steps_done` has loaded it before `fit`.
        callbacks.insert(0, StopAtStep(total_steps))
    backup = next((c for c in callbacks if isinstance(c, keras.callbacks.BackupAndRestore)), None)
    if backup is not None and (not isinstance(backup, EpochEndBackup) or backup.writer):  # readers only read
        repair_torn_backup(backup)
    # A barrier (nothing in one process): no worker reads the backup before the chief has repaired it.
    gather_across_workers(model.distribute_strategy, 0)
    done = steps_done(model, backup_dir)
    epoch, into = divmod(done, steps_per_epoch)
    at_the_end = done >= (total_steps or epochs * steps_per_epoch)  # a last epoch cut short is done too
    memory = EpochMemory(backup_dir, epoch + int(at_the_end and into > 0), callbacks)
    # Also a barrier: no worker deletes the backup below before every worker has read it.
    _check_workers_agree(model.distribute_strategy, done, backup_dir)
    if at_the_end or memory.stopped_after is not None:
        # Killed after the run's last backup, before `on_train_end` deleted it: a `fit` would take one more step
        # (Keras clears `stop_training` at its start). The callbacks still get the run's best value.
        for callback in memory.monitors:
            callback.set_model(model)
        memory.replay()
        if backup is not None and backup.delete_checkpoint:
            shutil.rmtree(backup_dir, ignore_errors=True)
        return memory.history()
    if done:
        _drop_rows_to_rerun(callbacks, epoch)
    callbacks.append(memory)

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
                if isinstance(backup, EpochEndBackup):
                    backup.save_backup()  # nothing on a reader
                else:
                    keras_compat.save_backup(backup)
            elif delete:
                shutil.rmtree(backup_dir, ignore_errors=True)
    if epoch < epochs and not model.stop_training:
        run(epoch, steps_per_epoch, epochs)
    return memory.history()
