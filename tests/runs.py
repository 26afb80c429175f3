"""Tiny fine-tuned runs and their exports, built once per test session from generated data (real training, real
SavedModels): shared by the export, serving and CLI tests."""

from __future__ import annotations

from pathlib import Path

from tests.training.conftest import TINY_MODEL, write_conll, write_sentiment_tsv
from tfpipe.cli.main import main


def train_run(root: Path, vocab: Path, task: str, extra: tuple[str, ...] = ()) -> Path:
    """Fine-tunes a tiny model for `task` (classification | pair | regression | tagging) under `root/task`."""
    run = root / f"run-{task}"
    common = ["--vocab", str(vocab), "--output-dir", str(run), "--batch-size", "8", "--learning-rate", "3e-3",
              *TINY_MODEL, *extra]
    if task == "classification":
        train = write_sentiment_tsv(root / "train.tsv", 64, seed=1)
        dev = write_sentiment_tsv(root / "dev.tsv", 24, seed=2)
        args = ["--task", "classification", "--text-column", "sentence", "--label-column", "label", "--epochs", "12"]
    elif task == "pair":
        train, dev = _pairs(root / "pairs-train.tsv", 48), _pairs(root / "pairs-dev.tsv", 16)
        args = ["--task", "classification", "--text-column", "a", "--text-pair-column", "b", "--label-column",
                "same", "--epochs", "2"]
    elif task == "regression":
        train = dev = root / "scores.tsv"
        lines = ["score\ttext"] + [f"{1.0 if i % 2 else -1.0}\t{'good' if i % 2 else 'bad'} movie the cat"
                                   for i in range(32)]
        train.write_text("\n".join(lines) + "\n")
        args = ["--task", "regression", "--text-column", "text", "--label-column", "score", "--epochs", "4"]
    else:
        train = write_conll(root / "train.conll", 48, seed=3)
        dev = write_conll(root / "dev.conll", 9, seed=4, long_every=3)
        args = ["--task", "token-classification", "--max-seq-length", "16", "--epochs", "8"]
    code = main(["finetune", "--train", str(train), "--validation", str(dev), *args, *common])
    assert code == 0, f"training the tiny {task} run failed"
    return run


def _pairs(path: Path, rows: int) -> Path:
    words = ["the cat", "a dog", "new york", "john"]
    lines = ["a\tb\tsame"] + [f"{words[i % 4]}\t{words[(i // 4) % 4]}\t{int(i % 4 == (i // 4) % 4)}"
                              for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path
