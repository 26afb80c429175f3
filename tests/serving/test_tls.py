"""TLS from TF Serving's SSLConfig on a real gRPC server on 127.0.0.1: mTLS refuses clients without the right
certificate and lets the right one through; bad configs fail with errors naming the field."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from tests.serving.certs import Certs, make_certs
from tfpipe.serving.config_protos import SSLConfig, parse_text_proto
from tfpipe.serving.tls import channel_credentials, server_credentials

METHOD = "/tfpipe.test.Echo/Echo"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@dataclass
class Server:
    port: int
    server: grpc.Server


def _serve(credentials: grpc.ServerCredentials) -> Server:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    handler = grpc.unary_unary_rpc_method_handler(lambda request, context: b"echo:" + request)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("tfpipe.test.Echo", {"Echo": handler}),))
    port = server.add_secure_port("127.0.0.1:0", credentials)
    assert port > 0
    server.start()
    return Server(port, server)


@pytest.fixture(scope="module")
def mtls_server(certs: Certs) -> Iterator[Server]:
    config = SSLConfig(server_key=certs.server_key, server_cert=certs.server_cert, custom_ca=certs.ca_cert,
                       client_verify=True)
    server = _serve(server_credentials(config))
    yield server
    server.server.stop(None)


def _call(port: int, credentials: grpc.ChannelCredentials) -> bytes:
    with grpc.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
        return channel.unary_unary(METHOD)(b"hi", timeout=10)


def test_mtls_lets_the_right_client_through(mtls_server: Server, certs: Certs) -> None:
    credentials = channel_credentials(certs.ca_cert, certs.client_key, certs.client_cert)
    assert _call(mtls_server.port, credentials) == b"echo:hi"


def test_mtls_refuses_a_client_without_certificate(mtls_server: Server, certs: Certs) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        _call(mtls_server.port, channel_credentials(certs.ca_cert))
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


def test_mtls_refuses_a_client_certificate_from_another_ca(mtls_server: Server, certs: Certs) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        _call(mtls_server.port, channel_credentials(certs.ca_cert, certs.other_client_key, certs.other_client_cert))
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    # ... and the server is still fine for the right client afterwards.
    assert _call(mtls_server.port, channel_credentials(certs.ca_cert, certs.client_key, certs.client_cert)) == \
        b"echo:hi"


def test_plain_tls_without_client_verify(certs: Certs, tmp_path: Path) -> None:
    # The SSLConfig comes from a text proto, as --ssl_config_file gives it to tensorflow_model_server.
    path = tmp_path / "ssl.txt"
    path.write_text(f"server_key: {_quote(certs.server_key)}\nserver_cert: {_quote(certs.server_cert)}\n")
    server = _serve(server_credentials(parse_text_proto(path, SSLConfig)))
    try:
        assert _call(server.port, channel_credentials(certs.ca_cert)) == b"echo:hi"
        # A client that does not trust the server's CA is refused by its own handshake.
        with pytest.raises(grpc.RpcError) as caught:
            _call(server.port, channel_credentials(certs.other_ca_cert))
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        # Plaintext against the TLS port fails too.
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel, pytest.raises(grpc.RpcError):
            channel.unary_unary(METHOD)(b"hi", timeout=5)
    finally:
        server.server.stop(None)


def _quote(pem: str) -> str:
    return '"' + pem.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def test_bad_configs_name_the_field(certs: Certs) -> None:
    with pytest.raises(ValueError, match="SSLConfig is missing server_key and server_cert"):
        server_credentials(SSLConfig())
    with pytest.raises(ValueError, match="SSLConfig is missing server_cert"):
        server_credentials(SSLConfig(server_key=certs.server_key))
    with pytest.raises(ValueError, match="client_verify is true but custom_ca is empty"):
        server_credentials(SSLConfig(server_key=certs.server_key, server_cert=certs.server_cert, client_verify=True))
    with pytest.raises(ValueError, match="server_key/server_cert: certificate is not a PEM certificate"):
        server_credentials(SSLConfig(server_key=certs.server_key, server_cert="/etc/ssl/server.crt"))
    with pytest.raises(ValueError, match="key is not a PEM private key"):
        server_credentials(SSLConfig(server_key="not a key", server_cert=certs.server_cert))
    with pytest.raises(ValueError, match="cannot be used together"):
        server_credentials(SSLConfig(server_key=certs.client_key, server_cert=certs.server_cert))
    with pytest.raises(ValueError, match="custom_ca is not a valid PEM CA certificate"):
        server_credentials(SSLConfig(server_key=certs.server_key, server_cert=certs.server_cert,
                                     custom_ca="-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n"))
    with pytest.raises(ValueError, match="needs both private_key and certificate_chain"):
        channel_credentials(certs.ca_cert, private_key=certs.client_key)
