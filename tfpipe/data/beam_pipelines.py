"""Corpus preparation on Apache Beam: `prepare-corpus`, `build-vocab`'s word counts and `create-pretraining-data`
as pipelines, for corpora bigger than one machine, on DirectRunner, Dataflow, Flink or Spark.

The transforms call the local path's per-document functions (`tfpipe.text.corpus`, `tfpipe.text.vocab`,
`tfpipe.data.pretraining_examples`); every key, random choice and shard comes from document ids
(`tfpipe.text.keys`), so the output is the same bytes as the local path's on one core or a thousand. Workers write
into a temporary folder beside the output; the launcher renames the files into place and writes the manifest last.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Iterable, Optional, Sequence

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions

from tfpipe.config.schemas import (
    BEAM_RUNNERS,
    CleaningConfig,
    PretrainingConfig,
    ReaderConfig,
    SpacyConfig,
    VocabConfig,
)
from tfpipe.data import beam_files as files
from tfpipe.data.pretraining_data import (
    MANIFEST,
    STAT_KEYS,
    add_record,
    check_config,
    corpus_section,
    instance_record,
    pretraining_manifest,
    sha256_file,
    shard_name,
)
from tfpipe.data.pretraining_examples import InstanceMaker, random_document, random_segments, tokenize_documents
from tfpipe.text.cleaning import line_digest
from tfpipe.text.corpus import (
    CorpusStats,
    clean_document,
    corpus_manifest,
    corpus_shard_names,
    document_text,
    merge_reading,
    read_file_documents,
    word_count,
)
from tfpipe.text.keys import shard_of
from tfpipe.text.readers import ErrorLog
from tfpipe.text.spacy_pass import SpacyPass
from tfpipe.text.tokenizer import WordPieceTokenizer
from tfpipe.text.vocab import file_texts, learn_vocabulary, word_counter

# `direct` is the direct runner's batch engine itself: Beam's `DirectRunner` first tries Prism, which downloads a
# binary at run time (offline it fails and falls back here; online it would run elsewhere, ignoring direct_* options).
RUNNERS = dict(zip(BEAM_RUNNERS, ("FnApiRunner", "DataflowRunner", "FlinkRunner", "SparkRunner")))
NAMESPACE = "tfpipe"  # of the Beam metrics (counters) every pipeline here reports
_READING = "reading.json"


# === Options, runs and counters ===

def pipeline_options(runner: str = "direct", options: Sequence[str] = ()) -> PipelineOptions:
    """Beam options for `runner` (`direct`, `dataflow`, `flink`, `spark`) plus pass-through `KEY=VALUE` options
    (`direct_num_workers=2`, `project=my-project`; a bare `KEY` is a switch such as `save_main_session`)."""
    if runner not in RUNNERS:
        raise ValueError(f"runner {runner!r} is not allowed; allowed values: {', '.join(RUNNERS)}")
    flags = [f"--runner={RUNNERS[runner]}"]
    for option in options:
        key, sep, value = option.partition("=")
        if not key.strip("-"):
            raise ValueError(f"--pipeline-option {option!r}: expected KEY=VALUE")
        flags.append(f"--{key.lstrip('-')}" + (f"={value}" if sep else ""))
    return PipelineOptions(flags)


def _count(name: str, value: int = 1) -> None:
    Metrics.counter(NAMESPACE, name).inc(value)


def _run(pipeline: beam.Pipeline, progress: bool) -> dict[str, int]:
    """Runs to the end; returns the counters (committed values where the runner keeps them, else attempted)."""
    try:
        result = pipeline.run()
        result.wait_until_finish()
    except Exception as error:  # a worker's DataError arrives wrapped; say it as the local path does (file:line)
        found = re.search(r"DataError: (.+?)(?: \[while running .*)?$", str(error), re.M)
        if found is None:
            raise
        raise ValueError(found.group(1)) from None
    counters: Counter = Counter()
    for counter in result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        counters[counter.key.metric.name] += value  # one entry per step that counts it
    if progress:
        print("beam counters: " + ", ".join(f"{k}={v:,}" for k, v in sorted(counters.items())), file=sys.stderr)
    return dict(sorted(counters.items()))


# === Transforms ===

class _ReadFiles(beam.DoFn):
    """`(input index, path)` → `(document id, raw lines)` (or cleaned texts, for `texts`); the file's reading
    summary goes to the `reading` output, its skipped lines by reason to the counters."""

    def __init__(self, reader: ReaderConfig, cleaning: Optional[CleaningConfig] = None, task: str = "") -> None:
        self.reader, self.cleaning, self.task = reader, cleaning, task

    def process(self, item: tuple[int, str]):
        index, path = item
        log = ErrorLog.for_reader(self.reader)
        with files.local_copy(path) as local:
            if self.cleaning is None:
                yield from read_file_documents(index, local, self.reader, log)
            else:
                yield from file_texts(local, self.reader, self.cleaning, self.task, log)
        summary = log.summary()
        _count("records read", summary["records"])
        for kind, n in summary["skipped"].items():
            _count(f"skipped: {kind}", n)
        yield beam.pvalue.TaggedOutput("reading", (index, summary))


def _clean(item: tuple[int, list[str]], cleaning: CleaningConfig) -> tuple[int, list[str]]:
    doc_id, lines = item
    kept = clean_document(lines, cleaning)
    _count("lines", len(lines))
    _count("empty after cleaning", len(lines) - len(kept))
    return doc_id, kept


def _keep_first(item: tuple[int, dict]):
    doc_id, joined = item
    keep = set(joined["keep"])
    for lines in joined["lines"]:  # one per document id
        kept = [text for i, text in enumerate(lines) if i in keep]
        _count("duplicates", len(lines) - len(kept))
        yield doc_id, kept


class DropDuplicateLines(beam.PTransform):
    """Of equal lines anywhere in the corpus keeps the first in (document id, line) order, the rule of the local
    path's `Deduplicator`: a combine on the lines' digests, joined back by document."""

    def expand(self, documents):
        firsts = (documents
                  | "Digests" >> beam.FlatMap(lambda d: ((line_digest(t), (d[0], i)) for i, t in enumerate(d[1])))
                  | "First" >> beam.CombinePerKey(min)
                  | "ByDocument" >> beam.Values())
        joined = {"lines": documents, "keep": firsts} | "Join" >> beam.CoGroupByKey()
        return joined | "Keep" >> beam.FlatMap(_keep_first)


class _Segment(beam.DoFn):
    """`(document id, lines)` → `(document id, sentences)` for documents with a sentence; spaCy once per worker."""

    def __init__(self, spacy: Optional[SpacyConfig]) -> None:
        # One process per worker: the runner decides how many workers there are.
        self.spacy = dataclasses.replace(spacy or SpacyConfig(), n_process=1)

    def setup(self) -> None:
        self.segmenter = SpacyPass(self.spacy)

    def process(self, item: tuple[int, list[str]]):
        doc_id, lines = item
        sentences = [s for sents in self.segmenter.sentences(lines) for s in sents]
        if sentences:
            _count("documents")
            _count("sentences", len(sentences))
            _count("words", word_count(sentences))
            yield doc_id, sentences


class SentenceDocuments(beam.PTransform):
    """Input files → `{"documents": (document id, sentences), "reading": (input index, reading summary)}`:
    read, clean, de-duplicate and sentence-segment, as `tfpipe.text.corpus.iter_identified_documents`."""

    def __init__(self, paths: Sequence[str], reader: ReaderConfig, cleaning: CleaningConfig,
                 spacy: Optional[SpacyConfig]) -> None:
        super().__init__()
        self.paths, self.reader, self.cleaning, self.spacy = list(paths), reader, cleaning, spacy

    def expand(self, pbegin):
        read = (pbegin | "Inputs" >> beam.Create(list(enumerate(self.paths)))
                | "Read" >> beam.ParDo(_ReadFiles(self.reader)).with_outputs("reading", main="documents"))
        docs = read.documents | "Spread" >> beam.Reshuffle() | "Clean" >> beam.Map(_clean, self.cleaning)
        if self.cleaning.dedupe:
            docs = docs | "Dedupe" >> DropDuplicateLines()
        return {"documents": docs | "Segment" >> beam.ParDo(_Segment(self.spacy)), "reading": read.reading}


def _write_reading(summaries: list, scratch: str) -> None:
    files.write_json(files.join(scratch, _READING), sorted(summaries))


def _reading(scratch: str) -> list[tuple[int, dict]]:
    return files.read_json(files.join(scratch, _READING))


class WriteCorpusShards(beam.PTransform):
    """`(document id, sentences)` → the shard files `names` in `scratch`, each its documents in id order, and a
    `NAME.json` with its document count beside each."""

    def __init__(self, scratch: str, names: Sequence[str]) -> None:
        super().__init__()
        self.scratch, self.names = scratch, list(names)

    def expand(self, documents):
        return (documents | "ToShard" >> beam.Map(lambda d, n: (shard_of(d[0], n), d), len(self.names))
                | "GroupShards" >> beam.GroupByKey()
                | "WriteShards" >> beam.Map(_write_corpus_shard, self.scratch, self.names))


def _write_corpus_shard(item: tuple[int, Iterable[tuple]], scratch: str, names: list[str]) -> int:
    shard, documents = item
    documents = sorted(documents, key=lambda d: d[0])
    path = files.join(scratch, names[shard])
    files.write_bytes(path, "\n".join(document_text(s) for _, s in documents).encode("utf-8"))
    files.write_json(path + ".json", {"documents": len(documents)})
    return shard


class CountWords(beam.PTransform):
    """Texts → `(word, count)` over the corpus: the runtime pre-split per batch (`word_counter`) on each
    worker, summed by a combine."""

    def __init__(self, lowercase: bool = True, batch_size: int = 1024) -> None:
        super().__init__()
        self.lowercase, self.batch_size = lowercase, batch_size

    def expand(self, texts):
        return (texts | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=self.batch_size)
                | "Count" >> beam.ParDo(_CountBatch(self.lowercase)) | "Sum" >> beam.CombinePerKey(sum))


class _CountBatch(beam.DoFn):
    def __init__(self, lowercase: bool) -> None:
        self.lowercase = lowercase

    def setup(self) -> None:
        self.count = word_counter(self.lowercase)

    def process(self, batch: list[str]):
        counts = self.count(batch)
        _count("texts", len(batch))
        _count("words", sum(counts.values()))
        yield from counts.items()


@functools.lru_cache(maxsize=2)
def _worker_tokenizer(vocab: tuple[str, ...], lowercase: bool, max_chars: int) -> WordPieceTokenizer:
    # One tokenizer (and traced graph) per worker process, for every DoFn that needs it.
    return WordPieceTokenizer(list(vocab), lowercase, max_chars)


class _WithMaker(beam.DoFn):
    """A DoFn holding the vocabulary; the TensorFlow tokenizer and the `InstanceMaker` are built once per worker."""

    def __init__(self, tokenizer: WordPieceTokenizer, config: PretrainingConfig) -> None:
        self.vocab, self.lowercase = list(tokenizer.vocabulary), tokenizer.lowercase
        self.max_chars, self.config = tokenizer.max_chars_per_word, config

    def setup(self) -> None:
        self.tokenizer = _worker_tokenizer(tuple(self.vocab), self.lowercase, self.max_chars)
        self.maker = InstanceMaker(self.tokenizer, self.config)

    def _record(self, instance):
        _count("instances")
        return instance_record(instance, self.config)


class _Tokenize(_WithMaker):
    def process(self, batch: list[tuple[int, list[str]]]):
        for doc_id, tokens in tokenize_documents(batch, self.tokenizer):
            _count("documents tokenized")
            yield doc_id, tokens


class _PlanPairs(_WithMaker):
    """Pairs of each document and dupe round; actual-next ones are finished here, random-next ones go to the
    `random_next` output keyed by the id of the document their B comes from."""

    def process(self, item: tuple[int, list], ids: np.ndarray):
        doc_id, document = item
        position = int(np.searchsorted(ids, doc_id))
        for round in range(self.config.dupe_factor):
            for pair in self.maker.plan(doc_id, document, round):
                if pair.b is None:
                    other = int(ids[random_document(pair.key, position, len(ids))])
                    yield beam.pvalue.TaggedOutput("random_next", (other, pair))
                elif (instance := self.maker.finish(pair)) is not None:
                    yield self._record(instance)


class _FinishRandomNext(_WithMaker):
    def process(self, item: tuple[int, dict]):
        _, joined = item
        for document in joined["document"]:
            for pair in joined["pairs"]:
                instance = self.maker.finish(pair, random_segments(document, pair.key, pair.budget))
                if instance is not None:
                    yield self._record(instance)


class MakeInstances(beam.PTransform):
    """`(document id, sentences)` → `instance_record`s: tokenize, plan pairs by document, join random-next pairs
    with the document their B comes from (chosen over the sorted document ids, a side input), finish."""

    def __init__(self, tokenizer: WordPieceTokenizer, config: PretrainingConfig) -> None:
        super().__init__()
        self.tokenizer, self.config = tokenizer, config

    def expand(self, documents):
        tokenized = (documents | "BatchDocuments" >> beam.BatchElements(min_batch_size=1, max_batch_size=64)
                     | "Tokenize" >> beam.ParDo(_Tokenize(self.tokenizer, self.config)))
        ids = (tokenized | "Ids" >> beam.Keys() | "AllIds" >> beam.combiners.ToList()
               | "SortIds" >> beam.Map(lambda ids: np.array(sorted(ids), dtype=np.int64)))
        plan = beam.ParDo(_PlanPairs(self.tokenizer, self.config), beam.pvalue.AsSingleton(ids))
        planned = tokenized | "Plan" >> plan.with_outputs("random_next", main="done")
        finished = ({"document": tokenized, "pairs": planned.random_next} | "JoinRandomNext" >> beam.CoGroupByKey()
                    | "FinishRandomNext" >> beam.ParDo(_FinishRandomNext(self.tokenizer, self.config)))
        return (planned.done, finished) | "AllInstances" >> beam.Flatten()


class WriteTFRecordShards(beam.PTransform):
    """`instance_record`s → TFRecord shards in `scratch`, each its records sorted, with `NAME.json` beside each
    (its `STAT_KEYS` counts and sha256)."""

    def __init__(self, scratch: str, num_shards: int) -> None:
        super().__init__()
        self.scratch, self.num_shards = scratch, num_shards

    def expand(self, records):
        return (records | "ToShard" >> beam.Map(lambda r, n: (shard_of(r[1], n), r), self.num_shards)
                | "GroupShards" >> beam.GroupByKey()
                | "WriteShards" >> beam.Map(_write_tfrecord_shard, self.scratch, self.num_shards))


def _write_tfrecord_shard(item: tuple[int, Iterable[tuple]], scratch: str, num_shards: int) -> int:
    import tensorflow as tf

    shard, records = item
    name = shard_name(shard, num_shards)
    summary = {"file": name, **dict.fromkeys(STAT_KEYS, 0)}
    with tempfile.TemporaryDirectory(prefix="tfpipe-shard-") as folder:
        local = os.path.join(folder, name)
        with tf.io.TFRecordWriter(local) as writer:  # the local path's writer: the same bytes
            for record in sorted(records):
                writer.write(record[2])
                add_record(summary, record)
        summary["sha256"] = sha256_file(local)
        files.copy_in(local, files.join(scratch, name))
    files.write_json(files.join(scratch, name + ".json"), summary)
    return shard


# === The three stages ===

def _shard_summaries(scratch: str, names: Sequence[str], empty: dict) -> list[dict]:
    """Each shard's `NAME.json`; a shard no record went to is written empty, as the local path leaves it."""
    out = []
    for name in names:
        path = files.join(scratch, name)
        if files.exists(path + ".json"):
            out.append(files.read_json(path + ".json"))
        else:
            files.write_bytes(path, b"")
            out.append({"file": name, **empty})
    return out


def prepare_corpus_beam(
    paths: Sequence[str | Path],
    output: str | Path,
    reader: Optional[ReaderConfig] = None,
    cleaning: Optional[CleaningConfig] = None,
    spacy: Optional[SpacyConfig] = None,
    progress: bool = False,
    num_shards: int = 1,
    runner: str = "direct",
    options: Sequence[str] = (),
) -> CorpusStats:
    """`tfpipe.text.corpus.prepare_corpus` as a Beam pipeline on `runner`: the same files, byte for byte."""
    reader, cleaning = reader or ReaderConfig(), cleaning or CleaningConfig()
    paths = files.expand_inputs(paths)
    folder, name = files.split(output)
    names = corpus_shard_names(name, num_shards)
    pipeline = beam.Pipeline(options=pipeline_options(runner, options))
    scratch = files.make_scratch(folder)
    try:
        corpus = pipeline | "Corpus" >> SentenceDocuments(paths, reader, cleaning, spacy)
        _ = (corpus["reading"] | "AllReading" >> beam.combiners.ToList()
             | "WriteReading" >> beam.Map(_write_reading, scratch))
        _ = corpus["documents"] | "Write" >> WriteCorpusShards(scratch, names)
        counters = _run(pipeline, progress)
        reading = merge_reading([summary for _, summary in _reading(scratch)])
        shards = _shard_summaries(scratch, names, {"documents": 0})
        stats = CorpusStats(**{key: counters.get(key.replace("_", " "), 0) for key in (
            "documents", "lines", "sentences", "words", "duplicates", "empty_after_cleaning")},
            notes=dict(reading["notes"]), reading=reading)
        files.publish(scratch, folder, names, (name + ".manifest.json", corpus_manifest(
            paths, name, stats, [s["documents"] for s in shards], num_shards)))
    finally:
        files.remove(scratch)
    return stats


def build_vocabulary_beam(
    paths: Sequence[str | Path],
    config: Optional[VocabConfig] = None,
    reader: Optional[ReaderConfig] = None,
    cleaning: Optional[CleaningConfig] = None,
    task: str = "classification",
    lowercase: bool = True,
    progress: bool = False,
    runner: str = "direct",
    options: Sequence[str] = (),
    reading: Optional[dict] = None,
) -> list[str]:
    """`tfpipe.text.vocab.build_vocabulary` over the texts of `paths` (as `tfpipe.text.vocab.iter_texts` reads
    them): word counts as a Beam combine on `runner`, the WordPiece learning from them here. `reading[path]` gets
    each file's reading summary. The counts pass through `temp_location` (a pipeline option) or a local temp."""
    config, reader, cleaning = config or VocabConfig(), reader or ReaderConfig(), cleaning or CleaningConfig()
    paths = files.expand_inputs(paths)
    beam_options = pipeline_options(runner, options)
    pipeline = beam.Pipeline(options=beam_options)
    scratch = files.make_scratch(beam_options.view_as(GoogleCloudOptions).temp_location or tempfile.gettempdir())
    try:
        read = (pipeline | "Inputs" >> beam.Create(list(enumerate(paths)))
                | "Read" >> beam.ParDo(_ReadFiles(reader, cleaning, task)).with_outputs("reading", main="texts"))
        _ = read.reading | "AllReading" >> beam.combiners.ToList() | "WriteReading" >> beam.Map(_write_reading, scratch)
        _ = (read.texts | "Words" >> CountWords(lowercase, config.batch_size)
             | "WriteCounts" >> beam.Map(lambda kv: f"{kv[1]}\t{kv[0]}")
             | "ToText" >> beam.io.WriteToText(files.join(scratch, "counts"), file_name_suffix=".tsv"))
        _run(pipeline, progress)
        counts: Counter = Counter()
        for path in files.glob(files.join(scratch, "counts*")):
            for line in filter(None, files.read_bytes(path).decode("utf-8").split("\n")):  # words hold no "\n"
                count, word = line.split("\t", 1)
                counts[word] += int(count)
        for index, summary in _reading(scratch):
            if reading is not None:
                reading[paths[index]] = summary
    finally:
        files.remove(scratch)
    return learn_vocabulary(counts, config)


def create_pretraining_data_beam(
    inputs: Sequence[str | Path],
    tokenizer: WordPieceTokenizer,
    output_dir: str | Path,
    config: Optional[PretrainingConfig] = None,
    reader: Optional[ReaderConfig] = None,
    cleaning: Optional[CleaningConfig] = None,
    spacy: Optional[SpacyConfig] = None,
    progress: bool = False,
    runner: str = "direct",
    options: Sequence[str] = (),
) -> dict:
    """`tfpipe.data.pretraining_data.create_pretraining_data` as a Beam pipeline on `runner`: the same shards and
    manifest, byte for byte; the manifest's corpus counts are the pipeline's counters."""
    config, reader, cleaning = config or PretrainingConfig(), reader or ReaderConfig(), cleaning or CleaningConfig()
    check_config(config)
    paths, folder = files.expand_inputs(inputs), str(output_dir)
    names = [shard_name(i, config.num_shards) for i in range(config.num_shards)]
    pipeline = beam.Pipeline(options=pipeline_options(runner, options))
    scratch = files.make_scratch(folder)
    try:
        corpus = pipeline | "Corpus" >> SentenceDocuments(paths, reader, cleaning, spacy)
        _ = (corpus["reading"] | "AllReading" >> beam.combiners.ToList()
             | "WriteReading" >> beam.Map(_write_reading, scratch))
        _ = (corpus["documents"] | "Instances" >> MakeInstances(tokenizer, config)
             | "Write" >> WriteTFRecordShards(scratch, config.num_shards))
        counters = _run(pipeline, progress)
        if not counters.get("documents tokenized"):
            raise ValueError(f"no sentences in {', '.join(map(str, inputs))} after cleaning: nothing to write")
        shards = _shard_summaries(scratch, names, {**dict.fromkeys(STAT_KEYS, 0), "sha256": files.EMPTY_SHA256})
        reading = merge_reading([summary for _, summary in _reading(scratch)])
        manifest = pretraining_manifest(paths, tokenizer, config, reader, shards, corpus_section(
            counters.get("documents", 0), counters.get("sentences", 0), counters.get("duplicates", 0), reading))
        files.publish(scratch, folder, names, (MANIFEST, manifest))
    finally:
        files.remove(scratch)
    if counters.get("instances", 0) != manifest["num_instances"]:  # attempted counts: retried bundles count twice
        print(f"note: the runner counted {counters.get('instances', 0)} instances, the shards hold "
              f"{manifest['num_instances']}", file=sys.stderr)
    return manifest
