"""The REST port's HTTP server: uvicorn (asyncio, HTTP/1.1 through h11) on its own thread, in front of a WSGI app.

A connection costs no thread while its client sends: headers and body arrive on the event loop, and only a whole
request goes to a worker thread. A client that goes quiet for `read_timeout_s` while sending a request (or between
requests) is disconnected, as libevent's per-read timeout does in TF Serving; at most `max_connections` connections
are served at once (uvicorn answers 503 beyond). TLS comes from an `ssl.SSLContext`.
"""

from __future__ import annotations

import asyncio
import io
import math
import socket
import ssl
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

Peer = tuple[str, int]


class _Deadlines:
    """One timer per connection (on the event loop): armed while the client owes bytes, held while its request
    runs. uvicorn itself only times idle keep-alive connections, not a request that stops halfway."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._open: dict[Peer, list] = {}  # peer → [transport, timer handle | None, running]

    def opened(self, peer: Peer | None, transport: asyncio.BaseTransport) -> None:
        if peer is not None:
            self._open[peer] = [transport, None, False]
            self.touch(peer)

    def touch(self, peer: Peer | None) -> None:
        """Bytes arrived (or a response went out): the client has `timeout_s` again, unless its request runs."""
        entry = self._open.get(peer)
        if entry is None or entry[2]:
            return
        if entry[1] is not None:
            entry[1].cancel()
        entry[1] = asyncio.get_running_loop().call_later(self.timeout_s, entry[0].close)

    def running(self, peer: Peer | None, running: bool) -> None:
        entry = self._open.get(peer)
        if entry is not None:
            entry[2] = running
            if running and entry[1] is not None:
                entry[1].cancel()
                entry[1] = None
            elif not running:
                self.touch(peer)

    def closed(self, peer: Peer | None) -> None:
        entry = self._open.pop(peer, None)
        if entry is not None and entry[1] is not None:
            entry[1].cancel()


def _peer(address) -> Peer | None:
    """(host, port) as uvicorn puts it in the ASGI scope's "client" (IPv6 peernames have four parts)."""
    return (str(address[0]), int(address[1])) if isinstance(address, tuple) and len(address) >= 2 else None


def _protocol(deadlines: _Deadlines) -> type[H11Protocol]:
    """uvicorn's h11 protocol, telling `deadlines` when a connection opens, receives and closes (the asyncio
    Protocol methods only; everything else is uvicorn's)."""

    class TimedH11Protocol(H11Protocol):
        def connection_made(self, transport) -> None:
            self.tfpipe_peer = _peer(transport.get_extra_info("peername"))
            super().connection_made(transport)
            deadlines.opened(self.tfpipe_peer, transport)

        def data_received(self, data: bytes) -> None:
            deadlines.touch(self.tfpipe_peer)
            super().data_received(data)

        def connection_lost(self, exc: Exception | None) -> None:
            deadlines.closed(self.tfpipe_peer)
            super().connection_lost(exc)

    return TimedH11Protocol


class _WsgiBridge:
    """ASGI → WSGI: reads the body on the event loop (up to `max_body_bytes`; a larger body is not read, and the
    app sees its declared length), then runs the app on the worker pool."""

    def __init__(self, app: Callable, pool: ThreadPoolExecutor, deadlines: _Deadlines, max_body_bytes: int) -> None:
        self.app, self.pool, self.deadlines, self.max_body_bytes = app, pool, deadlines, max_body_bytes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        declared = next((v for k, v in headers if k == "content-length"), None)
        length = int(declared) if declared and declared.isdigit() else None
        body = bytearray()
        if length is None or length <= self.max_body_bytes:
            while len(body) <= self.max_body_bytes:
                message = await receive()
                if message["type"] == "http.disconnect":  # the client left, or went quiet too long
                    return
                body += message.get("body", b"")
                if not message.get("more_body", False):
                    break
        too_big = (length or 0) > self.max_body_bytes or len(body) > self.max_body_bytes
        environ = _environ(scope, headers, bytes(body) if not too_big else b"",
                           max(length or 0, len(body)) if too_big else len(body))
        self.deadlines.running(scope.get("client"), True)
        try:
            status, response_headers, payload = await asyncio.get_running_loop().run_in_executor(
                self.pool, self._call, environ)
            if too_big:  # the rest of the body was never read, so the connection cannot carry another request
                response_headers.append((b"connection", b"close"))
            await send({"type": "http.response.start", "status": status, "headers": response_headers})
            await send({"type": "http.response.body", "body": payload})
        finally:
            self.deadlines.running(scope.get("client"), False)

    def _call(self, environ: dict) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        started: list = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info=None) -> Callable:
            started[:] = [int(status.split()[0]), [(k.lower().encode("latin-1"), v.encode("latin-1"))
                                                   for k, v in headers]]
            return lambda data: None

        result = self.app(environ, start_response)
        try:
            payload = b"".join(result)
        finally:
            getattr(result, "close", lambda: None)()
        return started[0], started[1], payload


def _environ(scope: dict, headers: list[tuple[str, str]], body: bytes, length: int) -> dict:
    server = scope.get("server") or ("", 0)
    client = scope.get("client") or ("", 0)
    environ = {
        "REQUEST_METHOD": scope["method"], "SCRIPT_NAME": "",
        "PATH_INFO": scope["path"].encode("utf-8").decode("latin-1"),  # WSGI carries bytes as latin-1 text
        "QUERY_STRING": scope["query_string"].decode("latin-1"), "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]), "REMOTE_ADDR": str(client[0]), "REMOTE_PORT": str(client[1]),
        "SERVER_PROTOCOL": f"HTTP/{scope['http_version']}", "CONTENT_LENGTH": str(length),
        "wsgi.version": (1, 0), "wsgi.url_scheme": scope.get("scheme", "http"), "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
    }
    for name, value in headers:
        if name == "content-length":
            continue
        key = "CONTENT_TYPE" if name == "content-type" else "HTTP_" + name.upper().replace("-", "_")
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


class RestServer:
    """A WSGI app on uvicorn, started on a bound port and stopped gracefully.

    Args:
        app: the WSGI application (tfpipe.serving.rest.RestApi, possibly wrapped).
        host, port: where to listen (port 0: a free one; see `port` after start()).
        read_timeout_s: how long a client may go quiet while it owes bytes of a request, or between requests.
        max_connections: connections served at once (0: no limit); uvicorn answers 503 to requests beyond.
        max_body_bytes: a body declared or found larger is not read (the app answers for it).
        threads: workers that run the app on whole requests.
        ssl_context: serve HTTPS with it (None: plain HTTP).
    """

    def __init__(self, app: Callable, host: str, port: int, *, read_timeout_s: float = 30.0,
                 max_connections: int = 1024, max_body_bytes: int = 2**31 - 1, threads: int = 8,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="tfpipe-rest")
        deadlines = _Deadlines(read_timeout_s)
        self._socket = _bind(host, port)  # OSError here: the caller reports the busy port
        self.port: int = self._socket.getsockname()[1]
        # limit_concurrency counts the asking connection too, hence + 1
        self._config = uvicorn.Config(
            _WsgiBridge(app, self._pool, deadlines, max_body_bytes), http=_protocol(deadlines), ws="none",
            interface="asgi3", lifespan="off", log_config=None, access_log=False, proxy_headers=False,
            server_header=False,
            limit_concurrency=max_connections + 1 if max_connections > 0 else None,
            timeout_keep_alive=max(1, math.ceil(read_timeout_s)),
            ssl_context_factory=(lambda config, default: ssl_context) if ssl_context is not None else None)
        self._server = uvicorn.Server(self._config)
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 30.0) -> RestServer:
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name="tfpipe-rest-loop", daemon=True)
        self._thread.start()
        for _ in range(int(timeout / 0.01)):
            if self._server.started or not self._thread.is_alive():
                break
            threading.Event().wait(0.01)
        if not self._server.started:
            self.stop(0)
            raise OSError(f"the REST server did not start within {timeout} s")
        return self

    def stop(self, grace: float = 30.0) -> None:
        """Stops accepting, lets requests in flight finish (up to `grace` s), then closes every connection."""
        self._config.timeout_graceful_shutdown = max(0, math.ceil(grace))
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(grace + 5)
        self._socket.close()
        self._pool.shutdown(wait=False, cancel_futures=True)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named: accepted sockets inherit it, and only then does asyncio turn Nagle off (else a response's
    # headers and body, written apart, wait out the client's delayed ACK: about 40 ms per request)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restarted server need not wait out TIME_WAIT
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock
