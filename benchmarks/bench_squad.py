"""Extractive QA, tfpipe vs Hugging Face transformers + PyTorch, side by side in one run: the same MiniLM-L6
checkpoint, the same SQuAD-format data, the same hyper-parameters, both scored by the official SQuAD v1.1 rules
(`tfpipe.training.squad_metrics`).

Data: `make_squad_conll.py` builds SQuAD v1.1 files from the real CoNLL-2003 train/valid sets (../shared); the
first `--train-questions` training questions are written as one JSON Lines file both stacks read, and every dev
question is predicted. Settings: max length 256, stride 128, question ≤ 64 pieces, answers ≤ 30 pieces, 1 epoch,
batch 16, AdamW 5e-5 (weight decay 0.01), 10% linear warmup then linear decay, 2 threads, seed 0.

Run (about 40 minutes on 2 shared cores; the anchor needs its venv, see hf_torch_squad.py's docstring):
    .venv/bin/python benchmarks/bench_squad.py --out bench-out/squad --train-questions 1200
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from _common import MINILM, REPO, SHARED, TFPIPE_CLI, machine_info, quiet_tensorflow

ANCHOR_PYTHON = Path("/tmp/hf-anchor/bin/python")
SETTINGS = {"max_seq_length": 256, "doc_stride": 128, "max_query_length": 64, "epochs": 1, "batch_size": 16,
            "learning_rate": 5e-5, "threads": 2, "seed": 0}


def _subset(train_json: Path, out: Path, questions: int) -> int:
    """The first `questions` questions of a SQuAD v1.1 file as Hugging Face-style JSON Lines."""
    rows = []
    for article in json.loads(train_json.read_text(encoding="utf-8"))["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                rows.append({"id": qa["id"], "title": article.get("title", ""), "context": paragraph["context"],
                             "question": qa["question"],
                             "answers": {"text": [a["text"] for a in qa["answers"]],
                                         "answer_start": [a["answer_start"] for a in qa["answers"]]}})
    rows = rows[:questions]
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return len(rows)


def _tfpipe(train: Path, dev: Path, out: Path) -> dict:
    s = SETTINGS
    run = out / "tfpipe-run"
    command = [str(TFPIPE_CLI), "finetune", "--task", "question-answering", "--init-checkpoint", str(MINILM),
               "--train", str(train), "--validation", str(dev), "--output-dir", str(run),
               "--epochs", str(s["epochs"]), "--batch-size", str(s["batch_size"]),
               "--learning-rate", str(s["learning_rate"]), "--max-seq-length", str(s["max_seq_length"]),
               "--set", f"pipeline.doc_stride={s['doc_stride']}",
               "--set", f"pipeline.max_query_length={s['max_query_length']}",
               "--set", f"training.threads={s['threads']}", "--set", f"training.seed={s['seed']}",
               "--set", "training.mixed_precision=none", "--set", "training.projector_examples=0", "--quiet"]
    started = time.monotonic()
    subprocess.run(command, check=True, cwd=REPO)
    metrics = json.loads((run / "metrics.json").read_text())
    return {"exact_match": metrics["exact_match"], "f1": metrics["f1"], "dev_questions": metrics["num_examples"],
            "steps_per_epoch": metrics["training"]["steps_per_epoch"],
            "optimizer_steps": metrics["training"]["optimizer_steps"], "wall_s": round(time.monotonic() - started, 1)}


def _anchor(train: Path, dev: Path, out: Path) -> dict:
    from tfpipe.text.readers import ErrorLog
    from tfpipe.text.readers.squad import read_squad
    from tfpipe.training.squad_metrics import squad_scores

    s = SETTINGS
    predictions = out / "hf_predictions.json"
    command = [str(ANCHOR_PYTHON), str(REPO / "benchmarks" / "hf_torch_squad.py"), "--train", str(train), "--dev",
               str(dev), "--output", str(predictions), "--max-seq-length", str(s["max_seq_length"]),
               "--doc-stride", str(s["doc_stride"]), "--max-query-length", str(s["max_query_length"]),
               "--epochs", str(s["epochs"]), "--batch-size", str(s["batch_size"]),
               "--learning-rate", str(s["learning_rate"]), "--threads", str(s["threads"]), "--seed", str(s["seed"])]
    started = time.monotonic()
    done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO)
    report = json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])
    scores = squad_scores(json.loads(predictions.read_text()), read_squad(dev, ErrorLog()))
    return {"exact_match": scores["exact_match"], "f1": scores["f1"], "dev_questions": scores["num_examples"],
            "anchor": report, "wall_s": round(time.monotonic() - started, 1)}


def main() -> int:
    quiet_tensorflow()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench-out" / "squad")
    parser.add_argument("--train-questions", type=int, default=1200)
    parser.add_argument("--epochs", type=int, default=SETTINGS["epochs"])
    parser.add_argument("--skip-anchor", action="store_true", help="tfpipe only (no transformers venv)")
    args = parser.parse_args()
    SETTINGS["epochs"] = args.epochs
    args.out.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "make_squad_conll.py"), "--conll-dir",
                    str(SHARED / "data" / "conll2003"), "--output-dir", str(args.out / "data")], check=True)
    train = args.out / "data" / f"train-{args.train_questions}.jsonl"
    questions = _subset(args.out / "data" / "train.json", train, args.train_questions)
    dev = args.out / "data" / "dev.json"
    result = {"benchmark": "squad-conll", "train_questions": questions, "settings": SETTINGS,
              "machine": machine_info(), "tfpipe": _tfpipe(train, dev, args.out)}
    if not args.skip_anchor:
        result["transformers_pytorch"] = _anchor(train, dev, args.out)
    (args.out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
