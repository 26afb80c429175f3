"""TLS/mTLS from TF Serving's SSLConfig (`--ssl_config_file`): gRPC server credentials, an `ssl.SSLContext` for the
REST server (tfpipe's addition; TF Serving's REST is plain HTTP), and matching client channel credentials.

As `tensorflow_model_server`: the config carries PEM text (not paths); `client_verify` requires and verifies a client
certificate signed by `custom_ca`.
"""

from __future__ import annotations

import os
import ssl
import tempfile

import grpc

PemText = str | bytes


def _text(pem: PemText) -> str:
    return pem.decode("utf-8") if isinstance(pem, bytes) else pem


def _bytes(pem: PemText | None) -> bytes | None:
    if pem is None or pem == "" or pem == b"":
        return None
    return pem.encode("utf-8") if isinstance(pem, str) else pem


def check_key_and_certificate(key: PemText, cert: PemText, what: str) -> None:
    """Raise ValueError unless `key` and `cert` are PEM and belong together (checked with OpenSSL via `ssl`)."""
    _load_key_pair(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), key, cert, what)


def _load_key_pair(context: ssl.SSLContext, key: PemText, cert: PemText, what: str) -> None:
    key, cert = _text(key), _text(cert)
    if "-----BEGIN" not in cert or "CERTIFICATE-----" not in cert:
        raise ValueError(f"{what} certificate is not a PEM certificate (expected '-----BEGIN CERTIFICATE-----')")
    if "-----BEGIN" not in key or "PRIVATE KEY-----" not in key:
        raise ValueError(f"{what} key is not a PEM private key (expected '-----BEGIN ... PRIVATE KEY-----')")
    # ssl only loads key pairs from files; a private temp dir keeps the key unreadable to others.
    with tempfile.TemporaryDirectory(prefix="tfpipe-tls-") as folder:
        cert_path, key_path = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
        with open(cert_path, "w", encoding="utf-8") as out:
            out.write(cert)
        with open(os.open(key_path, os.O_WRONLY | os.O_CREAT, 0o600), "w", encoding="utf-8") as out:
            out.write(key)
        try:
            context.load_cert_chain(cert_path, key_path)
        except ssl.SSLError as error:
            raise ValueError(f"{what} key and certificate cannot be used together: {error.reason or error}") from error


def check_ca(ca: PemText, what: str) -> None:
    """Raise ValueError unless `ca` holds at least one valid PEM certificate."""
    try:
        ssl.create_default_context(cadata=_text(ca))
    except (ssl.SSLError, ValueError) as error:
        raise ValueError(f"{what} is not a valid PEM CA certificate: {error}") from error


def _check_ssl_config(ssl_config) -> None:
    """Raise ValueError naming the SSLConfig field that is missing or malformed."""
    if not ssl_config.server_key or not ssl_config.server_cert:
        missing = [name for name in ("server_key", "server_cert") if not getattr(ssl_config, name)]
        raise ValueError(f"SSLConfig is missing {' and '.join(missing)} (PEM text of the server's private key and "
                         "certificate)")
    check_key_and_certificate(ssl_config.server_key, ssl_config.server_cert, "SSLConfig server_key/server_cert:")
    if ssl_config.custom_ca:
        check_ca(ssl_config.custom_ca, "SSLConfig custom_ca")
    elif ssl_config.client_verify:
        raise ValueError("SSLConfig client_verify is true but custom_ca is empty: give the PEM certificate of the CA "
                         "that signs client certificates")


def server_ssl_context(ssl_config) -> ssl.SSLContext:
    """A server-side `ssl.SSLContext` (TLS 1.2+) from a `tensorflow.serving.SSLConfig`, for the REST server:
    `client_verify` → CERT_REQUIRED against `custom_ca`; `custom_ca` alone → a client certificate is checked when
    sent (CERT_OPTIONAL), as gRPC does. Raises ValueError naming the field that is missing or malformed."""
    _check_ssl_config(ssl_config)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_key_pair(context, ssl_config.server_key, ssl_config.server_cert, "SSLConfig server_key/server_cert:")
    if ssl_config.custom_ca:
        context.load_verify_locations(cadata=_text(ssl_config.custom_ca))
        context.verify_mode = ssl.CERT_REQUIRED if ssl_config.client_verify else ssl.CERT_OPTIONAL
    return context


def server_credentials(ssl_config) -> grpc.ServerCredentials:
    """gRPC server credentials from a `tensorflow.serving.SSLConfig` message.

    Raises ValueError naming the SSLConfig field that is missing or malformed.
    """
    _check_ssl_config(ssl_config)
    return grpc.ssl_server_credentials(
        [(_bytes(ssl_config.server_key), _bytes(ssl_config.server_cert))],
        root_certificates=_bytes(ssl_config.custom_ca),
        require_client_auth=bool(ssl_config.client_verify))


def channel_credentials(root_certificates: PemText | None = None, private_key: PemText | None = None,
                        certificate_chain: PemText | None = None) -> grpc.ChannelCredentials:
    """Client credentials: the CA that signed the server's certificate (None: system roots), and for mTLS the
    client's own key and certificate."""
    if root_certificates:
        check_ca(root_certificates, "root_certificates")
    if bool(private_key) != bool(certificate_chain):
        raise ValueError("a client certificate needs both private_key and certificate_chain")
    if private_key:
        check_key_and_certificate(private_key, certificate_chain, "client")
    return grpc.ssl_channel_credentials(root_certificates=_bytes(root_certificates), private_key=_bytes(private_key),
                                        certificate_chain=_bytes(certificate_chain))
