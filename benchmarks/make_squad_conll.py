"""Builds SQuAD v1.1-format train/dev files from CoNLL-2003 (`train.txt` -> train.json, `valid.txt` -> dev.json),
so that extractive question answering can be trained and compared on real text without downloading SQuAD.

Contexts: each document's sentences, detokenized minimally (no space before `, . ; : ! ? ) ] } % '` and the
clitics `'s n't 're 've 'll 'd 'm`, none after `( [ { $`; a single space everywhere else, between sentences
too), cut into consecutive sentence chunks of at most 350 words. Every word's character offset is kept while the
context is built, so an answer is the exact slice from its first word's start to its last word's end.

Questions, from the BIO entities of a chunk:
* "Which person is mentioned?" (PER), "Which organisation is named?" (ORG), "Which place is mentioned?" (LOC),
  "Which nationality, event or other name is mentioned?" (MISC): asked only when the chunk mentions entities of
  that type under exactly one distinct surface string (the answer: its first mention);
* "Which person (organisation, place, nationality, event or other name) is mentioned after '<2 words>'?": for a
  mention preceded, in its sentence, by two words (not punctuation, no quote) that occur together nowhere else
  in the chunk; at most `--after-per-context` of them per chunk, drawn with the seeded generator.

Deterministic: the same data and options give byte-identical files. `--max-questions N` keeps the first N
questions of each split, in document order (a prefix of the full build). Prints one JSON line of counts.

Run from the project root:
    .venv/bin/python benchmarks/make_squad_conll.py --conll-dir /work/shared/data/conll2003 --output-dir /tmp/sq
"""

from __future__ import annotations

import argparse
import bisect
import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from tfpipe.config.atomic import atomic_file
from tfpipe.text.readers.base import ErrorLog, TokenRecord
from tfpipe.text.readers.conll import read_conll

MAX_WORDS = 350
NO_SPACE_BEFORE = frozenset({",", ".", ";", ":", "!", "?", ")", "]", "}", "%", "'", "'s", "'S", "n't", "'re", "'ve",
                             "'ll", "'d", "'m"})
NO_SPACE_AFTER = frozenset({"(", "[", "{", "$"})
TYPE_QUESTIONS = {
    "PER": "Which person is mentioned?",
    "ORG": "Which organisation is named?",
    "LOC": "Which place is mentioned?",
    "MISC": "Which nationality, event or other name is mentioned?",
}
AFTER_NOUNS = {"PER": "person", "ORG": "organisation", "LOC": "place", "MISC": "nationality, event or other name"}
SPLITS = (("train", "train.txt"), ("dev", "valid.txt"))


@dataclass
class Mention:
    """An entity in a chunk: its type, word range [first, last] and character span in the context."""

    type: str
    first: int
    last: int
    start: int
    end: int


def documents(path: Path) -> list[list[TokenRecord]]:
    """The sentences of `path` grouped by document (the `-DOCSTART-` lines), BIO-checked by `read_conll`."""
    with path.open(encoding="utf-8") as handle:
        starts = [number for number, line in enumerate(handle, 1) if line.startswith("-DOCSTART-")]
    docs: dict[int, list[TokenRecord]] = {}
    for sentence in read_conll(path, log=ErrorLog("raise")):
        docs.setdefault(bisect.bisect_right(starts, sentence.line), []).append(sentence)
    return [docs[key] for key in sorted(docs)]


def chunks(sentences: list[TokenRecord], max_words: int = MAX_WORDS) -> Iterator[list[TokenRecord]]:
    """Consecutive runs of whole sentences of at most `max_words` words (a longer sentence stands alone)."""
    run: list[TokenRecord] = []
    count = 0
    for sentence in sentences:
        if run and count + len(sentence.words) > max_words:
            yield run
            run, count = [], 0
        run.append(sentence)
        count += len(sentence.words)
    if run:
        yield run


def detokenize(sentences: list[TokenRecord]) -> tuple[str, list[tuple[int, int]], list[int]]:
    """The context string, every word's `(start, end)` in it, and every word's sentence index."""
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    sentence_of: list[int] = []
    position, previous = 0, None
    for index, sentence in enumerate(sentences):
        for word in sentence.words:
            if previous is not None and word not in NO_SPACE_BEFORE and previous not in NO_SPACE_AFTER:
                parts.append(" ")
                position += 1
            spans.append((position, position + len(word)))
            parts.append(word)
            position += len(word)
            sentence_of.append(index)
            previous = word
    return "".join(parts), spans, sentence_of


def mentions(sentences: list[TokenRecord], spans: list[tuple[int, int]]) -> list[Mention]:
    """The BIO entities of the chunk, with word indices into the chunk's words."""
    found: list[Mention] = []
    offset = 0
    for sentence in sentences:
        for i, tag in enumerate(sentence.tags or []):
            word = offset + i
            if tag.startswith("B-"):
                found.append(Mention(tag[2:], word, word, spans[word][0], spans[word][1]))
            elif tag.startswith("I-"):  # read_conll has checked that it continues the mention before it
                found[-1].last, found[-1].end = word, spans[word][1]
        offset += len(sentence.words)
    return found


def questions(context: str, words: list[str], spans: list[tuple[int, int]], sentence_of: list[int],
              found: list[Mention], rng: random.Random, after_per_context: int) -> list[tuple[str, str, int]]:
    """`(question, answer text, answer_start)` for one chunk: the type questions, then the "after" ones."""
    asked: list[tuple[str, str, int]] = []
    for kind, question in TYPE_QUESTIONS.items():
        surfaces: dict[str, int] = {}
        for m in found:
            if m.type == kind:
                surfaces.setdefault(context[m.start:m.end], m.start)
        if len(surfaces) == 1:
            ((text, start),) = surfaces.items()
            asked.append((question, text, start))
    pairs: dict[tuple[str, str], int] = {}
    for i in range(1, len(words)):
        pairs[(words[i - 1], words[i])] = pairs.get((words[i - 1], words[i]), 0) + 1
    candidates = []
    for m in found:
        before = m.first - 2
        if before < 0 or sentence_of[before] != sentence_of[m.first]:
            continue
        pair = (words[before], words[before + 1])
        if pairs[pair] != 1 or not all(any(ch.isalnum() for ch in w) for w in pair) or "'" in "".join(pair):
            continue  # not unique, punctuation for a word, or a quote that would break the question's quoting
        cue = context[spans[before][0]:spans[before + 1][1]]
        candidates.append((f"Which {AFTER_NOUNS[m.type]} is mentioned after '{cue}'?", context[m.start:m.end],
                           m.start))
    chosen = sorted(rng.sample(range(len(candidates)), min(after_per_context, len(candidates))))
    return asked + [candidates[i] for i in chosen]


def build_split(path: Path, split: str, seed: int, max_questions: Optional[int], after_per_context: int
                ) -> tuple[dict, dict]:
    """The SQuAD v1.1 document for one CoNLL file, and its counts."""
    rng = random.Random(f"{seed}-{split}")  # str seeds hash the same way in every process
    data: list[dict] = []
    counts = {"documents": 0, "contexts": 0, "questions": 0, "type_questions": 0, "after_questions": 0,
              "answers_by_type": {kind: 0 for kind in TYPE_QUESTIONS}, "context_words_max": 0}
    type_texts = set(TYPE_QUESTIONS.values())
    for d, sentences in enumerate(documents(path)):
        paragraphs = []
        for c, chunk in enumerate(chunks(sentences)):
            words = [word for sentence in chunk for word in sentence.words]
            context, spans, sentence_of = detokenize(chunk)
            found = mentions(chunk, spans)
            qas = []
            for q, (question, text, start) in enumerate(questions(context, words, spans, sentence_of, found, rng,
                                                                  after_per_context)):
                if max_questions is not None and counts["questions"] >= max_questions:
                    break
                if context[start:start + len(text)] != text:  # cannot happen: the offsets are built, not searched
                    raise RuntimeError(f"{split} document {d} chunk {c}: answer {text!r} not at {start}")
                qas.append({"id": f"conll-{split}-{d:04d}-{c}-{q}", "question": question,
                            "answers": [{"text": text, "answer_start": start}]})
                counts["questions"] += 1
                counts["type_questions" if question in type_texts else "after_questions"] += 1
                kind = next(m.type for m in found if m.start == start)
                counts["answers_by_type"][kind] += 1
            if qas:
                paragraphs.append({"context": context, "qas": qas})
                counts["contexts"] += 1
                counts["context_words_max"] = max(counts["context_words_max"], len(words))
        if paragraphs:
            data.append({"title": f"CoNLL-2003 {split} document {d}", "paragraphs": paragraphs})
            counts["documents"] += 1
        if max_questions is not None and counts["questions"] >= max_questions:
            break
    return {"version": "1.1", "data": data}, counts


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conll-dir", required=True, help="folder with CoNLL-2003 train.txt and valid.txt")
    parser.add_argument("--output-dir", required=True, help="where train.json and dev.json are written")
    parser.add_argument("--max-questions", type=int, default=None, help="keep the first N questions of each split")
    parser.add_argument("--after-per-context", type=int, default=3,
                        help="'mentioned after ...' questions drawn per context (default 3)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.max_questions is not None and args.max_questions < 1:
        parser.error("--max-questions must be at least 1")
    conll, out = Path(args.conll_dir), Path(args.output_dir)
    missing = [name for _, name in SPLITS if not (conll / name).is_file()]
    if missing:
        parser.error(f"{conll}: missing {', '.join(missing)}")
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    summary: dict = {}
    for split, name in SPLITS:
        doc, counts = build_split(conll / name, split, args.seed, args.max_questions, args.after_per_context)
        with atomic_file(out / f"{split}.json") as handle:
            json.dump(doc, handle, ensure_ascii=False)
            handle.write("\n")
        summary[split] = counts
    summary["seconds"] = round(time.perf_counter() - started, 2)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
