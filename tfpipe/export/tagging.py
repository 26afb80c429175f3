"""In-graph token classification over raw text: words split by the tokenizer's own pre-split, sentences longer
than the model's sequence length cut into windows of whole words, one tag per word.

It is the graph twin of `tfpipe.data.windows` + the fine-tuning word encoder: each word is tokenized on its own
(as CoNLL words are in training), a word with no pieces gets `[UNK]`, windows are filled greedily with whole words
up to `max_seq_length - 2` pieces, and a word's tag is read at its first piece.
"""

from __future__ import annotations

from typing import Callable

import tensorflow as tf

from tfpipe.text.tokenizer import WordPieceTokenizer, pre_split


def split_display_words(tokenizer: WordPieceTokenizer, text: tf.Tensor) -> tf.RaggedTensor:
    """`[batch]` strings → `[batch, words]`: the tokenizer's split, keeping case and accents for display.

    Case folding never creates or removes a split point, so these are the words the model tags, as written.
    """
    return pre_split(text, lowercase=False)


def window_ids(counts: tf.Tensor, starts_row: tf.Tensor, budget: int) -> tf.Tensor:
    """Greedy whole-word windows: the window index of every word, over the words of the whole batch in order.

    A new window opens at the first word of each input and whenever the next word would not fit in `budget`.
    """
    def step(state, word):
        window, used = state
        count, first = word
        new = tf.logical_or(first, used + count > budget)
        return (tf.where(new, window + 1, window), tf.where(new, count, used + count))

    windows, _ = tf.scan(step, (counts, starts_row), initializer=(tf.constant(-1, tf.int64), tf.constant(0, tf.int64)))
    return windows


def tag_text(
    tokenizer: WordPieceTokenizer,
    logits_fn: Callable[[dict], tf.Tensor],
    tags: tf.Tensor,
    text: tf.Tensor,
    max_seq_length: int,
) -> dict[str, tf.Tensor]:
    """Raw `[batch]` strings → `words`, `tags` (string `[batch, max_words]`, "" padded) and `num_words` (int32)."""
    budget = max_seq_length - 2
    words = split_display_words(tokenizer, text)
    pieces = tokenizer.word_pieces(words, budget).values  # [all words, pieces]
    counts = pieces.row_lengths()
    # Rows with no words open no window (their start would point past their end).
    starts = tf.boolean_mask(words.row_starts(), words.row_lengths() > 0)
    first_of_row = tf.scatter_nd(tf.expand_dims(starts, 1), tf.ones_like(starts, tf.bool),
                                 tf.shape(counts, out_type=tf.int64))
    windows = window_ids(counts, first_of_row, budget)
    num_windows = tf.reduce_max(tf.concat([windows, [-1]], 0)) + 1
    window_pieces = tf.RaggedTensor.from_value_rowids(pieces, windows, nrows=num_windows).merge_dims(1, 2)
    ids, types = tokenizer.pack([window_pieces])
    features = {"input_word_ids": ids.to_tensor(), "input_mask": tf.ones_like(ids).to_tensor(),
                "input_type_ids": types.to_tensor()}
    logits = logits_fn(features)  # [windows, seq, tags]
    # A word's first piece sits after [CLS] and the pieces of the earlier words of its window.
    offsets = tf.cumsum(counts, exclusive=True)
    window_start = tf.gather(tf.math.unsorted_segment_min(offsets, windows, num_windows), windows)
    positions = tf.stack([windows, offsets - window_start + 1], axis=1)
    tag_ids = tf.argmax(tf.gather_nd(logits, positions), axis=-1)  # [all words]
    word_tags = words.with_flat_values(tf.gather(tags, tag_ids))
    return {"words": words.to_tensor(""), "tags": word_tags.to_tensor(""),
            "num_words": tf.cast(words.row_lengths(), tf.int32)}
