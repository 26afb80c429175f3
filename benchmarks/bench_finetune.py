"""Fine-tuning speed, memory and FLOP/s side by side with the transformers + PyTorch anchor (issue 3).

Whole-process wall time for the same job, start-up, tracing and checkpoints included:
`tfpipe finetune` on the first N SST-2 train rows for one epoch + `tfpipe evaluate` on dev, against
`../shared/anchors/hf_torch_sst2.py` doing the same, in one run on the same machine. Also: peak RSS (batch 32,
seq 128), model FLOP/s in training as a fraction of the fp32 and bf16 matmul peaks measured in the same run, and a
lever table (one variant per process).

    .venv/bin/python benchmarks/bench_finetune.py --rows 16000 --anchor-python $HOME/hf-anchor/bin/python
    .venv/bin/python benchmarks/bench_finetune.py --levers --lever-rows 2000
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from _common import MINILM, REPO, SHARED, SST2_TRAIN, TFPIPE_CLI, machine_info, matmul_flops, quiet_tensorflow

DEV = SHARED / "data" / "sst2" / "dev.tsv"
ANCHOR = SHARED / "anchors" / "hf_torch_sst2.py"
# The anchor's hyper-parameters: batch 32, max length 64, AdamW lr 5e-5, wd 0.01, 10% warmup, linear decay, seed 0.
COMMON = ["--text-column", "sentence|content", "--label-column", "label", "--init-checkpoint", str(MINILM),
          "--epochs", "1", "--batch-size", "32", "--max-seq-length", "64", "--learning-rate", "5e-5", "--quiet"]
BUCKETS = ["--set", "pipeline.bucket_boundaries=[16,32,48]"]  # + 64, the max length
SORTED = ["--set", "pipeline.sort_window=50"]  # batches cut from 50-batch windows sorted by length
HEADLINE = SORTED
ONEDNN_OFF = {"TF_ENABLE_ONEDNN_OPTS": "0"}  # TensorFlow's own default on CPUs without AVX-512
# name → (extra flags, extra environment); one process pair (finetune + evaluate) per variant
LEVERS = {
    "fixed padding 64, fp32, oneDNN off": (["--set", "pipeline.bucket_boundaries=[64]"], ONEDNN_OFF),
    "buckets, fp32, oneDNN off": (BUCKETS, ONEDNN_OFF),
    "buckets, fp32, oneDNN on": (BUCKETS, {}),
    "sorted windows, fp32, oneDNN on (the headline)": (SORTED, {}),
    "sorted windows + steps_per_execution 8": (SORTED + ["--set", "training.steps_per_execution=8"], {}),
    "sorted windows + mixed_bfloat16": (SORTED + ["--set", "training.mixed_precision=mixed_bfloat16"], {}),
}


def _rows(n: int, folder: Path) -> Path:
    path = folder / f"sst2-train-{n}.tsv"
    lines = SST2_TRAIN.read_text(encoding="utf-8").splitlines()[: n + 1]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _timed(command: list[str], env: dict | None = None) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (MiB) of the child, and its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})})
    seconds = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"{' '.join(command[:3])} failed:\n{done.stderr[-3000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, max(peak, before) // 1024, done.stdout


def tfpipe_job(train: Path, out: Path, extra: list[str], env: dict | None = None,
               cli: tuple[str, ...] = (str(TFPIPE_CLI),)) -> dict:
    run = out / "run"
    finetune = [*cli, "finetune", "--task", "classification", "--train", str(train), "--output-dir",
                str(run), *COMMON, *extra]
    train_s, rss, stdout = _timed(finetune, env)
    result = json.loads(stdout.strip().splitlines()[-1])
    evaluate = [*cli, "evaluate", "--model-dir", str(run), "--data", str(DEV),
                "--text-column", "sentence|content", "--label-column", "label"]
    eval_s, _, stdout = _timed(evaluate, env)
    metrics = json.loads(stdout.strip().splitlines()[-1])
    return {"finetune_s": round(train_s, 1), "evaluate_s": round(eval_s, 1), "total_s": round(train_s + eval_s, 1),
            "dev_accuracy": round(metrics["accuracy"], 4), "policy": result["training"]["policy"],
            "train_examples_per_s_whole_process": round(result["training"]["train_examples"] / train_s, 1)}


def anchor_job(python: str, n: int) -> dict:
    seconds, rss, stdout = _timed([python, str(ANCHOR), str(SHARED), str(n), "1"])
    result = json.loads(stdout.strip().splitlines()[-1])
    return {"total_s": round(seconds, 1), "dev_accuracy": result["dev_accuracy"],
            "train_examples_per_s": result["train_examples_per_s"], "peak_rss_mib": rss}


def peaks_and_model_flops(seq: int = 64, batch: int = 32) -> dict:
    """fp32 and bf16 2048³ matmul FLOP/s, and the training step's model FLOP/s (6·params·tokens + attention)
    under the policy `auto` picks on this machine (bf16 only where the CPU has bf16 instructions)."""
    quiet_tensorflow()
    sys.path.insert(0, str(REPO))
    importlib.import_module("tfpipe")  # before TensorFlow: its oneDNN setting, as the CLI has it
    import numpy as np
    import tensorflow as tf

    from tfpipe.config import TrainingConfig
    from tfpipe.models.backbone import load_hf_checkpoint
    from tfpipe.models.classifier import SequenceClassifier
    from tfpipe.training.losses import SparseCrossEntropy
    from tfpipe.training.optimizers import build_optimizer
    from tfpipe.training.precision import set_policy

    peaks = {"float32": matmul_flops("float32"), "bfloat16": matmul_flops("bfloat16")}
    policy = set_policy("auto")
    encoder, _, config = load_hf_checkpoint(MINILM)
    model = SequenceClassifier(encoder, 2)
    model.compile(optimizer=build_optimizer(TrainingConfig(), 100), loss=SparseCrossEntropy(2))
    rng = np.random.RandomState(0)
    x = {"input_word_ids": rng.randint(1000, 20000, (batch, seq)).astype("int32"),
         "input_mask": np.ones((batch, seq), "int32"), "input_type_ids": np.zeros((batch, seq), "int32")}
    ds = tf.data.Dataset.from_tensors((x, rng.randint(0, 2, batch))).repeat()
    model.fit(ds, steps_per_epoch=3, epochs=1, verbose=0)
    start, steps = time.perf_counter(), 10
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    step_s = (time.perf_counter() - start) / steps
    h, layers, inter = config.hidden_dim, config.num_layers, config.intermediate_dim
    dense_params = layers * (4 * h * h + 2 * h * inter) + h * h  # attention projections, FFN, pooler
    tokens = batch * seq
    forward = 2 * dense_params * tokens + layers * 2 * 2 * batch * seq * seq * h  # + QK^T and AV
    model_flops = 3 * forward / step_s  # backward ≈ 2× forward
    return {"policy": policy, "fp32_matmul_peak_tflops": round(peaks["float32"] / 1e12, 3),
            "bf16_matmul_peak_tflops": round(peaks["bfloat16"] / 1e12, 3), "train_step_s": round(step_s, 3),
            "model_tflops": round(model_flops / 1e12, 3),
            "fraction_of_bf16_peak": round(model_flops / peaks["bfloat16"], 3),
            "fraction_of_fp32_peak": round(model_flops / peaks["float32"], 3), "shape": f"batch {batch} × seq {seq}"}


def peak_rss_seq128(train: Path, out: Path) -> int:
    command = [str(TFPIPE_CLI), "finetune", "--task", "classification", "--train", str(train), "--output-dir",
               str(out / "rss-run"), "--text-column", "sentence", "--label-column", "label", "--init-checkpoint",
               str(MINILM), "--epochs", "1", "--batch-size", "32", "--max-seq-length", "128",
               "--set", "pipeline.bucket_boundaries=[128]", "--quiet"]
    _, rss, _ = _timed(command)
    return rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=16000)
    parser.add_argument("--anchor-python", help="python of the anchor's venv (torch + transformers)")
    parser.add_argument("--levers", action="store_true", help="run the lever table instead of the headline")
    parser.add_argument("--lever-rows", type=int, default=2000)
    parser.add_argument("--baseline-tree", type=Path,
                        help="with --levers: also run an older checkout of tfpipe (e.g. a `git worktree`) with buckets "
                             "and its own defaults, to measure changes that have no switch")
    parser.add_argument("--extra", action="append", default=[],
                        help="a flag added to the headline's `tfpipe finetune` (repeat it; e.g. --extra=--set "
                             "--extra=training.steps_per_execution=5)")
    parser.add_argument("--only-job", action="store_true", help="the headline job(s) only: no RSS or FLOP/s runs")
    parser.add_argument("--out", type=Path, default=REPO / "bench-out" / "finetune")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict = {"machine": machine_info()}
    if args.levers:
        train = _rows(args.lever_rows, args.out)
        results["levers"] = {}
        if args.baseline_tree:
            name = f"code at {args.baseline_tree.name}, buckets, its defaults"
            cli = (sys.executable, "-m", "tfpipe.cli.main")
            results["levers"][name] = tfpipe_job(train, args.out / "baseline", BUCKETS,
                                                 {"PYTHONPATH": str(args.baseline_tree.resolve())}, cli)
            print(name, results["levers"][name], flush=True)
        for name, (extra, env) in LEVERS.items():
            folder = args.out / "".join(c if c.isalnum() else "_" for c in name)
            results["levers"][name] = tfpipe_job(train, folder, extra, env)
            print(name, results["levers"][name], flush=True)
    else:
        train = _rows(args.rows, args.out)
        results["tfpipe"] = tfpipe_job(train, args.out / "headline", HEADLINE + args.extra)
        print("tfpipe", results["tfpipe"], flush=True)
        if args.anchor_python:
            results["anchor"] = anchor_job(args.anchor_python, args.rows)
            print("anchor", results["anchor"], flush=True)
            results["speedup"] = round(results["anchor"]["total_s"] / results["tfpipe"]["total_s"], 2)
        if not args.only_job:
            results["peak_rss_mib_batch32_seq128"] = peak_rss_seq128(_rows(640, args.out), args.out)
            results["flops"] = peaks_and_model_flops()
        print(json.dumps(results, indent=2))
    (args.out / ("levers.json" if args.levers else "headline.json")).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
