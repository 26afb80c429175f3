"""Conversion benchmark (issue 15): the exported MiniLM SST-2 classifier against its ONNX Runtime (fp32, optimized,
int8) and OpenVINO (fp32, bf16, int8) conversions. Encoder latency at batch 1 and 32 (seq 128) is timed side by
side with the SavedModel by each conversion's own check, and SST-2 dev accuracy is scored for both. Then `tfpipe
serve --backend tensorflow` vs `--backend auto` is compared end to end: gRPC batch-1 latency (interleaved) and
throughput at 32 clients with batching.

Run from the repository root (the model is bench_serving.py's: MiniLM fine-tuned on 2,000 SST-2 rows):

    .venv/bin/python benchmarks/bench_convert.py --make-model --out bench-out
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

from _common import DEFAULT_OUT, machine_info, markdown_table, quiet_tensorflow, write_results
from bench_serving import (
    BATCHING,
    WORK,
    GrpcClient,
    Server,
    dev_sentences,
    latency_rounds,
    latest_version,
    load_test,
    make_model,
)

VARIANTS = [("onnx", "fp32", False), ("onnx", "fp32", True), ("onnx", "int8", False), ("openvino", "fp32", False),
            ("openvino", "bf16", False), ("openvino", "int8", False)]


def convert_all(version: Path, repeats: int) -> list[dict]:
    from tfpipe.export.convert.api import convert_export
    from tfpipe.export.convert.errors import ConversionCheckError, ConversionUnavailable

    rows = []
    for to, precision, optimize in VARIANTS:
        name = f"{to}-{precision}" + ("-optimized" if optimize else "")
        try:
            result = convert_export(version, to, precision=precision, optimize=optimize,
                                    calibration_data=WORK / "train2k.tsv", eval_data=WORK / "dev.tsv",
                                    timing_repeats=repeats, overwrite=True, log=lambda line: print(" ", line))
        except (ConversionUnavailable, ConversionCheckError) as error:
            rows.append({"variant": name, "skipped": str(error)})
            continue
        m = result.manifest
        rows.append({"variant": name, "savedmodel_ms": m["savedmodel_ms"], "converted_ms": m["converted_ms"],
                     "speedup": m["speedup"], "accuracy": m["accuracy"], "max_abs_diff": m["parity"]["max_abs_diff"]})
    return rows


def _scrape(server: Server) -> dict[str, float]:
    """The server's model runs and OK requests so far (its Prometheus page)."""
    import requests

    text = requests.get(f"http://127.0.0.1:{server.rest_port}/monitoring/prometheus/metrics", timeout=10).text
    found = {"runs": 0.0, "requests": 0.0}
    for line in text.splitlines():
        if line.startswith(":tensorflow:serving:batching_session:wrapped_run_count "):
            found["runs"] = float(line.split()[-1])
        elif line.startswith(":tensorflow:serving:request_count{") and 'status="OK"' in line:
            found["requests"] += float(line.split()[-1])
    return found


def in_process_rate(version: Path, backend: str, sentences: list[str], batch: int, seconds: float) -> float:
    """Sentences/s of the backend's serving_default called in this process, one thread, on consecutive dev
    sentences in batches of `batch` (as a batcher merges them): the most a batching server could reach."""
    import tensorflow as tf

    from tfpipe.export.convert.manifest import choose_variant
    from tfpipe.export.convert.runtime import ConvertedModel
    from tfpipe.serving.accelerated import installed_runtimes

    choice = choose_variant(version, backend, installed_runtimes(), batch) if backend != "tensorflow" else None
    fn = (ConvertedModel(version, choice[0]).signatures if choice else tf.saved_model.load(str(version)).signatures)[
        "serving_default"]
    batches = [tf.constant(sentences[i:i + batch]) for i in range(0, len(sentences) - batch + 1, batch)]
    for texts in batches[:3]:
        fn(text=texts)  # warm-up: tracing, allocation
    done, start, i = 0, time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        fn(text=batches[i % len(batches)])
        done, i = done + batch, i + 1
    return done / (time.perf_counter() - start)


def end_to_end(version: Path, out: Path, requests: int, duration: float) -> dict:
    """Batch-1 latency on servers without batching (as latency-bound deployments run), then 32 clients against
    servers with batching, and each backend's in-process ceiling at the mean batch its batcher formed."""
    base = version.parent
    sentences = dev_sentences()
    out.mkdir(parents=True, exist_ok=True)
    params = out / "batching-convert.txt"  # bench_serving's best setting for 32 clients on this model
    params.write_text("".join(f"{k} {{ value: {v} }}\n" for k, v in BATCHING["b32_t2ms_1thr"].items()))
    monitoring = out / "monitoring.txt"
    monitoring.write_text("prometheus_config { enable: true }\n")
    plain = ["--grpc_max_threads=64"]
    batching = plain + ["--enable_batching", f"--batching_parameters_file={params}",
                        f"--monitoring_config_file={monitoring}"]
    results: dict = {}
    with Server(base, base.name, out, "tensorflow", plain + ["--backend=tensorflow"]) as tf_server, \
            Server(base, base.name, out, "auto", plain + ["--backend=auto"]) as auto_server:
        calls = {"tensorflow": GrpcClient(tf_server.grpc_port, base.name),
                 "auto": GrpcClient(auto_server.grpc_port, base.name)}
        results["latency"] = latency_rounds(calls, sentences, requests, warmup=10)
    for label in ("tensorflow", "auto"):
        with Server(base, base.name, out, f"{label}-batching", batching + [f"--backend={label}"]) as server:
            before = _scrape(server)
            load = load_test(lambda s=server: GrpcClient(s.grpc_port, base.name), sentences, 32, duration, 2.0,
                             [server.proc.pid])
            after = _scrape(server)
            logs = server.stdout.read_text() + server.stderr.read_text()
        mean_batch = (after["requests"] - before["requests"]) / max(1.0, after["runs"] - before["runs"])
        batch = max(1, round(mean_batch))
        ceiling = in_process_rate(version, label, sentences, batch, duration)
        results[f"throughput_{label}"] = load | {
            "mean_batch": mean_batch, "in_process_per_s_at_mean_batch": ceiling,
            "share_of_in_process": load["req_per_s"] / ceiling,
            "served_by": ", ".join(re.findall(r"Successfully loaded servable version \{[^}]*\} \(([^)]+)\)", logs))}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-base-path", type=Path, default=WORK / "models" / "sst2")
    parser.add_argument("--make-model", action="store_true")
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--timing-repeats", type=int, default=10)
    parser.add_argument("--latency-requests", type=int, default=200)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--serve-only", action="store_true",
                        help="skip the conversions: serve the ones already under the version (a rerun's second half)")
    args = parser.parse_args()
    quiet_tensorflow()
    if latest_version(args.model_base_path) is None:
        if not args.make_model:
            raise SystemExit(f"no version under {args.model_base_path}; pass --make-model")
        make_model(args.model_base_path)
    version = latest_version(args.model_base_path)
    results = {"machine": machine_info(), "version": str(version),
               "variants": [] if args.serve_only else convert_all(version, args.timing_repeats)}
    results["end_to_end"] = end_to_end(version, Path(args.out), args.latency_requests, args.duration)
    write_results(args.out, "convert", results)
    rows = []
    for r in results["variants"]:
        if "skipped" in r:
            rows.append([r["variant"], "—", "—", "—", "—", "—", r["skipped"][:60]])
            continue
        rows.append([r["variant"], r["savedmodel_ms"]["batch_1"], r["converted_ms"]["batch_1"],
                     r["savedmodel_ms"]["batch_32"], r["converted_ms"]["batch_32"],
                     f"{r['speedup']['batch_1']:.2f}x / {r['speedup']['batch_32']:.2f}x",
                     f"{r['accuracy']['savedmodel']:.4f} → {r['accuracy']['converted']:.4f}"])
    print(markdown_table(["variant", "SavedModel b1 ms", "converted b1 ms", "SavedModel b32 ms", "converted b32 ms",
                          "speed-up b1 / b32", "dev accuracy"], rows))
    e2e = results["end_to_end"]
    keep = ("p50_ms", "p90_ms", "req_per_s", "mean_batch", "in_process_per_s_at_mean_batch", "share_of_in_process",
            "served_by")
    print(json.dumps({k: {m: v.get(m) for m in keep if m in v}
                      for k, v in {**e2e["latency"], **{k: v for k, v in e2e.items() if k != "latency"}}.items()
                      if isinstance(v, dict)}, indent=1))


if __name__ == "__main__":
    main()
