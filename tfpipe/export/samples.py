"""Sample inputs for an export's check and warm-up: real examples from the run's evaluation, plus edge cases
(empty text, text longer than the model's sequence length, accents and CJK)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

EDGE_CASES = ["", "Café déjà vu — naïve résumé, 東京!", "It's not bad... it's GREAT?!"]


def _evaluated(run: Path, limit: int) -> list[dict]:
    records: list[dict] = []
    for path in sorted(run.glob("eval/*/predictions.jsonl")):
        with path.open(encoding="utf-8") as f:
            for line in f:
                records.append(json.loads(line))
                if len(records) >= limit:
                    return records
    return records


def sample_texts(run: str | Path, text_pair: bool, max_seq_length: int,
                 names: Sequence[str] = ("text", "text_pair"), limit: int = 5) -> tuple[list[str], Optional[list[str]]]:
    """Texts (and pairs) to run through the in-process model and the reloaded export, from the rows of the run's
    predictions.jsonl: `names` are the fields of the text and its pair (tagging rows give their words)."""
    texts, pairs = [], []
    for record in _evaluated(Path(run), limit):
        texts.append(record.get(names[0]) or " ".join(record.get("words", [])))
        pairs.append(record.get(names[1]) or "")
    return with_edge_cases(texts, pairs if text_pair else None, max_seq_length)


def with_edge_cases(texts: list[str], pairs: Optional[list[str]], max_seq_length: int
                    ) -> tuple[list[str], Optional[list[str]]]:
    """`texts` (and their `pairs`, for pair models) followed by the edge cases every export is checked on."""
    text_pair = pairs is not None
    texts, pairs = list(texts), list(pairs) if text_pair else [""] * len(texts)
    long_text = " ".join(["the quick brown fox jumps over the lazy dog."] * (max_seq_length // 4 + 1))
    for text in EDGE_CASES + [long_text]:
        texts.append(text)
        pairs.append(text[::-1])
    return texts, pairs if text_pair else None
