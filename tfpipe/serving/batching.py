"""Server-side request batching as TF Serving does it (SharedBatchScheduler + BatchingSession semantics).

Concurrent `submit` calls whose inputs can be concatenated along axis 0 are merged into one model call, and the
outputs are split back; queue limits, error codes and messages follow TF Serving's.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc
import numpy as np

from tfpipe.serving.errors import ServingError

log = logging.getLogger(__name__)

RunFn = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]

# SharedBatchScheduler::QueueOptions / Options defaults, used when a BatchingParameters field is unset.
DEFAULT_MAX_BATCH_SIZE = 1000
DEFAULT_BATCH_TIMEOUT_MICROS = 0
DEFAULT_MAX_ENQUEUED_BATCHES = 10


def _default_num_batch_threads() -> int:
    return os.cpu_count() or 1  # port::MaxParallelism()


@dataclass(eq=False)
class _Task:
    inputs: dict[str, np.ndarray]
    size: int
    key: tuple
    done: threading.Event = field(default_factory=threading.Event)
    enqueued: float = field(default_factory=time.monotonic)
    outputs: dict[str, np.ndarray] | None = None
    error: BaseException | None = None


@dataclass(eq=False)
class _Batch:
    key: tuple
    started: float  # monotonic time of its first task: the batch timeout runs from here
    tasks: list[_Task] = field(default_factory=list)
    size: int = 0


class Batcher:
    """Batches concurrent calls of `run_fn` (dict of arrays in, dict of arrays out, axis 0 is the batch).

    Args:
        run_fn: the model call; every output's first dimension must equal the batch size it was given.
        max_batch_size: largest request accepted and (without splitting) largest batch formed.
        batch_timeout_micros: how long a partly filled batch waits for more requests once a thread is free.
        max_enqueued_batches: batches waiting (not yet running) before submits answer UNAVAILABLE.
        num_batch_threads: batches run in parallel.
        allowed_batch_sizes: if set, batches are padded (with the first row) up to the next allowed size.
        pad_variable_length_inputs: batch inputs of the same rank but different non-batch dims, padding each
            with its first element.
        enable_large_batch_splitting: split requests bigger than `max_execution_batch_size` across batches.
        max_execution_batch_size: largest batch run when splitting (default `max_batch_size`).
        on_batch: called as each batch starts, with `thread_pool_name` and each task's seconds in the queue (the
            server's batching metrics).

    Examples:
    >>> import numpy as np
    >>> batcher = Batcher(lambda inputs: {"y": inputs["x"] * 2}, max_batch_size=8, num_batch_threads=1)
    >>> batcher.submit({"x": np.array([1.0, 2.0])})["y"].tolist()
    [2.0, 4.0]
    >>> batcher.close()
    """

    def __init__(self, run_fn: RunFn, max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
                 batch_timeout_micros: int = DEFAULT_BATCH_TIMEOUT_MICROS,
                 max_enqueued_batches: int = DEFAULT_MAX_ENQUEUED_BATCHES, num_batch_threads: int | None = None,
                 allowed_batch_sizes: list[int] | tuple[int, ...] = (), pad_variable_length_inputs: bool = False,
                 enable_large_batch_splitting: bool = False, max_execution_batch_size: int | None = None,
                 thread_pool_name: str = "batch_threads",
                 on_batch: Callable[[str, list[float]], None] | None = None) -> None:
        num_batch_threads = _default_num_batch_threads() if num_batch_threads is None else num_batch_threads
        execution = max_batch_size if max_execution_batch_size is None or not enable_large_batch_splitting \
            else max_execution_batch_size
        for name, value, low in (("max_batch_size", max_batch_size, 1), ("max_execution_batch_size", execution, 1),
                                 ("max_enqueued_batches", max_enqueued_batches, 1),
                                 ("num_batch_threads", num_batch_threads, 1),
                                 ("batch_timeout_micros", batch_timeout_micros, 0)):
            if value < low:
                raise ValueError(f"batching parameter {name} must be >= {low}, got {value}")
        self.max_batch_size = max_batch_size
        self.execution_batch_size = execution
        allowed = [int(size) for size in allowed_batch_sizes]
        if allowed:
            if any(b <= a for a, b in zip(allowed, allowed[1:], strict=False)) or allowed[0] < 1:
                raise ValueError(f"allowed_batch_sizes must be positive and increasing, got {allowed}")
            if allowed[-1] != self.execution_batch_size:
                raise ValueError("Last entry in allowed_batch_sizes must match max_batch_size; last entry was "
                                 f"{allowed[-1]}; expected {self.execution_batch_size}")
        self.allowed_batch_sizes = allowed
        self.batch_timeout_s = batch_timeout_micros / 1e6
        self.max_enqueued_batches = max_enqueued_batches
        self.pad_variable_length_inputs = pad_variable_length_inputs
        self.enable_large_batch_splitting = enable_large_batch_splitting
        self.calls = 0
        self.batch_sizes: collections.Counter[int] = collections.Counter()  # batch size (before padding) → count
        self._run_fn = run_fn
        self.thread_pool_name = thread_pool_name
        self._on_batch = on_batch
        self._cond = threading.Condition()
        self._queues: dict[tuple, collections.deque[_Batch]] = {}
        self._enqueued = 0
        self._closing = False
        self._threads = [threading.Thread(target=self._work, name=f"{thread_pool_name}_{i}", daemon=True)
                         for i in range(num_batch_threads)]
        for thread in self._threads:
            thread.start()

    @staticmethod
    def execution_size(params) -> int:
        """The largest batch the model runs under `BatchingParameters` (what a full queue forms)."""
        max_batch_size = params.max_batch_size.value if params.HasField("max_batch_size") else DEFAULT_MAX_BATCH_SIZE
        splitting = params.HasField("enable_large_batch_splitting") and params.enable_large_batch_splitting.value
        if splitting and params.HasField("max_execution_batch_size"):
            return params.max_execution_batch_size.value
        return max_batch_size

    @classmethod
    def from_proto(cls, params, run_fn: RunFn, on_batch: Callable[[str, list[float]], None] | None = None) -> Batcher:
        """A Batcher from TF Serving's `BatchingParameters`; unset fields take TF Serving's defaults."""
        def value(name: str, default):
            return getattr(params, name).value if params.HasField(name) else default

        max_batch_size = value("max_batch_size", DEFAULT_MAX_BATCH_SIZE)
        return cls(run_fn, max_batch_size=max_batch_size,
                   batch_timeout_micros=value("batch_timeout_micros", DEFAULT_BATCH_TIMEOUT_MICROS),
                   max_enqueued_batches=value("max_enqueued_batches", DEFAULT_MAX_ENQUEUED_BATCHES),
                   num_batch_threads=value("num_batch_threads", None),
                   thread_pool_name=value("thread_pool_name", "batch_threads"),
                   allowed_batch_sizes=list(params.allowed_batch_sizes),
                   pad_variable_length_inputs=params.pad_variable_length_inputs,
                   enable_large_batch_splitting=value("enable_large_batch_splitting", False),
                   max_execution_batch_size=value("max_execution_batch_size", max_batch_size), on_batch=on_batch)

    @property
    def queued_tasks(self) -> int:
        """Requests (or split pieces) waiting in the queue, not yet running."""
        with self._cond:
            return sum(len(batch.tasks) for queue in self._queues.values() for batch in queue)

    # ---- submitting -------------------------------------------------------------------------------------------
    def submit(self, inputs: dict[str, np.ndarray], timeout: float | None = None) -> dict[str, np.ndarray]:
        """Run `inputs` as part of a batch and return this request's rows of every output (blocks)."""
        arrays = {name: np.asarray(value) for name, value in inputs.items()}
        size = self._validate(arrays)
        if size == 0:  # nothing to batch; the model still decides the output shapes
            return self._run_fn(arrays)
        key = self._key(arrays)
        with self._cond:
            if self._closing:
                raise ServingError(grpc.StatusCode.UNAVAILABLE, "The batch scheduler is shutting down")
            tasks = self._enqueue(arrays, size, key)
            self._cond.notify_all()
        deadline = None if timeout is None else time.monotonic() + timeout
        for task in tasks:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not task.done.wait(left):
                raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
            if task.error is not None:
                raise task.error
        if len(tasks) == 1:
            return tasks[0].outputs
        return {name: np.concatenate([task.outputs[name] for task in tasks]) for name in tasks[0].outputs}

    def _validate(self, arrays: dict[str, np.ndarray]) -> int:
        if not arrays:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, "Batching session Run() needs at least one input")
        sizes = set()
        for array in arrays.values():
            if array.ndim == 0:
                raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                                   "Batching session Run() input tensors must have at least one dimension")
            sizes.add(array.shape[0])
        if len(sizes) > 1:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                               "Batching session Run() input tensors must have equal 0th-dimension size")
        size = sizes.pop()
        if size > self.max_batch_size:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"Task size {size} is larger than maximum input batch size {self.max_batch_size}")
        return size

    def _key(self, arrays: dict[str, np.ndarray]) -> tuple:
        # Requests batch together only if they can be concatenated: same names, dtypes and non-batch dims.
        def dtype(array: np.ndarray) -> str:
            return array.dtype.kind if array.dtype.kind in "SU" else array.dtype.str

        if self.pad_variable_length_inputs:
            return tuple(sorted((name, dtype(a), a.ndim) for name, a in arrays.items()))
        return tuple(sorted((name, dtype(a), a.shape[1:]) for name, a in arrays.items()))

    def _enqueue(self, arrays: dict[str, np.ndarray], size: int, key: tuple) -> list[_Task]:
        queue = self._queues.setdefault(key, collections.deque())
        limit = self.execution_batch_size
        tail = queue[-1] if queue else None
        tail_room = limit - tail.size if tail is not None else 0
        if not self.enable_large_batch_splitting:
            if tail_room < size and self._enqueued >= self.max_enqueued_batches:
                raise ServingError(grpc.StatusCode.UNAVAILABLE,
                                   "The batch scheduling queue to which this task was submitted is full; currently "
                                   f"{self._enqueued} batches enqueued and max_enqueued_batches is "
                                   f"{self.max_enqueued_batches}")
            pieces = [size]
        else:
            capacity = (self.max_enqueued_batches - self._enqueued) * limit + tail_room
            if size > capacity:
                raise ServingError(grpc.StatusCode.UNAVAILABLE,
                                   "The batch scheduling queue to which this task was submitted is full; task size is "
                                   f"{size} but scheduling capacity is only {capacity} (num_enqueued_batches="
                                   f"{self._enqueued}, max_enqueued_batches={self.max_enqueued_batches}, "
                                   f"open_batch_size={tail.size if tail else 0}, max_execution_batch_size={limit})")
            first = min(size, tail_room) if tail_room > 0 else min(size, limit)
            pieces = [first] + [min(limit, size - start) for start in range(first, size, limit)]
        tasks, start = [], 0
        now = time.monotonic()
        for piece in pieces:
            part = arrays if piece == size else {n: a[start:start + piece] for n, a in arrays.items()}
            task = _Task(part, piece, key)
            start += piece
            if not queue or queue[-1].size + piece > limit:
                queue.append(_Batch(key, now))
                self._enqueued += 1
            queue[-1].tasks.append(task)
            queue[-1].size += piece
            tasks.append(task)
        return tasks

    # ---- batch threads ----------------------------------------------------------------------------------------
    def _next_batch(self) -> _Batch | None:
        """The oldest batch ready to run, or None after waiting a while; called with the lock held."""
        now = time.monotonic()
        ready, wake = None, None
        for queue in self._queues.values():
            if not queue:
                continue
            head = queue[0]
            due = head.started + self.batch_timeout_s
            if len(queue) > 1 or head.size >= self.execution_batch_size or due <= now or self._closing:
                if ready is None or head.started < ready.started:
                    ready = head
            else:
                wake = due if wake is None else min(wake, due)
        if ready is not None:
            queue = self._queues[ready.key]
            queue.popleft()
            if not queue:  # shapes vary (e.g. sequence lengths): don't keep a queue per shape ever seen
                del self._queues[ready.key]
            self._enqueued -= 1
            return ready
        self._cond.wait(None if wake is None else wake - now)
        return None

    def _work(self) -> None:
        while True:
            with self._cond:
                if self._closing and self._enqueued == 0:
                    return
                batch = self._next_batch()
                if batch is None:
                    continue
                self.calls += 1
                self.batch_sizes[batch.size] += 1
            self._run(batch)

    def _run(self, batch: _Batch) -> None:
        if self._on_batch is not None:
            started = time.monotonic()
            try:
                self._on_batch(self.thread_pool_name, [started - task.enqueued for task in batch.tasks])
            except Exception:  # metrics must not fail the batch, or leave its requests waiting forever
                log.exception("batching metrics hook failed")
        try:
            padded = next((s for s in self.allowed_batch_sizes if s >= batch.size), batch.size)
            outputs = self._run_fn(self._merge(batch.tasks, padded - batch.size))
            offsets = np.cumsum([0] + [task.size for task in batch.tasks])
            for name, output in outputs.items():
                output = np.asarray(output)
                if output.ndim == 0:
                    raise ServingError(grpc.StatusCode.FAILED_PRECONDITION,
                                       f"Batched output tensor has 0 dimensions (output {name!r})")
                if output.shape[0] != padded:
                    raise ServingError(grpc.StatusCode.FAILED_PRECONDITION,
                                       "Batched output tensor's 0th dimension does not equal the sum of the 0th "
                                       f"dimension sizes of the input tensors (output {name!r}: {output.shape[0]}, "
                                       f"batch size {padded})")
                outputs[name] = output
            for i, task in enumerate(batch.tasks):
                task.outputs = {name: output[offsets[i]:offsets[i + 1]] for name, output in outputs.items()}
        except BaseException as error:  # every request of the batch gets the model's error; the batcher goes on
            for task in batch.tasks:
                task.error = error
        finally:
            for task in batch.tasks:
                task.done.set()

    def _merge(self, tasks: list[_Task], padding: int) -> dict[str, np.ndarray]:
        merged = {}
        for name in tasks[0].inputs:
            parts = [task.inputs[name] for task in tasks]
            if self.pad_variable_length_inputs:
                parts = _pad_to_common_shape(parts)
            if padding:
                parts.append(np.repeat(parts[0][:1], padding, axis=0))
            merged[name] = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return merged

    def close(self) -> None:
        """Run everything already queued, then stop the batch threads; later submits answer UNAVAILABLE."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join()


def _pad_to_common_shape(parts: list[np.ndarray]) -> list[np.ndarray]:
    """Pad every non-batch dim to the largest among `parts`, with each tensor's first element (as TF Serving)."""
    target = np.max([part.shape for part in parts], axis=0)
    padded = []
    for part in parts:
        widths = [(0, 0)] + [(0, int(t) - s) for t, s in zip(target[1:], part.shape[1:], strict=True)]
        if any(w for _, w in widths) and part.size:
            fill = part.flat[0]
            out = np.full((part.shape[0], *[int(t) for t in target[1:]]), fill, dtype=part.dtype)
            out[tuple(slice(0, s) for s in part.shape)] = part
            part = out
        padded.append(part)
    return padded
