"""The REST port's HTTP server against clients that stall: 200 connections stopped halfway through a body leave a
normal predict answering in well under a second, and are closed once --rest_api_read_timeout_in_ms passes; so are
connections stalled in their headers or silent from the start. --rest_api_max_connections turns requests on
connections beyond it away with 503."""

from __future__ import annotations

import select
import socket
import time

import pytest
import requests

from tests.serving.server_harness import HALF_PLUS_TWO, rest_url, start_server, tfs_testdata
from tfpipe.serving.flags import parse_flags

TIMEOUT_S = 1.5
BODY = b'{"instances": [1.0, 2.0, 5.0]}'


def head(length: int) -> bytes:
    return (f"POST /v1/models/default:predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


def connect(port: int, data: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    if data:
        sock.sendall(data)
    return sock


def closed_after(socks: list[socket.socket], start: float, limit_s: float) -> list[float]:
    """Seconds from `start` until the server closed each socket (recv returns b""), watching up to `limit_s`."""
    pending, closed = {s.fileno(): s for s in socks}, []
    while pending and time.monotonic() - start < limit_s:
        ready, _, _ = select.select(list(pending.values()), [], [], 0.1)
        for sock in ready:
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                closed.append(time.monotonic() - start)
                del pending[sock.fileno()]
    return closed


@pytest.fixture(scope="module")
def server():
    server = start_server(model_base_path=str(tfs_testdata(HALF_PLUS_TWO)),
                          rest_api_read_timeout_in_ms=int(TIMEOUT_S * 1000), rest_api_max_connections=400)
    yield server
    server.stop(grace=1)


def test_200_clients_stalled_mid_body_neither_block_a_predict_nor_stay_open(server):
    url = rest_url(server, "/v1/models/default:predict")
    assert requests.post(url, data=BODY, timeout=10).json() == {"predictions": [2.5, 3.0, 4.5]}  # warm
    stalled = [connect(server.rest_port, head(1000) + BODY[:12]) for _ in range(200)]
    start = time.monotonic()
    try:
        time.sleep(0.3)  # the server has read their headers and is waiting for the rest
        took = time.perf_counter()
        response = requests.post(url, data=BODY, timeout=10)
        took = time.perf_counter() - took
        assert response.json() == {"predictions": [2.5, 3.0, 4.5]}
        assert took < 1.0, f"a predict took {took:.2f} s beside 200 stalled clients"
        closed = closed_after(stalled, start, TIMEOUT_S + 5)
    finally:
        for sock in stalled:
            sock.close()
    assert len(closed) == 200, f"{200 - len(closed)} stalled connections still open {TIMEOUT_S + 5} s later"
    assert min(closed) > TIMEOUT_S * 0.6  # closed by the timeout, not at once
    assert requests.post(url, data=BODY, timeout=10).status_code == 200


def test_clients_stalled_in_headers_or_silent_are_closed_too(server):
    socks = [connect(server.rest_port, b""), connect(server.rest_port, head(len(BODY))[:30])]
    start = time.monotonic()
    try:
        closed = closed_after(socks, start, TIMEOUT_S + 5)
    finally:
        for sock in socks:
            sock.close()
    assert len(closed) == 2 and min(closed) > TIMEOUT_S * 0.6


def test_a_slow_but_steady_client_is_served():
    server = start_server(model_base_path=str(tfs_testdata(HALF_PLUS_TWO)), rest_api_read_timeout_in_ms=800)
    try:
        sock = connect(server.rest_port, head(len(BODY)))
        with sock:
            for i in range(0, len(BODY), 6):  # 0.4 s between pieces: over 2 s in all, but never quiet for 0.8 s
                time.sleep(0.4)
                sock.sendall(BODY[i:i + 6])
            answer = b""
            while not answer.endswith(b"}"):  # headers and body may come in separate segments
                answer += sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b'{"predictions": [2.5,3.0,4.5]}')
    finally:
        server.stop(grace=1)


def test_requests_beyond_the_connection_limit_answer_503():
    server = start_server(model_base_path=str(tfs_testdata(HALF_PLUS_TWO)), rest_api_max_connections=3)
    idle = [connect(server.rest_port, b"") for _ in range(3)]
    try:
        time.sleep(0.2)
        assert requests.post(rest_url(server, "/v1/models/default:predict"), data=BODY, timeout=10).status_code == 503
        idle.pop().close()
        time.sleep(0.2)
        assert requests.post(rest_url(server, "/v1/models/default:predict"), data=BODY, timeout=10).status_code == 200
    finally:
        for sock in idle:
            sock.close()
        server.stop(grace=1)


def test_the_flags_reach_server_options():
    options = parse_flags(["--rest_api_read_timeout_in_ms=500", "--rest_api_max_connections", "7"])
    assert (options.rest_api_read_timeout_in_ms, options.rest_api_max_connections) == (500, 7)
