"""tf.data input pipelines: pretraining TFRecords and fine-tuning records to padded, batched model inputs.

Model inputs are `input_word_ids`, `input_mask`, `input_type_ids` (int32 `[batch, seq]`). Tokenization runs
in-graph with the same `WordPieceTokenizer` that exports embed. Fine-tuning batches are padded per batch, or
to fixed bucket lengths with `bucket_boundaries` (short texts padded to 128 waste most of the compute).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import keras_hub
import tensorflow as tf

from tfpipe.config.schemas import PipelineConfig
from tfpipe.config.tasks import get_task
from tfpipe.data.labels import IGNORE_INDEX
from tfpipe.data.pretraining_data import read_manifest
from tfpipe.text.labels import LabelVocab
from tfpipe.text.readers import Record, TokenRecord
from tfpipe.text.tokenizer import MODEL_INPUTS, WordPieceTokenizer

AUTOTUNE = tf.data.AUTOTUNE
# The functions mapped here are plain TensorFlow ops with Python-level branching only; AutoGraph's source
# transformation of them (and of the tokenizer they call) cost ~4 s per dataset, more than tokenizing SST-2 dev.
_graph = tf.autograph.experimental.do_not_convert


def with_ignore_weights(ds: tf.data.Dataset) -> tf.data.Dataset:
    """`(x, labels)` with IGNORE_INDEX → `(x, labels, weights)`: ignored positions get label 0 and weight 0."""

    def split(features, labels):
        keep = tf.not_equal(labels, IGNORE_INDEX)
        return features, tf.where(keep, labels, 0), tf.cast(keep, tf.float32)

    return ds.map(_graph(split), num_parallel_calls=AUTOTUNE)


# --- Pretraining -------------------------------------------------------------------------------------------

def _pretraining_parser(manifest: dict):
    seq, preds = manifest["max_seq_length"], manifest["max_predictions_per_seq"]
    spec = {name: tf.io.FixedLenFeature([seq], tf.int64) for name in MODEL_INPUTS}
    spec.update({
        "masked_lm_positions": tf.io.FixedLenFeature([preds], tf.int64),
        "masked_lm_ids": tf.io.FixedLenFeature([preds], tf.int64),
        "masked_lm_weights": tf.io.FixedLenFeature([preds], tf.float32),
        "next_sentence_labels": tf.io.FixedLenFeature([1], tf.int64),
    })

    def parse(serialized):
        parsed = tf.io.parse_example(serialized, spec)
        return {k: (tf.cast(v, tf.int32) if v.dtype == tf.int64 else v) for k, v in parsed.items()}

    return parse


def _dynamic_masker(tokenizer: WordPieceTokenizer, manifest: dict, rate: float):
    """Re-masks every batch with keras-hub's `MaskedLMMaskGenerator` (RoBERTa-style dynamic masking)."""
    generator = keras_hub.layers.MaskedLMMaskGenerator(
        vocabulary_size=tokenizer.vocabulary_size,
        mask_selection_rate=rate,
        mask_token_id=tokenizer.mask_id,
        mask_selection_length=manifest["max_predictions_per_seq"],
        unselectable_token_ids=[tokenizer.pad_id, tokenizer.cls_id, tokenizer.sep_id],
        mask_token_rate=0.8,
        random_token_rate=0.1,
    )

    def remask(features):
        # Restore the original ids at the statically masked positions, then draw new masks.
        ids = features["input_word_ids"]
        positions = features["masked_lm_positions"]
        batch = tf.shape(ids)[0]
        rows = tf.repeat(tf.range(batch)[:, None], tf.shape(positions)[1], axis=1)
        keep = features["masked_lm_weights"] > 0
        indices = tf.stack([tf.boolean_mask(rows, keep), tf.boolean_mask(positions, keep)], axis=1)
        original = tf.tensor_scatter_nd_update(ids, indices, tf.boolean_mask(features["masked_lm_ids"], keep))
        masked = generator(original)
        out = dict(features)
        out["input_word_ids"] = tf.cast(masked["token_ids"], tf.int32)
        out["masked_lm_positions"] = tf.cast(masked["mask_positions"], tf.int32)
        out["masked_lm_ids"] = tf.cast(masked["mask_ids"], tf.int32)
        out["masked_lm_weights"] = tf.cast(masked["mask_weights"], tf.float32)
        return out

    return remask


def pretraining_dataset(
    data_dir: str | Path,
    batch_size: int,
    seed: int = 0,
    shuffle_buffer: int = 10_000,
    repeat: bool = True,
    dynamic_masking: bool = False,
    tokenizer: Optional[WordPieceTokenizer] = None,
    masked_lm_prob: float = 0.15,
) -> tf.data.Dataset:
    """Batches of every pretraining feature from the shards listed in `data_dir/manifest.json`.

    Shards are interleaved in a seeded order; the same seed gives the same batches.
    """
    manifest = read_manifest(data_dir)
    files = [str(Path(data_dir) / shard["file"]) for shard in manifest["shards"]]
    missing = [f for f in files if not Path(f).is_file()]
    if missing:
        raise FileNotFoundError(f"shards listed in the manifest are missing: {missing}")
    ds = tf.data.Dataset.from_tensor_slices(files).shuffle(len(files), seed=seed)
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(len(files), 8),
                       num_parallel_calls=AUTOTUNE, deterministic=True)
    if repeat:
        ds = ds.repeat()
    if shuffle_buffer:
        ds = ds.shuffle(shuffle_buffer, seed=seed)
    ds = ds.batch(batch_size, drop_remainder=repeat)
    ds = ds.map(_graph(_pretraining_parser(manifest)), num_parallel_calls=AUTOTUNE)
    if dynamic_masking:
        if tokenizer is None:
            raise ValueError("dynamic masking needs the tokenizer (for the [MASK] id and vocabulary size)")
        if tokenizer.hash != manifest["vocab"]["sha256"]:
            raise ValueError(f"the vocabulary does not match the one {data_dir} was made with")
        ds = ds.map(_graph(_dynamic_masker(tokenizer, manifest, masked_lm_prob)), num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)


# --- Fine-tuning -------------------------------------------------------------------------------------------

def _encode_texts(tokenizer, labels, target, max_length, has_pair):
    table = labels.lookup_table() if labels is not None and target == "class" else None

    def encode(batch):
        ids, types = tokenizer.encode(batch["text"], batch["text_pair"] if has_pair else None, max_length)
        features = {"input_word_ids": ids, "input_mask": tf.ones_like(ids), "input_type_ids": types}
        if "label" not in batch:
            return features
        if target == "number":
            return features, tf.strings.to_number(batch["label"], tf.float32)
        return features, tf.cast(table.lookup(batch["label"]), tf.int32)

    return encode


def _encode_words(tokenizer: WordPieceTokenizer, labels: Optional[LabelVocab], max_length: int):
    """Words → pieces with each word's tag on its first piece; other pieces and specials get IGNORE_INDEX."""
    table = labels.lookup_table() if labels is not None else None
    budget = max_length - 2

    def encode(batch):
        pieces = tokenizer.word_pieces(batch["words"])  # [batch, words, pieces], at least one per word
        per_word = pieces.values  # [all words, pieces]
        is_first = tf.equal(tf.ragged.range(per_word.row_lengths()), 0)
        ids = pieces.merge_dims(1, 2)[:, :budget]
        ids, types = tokenizer.pack([ids])
        features = {"input_word_ids": ids, "input_mask": tf.ones_like(ids), "input_type_ids": types}
        if "tags" not in batch:
            return features
        tag_ids = tf.cast(table.lookup(batch["tags"].flat_values), tf.int32)
        per_piece = tf.gather(tag_ids, per_word.value_rowids())
        target = tf.where(is_first.flat_values, per_piece, IGNORE_INDEX)
        target = pieces.with_values(per_word.with_flat_values(target)).merge_dims(1, 2)[:, :budget]
        ignore = tf.RaggedTensor.from_tensor(tf.fill([target.nrows(), 1], IGNORE_INDEX))
        return features, tf.concat([ignore, target, ignore], axis=1)

    return encode


def _dense(*element):
    """Unbatched ragged rows are 1-D; make them plain tensors so `padded_batch` accepts them."""
    out = tf.nest.map_structure(lambda t: t.to_tensor() if isinstance(t, tf.RaggedTensor) else t, element)
    return out if len(out) > 1 else out[0]


def _slices(records: Sequence[Record | TokenRecord], target: str) -> tuple[dict, bool]:
    if target == "tags":
        data = {"words": tf.ragged.constant([r.words for r in records], dtype=tf.string)}
        if all(r.tags is not None for r in records):
            data["tags"] = tf.ragged.constant([r.tags for r in records], dtype=tf.string)
        return data, False
    data = {"text": tf.constant([r.text for r in records])}
    has_pair = any(r.text_pair is not None for r in records)
    if has_pair:
        data["text_pair"] = tf.constant([r.text_pair or "" for r in records])
    if all(r.label is not None for r in records):
        data["label"] = tf.constant([r.label for r in records])
    return data, has_pair


def _length_sorted_batches(ds: tf.data.Dataset, config: PipelineConfig, padding, bounds: list[int],
                           drop_remainder: bool) -> tf.data.Dataset:
    """Batches cut from windows of `sort_window` batches' worth of (shuffled) examples sorted by length; the
    full batches of each window come out in a seeded random order (a partial last batch stays last).

    Each batch is padded to its own longest sequence (or the next bucket boundary), so almost nothing is padding:
    on SST-2, 1.05x the real tokens against 1.6x for buckets 16/32/48/64 and 3x for padding per random batch.
    """
    batch = config.batch_size

    def features(element):
        return element[0] if isinstance(element, tuple) else element

    def whole(function):  # tf.data unpacks tuple elements into arguments; give the functions the element
        return _graph(lambda *parts: function(parts if len(parts) > 1 else parts[0]))

    def sort(index, window):
        lengths = tf.reduce_sum(features(window)["input_mask"], axis=1)
        n = tf.shape(lengths)[0]
        full, blocks = n // batch, (n + batch - 1) // batch
        shuffled = tf.argsort(tf.random.stateless_uniform([full], tf.stack([tf.cast(config.seed, tf.int64), index])))
        rank = tf.concat([shuffled, tf.range(full, blocks)], axis=0)
        position = tf.range(n)
        key = tf.gather(rank, position // batch) * batch + position % batch
        order = tf.gather(tf.argsort(lengths, stable=True), tf.argsort(key))
        return tf.nest.map_structure(lambda t: tf.gather(t, order), window)

    def cut(window):
        return tf.data.Dataset.from_tensor_slices(window).batch(batch, drop_remainder=drop_remainder)

    def trim(element):
        length = tf.reduce_max(tf.reduce_sum(features(element)["input_mask"], axis=1))
        if bounds:  # up to the next boundary (it exists: the last one is max_seq_length)
            length = tf.gather(bounds, tf.searchsorted(tf.constant(bounds), [length])[0])

        def fit(t, pad):
            if t.shape.rank != 2:
                return t
            t = t[:, :length]
            return tf.pad(t, [[0, 0], [0, length - tf.shape(t)[1]]], constant_values=tf.cast(pad, t.dtype))

        return tf.nest.map_structure(fit, element, padding)

    ds = ds.padded_batch(batch * config.sort_window, padding_values=padding).enumerate()
    ds = ds.map(_graph(sort), num_parallel_calls=AUTOTUNE).flat_map(whole(cut))
    return ds.map(whole(trim), num_parallel_calls=AUTOTUNE)


TARGETS = ("class", "number", "tags")  # the label encodings this pipeline has


def _target(task: str) -> str:
    target = getattr(get_task(task), "target", None)
    if target not in TARGETS:
        raise ValueError(f"task {task!r} does not read through the text/word pipeline (its target is {target!r}; "
                         f"this pipeline encodes {', '.join(TARGETS)})")
    return target


def finetune_dataset(
    records: Sequence[Record | TokenRecord],
    tokenizer: WordPieceTokenizer,
    task: str,
    labels: Optional[LabelVocab] = None,
    config: Optional[PipelineConfig] = None,
    training: bool = False,
    repeat: bool = False,
    fixed_length: bool = False,
) -> tf.data.Dataset:
    """Batches of `(features, labels)` (features only when the records carry no labels), for a task whose `target`
    is `"class"` (label ids), `"number"` (float targets) or `"tags"` (a tag id per word's first piece).

    With `repeat`, the examples stream endlessly (reshuffled each pass) and batches form across pass boundaries,
    so every batch is full and `ceil(len(records) / batch_size)` batches make one epoch. `fixed_length` pads
    every batch to `max_seq_length` (multi-worker training needs equal shapes on every worker).

    Training datasets are shuffled with `config.seed`; evaluation keeps the input order. Sequences are
    trimmed to `config.max_seq_length` (longest segment first for pairs) and padded per batch, or to the
    next of `config.bucket_boundaries`. With `config.sort_window` > 1, training batches are cut from windows
    of that many batches sorted by length (see `_length_sorted_batches`).
    """
    config = config or PipelineConfig()
    target = _target(task)
    if not records:
        raise ValueError("no records to build a dataset from")
    if labels is None and ((target == "class" and records[0].label is not None) or
                           (target == "tags" and records[0].tags is not None)):
        raise ValueError("labelled records need a LabelVocab (LabelVocab.from_records(train_records))")
    data, has_pair = _slices(records, target)
    if target == "tags":
        encode = _encode_words(tokenizer, labels, config.max_seq_length)
    else:
        encode = _encode_texts(tokenizer, labels, target, config.max_seq_length, has_pair)
    ds = tf.data.Dataset.from_tensor_slices(data)
    # Tokenize in batches (cheaper than per example), then unbatch to per-example tensors for bucketing.
    ds = ds.batch(256).map(_graph(encode), num_parallel_calls=AUTOTUNE).unbatch()
    ds = ds.map(_graph(_dense), num_parallel_calls=AUTOTUNE)
    if config.cache:
        ds = ds.cache()
    if training and config.shuffle_buffer:
        ds = ds.shuffle(config.shuffle_buffer, seed=config.seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    labelled = "label" in data or "tags" in data
    pad_values = {"input_word_ids": tokenizer.pad_id, "input_mask": 0, "input_type_ids": 0}
    if labelled:
        target_pad = tf.constant(0.0) if target == "number" else tf.constant(IGNORE_INDEX, tf.int32)
        padding = (pad_values, target_pad)
    else:
        padding = pad_values
    bounds = sorted(set(config.bucket_boundaries) | {config.max_seq_length}) if config.bucket_boundaries else []
    if training and config.sort_window > 1 and not fixed_length:
        ds = _length_sorted_batches(ds, config, padding, bounds, drop_remainder=repeat)
    elif bounds and not fixed_length:

        def length(*element):
            return tf.shape(element[0]["input_word_ids"])[0]

        ds = ds.bucket_by_sequence_length(
            length, [b + 1 for b in bounds], [config.batch_size] * (len(bounds) + 1),
            padding_values=padding, pad_to_bucket_boundary=True, drop_remainder=repeat)
    elif fixed_length:
        features_shape = {name: [config.max_seq_length] for name in MODEL_INPUTS}
        target_shape = [config.max_seq_length] if target == "tags" else []
        shapes = (features_shape, target_shape) if labelled else features_shape
        ds = ds.padded_batch(config.batch_size, padded_shapes=shapes, padding_values=padding,
                             drop_remainder=repeat)
    else:
        ds = ds.padded_batch(config.batch_size, padding_values=padding, drop_remainder=repeat)
    return ds.prefetch(AUTOTUNE)
