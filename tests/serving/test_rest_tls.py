"""--ssl_config_file also puts REST behind TLS: HTTPS with the server certificate's CA works, plain HTTP to the port
fails, and with client_verify a request needs a client certificate from custom_ca."""

from __future__ import annotations

import ssl

import pytest
import requests

from tests.serving.certs import make_certs
from tests.serving.server_harness import HALF_PLUS_TWO, start_server, tfs_testdata, write_config
from tfpipe.serving.config_protos import SSLConfig
from tfpipe.serving.tls import server_ssl_context


def quote(pem: str) -> str:
    return '"' + pem.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("rest-tls") / "certs")


def tls_server(certs, client_verify: bool):
    ssl_file = write_config(certs.folder / f"ssl-{client_verify}.txt",
                            f"server_key: {quote(certs.server_key)}\nserver_cert: {quote(certs.server_cert)}\n"
                            f"custom_ca: {quote(certs.ca_cert)}\nclient_verify: {str(client_verify).lower()}\n")
    return start_server(model_base_path=str(tfs_testdata(HALF_PLUS_TWO)), ssl_config_file=str(ssl_file))


@pytest.fixture(scope="module")
def one_way(certs):
    server = tls_server(certs, client_verify=False)
    yield server
    server.stop(grace=1)


@pytest.fixture(scope="module")
def mutual(certs):
    server = tls_server(certs, client_verify=True)
    yield server
    server.stop(grace=1)


def predict(port: int, scheme: str = "https", **kwargs) -> requests.Response:
    return requests.post(f"{scheme}://127.0.0.1:{port}/v1/models/default:predict", json={"instances": [1.0]},
                         timeout=10, **kwargs)


def test_https_with_the_servers_ca_is_served(one_way, certs):
    response = predict(one_way.rest_port, verify=str(certs.folder / "ca.crt"))
    assert response.json() == {"predictions": [2.5]}


def test_https_with_an_untrusted_server_certificate_fails(one_way, certs):
    with pytest.raises(requests.exceptions.SSLError):
        predict(one_way.rest_port, verify=str(certs.folder / "other_ca.crt"))


def test_plain_http_to_the_tls_port_fails(one_way, certs):
    with pytest.raises(requests.exceptions.ConnectionError):
        predict(one_way.rest_port, scheme="http")
    assert predict(one_way.rest_port, verify=str(certs.folder / "ca.crt")).ok  # and the server goes on


def test_client_verify_serves_a_client_certificate_from_custom_ca(mutual, certs):
    client = (str(certs.folder / "client.crt"), str(certs.folder / "client.key"))
    response = predict(mutual.rest_port, verify=str(certs.folder / "ca.crt"), cert=client)
    assert response.json() == {"predictions": [2.5]}


@pytest.mark.parametrize("client", ["none", "other_ca"])
def test_client_verify_refuses_a_missing_or_foreign_client_certificate(mutual, certs, client):
    cert = None if client == "none" else (str(certs.folder / "other_client.crt"),
                                          str(certs.folder / "other_client.key"))
    with pytest.raises(requests.exceptions.ConnectionError):  # SSLError, or a reset after the failed handshake
        predict(mutual.rest_port, verify=str(certs.folder / "ca.crt"), cert=cert)
    client = (str(certs.folder / "client.crt"), str(certs.folder / "client.key"))
    assert predict(mutual.rest_port, verify=str(certs.folder / "ca.crt"), cert=client).ok


def test_the_context_follows_the_ssl_config(certs):
    config = SSLConfig(server_key=certs.server_key, server_cert=certs.server_cert, custom_ca=certs.ca_cert)
    assert server_ssl_context(config).verify_mode == ssl.CERT_OPTIONAL
    config.client_verify = True
    assert server_ssl_context(config).verify_mode == ssl.CERT_REQUIRED
    assert server_ssl_context(SSLConfig(server_key=certs.server_key, server_cert=certs.server_cert)).verify_mode \
        == ssl.CERT_NONE
    with pytest.raises(ValueError, match="custom_ca is empty"):
        server_ssl_context(SSLConfig(server_key=certs.server_key, server_cert=certs.server_cert, client_verify=True))
