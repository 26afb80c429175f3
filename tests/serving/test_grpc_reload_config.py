"""ModelService.HandleReloadConfigRequest: swapping half_plus_two for half_plus_three as TF Serving's own test
does (half_plus_three's folder named in --allowed_model_roots), and polling --model_config_file; which paths a reload
may name is tests/serving/test_reload_roots.py."""

from __future__ import annotations

import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import get_model_status_pb2, model_management_pb2, predict_pb2

from tests.serving.server_harness import HALF_PLUS_THREE, HALF_PLUS_TWO, config_of, start_server, stubs, tfs_testdata


@pytest.fixture
def server():
    server = start_server(model_name="half_plus_two", model_base_path=str(tfs_testdata(HALF_PLUS_TWO)),
                          allowed_model_roots=[str(tfs_testdata(HALF_PLUS_THREE))], rest_api_port=0)
    yield server
    server.stop(grace=1)


def predict(stub, model: str) -> list[float]:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([2.0], np.float32)))
    return list(stub.Predict(request).outputs["y"].float_val)


def reload(model_stub, config):
    return model_stub.HandleReloadConfigRequest(model_management_pb2.ReloadConfigRequest(config=config))


def test_reload_swaps_half_plus_two_for_half_plus_three(server):
    stub, model_stub, channel = stubs(server)
    assert predict(stub, "half_plus_two") == [3.0]
    response = reload(model_stub, config_of(("half_plus_three", tfs_testdata(HALF_PLUS_THREE))))
    assert response.status.error_code == 0
    assert predict(stub, "half_plus_three") == [4.0]
    with pytest.raises(grpc.RpcError) as error:
        predict(stub, "half_plus_two")
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert error.value.details() == "Servable not found for request: Latest(half_plus_two)"
    status = model_stub.GetModelStatus(get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "half_plus_two"}))
    assert status.model_version_status[0].state == get_model_status_pb2.ModelVersionStatus.END
    channel.close()


def test_reload_with_a_missing_base_path_is_invalid_argument(server):
    stub, model_stub, channel = stubs(server)
    missing = tfs_testdata(HALF_PLUS_THREE) / "no_such_model"
    with pytest.raises(grpc.RpcError) as error:
        reload(model_stub, config_of(("gone", missing)))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details() == f"Could not find base path {missing} for servable gone"
    assert predict(stub, "half_plus_two") == [3.0]
    channel.close()


def test_model_config_file_is_polled_for_changes(tmp_path):
    path = tmp_path / "models.config"
    path.write_text(f'model_config_list {{ config {{ name: "hp" base_path: "{tfs_testdata(HALF_PLUS_TWO)}" }} }}')
    server = start_server(model_config_file=str(path), model_config_file_poll_wait_seconds=1, rest_api_port=0)
    stub, _, channel = stubs(server)
    try:
        assert predict(stub, "hp") == [3.0]
        three = tfs_testdata(HALF_PLUS_THREE)
        path.write_text(f'model_config_list {{ config {{ name: "hp3" base_path: "{three}" }} }}')
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and server.manager.model_names() != ["hp3"]:
            time.sleep(0.2)
        assert predict(stub, "hp3") == [4.0]
    finally:
        channel.close()
        server.stop(grace=1)
