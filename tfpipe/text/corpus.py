"""Corpus preparation: documents → cleaned lines → spaCy sentences, streamed.

`iter_sentence_documents` feeds vocabulary building and pretraining data; `prepare_corpus` writes the result
as one sentence per line with a blank line between documents (a corpus the plain reader reads back as is).
Documents carry stable ids (`tfpipe.text.keys`) that decide de-duplication and shards, and the per-document
functions here are the ones the Beam pipelines (`tfpipe.data.beam_pipelines`) call, so both give the same bytes.
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

from tfpipe.config.atomic import atomic_file, write_json_atomic
from tfpipe.config.schemas import CleaningConfig, ReaderConfig, SpacyConfig
from tfpipe.text.cleaning import Deduplicator, clean_text
from tfpipe.text.keys import document_id, shard_of
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
    reading: dict = field(default_factory=dict)  # ErrorLog.summary(): documents read, bad lines skipped by kind


def read_file_documents(
    input_index: int, path: str | Path, reader: ReaderConfig, log: ErrorLog
) -> Iterator[tuple[int, list[str]]]:
    """`(document id, raw lines)` for every document of the `input_index`-th input, in file order."""
    for ordinal, doc in enumerate(read_documents(path, reader.doc_boundary_regex, reader.drop_regex, log)):
        yield document_id(input_index, ordinal), doc.lines


def clean_document(lines: Iterable[str], cleaning: CleaningConfig) -> list[str]:
    """A document's lines cleaned, those left empty dropped (de-duplication is corpus-wide, see `_cleaned_lines`)."""
    return [text for text in (clean_text(line, cleaning) for line in lines) if text]


def _cleaned_lines(
    paths: Iterable[str | Path], reader: ReaderConfig, cleaning: CleaningConfig, stats: CorpusStats, log: ErrorLog
) -> Iterator[tuple[str, int]]:
    """`(line, document id)` for every kept line of every document, cleaned and de-duplicated. Of equal lines the
    first in (document id, line) order is kept: the rule the Beam pipeline applies with a combine."""
    dedupe = Deduplicator() if cleaning.dedupe else None
    for input_index, path in enumerate(paths):
        for doc_id, lines in read_file_documents(input_index, path, reader, log):
            kept = clean_document(lines, cleaning)
            stats.lines += len(lines)
            stats.empty_after_cleaning += len(lines) - len(kept)
            for text in kept:
                if dedupe is None or dedupe.is_new(text):
                    yield text, doc_id
    stats.duplicates = dedupe.duplicates if dedupe else 0
    stats.notes = dict(log.notes)
    stats.reading = log.summary()


def word_count(sentences: Iterable[str]) -> int:
    return sum(len(s.split()) for s in sentences)


def iter_identified_documents(
    paths: Iterable[str | Path],
    reader: Optional[ReaderConfig] = None,
    cleaning: Optional[CleaningConfig] = None,
    spacy: Optional[SpacyConfig] = None,
    stats: Optional[CorpusStats] = None,
    progress: bool = False,
) -> Iterator[tuple[int, list[str]]]:
    """Yields `(document id, sentences)` in id order for every document with a sentence (spaCy `sentencizer`
    over every cleaned line); ids are `tfpipe.text.keys.document_id`s."""
    reader, cleaning = reader or ReaderConfig(), cleaning or CleaningConfig()
    stats = stats if stats is not None else CorpusStats()
    log = ErrorLog.for_reader(reader)
    segmenter = SpacyPass(spacy, progress=progress)
    pairs = segmenter.sentences_with_context(_cleaned_lines(paths, reader, cleaning, stats, log))
    for doc_id, group in itertools.groupby(pairs, key=lambda item: item[1]):
        sentences = [s for sents, _ in group for s in sents]
        if sentences:
            stats.documents += 1
            stats.sentences += len(sentences)
            stats.words += word_count(sentences)
            yield doc_id, sentences


def iter_sentence_documents(
    paths: Iterable[str | Path],
    reader: Optional[ReaderConfig] = None,
    cleaning: Optional[CleaningConfig] = None,
    spacy: Optional[SpacyConfig] = None,
    stats: Optional[CorpusStats] = None,
    progress: bool = False,
) -> Iterator[list[str]]:
    """Yields each document as its list of sentences (`iter_identified_documents` without the ids)."""
    for _, sentences in iter_identified_documents(paths, reader, cleaning, spacy, stats, progress):
        yield sentences


_FIRST_ERRORS = 20  # as many as `ErrorLog.summary()` lists


def merge_reading(summaries: Sequence[dict]) -> dict:
    """The `ErrorLog.summary()` one log over several files gives, from their own summaries in input order."""
    log = ErrorLog(summaries[0]["on_error"], summaries[0]["max_line_bytes"])
    for summary in summaries:
        log.kept += summary["records"]
        log.skipped.update(summary["skipped"])
        log.notes.update(summary["notes"])
    merged = log.summary()
    # Each file's summary lists its first errors; the first of all files is the start of their concatenation.
    merged["first_errors"] = [e for s in summaries for e in s["first_errors"]][:_FIRST_ERRORS]
    return merged


def corpus_shard_names(output_name: str, num_shards: int = 1) -> list[str]:
    """The corpus file names: `output_name` itself for one shard, else `STEM-00000-of-0000N.SUFFIX`.

    >>> corpus_shard_names("corpus.txt", 2)
    ['corpus-00000-of-00002.txt', 'corpus-00001-of-00002.txt']
    """
    if num_shards < 1:
        raise ValueError(f"num_shards={num_shards}: a corpus needs at least one file")
    if num_shards == 1:
        return [output_name]
    stem, dot, suffix = output_name.rpartition(".") if "." in output_name else (output_name, "", "")
    return [f"{stem}-{i:05d}-of-{num_shards:05d}{dot}{suffix}" for i in range(num_shards)]


def document_text(sentences: Sequence[str]) -> str:
    """A document as written: one sentence per line; documents in a shard are joined by a blank line."""
    return "\n".join(sentences) + "\n"


def corpus_manifest(paths: Sequence[str | Path], output_name: str, stats: CorpusStats, shard_documents: list[int],
                    num_shards: int) -> dict:
    """`OUTPUT.manifest.json`: inputs, counts (what was read and skipped included) and documents per shard."""
    names = corpus_shard_names(output_name, num_shards)
    return {"inputs": [str(p) for p in paths], "output": output_name, **vars(stats),
            "shards": [{"file": n, "documents": c} for n, c in zip(names, shard_documents)]}


def prepare_corpus(
    paths: Iterable[str | Path],
    output: str | Path,
    reader: Optional[ReaderConfig] = None,
    cleaning: Optional[CleaningConfig] = None,
    spacy: Optional[SpacyConfig] = None,
    progress: bool = False,
    num_shards: int = 1,
) -> CorpusStats:
    """Writes one sentence per line, documents separated by a blank line, and `OUTPUT.manifest.json`; returns the
    counts. With `num_shards` > 1 each document goes to the shard its id hashes to, in id order there."""
    stats = CorpusStats()
    output, paths = Path(output), list(paths)
    counts = [0] * num_shards
    with contextlib.ExitStack() as stack:  # a crash never leaves a truncated corpus under the final names
        outs = [stack.enter_context(atomic_file(output.with_name(n))) for n in corpus_shard_names(output.name,
                                                                                                  num_shards)]
        for doc_id, sentences in iter_identified_documents(paths, reader, cleaning, spacy, stats, progress):
            shard = shard_of(doc_id, num_shards)
            outs[shard].write(("\n" if counts[shard] else "") + document_text(sentences))
            counts[shard] += 1
    write_json_atomic(output.with_name(output.name + ".manifest.json"),
                      corpus_manifest(paths, output.name, stats, counts, num_shards))
    return stats
