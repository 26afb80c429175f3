"""Tokenizer throughput: tfpipe's in-graph WordPieceTokenizer in tf.data vs Hugging Face `tokenizers`.

Both tokenize the same texts (SST-2 train sentences, 67,349) with the same vocabulary (the shared MiniLM
`vocab.txt`, and its `tokenizer.json` for Hugging Face, with padding and truncation switched off and no special
tokens added). Reported in output WordPiece tokens per second, warm-up pass excluded, median of `--repeats`
interleaved passes:

- tfpipe, `Dataset.from_tensor_slices(texts).batch(B).map(tok.tokenize)` (sequential map), and the same with
  `num_parallel_calls=AUTOTUNE` + `prefetch`;
- Hugging Face `Tokenizer.encode_batch` on batches of the same size B, with its Rayon thread pool on (the
  library's default: `TOKENIZERS_PARALLELISM` unset means parallel) and off (`TOKENIZERS_PARALLELISM=false`).

The run is repeated in a child process pinned to one core (`taskset -c 0`): TensorFlow and Rayon size their
thread pools from the CPU affinity mask, so that row is a like-for-like single-core comparison.
Both tokenizers must produce the same ids: the match rate over all texts is reported and mismatches are shown.

Run (about 1-2 minutes on 2 shared cores):
    .venv/bin/python benchmarks/bench_tokenizer.py --out bench-out
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import _common

_common.quiet_tensorflow()

RESULT_MARKER = "BENCH_TOKENIZER_RESULT "


def load_texts(path: Path, limit: int | None) -> list[str]:
    from tfpipe.config.schemas import ReaderConfig
    from tfpipe.text.readers import read_records

    config = ReaderConfig(text_column="sentence", label_column="label")
    texts = [record.text for record in read_records(path, config)]
    return texts[:limit] if limit else texts


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(args: argparse.Namespace) -> dict:
    """All variants in this process: parity check, warm-up, then interleaved timed passes."""
    import tensorflow as tf
    import tokenizers

    from tfpipe.text.tokenizer import WordPieceTokenizer

    texts = load_texts(Path(args.texts), args.limit)
    batch = args.batch_size
    tok = WordPieceTokenizer(Path(args.checkpoint) / "vocab.txt", lowercase=True)
    hf = tokenizers.Tokenizer.from_file(str(Path(args.checkpoint) / "tokenizer.json"))
    hf.no_padding()
    hf.no_truncation()
    hf_batches = [texts[i:i + batch] for i in range(0, len(texts), batch)]
    env_parallelism = os.environ.get("TOKENIZERS_PARALLELISM")

    def tf_dataset(parallel: bool) -> tf.data.Dataset:
        ds = tf.data.Dataset.from_tensor_slices(texts).batch(batch)
        if parallel:
            return ds.map(tok.tokenize, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
        return ds.map(tok.tokenize)

    datasets = {"seq": tf_dataset(False), "par": tf_dataset(True)}

    def run_tf(kind: str) -> int:
        return sum(int(ragged.flat_values.shape[0]) for ragged in datasets[kind])

    def run_hf(parallel: bool) -> int:
        os.environ["TOKENIZERS_PARALLELISM"] = "true" if parallel else "false"
        try:
            return sum(len(e.ids) for chunk in hf_batches for e in hf.encode_batch(chunk, add_special_tokens=False))
        finally:
            if env_parallelism is None:
                os.environ.pop("TOKENIZERS_PARALLELISM", None)
            else:
                os.environ["TOKENIZERS_PARALLELISM"] = env_parallelism

    variants = {
        f"tfpipe WordPieceTokenizer, tf.data batch({batch}).map (sequential)": lambda: run_tf("seq"),
        f"tfpipe WordPieceTokenizer, tf.data batch({batch}).map (AUTOTUNE) + prefetch": lambda: run_tf("par"),
        "HF tokenizers encode_batch, parallelism on (library default)": lambda: run_hf(True),
        "HF tokenizers encode_batch, TOKENIZERS_PARALLELISM=false": lambda: run_hf(False),
    }

    # Parity: identical ids for every text (no special tokens on either side).
    tf_ids = [row for ragged in datasets["seq"] for row in ragged.to_list()]
    hf_ids = [e.ids for chunk in hf_batches for e in hf.encode_batch(chunk, add_special_tokens=False)]
    mismatches = [i for i, (a, b) in enumerate(zip(tf_ids, hf_ids)) if a != b]
    parity = {
        "texts": len(texts),
        "identical": len(texts) - len(mismatches),
        "match_rate": (len(texts) - len(mismatches)) / len(texts),
        "examples": [{"text": texts[i], "tfpipe": tf_ids[i], "hf": hf_ids[i]} for i in mismatches[:5]],
    }

    for run in variants.values():  # warm-up: tracing, thread pools, caches
        run()
    samples: dict[str, list[dict]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, run in variants.items():
            cpu0, t0 = cpu_seconds(), time.perf_counter()
            tokens = run()
            wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
            samples[name].append({"tokens": tokens, "seconds": wall, "tokens_per_s": tokens / wall,
                                  "cpu_per_wall": cpu / wall})
    rows = {}
    for name, runs in samples.items():
        rates = _common.summarize([r["tokens_per_s"] for r in runs])
        rows[name] = {"tokens_per_pass": runs[0]["tokens"], "tokens_per_s": rates,
                      "cpu_per_wall_median": sorted(r["cpu_per_wall"] for r in runs)[len(runs) // 2],
                      "runs": runs}
    return {
        "usable_cpus": len(os.sched_getaffinity(0)),
        "tf_threads": {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                       "inter_op": tf.config.threading.get_inter_op_parallelism_threads()},
        "env": {"TOKENIZERS_PARALLELISM": env_parallelism, "RAYON_NUM_THREADS": os.environ.get("RAYON_NUM_THREADS")},
        "texts": len(texts), "batch_size": batch, "repeats": args.repeats,
        "parity": parity, "variants": rows,
        "versions": {"tensorflow": tf.__version__, "tokenizers": tokenizers.__version__},
    }


def print_table(title: str, result: dict) -> None:
    print(f"\n### {title}: {result['usable_cpus']} usable CPU(s), {result['texts']:,} texts\n")
    rows = []
    variants = result["variants"]
    base = next(v["tokens_per_s"]["median"] for k, v in variants.items() if k.startswith("HF") and "default" in k)
    for name, row in variants.items():
        rate = row["tokens_per_s"]
        rows.append([name, row["tokens_per_pass"], rate["median"], f"{rate['min']:,.0f}-{rate['max']:,.0f}",
                     round(row["cpu_per_wall_median"], 2), f"{rate['median'] / base:.2f}x"])
    print(_common.markdown_table(
        ["variant", "tokens/pass", "tokens/s (median)", "range", "CPU s / wall s", "vs HF default"], rows))
    parity = result["parity"]
    print(f"\nid parity: {parity['identical']:,}/{parity['texts']:,} texts identical "
          f"({parity['match_rate']:.4%})")
    for example in parity["examples"]:
        print(f"  mismatch: {example['text']!r}\n    tfpipe {example['tfpipe']}\n    hf     {example['hf']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(_common.DEFAULT_OUT), help="folder for the JSON results")
    parser.add_argument("--texts", default=str(_common.SST2_TRAIN), help="TSV with a 'sentence' column")
    parser.add_argument("--checkpoint", default=str(_common.MINILM), help="folder with vocab.txt and tokenizer.json")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5, help="timed passes per variant (after one warm-up)")
    parser.add_argument("--limit", type=int, help="use only the first N texts (quick checks)")
    parser.add_argument("--no-pinned", action="store_true", help="skip the run pinned to one core")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(RESULT_MARKER + json.dumps(measure(args)))
        return 0

    load_start = [round(x, 2) for x in os.getloadavg()]
    results = {"machine": None, "runs": {}}
    results["runs"]["all_cores"] = measure(args)
    results["machine"] = _common.machine_info()
    results["machine"]["loadavg_at_start"] = load_start
    if not args.no_pinned:
        if shutil.which("taskset") is None:
            print("taskset not found: skipping the one-core run", file=sys.stderr)
        else:
            command = ["taskset", "-c", "0", sys.executable, __file__, "--worker", "--texts", args.texts,
                       "--checkpoint", args.checkpoint, "--batch-size", str(args.batch_size),
                       "--repeats", str(args.repeats)] + (["--limit", str(args.limit)] if args.limit else [])
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            line = next(x for x in done.stdout.splitlines() if x.startswith(RESULT_MARKER))
            results["runs"]["one_core_taskset"] = json.loads(line[len(RESULT_MARKER):])

    print("## Tokenizer throughput (output WordPiece tokens/s, no special tokens)")
    print_table("All cores", results["runs"]["all_cores"])
    if "one_core_taskset" in results["runs"]:
        print_table("Pinned to one core (taskset -c 0)", results["runs"]["one_core_taskset"])
    print(f"\nload average at start {load_start}, at end {results['machine']['loadavg_1_5_15']}; HF default: "
          f"TOKENIZERS_PARALLELISM={os.environ.get('TOKENIZERS_PARALLELISM', 'unset (= parallel)')}, "
          f"RAYON_NUM_THREADS={os.environ.get('RAYON_NUM_THREADS', 'unset (= one thread per usable CPU)')}")
    path = _common.write_results(args.out, "tokenizer", results)
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
