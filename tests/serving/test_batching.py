"""Batcher: concurrent requests merge into fewer model calls, each caller gets its own rows; TF Serving's errors."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest

from tests.conftest import shared_path
from tfpipe.serving.batching import Batcher
from tfpipe.serving.config_protos import BatchingParameters, parse_text_proto
from tfpipe.serving.errors import ServingError


class GatedModel:
    """A model whose first call blocks until released, so later requests pile up in the queue meanwhile."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.seen: list[dict[str, np.ndarray]] = []

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.seen.append(inputs)
        self.started.set()
        assert self.release.wait(30), "test never released the model"
        if "x" in inputs and (inputs["x"] == -1).any():
            raise ValueError("model failed on -1")
        outputs = {}
        if "x" in inputs:
            outputs["y"] = inputs["x"] * 2.0
            outputs["n"] = np.arange(len(inputs["x"]))
        if "text" in inputs:
            outputs["upper"] = np.array([t.upper() for t in inputs["text"]], dtype=object)
        return outputs


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def start_blocked(batcher: Batcher, model: GatedModel, pool: ThreadPoolExecutor):
    """Occupy the only batch thread with one request, so everything submitted next waits in the queue."""
    first = pool.submit(batcher.submit, {"x": np.array([100.0])})
    assert model.started.wait(30)
    return first


def test_concurrent_requests_share_calls_and_get_their_own_rows() -> None:
    model = GatedModel()
    batcher = Batcher(model, max_batch_size=16, num_batch_threads=1, max_enqueued_batches=100)
    with ThreadPoolExecutor(40) as pool:
        first = start_blocked(batcher, model, pool)
        requests = [np.arange(i % 3 + 1, dtype=np.float32) + 10 * i for i in range(30)]
        futures = [pool.submit(batcher.submit, {"x": x}) for x in requests]
        wait_until(lambda: batcher.queued_tasks == 30, "30 queued requests")
        model.release.set()
        results = [future.result(30) for future in futures]
        assert first.result(30)["y"].tolist() == [200.0]
    for x, result in zip(requests, results, strict=True):
        np.testing.assert_array_equal(result["y"], x * 2.0)
        assert len(result["n"]) == len(x)
    # 1 blocking call + the 30 requests (60 rows) packed into batches of at most 16 rows.
    assert batcher.calls < 31
    assert batcher.calls <= 1 + 6
    assert max(batcher.batch_sizes) <= 16
    assert sum(size * count for size, count in batcher.batch_sizes.items()) == 1 + sum(len(x) for x in requests)
    batcher.close()


def test_string_inputs_batch_too() -> None:
    model = GatedModel()
    batcher = Batcher(model, max_batch_size=8, num_batch_threads=1)
    with ThreadPoolExecutor(8) as pool:
        start_blocked(batcher, model, pool)
        texts = [np.array([f"req {i} a", f"req {i} b"], dtype=object) for i in range(4)]
        futures = [pool.submit(batcher.submit, {"text": t}) for t in texts]
        wait_until(lambda: batcher.queued_tasks == 4, "4 queued requests")
        model.release.set()
        for text, future in zip(texts, futures, strict=True):
            assert future.result(30)["upper"].tolist() == [t.upper() for t in text]
    assert batcher.calls == 2
    assert batcher.batch_sizes[8] == 1
    # Fixed-width byte strings of different lengths batch together too (numpy widens them when concatenating).
    echo = Batcher(lambda inputs: {"same": inputs["b"]}, max_batch_size=8, num_batch_threads=1)
    assert echo.submit({"b": np.array([b"a", b"longer"])})["same"].tolist() == [b"a", b"longer"]
    assert echo._key({"b": np.array([b"a"])}) == echo._key({"b": np.array([b"abcdef"])})
    echo.close()
    batcher.close()


def test_inputs_of_different_shapes_are_not_mixed() -> None:
    model = GatedModel()
    batcher = Batcher(model, max_batch_size=8, num_batch_threads=1)
    with ThreadPoolExecutor(8) as pool:
        start_blocked(batcher, model, pool)
        pairs = [np.ones((1, 2)) * i for i in range(3)] + [np.ones((1, 3)) * i for i in range(3)]
        futures = [pool.submit(batcher.submit, {"x": x}) for x in pairs]
        wait_until(lambda: batcher.queued_tasks == 6, "6 queued requests")
        model.release.set()
        for x, future in zip(pairs, futures, strict=True):
            np.testing.assert_array_equal(future.result(30)["y"], x * 2)
    assert batcher.calls == 3  # the blocker, then one batch per shape
    batcher.close()


def test_full_queue_answers_unavailable_with_tf_serving_message() -> None:
    model = GatedModel()
    batcher = Batcher(model, max_batch_size=2, max_enqueued_batches=1, num_batch_threads=1)
    with ThreadPoolExecutor(4) as pool:
        start_blocked(batcher, model, pool)
        queued = [pool.submit(batcher.submit, {"x": np.array([float(i)])}) for i in range(2)]
        wait_until(lambda: batcher.queued_tasks == 2, "a full batch in the queue")
        with pytest.raises(ServingError) as caught:
            batcher.submit({"x": np.array([9.0])})
        assert caught.value.code == grpc.StatusCode.UNAVAILABLE
        assert caught.value.http_status == 503
        assert str(caught.value) == ("The batch scheduling queue to which this task was submitted is full; "
                                     "currently 1 batches enqueued and max_enqueued_batches is 1")
        model.release.set()
        assert [f.result(30)["y"].tolist() for f in queued] == [[0.0], [2.0]]
    assert batcher.submit({"x": np.array([9.0])})["y"].tolist() == [18.0]  # room again once drained
    batcher.close()


def test_failing_batch_fails_each_of_its_requests_then_recovers() -> None:
    model = GatedModel()
    batcher = Batcher(model, max_batch_size=8, num_batch_threads=1)
    with ThreadPoolExecutor(4) as pool:
        start_blocked(batcher, model, pool)
        bad = pool.submit(batcher.submit, {"x": np.array([-1.0])})
        good = pool.submit(batcher.submit, {"x": np.array([3.0])})
        wait_until(lambda: batcher.queued_tasks == 2, "2 queued requests")
        model.release.set()
        for future in (bad, good):
            with pytest.raises(ValueError, match="model failed on -1"):
                future.result(30)
    assert batcher.submit({"x": np.array([3.0])})["y"].tolist() == [6.0]
    batcher.close()


def test_request_bigger_than_max_batch_size_is_invalid_argument() -> None:
    batcher = Batcher(lambda inputs: {"y": inputs["x"]}, max_batch_size=4, num_batch_threads=1)
    with pytest.raises(ServingError) as caught:
        batcher.submit({"x": np.zeros(5)})
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert str(caught.value) == "Task size 5 is larger than maximum input batch size 4"
    assert batcher.calls == 0
    batcher.close()


def test_malformed_inputs_are_invalid_argument() -> None:
    batcher = Batcher(lambda inputs: inputs, max_batch_size=4, num_batch_threads=1)
    for inputs, message in (({"x": np.float32(1.0)}, "at least one dimension"),
                            ({"x": np.zeros(2), "z": np.zeros(3)}, "equal 0th-dimension size")):
        with pytest.raises(ServingError, match=message) as caught:
            batcher.submit(inputs)
        assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    batcher.close()


def test_large_batch_splitting_runs_a_big_request_in_pieces() -> None:
    sizes = []

    def run(inputs):
        sizes.append(len(inputs["x"]))
        return {"y": inputs["x"] + 1}

    batcher = Batcher(run, max_batch_size=10, enable_large_batch_splitting=True, max_execution_batch_size=3,
                      num_batch_threads=1)
    x = np.arange(8.0)
    np.testing.assert_array_equal(batcher.submit({"x": x})["y"], x + 1)
    assert sorted(sizes) == [2, 3, 3]
    with pytest.raises(ServingError, match="Task size 11 is larger than maximum input batch size 10"):
        batcher.submit({"x": np.arange(11.0)})
    batcher.close()


def test_allowed_batch_sizes_pad_with_the_first_row() -> None:
    seen = []

    def run(inputs):
        seen.append(inputs["x"].tolist())
        return {"y": inputs["x"] * 10}

    batcher = Batcher(run, max_batch_size=4, allowed_batch_sizes=[2, 4], num_batch_threads=1)
    assert batcher.submit({"x": np.array([7, 8, 9])})["y"].tolist() == [70, 80, 90]
    assert seen == [[7, 8, 9, 7]]
    with pytest.raises(ValueError, match="Last entry in allowed_batch_sizes must match max_batch_size; last entry "
                                         "was 3; expected 4"):
        Batcher(run, max_batch_size=4, allowed_batch_sizes=[1, 3], num_batch_threads=1)
    batcher.close()


def test_variable_length_inputs_are_padded_with_the_first_element() -> None:
    model = GatedModel()
    batcher = Batcher(model, max_batch_size=4, num_batch_threads=1, pad_variable_length_inputs=True)
    with ThreadPoolExecutor(4) as pool:
        start_blocked(batcher, model, pool)
        a = pool.submit(batcher.submit, {"x": np.array([[1.0, 2.0]])})
        wait_until(lambda: batcher.queued_tasks == 1, "first queued request")
        b = pool.submit(batcher.submit, {"x": np.array([[3.0, 4.0, 5.0]])})
        wait_until(lambda: batcher.queued_tasks == 2, "second queued request")
        model.release.set()
        assert a.result(30)["y"].tolist() == [[2.0, 4.0, 2.0]]
        assert b.result(30)["y"].tolist() == [[6.0, 8.0, 10.0]]
    assert model.seen[1]["x"].tolist() == [[1.0, 2.0, 1.0], [3.0, 4.0, 5.0]]
    batcher.close()


def test_outputs_without_the_batch_dimension_are_an_error() -> None:
    batcher = Batcher(lambda inputs: {"total": np.array([1.0, 2.0, 3.0])}, max_batch_size=4, num_batch_threads=1)
    with pytest.raises(ServingError, match="0th dimension does not equal the sum") as caught:
        batcher.submit({"x": np.zeros(2)})
    assert caught.value.code == grpc.StatusCode.FAILED_PRECONDITION
    batcher.close()


def test_close_runs_queued_work_then_refuses() -> None:
    batcher = Batcher(lambda inputs: {"y": inputs["x"] + 1}, max_batch_size=64, batch_timeout_micros=60_000_000,
                      num_batch_threads=1)
    with ThreadPoolExecutor(2) as pool:
        waiting = pool.submit(batcher.submit, {"x": np.array([1.0])})  # would wait a minute for company
        wait_until(lambda: batcher.queued_tasks == 1, "the queued request")
        batcher.close()
        assert waiting.result(30)["y"].tolist() == [2.0]
    with pytest.raises(ServingError) as caught:
        batcher.submit({"x": np.array([1.0])})
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE


def test_from_proto_uses_tf_serving_defaults_for_unset_fields() -> None:
    batcher = Batcher.from_proto(BatchingParameters(), lambda inputs: inputs)
    assert (batcher.max_batch_size, batcher.batch_timeout_s, batcher.max_enqueued_batches) == (1000, 0.0, 10)
    assert len(batcher._threads) >= 1
    batcher.close()
    params = parse_text_proto(shared_path("tf-serving-testdata", "batching_config.txt"), BatchingParameters)
    batcher = Batcher.from_proto(params, lambda inputs: {"y": inputs["x"]})
    assert (batcher.max_batch_size, batcher.max_enqueued_batches, len(batcher._threads)) == (128, 1000000, 8)
    assert batcher.submit({"x": np.array([1, 2])})["y"].tolist() == [1, 2]
    batcher.close()


def test_invalid_parameters_name_the_field() -> None:
    with pytest.raises(ValueError, match="max_batch_size must be >= 1, got 0"):
        Batcher(lambda inputs: inputs, max_batch_size=0)
    with pytest.raises(ValueError, match="num_batch_threads must be >= 1, got 0"):
        Batcher.from_proto(BatchingParameters(num_batch_threads={"value": 0}), lambda inputs: inputs)


def test_on_batch_sees_each_batch_and_its_failure_fails_nothing(caplog) -> None:
    seen = []

    def record(pool: str, queued: list[float]) -> None:
        seen.append((pool, len(queued), all(q >= 0 for q in queued)))
        raise RuntimeError("metrics down")

    batcher = Batcher(lambda inputs: {"y": inputs["x"] * 2}, max_batch_size=8, num_batch_threads=1,
                      on_batch=record, thread_pool_name="pool")
    try:
        assert batcher.submit({"x": np.array([1.0, 2.0])}, timeout=10)["y"].tolist() == [2.0, 4.0]
    finally:
        batcher.close()
    assert seen == [("pool", 1, True)]
    assert "batching metrics hook failed" in caplog.text
