"""`tfpipe serve` as users run it: tensorflow_model_server's flags in both spellings, a model config file with two
models, a clear start-up error for a bad config, and SIGTERM letting in-flight requests finish with exit code 0."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import requests
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import predict_pb2

from tests.serving.server_harness import (
    HALF_PLUS_THREE,
    HALF_PLUS_TWO,
    copy_versions,
    free_port,
    rest_url,
    start_server,
    stubs,
    tfs_testdata,
    write_slow_model,
)
from tfpipe.serving.flags import parse_flags
from tfpipe.serving.server import ModelServer, ServerStartError


def test_flags_take_both_spellings_and_bare_booleans():
    options = parse_flags(["--port=9000", "--rest_api_port", "9001", "--model_name", "m", "--enable_batching",
                           "--enable_model_warmup=false", "--file_system_poll_wait_seconds=5",
                           "--grpc_channel_arguments=grpc.max_receive_message_length=1024,grpc.primary_user_agent=x",
                           "--allowed_model_roots=/a,/b", "--allowed_model_roots", "/c"])
    assert (options.port, options.rest_api_port, options.model_name) == (9000, 9001, "m")
    assert options.enable_batching is True and options.enable_model_warmup is False
    assert options.file_system_poll_wait_seconds == 5
    assert options.channel_arguments() == [("grpc.max_receive_message_length", 1024), ("grpc.primary_user_agent", "x")]
    assert options.allowed_model_roots == ["/a", "/b", "/c"]
    assert parse_flags([]).host == "127.0.0.1" and parse_flags([]).rest_api_timeout_in_ms == 30000
    with pytest.raises(SystemExit):
        parse_flags(["--enable_batching=maybe"])


def test_good_model_config_serves_two_models(tmp_path):
    models = tmp_path / "models"
    for name in (HALF_PLUS_TWO, HALF_PLUS_THREE):
        shutil.copytree(tfs_testdata(name), models / name)
    text = tfs_testdata("good_model_config.txt").read_text()
    text = text.replace("${TEST_HALF_PLUS_TWO_DIR}", str(models / HALF_PLUS_TWO))
    text = text.replace("${TEST_HALF_PLUS_THREE_DIR}", str(models / HALF_PLUS_THREE))
    (tmp_path / "good.config").write_text(text)
    server = start_server(model_config_file=str(tmp_path / "good.config"))
    try:
        assert server.manager.model_names() == ["half_plus_three", "half_plus_two"]
        for model, expected in (("half_plus_two", [3.0, 3.5, 4.0]), ("half_plus_three", [4.0, 4.5, 5.0])):
            response = requests.post(rest_url(server, f"/v1/models/{model}:predict"),
                                     json={"instances": [2.0, 3.0, 4.0]}, timeout=10)
            assert response.json() == {"predictions": expected}
    finally:
        server.stop(grace=1)


def test_bad_model_config_is_a_clear_startup_error():
    bad = tfs_testdata("bad_model_config.txt")
    with pytest.raises(ServerStartError, match=f"--model_config_file {bad} is not a valid ModelServerConfig"):
        ModelServer(parse_flags(["--port=0", f"--model_config_file={bad}"])).start()
    result = subprocess.run([sys.executable, "-m", "tfpipe.cli.main", "serve", "--port=0",
                             f"--model_config_file={bad}"], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 2
    assert f"tfpipe serve: error: --model_config_file {bad} is not a valid ModelServerConfig" in result.stderr


def test_sigterm_lets_in_flight_requests_finish_and_exits_zero(tmp_path):
    base = tmp_path / "slow"
    write_slow_model(base)
    grpc_port, rest_port = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tfpipe.cli.main", "serve", f"--port={grpc_port}", "--rest_api_port", str(rest_port),
         "--model_name=slow", f"--model_base_path={base}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    status_url = f"http://127.0.0.1:{rest_port}/v1/models/slow"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()
            try:
                if requests.get(status_url, timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.3)
        results: list = []

        def rest_call() -> None:
            response = requests.post(f"{status_url}:predict", json={"instances": [2000]}, timeout=60)
            results.append(("rest", response.status_code, response.json()))

        def grpc_call() -> None:
            stub, _, channel = stubs(grpc_port)
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "slow"
            request.inputs["ms"].CopyFrom(tf.make_tensor_proto(np.array([2000], np.int64)))
            results.append(("grpc", list(stub.Predict(request, timeout=60).outputs["y"].int64_val)))
            channel.close()

        threads = [threading.Thread(target=rest_call), threading.Thread(target=grpc_call)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)  # both requests are in flight (the model runs them one after the other, 2 s each)
        process.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join(timeout=60)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert sorted(results, key=str) == [("grpc", [2000]), ("rest", 200, {"predictions": [2000]})]
    assert "SIGTERM" in err
    with pytest.raises(requests.ConnectionError):
        requests.get(status_url, timeout=2)


def test_method_name_check_cors_and_tags_flags(tmp_path):
    base = copy_versions(HALF_PLUS_TWO, tmp_path / "hp2")
    pb = base / "123" / "saved_model.pb"
    proto = saved_model_pb2.SavedModel.FromString(pb.read_bytes())
    proto.meta_graphs[0].signature_def["serving_default"].method_name = "custom/method"
    pb.write_bytes(proto.SerializeToString())
    body = {"instances": [1.0]}
    plain = start_server(model_base_path=str(base))
    try:  # TF Serving's default: no method-name check on Predict
        assert requests.post(rest_url(plain, "/v1/models/default:predict"), json=body, timeout=10).status_code == 200
    finally:
        plain.stop(grace=1)
    checked = start_server(model_base_path=str(base), enable_signature_method_name_check=True,
                           rest_api_enable_cors_support=True)
    try:
        response = requests.post(rest_url(checked, "/v1/models/default:predict"), json=body, timeout=10)
        assert response.status_code == 500
        assert response.json()["error"].endswith("Was: custom/method")
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert requests.options(rest_url(checked, "/v1/models/default:predict"), timeout=10).status_code == 204
    finally:
        checked.stop(grace=1)
    with pytest.raises(ServerStartError, match=r"has no MetaGraphDef tagged \['gpu', 'serve'\]"):
        start_server(model_base_path=str(base), saved_model_tags="serve,gpu")


def test_a_busy_port_is_a_clear_startup_error_and_leaves_nothing_running():
    first = start_server(model_base_path=str(tfs_testdata(HALF_PLUS_TWO)), rest_api_port=0)
    try:
        with pytest.raises(ServerStartError, match=f"cannot listen on 127.0.0.1:{first.grpc_port} for gRPC"):
            start_server(model_base_path=str(tfs_testdata(HALF_PLUS_TWO)), port=first.grpc_port, rest_api_port=0)
    finally:
        first.stop(grace=1)
    # A busy REST port (werkzeug would exit the process) is the same clear error, and the gRPC port is released.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        rest = busy.getsockname()[1]
        with pytest.raises(ServerStartError, match=f"cannot listen on 127.0.0.1:{rest} for REST"):
            start_server(model_base_path=str(tfs_testdata(HALF_PLUS_TWO)), rest_api_port=rest)
