"""REST front-end benchmark (issue 16): the same tfpipe REST app (tfpipe.serving.rest.RestApi, a WSGI app) under
Werkzeug's development server, waitress, cheroot (8 and 256 threads) and uvicorn (its own WSGI adapter), and
`tfpipe serve`'s REST server (uvicorn with tfpipe's adapter and read deadlines), on TF Serving's half_plus_two
model. For each: predict throughput at 1/8/32 keep-alive clients; then 200 clients that stall mid-body, and 200
that stall halfway through their headers: how long a normal predict takes meanwhile, and how many of the stalled
connections the server closes. Also times the JSON parsers on typical :predict bodies.

Run from the repository root:

    .venv/bin/python benchmarks/bench_rest_server.py --out bench-out

Each server runs in its own subprocess on a free 127.0.0.1 port (the benchmark process is the client), with a
read timeout of `--read-timeout` seconds where the library has one (werkzeug and uvicorn's own have none). The
parser timing runs in this process, before the servers.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from _common import DEFAULT_OUT, REPO, SHARED, machine_info, markdown_table, quiet_tensorflow, write_results

MODEL = SHARED / "tf-serving-testdata" / "saved_model_half_plus_two_cpu"
SERVERS = ("werkzeug", "waitress", "cheroot", "uvicorn", "tfpipe")
DEFAULT_SERVERS = "werkzeug,waitress,cheroot,cheroot:256,uvicorn,tfpipe"
PREDICT = b'{"instances": [1.0, 2.0, 5.0]}'
PATH = "/v1/models/default:predict"


# ---- the servers (child processes) -----------------------------------------------------------------------------


def serve(name: str, port: int, read_timeout: float, threads: int) -> None:
    """Runs one server until killed; prints READY once it accepts connections."""
    quiet_tensorflow()
    sys.path.insert(0, str(REPO))
    from tfpipe.serving.flags import ServerOptions
    from tfpipe.serving.rest import RestApi
    from tfpipe.serving.server import ModelServer

    options = {"port": 0, "model_base_path": str(MODEL), "file_system_poll_wait_seconds": 0, "rest_api_port": 0}
    if name == "tfpipe":  # tfpipe's own REST server, with its read timeout and connection limit
        options.update(rest_api_port=port, rest_api_read_timeout_in_ms=int(read_timeout * 1000),
                       rest_api_max_connections=1000, rest_api_num_threads=threads)
    server = ModelServer(ServerOptions(**options)).start()
    if name == "tfpipe":
        print("READY", flush=True)
        server.wait()
        return
    app = RestApi(server.manager)
    if name == "werkzeug":
        from werkzeug.serving import WSGIRequestHandler, make_server

        class Quiet(WSGIRequestHandler):
            def log_request(self, *args, **kwargs) -> None:
                pass

        httpd = make_server("127.0.0.1", port, app, threaded=True, request_handler=Quiet)
        print("READY", flush=True)
        httpd.serve_forever()
    elif name == "waitress":
        import waitress

        print("READY", flush=True)  # waitress binds inside serve(); the parent retries its first connect
        waitress.serve(app, host="127.0.0.1", port=port, threads=threads, channel_timeout=read_timeout,
                       cleanup_interval=1, connection_limit=1000, _quiet=True)
    elif name == "cheroot":
        from cheroot.wsgi import Server

        httpd = Server(("127.0.0.1", port), app, numthreads=threads, timeout=read_timeout)
        httpd.prepare()
        print("READY", flush=True)
        httpd.serve()
    elif name == "uvicorn":
        import warnings

        import uvicorn
        from uvicorn.middleware.wsgi import WSGIMiddleware

        warnings.simplefilter("ignore", DeprecationWarning)
        print("READY", flush=True)
        uvicorn.run(WSGIMiddleware(app, workers=threads), host="127.0.0.1", port=port, log_level="warning",
                    limit_concurrency=1000, access_log=False)


def start(name: str, read_timeout: float, threads: int) -> tuple[subprocess.Popen, int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    child = subprocess.Popen([sys.executable, __file__, "--child", name, "--port", str(port),
                              "--read-timeout", str(read_timeout), "--threads", str(threads)],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO)
    assert child.stdout.readline().strip() == "READY", f"{name} did not start"
    deadline = time.monotonic() + 60
    while True:
        try:
            status, _ = request(port, PREDICT)
            if status == 200:
                return child, port
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} does not answer")
        time.sleep(0.2)


# ---- the client ----------------------------------------------------------------------------------------------


def _raw(body: bytes) -> bytes:
    return (f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def _read_response(sock: socket.socket, buffer: bytearray) -> tuple[int, bool]:
    """Reads one HTTP response (Content-Length framed); returns its status and whether the connection stays open."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    fields = {k.strip().lower(): v.strip().lower() for k, _, v in (line.partition(b":") for line in lines[1:])}
    length = int(fields[b"content-length"])
    keep = lines[0].startswith(b"HTTP/1.1") and fields.get(b"connection") != b"close"
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        rest += chunk
    buffer[:] = rest[length:]
    return status, keep


def request(port: int, body: bytes, timeout: float = 10) -> tuple[int, float]:
    start_time = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(_raw(body))
        status, _ = _read_response(sock, bytearray())
    return status, time.perf_counter() - start_time


def throughput(port: int, clients: int, seconds: float) -> dict[str, float]:
    """`clients` keep-alive connections posting predicts back to back; 1 s untimed, then `seconds` counted."""
    raw = _raw(PREDICT)
    stop = threading.Event()
    counting = threading.Event()
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients

    def client(i: int) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        buffer = bytearray()
        while not stop.is_set():
            t = time.perf_counter()
            sock.sendall(raw)
            keep = False
            try:
                status, keep = _read_response(sock, buffer)
                ok = status == 200
            except (OSError, ConnectionError):
                ok = False
            if not keep:  # HTTP/1.0 (werkzeug) or "Connection: close": a new connection, counted in the time
                sock.close()
                sock = socket.create_connection(("127.0.0.1", port), timeout=30)
                buffer.clear()
            if counting.is_set():
                if ok:
                    latencies[i].append(time.perf_counter() - t)
                else:
                    errors[i] += 1
        sock.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    counting.set()
    cpu0, t0 = time.process_time(), time.perf_counter()
    time.sleep(seconds)
    stop.set()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    for t in threads:
        t.join(timeout=30)
    flat = sorted(x for row in latencies for x in row)
    return {"req_per_s": len(flat) / elapsed, "p50_ms": 1000 * flat[len(flat) // 2] if flat else float("nan"),
            "errors": sum(errors), "client_cpu_s_per_s": cpu / elapsed}


def stalled(port: int, count: int, watch_s: float, where: str) -> dict[str, Any]:
    """`count` clients stall `where` ("body": after the headers, a Content-Length of 1000 and 12 bytes of body;
    "headers": halfway through the headers); a normal predict is timed meanwhile, and the stalled sockets are
    watched for `watch_s` s for the server closing them (EOF, or a response then EOF)."""
    body = b'{"instances": [1.0, 2.0, 5.0]}' + b" " * 970
    head = _raw(body)[: -len(body) + 12] if where == "body" else _raw(body)[:40]
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(head)
        socks.append(sock)
    opened = time.monotonic()
    time.sleep(0.5)
    try:
        status, latency = request(port, PREDICT, timeout=30)
        normal = {"status": status, "latency_s": latency}
    except OSError as error:
        normal = {"status": None, "error": type(error).__name__, "latency_s": time.monotonic() - opened - 0.5}
    closed_at: dict[int, float] = {}
    answers: dict[int, bytes] = {}
    pending = {s.fileno(): s for s in socks}
    deadline = opened + watch_s
    while pending and time.monotonic() < deadline:
        ready, _, _ = select.select(list(pending.values()), [], [], max(0.0, deadline - time.monotonic()))
        for sock in ready:
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if data:
                answers.setdefault(sock.fileno(), data[:12])
                continue
            closed_at[sock.fileno()] = time.monotonic() - opened
            del pending[sock.fileno()]
    for sock in socks:
        sock.close()
    times = sorted(closed_at.values())
    statuses = sorted({a.decode(errors="replace") for a in answers.values()})
    return {"normal_predict": normal, "closed": len(times), "of": count,
            "median_close_s": statistics.median(times) if times else None,
            "max_close_s": times[-1] if times else None, "answers_before_close": statuses}


# ---- the JSON parsers ------------------------------------------------------------------------------------------


def parser_timings(rounds: int) -> list[dict[str, Any]]:
    """Best-of-`rounds` parse time per body (µs) for json, orjson, python-rapidjson and tfpipe's parse_body."""
    import random

    import orjson
    import rapidjson

    sys.path.insert(0, str(REPO))
    from tfpipe.serving.rest_json import parse_body

    rng = random.Random(0)
    words = "a gripping film dull and far too long the acting is superb but the plot is thin".split()
    bodies = {
        "1 text": {"instances": ["a gripping film"]},
        "32 texts (objects)": {"instances": [{"text": " ".join(rng.choice(words) for _ in range(20))}
                                             for _ in range(32)]},
        "32x128 token ids, 3 inputs": {"instances": [{"input_word_ids": [rng.randrange(30522) for _ in range(128)],
                                                      "input_mask": [1] * 128, "input_type_ids": [0] * 128}
                                                     for _ in range(32)]},
        "32x128 floats": {"instances": [[rng.random() for _ in range(128)] for _ in range(32)]},
        "200k rows of 1 float": {"instances": [[float(i % 7)] for i in range(200_000)]},
    }
    native = rapidjson.Decoder(number_mode=rapidjson.NM_NAN | rapidjson.NM_NATIVE)
    parsers = {"json (stdlib)": json.loads, "orjson": orjson.loads,
               "rapidjson NM_NAN": rapidjson.Decoder(number_mode=rapidjson.NM_NAN),
               "rapidjson NM_NAN+NM_NATIVE": native, "tfpipe parse_body": parse_body}
    best: dict[tuple[str, str], float] = {}
    encoded = {name: json.dumps(doc).encode() for name, doc in bodies.items()}
    for _ in range(rounds):  # interleaved, so load changes hit every parser alike
        for name, body in encoded.items():
            for parser_name, parse in parsers.items():
                n = max(2, int(3e5 // len(body)))
                t = time.perf_counter()
                for _ in range(n):
                    parse(body)
                best[(name, parser_name)] = min(best.get((name, parser_name), 1e9), (time.perf_counter() - t) / n)
    return [{"body": name, "bytes": len(encoded[name]), **{p: best[(name, p)] * 1e6 for p in parsers}}
            for name in bodies]


# ---- main --------------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--servers", default=DEFAULT_SERVERS,
                        help="comma-separated; NAME:N gives that server N worker threads (e.g. cheroot:256)")
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--read-timeout", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=8, help="worker threads for the thread-pool servers")
    parser.add_argument("--stalled", type=int, default=200)
    parser.add_argument("--watch", type=float, default=12.0, help="seconds to watch the stalled sockets")
    parser.add_argument("--parser-rounds", type=int, default=7)
    parser.add_argument("--skip-parsers", action="store_true")
    parser.add_argument("--child", choices=SERVERS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        serve(args.child, args.port, args.read_timeout, args.threads)
        return 0

    results: dict[str, Any] = {"machine": machine_info(), "args": vars(args), "servers": {}}
    if not args.skip_parsers:
        results["parsers"] = parser_timings(args.parser_rounds)
        names = [k for k in results["parsers"][0] if k not in ("body", "bytes")]
        print(markdown_table(["body", "bytes", *[f"{n} (µs)" for n in names]],
                             [[r["body"], r["bytes"], *[r[n] for n in names]] for r in results["parsers"]]))
    clients = [int(c) for c in args.clients.split(",")]
    for spec in args.servers.split(","):
        name, _, threads = spec.partition(":")
        child, port = start(name, args.read_timeout, int(threads or args.threads))
        try:
            row: dict[str, Any] = {"throughput": {c: throughput(port, c, args.seconds) for c in clients}}
            for where in ("body", "headers"):
                row[f"stalled_{where}"] = stalled(port, args.stalled, args.watch, where)
                alive = request(port, PREDICT, timeout=120)
                row[f"predict_after_{where}_stall"] = {"status": alive[0], "latency_s": alive[1]}
        finally:
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        results["servers"][spec] = row
        print(spec, json.dumps(row, default=str), flush=True)
    print(markdown_table(["server", *[f"req/s @{c}" for c in clients], *[f"p50 ms @{c}" for c in clients]],
                         [[spec, *[row["throughput"][c]["req_per_s"] for c in clients],
                           *[row["throughput"][c]["p50_ms"] for c in clients]]
                          for spec, row in results["servers"].items()]))
    rows = []
    for spec, row in results["servers"].items():
        cells = [spec]
        for where in ("body", "headers"):
            stall, normal = row[f"stalled_{where}"], row[f"stalled_{where}"]["normal_predict"]
            cells += [f"{normal['latency_s']:.2f} s ({normal['status'] or normal.get('error')})",
                      f"{stall['closed']}/{stall['of']}"
                      + ("" if stall["median_close_s"] is None else f", median {stall['median_close_s']:.1f} s")]
        rows.append(cells)
    print(markdown_table(["server", f"predict, {args.stalled} stalled mid-body", f"closed within {args.watch:.0f} s",
                          f"predict, {args.stalled} stalled in headers", f"closed within {args.watch:.0f} s"], rows))
    results["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    print("wrote", write_results(Path(args.out), "bench_rest_server", results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
