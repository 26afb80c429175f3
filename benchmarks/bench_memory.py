"""Peak RSS of the corpus CLI commands on 1x and 10x WikiText-2 valid: is memory flat as the corpus grows?

Each command runs in a fresh process under `/usr/bin/time -v` (peak RSS = "Maximum resident set size"); where
GNU time is missing, a small Python wrapper reports `resource.getrusage(RUSAGE_CHILDREN).ru_maxrss` of its one
child instead. The 10x corpus is `valid.txt` concatenated 10 times into a temporary file.

Commands (WikiText article titles as document boundaries where the command has the flag):
- `tfpipe prepare-corpus --doc-boundary-regex wikitext --set cleaning.dedupe=false`: de-duplication is off
  because the 10x file repeats every line; with it on, 9 of the 10 copies would be dropped before spaCy and
  the 10x run would not process 10x the text. (The de-duplicator keeps a 16-byte digest per distinct line, so
  with it on memory grows with distinct lines, by design.)
- `tfpipe build-vocab --vocab-size 8000` (the command already counts words without de-duplication).
- `tfpipe create-pretraining-data --doc-boundary-regex wikitext --set cleaning.dedupe=false` with the 1x
  vocabulary. It keeps the whole tokenized corpus (and one dupe round's instances) in memory by design, so its
  peak is expected to grow with the corpus; it is reported, not judged flat.

Goal: flat for the spaCy pass (prepare-corpus) and build-vocab, judged as 10x peak <= 1.10 x 1x peak.
Note: the 10x corpus has no new words, so build-vocab's word-count table cannot grow; this measures streaming,
not vocabulary growth.

Run (about 2-3 minutes on 2 shared cores):
    .venv/bin/python benchmarks/bench_memory.py --out bench-out
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common

FLAT_LIMIT = 1.10
GNU_TIME = "/usr/bin/time"
WRAPPER = ("import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
           "print('Maximum resident set size (kbytes): %d' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,"
           " file=sys.stderr); sys.exit(code)")


def peak_rss(command: list[str]) -> dict:
    """Runs `command` in a fresh process; returns its peak RSS (MiB), wall seconds and the tool used."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "ABSL_MIN_LOG_LEVEL": "2"}
    if os.access(GNU_TIME, os.X_OK):
        wrapped, tool = [GNU_TIME, "-v", *command], "/usr/bin/time -v"
    else:
        wrapped, tool = [sys.executable, "-c", WRAPPER, *command], "getrusage(RUSAGE_CHILDREN)"
    t0 = time.perf_counter()
    done = subprocess.run(wrapped, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    return {"peak_rss_mib": kib / 1024, "seconds": seconds, "tool": tool, "stdout_tail": done.stdout[-600:]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(_common.DEFAULT_OUT), help="folder for the JSON results")
    parser.add_argument("--input", default=str(_common.WIKITEXT_VALID), help="plain-text corpus")
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10], help="corpus repetitions to compare")
    parser.add_argument("--commands", nargs="+", default=["prepare-corpus", "build-vocab", "create-pretraining-data"])
    args = parser.parse_args(argv)

    cli = str(_common.TFPIPE_CLI)
    if not shutil.which(cli):
        raise SystemExit(f"{cli} not found: install the package into the virtualenv first")
    load_start = [round(x, 2) for x in os.getloadavg()]
    rows, results = [], []
    with tempfile.TemporaryDirectory(prefix="tfpipe-bench-memory-") as tmp:
        tmp = Path(tmp)
        corpora = {s: _common.repeat_file(Path(args.input), s, tmp / f"corpus-x{s}.txt") for s in args.scales}
        vocab = tmp / "vocab-x1" / "vocab.txt"  # the vocabulary create-pretraining-data uses at every scale
        subprocess.run([cli, "build-vocab", "--input", args.input, "--vocab-size", "8000", "--output", str(vocab),
                        "--quiet"], check=True, capture_output=True)

        def command(name: str, scale: int) -> list[str]:
            corpus, out = str(corpora[scale]), tmp / f"{name}-x{scale}"
            if name == "prepare-corpus":
                return [cli, name, "--input", corpus, "--output", str(out / "corpus.txt"), "--doc-boundary-regex",
                        "wikitext", "--set", "cleaning.dedupe=false", "--quiet"]
            if name == "build-vocab":
                return [cli, name, "--input", corpus, "--vocab-size", "8000", "--output", str(out / "vocab.txt"),
                        "--quiet"]
            if name == "create-pretraining-data":
                return [cli, name, "--input", corpus, "--vocab", str(vocab), "--output-dir", str(out),
                        "--doc-boundary-regex", "wikitext", "--set", "cleaning.dedupe=false", "--quiet"]
            raise ValueError(name)

        words = {s: len(path.read_text(encoding="utf-8").split()) for s, path in corpora.items()}
        for name in args.commands:
            runs = {}
            for scale in args.scales:
                cmd = command(name, scale)
                runs[scale] = peak_rss(cmd)
                runs[scale]["command"] = " ".join(cmd).replace(str(tmp), "$TMP")
                print(f"{name} x{scale}: {runs[scale]['peak_rss_mib']:.0f} MiB, {runs[scale]['seconds']:.1f} s",
                      file=sys.stderr)
            small, large = runs[min(args.scales)], runs[max(args.scales)]
            ratio = large["peak_rss_mib"] / small["peak_rss_mib"]
            goal = "reported (holds the corpus by design)" if name == "create-pretraining-data" else (
                f"flat (<= {FLAT_LIMIT:.2f}x): {'yes' if ratio <= FLAT_LIMIT else 'NO'}")
            rows.append([name, *[round(runs[s]["peak_rss_mib"]) for s in args.scales],
                         f"{ratio:.2f}x", round(large["peak_rss_mib"] - small["peak_rss_mib"]),
                         *[round(runs[s]["seconds"], 1) for s in args.scales], goal])
            results.append({"command": name, "runs": runs, "ratio": ratio})

    scales = args.scales
    print(f"## Peak RSS (MiB), {args.input} at " + ", ".join(f"x{s} ({words[s]:,} words)" for s in scales) + "\n")
    print(_common.markdown_table(
        ["command", *[f"peak RSS x{s} (MiB)" for s in scales], f"x{max(scales)}/x{min(scales)}", "growth (MiB)",
         *[f"wall x{s} (s)" for s in scales], "goal"], rows))
    machine = _common.machine_info()
    machine["loadavg_at_start"] = load_start
    print(f"\nmeasured with {results[0]['runs'][scales[0]]['tool']}; load average at start {load_start}, "
          f"at end {machine['loadavg_1_5_15']}")
    path = _common.write_results(args.out, "memory", {"machine": machine, "input": args.input, "words": words,
                                                      "flat_limit": FLAT_LIMIT, "results": results})
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
