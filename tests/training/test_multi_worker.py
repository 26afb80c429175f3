"""MultiWorkerMirroredStrategy with two worker processes on 127.0.0.1: both end with identical weights, stop early
together, pretrain from fewer shard files than workers, and resume from the chief's backup after a SIGKILL."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

import h5py
import numpy as np

from tests.training.conftest import TINY_MODEL, kill_once_written, write_pretraining_data, write_sentiment_tsv


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


def _start(*args: str, output_dirs: tuple = (), quiet: bool = True) -> list[subprocess.Popen]:
    """`tfpipe ARGS` started by two worker processes on 127.0.0.1 (`output_dirs`: each its own `--output-dir`)."""
    workers = [f"127.0.0.1:{_free_port()}" for _ in range(2)]
    model = TINY_MODEL if quiet else [a for a in TINY_MODEL if a != "--quiet"]
    processes = []
    for index in range(2):
        own = ["--output-dir", str(output_dirs[index])] if output_dirs else []
        command = [sys.executable, "-m", "tfpipe.cli.main", *args, *own, "--set", "training.strategy=multi_worker",
                   *model]
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "TF_CPP_MIN_LOG_LEVEL": "3"}
        processes.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                          env=env))
    return processes


def _finish(processes: list[subprocess.Popen], ok: bool = True) -> list[tuple[str, str]]:
    """Each worker's stdout and stderr once it ends; with `ok`, asserts both ended well."""
    try:
        outputs = [p.communicate(timeout=300) for p in processes]
    finally:
        for process in processes:
            process.kill()
    for process, (_, err) in zip(processes, outputs):
        assert (process.returncode == 0) == ok, err[-3000:]
    return outputs


def _two_workers(*args: str, watch: tuple = ()) -> tuple[list[dict], set]:
    """`tfpipe ARGS` run by two worker processes; returns what each printed last (its metrics, as JSON) and
    which of the `watch` paths existed at some point while they ran."""
    processes = _start(*args)
    seen: set = set()
    done = threading.Event()

    def look() -> None:
        while not done.is_set():
            seen.update(path for path in watch if path.exists())
            time.sleep(0.002)

    watcher = threading.Thread(target=look, daemon=True)
    watcher.start()
    try:
        outputs = _finish(processes)
    finally:
        done.set()
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


def test_two_workers_pretrain_from_one_shard_with_the_chiefs_backup(tmp_path, vocab_file):
    data, run = write_pretraining_data(tmp_path, vocab_file), tmp_path / "pre"
    # One shard for two workers (tf.data's file sharding fails on it), and a backup every 2 steps: written by the
    # chief only (two workers writing one folder clobbered each other's files), deleted at the end.
    backups = (run / "backup" / "latest.weights.h5", run / "worker-1" / "backup")
    (chief, other), seen = _two_workers(
        "pretrain", "--data", str(data), "--vocab", str(vocab_file), "--output-dir", str(run), "--steps", "20",
        "--set", "pipeline.batch_size=8", "--set", "training.checkpoint_every_steps=2", watch=backups)
    assert chief["optimizer_steps"] == other["optimizer_steps"] == 20
    assert chief["mlm_accuracy"] == other["mlm_accuracy"]  # the same all-reduced metrics
    assert (run / "encoder.weights.h5").is_file()
    assert seen == {backups[0]}
    assert not (run / "backup").exists()


def test_two_workers_killed_and_restarted_resume_from_the_chiefs_backup(tmp_path, vocab_file):
    train = write_sentiment_tsv(tmp_path / "train.tsv", 200)
    run = tmp_path / "run"
    args = ("finetune", "--task", "classification", "--train", str(train), "--text-column", "sentence",
            "--label-column", "label", "--vocab", str(vocab_file), "--epochs", "2", "--batch-size", "4",
            "--max-seq-length", "32", "--set", "training.checkpoint_every_steps=10")
    metadata = run / "backup" / "training_metadata.json"
    assert kill_once_written(metadata, _start(*args, output_dirs=(run, run))), "the first run never wrote a backup"
    assert not (run / "metrics.json").exists()  # killed before the end

    # Worker 1 cannot see the chief's backup (as on storage that is not shared): both stop with an error
    # naming the steps, instead of waiting for each other in an all-reduce.
    outputs = _finish(_start(*args, output_dirs=(run, tmp_path / "elsewhere")), ok=False)
    for _, err in outputs:
        assert re.search(r"resume from different optimizer steps \(worker 0: [1-9]\d*, worker 1: 0\)", err), \
            err[-2000:]

    outputs = _finish(_start(*args, output_dirs=(run, run), quiet=False))
    steps = [json.loads(out.strip().splitlines()[-1])["training"]["optimizer_steps"] for out, _ in outputs]
    assert steps == [2 * 50, 2 * 50]  # 200 rows / global batch 4, 2 epochs
    ran = [int(m) for m in re.findall(r"^(\d+)/\1 - ", outputs[0][0], re.M)]
    assert 0 < sum(ran) < 100  # resumed: only what was left
    chief, other = _weights(run / "model.weights.h5"), _weights(run / "worker-1" / "model.weights.h5")
    for name in chief:
        np.testing.assert_array_equal(chief[name], other[name], err_msg=name)
    assert not (run / "worker-1" / "backup").exists()
