"""Span JSONL (`{"text": ..., "entities": [[start, end, "LABEL"], ...]}`, character offsets) to word BIO tags.

Words come from spaCy's tokenizer; spans are aligned with `Doc.char_span(alignment_mode="strict")`, so a span
that cuts through a word is reported with its line and text rather than silently dropped or stretched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional

from spacy.training import biluo_to_iob, offsets_to_biluo_tags

from tfpipe.text.readers.base import DataError, ErrorLog, TokenRecord
from tfpipe.text.readers.jsonl import iter_objects, string_problem
from tfpipe.text.spacy_pass import blank_pipeline


def _spans(path: Path, number: int, obj: dict, text: str) -> list[tuple[int, int, str]]:
    raw = obj.get("entities", [])
    if not isinstance(raw, list):
        raise DataError(path, number, "'entities' must be a list of [start, end, label]", "wrong type")
    spans = []
    for item in raw:
        ok = (isinstance(item, (list, tuple)) and len(item) == 3 and all(type(v) is int for v in item[:2])
              and isinstance(item[2], str) and item[2])
        if not ok:
            raise DataError(path, number, f"entity {item!r} is not [start, end, label]", "wrong type")
        start, end, label = item
        if not 0 <= start < end <= len(text):
            raise DataError(path, number, f"entity {item!r} is outside the text (length {len(text)})", "span")
        spans.append((start, end, label))
    spans.sort()
    for (s1, e1, _), (s2, e2, _) in zip(spans, spans[1:]):
        if s2 < e1:
            raise DataError(path, number, f"entities [{s1}, {e1}) and [{s2}, {e2}) overlap", "span")
    return spans


def read_spans(
    path: str | Path, text_key: str = "text", lang: str = "en", log: Optional[ErrorLog] = None
) -> Iterator[TokenRecord]:
    """Yields a `TokenRecord` per object with spaCy words and BIO tags."""
    path = Path(path)
    log = log or ErrorLog()
    nlp = blank_pipeline(lang, sentences=False)
    for number, obj in iter_objects(path, log):
        text = obj.get(text_key)
        try:
            if not isinstance(text, str):
                raise DataError(path, number, f"missing or non-string {text_key!r}", "missing column")
            if problem := string_problem(text):
                raise DataError(path, number, f"key {text_key!r} has {problem}", "encoding")
            spans = _spans(path, number, obj, text)
            doc = nlp.make_doc(text)
            for start, end, label in spans:
                if doc.char_span(start, end, label, alignment_mode="strict") is None:
                    raise DataError(path, number, f"entity [{start}, {end}) {text[start:end]!r} ({label}) does not "
                                    "align with word boundaries", "misaligned span")
        except DataError as error:
            log.report(error)
            continue
        words = [t.text for t in doc if not t.is_space]
        tags = [t for tok, t in zip(doc, biluo_to_iob(offsets_to_biluo_tags(doc, spans))) if not tok.is_space]
        yield TokenRecord(words, tags, str(path), number)
