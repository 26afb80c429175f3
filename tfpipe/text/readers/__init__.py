"""Readers for every input format, with task validation: one entry point, `read_records`.

Formats: plain text corpus, TSV, CSV, JSONL, CoNLL and span JSONL. Every bad record raises (or, with
`on_error="skip"`, counts) a `DataError` naming `file:line` and the reason; lines are read streamed and
bounded by `max_line_bytes`; a file that yields no record at all is an error under either policy.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Union

from tfpipe.config.schemas import FORMATS, TEXT_FORMATS, ReaderConfig
from tfpipe.config.tasks import get_task
from tfpipe.text.readers.base import DataError, ErrorLog, Record, TokenRecord, counted, describe_reading
from tfpipe.text.readers.conll import bio_error, read_conll
from tfpipe.text.readers.delimited import read_delimited
from tfpipe.text.readers.jsonl import read_jsonl
from tfpipe.text.readers.lines import iter_lines, iter_raw_lines, line_too_long, open_checked
from tfpipe.text.readers.plain import Document, read_documents, read_text_records

__all__ = [
    "DataError", "ErrorLog", "Record", "TokenRecord", "Document", "bio_error", "counted", "describe_reading",
    "detect_format", "finite_number", "iter_lines", "iter_raw_lines", "line_too_long", "open_checked",
    "read_records", "read_documents", "read_conll", "read_delimited", "read_jsonl", "read_text_examples",
    "read_token_examples",
]

_EXTENSIONS = {".tsv": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".conll": "conll"}


def detect_format(path: str | Path, fmt: str = "auto", task: str = "classification") -> str:
    """The reader for `path`: explicit `fmt`, else by extension; the task may claim extensions of its own (token
    classification reads `.txt` as CoNLL, question answering `.json` as SQuAD)."""
    if fmt != "auto":
        return fmt
    suffix = Path(path).suffix.lower()
    claimed = get_task(task).formats_by_suffix
    if suffix in claimed:
        return claimed[suffix]
    if suffix in _EXTENSIONS:
        return _EXTENSIONS[suffix]
    if suffix in (".txt", ""):
        return "text"
    if suffix in (".gz", ".zip", ".bz2", ".xz", ".zst"):
        raise DataError(path, 0, f"a compressed file ({suffix}): decompress it first", "file")
    raise DataError(path, 0, f"cannot tell the format from the extension {suffix!r}; pass --format "
                    f"({', '.join(f for f in FORMATS if f != 'auto')})", "file")


LabelCheck = Callable[[str], Optional[str]]  # a label string → why it is not allowed, or None


def _check_record(rec: Record, has_label: bool, check_label: Optional[LabelCheck], labels: Optional[set],
                  log: ErrorLog) -> bool:
    """Non-empty texts, present labels, labels the task accepts (`check_label`), known labels."""
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
    problem = check_label(label) if check_label is not None else None
    if problem:
        log.report(DataError(*where, problem, "bad label"))
        return False
    if labels is not None and label not in labels:
        known = ", ".join(sorted(labels))
        log.report(DataError(*where, f"unknown label {label!r}; known labels: {known}", "unknown label"))
        return False
    rec.label = label
    return True


def finite_number(label: str) -> Optional[str]:
    """The label check of regression targets: a finite float."""
    try:
        value = float(label)
    except ValueError:
        value = math.nan
    return None if math.isfinite(value) else f"label {label!r} is not a finite number (regression)"


def read_records(
    path: str | Path,
    config: Optional[ReaderConfig] = None,
    task: str = "classification",
    labels: Optional[set[str]] = None,
    log: Optional[ErrorLog] = None,
    lang: str = "en",
) -> Iterator[Any]:
    """Reads and validates `path` for `task` (a registered task name: the task decides which reader and which
    checks); `labels`, when given, is the closed label set (for token classification: the entity types,
    `{"PER", "LOC"}`, not the BIO tags).

    Yields the task's records: `TokenRecord`s for token classification (CoNLL or span JSONL), `Record`s for the
    sequence tasks. `log`, when given, decides the policy and line limit (`ErrorLog.for_reader(config)` takes
    them from `config`) and holds the counts afterwards: records kept, skipped by kind, notes.
    """
    config = config or ReaderConfig()
    log = log or ErrorLog.for_reader(config)
    fmt = detect_format(path, config.format, task)
    header = fmt in ("tsv", "csv") and not config.no_header
    records = get_task(task).read(path, config, fmt, labels, log, lang)
    return counted(records, path, log, "header only: no data rows" if header else "no records in the file",
                   1 if header else 0)


def read_token_examples(path: str | Path, config: ReaderConfig, fmt: str, labels: Optional[set[str]],
                        log: ErrorLog, lang: str = "en") -> Iterator[TokenRecord]:
    """Sentences of words with BIO tags from a CoNLL or span-JSONL file; tags of entity types outside `labels`
    are bad records."""
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


def read_text_examples(path: str | Path, config: ReaderConfig, fmt: str, labels: Optional[set[str]],
                       log: ErrorLog, lang: str = "en", check_label: Optional[LabelCheck] = None,
                       ) -> Iterator[Union[Record, TokenRecord]]:
    """Texts (and pairs) with optional labels from a plain-text, TSV, CSV or JSONL file (JSONL: a `label` key by
    default); `check_label` is the task's own label rule. CoNLL and span files give their sentences."""
    if fmt in ("conll", "spans"):
        yield from read_token_examples(path, config, fmt, labels, log, lang)
        return
    if fmt == "text":
        yield from read_text_records(path, log)
        return
    if fmt == "jsonl":
        records = read_jsonl(path, config.text_column, config.text_pair_column, config.label_column or "label", log)
        has_label = True
    elif fmt in ("tsv", "csv"):
        records = read_delimited(path, fmt, config.text_column, config.text_pair_column, config.label_column,
                                 config.no_header, log)
        has_label = config.label_column is not None
    else:
        raise DataError(path, 0, f"this task reads {', '.join(TEXT_FORMATS)} files, not {fmt}", "file")
    for rec in records:
        if _check_record(rec, has_label, check_label, labels, log):
            yield rec
