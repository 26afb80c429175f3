"""MultiWorkerMirroredStrategy with two worker processes on 127.0.0.1: both end with identical weights."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import h5py
import numpy as np

from tests.training.conftest import TINY_MODEL, write_sentiment_tsv


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _weights(path) -> dict[str, np.ndarray]:
    found = {}
    with h5py.File(path, "r") as handle:
        handle.visititems(lambda name, item: found.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset)
                          else None)
    return found


def test_two_workers_end_with_identical_weights(tmp_path, vocab_file):
    train = write_sentiment_tsv(tmp_path / "train.tsv", 64)
    run = tmp_path / "run"
    workers = [f"127.0.0.1:{_free_port()}" for _ in range(2)]
    command = [sys.executable, "-m", "tfpipe.cli.main", "finetune", "--task", "classification", "--train",
               str(train), "--text-column", "sentence", "--label-column", "label", "--vocab", str(vocab_file),
               "--output-dir", str(run), "--epochs", "2", "--batch-size", "8", "--max-seq-length", "32",
               "--set", "training.strategy=multi_worker", *TINY_MODEL]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "TF_CPP_MIN_LOG_LEVEL": "3"}
        processes.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                          env=env))
    outputs = [p.communicate(timeout=300) for p in processes]
    for process, (_, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-3000:]
    chief, other = _weights(run / "model.weights.h5"), _weights(run / "worker-1" / "model.weights.h5")
    assert chief.keys() == other.keys() and len(chief) > 10
    for name in chief:
        np.testing.assert_array_equal(chief[name], other[name], err_msg=name)
    initial = json.loads((run / "metrics.json").read_text())["training"]
    assert initial["optimizer_steps"] == 2 * 8  # 64 rows / global batch 8
