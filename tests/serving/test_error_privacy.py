"""Failures that describe the server (a model that fails to load, a model that trips over a server file, a bug)
reach clients as TF Serving's status code and "...; request id <id>", never a file path, exception class or
traceback; the log line with the same id has the detail. Client mistakes keep TF Serving's exact messages."""

from __future__ import annotations

import logging
import re
import shutil

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import get_model_status_pb2, model_management_pb2, predict_pb2

from tests.serving.server_harness import HALF_PLUS_TWO, config_of, copy_versions, rest_url, start_server, stubs

PRIVATE = re.compile(r"(?<![\w.])/[\w.-]+/|Traceback|File \"|\b\w*(Error|Exception)\b")


def check_private(message: str, caplog) -> None:
    """No path, traceback or exception class in `message`; its request id is in the server log with the detail."""
    assert not PRIVATE.search(message), message
    ref = re.search(r"; request id ([0-9a-f]{8})$", message)
    assert ref is not None, message
    logged = [r.getMessage() for r in caplog.records if ref.group(1) in r.getMessage()]
    assert logged and all(r.levelno == logging.ERROR for r in caplog.records if ref.group(1) in r.getMessage())


def write_file_reader(base, secret) -> None:
    """A TF2 SavedModel whose signature reads a file baked into the graph: the read fails on the server."""

    class Reader(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def serve(self, x):
            return {"y": x + tf.strings.to_number(tf.io.read_file(str(secret)))}

    module = Reader()
    tf.saved_model.save(module, str(base / "1"), signatures={"serving_default": module.serve})


@pytest.fixture
def served(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    copy_versions(HALF_PLUS_TWO, tmp_path / "models" / "hp2")
    write_file_reader(tmp_path / "models" / "reader", tmp_path / "secret" / "offset.txt")
    broken = copy_versions(HALF_PLUS_TWO, tmp_path / "models" / "broken")
    shutil.rmtree(broken / "123" / "variables")  # loads fail, and TensorFlow's message names the folder
    config = tmp_path / "models.config"
    config.write_text(f'model_config_list {{ config {{ name: "default" base_path: "{tmp_path}/models/hp2" }} '
                      f'config {{ name: "reader" base_path: "{tmp_path}/models/reader" }} }}')
    server = start_server(model_config_file=str(config), allowed_model_roots=[str(tmp_path / "models")])
    prediction, model_service, channel = stubs(server)
    yield server, prediction, model_service
    channel.close()
    server.stop(grace=1)


def predict_request(model: str, dtype=np.float32) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest(model_spec={"name": model})
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([1.0], dtype)))
    return request


def test_a_model_that_fails_to_load(served, tmp_path, caplog):
    server, _, model_service = served
    config = config_of(("default", tmp_path / "models" / "hp2"), ("broken", tmp_path / "models" / "broken"))
    with pytest.raises(grpc.RpcError) as error:
        model_service.HandleReloadConfigRequest(model_management_pb2.ReloadConfigRequest(config=config), timeout=60)
    assert error.value.code() == grpc.StatusCode.UNKNOWN
    assert error.value.details().startswith("Failed to load version 123 of model broken; request id ")
    check_private(error.value.details(), caplog)
    assert any(str(tmp_path / "models" / "broken") in r.getMessage() for r in caplog.records)  # the log has it

    status = model_service.GetModelStatus(get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "broken"}),
                                          timeout=30).model_version_status[0]
    check_private(status.status.error_message, caplog)
    rest = requests.get(rest_url(server, "/v1/models/broken"), timeout=30).json()
    check_private(rest["model_version_status"][0]["status"]["error_message"], caplog)


def test_a_model_that_fails_on_a_server_file(served, caplog):
    server, prediction, _ = served
    with pytest.raises(grpc.RpcError) as error:
        prediction.Predict(predict_request("reader"), timeout=30)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND  # TensorFlow's code is kept
    assert error.value.details().startswith("The model failed to run; request id ")
    check_private(error.value.details(), caplog)
    response = requests.post(rest_url(server, "/v1/models/reader:predict"), json={"instances": [1.0]}, timeout=30)
    assert response.status_code == 404
    check_private(response.json()["error"], caplog)


def test_an_internal_error(served, caplog):
    server, prediction, _ = served
    with server.manager.acquire(predict_request("reader").model_spec) as servable:
        servable.close()  # a servable used after release: the kind of bug only INTERNAL can describe
    with pytest.raises(grpc.RpcError) as error:
        prediction.Predict(predict_request("reader"), timeout=30)
    assert error.value.code() == grpc.StatusCode.INTERNAL
    assert error.value.details().startswith("Internal error; request id ")
    check_private(error.value.details(), caplog)
    response = requests.post(rest_url(server, "/v1/models/reader:predict"), json={"instances": [1.0]}, timeout=30)
    assert response.status_code == 500
    check_private(response.json()["error"], caplog)
    assert any("Traceback" in (r.exc_text or "") for r in caplog.records)  # the log keeps the traceback


def test_client_mistakes_keep_tf_servings_messages(served):
    server, prediction, _ = served
    with pytest.raises(grpc.RpcError) as error:
        prediction.Predict(predict_request("nope"), timeout=30)
    assert (error.value.code(), error.value.details()) == (grpc.StatusCode.NOT_FOUND,
                                                           "Servable not found for request: Latest(nope)")
    with pytest.raises(grpc.RpcError) as error:
        prediction.Predict(predict_request("default", np.float64), timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # TensorFlow's own text, about the request
    assert "double" in error.value.details() and "request id" not in error.value.details()
