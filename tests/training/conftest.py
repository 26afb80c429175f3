"""Tiny, learnable datasets written as real files for training tests."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

WORDS = ["the", "cat", "dog", "sat", "on", "mat", "ran", "fast", "and", "is", "very", "new", "movie"]


def write_sentiment_tsv(path: Path, rows: int, seed: int = 0) -> Path:
    """label<TAB>sentence; label 'pos' when the sentence says good, 'neg' when bad (learnable in a few steps)."""
    rng = random.Random(seed)
    lines = ["label\tsentence"]
    for i in range(rows):
        good = i % 2 == 0
        words = rng.sample(WORDS, rng.randint(2, 6))
        words.insert(rng.randint(0, len(words)), "good" if good else "bad")
        lines.append(f"{'pos' if good else 'neg'}\t{' '.join(words)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_conll(path: Path, sentences: int, seed: int = 0, long_every: int = 0) -> Path:
    """CoNLL with 'john'/'york' entities; every `long_every`-th sentence is long (forces windows)."""
    rng = random.Random(seed)
    blocks = []
    for i in range(sentences):
        length = 40 if long_every and i % long_every == 0 else rng.randint(3, 8)
        rows = []
        for _ in range(length):
            word = rng.choice(WORDS + ["john", "york"])
            tag = "B-PER" if word == "john" else "B-LOC" if word == "york" else "O"
            rows.append(f"{word} {tag}")
        blocks.append("\n".join(rows))
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def vocab_file(tiny_vocab_file: Path) -> Path:
    return tiny_vocab_file


TINY_MODEL = ["--model-size", "custom", "--set", "model.num_layers=1", "--set", "model.hidden_dim=16",
              "--set", "model.num_heads=2", "--set", "model.intermediate_dim=32",
              "--set", "model.max_sequence_length=128", "--set", "training.mixed_precision=none", "--quiet"]


def write_pretraining_data(folder: Path, vocab_file: Path) -> Path:
    """A small corpus turned into one shard of MLM+NSP instances by `create-pretraining-data`; returns its folder."""
    from tfpipe.cli.main import main

    corpus = folder / "corpus.txt"
    corpus.write_text("\n\n".join(f"The cat sat on the mat {i}. The dog ran fast. A movie is good."
                                  for i in range(40)))
    data = folder / "data"
    assert main(["create-pretraining-data", "--input", str(corpus), "--vocab", str(vocab_file), "--output-dir",
                 str(data), "--max-seq-length", "32", "--max-predictions-per-seq", "5", "--num-shards", "1",
                 "--quiet"]) == 0
    return data


def kill_once_written(path: Path, processes: list[subprocess.Popen], timeout: float = 120) -> bool:
    """SIGKILLs `processes` as soon as `path` exists (or one of them ends, or `timeout` passes); returns whether
    `path` was written."""
    deadline = time.time() + timeout
    while not path.exists() and all(p.poll() is None for p in processes) and time.time() < deadline:
        time.sleep(0.01)
    for process in processes:
        process.send_signal(signal.SIGKILL)
        process.wait()
    return path.exists()
