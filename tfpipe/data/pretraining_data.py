"""`create-pretraining-data`: corpus files → spaCy sentences → masked pairs → TFRecord shards + manifest.json.

Same inputs and seed give byte-identical shards and manifest, here or on any Beam runner with any number of
workers (`tfpipe.data.beam_pipelines`): randomness is keyed by document and pair (`pretraining_examples`), every
instance goes to the shard its key hashes to, a shard holds its records sorted by (dupe round, key), proto
serialization is deterministic, and the manifest has no timestamps or absolute paths.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Optional, Sequence

import tensorflow as tf
from tqdm import tqdm

from tfpipe.config.atomic import atomic_path, write_json_atomic
from tfpipe.config.schemas import CleaningConfig, PretrainingConfig, ReaderConfig, SpacyConfig
from tfpipe.data.pretraining_examples import FEATURE_NAMES, Instance, InstanceMaker, to_example, tokenize_documents
from tfpipe.text.corpus import CorpusStats, iter_identified_documents
from tfpipe.text.keys import shard_of
from tfpipe.text.tokenizer import WordPieceTokenizer

MANIFEST = "manifest.json"
STAT_KEYS = ("instances", "tokens", "maskable_tokens", "masked_tokens", "random_next")


def shard_name(index: int, count: int) -> str:
    return f"pretrain-{index:05d}-of-{count:05d}.tfrecord"


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_config(config: PretrainingConfig) -> None:
    if config.max_predictions_per_seq > config.max_seq_length:
        raise ValueError("pretraining.max_predictions_per_seq cannot exceed pretraining.max_seq_length")


def instance_record(instance: Instance, config: PretrainingConfig) -> tuple[int, int, bytes, int, int, int]:
    """`(round, key, serialized example, tokens, masked tokens, random next)`. A shard holds its records sorted,
    which the first three decide, and `shard_of(key)` says which shard."""
    return (instance.round, instance.key, to_example(instance, config.max_seq_length, config.max_predictions_per_seq),
            len(instance.tokens), len(instance.masked_positions), int(instance.is_random_next))


def add_record(stats: dict, record: tuple) -> None:
    """Counts a record into `stats` (keys `STAT_KEYS`)."""
    _, _, _, tokens, masked, random_next = record
    stats["instances"] += 1
    stats["tokens"] += tokens
    stats["maskable_tokens"] += tokens - 3  # [CLS] and two [SEP]
    stats["masked_tokens"] += masked
    stats["random_next"] += random_next


def corpus_section(documents: int, sentences: int, duplicates: int, reading: dict) -> dict:
    # counts only: the errors themselves name absolute paths, which a manifest never holds
    return {"documents": documents, "sentences": sentences, "duplicates": duplicates,
            "reading": {k: v for k, v in reading.items() if k != "first_errors"}}


def pretraining_manifest(inputs: Sequence[str | Path], tokenizer: WordPieceTokenizer, config: PretrainingConfig,
                         reader: ReaderConfig, shards: list[dict], corpus: dict) -> dict:
    """`manifest.json` from the shards (`file`, `sha256` and their `STAT_KEYS` counts) and the corpus counts."""
    stats = {key: sum(s[key] for s in shards) for key in STAT_KEYS}
    return {
        "format": "tfpipe.pretraining/v1",
        "features": {name: ("float32" if name == "masked_lm_weights" else "int64") for name in FEATURE_NAMES},
        "max_seq_length": config.max_seq_length,
        "max_predictions_per_seq": config.max_predictions_per_seq,
        "num_instances": stats["instances"],
        "shards": [{"file": s["file"], "num_instances": s["instances"], "sha256": s["sha256"]} for s in shards],
        "vocab": {"size": tokenizer.vocabulary_size, "sha256": tokenizer.hash, "lowercase": tokenizer.lowercase},
        "inputs": [Path(p).name for p in inputs],
        "config": {"pretraining": dataclasses.asdict(config),
                   "reader": {"doc_boundary_regex": reader.doc_boundary_regex, "drop_regex": reader.drop_regex}},
        "corpus": corpus,
        "stats": {
            **stats,
            "masked_fraction": stats["masked_tokens"] / max(1, stats["maskable_tokens"]),
            "random_next_fraction": stats["random_next"] / max(1, stats["instances"]),
        },
    }


def create_pretraining_data(
    inputs: Sequence[str | Path],
    tokenizer: WordPieceTokenizer,
    output_dir: str | Path,
    config: Optional[PretrainingConfig] = None,
    reader: Optional[ReaderConfig] = None,
    cleaning: Optional[CleaningConfig] = None,
    spacy: Optional[SpacyConfig] = None,
    progress: bool = False,
) -> dict:
    """Writes `pretrain-XXXXX-of-YYYYY.tfrecord` shards and `manifest.json`; returns the manifest."""
    config = config or PretrainingConfig()
    reader = reader or ReaderConfig()
    check_config(config)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    corpus = CorpusStats()
    documents = tokenize_documents(iter_identified_documents(inputs, reader, cleaning, spacy, corpus, progress),
                                   tokenizer)
    if not documents:
        raise ValueError(f"no sentences in {', '.join(map(str, inputs))} after cleaning: nothing to write")
    maker = InstanceMaker(tokenizer, config)
    paths = [output_dir / shard_name(i, config.num_shards) for i in range(config.num_shards)]
    shards = [{"file": p.name, **dict.fromkeys(STAT_KEYS, 0)} for p in paths]
    bar = tqdm(total=config.dupe_factor * len(documents), desc="pretraining instances", unit="doc",
               disable=not progress, mininterval=1.0)
    # Shards are renamed into place only once all are written; the manifest, written last, says they are whole.
    with contextlib.ExitStack() as stack:
        writers = [tf.io.TFRecordWriter(str(stack.enter_context(atomic_path(p)))) for p in paths]
        try:
            for round in range(config.dupe_factor):
                # A round's records are sorted and written before the next is made: memory holds one round.
                records = []
                for position in range(len(documents)):
                    records.extend(instance_record(i, config) for i in maker.from_documents(documents, position, round))
                    bar.update(1)
                records.sort()
                for record in records:
                    shard = shard_of(record[1], config.num_shards)
                    writers[shard].write(record[2])
                    add_record(shards[shard], record)
        finally:
            bar.close()
            for writer in writers:
                writer.close()
        (output_dir / MANIFEST).unlink(missing_ok=True)  # an old manifest must not list the new shards
    for shard, path in zip(shards, paths):
        shard["sha256"] = sha256_file(path)
    manifest = pretraining_manifest(inputs, tokenizer, config, reader, shards,
                                    corpus_section(corpus.documents, corpus.sentences, corpus.duplicates,
                                                   corpus.reading))
    write_json_atomic(output_dir / MANIFEST, manifest)
    return manifest


def read_manifest(data_dir: str | Path) -> dict:
    path = Path(data_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no manifest; is {data_dir} the output of create-pretraining-data?")
    return json.loads(path.read_text(encoding="utf-8"))
