"""`create-pretraining-data`: corpus files → spaCy sentences → masked pairs → TFRecord shards + manifest.json.

Same inputs and seed give byte-identical shards and manifest: one `random.Random(seed)`, deterministic proto
serialization, no timestamps or absolute paths in the manifest.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from pathlib import Path
from typing import Optional, Sequence

import tensorflow as tf
from tqdm import tqdm

from tfpipe.config.schemas import CleaningConfig, PretrainingConfig, ReaderConfig, SpacyConfig
from tfpipe.data.pretraining_examples import FEATURE_NAMES, InstanceMaker, to_example, tokenize_documents
from tfpipe.text.corpus import CorpusStats, iter_sentence_documents
from tfpipe.text.tokenizer import WordPieceTokenizer

MANIFEST = "manifest.json"


def shard_name(index: int, count: int) -> str:
    return f"pretrain-{index:05d}-of-{count:05d}.tfrecord"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
    if config.max_predictions_per_seq > config.max_seq_length:
        raise ValueError("pretraining.max_predictions_per_seq cannot exceed pretraining.max_seq_length")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    corpus = CorpusStats()
    documents = tokenize_documents(iter_sentence_documents(inputs, reader, cleaning, spacy, corpus, progress),
                                   tokenizer)
    if not documents:
        raise ValueError(f"no sentences in {', '.join(map(str, inputs))} after cleaning: nothing to write")
    rng = random.Random(config.seed)
    maker = InstanceMaker(tokenizer, config, rng)
    paths = [output_dir / shard_name(i, config.num_shards) for i in range(config.num_shards)]
    partial = [p.with_name(p.name + ".partial") for p in paths]
    writers = [tf.io.TFRecordWriter(str(p)) for p in partial]
    counts = [0] * config.num_shards
    stats = {"instances": 0, "tokens": 0, "maskable_tokens": 0, "masked_tokens": 0, "random_next": 0}
    written = 0
    bar = tqdm(total=config.dupe_factor * len(documents), desc="pretraining instances", unit="doc",
               disable=not progress, mininterval=1.0)
    try:
        for _ in range(config.dupe_factor):
            # One dupe round at a time is shuffled and written, which bounds memory to one pass's instances.
            instances = []
            for index in range(len(documents)):
                instances.extend(maker.from_document(documents, index))
                bar.update(1)
            rng.shuffle(instances)
            for instance in instances:
                shard = written % config.num_shards
                writers[shard].write(to_example(instance, config.max_seq_length, config.max_predictions_per_seq))
                counts[shard] += 1
                written += 1
                stats["tokens"] += len(instance.tokens)
                stats["maskable_tokens"] += len(instance.tokens) - 3
                stats["masked_tokens"] += len(instance.masked_positions)
                stats["random_next"] += instance.is_random_next
    finally:
        bar.close()
        for writer in writers:
            writer.close()
    for tmp, final in zip(partial, paths):
        tmp.replace(final)
    stats["instances"] = written
    manifest = {
        "format": "tfpipe.pretraining/v1",
        "features": {name: ("float32" if name == "masked_lm_weights" else "int64") for name in FEATURE_NAMES},
        "max_seq_length": config.max_seq_length,
        "max_predictions_per_seq": config.max_predictions_per_seq,
        "num_instances": written,
        "shards": [{"file": p.name, "num_instances": c, "sha256": _sha256(p)} for p, c in zip(paths, counts)],
        "vocab": {"size": tokenizer.vocabulary_size, "sha256": tokenizer.hash, "lowercase": tokenizer.lowercase},
        "inputs": [Path(p).name for p in inputs],
        "config": {"pretraining": dataclasses.asdict(config),
                   "reader": {"doc_boundary_regex": reader.doc_boundary_regex, "drop_regex": reader.drop_regex}},
        "corpus": {"documents": corpus.documents, "sentences": corpus.sentences, "duplicates": corpus.duplicates},
        "stats": {
            **stats,
            "masked_fraction": stats["masked_tokens"] / max(1, stats["maskable_tokens"]),
            "random_next_fraction": stats["random_next"] / max(1, written),
        },
    }
    (output_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def read_manifest(data_dir: str | Path) -> dict:
    path = Path(data_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no manifest; is {data_dir} the output of create-pretraining-data?")
    return json.loads(path.read_text(encoding="utf-8"))
