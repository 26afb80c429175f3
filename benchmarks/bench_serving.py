"""Serving benchmark (issue 4): an exported MiniLM SST-2 classifier, batch-1 latency in-process vs `tfpipe serve`
over gRPC and REST, throughput at 1/8/32 concurrent gRPC clients without and with server-side batching, and the
server's RSS with the model loaded.

Run from the repository root:

    .venv/bin/python benchmarks/bench_serving.py --make-model --out bench-out

`--make-model` fine-tunes MiniLM on the first 2,000 SST-2 rows and exports it under /tmp/bench when
`--model-base-path` holds no version yet (see `make_model` for the exact commands). Everything runs side by side
in one process and one run: the latency rounds interleave in-process, gRPC and REST calls on the same sentence, so
load changes on the shared machine hit all three alike.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    DEFAULT_OUT,
    MINILM,
    REPO,
    SHARED,
    TFPIPE_CLI,
    machine_info,
    markdown_table,
    quiet_tensorflow,
    write_results,
)

SST2_DEV = SHARED / "data" / "sst2" / "dev.tsv"
WORK = Path("/tmp/bench")
# Server-side batching settings tried; every server (batching or not) gets the same other flags.
BATCHING = {
    # max_batch_size 8 alone cannot load the export: its warm-up record holds 9 texts, which the batcher refuses
    # ("Task size 9 is larger than maximum input batch size 8"), so batches of 8 go through splitting.
    "b8_t2ms_1thr": {"max_batch_size": 32, "enable_large_batch_splitting": "true", "max_execution_batch_size": 8,
                     "batch_timeout_micros": 2000, "num_batch_threads": 1, "max_enqueued_batches": 100},
    "b8_t1ms_2thr": {"max_batch_size": 32, "enable_large_batch_splitting": "true", "max_execution_batch_size": 8,
                     "batch_timeout_micros": 1000, "num_batch_threads": 2, "max_enqueued_batches": 100},
    "b32_t2ms_1thr": {"max_batch_size": 32, "batch_timeout_micros": 2000, "num_batch_threads": 1,
                      "max_enqueued_batches": 100},
    "b32_t5ms_2thr": {"max_batch_size": 32, "batch_timeout_micros": 5000, "num_batch_threads": 2,
                      "max_enqueued_batches": 100},
}


# ---- data and model ----------------------------------------------------------------------------------------------

def dev_sentences() -> list[str]:
    """SST-2 dev sentences (its text column is `content`)."""
    lines = SST2_DEV.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    col = header.index("content") if "content" in header else header.index("sentence")
    return [line.split("\t")[col] for line in lines[1:] if line.strip()]


def latest_version(base: Path) -> Path | None:
    versions = sorted((int(p.name), p) for p in base.glob("*") if p.name.isdigit() and p.is_dir()) if base.is_dir() \
        else []
    return versions[-1][1] if versions else None


def make_model(base: Path) -> None:
    """Fine-tunes MiniLM for one epoch on the first 2,000 SST-2 train rows and exports it to `base`."""
    WORK.mkdir(parents=True, exist_ok=True)
    train, dev = WORK / "train2k.tsv", WORK / "dev.tsv"
    rows = (SHARED / "data" / "sst2" / "train.tsv").read_text(encoding="utf-8").splitlines()
    train.write_text("\n".join(rows[:2001]) + "\n", encoding="utf-8")
    dev_rows = SST2_DEV.read_text(encoding="utf-8").splitlines()
    dev.write_text("\n".join(["label\tsentence"] + dev_rows[1:]) + "\n", encoding="utf-8")
    run_dir = WORK / "run"
    commands = [
        [str(TFPIPE_CLI), "finetune", "--task", "classification", "--train", str(train), "--validation", str(dev),
         "--text-column", "sentence", "--label-column", "label", "--init-checkpoint", str(MINILM), "--epochs", "1",
         "--batch-size", "32", "--max-seq-length", "64", "--output-dir", str(run_dir), "--quiet"],
        [str(TFPIPE_CLI), "export", "--model-dir", str(run_dir), "--export-base", str(base.parent),
         "--name", base.name],
    ]
    for command in commands:
        print("+", " ".join(command), flush=True)
        subprocess.run(command, check=True)


# ---- the server --------------------------------------------------------------------------------------------------

def git_revision() -> str:
    """HEAD, with "+changes" when tfpipe/ has uncommitted edits (others edit the server while benchmarks run)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + ("+changes" if git("status", "--porcelain", "--", "tfpipe") else "")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def proc_status(pid: int) -> dict[str, float]:
    """VmRSS / VmHWM (MiB) and CPU seconds (user+system) of a process."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    out["cpu_s"] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


class Server:
    """`tfpipe serve` as a subprocess on free 127.0.0.1 ports; ready when it prints its "serving" line."""

    def __init__(self, base: Path, name: str, log_dir: Path, label: str, flags: list[str],
                 env: dict[str, str] | None = None) -> None:
        self.grpc_port, self.rest_port = free_port(), free_port()
        self.command = [str(TFPIPE_CLI), "serve", f"--port={self.grpc_port}", f"--rest_api_port={self.rest_port}",
                        f"--model_name={name}", f"--model_base_path={base}", *flags]
        self.stdout = log_dir / f"serve-{label}.out"
        self.stderr = log_dir / f"serve-{label}.err"
        self.env = {**os.environ, **(env or {})}

    def __enter__(self) -> Server:
        start = time.perf_counter()
        with self.stdout.open("w") as out, self.stderr.open("w") as err:
            self.proc = subprocess.Popen(self.command, stdout=out, stderr=err, env=self.env)
        while "tfpipe serve: serving" not in self.stdout.read_text():
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.stderr.read_text()[-3000:]}")
            if time.perf_counter() - start > 300:
                raise RuntimeError("server not ready after 300 s")
            time.sleep(0.2)
        self.ready_s = time.perf_counter() - start
        return self

    def __exit__(self, *exc: Any) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ---- clients -----------------------------------------------------------------------------------------------------

class GrpcClient:
    """Predict over one channel with the tensorflow_serving.apis stubs; the request is built by hand (cheap)."""

    def __init__(self, port: int, model: str) -> None:
        import grpc
        from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

        self._pb = (predict_pb2, tensor_pb2, tensor_shape_pb2, types_pb2)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.model = model

    def __call__(self, text: str) -> str:
        predict_pb2, tensor_pb2, tensor_shape_pb2, types_pb2 = self._pb
        request = predict_pb2.PredictRequest()
        request.model_spec.name = self.model
        request.model_spec.signature_name = "serving_default"
        request.inputs["text"].CopyFrom(tensor_pb2.TensorProto(
            dtype=types_pb2.DT_STRING, string_val=[text.encode()],
            tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=1)])))
        response = self.stub.Predict(request, timeout=60)
        return response.outputs["labels"].string_val[0].decode()


class RestClient:
    """POST :predict with a keep-alive session."""

    def __init__(self, port: int, model: str) -> None:
        import requests

        self.session = requests.Session()
        self.url = f"http://127.0.0.1:{port}/v1/models/{model}:predict"

    def __call__(self, text: str) -> str:
        response = self.session.post(self.url, data=json.dumps({"instances": [text]}), timeout=60)
        response.raise_for_status()
        return response.json()["predictions"][0]["labels"]


def percentiles(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {"p50_ms": float(np.percentile(a, 50)), "p90_ms": float(np.percentile(a, 90)),
            "p99_ms": float(np.percentile(a, 99)), "mean_ms": float(a.mean()), "n": len(ms)}


def latency_rounds(calls: dict[str, Any], sentences: list[str], n: int, warmup: int) -> dict[str, dict]:
    """Batch-1 latency: each round sends the same sentence to every path in turn; returns percentiles per path."""
    for i in range(warmup):
        for call in calls.values():
            call(sentences[i % len(sentences)])
    samples: dict[str, list[float]] = {name: [] for name in calls}
    answers_agree = 0
    for i in range(n):
        text = sentences[i % len(sentences)]
        answers = set()
        for name, call in calls.items():
            start = time.perf_counter()
            answers.add(call(text))
            samples[name].append((time.perf_counter() - start) * 1e3)
        answers_agree += len(answers) == 1
    out = {name: percentiles(ms) for name, ms in samples.items()}
    out["answers_agree"] = f"{answers_agree}/{n}"
    return out


def load_test(make_client, sentences: list[str], clients: int, duration: float, warmup: float, pids: list[int]):
    """`clients` threads, each with its own client, send batch-1 requests back to back; counts what completes in
    the timed window (after `warmup` s) and the CPU the server and this process used meanwhile."""
    stop = threading.Event()
    timing = threading.Event()
    results = [{"ok": 0, "errors": 0, "ms": [], "error": ""} for _ in range(clients)]
    built = [make_client() for _ in range(clients)]

    def worker(i: int) -> None:
        call, r, k = built[i], results[i], i * 97
        while not stop.is_set():
            text = sentences[k % len(sentences)]
            k += 1
            start = time.perf_counter()
            try:
                call(text)
                ok = True
            except Exception as error:  # noqa: BLE001 - counted and reported, the run goes on
                ok, r["error"] = False, f"{type(error).__name__}: {str(error)[:200]}"
            if timing.is_set() and not stop.is_set():
                if ok:
                    r["ok"] += 1
                    r["ms"].append((time.perf_counter() - start) * 1e3)
                else:
                    r["errors"] += 1

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(warmup)
    before = [proc_status(pid)["cpu_s"] for pid in pids]
    t0 = time.perf_counter()
    timing.set()
    time.sleep(duration)
    stop.set()
    wall = time.perf_counter() - t0
    after = [proc_status(pid)["cpu_s"] for pid in pids]
    for thread in threads:
        thread.join(120)
    ok = sum(r["ok"] for r in results)
    ms = [m for r in results for m in r["ms"]]
    out = {"clients": clients, "wall_s": wall, "requests": ok, "errors": sum(r["errors"] for r in results),
           "req_per_s": ok / wall, "cpu_per_wall": [(b - a) / wall for a, b in zip(before, after)]}
    out.update(percentiles(ms) if ms else {})
    errors = [r["error"] for r in results if r["error"]]
    if errors:
        out["first_error"] = errors[0]
    return out


def in_process_sweep(fn, sample: list[str], vocab: Path) -> list[dict[str, Any]]:
    """ms per sentence calling `fn` once per batch of 1/4/8/16/32: the most a batching server could gain here.

    Dev order pads each batch to its longest sentence (what a server batcher sees); length-sorted shows the same
    sentences without that padding. Token counts use tf-text's BertTokenizer on the export's vocabulary
    (+[CLS]/[SEP], cut at 64).
    """
    import tensorflow as tf
    import tensorflow_text

    tokenizer = tensorflow_text.BertTokenizer(str(vocab), lower_case=True)
    lengths = {text: min(64, int(n) + 2) for text, n in
               zip(sample, tokenizer.tokenize(sample).merge_dims(-2, -1).row_lengths().numpy())}
    cells = [("single", 1, sample)] + [(order, size, texts) for order, texts in
                                       (("dev order", sample), ("length-sorted", sorted(sample, key=lengths.get)))
                                       for size in (4, 8, 16, 32)]
    times: dict[tuple, list[float]] = {(order, size): [] for order, size, _ in cells}
    for round_ in range(4):  # round 0 warms every shape up; cells interleave so load changes hit all alike
        for order, size, texts in cells:
            t0 = time.perf_counter()
            for i in range(0, len(texts), size):
                fn(text=tf.constant(texts[i:i + size]))
            if round_:
                times[order, size].append((time.perf_counter() - t0) / len(texts) * 1e3)
    ceiling = []
    for order, size, texts in cells:
        batches = [texts[i:i + size] for i in range(0, len(texts), size)]
        padded = sum(len(b) * max(lengths[t] for t in b) for b in batches)
        ceiling.append({"order": order, "batch": size, "ms_per_sentence": float(np.median(times[order, size])),
                        "range_ms": [min(times[order, size]), max(times[order, size])],
                        "padded_over_real_tokens": padded / sum(lengths.values())})
    return ceiling


# ---- main --------------------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-base-path", type=Path, default=WORK / "models" / "sst2")
    parser.add_argument("--make-model", action="store_true", help="fine-tune + export when no version exists")
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--latency-requests", type=int, default=400, help="batch-1 requests per path")
    parser.add_argument("--duration", type=float, default=10.0, help="timed seconds per throughput point")
    parser.add_argument("--load-warmup", type=float, default=2.0, help="untimed seconds before each point")
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--configs", default="none," + ",".join(BATCHING),
                        help="server configs to load-test: 'none' and/or names from BATCHING")
    parser.add_argument("--server-flags", default="--grpc_max_threads=64",
                        help="extra `tfpipe serve` flags for every server (space separated)")
    parser.add_argument("--server-env", default="", help="KEY=VALUE,... environment for the servers")
    args = parser.parse_args()

    quiet_tensorflow()
    started = time.perf_counter()
    base = args.model_base_path.resolve()
    if latest_version(base) is None:
        if not args.make_model:
            sys.exit(f"no SavedModel version under {base}; pass --make-model to fine-tune and export one")
        make_model(base)
    version = latest_version(base)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    log_dir = WORK / "serve-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    sentences = dev_sentences()
    clients = [int(c) for c in args.clients.split(",")]
    server_flags = args.server_flags.split()
    server_env = dict(kv.split("=", 1) for kv in args.server_env.split(",") if kv)

    import tensorflow as tf
    import tensorflow_text  # noqa: F401 - the export's tokenizer ops

    results: dict[str, Any] = {"machine_start": machine_info(), "model": str(version),
                               "server_flags": server_flags, "server_env": server_env, "batching": BATCHING,
                               "sentences": len(sentences), "args": vars(args),
                               "git": git_revision()}
    loaded = tf.saved_model.load(str(version))
    fn = loaded.signatures["serving_default"]

    def in_process(text: str) -> str:
        return fn(text=tf.constant([text]))["labels"].numpy()[0].decode()

    results["in_process_by_batch"] = in_process_sweep(fn, sentences[:96], version / "assets" / "vocab.txt")

    # ---- latency: no batching, batch 1, interleaved ------------------------------------------------------------
    with Server(base, "sst2", log_dir, "latency", server_flags, server_env) as server:
        rss_loaded = proc_status(server.proc.pid)
        grpc_client, rest_client = GrpcClient(server.grpc_port, "sst2"), RestClient(server.rest_port, "sst2")
        latency = latency_rounds({"in-process": in_process, "gRPC": grpc_client, "REST": rest_client},
                                 sentences, args.latency_requests, warmup=30)
        rss_after_latency = proc_status(server.proc.pid)
        results["server_ready_s"] = server.ready_s
    results["latency"] = latency
    results["rss_mib"] = {"loaded": rss_loaded, "after_latency": rss_after_latency}

    # ---- throughput --------------------------------------------------------------------------------------------
    throughput: list[dict[str, Any]] = []
    for config in args.configs.split(","):
        flags = list(server_flags)
        if config != "none":
            params = WORK / f"batching-{config}.txt"
            params.write_text("".join(f"{k} {{ value: {v} }}\n" for k, v in BATCHING[config].items()))
            flags += ["--enable_batching", f"--batching_parameters_file={params}"]
        with Server(base, "sst2", log_dir, config, flags, server_env) as server:
            pids = [server.proc.pid, os.getpid()]
            for n in clients:
                point = load_test(lambda s=server: GrpcClient(s.grpc_port, "sst2"), sentences, n, args.duration,
                                  args.load_warmup, pids)
                point["config"] = config
                throughput.append(point)
                print(f"{config:>20} clients={n:>2}: {point['req_per_s']:.1f} req/s, errors {point['errors']}, "
                      f"p50 {point.get('p50_ms', float('nan')):.1f} ms, CPU/wall server "
                      f"{point['cpu_per_wall'][0]:.2f} client {point['cpu_per_wall'][1]:.2f}", flush=True)
            results["rss_mib"][f"after_load_{config}"] = proc_status(server.proc.pid)
    results["throughput"] = throughput
    results["machine_end"] = machine_info()
    results["total_s"] = time.perf_counter() - started

    report(results, clients)
    path = write_results(out_dir, "serving", results)
    print(f"\nwrote {path}")


def report(results: dict[str, Any], clients: list[int]) -> None:
    lat = results["latency"]
    inproc = lat["in-process"]
    print(f"\nmodel {results['model']}, git {results.get('git', '?')}, server flags {results['server_flags']} "
          f"env {results['server_env']}; load average {results['machine_start']['loadavg_1_5_15']} at start, "
          f"{results['machine_end']['loadavg_1_5_15']} at end; server ready in {results['server_ready_s']:.1f} s; "
          f"{results['total_s']:.0f} s in all")
    rows = [[name, lat[name]["p50_ms"], lat[name]["p90_ms"], lat[name]["p99_ms"], lat[name]["mean_ms"],
             lat[name]["p50_ms"] - inproc["p50_ms"], lat[name]["p99_ms"] - inproc["p99_ms"]]
            for name in ("in-process", "gRPC", "REST")]
    print("\n### Batch-1 latency (ms), interleaved, n =", inproc["n"], "each; answers agree", lat["answers_agree"])
    print(markdown_table(["path", "p50", "p90", "p99", "mean", "p50 overhead", "p99 overhead"], rows))
    ceiling = results["in_process_by_batch"]
    first = ceiling[0]["ms_per_sentence"]
    print("\n### In-process, one call per batch, first 96 dev sentences (median of 3 interleaved rounds)")
    print(markdown_table(["order", "batch size", "ms / sentence", "range", "sentences/s", "vs batch 1",
                          "padded / real tokens"],
                         [[c["order"], c["batch"], c["ms_per_sentence"], "{:.1f}-{:.1f}".format(*c["range_ms"]),
                           1e3 / c["ms_per_sentence"], f"{first / c['ms_per_sentence']:.2f}x",
                           c["padded_over_real_tokens"]] for c in ceiling]))

    by = {(p["config"], p["clients"]): p for p in results["throughput"]}
    configs = list(dict.fromkeys(p["config"] for p in results["throughput"]))
    rows = []
    for config in configs:
        for n in clients:
            p = by.get((config, n))
            if p is None:
                continue
            base = by.get(("none", n))
            gain = p["req_per_s"] / base["req_per_s"] if base else float("nan")
            # The machine is shared: requests per server CPU-second corrects for how much CPU the server got.
            per_cpu = p["req_per_s"] / p["cpu_per_wall"][0]
            base_cpu = base["req_per_s"] / base["cpu_per_wall"][0] if base else float("nan")
            rows.append([config, n, p["req_per_s"], f"{gain:.2f}x", p.get("p50_ms", float("nan")),
                         p.get("p99_ms", float("nan")), p["errors"], p["cpu_per_wall"][0], p["cpu_per_wall"][1],
                         per_cpu, f"{per_cpu / base_cpu:.2f}x"])
    print("\n### gRPC throughput, batch-1 requests")
    print(markdown_table(["batching", "clients", "req/s", "vs no batching", "p50 ms", "p99 ms", "errors",
                          "server CPU/wall", "client CPU/wall", "req / server CPU-s", "vs no batching"], rows))
    rss = results["rss_mib"]
    print("\n### Server memory (MiB)")
    print(markdown_table(["when", "VmRSS", "VmHWM"], [[k, v["VmRSS"], v["VmHWM"]] for k, v in rss.items()]))
    print("\n```json")
    print(json.dumps({"latency": lat, "throughput": [{k: v for k, v in p.items() if k != "cpu_per_wall"}
                                                     for p in results["throughput"]], "rss_mib": rss},
                     indent=1, default=str))
    print("```")


if __name__ == "__main__":
    main()
