"""Label vocabularies: original label strings ↔ ids, saved as `labels.txt` next to the data and the model."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import tensorflow as tf

from tfpipe.config.atomic import write_text_atomic
from tfpipe.text.readers import Record, TokenRecord


class LabelVocab:
    """An ordered set of label strings; ids are positions. Labels keep their original strings everywhere.

    Examples:
    >>> vocab = LabelVocab.from_records([Record("a", label="pos"), Record("b", label="neg")])
    >>> vocab.labels
    ['neg', 'pos']
    """

    def __init__(self, labels: Sequence[str]) -> None:
        if len(set(labels)) != len(labels):
            raise ValueError(f"duplicate labels in {list(labels)}")
        if not labels:
            raise ValueError("a label vocabulary needs at least one label")
        self.labels = list(labels)

    @classmethod
    def from_records(cls, records: Iterable[Record | TokenRecord]) -> "LabelVocab":
        """Sorted labels of classification records, or BIO tags (with "O" first) of token records."""
        found: set[str] = set()
        tagging = False
        for rec in records:
            if isinstance(rec, TokenRecord):
                tagging = True
                found.update(rec.tags or [])
            elif rec.label is not None:
                found.add(rec.label)
        if tagging:
            return cls(["O"] + sorted(found - {"O"}))
        return cls(sorted(found, key=lambda s: (_numeric_key(s), s)))

    def save(self, path: str | Path) -> Path:
        return write_text_atomic(path, "".join(f"{label}\n" for label in self.labels))

    @classmethod
    def load(cls, path: str | Path) -> "LabelVocab":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: label vocabulary not found")
        return cls([line for line in path.read_text(encoding="utf-8").splitlines() if line])

    def __len__(self) -> int:
        return len(self.labels)

    def id(self, label: str) -> int:
        return self.labels.index(label)

    def entity_types(self) -> set[str]:
        return {t[2:] for t in self.labels if t != "O"}

    def lookup_table(self) -> tf.lookup.StaticHashTable:
        """In-graph string → id table; unknown strings map to -1 (readers reject them before)."""
        init = tf.lookup.KeyValueTensorInitializer(
            tf.constant(self.labels), tf.range(len(self.labels), dtype=tf.int64))
        return tf.lookup.StaticHashTable(init, default_value=-1)


def _numeric_key(label: str) -> float:
    # Numeric labels sort by value ("2" before "10"); others after, alphabetically.
    try:
        return float(label)
    except ValueError:
        return float("inf")
