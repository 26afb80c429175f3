"""Test certificates made with the `openssl` CLI: a CA, a server certificate for 127.0.0.1/localhost, a client
certificate from the same CA, and a client certificate from an unrelated CA (for refusal tests)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Certs:
    """PEM text of every key and certificate; `folder` holds them as files too (<name>.key / <name>.crt)."""

    folder: Path
    ca_cert: str
    server_key: str
    server_cert: str
    client_key: str
    client_cert: str
    other_ca_cert: str
    other_client_key: str  # signed by other_ca: a server that trusts only `ca_cert` must refuse it
    other_client_cert: str


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {result.stderr.strip()}")


def _key(name: str, cwd: Path) -> None:
    # EC keys: much faster to make than RSA on the 2-core test machine, and gRPC accepts them.
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", f"{name}.key", cwd=cwd)


def _ca(name: str, cwd: Path) -> None:
    _key(name, cwd)
    _openssl("req", "-x509", "-new", "-key", f"{name}.key", "-sha256", "-days", "2", "-subj", f"/CN=tfpipe test {name}",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-out", f"{name}.crt", cwd=cwd)


def _leaf(name: str, ca: str, extensions: str, cwd: Path) -> None:
    _key(name, cwd)
    _openssl("req", "-new", "-key", f"{name}.key", "-subj", f"/CN={name}", "-out", f"{name}.csr", cwd=cwd)
    (cwd / f"{name}.ext").write_text(extensions)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-CAcreateserial",
             "-days", "2", "-sha256", "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=cwd)


def make_certs(folder: Path) -> Certs:
    """Write a CA, server and client certificates into `folder` (skips the test when `openssl` is absent)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    folder.mkdir(parents=True, exist_ok=True)
    _ca("ca", folder)
    _ca("other_ca", folder)
    _leaf("server", "ca", "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
                          "subjectAltName=IP:127.0.0.1,DNS:localhost\n", folder)
    client_ext = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"
    _leaf("client", "ca", client_ext, folder)
    _leaf("other_client", "other_ca", client_ext, folder)

    def read(name: str) -> str:
        return (folder / name).read_text()

    return Certs(folder, read("ca.crt"), read("server.key"), read("server.crt"), read("client.key"),
                 read("client.crt"), read("other_ca.crt"), read("other_client.key"), read("other_client.crt"))
