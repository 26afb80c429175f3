"""Readers for every input format, with task validation: one entry point, `read_records`.

Formats: plain text corpus, TSV, CSV, JSONL, CoNLL and span JSONL. Every bad record raises (or, with
`on_error="skip"`, counts) a `DataError` naming `file:line` and the reason; lines are read streamed and
bounded by `max_line_bytes`; a file that yields no record at all is an error under either policy.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator, Optional, Union

from tfpipe.config.schemas import ReaderConfig
from tfpipe.text.readers.base import DataError, ErrorLog, Record, TokenRecord, counted, describe_reading
from tfpipe.text.readers.conll import bio_error, read_conll
from tfpipe.text.readers.delimited import read_delimited
from tfpipe.text.readers.jsonl import read_jsonl
from tfpipe.text.readers.lines import iter_lines, iter_raw_lines, line_too_long, open_checked
from tfpipe.text.readers.plain import Document, read_documents, read_text_records

__all__ = [
    "DataError", "ErrorLog", "Record", "TokenRecord", "Document", "bio_error", "counted", "describe_reading",
    "detect_format", "iter_lines", "iter_raw_lines", "line_too_long", "open_checked", "read_records",
    "read_documents", "read_conll", "read_delimited", "read_jsonl",
]

_EXTENSIONS = {".tsv": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".conll": "conll"}


def detect_format(path: str | Path, fmt: str = "auto", task: str = "classification") -> str:
    """The reader for `path`: explicit `fmt`, else by extension (`.txt` is CoNLL for token classification)."""
    if fmt != "auto":
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix in _EXTENSIONS:
        return _EXTENSIONS[suffix]
    if suffix in (".txt", ""):
        return "conll" if task == "token-classification" else "text"
    if suffix in (".gz", ".zip", ".bz2", ".xz", ".zst"):
        raise DataError(path, 0, f"a compressed file ({suffix}): decompress it first", "file")
    raise DataError(path, 0, f"cannot tell the format from the extension {suffix!r}; pass --format "
                    "(text, tsv, csv, jsonl, conll, spans)", "file")


def _check_record(rec: Record, task: str, has_label: bool, labels: Optional[set], log: ErrorLog) -> bool:
    """Task validation: non-empty texts, present labels, numeric regression targets, known labels."""
    where = (rec.source, rec.line)
    if not rec.text.strip():
        log.report(DataError(*where, "empty text", "empty text"))
        return False
    if rec.text_pair is not None and not rec.text_pair.strip():
        log.report(DataError(*where, "empty text pair", "empty text"))
        return False
    if not has_label:
        return True
    label = (rec.label or "").strip()
    if not label:
        log.report(DataError(*where, "missing label", "missing label"))
        return False
    if task == "regression":
        try:
            value = float(label)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            log.report(DataError(*where, f"label {label!r} is not a finite number (regression)", "bad label"))
            return False
    elif labels is not None and label not in labels:
        known = ", ".join(sorted(labels))
        log.report(DataError(*where, f"unknown label {label!r}; known labels: {known}", "unknown label"))
        return False
    rec.label = label
    return True


def read_records(
    path: str | Path,
    config: Optional[ReaderConfig] = None,
    task: str = "classification",
    labels: Optional[set[str]] = None,
    log: Optional[ErrorLog] = None,
    lang: str = "en",
) -> Iterator[Union[Record, TokenRecord]]:
    """Reads and validates `path` for `task`; `labels`, when given, is the closed label set (for token
    classification: the entity types, `{"PER", "LOC"}`, not the BIO tags).

    Yields `TokenRecord`s for token classification (CoNLL or span JSONL), `Record`s otherwise. `log`, when
    given, decides the policy and line limit (`ErrorLog.for_reader(config)` takes them from `config`) and holds
    the counts afterwards: records kept, skipped by kind, notes.
    """
    config = config or ReaderConfig()
    log = log or ErrorLog.for_reader(config)
    fmt = detect_format(path, config.format, task)
    header = fmt in ("tsv", "csv") and not config.no_header
    return counted(_records(path, config, task, labels, log, lang, fmt), path, log,
                   "header only: no data rows" if header else "no records in the file", 1 if header else 0)


def _records(path: str | Path, config: ReaderConfig, task: str, labels: Optional[set[str]], log: ErrorLog,
             lang: str, fmt: str) -> Iterator[Union[Record, TokenRecord]]:
    if task == "token-classification" or fmt in ("conll", "spans"):
        if fmt == "conll":
            records = read_conll(path, config.word_column, config.tag_column, log=log)
        elif fmt == "spans":
            from tfpipe.text.readers.spans import read_spans  # spaCy import only when needed

            records = read_spans(path, config.text_column or "text", lang, log=log)
        else:
            raise DataError(path, 0, f"token classification reads conll or spans files, not {fmt}", "file")
        for rec in records:
            unknown = [i for i, t in enumerate(rec.tags or []) if t != "O" and t[2:] not in labels] \
                if labels is not None else []
            if unknown:
                first = unknown[0]
                line = rec.word_lines[first] if rec.word_lines else rec.line
                types = sorted({rec.tags[i][2:] for i in unknown})
                known = ", ".join(sorted(labels))
                log.report(DataError(rec.source, line, f"unknown entity type(s) {types} (tag {rec.tags[first]!r}); "
                                     f"known types: {known}", "unknown label"))
                continue
            yield rec
        return
    if fmt == "text":
        yield from read_text_records(path, log)
        return
    if fmt == "jsonl":
        records = read_jsonl(path, config.text_column, config.text_pair_column, config.label_column or (
            "label" if task in ("classification", "regression") and config.label_column is None else None), log)
        has_label = True
    else:
        records = read_delimited(path, fmt, config.text_column, config.text_pair_column, config.label_column,
                                 config.no_header, log)
        has_label = config.label_column is not None
    for rec in records:
        if _check_record(rec, task, has_label, labels, log):
            yield rec
