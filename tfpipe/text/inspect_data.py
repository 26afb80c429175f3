"""`inspect-data`: validate a dataset and describe it (counts, labels, lengths, duplicates, errors).

Like `spacy debug data`: every bad record is listed with `file:line`, and the caller exits 1 when any was found.
Lengths are pre-split words, or WordPiece tokens (with [CLS]/[SEP]) when a vocabulary is given.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Optional

import numpy as np
import tensorflow as tf

from tfpipe.config.schemas import ReaderConfig
from tfpipe.config.tasks import get_task
from tfpipe.text.readers import DataError, ErrorLog, read_records
from tfpipe.text.tokenizer import WordPieceTokenizer, pre_split

PERCENTILES = (50, 90, 95, 99, 100)


def _lengths(texts: list[str], pairs: Optional[list[str]], tokenizer: Optional[WordPieceTokenizer]) -> np.ndarray:
    out = []
    for start in range(0, len(texts), 2048):
        batch = tf.constant(texts[start:start + 2048])
        pair = tf.constant(pairs[start:start + 2048]) if pairs else None
        if tokenizer is not None:
            lengths = tokenizer.encode(batch, pair)[0].row_lengths()
        else:
            lengths = pre_split(batch).row_lengths()
            if pair is not None:
                lengths += pre_split(pair).row_lengths()
        out.append(lengths.numpy())
    return np.concatenate(out) if out else np.zeros([0], np.int64)


def inspect_dataset(
    path: str | Path, task: str, reader: Optional[ReaderConfig] = None,
    tokenizer: Optional[WordPieceTokenizer] = None,
) -> dict:
    """A report dict; `report["num_errors"] > 0` means the data has problems."""
    reader = reader or ReaderConfig()
    log = ErrorLog("skip", reader.max_line_bytes)  # inspection lists every problem instead of stopping at the first
    fatal = None
    records: list = []
    try:
        records = list(read_records(path, reader, task, log=log))
    except DataError as error:  # a problem with the whole file (missing column, unreadable header, no records)
        if error.line == 0 and error.kind != "no records":  # no file to inspect at all: the caller's usage error
            raise
        fatal = error
    report: dict = {"file": str(path), "task": task, "records": len(records)}
    spec = get_task(task)
    report.update(spec.describe(records))
    plain = spec.as_texts(records)
    texts = [r.text for r in plain]
    pairs = [r.text_pair or "" for r in plain] if any(r.text_pair for r in plain) else None
    keys = [(r.text, r.text_pair) for r in plain]
    lengths = _lengths(texts, pairs, tokenizer)
    unit = "tokens" if tokenizer is not None else "words"
    if len(lengths):
        report[f"length_{unit}"] = {f"p{p}": int(np.percentile(lengths, p, method="higher")) for p in PERCENTILES}
    seen = Counter(keys)
    report["duplicates"] = sum(c - 1 for c in seen.values() if c > 1)
    errors = [str(e) for e in log.errors] + ([str(fatal)] if fatal else [])
    report["num_errors"] = log.num_errors + (1 if fatal else 0)
    report["errors_by_kind"] = dict(log.skipped) | ({fatal.kind: 1} if fatal else {})
    report["errors"] = errors[:50]
    report["notes"] = dict(log.notes)
    return report


def format_report(report: dict) -> str:
    """The human-readable summary printed by the CLI."""
    lines = [f"{report['file']} ({report['task']}): {report['records']} valid records, "
             f"{report['num_errors']} error(s), {report['duplicates']} duplicate(s)"]
    for key in ("label_distribution", "entities", "label_stats", "length_words", "length_tokens", "notes",
                "errors_by_kind"):
        if report.get(key):
            lines.append(f"  {key.replace('_', ' ')}: " + ", ".join(f"{k}={v}" for k, v in report[key].items()))
    if report.get("conflicting_duplicates"):
        lines.append(f"  duplicates with different labels: {report['conflicting_duplicates']}")
    for error in report["errors"]:
        lines.append(f"  error: {error}")
    if report["num_errors"] > len(report["errors"]):
        lines.append(f"  ... and {report['num_errors'] - len(report['errors'])} more")
    return "\n".join(lines)
