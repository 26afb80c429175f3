"""A new version dropped into a polled base path while 20 clients send requests: it loads and serves before the
old one unloads, and no request fails."""

from __future__ import annotations

import os
import shutil
import threading
import time

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import get_model_status_pb2, predict_pb2

from tests.serving.server_harness import (
    HALF_PLUS_THREE,
    HALF_PLUS_TWO,
    copy_versions,
    start_server,
    stubs,
    tfs_testdata,
)

AVAILABLE = get_model_status_pb2.ModelVersionStatus.AVAILABLE


def test_new_version_becomes_available_under_load_without_failures(tmp_path):
    base = copy_versions(HALF_PLUS_TWO, tmp_path / "models" / "hp")  # version 123: y = x/2 + 2
    server = start_server(model_name="hp", model_base_path=str(base), file_system_poll_wait_seconds=1,
                          rest_api_port=0)
    predict, model_service, channel = stubs(server)
    stop = threading.Event()
    failures: list[str] = []
    seen: dict[int, int] = {}
    lock = threading.Lock()

    def client() -> None:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "hp"
        request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([2.0], np.float32)))
        while not stop.is_set():
            try:
                response = predict.Predict(request, timeout=30)
            except grpc.RpcError as error:
                with lock:
                    failures.append(f"{error.code()}: {error.details()}")
                continue
            version = response.model_spec.version.value
            expected = {123: 3.0, 124: 4.0}.get(version)  # half_plus_two vs half_plus_three at x=2
            with lock:
                seen[version] = seen.get(version, 0) + 1
                if list(response.outputs["y"].float_val) != [expected]:
                    failures.append(f"version {version} answered {list(response.outputs['y'].float_val)}")

    threads = [threading.Thread(target=client) for _ in range(20)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        # written under a non-numeric name, then renamed: the poller never sees a half-copied version
        staging = base / "incoming"
        shutil.copytree(tfs_testdata(HALF_PLUS_THREE, "00000123"), staging)
        os.rename(staging, base / "124")
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = "hp"
        deadline = time.monotonic() + 60
        states = {}
        while time.monotonic() < deadline:
            states = {s.version: s.state for s in model_service.GetModelStatus(request).model_version_status}
            if states.get(124) == AVAILABLE and states.get(123) != AVAILABLE:
                break
            time.sleep(0.2)
        time.sleep(1.0)  # keep the clients going on the new version
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        channel.close()
        server.stop(grace=5)
    assert states.get(124) == AVAILABLE, states
    assert states.get(123) == get_model_status_pb2.ModelVersionStatus.END, states
    assert failures == []
    assert seen.get(123, 0) > 0 and seen.get(124, 0) > 0, seen
