"""Access flags on a real server: config reloads only on loopback unless --enable_model_service says otherwise,
--admin_token_file guarding reloads and --auth_token_file guarding every other gRPC call and REST request
(`authorization: Bearer <token>`)."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    predict_pb2,
)

from tests.serving.server_harness import HALF_PLUS_TWO, config_of, rest_url, start_server, stubs, tfs_testdata
from tfpipe.serving.client import ServingClient, ServingClientError
from tfpipe.serving.flags import parse_flags
from tfpipe.serving.server import ServerStartError

ADMIN, AUTH = "admin-7f3e9a1c", "predict-52b8d0e4"
REFUSED = ("Config reloads (ModelService/HandleReloadConfigRequest) are disabled on this server: start it with "
           "--enable_model_service=true to allow them")


def bearer(token: str | None) -> list[tuple[str, str]]:
    return [] if token is None else [("authorization", f"Bearer {token}")]


def predict(stub, token: str | None = None) -> list[float]:
    request = predict_pb2.PredictRequest(model_spec={"name": "default"})
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([1.0], np.float32)))
    return list(stub.Predict(request, metadata=bearer(token), timeout=30).outputs["y"].float_val)


def reload(stub, token: str | None = None):
    config = config_of(("default", tfs_testdata(HALF_PLUS_TWO)))  # the start-up config again: a no-op reload
    return stub.HandleReloadConfigRequest(model_management_pb2.ReloadConfigRequest(config=config),
                                          metadata=bearer(token), timeout=60)


def refusal(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as error:
        call()
    return error.value.code(), error.value.details()


# -- --enable_model_service --------------------------------------------------------------------------------------


@pytest.mark.parametrize("host, flag, served", [("127.0.0.1", None, True), ("0.0.0.0", None, False),
                                                ("0.0.0.0", True, True), ("127.0.0.1", False, False)])
def test_reloads_default_to_loopback_only(host, flag, served):
    server = start_server(model_base_path=str(tfs_testdata(HALF_PLUS_TWO)), host=host, enable_model_service=flag,
                          rest_api_port=0)
    prediction, model_service, channel = stubs(server)
    try:
        if served:
            assert reload(model_service).status.error_code == 0
        else:
            assert refusal(lambda: reload(model_service)) == (grpc.StatusCode.PERMISSION_DENIED, REFUSED)
        # status and predictions are not admin calls
        status = model_service.GetModelStatus(get_model_status_pb2.GetModelStatusRequest(
            model_spec={"name": "default"}), timeout=30)
        assert status.model_version_status[0].version == 123
        assert predict(prediction) == [2.5]
    finally:
        channel.close()
        server.stop(grace=1)


# -- tokens --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("auth")
    (folder / "admin.token").write_text(ADMIN + "\n")
    (folder / "auth.token").write_text(AUTH + "\n")
    server = start_server(model_base_path=str(tfs_testdata(HALF_PLUS_TWO)),
                          admin_token_file=str(folder / "admin.token"), auth_token_file=str(folder / "auth.token"),
                          monitoring_config_file=str(tfs_testdata("monitoring_config.txt")),
                          rest_api_enable_cors_support=True)
    prediction, model_service, channel = stubs(server)
    yield server, prediction, model_service
    channel.close()
    server.stop(grace=1)


@pytest.mark.parametrize("token, message", [(None, "Missing bearer token: send the header 'authorization: Bearer "
                                                   "<token>'"), ("nope", "Invalid bearer token")])
def test_grpc_calls_without_the_token_are_unauthenticated(guarded, token, message):
    _, prediction, model_service = guarded
    metadata_request = get_model_metadata_pb2.GetModelMetadataRequest(model_spec={"name": "default"},
                                                                      metadata_field=["signature_def"])
    status_request = get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "default"})
    calls = [lambda: predict(prediction, token),
             lambda: prediction.GetModelMetadata(metadata_request, metadata=bearer(token), timeout=30),
             lambda: model_service.GetModelStatus(status_request, metadata=bearer(token), timeout=30),
             lambda: reload(model_service, token)]
    for call in calls:
        assert refusal(call) == (grpc.StatusCode.UNAUTHENTICATED, message)


def test_grpc_calls_with_the_token_are_served(guarded):
    _, prediction, model_service = guarded
    assert predict(prediction, AUTH) == [2.5]
    assert predict(prediction, ADMIN) == [2.5]  # the admin token may do everything
    status = model_service.GetModelStatus(get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "default"}),
                                          metadata=bearer(AUTH), timeout=30)
    assert status.model_version_status[0].state == get_model_status_pb2.ModelVersionStatus.AVAILABLE


def test_reloads_need_the_admin_token(guarded):
    _, _, model_service = guarded
    assert refusal(lambda: reload(model_service, AUTH)) == (grpc.StatusCode.UNAUTHENTICATED, "Invalid bearer token")
    assert reload(model_service, ADMIN).status.error_code == 0


@pytest.mark.parametrize("path", ["/v1/models/default", "/v1/models/default/metadata",
                                  "/monitoring/prometheus/metrics"])
def test_rest_needs_the_token(guarded, path):
    server, _, _ = guarded
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": AUTH}):
        response = requests.get(rest_url(server, path), headers=headers, timeout=30)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.headers["Access-Control-Allow-Origin"] == "*"  # a browser may read why
        assert response.json()["error"] in ("Invalid bearer token", "Missing bearer token: send the header "
                                            "'authorization: Bearer <token>'")
    assert requests.get(rest_url(server, path), headers={"Authorization": f"Bearer {AUTH}"}, timeout=30).ok


def test_rest_predict_with_the_token_and_cors_preflight_without(guarded):
    server, _, _ = guarded
    url = rest_url(server, "/v1/models/default:predict")
    response = requests.post(url, json={"instances": [1.0]}, headers={"Authorization": f"Bearer {AUTH}"}, timeout=30)
    assert response.json() == {"predictions": [2.5]}
    assert requests.post(url, json={"instances": [1.0]}, timeout=30).status_code == 401
    preflight = requests.options(url, headers={"Origin": "https://app.example", "Access-Control-Request-Method":
                                               "POST", "Access-Control-Request-Headers": "authorization"}, timeout=30)
    assert preflight.status_code == 204  # browsers send preflights without credentials
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_serving_client_sends_its_token(guarded, transport):
    server, _, _ = guarded
    target = rest_url(server) if transport == "rest" else f"127.0.0.1:{server.grpc_port}"
    with ServingClient(target, model="default", token=AUTH) as client:
        assert client.predict(inputs={"x": np.array([1.0], np.float32)})["y"].tolist() == [2.5]
        assert client.status()[0]["state"] == "AVAILABLE"
    with ServingClient(target, model="default", retries=0) as client, pytest.raises(ServingClientError) as error:
        client.status()
    assert error.value.code == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("content", ["", "two words\n"])
def test_an_unusable_token_file_stops_the_start(tmp_path, content):
    token = tmp_path / "token"
    token.write_text(content)
    with pytest.raises(ServerStartError, match="--auth_token_file"):
        start_server(model_base_path=str(tfs_testdata(HALF_PLUS_TWO)), auth_token_file=str(token), rest_api_port=0)


def test_access_flags_parse():
    options = parse_flags(["--enable_model_service=false", "--admin_token_file=/run/a", "--auth_token_file", "/run/b"])
    assert (options.enable_model_service, options.admin_token_file, options.auth_token_file) == (False, "/run/a",
                                                                                                 "/run/b")
    assert parse_flags([]).enable_model_service is None  # decided from --host
    assert parse_flags(["--enable_model_service"]).enable_model_service is True
