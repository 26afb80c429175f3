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


def end_to_end(base: Path, out: Path, requests: int, duration: float) -> dict:
    sentences = dev_sentences()
    params = out / "batching-convert.txt"  # bench_serving's best setting for 32 clients on this model
    out.mkdir(parents=True, exist_ok=True)
    params.write_text("".join(f"{k} {{ value: {v} }}\n" for k, v in BATCHING["b32_t2ms_1thr"].items()))
    flags = ["--grpc_max_threads=64", "--enable_batching", f"--batching_parameters_file={params}"]
    results = {}
    with Server(base, base.name, out, "tensorflow", flags + ["--backend=tensorflow"]) as tf_server, \
            Server(base, base.name, out, "auto", flags + ["--backend=auto"]) as auto_server:
        calls = {"tensorflow": GrpcClient(tf_server.grpc_port, base.name),
                 "auto": GrpcClient(auto_server.grpc_port, base.name)}
        results["latency"] = latency_rounds(calls, sentences, requests, warmup=10)
        for label, server in (("tensorflow", tf_server), ("auto", auto_server)):
            results[f"throughput_{label}"] = load_test(lambda s=server: GrpcClient(s.grpc_port, base.name),
                                                       sentences, 32, duration, 2.0, [server.proc.pid])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-base-path", type=Path, default=WORK / "models" / "sst2")
    parser.add_argument("--make-model", action="store_true")
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--timing-repeats", type=int, default=10)
    parser.add_argument("--latency-requests", type=int, default=200)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()
    quiet_tensorflow()
    if latest_version(args.model_base_path) is None:
        if not args.make_model:
            raise SystemExit(f"no version under {args.model_base_path}; pass --make-model")
        make_model(args.model_base_path)
    version = latest_version(args.model_base_path)
    results = {"machine": machine_info(), "version": str(version), "variants": convert_all(version,
                                                                                          args.timing_repeats)}
    results["end_to_end"] = end_to_end(args.model_base_path, Path(args.out), args.latency_requests, args.duration)
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
    print(json.dumps({k: {m: v.get(m) for m in ("p50_ms", "req_per_s") if m in v}
                      for k, v in {**e2e["latency"], **{k: v for k, v in e2e.items() if k != "latency"}}.items()
                      if isinstance(v, dict)}, indent=1))


if __name__ == "__main__":
    main()
