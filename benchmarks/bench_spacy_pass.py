"""spaCy corpus pass throughput (words/s) with `n_process=1` and `n_process=2`, through tfpipe's own code.

The corpus is WikiText-2 `valid.txt` concatenated `--repeat` times (default 5, about 1.05M raw words) into a
temporary file. Two things are timed, each for every `n_process`, in interleaved repeats:

- `prepare_corpus` end to end: read, clean, spaCy `blank("en") + sentencizer` through `SpacyPass`, write one
  sentence per line (WikiText article titles as document boundaries, section headings dropped, as
  `tfpipe prepare-corpus --doc-boundary-regex wikitext` does). De-duplication is switched off
  (`CleaningConfig(dedupe=False)`), otherwise every repeat after the first would be dropped as duplicate lines
  and never reach spaCy.
- `SpacyPass.sentences` alone, over the already cleaned lines held in memory: the spaCy pass by itself.

Words are the whitespace-separated words of the output sentences (`CorpusStats.words`). CPU seconds of this
process and of its child processes (the spaCy workers with `n_process=2`) are reported per wall second.

Run (about 2-4 minutes on 2 shared cores):
    .venv/bin/python benchmarks/bench_spacy_pass.py --out bench-out
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import _common


def cpu_seconds() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def timed(fn):
    (own0, kids0), t0 = cpu_seconds(), time.perf_counter()
    words = fn()
    wall = time.perf_counter() - t0
    own1, kids1 = cpu_seconds()
    return {"words": words, "seconds": wall, "words_per_s": words / wall,
            "main_cpu_per_wall": (own1 - own0) / wall, "children_cpu_per_wall": (kids1 - kids0) / wall}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(_common.DEFAULT_OUT), help="folder for the JSON results")
    parser.add_argument("--input", default=str(_common.WIKITEXT_VALID), help="plain-text corpus to repeat")
    parser.add_argument("--repeat", type=int, default=5, help="concatenate the corpus this many times")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per configuration")
    parser.add_argument("--n-process", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch-size", type=int, default=256, help="nlp.pipe batch size (tfpipe default 256)")
    args = parser.parse_args(argv)

    import spacy

    from tfpipe.config import WIKITEXT_HEADING_REGEX, WIKITEXT_TITLE_REGEX
    from tfpipe.config.schemas import CleaningConfig, ReaderConfig, SpacyConfig
    from tfpipe.text.cleaning import clean_text
    from tfpipe.text.corpus import prepare_corpus
    from tfpipe.text.readers import read_documents
    from tfpipe.text.spacy_pass import SpacyPass

    load_start = [round(x, 2) for x in os.getloadavg()]
    reader = ReaderConfig(doc_boundary_regex=WIKITEXT_TITLE_REGEX, drop_regex=WIKITEXT_HEADING_REGEX)
    cleaning = CleaningConfig(dedupe=False)
    with tempfile.TemporaryDirectory(prefix="tfpipe-bench-spacy-") as tmp:
        corpus = _common.repeat_file(Path(args.input), args.repeat, Path(tmp) / "corpus.txt")
        raw_words = len(corpus.read_text(encoding="utf-8").split())
        lines = [clean_text(line, cleaning) for doc in read_documents(corpus, reader.doc_boundary_regex,
                                                                        reader.drop_regex) for line in doc.lines]
        lines = [line for line in lines if line]
        output = Path(tmp) / "prepared.txt"

        def run_prepare(n_process: int):
            def run():
                spacy_config = SpacyConfig(batch_size=args.batch_size, n_process=n_process)
                return prepare_corpus([corpus], output, reader, cleaning, spacy_config).words
            return run

        def run_pass(n_process: int):
            def run():
                segmenter = SpacyPass(SpacyConfig(batch_size=args.batch_size, n_process=n_process))
                return sum(len(s.split()) for sents in segmenter.sentences(lines) for s in sents)
            return run

        configs = {}
        for n in args.n_process:
            configs[("prepare_corpus (read+clean+spaCy+write)", n)] = run_prepare(n)
            configs[("SpacyPass.sentences (spaCy only)", n)] = run_pass(n)
        run_pass(1)()  # warm-up: spaCy's lazy loading, page cache
        samples: dict = {key: [] for key in configs}
        for _ in range(args.repeats):
            for key, run in configs.items():
                samples[key].append(timed(run))

    rows, results = [], []
    for (what, n), runs in samples.items():
        rate = _common.summarize([r["words_per_s"] for r in runs])
        median = sorted(runs, key=lambda r: r["words_per_s"])[len(runs) // 2]
        base = _common.summarize([r["words_per_s"] for r in samples[(what, args.n_process[0])]])["median"]
        rows.append([what, n, runs[0]["words"], rate["median"], f"{rate['min']:,.0f}-{rate['max']:,.0f}",
                     round(median["seconds"], 2), round(median["main_cpu_per_wall"], 2),
                     round(median["children_cpu_per_wall"], 2), f"{rate['median'] / base:.2f}x"])
        results.append({"what": what, "n_process": n, "words_per_s": rate, "runs": runs})

    print(f"## spaCy pass throughput: {args.input} x{args.repeat} ({raw_words:,} raw words, {len(lines):,} cleaned "
          f"lines), spaCy {spacy.__version__}, nlp.pipe batch_size={args.batch_size}\n")
    print(_common.markdown_table(
        ["what", "n_process", "words", "words/s (median)", "range", "s (median run)", "main CPU/wall",
         "workers CPU/wall", f"vs n_process={args.n_process[0]}"], rows))
    machine = _common.machine_info()
    machine["loadavg_at_start"] = load_start
    print(f"\nload average at start {load_start}, at end {machine['loadavg_1_5_15']} "
          f"({machine['usable_cpus']} usable CPUs)")
    path = _common.write_results(args.out, "spacy_pass", {
        "machine": machine, "input": args.input, "repeat": args.repeat, "raw_words": raw_words,
        "cleaned_lines": len(lines), "batch_size": args.batch_size, "spacy": spacy.__version__, "results": results})
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
