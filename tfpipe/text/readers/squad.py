"""SQuAD v1.1 reader: extractive question answering, one `QARecord` per question.

Two layouts, told apart by the file's content (not its extension):

* the official SQuAD v1.1 JSON: one document `{"version": ..., "data": [{"title", "paragraphs": [{"context",
  "qas": [{"id", "question", "answers": [{"text", "answer_start"}]}]}]}]}`. It is parsed whole in memory, so a
  file over `MAX_JSON_BYTES` (2 GiB) is refused; `max_line_bytes` does not apply to it. Its bad questions are
  named by JSON path (`data[3].paragraphs[1].qas[0] (id ...)`) at line 0: the parser gives no positions;
* JSON Lines, one question per line in the Hugging Face `datasets` layout: `{"id", "title"?, "context",
  "question", "answers": {"text": [...], "answer_start": [...]}}`, read streamed with real line numbers and
  bounded by `max_line_bytes` like every line format. (The SQuAD list form of `answers` is read there too.)

The layout is the whole-file JSON when the file starts with `{` followed by a `"data"` or `"version"` key, or
when its first line is a lone `{` (pretty-printed); otherwise JSON Lines. A file that starts with anything but
`{` is neither (a "file" error, fatal under any policy, like a JSON array or a wrong top-level shape).

Every question is checked: `id`, `question` and `context` present, strings, valid Unicode and not blank; ids
unique within the file; `answers` absent (unlabelled input for prediction) or a list of answers whose text is not
blank and is exactly `context[answer_start:answer_start + len(text)]`, `answer_start` counting characters
(Python str indexing, not UTF-8 bytes). A SQuAD 2.0 unanswerable question (`is_impossible`) is refused. A bad
question is one `DataError` (the first problem found), raised or skipped and counted by its `kind`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from tfpipe.text.readers.base import DataError, ErrorLog, counted
from tfpipe.text.readers.jsonl import iter_objects, string_problem
from tfpipe.text.readers.lines import BOM, open_checked

# A whole-file SQuAD JSON is parsed in memory (Python objects take several times the file's bytes); SQuAD v1.1
# train is 30 MB. Bigger data streams as JSON Lines instead, which has no such limit.
MAX_JSON_BYTES = 2 << 30
_HEAD_BYTES = 1 << 16  # enough of the start of the file to tell the layout
_SHOWN = 40  # characters of a text quoted in an error


@dataclass
class Answer:
    """One ground-truth answer: its text and where it starts in the context (a character offset)."""

    text: str
    start: int


@dataclass
class QARecord:
    """One question on a context, with its answers (empty for unlabelled input to predict on)."""

    id: str
    question: str
    context: str
    answers: list[Answer] = field(default_factory=list)
    title: str = ""
    source: str = ""
    line: int = 0


class _Bad(Exception):
    """One question's first problem: `(reason, kind)`, turned into a `DataError` by the caller."""

    def __init__(self, reason: str, kind: str) -> None:
        super().__init__(reason)
        self.reason, self.kind = reason, kind


class _Duplicated(dict):
    """A parsed object that had a key more than once (JSON parsers keep the last value silently)."""

    duplicate = ""


def _object(pairs: list[tuple[str, Any]]) -> dict:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    marked, seen = _Duplicated(obj), set()
    for key, _ in pairs:
        if key in seen:
            marked.duplicate = key
            break
        seen.add(key)
    return marked


def detect_squad_layout(path: str | Path) -> str:
    """`"json"` (the official whole-file SQuAD v1.1 JSON) or `"jsonl"` (one question per line), from the start of
    the file; a file that is neither raises a "file" `DataError`. An empty file is `"jsonl"` (it has no
    questions, which the reader reports)."""
    with open_checked(path) as handle:
        head = handle.read(_HEAD_BYTES)
    head = head[len(BOM):] if head.startswith(BOM) else head
    text = head.lstrip(b" \t\r\n")
    if not text:
        return "jsonl"
    if text[:1] == b"[":
        raise DataError(path, 0, "a JSON array: expected the SQuAD v1.1 JSON object ({\"data\": [...]}) or JSON "
                        "Lines (one question object per line)", "file")
    if text[:1] != b"{":
        shown = text[:20].decode("utf-8", "replace")
        raise DataError(path, 0, f"not JSON: expected a SQuAD v1.1 JSON object or JSON Lines, but the file starts "
                        f"with {shown!r}", "file")
    first_line = text.split(b"\n", 1)[0].strip()
    after = text[1:].lstrip(b" \t\r\n")
    if first_line == b"{" or after.startswith((b'"data"', b'"version"')):
        return "json"
    return "jsonl"


def read_squad(path: str | Path, log: ErrorLog, *, require_answers: bool = False) -> Iterator[QARecord]:
    """Yields a `QARecord` per valid question of a SQuAD v1.1 file (either layout, see the module docstring),
    counted in `log.kept`; bad questions are raised or skipped by `log`'s policy. With `require_answers` (training
    data), a question without answers is an error too ("no answers"). A file with no question is an error."""
    path = Path(path)
    return counted(iter_squad(path, log, require_answers), path, log, "no questions in the file")


def iter_squad(path: str | Path, log: ErrorLog, require_answers: bool = False) -> Iterator[QARecord]:
    """`read_squad` without the counting (for `readers.read_records`, which counts every format itself)."""
    path = Path(path)
    if detect_squad_layout(path) == "json":
        yield from _read_json(path, log, require_answers)
    else:
        yield from _read_jsonl(path, log, require_answers)


# --- checks shared by both layouts ----------------------------------------------------------------------------

def _quote(text: str) -> str:
    shown = text if len(text) <= _SHOWN else text[:_SHOWN] + "..."
    return json.dumps(shown, ensure_ascii=False)


def _string(obj: dict, key: str, required: bool = True) -> str:
    """`obj[key]` as usable text; an optional key that is absent or null is ""."""
    if key not in obj or (obj[key] is None and not required):
        if required:
            raise _Bad(f"missing {key!r}; keys present: {', '.join(sorted(obj)) or 'none'}", "missing field")
        return ""
    value = _text_value(obj[key], repr(key))
    if required and not value.strip():
        raise _Bad(f"{key!r} is empty", "empty text")
    return value


def _text_value(value: Any, at: str) -> str:
    """`value` as usable text, or the error naming the field `at`: null, not a string, NUL or lone surrogates."""
    if value is None:
        raise _Bad(f"{at} is null", "null value")
    if not isinstance(value, str):
        raise _Bad(f"{at} must be a string, got {type(value).__name__}", "wrong type")
    problem = string_problem(value)
    if problem:
        raise _Bad(f"{at} has {problem}", "encoding")
    return value


def _where_found(context: str, text: str, start: int) -> str:
    """A hint for an answer not at its offset: where the text does occur, and whether `start` looks like a UTF-8
    byte or UTF-16 offset (tools in other languages count those)."""
    found = context.find(text)
    if found < 0:
        return "; the text does not occur in the context"
    nearest, at = found, found
    while at >= 0:  # the occurrence nearest the given offset
        nearest = at if abs(at - start) < abs(nearest - start) else nearest
        at = context.find(text, at + 1)
    before = context[:nearest]
    if len(before.encode("utf-8")) == start:
        return f"; it occurs at character {nearest}: answer_start counts UTF-8 bytes, not characters?"
    if len(before.encode("utf-16-le")) // 2 == start:
        return f"; it occurs at character {nearest}: answer_start counts UTF-16 code units, not characters?"
    return f"; it occurs at {nearest}"


def _answer(context: str, text: Any, start: Any, text_at: str, start_at: str) -> Answer:
    """One checked answer; `text_at`/`start_at` name its fields in errors (`answers[0].text`)."""
    text = _text_value(text, text_at)
    if not text.strip():
        raise _Bad(f"{text_at} is empty", "empty answer")
    if start is None:
        raise _Bad(f"{start_at} is null", "null value")
    if isinstance(start, bool) or not isinstance(start, int):
        raise _Bad(f"{start_at} must be an integer, got {type(start).__name__} {start!r}", "wrong type")
    if start < 0 or start + len(text) > len(context):
        raise _Bad(f"{start_at} {start} is out of range: the answer {_quote(text)} ({len(text)} characters) does "
                   f"not fit in the context ({len(context)} characters)", "answer out of range")
    found = context[start:start + len(text)]
    if found != text:
        raise _Bad(f"{start_at} {start} does not point at {_quote(text)} in the context (found {_quote(found)})"
                   f"{_where_found(context, text, start)}", "answer mismatch")
    return Answer(text, start)


def _answers(obj: dict, context: str, require: bool) -> list[Answer]:
    """The answers of a question object: a SQuAD list of `{"text", "answer_start"}`, or the Hugging Face
    `{"text": [...], "answer_start": [...]}`; absent or null means unlabelled."""
    value = obj.get("answers")
    answers: list[Answer] = []
    if isinstance(value, list):
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise _Bad(f"answers[{i}] must be an object, got {type(item).__name__}", "wrong type")
            if isinstance(item, _Duplicated):
                raise _Bad(f"answers[{i}] has the key {item.duplicate!r} twice: which value is meant cannot be "
                           "told", "json")
            for key in ("text", "answer_start"):
                if key not in item:
                    raise _Bad(f"answers[{i}] has no {key!r}; keys present: {', '.join(sorted(item)) or 'none'}",
                               "missing field")
            answers.append(_answer(context, item["text"], item["answer_start"], f"answers[{i}].text",
                                   f"answers[{i}].answer_start"))
    elif isinstance(value, dict):
        lists = []
        for key in ("text", "answer_start"):
            if key not in value:
                raise _Bad(f"answers has no {key!r}; keys present: {', '.join(sorted(value)) or 'none'}",
                           "missing field")
            if not isinstance(value[key], list):
                raise _Bad(f"answers.{key} must be a list, got {type(value[key]).__name__}", "wrong type")
            lists.append(value[key])
        texts, starts = lists
        if len(texts) != len(starts):
            raise _Bad(f"answers.text has {len(texts)} item(s) but answers.answer_start has {len(starts)}",
                       "answer count")
        answers = [_answer(context, text, start, f"answers.text[{i}]", f"answers.answer_start[{i}]")
                   for i, (text, start) in enumerate(zip(texts, starts))]
    elif value is not None:
        raise _Bad(f"'answers' must be a list of answers (or {{\"text\": [...], \"answer_start\": [...]}}), got "
                   f"{type(value).__name__}", "wrong type")
    if require and not answers:
        raise _Bad("no answers (training data needs at least one)", "no answers")
    return answers


def _unanswerable(obj: dict) -> None:
    if obj.get("is_impossible") is True:
        raise _Bad("an unanswerable question (is_impossible: SQuAD 2.0); this reader reads SQuAD v1.1",
                   "unanswerable")


def _id_part(obj: Any) -> str:
    """` (id X)` for a question whose id is a string, to name it in errors."""
    qid = obj.get("id") if isinstance(obj, dict) else None
    if not isinstance(qid, str) or not qid:
        return ""
    return f" (id {qid if len(qid) <= _SHOWN else qid[:_SHOWN] + '...'})"


# --- the whole-file SQuAD JSON --------------------------------------------------------------------------------

def _load(path: Path) -> Any:
    """The parsed document. The stdlib `json` is used, not python-rapidjson: on a 27 MB SQuAD-shaped file it
    parses in 0.38 s (0.44 s with the duplicate-key hook) against rapidjson's 0.41 s, and only it has the
    `object_pairs_hook` that finds a key given twice."""
    with open_checked(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > MAX_JSON_BYTES:
            raise DataError(path, 0, f"the file is {size} bytes, over the {MAX_JSON_BYTES >> 30} GiB limit for a "
                            "whole-file SQuAD JSON (it is parsed in memory): write it as JSON Lines, one question "
                            "per line, which is read streamed", "file")
        raw = handle.read()
    raw = raw[len(BOM):] if raw.startswith(BOM) else raw
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(path, line, f"invalid UTF-8 at byte {exc.start} of the file", "file") from None
    try:
        return json.loads(text, object_pairs_hook=_object)
    except json.JSONDecodeError as exc:
        cut = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")
        hint = " (the file ends before the JSON does: truncated?)" if cut else ""
        at = "" if exc.msg.endswith(" at") else " at"
        raise DataError(path, exc.lineno, f"invalid JSON: {exc.msg}{at} column {exc.colno}{hint}", "file") from None
    except RecursionError:
        raise DataError(path, 0, "invalid JSON: nested too deeply to parse", "file") from None


def _list_at(path: Path, obj: Any, at: str, key: str) -> list:
    """`obj[key]`, which the layout needs to be a list in an object (`at` names `obj`, "" for the top level):
    else a "file" error, as the file is not SQuAD-shaped."""
    where, name = at or "the top level", f"{at}.{key}" if at else key
    if not isinstance(obj, dict):
        raise DataError(path, 0, f"{where} must be a JSON object, got {type(obj).__name__}", "file")
    if isinstance(obj, _Duplicated):
        raise DataError(path, 0, f"{where} has the key {obj.duplicate!r} twice: which value is meant cannot be "
                        "told", "file")
    if key not in obj:
        keys = ", ".join(sorted(obj)) or "none"
        hint = " (a single question object? JSON Lines have one question per line)" if not at and \
            "question" in obj else ""
        raise DataError(path, 0, f"{where} has no {key!r} key; keys present: {keys}{hint}", "file")
    if not isinstance(obj[key], list):
        raise DataError(path, 0, f"{name} must be a list, got {type(obj[key]).__name__}", "file")
    return obj[key]


def _read_json(path: Path, log: ErrorLog, require_answers: bool) -> Iterator[QARecord]:
    doc = _load(path)
    seen: dict[str, str] = {}
    for i, article in enumerate(_list_at(path, doc, "", "data")):
        paragraphs = _list_at(path, article, f"data[{i}]", "paragraphs")
        try:
            title, title_bad = _string(article, "title", required=False), None
        except _Bad as bad:
            title, title_bad = "", bad
        for j, paragraph in enumerate(paragraphs):
            qas = _list_at(path, paragraph, f"data[{i}].paragraphs[{j}]", "qas")
            try:
                context, context_bad = _string(paragraph, "context"), None
            except _Bad as bad:
                context, context_bad = "", bad
            for k, qa in enumerate(qas):
                where = f"data[{i}].paragraphs[{j}].qas[{k}]"
                try:
                    if not isinstance(qa, dict):
                        raise _Bad(f"a question must be a JSON object, got {type(qa).__name__}", "wrong type")
                    if isinstance(qa, _Duplicated):
                        raise _Bad(f"the key {qa.duplicate!r} is there twice: which value is meant cannot be told",
                                   "json")
                    qid = _string(qa, "id")
                    for bad in (context_bad, title_bad):
                        if bad is not None:
                            raise _Bad(f"in the {'paragraph' if bad is context_bad else 'article'}: {bad.reason}",
                                       bad.kind)
                    question = _string(qa, "question")
                    _unanswerable(qa)
                    answers = _answers(qa, context, require_answers)
                    if qid in seen:
                        raise _Bad(f"duplicate id {qid!r}: {seen[qid]} has it too", "duplicate id")
                except _Bad as bad:
                    log.report(DataError(path, 0, f"{where}{_id_part(qa)}: {bad.reason}", bad.kind))
                    continue
                seen[qid] = where
                yield QARecord(qid, question, context, answers, title, str(path), 0)


# --- JSON Lines ------------------------------------------------------------------------------------------------

def _read_jsonl(path: Path, log: ErrorLog, require_answers: bool) -> Iterator[QARecord]:
    seen: dict[str, int] = {}
    for number, obj in iter_objects(path, log):
        try:
            qid = _string(obj, "id")
            context = _string(obj, "context")
            question = _string(obj, "question")
            title = _string(obj, "title", required=False)
            _unanswerable(obj)
            answers = _answers(obj, context, require_answers)
            if qid in seen:
                raise _Bad(f"duplicate id {qid!r}: line {seen[qid]} has it too", "duplicate id")
        except _Bad as bad:
            ids = _id_part(obj)
            log.report(DataError(path, number, f"{ids[1:] + ': ' if ids else ''}{bad.reason}", bad.kind))
            continue
        seen[qid] = number
        yield QARecord(qid, question, context, answers, title, str(path), number)
