"""Shared fixtures: the read-only `../shared` folder (skipped with a reason when absent) and tiny vocabularies."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TFPIPE_SHARED", REPO.parent / "shared"))
MINILM = SHARED / "checkpoints" / "minilm-l6-h384-uncased"

TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "!", "the", "a", "cat", "dog", "sat", "on",
              "mat", "ran", "fast", "and", "is", "good", "bad", "movie", "##s", "##ed", "##ing", "run", "very",
              "new", "york", "city", "in", "john", "lives", "was", "it"]


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or a skip naming what is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not present (the shared data folder is only on development and CI machines)")
    return path


@pytest.fixture
def tiny_vocab_file(tmp_path: Path) -> Path:
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(TINY_VOCAB) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def minilm_vocab() -> Path:
    return shared_path("checkpoints", "minilm-l6-h384-uncased", "vocab.txt")
