"""create-pretraining-data throughput (examples/s) on WikiText-2 valid, with the manifest's must-show stats.

Steps:
1. a WordPiece vocabulary of 8,000 tokens is built from the same corpus with the CLI
   (`tfpipe build-vocab --vocab-size 8000`, timed, in a temporary folder);
2. `create_pretraining_data` (the function behind `tfpipe create-pretraining-data`) runs in this process with
   its defaults (max_seq_length 128, 20 predictions, masked_lm_prob 0.15, dupe_factor 5, 4 shards, seed 12345)
   and WikiText article titles as document boundaries (section headings dropped), `--repeats` times after one
   warm-up run; examples/s = instances written / wall seconds of the whole call (spaCy pass, tokenization,
   instance making, serialization, sha256 of the shards);
3. the first stage alone (spaCy sentences + in-graph tokenization of every sentence) is timed the same way,
   to show where the time goes.

The manifest's stats (masked fraction of maskable tokens, random-next fraction) are printed from the last run.

Run (about 1 minute on 2 shared cores):
    .venv/bin/python benchmarks/bench_pretraining_data.py --out bench-out
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common

_common.quiet_tensorflow()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(_common.DEFAULT_OUT), help="folder for the JSON results")
    parser.add_argument("--input", default=str(_common.WIKITEXT_VALID), help="plain-text corpus")
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs after one warm-up run")
    parser.add_argument("--dupe-factor", type=int, default=5)
    args = parser.parse_args(argv)

    from tfpipe.config import WIKITEXT_HEADING_REGEX, WIKITEXT_TITLE_REGEX
    from tfpipe.config.schemas import PretrainingConfig, ReaderConfig
    from tfpipe.data.pretraining_data import create_pretraining_data
    from tfpipe.data.pretraining_examples import tokenize_documents
    from tfpipe.text.corpus import iter_identified_documents
    from tfpipe.text.tokenizer import WordPieceTokenizer

    load_start = [round(x, 2) for x in os.getloadavg()]
    reader = ReaderConfig(doc_boundary_regex=WIKITEXT_TITLE_REGEX, drop_regex=WIKITEXT_HEADING_REGEX)
    config = PretrainingConfig(dupe_factor=args.dupe_factor)
    with tempfile.TemporaryDirectory(prefix="tfpipe-bench-pretrain-") as tmp:
        vocab = Path(tmp) / "vocab" / "vocab.txt"
        command = [str(_common.TFPIPE_CLI), "build-vocab", "--input", args.input, "--vocab-size",
                   str(args.vocab_size), "--output", str(vocab), "--quiet"]
        t0 = time.perf_counter()
        built = subprocess.run(command, capture_output=True, text=True, check=True)
        vocab_seconds = time.perf_counter() - t0
        vocab_result = json.loads(built.stdout.strip().splitlines()[-1])
        tokenizer = WordPieceTokenizer(vocab)

        def full_run(index: int) -> dict:
            t0 = time.perf_counter()
            manifest = create_pretraining_data([args.input], tokenizer, Path(tmp) / f"out{index}", config, reader)
            seconds = time.perf_counter() - t0
            return {"seconds": seconds, "instances": manifest["num_instances"],
                    "examples_per_s": manifest["num_instances"] / seconds, "manifest": manifest}

        def first_stage() -> dict:
            t0 = time.perf_counter()
            documents = tokenize_documents(iter_identified_documents([args.input], reader), tokenizer)
            seconds = time.perf_counter() - t0
            return {"seconds": seconds, "documents": len(documents),
                    "tokens": int(sum(len(s) for _, d in documents for s in d))}

        full_run(-1)  # warm-up: tf.function tracing, spaCy loading, page cache
        full, stage = [], []
        for i in range(args.repeats):
            full.append(full_run(i))
            stage.append(first_stage())

    manifests = [r.pop("manifest") for r in full]
    digests = {tuple(s["sha256"] for s in m["shards"]) for m in manifests}
    manifest = manifests[-1]
    stats = manifest["stats"]
    rate = _common.summarize([r["examples_per_s"] for r in full])
    total = sorted(r["seconds"] for r in full)[len(full) // 2]
    first = sorted(r["seconds"] for r in stage)[len(stage) // 2]

    print(f"## create-pretraining-data: {args.input}, vocab {vocab_result['size']} "
          f"(tfpipe build-vocab: {vocab_seconds:.1f} s incl. process start)\n")
    print(_common.markdown_table(
        ["metric", "value"],
        [["instances (examples) written", manifest["num_instances"]],
         ["examples/s (median of runs)", rate["median"]],
         ["examples/s range", f"{rate['min']:,.0f}-{rate['max']:,.0f}"],
         ["wall s per run (median)", round(total, 2)],
         ["  of which spaCy + tokenization (median, timed separately)", round(first, 2)],
         ["  of which instances + serialization + writing (difference)", round(total - first, 2)],
         ["tokens written / s", stats["tokens"] / total],
         ["documents / sentences", f"{manifest['corpus']['documents']:,} / {manifest['corpus']['sentences']:,}"],
         ["dupe_factor / max_seq_length / max_predictions", f"{config.dupe_factor} / {config.max_seq_length} / "
                                                            f"{config.max_predictions_per_seq}"],
         ["masked fraction (masked / maskable tokens)", f"{stats['masked_fraction']:.4f}"],
         ["random-next fraction", f"{stats['random_next_fraction']:.4f}"],
         ["tokens / maskable / masked", f"{stats['tokens']:,} / {stats['maskable_tokens']:,} / "
                                        f"{stats['masked_tokens']:,}"],
         ["byte-identical shards across runs", len(digests) == 1]]))
    machine = _common.machine_info()
    machine["loadavg_at_start"] = load_start
    print(f"\nload average at start {load_start}, at end {machine['loadavg_1_5_15']}")
    path = _common.write_results(args.out, "pretraining_data", {
        "machine": machine, "input": args.input, "vocab": vocab_result, "build_vocab_seconds": vocab_seconds,
        "config": dataclasses.asdict(config), "runs": full,
        "first_stage_runs": stage, "examples_per_s": rate, "manifest_stats": stats,
        "manifest_corpus": manifest["corpus"], "identical_shards_across_runs": len(digests) == 1})
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
