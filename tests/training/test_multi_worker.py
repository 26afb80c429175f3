"""MultiWorkerMirroredStrategy with two worker processes on 127.0.0.1: both end with identical weights, stop early
together, and pretrain from fewer shard files than workers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import h5py
import numpy as np

from tests.training.conftest import TINY_MODEL, write_pretraining_data, write_sentiment_tsv


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


def _two_workers(*args: str, watch: tuple = ()) -> tuple[list[dict], set]:
    """`tfpipe ARGS` run by two worker processes; returns what each printed last (its metrics, as JSON) and
    which of the `watch` paths existed at some point while they ran."""
    workers = [f"127.0.0.1:{_free_port()}" for _ in range(2)]
    command = [sys.executable, "-m", "tfpipe.cli.main", *args, "--set", "training.strategy=multi_worker", *TINY_MODEL]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "TF_CPP_MIN_LOG_LEVEL": "3"}
        processes.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                          env=env))
    seen: set = set()
    done = threading.Event()

    def look() -> None:
        while not done.is_set():
            seen.update(path for path in watch if path.exists())
            time.sleep(0.002)

    watcher = threading.Thread(target=look, daemon=True)
    watcher.start()
    try:
        outputs = [p.communicate(timeout=300) for p in processes]
    finally:
        done.set()
        for process in processes:
            process.kill()
    for process, (_, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-3000:]
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs], seen


def _finetune(tmp_path, vocab_file, epochs: int, *extra: str) -> list[dict]:
    train = write_sentiment_tsv(tmp_path / "train.tsv", 64)
    return [metrics["training"] for metrics in _two_workers(
        "finetune", "--task", "classification", "--train", str(train), "--text-column", "sentence", "--label-column",
        "label", "--vocab", str(vocab_file), "--output-dir", str(tmp_path / "run"), "--epochs", str(epochs),
        "--batch-size", "8", "--max-seq-length", "32", *extra)[0]]


def test_two_workers_end_with_identical_weights(tmp_path, vocab_file):
    chief, other = _finetune(tmp_path, vocab_file, 2)
    assert chief["optimizer_steps"] == other["optimizer_steps"] == 2 * 8  # 64 rows / global batch 8
    run = tmp_path / "run"
    chief, other = _weights(run / "model.weights.h5"), _weights(run / "worker-1" / "model.weights.h5")
    assert chief.keys() == other.keys() and len(chief) > 10
    for name in chief:
        np.testing.assert_array_equal(chief[name], other[name], err_msg=name)


def test_two_workers_stop_early_together(tmp_path, vocab_file):
    # Every worker decides from the same (all-reduced) validation metric: a chief stopping alone left the other
    # waiting in its next step's all-reduce.
    validation = write_sentiment_tsv(tmp_path / "dev.tsv", 16, seed=1)
    chief, other = _finetune(tmp_path, vocab_file, 8, "--validation", str(validation),
                             "--set", "training.early_stopping_patience=1")
    assert chief["optimizer_steps"] < 8 * 8, "early stopping must end the run for this test to mean anything"
    assert other["optimizer_steps"] == chief["optimizer_steps"]  # at the same epoch's end
    assert chief["optimizer_steps"] % 8 == 0


def test_two_workers_pretrain_from_one_shard_with_a_backup_each(tmp_path, vocab_file):
    data, run = write_pretraining_data(tmp_path, vocab_file), tmp_path / "pre"
    # One shard for two workers (tf.data's file sharding fails on it), and a backup every 2 steps: written by both
    # workers at once, into one folder they would clobber each other's; each has its own (deleted at the end).
    backups = (run / "backup" / "latest.weights.h5", run / "worker-1" / "backup" / "latest.weights.h5")
    (chief, other), seen = _two_workers(
        "pretrain", "--data", str(data), "--vocab", str(vocab_file), "--output-dir", str(run), "--steps", "20",
        "--set", "pipeline.batch_size=8", "--set", "training.checkpoint_every_steps=2", watch=backups)
    assert chief["optimizer_steps"] == other["optimizer_steps"] == 20
    assert chief["mlm_accuracy"] == other["mlm_accuracy"]  # the same all-reduced metrics
    assert (run / "encoder.weights.h5").is_file()
    assert seen == set(backups)
