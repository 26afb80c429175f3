"""`benchmarks/make_squad_conll.py`: SQuAD v1.1 files built from the real CoNLL-2003 data (skipped where
../shared is absent), read back with the SQuAD reader, every answer offset checked."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import REPO, shared_path
from tfpipe.text.readers.base import ErrorLog
from tfpipe.text.readers.squad import read_squad

SCRIPT = REPO / "benchmarks" / "make_squad_conll.py"
TYPE_QUESTIONS = {"Which person is mentioned?", "Which organisation is named?", "Which place is mentioned?",
                  "Which nationality, event or other name is mentioned?"}
AFTER = re.compile(r"^Which (person|organisation|place|nationality, event or other name) is mentioned after "
                   r"'([^']+)'\?$")


def build(conll: Path, out: Path, *extra: str) -> dict:
    done = subprocess.run([sys.executable, str(SCRIPT), "--conll-dir", str(conll), "--output-dir", str(out), *extra],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout  # one JSON line of counts
    return json.loads(lines[0])


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> tuple[Path, dict, Path]:
    conll = shared_path("data", "conll2003")
    out = tmp_path_factory.mktemp("squad-conll")
    return out, build(conll, out), conll


def test_every_answer_is_at_its_offset(full):
    out, counts, _ = full
    for split in ("train", "dev"):
        log = ErrorLog("raise")
        records = list(read_squad(out / f"{split}.json", log, require_answers=True))  # raises on any bad offset
        assert len(records) == log.kept == counts[split]["questions"] and not log.skipped
        assert len({r.id for r in records}) == len(records)
        for r in records:
            (answer,) = r.answers
            assert r.context[answer.start:answer.start + len(answer.text)] == answer.text
            assert answer.text == answer.text.strip() and answer.text
            assert len(r.context.split()) <= 350
            assert r.question in TYPE_QUESTIONS or AFTER.match(r.question), r.question
            match = AFTER.match(r.question)
            if match:  # the cue is unique in the context and the answer follows it directly
                cue = match.group(2)
                assert r.context.count(cue) >= 1
                assert r.context[answer.start - len(cue) - 1:answer.start] == cue + " "
        contexts = {r.context for r in records}
        assert len(contexts) == counts[split]["contexts"]
        assert counts[split]["type_questions"] + counts[split]["after_questions"] == len(records)
        assert sum(counts[split]["answers_by_type"].values()) == len(records)
        assert sum(r.question in TYPE_QUESTIONS for r in records) == counts[split]["type_questions"]


def test_the_sizes_of_the_real_build(full):
    """Pinned counts for CoNLL-2003 as it is in ../shared: a change in the builder shows up here."""
    _, counts, _ = full
    assert {k: counts["train"][k] for k in ("documents", "contexts", "questions", "type_questions")} == {
        "documents": 923, "contexts": 1063, "questions": 3477, "type_questions": 720}
    assert {k: counts["dev"][k] for k in ("documents", "contexts", "questions", "type_questions")} == {
        "documents": 215, "contexts": 263, "questions": 849, "type_questions": 150}
    assert counts["train"]["context_words_max"] == counts["dev"]["context_words_max"] == 350


def test_detokenized_contexts(full):
    out, _, _ = full
    doc = json.loads((out / "dev.json").read_text(encoding="utf-8"))
    contexts = [p["context"] for a in doc["data"] for p in a["paragraphs"]]
    joined = "\n".join(contexts)
    # Punctuation and clitics hold on to the word before them ("..." and ".596" are words of their own).
    assert not re.search(r" [,.;:!?)%](?=\s|$)", joined)
    for glued in ("( ", " 's", " n't"):
        assert glued not in joined, glued
    assert "won't" in joined and "wo n't" not in joined and "I'm sure" in joined
    assert "Nations' Cup" in joined
    # The first dev document: its headline, dateline and first sentence, and its only MISC entity asked for.
    first = doc["data"][0]["paragraphs"][0]
    assert first["context"].startswith("CRICKET - LEICESTERSHIRE TAKE OVER AT TOP AFTER INNINGS VICTORY. LONDON "
                                       "1996-08-30 West Indian all-rounder Phil Simmons took four for 38 on Friday")
    assert first["qas"][0] == {"id": "conll-dev-0000-0-0", "question": "Which nationality, event or other name is "
                               "mentioned?", "answers": [{"text": "West Indian", "answer_start": 83}]}


def test_max_questions_is_a_deterministic_prefix(full, tmp_path):
    out, _, conll = full
    counts = build(conll, tmp_path, "--max-questions", "40")
    assert counts["train"]["questions"] == counts["dev"]["questions"] == 40
    for split in ("train", "dev"):
        small = [(r.id, r.question, r.context, r.answers) for r in read_squad(tmp_path / f"{split}.json", ErrorLog())]
        whole = [(r.id, r.question, r.context, r.answers) for r in read_squad(out / f"{split}.json", ErrorLog())]
        assert small == whole[:40]
    again = tmp_path / "again"
    build(conll, again, "--max-questions", "40")
    assert (again / "dev.json").read_bytes() == (tmp_path / "dev.json").read_bytes()
    assert Counter(p.name for p in again.iterdir()) == Counter({"train.json": 1, "dev.json": 1})


def test_a_missing_conll_file_is_an_error(tmp_path):
    (tmp_path / "train.txt").write_text("EU B-ORG\n", encoding="utf-8")
    done = subprocess.run([sys.executable, str(SCRIPT), "--conll-dir", str(tmp_path), "--output-dir",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2 and "missing valid.txt" in done.stderr
    assert not (tmp_path / "out").exists()
