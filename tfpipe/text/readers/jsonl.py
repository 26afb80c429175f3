"""JSON Lines reader: one object per line with `text`, optional `text_pair` and `label` (keys renamable).

An object must be one JSON object on one line, with each key once (JSON parsers keep the last of duplicated keys
silently); a null value is reported as null, not as a missing key; strings must be valid Unicode without NUL.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Optional

from tfpipe.text.readers.base import DataError, ErrorLog, Record
from tfpipe.text.readers.lines import iter_lines


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    obj: dict = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKey(key)
        obj[key] = value
    return obj


def iter_objects(path: str | Path, log: ErrorLog) -> Iterator[tuple[int, dict]]:
    """Yields `(line, object)`; blank lines are counted, bad JSON and non-objects are reported."""
    for number, line in iter_lines(path, log):
        if not line.strip():
            log.notes["blank lines"] += 1
            continue
        try:
            obj = json.loads(line, object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as exc:
            # An error at the very end of the line, or a string never closed: the object was cut short.
            cut = exc.pos >= len(line.rstrip()) or exc.msg.startswith("Unterminated string")
            hint = " (the line ends before the JSON does: truncated?)" if cut else ""
            at = "" if exc.msg.endswith(" at") else " at"  # "Unterminated string starting at"
            log.report(DataError(path, number, f"invalid JSON: {exc.msg}{at} column {exc.colno}{hint}", "json"))
            continue
        except _DuplicateKey as exc:
            log.report(DataError(path, number, f"duplicate key {exc.args[0]!r}: which value is meant cannot be "
                                 "told", "json"))
            continue
        if not isinstance(obj, dict):
            log.report(DataError(path, number, f"expected a JSON object, got {type(obj).__name__}", "json"))
            continue
        yield number, obj


def string_problem(value: str) -> Optional[str]:
    """Why a decoded string is not usable text (a NUL character, an unpaired surrogate), or None."""
    if "\x00" in value:
        return f"a NUL character at position {value.index(chr(0))}"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"an unpaired surrogate {value[exc.start]!r} at position {exc.start} (not valid Unicode)"
    return None


def _field(path: Path, number: int, obj: dict, key: Optional[str], required: bool, log: ErrorLog,
           is_label: bool = False):
    if key is None:
        return None, True
    if key not in obj:
        if required:
            keys = ", ".join(sorted(obj)) or "none"
            log.report(DataError(path, number, f"missing key {key!r}; keys present: {keys}", "missing column"))
            return None, False
        return None, True
    value = obj[key]
    if value is None:
        if required:
            log.report(DataError(path, number, f"key {key!r} is null", "null value"))
            return None, False
        return None, True
    # Numeric (and boolean) labels are normal: keep their string form. Texts must be strings.
    if isinstance(value, (bool, int, float)) and is_label:
        value = str(value).lower() if isinstance(value, bool) else str(value)
    if not isinstance(value, str):
        log.report(DataError(path, number, f"key {key!r} must be a string, got {type(value).__name__}",
                             "wrong type"))
        return None, False
    problem = string_problem(value)
    if problem:
        log.report(DataError(path, number, f"key {key!r} has {problem}", "encoding"))
        return None, False
    return value, True


def read_jsonl(
    path: str | Path,
    text_key: Optional[str] = None,
    text_pair_key: Optional[str] = None,
    label_key: Optional[str] = None,
    log: Optional[ErrorLog] = None,
) -> Iterator[Record]:
    """Yields a `Record` per object; `label` values that are numbers are kept as their string form."""
    path = Path(path)
    log = log or ErrorLog()
    text_key = text_key or "text"
    for number, obj in iter_objects(path, log):
        text, ok = _field(path, number, obj, text_key, True, log)
        # Without an explicit pair key, a "text_pair" key is read where present.
        pair_key, pair_required = (text_pair_key, True) if text_pair_key else ("text_pair", False)
        pair, ok_pair = _field(path, number, obj, pair_key, pair_required, log) if ok else (None, False)
        label, ok_label = _field(path, number, obj, label_key, True, log, True) if ok and ok_pair else (None, False)
        if ok and ok_pair and ok_label:
            yield Record(text, pair, label, str(path), number)
