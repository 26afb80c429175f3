"""Server memory under long load (issue 16): `tfpipe serve` on the SST-2 MiniLM export, 32 gRPC clients sending
varied sentences (and a REST share) for `--minutes`, the server's RSS sampled every `--sample-s` seconds.

Run from the repository root:

    .venv/bin/python benchmarks/bench_server_memory.py --minutes 10 --out bench-out

Several server variants run side by side, each loaded by its own client threads at once, so the shared machine's
load hits them alike: `default` (tfpipe serve as shipped) and, with `--variants`, the others in VARIANTS (e.g. glibc
malloc left at its default arena count, to show what the shipped setting changes). The model comes from
bench_serving.py's `--make-model`.

Two probes look for what grows (BENCHMARKS.md, issue 16), each in one process:

    .venv/bin/python benchmarks/bench_server_memory.py --probe tracemalloc --flags "--enable_batching"
    ONEDNN_PRIMITIVE_CACHE_CAPACITY=8 .venv/bin/python benchmarks/bench_server_memory.py --probe shapes

`tracemalloc`: an in-process server under the same gRPC load, Python allocations compared between two snapshots;
`shapes`: `serving_default` run directly on random batches of 1-32 texts of 1-60 words (every shape new).
"""

from __future__ import annotations

import argparse
import os
import random
import threading
import time
from pathlib import Path

from _common import DEFAULT_OUT, machine_info, markdown_table, quiet_tensorflow, write_results
from bench_serving import SST2_DEV, WORK, GrpcClient, RestClient, Server, git_revision, proc_status

# Environment per variant; "" means the variable is removed from the server's environment.
VARIANTS: dict[str, dict[str, str]] = {
    "default": {},
    "arena2": {"MALLOC_ARENA_MAX": "2"},
}


def sentences() -> list[str]:
    rows = SST2_DEV.read_text(encoding="utf-8").splitlines()[1:]
    return [row.split("\t", 1)[1] if "\t" in row else row for row in rows]


def load(server: Server, model: str, texts: list[str], clients: int, rest_every: int, stop: threading.Event,
         counts: list[int], errors: list[str]) -> list[threading.Thread]:
    """`clients` threads; every `rest_every`-th one speaks REST, the others gRPC. Each request is 1-8 random
    sentences joined into one text."""
    def worker(index: int) -> None:
        rng = random.Random(index)
        rest = index % rest_every == rest_every - 1
        client = RestClient(server.rest_port, model) if rest else GrpcClient(server.grpc_port, model)
        while not stop.is_set():
            try:
                client(" ".join(rng.choice(texts) for _ in range(rng.randint(1, 8))))
                counts[index] += 1
            except Exception as error:  # noqa: BLE001 - counted and reported; the run goes on
                errors.append(repr(error)[:200])
                time.sleep(0.1)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    return threads


def rss_mib() -> int:
    return int(proc_status(os.getpid())["VmRSS"])


def probe_tracemalloc(args: argparse.Namespace, texts: list[str]) -> None:
    import gc
    import tracemalloc

    from tfpipe.serving.flags import parse_flags
    from tfpipe.serving.server import ModelServer

    flags = [f"--model_base_path={args.model_base_path}", "--model_name=sst2", "--port=0", "--rest_api_port=0",
             "--file_system_poll_wait_seconds=0", *args.flags.split()]
    server = ModelServer(parse_flags(flags)).start()
    stop, counts = threading.Event(), [0] * args.clients

    class Port:  # what load() needs of a server
        grpc_port, rest_port = server.grpc_port, 0

    load(Port, "sst2", texts, args.clients, args.clients + 1, stop, counts, [])
    time.sleep(40)
    tracemalloc.start(25)
    gc.collect()
    first, rss, served = tracemalloc.take_snapshot(), rss_mib(), sum(counts)
    time.sleep(args.minutes * 60)
    gc.collect()
    second = tracemalloc.take_snapshot()
    print(f"RSS {rss} -> {rss_mib()} MiB, {sum(counts) - served} requests, traced (now, peak) "
          f"{tracemalloc.get_traced_memory()} bytes")
    for stat in second.compare_to(first, "traceback")[:8]:
        print(stat, *stat.traceback.format()[-6:], sep="\n    ")
    stop.set()
    server.stop(grace=1)


def probe_shapes(args: argparse.Namespace, texts: list[str]) -> None:
    import numpy as np

    from tfpipe.serving.servable import Servable

    version = max((p for p in args.model_base_path.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    servable = Servable(version, "sst2", int(version.name))
    words = " ".join(texts).split()
    stop, counts = threading.Event(), [0]

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            batch = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 60))) for _ in range(rng.randint(1, 32))]
            servable.run("serving_default", {"text": np.array(batch, dtype=object)}, ["labels"])
            counts[0] += 1

    print("t_s 0 RSS", rss_mib(), "MiB", flush=True)
    for seed in range(4):
        threading.Thread(target=worker, args=(seed,), daemon=True).start()
    start = time.perf_counter()
    while time.perf_counter() - start < args.minutes * 60:
        time.sleep(args.sample_s)
        print(f"t_s {time.perf_counter() - start:.0f} RSS {rss_mib()} MiB, {counts[0]} batches", flush=True)
    stop.set()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-base-path", type=Path, default=WORK / "models" / "sst2")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--sample-s", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--rest-every", type=int, default=8, help="every Nth client uses REST (1: all)")
    parser.add_argument("--variants", default="default", help="comma-separated names from VARIANTS")
    parser.add_argument("--flags", default="", help="extra `tfpipe serve` flags for every variant")
    parser.add_argument("--probe", choices=("tracemalloc", "shapes"), help="run one probe instead (see above)")
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    args = parser.parse_args()
    quiet_tensorflow()
    if args.probe:
        probe = probe_tracemalloc if args.probe == "tracemalloc" else probe_shapes
        return probe(args, sentences())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    texts = sentences()
    names = args.variants.split(",")
    servers = {name: Server(args.model_base_path, "sst2", out, f"memory-{name}", args.flags.split(),
                            env=VARIANTS[name]) for name in names}
    for server in servers.values():
        server.__enter__()
    try:
        stop = threading.Event()
        counts = {name: [0] * args.clients for name in names}
        errors: dict[str, list[str]] = {name: [] for name in names}
        rows: list[dict] = []
        start = time.perf_counter()
        base = {name: proc_status(s.proc.pid)["VmRSS"] for name, s in servers.items()}
        rows.append({"t_s": 0, **{f"{n}_rss_mib": round(base[n]) for n in names}})
        threads = [t for name, s in servers.items()
                   for t in load(s, "sst2", texts, args.clients, args.rest_every, stop, counts[name], errors[name])]
        while time.perf_counter() - start < args.minutes * 60:
            time.sleep(args.sample_s)
            row = {"t_s": round(time.perf_counter() - start)}
            for name, server in servers.items():
                row[f"{name}_rss_mib"] = round(proc_status(server.proc.pid)["VmRSS"])
                row[f"{name}_requests"] = sum(counts[name])
            rows.append(row)
            print(row, flush=True)
        stop.set()
        for thread in threads:
            thread.join(70)
    finally:
        for server in servers.values():
            server.__exit__(None, None, None)
    results = {"machine": machine_info(), "revision": git_revision(), "clients": args.clients,
               "rest_every": args.rest_every, "minutes": args.minutes, "flags": args.flags, "samples": rows,
               "errors": {n: errors[n][:5] for n in names}, "error_counts": {n: len(errors[n]) for n in names}}
    write_results(out, "server_memory", results)
    headers = list(rows[-1])
    print(markdown_table(headers, [[row.get(h, "") for h in headers] for row in rows]))


if __name__ == "__main__":
    main()
