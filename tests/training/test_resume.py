"""A run killed with SIGKILL and restarted with the same command finishes with the same number of optimizer steps;
`total_steps` ends a run inside its last epoch, fresh or resumed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.training.conftest import TINY_MODEL, kill_once_written, write_sentiment_tsv
from tests.training.test_options import make_batch, make_model
from tfpipe.config.schemas import TrainingConfig
from tfpipe.training.optimizers import build_optimizer
from tfpipe.training.resume import EpochEndBackup, EpochMemory, fit_resumable


def test_sigkill_then_restart_finishes_with_the_same_steps(tmp_path, vocab_file):
    train = write_sentiment_tsv(tmp_path / "train.tsv", 400)
    run = tmp_path / "run"
    command = [sys.executable, "-m", "tfpipe.cli.main", "finetune", "--task", "classification", "--train",
               str(train), "--text-column", "sentence", "--label-column", "label", "--vocab", str(vocab_file),
               "--output-dir", str(run), "--epochs", "2", "--batch-size", "4",
               "--set", "training.checkpoint_every_steps=10", *[a for a in TINY_MODEL if a != "--quiet"]]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    metadata = run / "backup" / "training_metadata.json"
    assert kill_once_written(metadata, [first]), "the first run never wrote a backup"
    assert not (run / "metrics.json").exists()  # killed before the end
    saved = json.loads(metadata.read_text())

    second = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["training"]["optimizer_steps"] == 2 * 100  # 400 rows / batch 4, 2 epochs
    # The restart resumed: it ran only what was left (an interrupted epoch shows fewer than 100 steps).
    steps = [int(m) for m in re.findall(r"^(\d+)/\1 - ", second.stdout, re.M)]
    assert 0 < sum(steps) < 200
    assert saved["epoch"] * 100 + saved["batch"] <= 200 - sum(steps)  # at least the last backup was skipped


def _tiny_model_and_stream(total_steps: int) -> tuple[keras.Model, tf.data.Dataset]:
    """The tiny classifier, compiled eagerly for `total_steps` of schedule, and an endless stream of one batch."""
    model = make_model()
    model.compile(optimizer=build_optimizer(TrainingConfig(), total_steps),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), run_eagerly=True)
    x, y = make_batch(4)
    return model, tf.data.Dataset.from_tensors((x, y)).repeat()


def _fit_to(total: int, backup, epochs: int, backup_class=keras.callbacks.BackupAndRestore,
            delete: bool = False) -> tuple[keras.Model, dict, int]:
    model, train = _tiny_model_and_stream(total)
    # A backup every 2 steps, by default kept at the end: the state a run killed right after its last step leaves.
    keep = backup_class(str(backup), save_freq=2, delete_checkpoint=delete)
    count = CountSteps()
    history = fit_resumable(model, train, steps_per_epoch=4, epochs=epochs, backup_dir=backup, total_steps=total,
                            callbacks=[keep, count], verbose=0)
    return model, history, count.steps


def test_total_steps_cuts_the_last_epoch_short_and_resumes_inside_it(tmp_path):
    # Pretraining's --steps need not be a multiple of its logging interval: 10 steps at 4 a epoch are 4 + 4 + 2.
    model, history, _ = _fit_to(10, tmp_path / "fresh", epochs=3)
    assert int(model.optimizer.iterations.numpy()) == 10 and len(history["loss"]) == 3
    # A run backed up after 6 steps (inside its second epoch) and restarted for 10 finishes that epoch's 2 steps,
    # then 2 of the third: it ends at 10, not 12, and reruns nothing.
    _fit_to(6, tmp_path / "resumed", epochs=2)
    model, history, ran = _fit_to(10, tmp_path / "resumed", epochs=3)
    assert int(model.optimizer.iterations.numpy()) == 10 and ran == 4
    assert len(history["loss"]) == 3  # the first epoch's from before the restart, then the two it ran


class Killed(Exception):
    pass


class KillAtStep(keras.callbacks.Callback):
    """Raises after the optimizer's `step`-th step (counted over restarts): no `on_train_end`, so backups stay as
    a SIGKILL leaves them."""

    def __init__(self, step: int) -> None:
        super().__init__()
        self.step = step

    def on_train_begin(self, logs=None) -> None:
        self._taken = int(self.model.optimizer.iterations.numpy())

    def on_train_batch_end(self, batch, logs=None) -> None:
        self._taken += 1
        if self._taken == self.step:
            raise Killed(self.step)


class KillInEpoch(keras.callbacks.Callback):
    """Raises during the validation of epoch `epoch` (0-based), at its end (after the callbacks before this), or
    at the run's end (`at="train_end"`, as the first callback: before the backup is deleted)."""

    def __init__(self, epoch: int, at: str) -> None:
        super().__init__()
        self.epoch, self.at, self._current = epoch, at, -1

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self._current = epoch

    def on_test_batch_end(self, batch, logs=None) -> None:
        if self.at == "validation" and self._current == self.epoch:
            raise Killed(f"validation of epoch {self.epoch}")

    def on_epoch_end(self, epoch, logs=None) -> None:
        if self.at == "epoch_end" and epoch == self.epoch:
            raise Killed(f"end of epoch {epoch}")

    def on_train_end(self, logs=None) -> None:
        if self.at == "train_end":
            raise Killed("end of the run")


class CountSteps(keras.callbacks.Callback):
    """Batches run by this process, over all its `fit` calls."""

    def __init__(self) -> None:
        super().__init__()
        self.steps = 0

    def on_train_batch_end(self, batch, logs=None) -> None:
        self.steps += 1


def _run(folder, epochs: int, save_freq: int, kill_at: int | None = None, patience: int = 0,
         kill_in_epoch: tuple[int, str] | None = None, total: int | None = None, backup_class=EpochEndBackup):
    """Fits the same tiny model from the same initial weights, 4 steps an epoch (validated on one batch), with
    tfpipe's backup, optionally killed at a step or inside an epoch's end; the run keeps its best checkpoint
    on the (training) loss and may stop early on it."""
    keras.utils.set_random_seed(0)
    model, train = _tiny_model_and_stream(4 * epochs)
    # Maximising the loss: the best epoch is an early one, so a restart that forgot it would overwrite it.
    best = keras.callbacks.ModelCheckpoint(str(folder / "best.weights.h5"), monitor="loss", mode="max",
                                           save_best_only=True, save_weights_only=True)
    count = CountSteps()
    folder.mkdir(parents=True, exist_ok=True)
    log = keras.callbacks.CSVLogger(str(folder / "history.csv"), append=True)
    callbacks = [backup_class(str(folder / "backup"), save_freq=save_freq, delete_checkpoint=True), best, count,
                 log]
    if patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="loss", mode="max", patience=patience))
    if kill_at:
        callbacks.append(KillAtStep(kill_at))
    if kill_in_epoch is not None:
        kill = KillInEpoch(*kill_in_epoch)
        callbacks.insert(0, kill) if kill.at == "train_end" else callbacks.append(kill)
    try:
        history = fit_resumable(model, train, steps_per_epoch=4, epochs=epochs, backup_dir=folder / "backup",
                                total_steps=total, callbacks=callbacks, validation_data=train.take(1), verbose=0)
    except Killed:
        return None
    return model, history, best.best, count.steps


def test_a_kill_right_after_finishing_an_interrupted_epoch_resumes_there_not_from_step_0(tmp_path):
    assert _run(tmp_path, 3, save_freq=3, kill_at=5) is None  # backed up at step 3, inside the first epoch
    # The restart finishes epoch 1 (step 4), then is killed at step 5, before the next step-based backup (6).
    assert _run(tmp_path, 3, save_freq=3, kill_at=5) is None
    model, history, _, ran = _run(tmp_path, 3, save_freq=3)
    assert int(model.optimizer.iterations.numpy()) == 12
    assert ran == 8  # from the end of the first epoch, not from step 0
    assert len(history["loss"]) == 3  # the history covers the epochs before the restarts
    assert not (tmp_path / "backup").exists()  # deleted at the end, as BackupAndRestore does


def test_a_keras_backup_on_an_epochs_last_step_resumes_at_the_next_epoch(tmp_path):
    # Backed up at step 8, the last of epoch 2: Keras's BackupAndRestore metadata still says epoch 2 (it saves
    # before the epoch ends), which would make the restart run epochs 2 and 3 again from step 8 — 16 steps, not 12.
    # (tfpipe's EpochEndBackup writes that backup after the epoch's end, so its metadata is right.)
    backup_class = keras.callbacks.BackupAndRestore
    assert _run(tmp_path, 3, save_freq=4, kill_at=9, backup_class=backup_class) is None
    model, history, _, ran = _run(tmp_path, 3, save_freq=4, backup_class=backup_class)
    assert int(model.optimizer.iterations.numpy()) == 12 and ran == 4
    assert len(history["loss"]) == 3


@pytest.mark.parametrize("save_freq,at", [(4, "validation"), ("epoch", "epoch_end")],
                         ids=["in-validation-after-a-step-backup-on-the-last-step", "after-an-epoch-backup"])
def test_a_kill_while_an_epoch_ends_reruns_that_epoch_instead_of_skipping_it(tmp_path, save_freq, at):
    # Keras writes a step backup on an epoch's last step before its validation, and an epoch backup before the
    # callbacks after it have seen the epoch: a restart from either skipped that epoch's validation and logs.
    assert _run(tmp_path, 3, save_freq=save_freq, kill_in_epoch=(1, at)) is None
    model, history, _, ran = _run(tmp_path, 3, save_freq=save_freq)
    assert int(model.optimizer.iterations.numpy()) == 12
    assert ran == 8  # epoch 1 again (from the backup at its start), then epoch 2
    assert len(history["val_loss"]) == 3  # every epoch validated and kept
    # The CSV log has each epoch once: a row written before the kill is dropped, not doubled by the rerun.
    rows = (tmp_path / "history.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows] == ["epoch", "0", "1", "2"]


def test_a_kill_while_a_cut_short_run_validates_its_last_step_reruns_that_step(tmp_path):
    # 6 steps at 4 an epoch: the backup on step 6 (the run's last) waits for the validation after it.
    assert _run(tmp_path, 2, save_freq=2, total=6, kill_in_epoch=(1, "validation")) is None
    model, history, _, ran = _run(tmp_path, 2, save_freq=2, total=6)
    assert int(model.optimizer.iterations.numpy()) == 6 and ran == 2
    assert len(history["val_loss"]) == 2


def test_a_restart_after_early_stopping_ended_the_run_runs_no_more_steps(tmp_path):
    # Step backups every 5 steps, not on the stopping epoch's end: that epoch is backed up all the same.
    model, history, best, _ = _run(tmp_path / "whole", 6, save_freq=5, patience=2)
    steps = int(model.optimizer.iterations.numpy())
    assert steps < 24 and steps % 5, "the run must stop early, off the backup interval, to mean anything"
    # Killed after early stopping's last epoch, before the backup was deleted; restarted with the same command.
    assert _run(tmp_path / "killed", 6, save_freq=5, patience=2, kill_in_epoch=(0, "train_end")) is None
    assert (tmp_path / "killed" / "backup").exists()
    model, resumed_history, resumed_best, ran = _run(tmp_path / "killed", 6, save_freq=5, patience=2)
    assert ran == 0 and int(model.optimizer.iterations.numpy()) == steps
    assert resumed_history["loss"] == pytest.approx(history["loss"], abs=1e-6)
    assert resumed_best == pytest.approx(best, abs=1e-6)
    assert not (tmp_path / "killed" / "backup").exists()


def test_a_restart_after_the_last_step_was_backed_up_runs_no_more_steps(tmp_path):
    # Killed after the final backup but before it was deleted (`on_train_end`): nothing is left to run.
    _fit_to(6, tmp_path / "backup", epochs=2, backup_class=EpochEndBackup)
    model, history, ran = _fit_to(6, tmp_path / "backup", epochs=2, backup_class=EpochEndBackup, delete=True)
    assert int(model.optimizer.iterations.numpy()) == 6 and ran == 0
    assert len(history["loss"]) == 2  # the run's two epochs, from before the restart
    assert not (tmp_path / "backup").exists()  # and the backup goes, as at a run's end


@pytest.mark.parametrize("kill_at,save_freq", [(9, 4), (10, 3)], ids=["at-an-epoch-start", "inside-an-epoch"])
def test_best_checkpoint_and_early_stopping_survive_a_restart(tmp_path, kill_at, save_freq):
    model, history, best, _ = _run(tmp_path / "whole", 6, save_freq, patience=2)
    steps = int(model.optimizer.iterations.numpy())
    assert steps < 24, "the uninterrupted run must stop early for this test to mean anything"
    assert kill_at < steps

    assert _run(tmp_path / "killed", 6, save_freq, kill_at=kill_at, patience=2) is None
    model, resumed_history, resumed_best, _ = _run(tmp_path / "killed", 6, save_freq, patience=2)
    assert int(model.optimizer.iterations.numpy()) == steps  # early stopping kept its patience
    assert not (tmp_path / "killed" / "backup").exists()  # deleted at the end, stopped inside the resumed epoch too
    assert resumed_best == pytest.approx(best, abs=1e-6)
    # Every epoch is in the history; an interrupted epoch's training loss averages only the batches run after the
    # restart, so only the epochs before it are compared.
    assert len(resumed_history["loss"]) == len(history["loss"])
    assert resumed_history["loss"][:2] == pytest.approx(history["loss"][:2], abs=1e-6)
    # The best checkpoint is the uninterrupted run's, not the first epoch after the restart.
    whole, killed = make_model(), make_model()
    whole.load_weights(str(tmp_path / "whole" / "best.weights.h5"))
    killed.load_weights(str(tmp_path / "killed" / "best.weights.h5"))
    for a, b in zip(whole.weights, killed.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)


def test_a_damaged_epoch_log_is_a_clear_error_naming_it(tmp_path):
    (tmp_path / "epoch_logs.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"epoch_logs\.json: not the JSON this run wrote"):
        EpochMemory(tmp_path, 1, [])
