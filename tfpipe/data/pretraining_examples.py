"""MLM+NSP pretraining examples: documents of sentences → masked sentence pairs → sharded TFRecords.

Follows BERT's recipe (target lengths with `short_seq_prob`, 80/10/10 masking, optional whole-word masking)
with one deliberate change: the random-next choice is an unbiased coin for every instance. A chunk with one
segment that draws "actual next" is split inside that segment, instead of being forced to random-next as
Google's script does (which drifts to ~60% random-next on short documents).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

import numpy as np
import tensorflow as tf

from tfpipe.config.schemas import PretrainingConfig
from tfpipe.text.tokenizer import WordPieceTokenizer

# Model Garden v2 feature names, shared with the pretraining tf.data pipeline.
FEATURE_NAMES = ("input_word_ids", "input_mask", "input_type_ids", "masked_lm_positions", "masked_lm_ids",
                 "masked_lm_weights", "next_sentence_labels")


@dataclass
class Instance:
    tokens: list[int]  # with [CLS]/[SEP] and masks applied
    segment_ids: list[int]
    is_random_next: bool
    masked_positions: list[int]
    masked_ids: list[int]  # the original ids at masked_positions


def tokenize_documents(
    documents: Iterable[list[str]], tokenizer: WordPieceTokenizer, batch_sentences: int = 4096
) -> list[list[np.ndarray]]:
    """Tokenizes every sentence in batches through the in-graph tokenizer; drops sentences with no tokens."""
    encode = tf.function(lambda t: tokenizer.tokenize(t), input_signature=[tf.TensorSpec([None], tf.string)])
    docs: list[list[np.ndarray]] = []
    pending: list[tuple[int, str]] = []

    def flush() -> None:
        ragged = encode(tf.constant([s for _, s in pending]))
        values, splits = ragged.flat_values.numpy(), ragged.row_splits.numpy()
        for (doc, _), start, end in zip(pending, splits[:-1], splits[1:]):
            if end > start:
                docs[doc].append(values[start:end])
        pending.clear()

    for sentences in documents:
        docs.append([])
        pending.extend((len(docs) - 1, s) for s in sentences)
        if len(pending) >= batch_sentences:
            flush()
    if pending:
        flush()
    return [d for d in docs if d]


class InstanceMaker:
    """Turns tokenized documents into masked `Instance`s with one `random.Random` for reproducibility."""

    def __init__(self, tokenizer: WordPieceTokenizer, config: PretrainingConfig, rng: random.Random) -> None:
        self.config, self.rng = config, rng
        self.cls_id, self.sep_id, self.mask_id = tokenizer.cls_id, tokenizer.sep_id, tokenizer.mask_id
        special = set(tokenizer.special_ids)
        self.replacement_ids = [i for i in range(tokenizer.vocabulary_size) if i not in special]
        self.is_continuation = np.array([t.startswith("##") for t in tokenizer.vocabulary], dtype=bool)

    def from_document(self, docs: Sequence[list[np.ndarray]], index: int) -> Iterator[Instance]:
        cfg, rng = self.config, self.rng
        document = docs[index]
        max_tokens = cfg.max_seq_length - 3  # [CLS] A [SEP] B [SEP]
        target = max_tokens if rng.random() >= cfg.short_seq_prob else rng.randint(2, max_tokens)
        chunk: list[np.ndarray] = []
        length, i = 0, 0
        while i < len(document):
            chunk.append(document[i])
            length += len(document[i])
            if i == len(document) - 1 or length >= target:
                if chunk:
                    instance, unused = self._pair(docs, index, chunk, target, max_tokens)
                    i -= unused
                    if instance is not None:
                        yield instance
                chunk, length = [], 0
                target = max_tokens if rng.random() >= cfg.short_seq_prob else rng.randint(2, max_tokens)
            i += 1

    def _pair(self, docs, index, chunk, target, max_tokens):
        rng = self.rng
        random_next = rng.random() < 0.5
        unused = 0
        if len(chunk) == 1 and not random_next:
            # Actual next inside a single segment: A and B are the two halves of one sentence.
            tokens = chunk[0]
            if len(tokens) < 2:
                return None, 0
            cut = rng.randint(1, len(tokens) - 1)
            a, b = list(tokens[:cut]), list(tokens[cut:])
        else:
            a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
            a = [t for seg in chunk[:a_end] for t in seg]
            if random_next:
                b = self._random_segments(docs, index, max(1, target - len(a)))
                unused = len(chunk) - a_end  # put back what B did not use
            else:
                b = [t for seg in chunk[a_end:] for t in seg]
        a, b = self._truncate(a, b, max_tokens)
        if not a or not b:
            return None, unused
        tokens = [self.cls_id, *a, self.sep_id, *b, self.sep_id]
        segment_ids = [0] * (len(a) + 2) + [1] * (len(b) + 1)
        tokens, positions, originals = self._mask(tokens)
        return Instance(tokens, segment_ids, random_next, positions, originals), unused

    def _random_segments(self, docs, index, budget):
        rng = self.rng
        other = index
        for _ in range(10):
            other = rng.randint(0, len(docs) - 1)
            if other != index or len(docs) == 1:
                break
        document = docs[other]
        out: list[int] = []
        for seg in document[rng.randint(0, len(document) - 1):]:
            out.extend(seg)
            if len(out) >= budget:
                break
        return out

    def _truncate(self, a, b, max_tokens):
        rng = self.rng
        while len(a) + len(b) > max_tokens:
            longer = a if len(a) > len(b) else b
            # Remove from the front or back at random, so neither end is always favoured.
            del longer[0 if rng.random() < 0.5 else -1]
        return a, b

    def _mask(self, tokens: list[int]):
        cfg, rng = self.config, self.rng
        candidates: list[list[int]] = []
        for pos, token in enumerate(tokens):
            if token in (self.cls_id, self.sep_id):
                continue
            if cfg.whole_word_mask and candidates and self.is_continuation[token]:
                candidates[-1].append(pos)
            else:
                candidates.append([pos])
        num_tokens = sum(len(c) for c in candidates)
        budget = min(cfg.max_predictions_per_seq, max(1, int(round(num_tokens * cfg.masked_lm_prob))))
        rng.shuffle(candidates)
        chosen: list[int] = []
        for group in candidates:
            if len(chosen) >= budget:
                break
            if len(chosen) + len(group) > budget:
                continue
            chosen.extend(group)
        chosen.sort()
        originals = [tokens[p] for p in chosen]
        out = list(tokens)
        for pos in chosen:
            draw = rng.random()
            if draw < 0.8:
                out[pos] = self.mask_id
            elif draw >= 0.9:
                out[pos] = rng.choice(self.replacement_ids)
        return out, chosen, originals


def to_example(instance: Instance, max_seq_length: int, max_predictions: int) -> bytes:
    """Serializes an instance with Model Garden's v2 feature names (deterministic bytes)."""

    def ints(values, size):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values) + [0] * (size - len(values))))

    n = len(instance.tokens)
    m = len(instance.masked_positions)
    features = {
        "input_word_ids": ints(instance.tokens, max_seq_length),
        "input_mask": ints([1] * n, max_seq_length),
        "input_type_ids": ints(instance.segment_ids, max_seq_length),
        "masked_lm_positions": ints(instance.masked_positions, max_predictions),
        "masked_lm_ids": ints(instance.masked_ids, max_predictions),
        "masked_lm_weights": tf.train.Feature(float_list=tf.train.FloatList(
            value=[1.0] * m + [0.0] * (max_predictions - m))),
        "next_sentence_labels": ints([int(instance.is_random_next)], 1),
    }
    example = tf.train.Example(features=tf.train.Features(feature=features))
    return example.SerializeToString(deterministic=True)
