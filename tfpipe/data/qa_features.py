"""Extractive question answering (SQuAD v1.1) features, in-graph: raw question and context strings to model windows,
answer byte spans to labels, and start/end logits back to answer text.

The same functions run in the tf.data training pipeline and inside the exported SavedModel, so training and serving
cut windows identically. It follows the Google BERT / Hugging Face SQuAD recipe:

- each window is `[CLS] question [SEP] context-window [SEP]`, the question cut to `max_query_length` pieces and
  the context cut into windows of up to `max_seq_length - len(question) - 3` pieces that start every
  `doc_stride` pieces (the last one reaches the end of the context);
- a window is labelled with the first and last piece of the answer, or `[CLS]` (position 0) for both when it
  does not hold the whole answer;
- decoding maximises `start_logit + end_logit` over every window of an example and over context positions
  `i <= j < i + max_answer_length`. A piece in several windows (their overlap) competes in each of them; the best
  pair wins (no "max context" rule).

Offsets are byte offsets into the original context (`WordPieceTokenizer.tokenize_with_offsets`), so the answer is
cut from the text as written: case, accents and spacing kept.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from tfpipe.text.tokenizer import MODEL_INPUTS, WordPieceTokenizer

AUTOTUNE = tf.data.AUTOTUNE
# The mapped functions are plain TensorFlow ops; AutoGraph's conversion of them would only cost time.
_graph = tf.autograph.experimental.do_not_convert
_ENCODE_BATCH = 64  # examples tokenized together in the tf.data pipeline


def _check_lengths(max_seq_length: int, doc_stride: int, max_query_length: int) -> None:
    if max_query_length < 0 or doc_stride < 1:
        raise ValueError(f"need max_query_length >= 0 and doc_stride >= 1, got {max_query_length}, {doc_stride}")
    if max_seq_length - max_query_length - 3 < 1:
        raise ValueError(f"max_seq_length={max_seq_length} leaves no room for context after a question of up to "
                         f"{max_query_length} pieces and [CLS]/[SEP]/[SEP]")


def qa_windows(
    tokenizer: WordPieceTokenizer,
    question: tf.Tensor,
    context: tf.Tensor,
    max_seq_length: int,
    doc_stride: int,
    max_query_length: int,
) -> dict[str, tf.Tensor]:
    """`[batch]` questions and contexts to the flat windows of the whole batch (`W` of them, at least one per example).

    Args:
        tokenizer: the model's tokenizer.
        question, context: `[batch]` strings.
        max_seq_length: the length of every window (padded to it).
        doc_stride: the first piece of consecutive context windows is this many pieces apart (at most a window).
        max_query_length: question pieces kept.

    Returns:
        `input_word_ids`, `input_mask`, `input_type_ids` (int32 `[W, max_seq_length]`, type 1 on the context and its
        `[SEP]`), `example_index` (int32 `[W]`, the batch row), and `offset_start` / `offset_end` (int32
        `[W, max_seq_length]`: each context piece's byte span `[start, end)` in its row's context, -1 elsewhere).

    Examples:
    >>> tok = WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "fox", "##es"])
    >>> w = qa_windows(tok, tf.constant(["the fox"]), tf.constant(["the foxes the fox the"]), 10, 2, 4)
    >>> w["input_word_ids"].numpy().tolist()
    [[2, 5, 6, 3, 5, 6, 7, 5, 6, 3], [2, 5, 6, 3, 7, 5, 6, 5, 3, 0]]
    >>> w["example_index"].numpy().tolist(), w["offset_start"].numpy().tolist()[1]
    ([0, 0], [-1, -1, -1, -1, 7, 10, 14, 18, -1, -1])
    """
    _check_lengths(max_seq_length, doc_stride, max_query_length)
    question = tf.convert_to_tensor(question, tf.string)
    context = tf.convert_to_tensor(context, tf.string)
    query = tokenizer.tokenize(question)[:, :max_query_length]
    ids, starts, ends = tokenizer.tokenize_with_offsets(context)
    pieces, query_length = ids.row_lengths(), query.row_lengths()
    budget = max_seq_length - 3 - query_length  # context pieces per window, >= 1 by _check_lengths
    # HF/Google: the next window starts min(doc_stride, budget) further on, until one reaches the end.
    step = tf.minimum(budget, doc_stride)
    count = 1 + (tf.maximum(pieces - budget, 0) + step - 1) // step
    example = tf.repeat(tf.range(tf.size(pieces, tf.int64)), count)
    first = tf.ragged.range(count).flat_values * tf.gather(step, example)
    length = tf.minimum(tf.gather(pieces, example) - first, tf.gather(budget, example))
    at = tf.gather(ids.row_starts(), example) + first
    window = tf.ragged.range(at, at + length)  # [W, pieces]: indices into the batch's flat context pieces

    def take(values: tf.Tensor) -> tf.RaggedTensor:
        return window.with_flat_values(tf.gather(values, window.flat_values))

    packed, types = tokenizer.pack([tf.gather(query, example), take(ids.flat_values)])
    shape = [None, max_seq_length]
    # Fixed padding to max_seq_length (simplest; per-batch dynamic padding is a later optimisation).
    features = {
        "input_word_ids": packed.to_tensor(tokenizer.pad_id, shape=shape),
        "input_mask": tf.ones_like(packed).to_tensor(0, shape=shape),
        "input_type_ids": tf.cast(types, tf.int32).to_tensor(0, shape=shape),
        "example_index": tf.cast(example, tf.int32),
    }
    # [CLS] + question + [SEP] carry no offsets; nor do the final [SEP] and the padding (to_tensor's default).
    lead = tf.gather(query_length, example) + 2
    none = tf.RaggedTensor.from_row_lengths(tf.fill([tf.reduce_sum(lead)], tf.constant(-1, tf.int64)), lead)
    for name, values in (("offset_start", starts), ("offset_end", ends)):
        spans = tf.concat([none, take(values.flat_values)], axis=1)
        features[name] = tf.cast(spans.to_tensor(-1, shape=shape), tf.int32)
    return features


def span_labels(
    windows: dict[str, tf.Tensor], answer_start_byte: tf.Tensor, answer_end_byte: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """Answer byte spans `[start, end)` (int `[batch]`, from `char_to_byte_span`) to `(start_positions,
    end_positions)` (int32 `[W]`): the first and last piece of the answer in each window, or 0 ([CLS]) for both
    where the window does not hold the whole answer (or the answer is empty).

    A piece belongs to the answer when its span overlaps it. Where pieces only have their word's span (a word whose
    normalization changed its bytes), a window cut inside that word counts as holding all of it.

    Examples:
    >>> tok = WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "fox", "##es"])
    >>> w = qa_windows(tok, tf.constant(["fox"]), tf.constant(["the foxes the fox the"]), 8, 2, 2)
    >>> [t.numpy().tolist() for t in span_labels(w, tf.constant([10]), tf.constant([17]))]  # "the fox"
    [[0, 4], [0, 5]]
    """
    example = windows["example_index"]
    starts, ends = windows["offset_start"], windows["offset_end"]
    answer_start = tf.gather(tf.cast(answer_start_byte, tf.int32), example)
    answer_end = tf.gather(tf.cast(answer_end_byte, tf.int32), example)
    in_context = starts >= 0
    positions = tf.range(tf.shape(starts)[1])[None, :]
    # Context pieces are in text order, so the window's context spans [first start, last end).
    holds = tf.logical_and(
        tf.reduce_min(tf.where(in_context, starts, tf.int32.max), axis=1) <= answer_start,
        tf.reduce_max(tf.where(in_context, ends, -1), axis=1) >= answer_end)
    first = tf.reduce_min(tf.where(in_context & (ends > answer_start[:, None]), positions, tf.int32.max), axis=1)
    last = tf.reduce_max(tf.where(in_context & (starts < answer_end[:, None]), positions, -1), axis=1)
    found = holds & (answer_end > answer_start) & (first <= last)
    return tf.where(found, first, 0), tf.where(found, last, 0)


def best_spans(
    start_logits: tf.Tensor,
    end_logits: tf.Tensor,
    windows: dict[str, tf.Tensor],
    num_examples: tf.Tensor | int,
    max_answer_length: int = 30,
) -> dict[str, tf.Tensor]:
    """Per example, the best answer over all its windows: `start_byte`, `end_byte` (int32 `[batch]`, a byte span
    `[start, end)` of its context) and `score` (float32 `[batch]`, the pair's `start_logit + end_logit`).

    The maximum is exact over context positions `i <= j < i + max_answer_length`: each start is scored against the
    `max_answer_length` ends that follow it, a `[W, seq, max_answer_length]` band (15k floats per 512-piece window),
    so unlike the n-best recipe's top-20 starts × top-20 ends it cannot miss the best pair, and memory stays linear
    in the sequence length (a full `[W, seq, seq]` mask would be 262k floats per window). An example with no
    context piece gets the empty span `[0, 0)` and score `-inf`.

    Args:
        start_logits, end_logits: `[W, seq]`, one row per window of `windows` (from `qa_windows`).
        windows: gives `example_index` and the offsets (-1 outside the context, never chosen).
        num_examples: the batch size the windows came from.
        max_answer_length: the most pieces an answer may have.

    Examples:
    >>> tok = WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "fox", "##es"])
    >>> w = qa_windows(tok, tf.constant(["fox"]), tf.constant(["the foxes"]), 8, 2, 2)
    >>> start = tf.one_hot([[4]], 8) * 5.0; end = tf.one_hot([[5]], 8) * 5.0
    >>> best = best_spans(start[0], end[0], w, 1)
    >>> best["start_byte"].numpy().tolist(), best["end_byte"].numpy().tolist(), best["score"].numpy().tolist()
    ([4], [9], [10.0])
    """
    if max_answer_length < 1:
        raise ValueError(f"max_answer_length must be at least 1, got {max_answer_length}")
    starts, ends = windows["offset_start"], windows["offset_end"]
    example = windows["example_index"]
    in_context = starts >= 0
    low = tf.constant(-float("inf"))
    start_logits = tf.where(in_context, tf.cast(start_logits, tf.float32), low)
    end_logits = tf.where(in_context, tf.cast(end_logits, tf.float32), low)
    seq = tf.shape(starts)[1]
    # end_band[w, i, d] = end logit at i + d (-inf past the end).
    padded = tf.pad(end_logits, [[0, 0], [0, max_answer_length - 1]], constant_values=low)
    end_band = tf.gather(padded, tf.range(seq)[:, None] + tf.range(max_answer_length)[None, :], axis=1)
    scores = tf.reshape(start_logits[:, :, None] + end_band, [-1, seq * max_answer_length])
    pair = tf.argmax(scores, axis=1, output_type=tf.int32)
    window_score = tf.reduce_max(scores, axis=1)
    first, last = pair // max_answer_length, pair // max_answer_length + pair % max_answer_length
    # Each example's first window with its best score. (Segment max starts from the lowest float, above -inf.)
    window_score = tf.maximum(window_score, tf.float32.min)
    best = tf.math.unsorted_segment_max(window_score, example, num_examples)
    candidate = tf.where(window_score >= tf.gather(best, example), tf.range(tf.size(example)), tf.int32.max)
    chosen = tf.minimum(tf.math.unsorted_segment_min(candidate, example, num_examples), tf.size(example) - 1)
    score = tf.gather(window_score, chosen)
    found = tf.logical_and(score > tf.float32.min,
                           tf.equal(tf.gather(example, chosen), tf.range(tf.size(chosen))))  # no window: none found
    start_byte = tf.gather_nd(starts, tf.stack([chosen, tf.gather(first, chosen)], axis=1))
    end_byte = tf.gather_nd(ends, tf.stack([chosen, tf.gather(last, chosen)], axis=1))
    return {"start_byte": tf.where(found, start_byte, 0), "end_byte": tf.where(found, end_byte, 0),
            "score": tf.where(found, score, low)}


def answer_text(context: tf.Tensor, start_byte: tf.Tensor, end_byte: tf.Tensor) -> tf.Tensor:
    """`[batch]` contexts cut to their `[start_byte, end_byte)` spans, as written."""
    return tf.strings.substr(context, start_byte, tf.maximum(end_byte - start_byte, 0), unit="BYTE")


def char_offset(context: tf.Tensor, byte_offset: tf.Tensor) -> tf.Tensor:
    """Byte offsets into `[batch]` UTF-8 contexts to character offsets (int32): the characters before them."""
    prefix = tf.strings.substr(context, tf.zeros_like(byte_offset), byte_offset, unit="BYTE")
    return tf.strings.length(prefix, unit="UTF8_CHAR")


def char_to_byte_span(context: str, start_char: int, answer_text: str) -> tuple[int, int]:
    """A SQuAD answer (character offset and text) to its UTF-8 byte span `(start, end_exclusive)` in `context`.

    Examples:
    >>> char_to_byte_span("Zürich is big", 0, "Zürich")
    (0, 7)
    """
    if context[start_char:start_char + len(answer_text)] != answer_text:
        raise ValueError(f"answer {answer_text[:40]!r} is not at character {start_char} of the context "
                         f"({context[start_char:start_char + 40]!r} is)")
    start = len(context[:start_char].encode("utf-8"))
    return start, start + len(answer_text.encode("utf-8"))


def qa_dataset(
    questions: Sequence[str],
    contexts: Sequence[str],
    answers: Sequence[tuple[int, int]] | None,
    tokenizer: WordPieceTokenizer,
    max_seq_length: int,
    doc_stride: int,
    max_query_length: int,
    batch_size: int,
    training: bool = False,
    seed: int = 0,
    shuffle_buffer: int = 10_000,
    repeat: bool = False,
) -> tf.data.Dataset:
    """Batches of windows: `(features, {"start_positions", "end_positions"})` with `answers` (byte spans from
    `char_to_byte_span`), else `(features, {"example_index", "offset_start", "offset_end"})`, for `predict` on the
    features and `best_spans` on the bookkeeping; `example_index` is then the position in `questions`.

    Features are the model inputs, int32 `[batch, max_seq_length]`; labels int32 `[batch]`. Windows are cached in
    memory after the first pass (SQuAD v1.1 train at 384: about 90k windows, ~0.4 GB with the offsets out),
    shuffled with `seed` when `training`, and with `repeat` every batch is full.

    Examples:
    >>> tok = WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "fox", "##es"])
    >>> ds = qa_dataset(["fox"], ["the foxes"], [char_to_byte_span("the foxes", 4, "foxes")], tok, 8, 2, 2, 4)
    >>> features, labels = next(iter(ds))
    >>> features["input_word_ids"].numpy().tolist(), labels["start_positions"].numpy().tolist()
    ([[2, 6, 3, 5, 6, 7, 3, 0]], [4])
    """
    _check_lengths(max_seq_length, doc_stride, max_query_length)
    if not questions or len(questions) != len(contexts) or (answers is not None and len(answers) != len(questions)):
        raise ValueError(f"need as many questions, contexts (and answers) and at least one: {len(questions)} "
                         f"questions, {len(contexts)} contexts, {'no' if answers is None else len(answers)} answers")
    data = {"question": tf.constant(list(questions), tf.string), "context": tf.constant(list(contexts), tf.string),
            "index": tf.range(len(questions), dtype=tf.int32)}
    if answers is not None:
        data["answer_start"] = tf.constant([a[0] for a in answers], tf.int32)
        data["answer_end"] = tf.constant([a[1] for a in answers], tf.int32)

    def encode(batch):
        windows = qa_windows(tokenizer, batch["question"], batch["context"], max_seq_length, doc_stride,
                             max_query_length)
        features = {name: windows[name] for name in MODEL_INPUTS}
        if answers is not None:
            start, end = span_labels(windows, batch["answer_start"], batch["answer_end"])
            return features, {"start_positions": start, "end_positions": end}
        return features, {"example_index": tf.gather(batch["index"], windows["example_index"]),
                          "offset_start": windows["offset_start"], "offset_end": windows["offset_end"]}

    ds = tf.data.Dataset.from_tensor_slices(data).batch(_ENCODE_BATCH)
    ds = ds.map(_graph(encode), num_parallel_calls=AUTOTUNE).unbatch().cache()
    if training and shuffle_buffer:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    return ds.batch(batch_size, drop_remainder=repeat).prefetch(AUTOTUNE)
