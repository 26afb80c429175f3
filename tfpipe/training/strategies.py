"""`tf.distribute` strategy from config: default, mirrored (all local GPUs), multi_worker (TF_CONFIG), tpu."""

from __future__ import annotations

import json
import os
from pathlib import Path

import tensorflow as tf


def build_strategy(name: str) -> tf.distribute.Strategy:
    """The strategy to build and train the model under; clear errors where the machine cannot do it."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("training.strategy=multi_worker needs the TF_CONFIG environment variable "
                             '(e.g. {"cluster": {"worker": ["host1:port", "host2:port"]}, '
                             '"task": {"type": "worker", "index": 0}})')
        try:
            json.loads(os.environ["TF_CONFIG"])
        except json.JSONDecodeError as exc:
            raise ValueError(f"TF_CONFIG is not valid JSON: {exc}") from None
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, tf.errors.NotFoundError, tf.errors.InvalidArgumentError) as exc:
            raise ValueError(f"training.strategy=tpu: no TPU found on this machine ({exc})") from None
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"training.strategy: {name!r} is not allowed; allowed values: default, mirrored, "
                     "multi_worker, tpu")


def num_workers(strategy: tf.distribute.Strategy) -> int:
    """Worker processes of a multi-worker strategy; 1 for every other."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return 1
    cluster = resolver.cluster_spec().as_dict()
    return max(1, len(cluster.get("chief", [])) + len(cluster.get("worker", [])))


def gather_across_workers(strategy: tf.distribute.Strategy, value: int) -> list[int]:
    """Every worker's `value`, in worker order, on every worker — a barrier too; `[value]` in one process."""
    workers = num_workers(strategy)
    if workers == 1:
        return [value]
    local = strategy.experimental_distribute_values_from_function(lambda _: tf.constant([value], tf.int64))
    every = strategy.gather(local, axis=0).numpy().tolist()  # one entry per replica, worker by worker
    return every[:: len(every) // workers]


def _tf_config() -> dict:
    return json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")


def is_chief() -> bool:
    """Worker 0 (or a single process) writes the run directory and its backup; the others read them."""
    config = _tf_config()
    task = config.get("task", {})
    return task.get("type", "worker") in ("worker", "chief") and int(task.get("index", 0)) == 0 \
        if "cluster" in config else True


def worker_dir(run: Path) -> Path:
    """Folder of a non-chief worker inside the run directory (its final weights)."""
    path = Path(run) / f"worker-{_tf_config().get('task', {}).get('index', 0)}"
    path.mkdir(parents=True, exist_ok=True)
    return path
