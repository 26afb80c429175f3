"""WordPiece vocabulary training: special tokens first, size cap, reachability, determinism."""

from __future__ import annotations

import pytest
import tensorflow as tf

from tfpipe.config import VocabConfig
from tfpipe.text.tokenizer import SPECIAL_TOKENS, WordPieceTokenizer
from tfpipe.text.vocab import build_vocabulary, count_words, learn_vocabulary, write_vocabulary

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Foxes are quick; dogs are lazy!",
    "Café owners in Zürich serve coffee at 7:30 a.m.",
    "The dog's owner (a baker) said: \"quick, quick\".",
] * 5


def test_counts_use_the_runtime_pre_split():
    counts = count_words(CORPUS, lowercase=True)
    assert counts["the"] == 15 and counts["cafe"] == 5 and counts["zurich"] == 5  # lower-cased, accents gone
    assert counts["'"] == 5 and counts["s"] == 5  # "dog's" splits on the apostrophe, as the tokenizer does
    assert "dog's" not in counts and "lazy!" not in counts
    cased = count_words(CORPUS, lowercase=False)
    assert cased["Café"] == 5 and cased["The"] == 10


def test_vocabulary_layout_size_and_reachability(tmp_path):
    tokens = build_vocabulary(CORPUS, VocabConfig(vocab_size=120))
    assert tokens[: len(SPECIAL_TOKENS)] == list(SPECIAL_TOKENS)
    assert len(tokens) <= 120 and len(set(tokens)) == len(tokens)
    tok = WordPieceTokenizer(tokens)
    ids = tok.tokenize(tf.constant(CORPUS)).flat_values.numpy()
    assert tok.unk_id not in ids  # every character of the corpus is in the vocabulary
    path = write_vocabulary(tokens, tmp_path / "vocab.txt")
    assert WordPieceTokenizer(path).vocabulary == tokens


def test_deterministic_and_independent_of_order():
    config = VocabConfig(vocab_size=100)
    assert build_vocabulary(CORPUS, config) == build_vocabulary(list(reversed(CORPUS)), config)


def test_too_small_vocab_and_empty_input_are_errors():
    with pytest.raises(ValueError, match="vocab_size"):
        build_vocabulary(CORPUS, VocabConfig(vocab_size=20))
    with pytest.raises(ValueError, match="empty"):
        learn_vocabulary(count_words([]))
