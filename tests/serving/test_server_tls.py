"""--ssl_config_file: the gRPC server speaks TLS from TF Serving's SSLConfig; with client_verify it serves a client
holding a certificate from the configured CA and refuses one without it or with another CA's."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tests.serving.certs import make_certs
from tests.serving.server_harness import HALF_PLUS_TWO, start_server, tfs_testdata, write_config
from tfpipe.serving.tls import channel_credentials


def quote(pem: str) -> str:
    return '"' + pem.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    certs = make_certs(folder / "certs")
    ssl = write_config(folder / "ssl.txt", f"server_key: {quote(certs.server_key)}\n"
                       f"server_cert: {quote(certs.server_cert)}\ncustom_ca: {quote(certs.ca_cert)}\n"
                       "client_verify: true\n")
    server = start_server(model_base_path=str(tfs_testdata(HALF_PLUS_TWO)), ssl_config_file=str(ssl),
                          rest_api_port=0)
    yield server, certs
    server.stop(grace=1)


def predict(port: int, credentials) -> list[float]:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "default"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([1.0], np.float32)))
    with grpc.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
        return list(prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=10)
                    .outputs["y"].float_val)


def test_client_with_the_right_certificate_is_served(tls_server):
    server, certs = tls_server
    assert predict(server.grpc_port, channel_credentials(certs.ca_cert, certs.client_key, certs.client_cert)) == [2.5]


@pytest.mark.parametrize("client", ["none", "other_ca"])
def test_client_without_the_right_certificate_is_refused(tls_server, client):
    server, certs = tls_server
    credentials = channel_credentials(certs.ca_cert) if client == "none" else \
        channel_credentials(certs.ca_cert, certs.other_client_key, certs.other_client_cert)
    with pytest.raises(grpc.RpcError) as error:
        predict(server.grpc_port, credentials)
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE


def test_plaintext_client_is_refused(tls_server):
    server, _ = tls_server
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel, pytest.raises(grpc.RpcError):
        prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(predict_pb2.PredictRequest(), timeout=5)
