"""Corpus preparation: documents → cleaned lines → spaCy sentences, streamed.

`iter_sentence_documents` feeds vocabulary building and pretraining data; `prepare_corpus` writes the result
as one sentence per line with a blank line between documents (a corpus the plain reader reads back as is).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Optional

from tfpipe.config.schemas import CleaningConfig, ReaderConfig, SpacyConfig
from tfpipe.text.cleaning import Deduplicator, clean_text
from tfpipe.text.readers import ErrorLog, read_documents
from tfpipe.text.spacy_pass import SpacyPass


@dataclass
class CorpusStats:
    documents: int = 0
    lines: int = 0
    sentences: int = 0
    words: int = 0
    duplicates: int = 0
    empty_after_cleaning: int = 0
    notes: dict = field(default_factory=dict)


def _cleaned_lines(
    paths: Iterable[str | Path], reader: ReaderConfig, cleaning: CleaningConfig, stats: CorpusStats, log: ErrorLog
) -> Iterator[tuple[str, int]]:
    """`(line, document_number)` for every kept line of every document, cleaned and de-duplicated."""
    dedupe = Deduplicator() if cleaning.dedupe else None
    doc_number = 0
    for path in paths:
        for doc in read_documents(path, reader.doc_boundary_regex, reader.drop_regex, log):
            kept = False
            for line in doc.lines:
                stats.lines += 1
                text = clean_text(line, cleaning)
                if not text:
                    stats.empty_after_cleaning += 1
                    continue
                if dedupe is not None and not dedupe.is_new(text):
                    continue
                kept = True
                yield text, doc_number
            doc_number += kept
    stats.duplicates = dedupe.duplicates if dedupe else 0
    stats.notes = dict(log.notes)


def iter_sentence_documents(
    paths: Iterable[str | Path],
    reader: Optional[ReaderConfig] = None,
    cleaning: Optional[CleaningConfig] = None,
    spacy: Optional[SpacyConfig] = None,
    stats: Optional[CorpusStats] = None,
    progress: bool = False,
) -> Iterator[list[str]]:
    """Yields each document as its list of sentences (spaCy `sentencizer` over every cleaned line)."""
    reader, cleaning = reader or ReaderConfig(), cleaning or CleaningConfig()
    stats = stats if stats is not None else CorpusStats()
    log = ErrorLog(reader.on_error)
    segmenter = SpacyPass(spacy, progress=progress)
    pairs = segmenter.sentences_with_context(_cleaned_lines(paths, reader, cleaning, stats, log))
    for _, group in itertools.groupby(pairs, key=lambda item: item[1]):
        sentences = [s for sents, _ in group for s in sents]
        if sentences:
            stats.documents += 1
            stats.sentences += len(sentences)
            stats.words += sum(len(s.split()) for s in sentences)
            yield sentences


def prepare_corpus(
    paths: Iterable[str | Path],
    output: str | Path,
    reader: Optional[ReaderConfig] = None,
    cleaning: Optional[CleaningConfig] = None,
    spacy: Optional[SpacyConfig] = None,
    progress: bool = False,
) -> CorpusStats:
    """Writes one sentence per line, documents separated by a blank line; returns the counts."""
    stats = CorpusStats()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    with partial.open("w", encoding="utf-8") as out:
        for i, sentences in enumerate(iter_sentence_documents(paths, reader, cleaning, spacy, stats, progress)):
            if i:
                out.write("\n")
            out.write("\n".join(sentences) + "\n")
    partial.replace(output)  # a crash never leaves a truncated corpus under the final name
    return stats
