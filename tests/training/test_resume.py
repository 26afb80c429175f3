"""A run killed with SIGKILL and restarted with the same command finishes with the same number of optimizer steps;
`total_steps` ends a run inside its last epoch, fresh or resumed."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import keras
import tensorflow as tf

from tests.training.conftest import TINY_MODEL, write_sentiment_tsv
from tests.training.test_options import make_batch, make_model
from tfpipe.config.schemas import TrainingConfig
from tfpipe.training.optimizers import build_optimizer
from tfpipe.training.resume import fit_resumable


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
    deadline = time.time() + 120
    while not metadata.exists() and first.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert metadata.exists(), "the first run never wrote a backup"
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


def _fit_to(total: int, backup, epochs: int) -> tuple[keras.Model, dict]:
    model = make_model()
    model.compile(optimizer=build_optimizer(TrainingConfig(), total),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), run_eagerly=True)
    x, y = make_batch(4)
    train = tf.data.Dataset.from_tensors((x, y)).repeat()
    # A backup every 2 steps, kept at the end: the state a run killed right after its last step would leave.
    keep = keras.callbacks.BackupAndRestore(str(backup), save_freq=2, delete_checkpoint=False)
    history = fit_resumable(model, train, steps_per_epoch=4, epochs=epochs, backup_dir=backup, total_steps=total,
                            callbacks=[keep], verbose=0)
    return model, history


def test_total_steps_cuts_the_last_epoch_short_and_resumes_inside_it(tmp_path):
    # Pretraining's --steps need not be a multiple of its logging interval: 10 steps at 4 a epoch are 4 + 4 + 2.
    model, history = _fit_to(10, tmp_path / "fresh", epochs=3)
    assert int(model.optimizer.iterations.numpy()) == 10 and len(history["loss"]) == 3
    # A run backed up after 6 steps (inside its second epoch) and restarted for 10 finishes that epoch's 2 steps,
    # then 2 of the third: it ends at 10, not 12, and reruns nothing.
    _fit_to(6, tmp_path / "resumed", epochs=2)
    model, history = _fit_to(10, tmp_path / "resumed", epochs=3)
    assert int(model.optimizer.iterations.numpy()) == 10
    assert len(history["loss"]) == 2
