"""Token classification windows: sentences longer than the model's sequence length are split into consecutive
windows of whole words, never truncated; predictions are stitched back per sentence."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import tensorflow as tf

from tfpipe.text.readers import TokenRecord
from tfpipe.text.tokenizer import WordPieceTokenizer


@dataclass
class Window:
    record: int  # index of the sentence it comes from
    start: int  # index of its first word in that sentence


def piece_counts(records: Sequence[TokenRecord], tokenizer: WordPieceTokenizer, batch: int = 512) -> list[np.ndarray]:
    """Word pieces per word, as the pipeline encodes them (at least 1: a word with none gets [UNK])."""
    counts = []
    for start in range(0, len(records), batch):
        words = tf.ragged.constant([r.words for r in records[start:start + batch]], dtype=tf.string)
        for row in tokenizer.word_pieces(words).row_lengths(axis=2).to_list():
            counts.append(np.asarray(row, dtype=np.int64))
    return counts


def window_records(
    records: Sequence[TokenRecord], tokenizer: WordPieceTokenizer, max_seq_length: int
) -> tuple[list[TokenRecord], list[Window]]:
    """Splits sentences so each window's pieces fit `max_seq_length - 2`; returns windows and their origins."""
    budget = max_seq_length - 2
    windows: list[TokenRecord] = []
    origins: list[Window] = []
    for index, (record, counts) in enumerate(zip(records, piece_counts(records, tokenizer))):
        start, used = 0, 0
        for position, count in enumerate(counts.tolist() + [None]):
            if count is None or (used + count > budget and position > start):
                tags = record.tags[start:position] if record.tags is not None else None
                lines = record.word_lines[start:position] if record.word_lines else None
                windows.append(replace(record, words=record.words[start:position], tags=tags, word_lines=lines))
                origins.append(Window(index, start))
                start, used = position, 0
            if count is not None:
                used += count
    return windows, origins


def stitch(origins: Sequence[Window], window_tags: Sequence[list[str]], num_records: int) -> list[list[str]]:
    """Joins per-window predicted tags back into one tag list per sentence, in input order."""
    sentences: list[list[str]] = [[] for _ in range(num_records)]
    for origin, tags in zip(origins, window_tags):
        sentences[origin.record].extend(tags)
    return sentences
