"""The SQuAD v1.1 reader (`tfpipe.text.readers.squad`): both layouts, told apart by content, and one table of
bad files read twice — under `on_error="raise"` each must fail with the expected message, under `"skip"` keep
exactly the listed questions and count exactly the listed skips by kind (or, for whole-file problems, fail the
same way). Then unicode offsets, the size limit, and the embedded sample with every answer offset checked.
"""

from __future__ import annotations

import gzip
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Optional

import pytest

from tfpipe.text.readers.base import DataError, ErrorLog
from tfpipe.text.readers.squad import (
    MAX_JSON_BYTES,
    Answer,
    QARecord,
    detect_squad_layout,
    read_squad,
)

CTX = "Paris is the capital of France."  # 31 characters; "France" at 24


def qa(qid: Any = "a", question: Any = "What is the capital?", answers: Any = None, **extra) -> dict:
    """A SQuAD question object; `answers` defaults to one good answer ("Paris" at 0)."""
    obj = {"id": qid, "question": question,
           "answers": [{"text": "Paris", "answer_start": 0}] if answers is None else answers}
    obj.update(extra)
    return obj


def para(*qas: Any, **fields) -> dict:
    return {"context": CTX, **fields, "qas": list(qas)}


def article(*paragraphs: dict, **fields) -> dict:
    return {"title": "T", **fields, "paragraphs": list(paragraphs)}


def squad(*articles: dict) -> bytes:
    return json.dumps({"version": "1.1", "data": list(articles)}).encode()


def one(*qas: Any) -> bytes:
    """A SQuAD JSON with one article and one paragraph (on CTX) holding `qas`."""
    return squad(article(para(*qas)))


def flat(qid: Any = "a", answers: Any = None, **extra) -> dict:
    """A Hugging Face `datasets` question object (one JSON Lines line)."""
    obj = {"id": qid, "title": "T", "context": CTX, "question": "What is the capital?",
           "answers": {"text": ["Paris"], "answer_start": [0]} if answers is None else answers}
    obj.update(extra)
    return obj


def jsonl(*items: Any) -> bytes:
    """JSON Lines: dicts are dumped, bytes are written as they are (a line without its line end)."""
    return b"".join((item if isinstance(item, bytes) else json.dumps(item, ensure_ascii=False).encode()) + b"\n"
                    for item in items)


def without(obj: dict, key: str) -> dict:
    return {k: v for k, v in obj.items() if k != key}


@dataclass
class Row:
    filename: str
    data: bytes
    error: str  # under "raise": a substring of the message, `{f}` standing for the file; "" for a valid file
    kept: Optional[list[str]] = None  # under "skip": the ids that come through; None: fatal under any policy
    skipped: dict = field(default_factory=dict)  # under "skip": counts by kind
    max_line_bytes: int = 1 << 20


def row(name: str, filename: str, data: bytes, error: str, kept: Optional[list[str]] = None,
        skipped: Optional[dict] = None, **options):
    return pytest.param(Row(filename, data, error, kept, skipped or {}, **options), id=name)


Q = "{f}: data[0].paragraphs[0].qas[1]"  # the second question of `one(...)`
AC = ["a", "c"]
BAD_UTF8 = json.dumps({"version": "1.1", "data": [article(para(qa("a"), qa("b", "Wh\udcffat?")))]}, indent=1,
                      ensure_ascii=False).encode("utf-8", "surrogateescape")  # a raw \xff byte in a question
DUPLICATE_IN_QUESTION = (b'{"data": [{"paragraphs": [{"context": "Paris is the capital of France.", "qas": ['
                         + json.dumps(qa("a")).encode()
                         + b', {"id": "b", "question": "x?", "question": "y?", "answers": []}, '
                         + json.dumps(qa("c")).encode() + b"]}]}]}")
DUPLICATE_IN_ANSWER = DUPLICATE_IN_QUESTION.replace(
    b'"question": "x?", "question": "y?", "answers": []',
    b'"question": "x?", "answers": [{"text": "Paris", "text": "France", "answer_start": 0}]')
DUPLICATE_IN_PARAGRAPH = b'{"data": [{"paragraphs": [{"context": "a", "context": "b", "qas": []}]}]}'
PRETTY_FLAT = json.dumps(flat("a"), indent=2).encode()
TRUNCATED = one(qa("a"))[:-9]  # ends inside the question list

CASES = [
    # --- whole-file SQuAD JSON: one bad question among good ones ------------------------------------------------
    row("json-missing-id", "a.json", one(qa("a"), without(qa("b"), "id"), qa("c")),
        f"{Q}: missing 'id'; keys present: answers, question", AC, {"missing field": 1}),
    row("json-id-not-a-string", "a.json", one(qa("a"), qa(7), qa("c")), f"{Q}: 'id' must be a string, got int", AC,
        {"wrong type": 1}),
    row("json-id-null", "a.json", one(qa("a"), qa(None), qa("c")), f"{Q}: 'id' is null", AC, {"null value": 1}),
    row("json-id-empty", "a.json", one(qa("a"), qa(""), qa("c")), f"{Q}: 'id' is empty", AC, {"empty text": 1}),
    row("json-missing-question", "a.json", one(qa("a"), without(qa("b"), "question"), qa("c")),
        f"{Q} (id b): missing 'question'; keys present: answers, id", AC, {"missing field": 1}),
    row("json-question-not-a-string", "a.json", one(qa("a"), qa("b", ["What?"]), qa("c")),
        f"{Q} (id b): 'question' must be a string, got list", AC, {"wrong type": 1}),
    row("json-question-blank", "a.json", one(qa("a"), qa("b", " \t "), qa("c")), f"{Q} (id b): 'question' is empty",
        AC, {"empty text": 1}),
    row("json-question-nul", "a.json", one(qa("a"), qa("b", "Wh\x00at?"), qa("c")),
        f"{Q} (id b): 'question' has a NUL character at position 2", AC, {"encoding": 1}),
    row("json-missing-context", "a.json", squad(article(para(qa("a")), without(para(qa("b")), "context"),
                                                        para(qa("c")))),
        "{f}: data[0].paragraphs[1].qas[0] (id b): in the paragraph: missing 'context'; keys present: qas", AC,
        {"missing field": 1}),
    row("json-context-not-a-string", "a.json", squad(article(para(qa("a")), para(qa("b"), context=5),
                                                             para(qa("c")))),
        "{f}: data[0].paragraphs[1].qas[0] (id b): in the paragraph: 'context' must be a string, got int", AC,
        {"wrong type": 1}),
    row("json-context-empty-skips-each-of-its-questions", "a.json",
        squad(article(para(qa("a")), para(qa("b1"), qa("b2"), context=""), para(qa("c")))),
        "{f}: data[0].paragraphs[1].qas[0] (id b1): in the paragraph: 'context' is empty", AC, {"empty text": 2}),
    row("json-title-not-a-string", "a.json", squad(article(para(qa("a"))), article(para(qa("b")), title=3),
                                                   article(para(qa("c")))),
        "{f}: data[1].paragraphs[0].qas[0] (id b): in the article: 'title' must be a string, got int", AC,
        {"wrong type": 1}),
    row("json-duplicate-id", "a.json", one(qa("a"), qa("a"), qa("c")),
        f"{Q} (id a): duplicate id 'a': data[0].paragraphs[0].qas[0] has it too", AC, {"duplicate id": 1}),
    row("json-duplicate-id-across-articles", "a.json", squad(article(para(qa("a"))), article(para(qa("c"), qa("a")))),
        "{f}: data[1].paragraphs[0].qas[1] (id a): duplicate id 'a': data[0].paragraphs[0].qas[0] has it too", AC,
        {"duplicate id": 1}),
    row("json-question-not-an-object", "a.json", one(qa("a"), "What?", qa("c")),
        f"{Q}: a question must be a JSON object, got str", AC, {"wrong type": 1}),
    row("json-duplicate-key-in-a-question", "a.json", DUPLICATE_IN_QUESTION,
        f"{Q} (id b): the key 'question' is there twice: which value is meant cannot be told", AC, {"json": 1}),
    row("json-unanswerable-squad2-question", "a.json", one(qa("a"), qa("b", answers=[], is_impossible=True), qa("c")),
        f"{Q} (id b): an unanswerable question (is_impossible: SQuAD 2.0); this reader reads SQuAD v1.1", AC,
        {"unanswerable": 1}),
    # --- answers ------------------------------------------------------------------------------------------------
    row("json-answers-not-a-list", "a.json", one(qa("a"), qa("b", answers="Paris"), qa("c")),
        f"{Q} (id b): 'answers' must be a list of answers", AC, {"wrong type": 1}),
    row("json-answer-not-an-object", "a.json", one(qa("a"), qa("b", answers=["Paris"]), qa("c")),
        f"{Q} (id b): answers[0] must be an object, got str", AC, {"wrong type": 1}),
    row("json-answer-without-start", "a.json", one(qa("a"), qa("b", answers=[{"text": "Paris"}]), qa("c")),
        f"{Q} (id b): answers[0] has no 'answer_start'; keys present: text", AC, {"missing field": 1}),
    row("json-answer-start-a-string", "a.json",
        one(qa("a"), qa("b", answers=[{"text": "Paris", "answer_start": "0"}]), qa("c")),
        f"{Q} (id b): answers[0].answer_start must be an integer, got str '0'", AC, {"wrong type": 1}),
    row("json-answer-start-a-float", "a.json",
        one(qa("a"), qa("b", answers=[{"text": "Paris", "answer_start": 0.0}]), qa("c")),
        f"{Q} (id b): answers[0].answer_start must be an integer, got float 0.0", AC, {"wrong type": 1}),
    row("json-answer-start-a-bool", "a.json",
        one(qa("a"), qa("b", answers=[{"text": "Paris", "answer_start": False}]), qa("c")),
        f"{Q} (id b): answers[0].answer_start must be an integer, got bool False", AC, {"wrong type": 1}),
    row("json-answer-start-null", "a.json",
        one(qa("a"), qa("b", answers=[{"text": "Paris", "answer_start": None}]), qa("c")),
        f"{Q} (id b): answers[0].answer_start is null", AC, {"null value": 1}),
    row("json-answer-start-negative", "a.json",
        one(qa("a"), qa("b", answers=[{"text": "Paris", "answer_start": -1}]), qa("c")),
        f'{Q} (id b): answers[0].answer_start -1 is out of range: the answer "Paris" (5 characters) does not fit '
        "in the context (31 characters)", AC, {"answer out of range": 1}),
    row("json-answer-past-the-end", "a.json",
        one(qa("a"), qa("b", answers=[{"text": "France.", "answer_start": 25}]), qa("c")),
        f'{Q} (id b): answers[0].answer_start 25 is out of range: the answer "France." (7 characters) does not fit '
        "in the context (31 characters)", AC, {"answer out of range": 1}),
    row("json-answer-off-by-one", "a.json",
        one(qa("a"), qa("b", answers=[{"text": "Paris", "answer_start": 1}]), qa("c")),
        f'{Q} (id b): answers[0].answer_start 1 does not point at "Paris" in the context (found "aris "); it occurs '
        "at 0", AC, {"answer mismatch": 1}),
    row("json-second-answer-wrong", "a.json",
        one(qa("a"), qa("b", answers=[{"text": "Paris", "answer_start": 0},
                                      {"text": "France", "answer_start": 23}]), qa("c")),
        f'{Q} (id b): answers[1].answer_start 23 does not point at "France" in the context (found " Franc"); it '
        "occurs at 24", AC, {"answer mismatch": 1}),
    row("json-answer-not-in-the-context", "a.json",
        one(qa("a"), qa("b", answers=[{"text": "Rome", "answer_start": 0}]), qa("c")),
        f'{Q} (id b): answers[0].answer_start 0 does not point at "Rome" in the context (found "Pari"); the text '
        "does not occur in the context", AC, {"answer mismatch": 1}),
    row("json-answer-text-empty", "a.json", one(qa("a"), qa("b", answers=[{"text": "", "answer_start": 0}]), qa("c")),
        f"{Q} (id b): answers[0].text is empty", AC, {"empty answer": 1}),
    row("json-answer-text-blank", "a.json",
        one(qa("a"), qa("b", answers=[{"text": "  ", "answer_start": 5}]), qa("c")),
        f"{Q} (id b): answers[0].text is empty", AC, {"empty answer": 1}),
    row("json-answer-text-null", "a.json",
        one(qa("a"), qa("b", answers=[{"text": None, "answer_start": 0}]), qa("c")),
        f"{Q} (id b): answers[0].text is null", AC, {"null value": 1}),
    row("json-answer-text-a-number", "a.json",
        one(qa("a"), qa("b", answers=[{"text": 1, "answer_start": 0}]), qa("c")),
        f"{Q} (id b): answers[0].text must be a string, got int", AC, {"wrong type": 1}),
    row("json-duplicate-key-in-an-answer", "a.json", DUPLICATE_IN_ANSWER,
        f"{Q} (id b): answers[0] has the key 'text' twice: which value is meant cannot be told", AC, {"json": 1}),
    row("json-every-question-bad", "a.json", one(qa("a", ""), qa(None)), "{f}: data[0].paragraphs[0].qas[0] (id a): "
        "'question' is empty", [], {"empty text": 1, "null value": 1}),
    # --- whole-file problems: fatal under either policy ---------------------------------------------------------
    row("json-not-json", "a.json", b"question,answer\nWhat?,Paris\n",
        "{f}: not JSON: expected a SQuAD v1.1 JSON object or JSON Lines, but the file starts with 'question,answer"),
    row("json-array", "a.json", b'[{"id": "a"}]', "{f}: a JSON array: expected the SQuAD v1.1 JSON object"),
    row("json-truncated", "a.json", TRUNCATED, "{f}:1: invalid JSON: Expecting ',' delimiter at column "
        + str(len(TRUNCATED) + 1) + " (the file ends before the JSON does: truncated?)"),
    row("json-data-after-the-document", "a.json", one(qa("a")) + b"\n{}\n",
        "{f}:2: invalid JSON: Extra data at column 1"),
    row("json-invalid-utf8", "a.json", BAD_UTF8, "{f}:22: invalid UTF-8 at byte " + str(BAD_UTF8.index(b"\xff"))
        + " of the file"),
    row("json-no-data-key", "a.json", b'{"version": "1.1"}', "{f}: the top level has no 'data' key; keys present: "
        "version"),
    row("json-data-not-a-list", "a.json", b'{"data": {"title": "T"}}', "{f}: data must be a list, got dict"),
    row("json-article-not-an-object", "a.json", b'{"data": ["T"]}', "{f}: data[0] must be a JSON object, got str"),
    row("json-article-without-paragraphs", "a.json", b'{"data": [{"title": "T"}]}',
        "{f}: data[0] has no 'paragraphs' key; keys present: title"),
    row("json-qas-not-a-list", "a.json", b'{"data": [{"paragraphs": [{"context": "c", "qas": {}}]}]}',
        "{f}: data[0].paragraphs[0].qas must be a list, got dict"),
    row("json-duplicate-key-in-a-paragraph", "a.json", DUPLICATE_IN_PARAGRAPH,
        "{f}: data[0].paragraphs[0] has the key 'context' twice: which value is meant cannot be told"),
    row("json-one-pretty-printed-question", "a.json", PRETTY_FLAT,
        "{f}: the top level has no 'data' key; keys present: answers, context, id, question, title (a single "
        "question object? JSON Lines have one question per line)"),
    row("json-no-questions", "a.json", squad(article(para())), "{f}: no questions in the file"),
    row("json-empty-data", "a.json", b'{"version": "1.1", "data": []}', "{f}: no questions in the file"),
    row("json-utf16", "a.json", b"\xff\xfe" + one(qa("a")).decode().encode("utf-16-le"),
        "{f}: the file is UTF-16 (little-endian byte-order mark): re-encode it as UTF-8"),
    row("json-gzip", "a.json", gzip.compress(one(qa("a")), mtime=0), "{f}: the file is gzip-compressed"),
    # --- JSON Lines (Hugging Face layout): line numbers are real ------------------------------------------------
    row("jsonl-invalid-json-line", "a.jsonl", jsonl(flat("a"), b'{"id": "b", "quest', flat("c")),
        "{f}:2: invalid JSON: Unterminated string starting at column 13 (the line ends before the JSON does: "
        "truncated?)", AC, {"json": 1}),
    row("jsonl-line-not-an-object", "a.jsonl", jsonl(flat("a"), b"[1, 2]", flat("c")),
        "{f}:2: expected a JSON object, got list", AC, {"json": 1}),
    row("jsonl-duplicate-key", "a.jsonl", jsonl(flat("a"), b'{"id": "b", "id": "c"}', flat("c")),
        "{f}:2: duplicate key 'id': which value is meant cannot be told", AC, {"json": 1}),
    row("jsonl-missing-context", "a.jsonl", jsonl(flat("a"), without(flat("b"), "context"), flat("c")),
        "{f}:2: (id b): missing 'context'; keys present: answers, id, question, title", AC, {"missing field": 1}),
    row("jsonl-question-not-a-string", "a.jsonl", jsonl(flat("a"), flat("b", question=5), flat("c")),
        "{f}:2: (id b): 'question' must be a string, got int", AC, {"wrong type": 1}),
    row("jsonl-context-blank", "a.jsonl", jsonl(flat("a"), flat("b", context="\n"), flat("c")),
        "{f}:2: (id b): 'context' is empty", AC, {"empty text": 1}),
    row("jsonl-title-not-a-string", "a.jsonl", jsonl(flat("a"), flat("b", title=["T"]), flat("c")),
        "{f}:2: (id b): 'title' must be a string, got list", AC, {"wrong type": 1}),
    row("jsonl-duplicate-id", "a.jsonl", jsonl(flat("a"), flat("c"), flat("a")),
        "{f}:3: (id a): duplicate id 'a': line 1 has it too", AC, {"duplicate id": 1}),
    row("jsonl-answers-a-number", "a.jsonl", jsonl(flat("a"), flat("b", 5), flat("c")),
        "{f}:2: (id b): 'answers' must be a list of answers (or {{\"text\": [...], \"answer_start\": [...]}}), got "
        "int",
        AC, {"wrong type": 1}),
    row("jsonl-answers-text-not-a-list", "a.jsonl",
        jsonl(flat("a"), flat("b", {"text": "Paris", "answer_start": [0]}), flat("c")),
        "{f}:2: (id b): answers.text must be a list, got str", AC, {"wrong type": 1}),
    row("jsonl-answers-without-start", "a.jsonl", jsonl(flat("a"), flat("b", {"text": ["Paris"]}), flat("c")),
        "{f}:2: (id b): answers has no 'answer_start'; keys present: text", AC, {"missing field": 1}),
    row("jsonl-answer-lists-of-different-lengths", "a.jsonl",
        jsonl(flat("a"), flat("b", {"text": ["Paris", "France"], "answer_start": [0]}), flat("c")),
        "{f}:2: (id b): answers.text has 2 item(s) but answers.answer_start has 1", AC, {"answer count": 1}),
    row("jsonl-answer-start-a-string", "a.jsonl",
        jsonl(flat("a"), flat("b", {"text": ["Paris"], "answer_start": ["0"]}), flat("c")),
        "{f}:2: (id b): answers.answer_start[0] must be an integer, got str '0'", AC, {"wrong type": 1}),
    row("jsonl-answer-out-of-range", "a.jsonl",
        jsonl(flat("a"), flat("b", {"text": ["Paris"], "answer_start": [40]}), flat("c")),
        '{f}:2: (id b): answers.answer_start[0] 40 is out of range: the answer "Paris" (5 characters)', AC,
        {"answer out of range": 1}),
    row("jsonl-answer-mismatch", "a.jsonl",
        jsonl(flat("a"), flat("b", {"text": ["Paris", "France"], "answer_start": [0, 25]}), flat("c")),
        '{f}:2: (id b): answers.answer_start[1] 25 does not point at "France" in the context (found "rance.")', AC,
        {"answer mismatch": 1}),
    row("jsonl-answer-text-empty", "a.jsonl",
        jsonl(flat("a"), flat("b", {"text": [""], "answer_start": [0]}), flat("c")),
        "{f}:2: (id b): answers.text[0] is empty", AC, {"empty answer": 1}),
    row("jsonl-squad-list-answers-checked-too", "a.jsonl",
        jsonl(flat("a"), flat("b", [{"text": "Paris", "answer_start": 3}]), flat("c")),
        '{f}:2: (id b): answers[0].answer_start 3 does not point at "Paris"', AC, {"answer mismatch": 1}),
    row("jsonl-unanswerable", "a.jsonl", jsonl(flat("a"), flat("b", {"text": [], "answer_start": []},
                                                                is_impossible=True), flat("c")),
        "{f}:2: (id b): an unanswerable question (is_impossible: SQuAD 2.0)", AC, {"unanswerable": 1}),
    row("jsonl-long-line", "a.jsonl", jsonl(flat("a"), flat("b", context="Paris " + "x" * 300), flat("c")),
        "{f}:2: line of 4", AC, {"line too long": 1}, max_line_bytes=200),
    row("jsonl-bom-mid-file", "a.jsonl", jsonl(flat("a"), b"\xef\xbb\xbf" + json.dumps(flat("b")).encode(),
                                               flat("c")),
        "{f}:2: UTF-8 byte-order mark at byte 0 of the line, inside the file", AC, {"byte-order mark": 1}),
    row("jsonl-every-line-bad", "a.jsonl", jsonl(flat(""), flat(None)), "{f}:1: 'id' is empty", [],
        {"empty text": 1, "null value": 1}),
    row("jsonl-first-line-not-json", "a.jsonl", b"id\tquestion\n" + jsonl(flat("a")),
        "{f}: not JSON: expected a SQuAD v1.1 JSON object or JSON Lines, but the file starts with 'id\\tquestion"),
    row("jsonl-empty", "a.jsonl", b"", "{f}: no questions in the file"),
    row("jsonl-only-blank-lines", "a.jsonl", b"\n \n\n", "{f}: no questions in the file"),
    # --- valid, borderline --------------------------------------------------------------------------------------
    row("jsonl-blank-lines-and-crlf", "a.jsonl", jsonl(flat("a")) + b"\n  \r\n" + jsonl(flat("c")).replace(b"\n",
                                                                                                            b"\r\n"),
        "", AC),
    row("jsonl-unlabelled-no-title", "q.json", jsonl(without(without(flat("a"), "answers"), "title"), flat("c", {
        "text": [], "answer_start": []})), "", AC),
    row("json-pretty-printed-named-jsonl", "q.jsonl", json.dumps(json.loads(one(qa("a"), qa("c"))), indent=2).encode(),
        "", AC),
    row("json-unlabelled", "a.json", one(qa("a", answers=[]), without(qa("c"), "answers")), "", AC),
    row("json-bom-at-the-start", "a.json", b"\xef\xbb\xbf" + one(qa("a"), qa("c")), "", AC),
]


def _write(tmp_path: Path, c: Row) -> Path:
    path = tmp_path / c.filename
    path.write_bytes(c.data)
    return path


def test_the_table_is_big_enough():
    assert len(CASES) >= 60
    assert len({p.id for p in CASES}) == len(CASES)


@pytest.mark.parametrize("c", CASES)
def test_raise(tmp_path, c: Row):
    path = _write(tmp_path, c)
    log = ErrorLog("raise", c.max_line_bytes)
    if not c.error:
        assert [r.id for r in read_squad(path, log)] == c.kept
        assert log.kept == len(c.kept)
        return
    with pytest.raises(DataError) as info:
        list(read_squad(path, log))
    assert c.error.format(f=path) in str(info.value)


@pytest.mark.parametrize("c", CASES)
def test_skip(tmp_path, c: Row):
    path = _write(tmp_path, c)
    log = ErrorLog("skip", c.max_line_bytes)
    if c.kept is None:  # a whole-file problem: no policy reads past it
        with pytest.raises(DataError) as info:
            list(read_squad(path, log))
        assert c.error.format(f=path) in str(info.value)
        assert info.value.kind in ("file", "no records"), info.value.kind
        return
    if not c.kept:  # every question skipped: each one counted, then the read fails (there is nothing to use)
        with pytest.raises(DataError, match="no valid records: all") as info:
            list(read_squad(path, log))
        assert info.value.kind == "no records" and info.value.path == str(path)
    else:
        assert [r.id for r in read_squad(path, log)] == c.kept
    assert log.skipped == Counter(c.skipped)
    assert log.kept == len(c.kept)
    if c.error:  # the first error counted is the one "raise" stops at
        with pytest.raises(DataError) as info:
            list(read_squad(path, ErrorLog("raise", c.max_line_bytes)))
        assert str(log.errors[0]) == str(info.value)
        assert c.error.format(f=path) in str(log.errors[0])


def test_whole_records_from_both_layouts(tmp_path):
    """The same questions in the SQuAD JSON and in JSON Lines give the same records, bar the line numbers."""
    answers = [{"text": "Paris", "answer_start": 0}, {"text": "France", "answer_start": 24}]
    a = tmp_path / "a.json"
    a.write_bytes(squad(article(para(qa("q1", answers=answers), qa("q2", "Which country?", [answers[1]])),
                                title="Cities")))
    b = tmp_path / "b.jsonl"
    b.write_bytes(jsonl(flat("q1", {"text": ["Paris", "France"], "answer_start": [0, 24]}, title="Cities"),
                        flat("q2", {"text": ["France"], "answer_start": [24]}, title="Cities",
                             question="Which country?")))
    expected = [QARecord("q1", "What is the capital?", CTX, [Answer("Paris", 0), Answer("France", 24)], "Cities"),
                QARecord("q2", "Which country?", CTX, [Answer("France", 24)], "Cities")]
    got_a = list(read_squad(a, ErrorLog()))
    got_b = list(read_squad(b, ErrorLog()))
    assert [(r.source, r.line) for r in got_a] == [(str(a), 0), (str(a), 0)]
    assert [(r.source, r.line) for r in got_b] == [(str(b), 1), (str(b), 2)]
    for records in (got_a, got_b):
        for r in records:
            r.source, r.line = "", 0
        assert records == expected


def test_line_numbers_and_notes_in_json_lines(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"\n" + jsonl(flat("a")) + b"\n\n" + jsonl(flat("b", {"text": ["x"], "answer_start": [0]}),
                                                                flat("c")))
    log = ErrorLog("skip")
    assert [(r.id, r.line) for r in read_squad(path, log)] == [("a", 2), ("c", 6)]
    assert log.notes == Counter({"blank lines": 3})
    summary = log.summary()
    assert summary["records"] == 2 and summary["skipped"] == {"answer mismatch": 1}
    assert summary["first_errors"] == [f'{path}:5: (id b): answers.answer_start[0] 0 does not point at "x" in the '
                                       'context (found "P"); the text does not occur in the context']


@pytest.mark.parametrize("data, layout", [
    (one(qa("a")), "json"),  # one line, "version" first (as json.dump writes the official files)
    (json.dumps({"data": [], "version": "1.1"}).encode(), "json"),
    (json.dumps(json.loads(one(qa("a"))), indent=4).encode(), "json"),  # pretty-printed: a lone "{" first
    (b'\xef\xbb\xbf  \n\n{ "data" : []}', "json"),
    (jsonl(flat("a")), "jsonl"),
    (b'{"id": "a", "data": 1}\n', "jsonl"),  # a question with a "data" field, not a SQuAD document
    (b"", "jsonl"),
])
def test_layout_is_told_by_content(tmp_path, data: bytes, layout: str):
    for name in ("x.json", "x.jsonl", "x.txt"):
        path = tmp_path / name
        path.write_bytes(data)
        assert detect_squad_layout(path) == layout


def test_unicode_offsets_count_characters(tmp_path):
    """answer_start indexes the Python str: an accented letter and an emoji (4 UTF-8 bytes, 2 UTF-16 units) before
    the answer count one character each."""
    context = "Zoë met the fox 🦊 Renée near Málaga. Ünal arrived later."
    start = context.index("Renée")
    assert (start, len(context[:start].encode("utf-8")), len(context[:start].encode("utf-16-le")) // 2) == (18, 22, 19)
    answers = [{"text": "Renée", "answer_start": start}, {"text": "Málaga", "answer_start": context.index("Málaga")}]
    path = tmp_path / "u.json"
    path.write_bytes(json.dumps({"data": [article(para(qa("u", "Who?", answers), context=context))]},
                                ensure_ascii=False).encode("utf-8"))
    (record,) = read_squad(path, ErrorLog())
    assert record.answers == [Answer("Renée", 18), Answer("Málaga", 29)]
    assert [record.context[a.start:a.start + len(a.text)] for a in record.answers] == ["Renée", "Málaga"]
    # Offsets from tools that count bytes or UTF-16 units are caught, and the error says so.
    lines = tmp_path / "u.jsonl"
    lines.write_bytes(jsonl(flat("bytes", {"text": ["Renée"], "answer_start": [22]}, context=context),
                            flat("utf16", {"text": ["Renée"], "answer_start": [19]}, context=context),
                            flat("ok", {"text": ["Ünal"], "answer_start": [context.index("Ünal")]}, context=context)))
    log = ErrorLog("skip")
    assert [(r.id, r.answers) for r in read_squad(lines, log)] == [("ok", [Answer("Ünal", 37)])]
    assert [str(e) for e in log.errors] == [
        f'{lines}:1: (id bytes): answers.answer_start[0] 22 does not point at "Renée" in the context (found '
        '"e nea"); it occurs at character 18: answer_start counts UTF-8 bytes, not characters?',
        f'{lines}:2: (id utf16): answers.answer_start[0] 19 does not point at "Renée" in the context (found '
        '"enée "); it occurs at character 18: answer_start counts UTF-16 code units, not characters?',
    ]


def test_the_error_names_the_json_path_and_id(tmp_path):
    context = "Bernadette lived in the town. " * 3 + "The grotto was visited by Saint Bernadette in 1858."
    start = context.index("Saint Bernadette")
    paragraphs = [para(qa(f"p{j}")) for j in range(1)] + [para(qa("x1"), qa("x2"), context=context)]
    data = [article(para(qa(f"a{i}"))) for i in range(3)] + [article(*paragraphs)]
    data[3]["paragraphs"][1]["qas"][0] = qa("5733be284776f41900661182", "Who visited the grotto?",
                                            [{"text": "Saint Bernadette", "answer_start": start + 2}])
    path = tmp_path / "dev.json"
    path.write_bytes(json.dumps({"version": "1.1", "data": data}).encode())
    with pytest.raises(DataError) as info:
        list(read_squad(path, ErrorLog()))
    assert str(info.value) == (
        f'{path}: data[3].paragraphs[1].qas[0] (id 5733be284776f41900661182): answers[0].answer_start {start + 2} '
        f'does not point at "Saint Bernadette" in the context (found "int Bernadette i"); it occurs at {start}')
    assert (info.value.line, info.value.kind) == (0, "answer mismatch")


def test_require_answers(tmp_path):
    path = tmp_path / "a.json"
    path.write_bytes(one(qa("a"), qa("b", answers=[]), without(qa("c"), "answers")))
    assert [len(r.answers) for r in read_squad(path, ErrorLog())] == [1, 0, 0]
    log = ErrorLog("skip")
    assert [r.id for r in read_squad(path, log, require_answers=True)] == ["a"]
    assert log.skipped == Counter({"no answers": 2})
    with pytest.raises(DataError, match=r"qas\[1\] \(id b\): no answers \(training data needs at least one\)"):
        list(read_squad(path, ErrorLog(), require_answers=True))


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path):
    """A sparse file just over MAX_JSON_BYTES (no disk used): refused from its size, before any parsing."""
    path = tmp_path / "huge.json"
    with path.open("wb") as handle:
        handle.write(b'{"version": "1.1", "data": [')
        handle.truncate(MAX_JSON_BYTES + 1)
    assert os.path.getsize(path) == MAX_JSON_BYTES + 1 == 2 ** 31 + 1
    for policy in ("raise", "skip"):
        with pytest.raises(DataError) as info:
            list(read_squad(path, ErrorLog(policy)))
        assert str(info.value) == (f"{path}: the file is 2147483649 bytes, over the 2 GiB limit for a whole-file "
                                   "SQuAD JSON (it is parsed in memory): write it as JSON Lines, one question per "
                                   "line, which is read streamed")
        assert info.value.kind == "file"


def test_reading_is_lazy_and_repeatable(tmp_path):
    path = tmp_path / "a.json"
    path.write_bytes(one(qa("a"), qa("c")))
    records = read_squad(path, ErrorLog())  # nothing read yet: a missing file fails on the first record
    path.rename(tmp_path / "moved.json")
    with pytest.raises(DataError, match="file not found"):
        next(records)
    log = ErrorLog()
    first = list(read_squad(tmp_path / "moved.json", log))
    assert first == list(read_squad(tmp_path / "moved.json", log)) and log.kept == 4


def test_the_embedded_sample(tmp_path):
    """tfpipe/resources/squad_sample.json: every answer offset right, the shape the QA tests need."""
    path = Path(str(resources.files("tfpipe") / "resources" / "squad_sample.json"))
    log = ErrorLog("raise")
    records = list(read_squad(path, log, require_answers=True))
    assert detect_squad_layout(path) == "json"
    assert len(records) == log.kept == 44 and not log.skipped
    for r in records:
        for a in r.answers:
            assert r.context[a.start:a.start + len(a.text)] == a.text, (r.id, a)
            assert a.text.strip() == a.text
    assert len({r.id for r in records}) == len(records)
    contexts = list(dict.fromkeys(r.context for r in records))
    assert len(contexts) == 12
    assert all(3 <= sum(r.context == c for r in records) <= 4 for c in contexts)
    assert sum(len(c.split()) > 250 for c in contexts) == 2  # windows with a stride at max_seq_length 128
    assert sum(len(r.answers) > 1 for r in records) >= 10
    assert max(len(r.answers) for r in records) == 3
    assert any(not c.isascii() for c in contexts) and any(not r.question.isascii() for r in records)
    assert len({r.title for r in records}) == 6
    # The raw file agrees with the records (nothing dropped or altered on the way).
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert raw["version"] == "1.1"
    assert sum(len(p["qas"]) for a in raw["data"] for p in a["paragraphs"]) == 44
