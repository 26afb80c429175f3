"""--enable_batching with a batching_parameters_file: many concurrent requests run as fewer model calls, each
client gets its own rows back; a full queue answers UNAVAILABLE."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2

from tests.serving.server_harness import (
    HALF_PLUS_TWO,
    start_server,
    stubs,
    tfs_testdata,
    write_config,
    write_slow_model,
)


def request_for(model: str, name: str, value) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return request


def test_concurrent_requests_are_batched_into_fewer_model_calls(tmp_path):
    params = write_config(tmp_path / "batching.txt", "max_batch_size { value: 32 }\n"
                          "batch_timeout_micros { value: 200000 }\nmax_enqueued_batches { value: 100 }\n"
                          "num_batch_threads { value: 1 }\n")
    server = start_server(model_base_path=str(tfs_testdata(HALF_PLUS_TWO)), enable_batching=True,
                          batching_parameters_file=str(params), rest_api_port=0, grpc_max_threads=40)
    stub, _, channel = stubs(server)
    try:
        with server.manager.acquire(model_pb2.ModelSpec(name="default")) as servable:
            before = servable.calls
        start = threading.Barrier(32)

        def one(i: int) -> list[float]:
            start.wait()
            response = stub.Predict(request_for("default", "x", np.array([[float(i)]], np.float32)), timeout=60)
            return list(response.outputs["y"].float_val)

        with ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(one, range(32)))
        with server.manager.acquire(model_pb2.ModelSpec(name="default")) as servable:
            calls = servable.calls - before
    finally:
        channel.close()
        server.stop(grace=1)
    assert answers == [[i / 2 + 2] for i in range(32)]
    assert 1 <= calls <= 16, f"32 requests ran as {calls} model calls"  # typically 1-2


def test_a_full_batch_queue_answers_unavailable(tmp_path):
    params = write_config(tmp_path / "batching.txt", "max_batch_size { value: 1 }\nbatch_timeout_micros { value: 0 }\n"
                          "max_enqueued_batches { value: 1 }\nnum_batch_threads { value: 1 }\n")
    base = tmp_path / "slow"
    write_slow_model(base)
    server = start_server(model_name="slow", model_base_path=str(base), enable_batching=True,
                          batching_parameters_file=str(params), rest_api_port=0)
    stub, _, channel = stubs(server)
    try:
        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(stub.Predict, request_for("slow", "ms", np.array([1000], np.int64)), timeout=60)
                       for _ in range(4)]
            outcomes = []
            for future in futures:
                try:
                    outcomes.append(list(future.result().outputs["y"].int64_val))
                except grpc.RpcError as error:
                    outcomes.append((error.code(), error.details()))
        # after the refusals, the server still answers
        assert list(stub.Predict(request_for("slow", "ms", np.array([1], np.int64)), timeout=60).outputs["y"]
                    .int64_val) == [1]
    finally:
        channel.close()
        server.stop(grace=5)
    refused = [o for o in outcomes if isinstance(o, tuple)]
    assert [1000] in outcomes
    assert refused and all(code == grpc.StatusCode.UNAVAILABLE for code, _ in refused), outcomes
