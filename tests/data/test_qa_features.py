"""Extractive QA features: tokenizer byte offsets, SQuAD windows, span labels, decoding and the tf.data pipeline."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import TINY_VOCAB, shared_path
from tfpipe.data.qa_features import (
    answer_text,
    best_spans,
    char_offset,
    char_to_byte_span,
    qa_dataset,
    qa_windows,
    span_labels,
)
from tfpipe.text.tokenizer import MODEL_INPUTS, WordPieceTokenizer

EDGE_CASES = [
    "", " ", "\t\n\r", "Héllo, WÖRLD! Ça va?", "naïve café résumé", "control\x00\x07chars", "\x00", "a \x00 b",
    "zero\u200bwidth", "中文字符 and 日本語", "emoji 😀 here😀x", "ｆｕｌｌｗｉｄｔｈ Ａ１", "line\u2028sep\u2029para",
    "non\u00a0breaking\u3000space", "a\u1fefb", "ΑΣ'Α ΟΔΟΣ. Σ", "a=\u0338b ≠", "İstanbul KELVIN \u212a", "e\u0301clair",
    "x" * 101 + " ok", "é" * 101, "ж" * 60, "don't U.S.A. (test) [x] {y}", "the cats ran very fast.",
    "\u0301 leading mark", "tab\there", "Ⱥé mixed widths",
]


def _random_texts(seed: int, count: int) -> list[str]:
    """Texts mixing ASCII words with accents, controls, CJK, Greek capitals, combining marks and odd spaces."""
    pools = ["the", "cat", "Zürich", "ÉCOLE", "ΣΑΣ", "σ", "中", "😀", "ｆ", "\x00", "\x07", "\u200b", "\u0301", "'",
             ".", ",", "-", "\u2028", "\u00a0", "\t", " ", "  ", "a", "İ", "ß", "\u1fef", "=\u0338", "ing"]
    rng = random.Random(seed)
    return ["".join(rng.choice(pools) for _ in range(rng.randint(0, 25))) for _ in range(count)]


def _piece_text(tok: WordPieceTokenizer, piece: int) -> str:
    token = tok.vocabulary[piece]
    return token[2:] if token.startswith("##") else token


def _check_offsets(tok: WordPieceTokenizer, texts: list[str]) -> None:
    """ids equal `tokenize`; spans lie in the text, in order, on character boundaries; on printable ASCII,
    every piece's bytes (lower-cased) are the piece."""
    ids, starts, ends = tok.tokenize_with_offsets(tf.constant(texts))
    assert ids.to_list() == tok.tokenize(tf.constant(texts)).to_list()
    for text, row, row_starts, row_ends in zip(texts, ids.to_list(), starts.to_list(), ends.to_list()):
        raw = text.encode("utf-8")
        assert len(row) == len(row_starts) == len(row_ends)
        assert row_starts == sorted(row_starts), text
        for piece, start, end in zip(row, row_starts, row_ends):
            assert 0 <= start < end <= len(raw), text
            raw[start:end].decode("utf-8")  # whole characters
            if text.isascii() and text.isprintable() and piece != tok.unk_id:
                got = raw[start:end].decode()
                assert (got.lower() if tok.lowercase else got) == _piece_text(tok, piece), (text, start, end)


@pytest.fixture(scope="module")
def minilm() -> WordPieceTokenizer:
    return WordPieceTokenizer(shared_path("checkpoints", "minilm-l6-h384-uncased", "vocab.txt"))


@pytest.fixture(scope="module")
def tiny() -> WordPieceTokenizer:
    return WordPieceTokenizer(TINY_VOCAB)


# --- tokenize_with_offsets ---------------------------------------------------------------------------------------

def test_offsets_ids_equal_tokenize_on_every_reference_case(minilm):
    path = shared_path("checkpoints", "minilm-l6-h384-uncased", "tokenizer_reference.json")
    cases = json.loads(path.read_text(encoding="utf-8"))["cases"]
    assert len(cases) == 1303
    texts = [c["text"] for c in cases] + [c["text_pair"] for c in cases if "text_pair" in c]
    _check_offsets(minilm, texts)


@pytest.mark.parametrize("lowercase", [True, False])
def test_offsets_ids_equal_tokenize_on_edge_cases(lowercase):
    _check_offsets(WordPieceTokenizer(TINY_VOCAB, lowercase=lowercase), EDGE_CASES + _random_texts(3, 300))


def test_offsets_ids_equal_tokenize_on_edge_cases_with_minilm(minilm):
    _check_offsets(minilm, EDGE_CASES + _random_texts(5, 300))


def test_offsets_are_exact_where_widths_are_kept_and_word_level_where_not(minilm):
    text = "Zürich, THE café\u200b! 中文 ｆｕｌｌ x" + "y" * 100 + " end"
    ids, starts, ends = (t.to_list()[0] for t in minilm.tokenize_with_offsets(tf.constant([text])))
    raw = text.encode()
    spans = [(minilm.vocabulary[i], raw[s:e].decode()) for i, s, e in zip(ids, starts, ends)]
    # "Zürich" lost a byte to accent stripping: its pieces span the whole word; the comma after it stays exact.
    comma = [token for token, _ in spans].index(",")
    assert comma > 0 and all(original == "Zürich" for _, original in spans[:comma])
    assert ("the", "THE") in spans and (",", ",") in spans and ("!", "!") in spans
    assert ("中", "中") in spans and ("文", "文") in spans
    assert [original for token, original in spans if token == "cafe"] == ["café\u200b"]
    assert ("[UNK]", "x" + "y" * 100) in spans  # over-long word: one [UNK] over the word
    assert spans[-1] == ("end", "end")


def test_offsets_of_a_context_rule_across_punctuation_fall_back_to_the_chunk():
    tok = WordPieceTokenizer(TINY_VOCAB, lowercase=False)
    # Cased, "=" + U+0338 composes to "≠" (no split); split first, "=" would be a word of its own.
    ids, starts, ends = (t.to_list()[0] for t in tok.tokenize_with_offsets(tf.constant(["is a=\u0338b"])))
    assert ids == tok.tokenize(tf.constant(["is a=\u0338b"])).to_list()[0] == [18, 1]
    assert list(zip(starts, ends)) == [(0, 2), (3, 8)]


def test_offsets_in_tf_function_with_unknown_batch(tiny):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def run(text):
        ids, starts, ends = tiny.tokenize_with_offsets(text)
        return ids.to_tensor(-1), starts.to_tensor(-1), ends.to_tensor(-1)

    ids, starts, ends = run(tf.constant(["The cats sat.", "", "\x00 Dog"]))
    assert ids.numpy().tolist() == [[8, 10, 22, 12, 5], [-1] * 5, [11, -1, -1, -1, -1]]
    assert starts.numpy().tolist()[0] == [0, 4, 7, 9, 12] and ends.numpy().tolist()[0] == [3, 7, 8, 12, 13]
    assert (starts.numpy()[2, 0], ends.numpy()[2, 0]) == (2, 5)


# --- windows -------------------------------------------------------------------------------------------------------

def _python_windows(num_pieces: int, budget: int, stride: int) -> list[tuple[int, int]]:
    """The Google BERT / HF `run_squad` loop: (start, length) of every context window."""
    spans, start = [], 0
    while True:
        length = min(num_pieces - start, budget)
        spans.append((start, length))
        if start + length == num_pieces:
            return spans
        start += min(length, stride)


def _windows_fn(tok, max_seq_length, doc_stride, max_query_length):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)] * 2)
    def run(question, context):
        return qa_windows(tok, question, context, max_seq_length, doc_stride, max_query_length)

    return run


CONTEXTS = ["The cat sat on the mat, and the dog ran fast. John lives in New York City. It was very good.",
            "A new movie is good! The cats ran. The dogs sat on a mat in New York.", "", "dog"]
QUESTIONS = ["Who lives in New York?", "is the movie good or bad and is it a very new movie", "cat?", ""]


@pytest.mark.parametrize("max_seq_length,doc_stride", [(16, 3), (20, 7), (24, 100), (64, 8)])
def test_windows_follow_the_reference_recipe_and_cover_every_piece(tiny, max_seq_length, doc_stride):
    max_query_length = 6
    w = {k: v.numpy() for k, v in _windows_fn(tiny, max_seq_length, doc_stride, max_query_length)(
        tf.constant(QUESTIONS), tf.constant(CONTEXTS)).items()}
    questions = [q[:max_query_length] for q in tiny.tokenize(tf.constant(QUESTIONS)).to_list()]
    contexts = tiny.tokenize(tf.constant(CONTEXTS)).to_list()
    expected = []
    for example, (question, context) in enumerate(zip(questions, contexts)):
        budget = max_seq_length - len(question) - 3
        for start, length in _python_windows(len(context), budget, doc_stride):
            ids = [tiny.cls_id] + question + [tiny.sep_id] + context[start:start + length] + [tiny.sep_id]
            expected.append((example, ids, len(question) + 2))
    assert w["example_index"].tolist() == [e for e, _, _ in expected]
    assert w["input_word_ids"].shape == (len(expected), max_seq_length)
    for row, (_, ids, lead) in enumerate(expected):
        pad = max_seq_length - len(ids)
        assert w["input_word_ids"][row].tolist() == ids + [tiny.pad_id] * pad
        assert w["input_mask"][row].tolist() == [1] * len(ids) + [0] * pad
        assert w["input_type_ids"][row].tolist() == [0] * lead + [1] * (len(ids) - lead) + [0] * pad
        context_positions = np.flatnonzero(w["offset_start"][row] >= 0).tolist()
        assert context_positions == list(range(lead, len(ids) - 1))
        assert (w["offset_end"][row] >= 0).tolist() == (w["offset_start"][row] >= 0).tolist()
    # Every context piece is in some window, and its offsets are the same in each.
    for example, context in enumerate(CONTEXTS):
        raw = context.encode()
        seen = {}
        for row in np.flatnonzero(w["example_index"] == example):
            for position in np.flatnonzero(w["offset_start"][row] >= 0):
                start, end = int(w["offset_start"][row, position]), int(w["offset_end"][row, position])
                piece = int(w["input_word_ids"][row, position])
                assert raw[start:end].decode().lower() == _piece_text(tiny, piece)
                seen.setdefault((start, end, piece), 0)
                seen[(start, end, piece)] += 1
        ids, starts, ends = (t.to_list()[0] for t in tiny.tokenize_with_offsets(tf.constant([context])))
        assert set(seen) == set(zip(starts, ends, ids))


def test_window_count_for_a_long_context():
    tok = WordPieceTokenizer(TINY_VOCAB)
    context = " ".join(["the cat sat on the mat"] * 20)  # 120 pieces
    w = qa_windows(tok, tf.constant(["cat", "the dog"]), tf.constant([context, context]), 32, 10, 8)
    # budgets 32 - 1 - 3 = 28 and 32 - 2 - 3 = 27: 1 + ceil((120 - 28) / 10) = 11 and 1 + ceil(93 / 10) = 11
    assert w["example_index"].numpy().tolist() == [0] * 11 + [1] * 11
    firsts = w["offset_start"].numpy()[:11, 3]
    assert firsts.tolist() == [len(" ".join(context.split()[:10 * k]) + " ") if k else 0 for k in range(11)]
    last = w["input_word_ids"].numpy()[10]
    assert last.tolist() == [2, 10, 3] + [8, 14] + [8, 10, 12, 13, 8, 14] * 3 + [3] + [0] * 8


def test_question_is_cut_to_max_query_length_and_empty_context_gets_one_window(tiny):
    w = qa_windows(tiny, tf.constant(["the cat sat on the mat and the dog ran"]), tf.constant([""]), 16, 4, 3)
    assert w["input_word_ids"].numpy().tolist() == [[2, 8, 10, 12, 3, 3] + [0] * 10]
    assert w["input_type_ids"].numpy().tolist() == [[0] * 5 + [1] + [0] * 10]
    assert (w["offset_start"].numpy() == -1).all() and (w["offset_end"].numpy() == -1).all()


def test_impossible_lengths_are_refused(tiny):
    with pytest.raises(ValueError, match="no room"):
        qa_windows(tiny, tf.constant(["a"]), tf.constant(["a"]), 10, 4, 7)
    with pytest.raises(ValueError, match="doc_stride"):
        qa_windows(tiny, tf.constant(["a"]), tf.constant(["a"]), 10, 0, 2)


# --- labels ----------------------------------------------------------------------------------------------------------

LABELLED = [  # (question, context, answer, its character start)
    ("who lives in new york", "John lives in New York City. The cat sat on the mat. The dog ran fast.", "John", 0),
    ("where", "John lives in New York City. The cat sat on the mat. The dog ran fast.", "New York City", 14),
    ("what sat", "John lives in New York City. The cat sat on the mat. The dog ran fast.", "the mat", 44),
    ("what ran", "John lives in New York City. The cat sat on the mat. The dog ran fast.", "dog ran fast", 57),
    ("what", "a movie is good, a movie is bad, the cat is very good and the dog is bad.", "very good", 44),
    ("x", "the cats sat on the mat", "cats", 4),
]


def _labels_by_window(tok, max_seq_length, doc_stride):
    questions, contexts, texts, chars = zip(*LABELLED)
    spans = [char_to_byte_span(c, s, a) for c, s, a in zip(contexts, chars, texts)]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)] * 2 + [tf.TensorSpec([None], tf.int32)] * 2)
    def run(question, context, start, end):
        windows = qa_windows(tok, question, context, max_seq_length, doc_stride, 4)
        return windows, span_labels(windows, start, end)

    windows, (starts, ends) = run(tf.constant(questions), tf.constant(contexts),
                                  tf.constant([s for s, _ in spans]), tf.constant([e for _, e in spans]))
    return {k: v.numpy() for k, v in windows.items()}, starts.numpy(), ends.numpy(), contexts, texts, spans


def test_span_labels_decode_back_to_every_answer(tiny):
    windows, starts, ends, contexts, texts, spans = _labels_by_window(tiny, 14, 3)
    labelled, twice = set(), set()
    for row, example in enumerate(windows["example_index"]):
        context = contexts[example].encode()
        offsets = windows["offset_start"][row], windows["offset_end"][row]
        # Independently of the labeller: the answer's pieces (those overlapping its bytes) all in this window?
        _, all_starts, all_ends = (t.to_list()[0] for t in tiny.tokenize_with_offsets(tf.constant([contexts[example]])))
        answer = {(s, e) for s, e in zip(all_starts, all_ends) if e > spans[example][0] and s < spans[example][1]}
        here = {(int(s), int(e)) for s, e in zip(*offsets) if s >= 0}
        if not answer <= here:  # cut by a window edge, or elsewhere: [CLS] for both
            assert (starts[row], ends[row]) == (0, 0), (texts[example], row)
            continue
        assert 0 < starts[row] <= ends[row]
        got = context[offsets[0][starts[row]]:offsets[1][ends[row]]].decode()
        assert got == texts[example]
        (twice if example in labelled else labelled).add(example)
    assert labelled == set(range(len(LABELLED)))
    assert twice  # some answers lie in the overlap of two windows, and both label them


def test_an_answer_cut_by_the_window_edge_is_labelled_cls(tiny):
    windows, starts, ends, _, _, _ = _labels_by_window(tiny, 14, 3)
    # "what sat" is 2 pieces: windows of 9 of the 19 context pieces start at pieces 0, 3, 6, 9 and 12. "the mat" is
    # pieces 11-12: window 1 (3-11) ends inside it and window 4 (12-18) starts inside it.
    rows = np.flatnonzero(windows["example_index"] == 2)
    assert len(rows) == 5
    assert starts[rows].tolist() == [0, 0, 4 + 11 - 6, 4 + 11 - 9, 0]
    assert ends[rows].tolist() == [0, 0, 4 + 12 - 6, 4 + 12 - 9, 0]


def test_span_labels_with_accents_and_word_level_offsets(minilm):
    context = "Le musée du Louvre à Paris est très grand."
    answer = "musée du Louvre"
    start, end = char_to_byte_span(context, context.index(answer), answer)
    windows = qa_windows(minilm, tf.constant(["où"]), tf.constant([context]), 64, 16, 8)
    s, e = (t.numpy()[0] for t in span_labels(windows, tf.constant([start]), tf.constant([end])))
    got = context.encode()[windows["offset_start"].numpy()[0, s]:windows["offset_end"].numpy()[0, e]].decode()
    assert got == answer


def test_char_to_byte_span_and_back():
    context = "Zürich — 中文 ok"
    assert char_to_byte_span(context, 9, "中文") == (len("Zürich — ".encode()), len("Zürich — 中文".encode()))
    with pytest.raises(ValueError, match="not at character"):
        char_to_byte_span(context, 8, "中文")
    start, end = char_to_byte_span(context, 0, "Zürich")
    text = answer_text(tf.constant([context]), tf.constant([start]), tf.constant([end]))
    assert text.numpy().tolist() == ["Zürich".encode()]
    offsets = tf.constant([end, len("Zürich — ".encode())])
    assert char_offset(tf.constant([context, context]), offsets).numpy().tolist() == [6, 9]


# --- decoding --------------------------------------------------------------------------------------------------------

def _brute_force(start_logits, end_logits, windows, num_examples, max_answer_length):
    best = [(-np.inf, 0, 0)] * num_examples
    for row, example in enumerate(windows["example_index"]):
        context = np.flatnonzero(windows["offset_start"][row] >= 0)
        for i in context:
            for j in context:
                if i <= j < i + max_answer_length:
                    score = start_logits[row, i] + end_logits[row, j]
                    if score > best[example][0]:
                        best[example] = (score, windows["offset_start"][row, i], windows["offset_end"][row, j])
    return best


@tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32)] * 2 + [
    {"example_index": tf.TensorSpec([None], tf.int32), "offset_start": tf.TensorSpec([None, None], tf.int32),
     "offset_end": tf.TensorSpec([None, None], tf.int32)}, tf.TensorSpec([], tf.int32)])
def _decode(start, end, windows, num_examples):
    return best_spans(start, end, windows, num_examples, max_answer_length=4)


def _bookkeeping(windows):
    return {k: windows[k] for k in ("example_index", "offset_start", "offset_end")}


def test_best_spans_matches_brute_force_over_windows_and_examples(tiny):
    windows = qa_windows(tiny, tf.constant(QUESTIONS), tf.constant(CONTEXTS), 16, 3, 4)
    count, seq = windows["input_word_ids"].shape
    rng = np.random.default_rng(0)
    for _ in range(5):
        start, end = rng.normal(size=(2, count, seq)).astype(np.float32)
        got = _decode(start, end, _bookkeeping(windows), 4)
        numpy_windows = {k: v.numpy() for k, v in windows.items()}
        expected = _brute_force(start, end, numpy_windows, 4, 4)
        for example, (score, first, last) in enumerate(expected):
            if example == 2:  # empty context
                assert np.isneginf(got["score"].numpy()[example])
                assert got["start_byte"].numpy()[example] == got["end_byte"].numpy()[example] == 0
                continue
            assert got["score"].numpy()[example] == pytest.approx(score, rel=1e-6)
            assert (got["start_byte"].numpy()[example], got["end_byte"].numpy()[example]) == (first, last)


def test_best_spans_on_hand_built_logits(tiny):
    context = "the cat sat on the mat and the dog ran fast and the dog sat"  # 15 pieces
    windows = qa_windows(tiny, tf.constant(["the dog"]), tf.constant([context]), 14, 4, 4)
    # 14 - 2 - 3 = 9 pieces a window: windows start at pieces 0, 4 and 8; their context is at positions 4-12 (4-10).
    assert windows["example_index"].numpy().tolist() == [0, 0, 0]
    start = np.full((3, 14), -100.0, np.float32)
    end = np.full((3, 14), -100.0, np.float32)
    start[:, :4] = end[:, :4] = 100.0  # [CLS], the question and its [SEP]: never chosen
    end[2, 11:] = 100.0  # the last window's final [SEP] and padding
    start[0, 5], end[0, 6] = 3.0, 3.0  # window 0: "cat sat", 6
    start[1, 8], end[1, 9] = 4.0, 4.0  # window 1: "dog ran" (pieces 8-9), 8: the best
    start[2, 4], end[2, 5] = 3.5, 3.5  # the same pieces in window 2, 7
    end[1, 7] = 50.0  # just before the best start: j >= i rules it out
    start[0, 8], end[0, 12] = 30.0, 30.0  # 5 pieces from start to end: over max_answer_length=4
    best = {k: v.numpy().tolist() for k, v in _decode(start, end, _bookkeeping(windows), 1).items()}
    assert best["score"] == [8.0]
    assert context.encode()[best["start_byte"][0]:best["end_byte"][0]] == b"dog ran"


def test_best_spans_respects_order_length_and_context(tiny):
    context = "the cat sat on the mat"  # pieces at positions 3..8 with question "dog"
    windows = qa_windows(tiny, tf.constant(["dog"]), tf.constant([context]), 12, 4, 4)
    words = context.split()

    def decode(start_at: dict, end_at: dict, max_answer_length: int = 4) -> tuple[str, float]:
        start, end = np.zeros((1, 12), np.float32), np.zeros((1, 12), np.float32)
        for p, v in start_at.items():
            start[0, p] = v
        for p, v in end_at.items():
            end[0, p] = v
        best = best_spans(start, end, windows, 1, max_answer_length)
        text = answer_text(tf.constant([context]), best["start_byte"], best["end_byte"]).numpy()[0].decode()
        return text, float(best["score"].numpy()[0])

    assert decode({4: 5.0}, {6: 5.0}) == (" ".join(words[1:4]), 10.0)  # "cat sat on"
    assert decode({0: 90.0, 1: 90.0, 4: 1.0}, {2: 90.0, 11: 90.0, 5: 1.0}) == ("cat sat", 2.0)  # CLS/question/SEP/pad
    assert decode({6: 9.0}, {4: 9.0, 6: 1.0}) == ("on", 10.0)  # j >= i: the end before the start loses
    assert decode({3: 5.0}, {8: 6.0, 4: 2.0}) == ("the cat", 7.0)  # "the ... mat" is 6 pieces > 4
    assert decode({3: 5.0}, {8: 6.0, 4: 2.0}, max_answer_length=6) == (context, 11.0)


def test_best_spans_picks_across_windows_and_examples(tiny):
    contexts = ["the cat sat on the mat and the dog ran fast", "a dog ran"]
    windows = qa_windows(tiny, tf.constant(["cat", "dog"]), tf.constant(contexts), 10, 3, 2)
    examples = windows["example_index"].numpy().tolist()
    assert examples.count(0) > 1 and examples.count(1) == 1
    count = len(examples)
    start, end = np.zeros((count, 10), np.float32), np.zeros((count, 10), np.float32)
    last_of_0 = examples.count(0) - 1
    # Example 0's windows start at pieces 0, 3 and 6, their context at position 3: "dog ran" is at 5-6 of the last.
    start[last_of_0, 5] = end[last_of_0, 6] = 7.0
    start[0, 3] = end[0, 3] = 6.0  # "the": slightly worse, in its first window
    start[count - 1, 4] = end[count - 1, 5] = 2.0  # example 1: "dog ran"
    best = best_spans(start, end, windows, 2)
    texts = answer_text(tf.constant(contexts), best["start_byte"], best["end_byte"]).numpy().tolist()
    assert texts == [b"dog ran", b"dog ran"]
    assert best["score"].numpy().tolist() == [14.0, 4.0]


# --- pipeline ------------------------------------------------------------------------------------------------------

def test_qa_dataset_labelled_element_spec_and_labels(tiny):
    questions, contexts, texts, chars = zip(*LABELLED)
    answers = [char_to_byte_span(c, s, a) for c, s, a in zip(contexts, chars, texts)]
    ds = qa_dataset(questions, contexts, answers, tiny, 14, 3, 4, batch_size=4, training=True, seed=3)
    features, labels = ds.element_spec
    assert features == {name: tf.TensorSpec([None, 14], tf.int32, name=None) for name in MODEL_INPUTS}
    assert labels == {name: tf.TensorSpec([None], tf.int32) for name in ("start_positions", "end_positions")}
    batches = list(ds)
    assert all(b[0]["input_word_ids"].shape[0] <= 4 for b in batches)
    windows, starts, _, _, _, _ = _labels_by_window(tiny, 14, 3)
    assert sum(b[0]["input_word_ids"].shape[0] for b in batches) == len(starts)
    got = sorted(zip(np.concatenate([b[0]["input_word_ids"].numpy() for b in batches]).tolist(),
                     np.concatenate([b[1]["start_positions"].numpy() for b in batches]).tolist()))
    assert got == sorted(zip(windows["input_word_ids"].tolist(), starts.tolist()))  # same windows, shuffled
    again = [b[1]["start_positions"].numpy().tolist() for b in qa_dataset(
        questions, contexts, answers, tiny, 14, 3, 4, batch_size=4, training=True, seed=3)]
    assert again == [b[1]["start_positions"].numpy().tolist() for b in batches]  # seeded
    repeated = qa_dataset(questions, contexts, answers, tiny, 14, 3, 4, batch_size=4, training=True, repeat=True)
    assert repeated.element_spec[0]["input_word_ids"].shape.as_list() == [4, 14]


def test_qa_dataset_unlabelled_keeps_order_and_global_example_index(tiny):
    count = 70  # more than one tokenizing batch of 64
    contexts = [f"the cat sat on the mat {'and the dog ran ' * (i % 4)}" for i in range(count)]
    ds = qa_dataset(["where"] * count, contexts, None, tiny, 16, 4, 4, batch_size=8)
    features, bookkeeping = ds.element_spec
    assert set(features) == set(MODEL_INPUTS)
    assert bookkeeping == {"example_index": tf.TensorSpec([None], tf.int32),
                           "offset_start": tf.TensorSpec([None, 16], tf.int32),
                           "offset_end": tf.TensorSpec([None, 16], tf.int32)}
    index = np.concatenate([b["example_index"].numpy() for _, b in ds])
    assert index.tolist() == sorted(index.tolist()) and set(index.tolist()) == set(range(count))
    # Decoding the whole dataset: the context piece with the highest start/end logit comes back for each example.
    starts, ends, offsets_start, offsets_end = [], [], [], []
    for features, b in ds:
        is_mat = tf.cast(tf.equal(features["input_word_ids"], 14), tf.float32) * 5.0  # "mat"
        starts.append(is_mat)
        ends.append(is_mat)
        offsets_start.append(b["offset_start"])
        offsets_end.append(b["offset_end"])
    windows = {"example_index": tf.constant(index), "offset_start": tf.concat(offsets_start, 0),
               "offset_end": tf.concat(offsets_end, 0)}
    best = best_spans(tf.concat(starts, 0), tf.concat(ends, 0), windows, count)
    texts = answer_text(tf.constant(contexts), best["start_byte"], best["end_byte"]).numpy().tolist()
    assert texts == [b"mat"] * count


def test_qa_dataset_refuses_mismatched_inputs(tiny):
    with pytest.raises(ValueError, match="as many"):
        qa_dataset(["a"], ["b", "c"], None, tiny, 16, 4, 4, 8)
    with pytest.raises(ValueError, match="as many"):
        qa_dataset([], [], None, tiny, 16, 4, 4, 8)


def test_minilm_round_trip_with_real_text(minilm):
    context = ("Die Universität Zürich (UZH) wurde 1833 gegründet. The University of Zürich is the largest "
               "university in Switzerland, with over 28,000 students — it's in the canton of Zürich.")
    answer = "over 28,000 students"
    span = char_to_byte_span(context, context.index(answer), answer)
    windows = qa_windows(minilm, tf.constant(["How many students?"]), tf.constant([context]), 48, 8, 16)
    starts, ends = span_labels(windows, tf.constant([span[0]]), tf.constant([span[1]]))
    assert (starts.numpy() > 0).any()
    count = windows["example_index"].shape[0]
    start_logits = tf.one_hot(starts, 48) * 10.0
    end_logits = tf.one_hot(ends, 48) * 10.0
    # Windows without the answer put their mass on [CLS], which decoding never picks.
    best = best_spans(start_logits, end_logits, windows, 1)
    assert answer_text(tf.constant([context]), best["start_byte"], best["end_byte"]).numpy()[0].decode() == answer
    assert char_offset(tf.constant([context]), best["start_byte"]).numpy()[0] == context.index(answer)
    assert count > 1


def test_features_and_decoding_survive_a_savedmodel_round_trip(tiny, tmp_path):
    """The export's path: raw question/context strings in, answer text and character offsets out."""
    module = tf.Module()
    module.tokenizer = tiny

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)] * 2)
    def answer(question, context):
        windows = qa_windows(tiny, question, context, 16, 4, 4)
        mat = tf.cast(tf.equal(windows["input_word_ids"], 14), tf.float32)  # a stand-in model: "mat" is the answer
        best = best_spans(mat, mat, windows, tf.shape(question)[0])
        return {"answer": answer_text(context, best["start_byte"], best["end_byte"]),
                "start_char": char_offset(context, best["start_byte"])}

    module.answer = answer
    tf.saved_model.save(module, str(tmp_path / "qa"))
    loaded = tf.saved_model.load(str(tmp_path / "qa"))
    contexts = ["Über the cat sat on the MAT.", "the dog ran " * 5 + "on the mat"]
    out = loaded.answer(tf.constant(["where", "where"]), tf.constant(contexts))
    assert out["answer"].numpy().tolist() == [b"MAT", b"mat"]
    assert out["start_char"].numpy().tolist() == [contexts[0].index("MAT"), contexts[1].index("mat")]
