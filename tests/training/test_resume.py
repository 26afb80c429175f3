"""A run killed with SIGKILL and restarted with the same command finishes with the same number of optimizer steps."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

from tests.training.conftest import TINY_MODEL, write_sentiment_tsv


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
