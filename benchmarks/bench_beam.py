"""Corpus stages on Apache Beam vs the local path: throughput, same bytes, and the NSP rule old vs new.

A. Throughput. `prepare-corpus` and `create-pretraining-data` (the API behind each command) run locally and on the
   direct runner with 1 worker (in process) and 2 workers (`direct_running_mode=multi_processing`), each in a
   fresh child process (so every variant pays its own start-up: Python, TensorFlow, spaCy, Beam workers), on two
   inputs: S = WikiText-2 valid, L = WikiText-2 valid + test, `--copies` times over, every copy's text lines marked
   with its copy number so de-duplication keeps them. Wall seconds and CPU seconds (the child and all its
   children, Beam's worker processes included) are measured. Rates per CPU second are marginal, (L - S) / (CPU
   seconds L - CPU seconds S): they leave out the fixed start-up, are what scales, and depend far less than wall
   rates on what else the shared machine runs. WikiText article titles are document boundaries;
   create-pretraining-data uses the MiniLM vocabulary, dupe_factor 5, max_seq_length 128, 4 shards, seed 12345.
   Every variant's output files must be byte-identical to the local path's.
B. NSP rule, old vs new. The previous release's `InstanceMaker` (one `random.Random(seed)` in corpus order; read
   from git, commit 2714c5d) and today's keyed rule make instances from the same tokenized WikiText-2 valid
   documents with the same settings; masked fraction, random-next fraction and sequence lengths side by side.
C. A cost and time estimate for a 3.3-billion-word corpus on 100 Dataflow workers from the marginal CPU
   throughput of (A) (price flags: list prices to check before use).

Run (about 15 minutes on 2 shared cores; `--no-nsp` skips B):
    .venv/bin/python benchmarks/bench_beam.py --out bench-out
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common

_common.quiet_tensorflow()
OLD_COMMIT = "2714c5d"  # the last commit with one generator in corpus order
VARIANTS = {"local": None, "direct, 1 worker": [], "direct, 2 workers": ["direct_num_workers=2",
                                                                         "direct_running_mode=multi_processing"]}
STAGES = ("prepare-corpus", "create-pretraining-data")
OLD_RULE, NEW_RULE = "old rule (one generator, corpus order)", "new rule (keyed by document and pair)"


def _child(stage: str, variant: str, corpus: str, out: str) -> dict:
    """One measured run, in this (child) process; prints the figures as JSON."""
    from tfpipe.config import WIKITEXT_HEADING_REGEX, WIKITEXT_TITLE_REGEX, PretrainingConfig, ReaderConfig

    reader = ReaderConfig(doc_boundary_regex=WIKITEXT_TITLE_REGEX, drop_regex=WIKITEXT_HEADING_REGEX)
    options = VARIANTS[variant]
    if stage == "prepare-corpus":
        if options is None:
            from tfpipe.text.corpus import prepare_corpus as run
        else:
            from tfpipe.data.beam_pipelines import prepare_corpus_beam as run
        extra = {} if options is None else {"runner": "direct", "options": options}
        stats = run([corpus], Path(out) / "corpus.txt", reader, num_shards=4, **extra)
        result = {"documents": stats.documents, "tokens": stats.words}  # tokens: words of the sentences out
    else:
        from tfpipe.text.tokenizer import WordPieceTokenizer

        tokenizer = WordPieceTokenizer(_common.MINILM / "vocab.txt")
        if options is None:
            from tfpipe.data.pretraining_data import create_pretraining_data as run
        else:
            from tfpipe.data.beam_pipelines import create_pretraining_data_beam as run
        extra = {} if options is None else {"runner": "direct", "options": options}
        manifest = run([corpus], tokenizer, out, PretrainingConfig(), reader, **extra)
        result = {"documents": manifest["corpus"]["documents"], "tokens": manifest["stats"]["tokens"],
                  "instances": manifest["num_instances"]}  # tokens: WordPiece tokens written
    result["words"] = sum(len(line.split()) for line in open(corpus, encoding="utf-8"))  # raw input words
    result["files"] = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(out).iterdir())
                       if p.is_file()}
    return result


def _measure(stage: str, variant: str, corpus: Path, out: Path) -> dict:
    load = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--child", stage, variant, str(corpus), str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"{stage} / {variant} failed")
    result = json.loads(stdout.strip().splitlines()[-1])
    return {**result, "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "load_1min_at_start": load}


def _inputs(folder: Path, copies: int) -> dict[str, Path]:
    small = _common.WIKITEXT_VALID
    large = folder / f"valid-test-x{copies}.txt"
    with large.open("w", encoding="utf-8") as out:
        for copy in range(copies):
            for source in (small, small.with_name("test.txt")):
                for line in source.read_text(encoding="utf-8").splitlines():
                    # Mark text lines (not titles, headings or blank lines) so no copy is a duplicate.
                    text = line.strip() and not line.lstrip().startswith("=")
                    out.write(f"{line} c{copy}\n" if text else line + "\n")
    return {"S": small, "L": large}


def throughput(folder: Path, copies: int) -> dict:
    inputs = _inputs(folder, copies)
    runs: dict = {}
    for stage in STAGES:
        for size, corpus in inputs.items():
            for variant in VARIANTS:
                key = f"{stage} | {variant} | {size}"
                runs[key] = _measure(stage, variant, corpus, folder / key.replace(" | ", "-").replace(", ", "-"))
                print(f"{key}: {runs[key]['wall_s']:.1f} s wall, {runs[key]['cpu_s']:.1f} s CPU", flush=True)
    return runs


def _old_maker_module():
    source = subprocess.run(["git", "show", f"{OLD_COMMIT}:tfpipe/data/pretraining_examples.py"], cwd=_common.REPO,
                            capture_output=True, text=True, check=True).stdout
    spec = importlib.util.spec_from_loader("old_pretraining_examples", loader=None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    exec(compile(source, f"{OLD_COMMIT}:pretraining_examples.py", "exec"), module.__dict__)
    return module


def _stats(instances) -> dict:
    bins = [0, 32, 64, 96, 125, 128, 129]
    lengths = [len(i.tokens) for i in instances]
    histogram = [sum(lo <= n < hi for n in lengths) for lo, hi in zip(bins, bins[1:])]
    return {"instances": len(instances), "tokens": sum(lengths),
            "masked_fraction": sum(len(i.masked_positions) for i in instances) / sum(n - 3 for n in lengths),
            "random_next_fraction": sum(i.is_random_next for i in instances) / len(instances),
            "mean_length": sum(lengths) / len(lengths),
            "length_histogram": {f"{lo}-{hi - 1}": c / len(lengths) for lo, hi, c in zip(bins, bins[1:], histogram)}}


def nsp_old_vs_new(seeds: tuple[int, ...] = (12345, 1, 2, 3, 4)) -> dict:
    """Both rules on the same tokenized documents, for each seed: `{rule: {seed: stats}}`."""
    import dataclasses
    import random

    from tfpipe.config import WIKITEXT_HEADING_REGEX, WIKITEXT_TITLE_REGEX, PretrainingConfig, ReaderConfig
    from tfpipe.data.pretraining_examples import InstanceMaker, tokenize_documents
    from tfpipe.text.corpus import iter_identified_documents
    from tfpipe.text.tokenizer import WordPieceTokenizer

    reader = ReaderConfig(doc_boundary_regex=WIKITEXT_TITLE_REGEX, drop_regex=WIKITEXT_HEADING_REGEX)
    tokenizer = WordPieceTokenizer(_common.MINILM / "vocab.txt")
    documents = tokenize_documents(iter_identified_documents([_common.WIKITEXT_VALID], reader), tokenizer)
    plain = [tokens for _, tokens in documents]
    old = _old_maker_module()
    out: dict = {OLD_RULE: {}, NEW_RULE: {}}
    for seed in seeds:
        config = dataclasses.replace(PretrainingConfig(), seed=seed)
        old_maker = old.InstanceMaker(tokenizer, config, random.Random(seed))
        new_maker = InstanceMaker(tokenizer, config)
        made: dict = {OLD_RULE: [], NEW_RULE: []}
        for round in range(config.dupe_factor):  # the old driver: every document in turn, each round
            for position in range(len(documents)):
                made[OLD_RULE].extend(old_maker.from_document(plain, position))
                made[NEW_RULE].extend(new_maker.from_documents(documents, position, round))
        for rule, instances in made.items():
            out[rule][seed] = _stats(instances)
    return out


def estimate(runs: dict, args: argparse.Namespace) -> dict:
    """Time and cost for `args.words` words on `args.workers` Dataflow workers from the marginal CPU rates."""
    out = {}
    for stage in STAGES:
        s, l_ = runs[f"{stage} | direct, 2 workers | S"], runs[f"{stage} | direct, 2 workers | L"]
        words_per_cpu_s = (l_["words"] - s["words"]) / (l_["cpu_s"] - s["cpu_s"])
        vcpus = args.workers * args.vcpus_per_worker
        hours = args.words / (words_per_cpu_s * vcpus * args.efficiency) / 3600
        worker_cost = hours * args.workers * (args.vcpus_per_worker * args.vcpu_hour + args.gb_per_worker *
                                              args.gb_hour)
        out[stage] = {"words_per_cpu_s": words_per_cpu_s, "vcpus": vcpus, "hours": hours, "worker_cost": worker_cost}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(_common.DEFAULT_OUT), help="folder for the JSON results")
    parser.add_argument("--child", nargs=4, metavar=("STAGE", "VARIANT", "CORPUS", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--copies", type=int, default=8, help="L = (valid + test) x this")
    parser.add_argument("--no-nsp", action="store_true", help="skip B (its figures do not depend on the machine)")
    parser.add_argument("--words", type=float, default=3.3e9, help="corpus size of the estimate (words)")
    parser.add_argument("--workers", type=int, default=100)
    parser.add_argument("--vcpus-per-worker", type=int, default=4, help="n2-standard-4")
    parser.add_argument("--gb-per-worker", type=float, default=16)
    parser.add_argument("--efficiency", type=float, default=0.7, help="share of worker CPU doing the work")
    parser.add_argument("--vcpu-hour", type=float, default=0.056, help="USD, Dataflow batch vCPU list price")
    parser.add_argument("--gb-hour", type=float, default=0.003557, help="USD, Dataflow batch memory list price")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(*args.child)))
        return 0

    load_start = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="tfpipe-bench-beam-") as tmp:
        runs = throughput(Path(tmp), args.copies)
    nsp = {} if args.no_nsp else nsp_old_vs_new()
    cost = estimate(runs, args)

    rows = []
    for stage in STAGES:
        local = runs[f"{stage} | local | L"]["files"]
        for variant in VARIANTS:
            s, l_ = runs[f"{stage} | {variant} | S"], runs[f"{stage} | {variant} | L"]
            cpu = l_["cpu_s"] - s["cpu_s"]  # the marginal CPU seconds: start-up costs cancel out
            rows.append([stage, variant, f"{s['wall_s']:.1f} / {l_['wall_s']:.1f}",
                         f"{s['load_1min_at_start']:.1f} / {l_['load_1min_at_start']:.1f}",
                         l_["documents"] / l_["wall_s"], l_["tokens"] / l_["wall_s"], l_["cpu_s"] / l_["wall_s"],
                         (l_["documents"] - s["documents"]) / cpu, (l_["tokens"] - s["tokens"]) / cpu,
                         (l_["words"] - s["words"]) / cpu,
                         l_["files"] == local and s["files"] == runs[f"{stage} | local | S"]["files"]])
    print(f"\n## A. Throughput (S = WikiText-2 valid, L = (valid + test) x {args.copies})\n")
    print(_common.markdown_table(
        ["stage", "variant", "wall s S / L", "load S / L", "docs/s (L)", "tokens/s (L)", "CPU/wall (L)",
         "docs per CPU-s", "tokens per CPU-s", "input words per CPU-s", "same bytes as local"], rows))
    print("\n## B. NSP rule, old vs new (WikiText-2 valid, MiniLM vocabulary, dupe_factor 5)\n")
    table = [] if nsp else [["(skipped: --no-nsp)"]]
    for key in ("instances", "tokens", "masked_fraction", "random_next_fraction", "mean_length") if nsp else ():
        row = [key]
        for rule in (OLD_RULE, NEW_RULE):
            values = [stats[key] for stats in nsp[rule].values()]
            row += [f"{nsp[rule][12345][key]:.4g}", f"{min(values):.4g}-{max(values):.4g}"]
        table.append(row)
    for bucket in nsp[OLD_RULE][12345]["length_histogram"] if nsp else ():
        row = [f"length {bucket}"]
        for rule in (OLD_RULE, NEW_RULE):
            values = [stats["length_histogram"][bucket] for stats in nsp[rule].values()]
            row += [f"{nsp[rule][12345]['length_histogram'][bucket]:.2%}", f"{min(values):.2%}-{max(values):.2%}"]
        table.append(row)
    print(_common.markdown_table(["statistic", "old, seed 12345", "old, 5 seeds", "new, seed 12345",
                                  "new, 5 seeds"], table))
    print(f"\n## C. {args.words:.2g} words on {args.workers} Dataflow workers x {args.vcpus_per_worker} vCPU "
          f"(efficiency {args.efficiency})\n")
    print(_common.markdown_table(["stage", "words per CPU-s", "hours", "worker cost USD"],
                                 [[k, v["words_per_cpu_s"], v["hours"], v["worker_cost"]] for k, v in cost.items()]))
    machine = _common.machine_info()
    machine["loadavg_at_start"] = load_start
    print(f"\nload average at start {load_start}, at end {machine['loadavg_1_5_15']}")
    path = _common.write_results(args.out, "beam", {"machine": machine, "runs": runs, "nsp_old_vs_new": nsp,
                                                    "estimate": cost, "estimate_inputs": vars(args)})
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
