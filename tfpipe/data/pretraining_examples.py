"""MLM+NSP pretraining examples: documents of sentences → masked sentence pairs → sharded TFRecords.

Follows BERT's recipe (target lengths with `short_seq_prob`, 80/10/10 masking, optional whole-word masking)
with two deliberate changes:
- the random-next choice is an unbiased coin for every instance. A chunk with one segment that draws "actual
  next" is split inside that segment, instead of being forced to random-next as Google's script does (which
  drifts to ~60% random-next on short documents);
- every random choice is keyed, not drawn from one generator in corpus order: a document's chunking and coins
  come from a generator seeded by (seed, document id, dupe round), each pair's truncation and masking from one
  seeded by the pair's key, and a random-next pair's document and first sentence from hashes of that key over
  the sorted document ids. Output is then the same whichever worker holds which document
  (`tfpipe.data.beam_pipelines` gives the same bytes as the local path).
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from typing import Iterable, Iterator, Optional, Sequence, TypeVar

import numpy as np
import tensorflow as tf

from tfpipe.config.schemas import PretrainingConfig
from tfpipe.text.keys import stable_hash
from tfpipe.text.tokenizer import WordPieceTokenizer

# Model Garden v2 feature names, shared with the pretraining tf.data pipeline.
FEATURE_NAMES = ("input_word_ids", "input_mask", "input_type_ids", "masked_lm_positions", "masked_lm_ids",
                 "masked_lm_weights", "next_sentence_labels")
K = TypeVar("K")


@dataclass
class Instance:
    tokens: list[int]  # with [CLS]/[SEP] and masks applied
    segment_ids: list[int]
    is_random_next: bool
    masked_positions: list[int]
    masked_ids: list[int]  # the original ids at masked_positions
    key: int = 0  # the pair's stable key: it orders and shards the output
    round: int = 0  # the dupe round that made it


@dataclass
class PlannedPair:
    """A pair as its own document decides it: segment A, and B for actual-next. A random-next pair (`b` None)
    takes up to `budget` tokens of another document, chosen by `random_document` and `random_segments`."""

    key: int
    round: int
    a: list[int]
    b: Optional[list[int]]
    budget: int = 0


@functools.lru_cache(maxsize=4)
def _encoder(tokenizer: WordPieceTokenizer):
    return tf.function(lambda t: tokenizer.tokenize(t), input_signature=[tf.TensorSpec([None], tf.string)])


def tokenize_documents(
    documents: Iterable[tuple[K, list[str]]], tokenizer: WordPieceTokenizer, batch_sentences: int = 4096
) -> list[tuple[K, list[np.ndarray]]]:
    """`(key, sentences)` to `(key, token id arrays)`, in batches through the in-graph tokenizer (traced once per
    tokenizer); sentences with no tokens are dropped, and so are documents left with none."""
    encode = _encoder(tokenizer)
    docs: list[tuple[K, list[np.ndarray]]] = []
    pending: list[tuple[int, str]] = []

    def flush() -> None:
        ragged = encode(tf.constant([s for _, s in pending]))
        values, splits = ragged.flat_values.numpy(), ragged.row_splits.numpy()
        for (doc, _), start, end in zip(pending, splits[:-1], splits[1:]):
            if end > start:
                docs[doc][1].append(values[start:end])
        pending.clear()

    for key, sentences in documents:
        docs.append((key, []))
        pending.extend((len(docs) - 1, s) for s in sentences)
        if len(pending) >= batch_sentences:
            flush()
    if pending:
        flush()
    return [d for d in docs if d[1]]


def random_document(key: int, position: int, count: int) -> int:
    """The position, among `count` documents sorted by id, of the one a random-next pair keyed `key` from the
    document at `position` takes B from: any other document, by the key alone."""
    if count == 1:
        return position
    other = stable_hash("other document", key) % (count - 1)
    return other + (other >= position)


def random_segments(document: Sequence[np.ndarray], key: int, budget: int) -> list[int]:
    """B of a random-next pair: sentences of `document` from one the key picks, until `budget` tokens."""
    out: list[int] = []
    for seg in document[stable_hash("first sentence", key) % len(document):]:
        out.extend(_ids([seg]))
        if len(out) >= budget:
            break
    return out


def _ids(segments: Sequence[Sequence[int]]) -> list[int]:
    # Plain ints: pairs travel between Beam workers, and numpy scalars pickle one by one.
    return np.concatenate(segments).tolist() if len(segments) else []


class InstanceMaker:
    """Turns tokenized documents into masked `Instance`s, every random choice keyed (see the module doc).

    `plan` needs only the document itself; `finish` completes a pair (given a random-next pair's B).
    """

    def __init__(self, tokenizer: WordPieceTokenizer, config: PretrainingConfig) -> None:
        self.config = config
        self.cls_id, self.sep_id, self.mask_id = tokenizer.cls_id, tokenizer.sep_id, tokenizer.mask_id
        special = set(tokenizer.special_ids)
        self.replacement_ids = [i for i in range(tokenizer.vocabulary_size) if i not in special]
        self.is_continuation = np.array([t.startswith("##") for t in tokenizer.vocabulary], dtype=bool)

    def from_documents(self, documents: Sequence[tuple[int, Sequence[np.ndarray]]], position: int, round: int
                       ) -> Iterator[Instance]:
        """The instances of `documents[position]` in dupe round `round`; `documents` are `(id, tokens)` sorted by
        id, and random-next B comes straight from them."""
        doc_id, document = documents[position]
        for pair in self.plan(doc_id, document, round):
            b = None
            if pair.b is None:
                other = documents[random_document(pair.key, position, len(documents))][1]
                b = random_segments(other, pair.key, pair.budget)
            instance = self.finish(pair, b)
            if instance is not None:
                yield instance

    def plan(self, doc_id: int, document: Sequence[np.ndarray], round: int) -> Iterator[PlannedPair]:
        """Chunks a document to target lengths and splits each chunk into A and B (or A and a random-next B)."""
        cfg = self.config
        rng = random.Random(stable_hash(cfg.seed, "document", doc_id, round))
        max_tokens = cfg.max_seq_length - 3  # [CLS] A [SEP] B [SEP]

        def target() -> int:
            return max_tokens if rng.random() >= cfg.short_seq_prob else rng.randint(2, max_tokens)

        goal, number = target(), 0
        chunk: list[np.ndarray] = []
        length, i = 0, 0
        while i < len(document):
            chunk.append(document[i])
            length += len(document[i])
            if i == len(document) - 1 or length >= goal:
                key = stable_hash(cfg.seed, "pair", doc_id, round, number)
                number += 1
                pair, unused = self._split(rng, key, round, chunk, goal)
                i -= unused  # put back what a random-next B did not use
                if pair is not None:
                    yield pair
                chunk, length = [], 0
                goal = target()
            i += 1

    def _split(self, rng: random.Random, key: int, round: int, chunk: list[np.ndarray], goal: int
               ) -> tuple[Optional[PlannedPair], int]:
        random_next = rng.random() < 0.5
        if len(chunk) == 1 and not random_next:
            # Actual next inside a single segment: A and B are the two halves of one sentence.
            tokens = chunk[0]
            if len(tokens) < 2:
                return None, 0
            cut = rng.randint(1, len(tokens) - 1)
            return PlannedPair(key, round, _ids([tokens[:cut]]), _ids([tokens[cut:]])), 0
        a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
        a = _ids(chunk[:a_end])
        if random_next:
            return PlannedPair(key, round, a, None, max(1, goal - len(a))), len(chunk) - a_end
        return PlannedPair(key, round, a, _ids(chunk[a_end:])), 0

    def finish(self, pair: PlannedPair, b: Optional[list[int]] = None) -> Optional[Instance]:
        """The pair with B (`b` for a random-next pair), truncated to fit and masked; None if a side is empty."""
        rng = random.Random(pair.key)
        a, b = self._truncate(rng, list(pair.a), list(pair.b if pair.b is not None else b),
                              self.config.max_seq_length - 3)
        if not a or not b:
            return None
        tokens = [self.cls_id, *a, self.sep_id, *b, self.sep_id]
        segment_ids = [0] * (len(a) + 2) + [1] * (len(b) + 1)
        tokens, positions, originals = self._mask(rng, tokens)
        return Instance(tokens, segment_ids, pair.b is None, positions, originals, pair.key, pair.round)

    @staticmethod
    def _truncate(rng: random.Random, a: list[int], b: list[int], max_tokens: int) -> tuple[list[int], list[int]]:
        while len(a) + len(b) > max_tokens:
            longer = a if len(a) > len(b) else b
            # Remove from the front or back at random, so neither end is always favoured.
            del longer[0 if rng.random() < 0.5 else -1]
        return a, b

    def _mask(self, rng: random.Random, tokens: list[int]) -> tuple[list[int], list[int], list[int]]:
        cfg = self.config
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
