"""The in-graph tokenizer: parity with the reference BertTokenizer, packing, word alignment, graph use."""

from __future__ import annotations

import json
import random
import unicodedata

import pytest
import tensorflow as tf

from tests.conftest import TINY_VOCAB, shared_path
from tfpipe.text.tokenizer import WordPieceTokenizer, load_vocabulary, pre_split


@pytest.fixture(scope="module")
def reference():
    path = shared_path("checkpoints", "minilm-l6-h384-uncased", "tokenizer_reference.json")
    cases = json.loads(path.read_text(encoding="utf-8"))["cases"]
    tok = WordPieceTokenizer(path.parent / "vocab.txt")
    return tok, cases


def test_reference_single_texts_match_100_percent(reference):
    tok, cases = reference
    singles = [c for c in cases if "text_pair" not in c]
    ids, types = tok.encode(tf.constant([c["text"] for c in singles]))
    mismatches = [c["text"][:60] for c, got in zip(singles, ids.to_list()) if got != c["input_ids"]]
    assert len(singles) == 895
    assert mismatches == []
    assert all(set(t) == {0} for t in types.to_list())


def test_reference_pairs_match_100_percent(reference):
    tok, cases = reference
    pairs = [c for c in cases if "text_pair" in c]
    ids, types = tok.encode(tf.constant([c["text"] for c in pairs]), tf.constant([c["text_pair"] for c in pairs]))
    assert len(pairs) == 408
    for case, got_ids, got_types in zip(pairs, ids.to_list(), types.to_list()):
        assert got_ids == case["input_ids"], case["text"]
        assert got_types == case["token_type_ids"], case["text"]


def _fuzz_texts(seed: int, count: int) -> list[str]:
    """Random texts from scripts and symbols that both implementations' Unicode tables agree on."""
    pools = [range(0x20, 0x7F), range(0xA0, 0x250), range(0x300, 0x370), range(0x391, 0x3CA), range(0x400, 0x450),
             range(0x4E00, 0x4E80), range(0x2010, 0x2028), range(0xFF01, 0xFF5F), range(0x0, 0x20),
             range(0x1F600, 0x1F650), range(0xAC00, 0xAC40), range(0x621, 0x64B), range(0x905, 0x939)]
    rng = random.Random(seed)
    texts = []
    while len(texts) < count:
        chars = [chr(rng.choice(rng.choice(pools))) if rng.random() < 0.5 else rng.choice([" ", "a", "the ", "ing "])
                 for _ in range(rng.randint(0, 60))]
        text = "".join(c for c in chars if len(c) > 1 or unicodedata.category(c) != "Cn")
        texts.append(text)
    return texts + ["ж" * 60, "é" * 99 + "e", "e" * 101, "\u2028split\u2029here", "ﬁne Kelvin K Ω"]


def test_parity_on_unseen_text_against_hugging_face_tokenizers(minilm_vocab):
    tokenizers = pytest.importorskip("tokenizers", reason="the reference `tokenizers` library is a dev extra")
    hf = tokenizers.Tokenizer.from_file(str(minilm_vocab.parent / "tokenizer.json"))
    hf.no_padding()
    hf.no_truncation()
    tok = WordPieceTokenizer(minilm_vocab)
    texts = _fuzz_texts(seed=7, count=1500)
    got = tok.encode(tf.constant(texts))[0].to_list()
    mismatches = [(t, g) for t, g in zip(texts, got) if hf.encode(t).ids != g]
    assert mismatches == []


def test_over_long_words_count_characters_not_bytes(minilm_vocab):
    tok = WordPieceTokenizer(minilm_vocab)
    # 60 Cyrillic letters are 120 bytes but 60 characters: still word pieces, not [UNK].
    ids = tok.tokenize(tf.constant(["ж" * 60, "a" * 101])).to_list()
    assert ids[0] != [tok.unk_id] and len(ids[0]) > 1
    assert ids[1] == [tok.unk_id]


def test_pack_adds_specials_and_trims_longest_segment_first():
    tok = WordPieceTokenizer(TINY_VOCAB)
    a = tok.tokenize(tf.constant(["the cat sat on the mat"]))
    b = tok.tokenize(tf.constant(["a dog"]))
    ids, types = tok.pack([a, b], max_length=7)
    assert tok.id_to_token(ids.to_list()[0]) == ["[CLS]", "the", "cat", "[SEP]", "a", "dog", "[SEP]"]
    assert types.to_list()[0] == [0, 0, 0, 0, 1, 1, 1]
    single, _ = tok.encode(tf.constant(["the cat sat on the mat"]), max_length=4)
    assert tok.id_to_token(single.to_list()[0]) == ["[CLS]", "the", "cat", "[SEP]"]
    with pytest.raises(ValueError, match="max_length"):
        tok.pack([a, b], max_length=3)


def test_empty_text_gives_cls_sep():
    tok = WordPieceTokenizer(TINY_VOCAB)
    ids, _ = tok.encode(tf.constant(["", "   \t"]))
    assert ids.to_list() == [[2, 3], [2, 3]]


def test_tokenize_words_keeps_every_given_word_aligned():
    tok = WordPieceTokenizer(TINY_VOCAB)
    words = tf.ragged.constant([["John", "lives", "in", "New", "York.", "\x07"]])
    pieces = tok.tokenize_words(words).to_list()[0]
    assert len(pieces) == 6
    assert tok.id_to_token(pieces[4]) == ["york", "."]  # one given word, two pre-split words
    assert pieces[5] == []  # nothing left after cleaning; the pipeline gives such words an [UNK]


def test_pre_split_matches_reference_rules():
    words = pre_split(tf.constant(["Héllo, WORLD!\u200b中文 don't"])).to_list()[0]
    assert [w.decode() for w in words] == ["hello", ",", "world", "!", "中", "文", "don", "'", "t"]
    cased = pre_split(tf.constant(["Héllo"]), lowercase=False).to_list()[0]
    assert [w.decode() for w in cased] == ["Héllo"]


def test_runs_inside_tf_function_and_tf_data():
    tok = WordPieceTokenizer(TINY_VOCAB)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def encode(text):
        return tok.encode(text)[0].to_tensor()

    eager = tok.encode(tf.constant(["the cats ran fast"]))[0].to_tensor()
    assert encode(tf.constant(["the cats ran fast"])).numpy().tolist() == eager.numpy().tolist()
    ds = tf.data.Dataset.from_tensor_slices(["the dog sat", "a cat"]).batch(2).map(lambda t: tok.tokenize(t))
    assert next(iter(ds)).to_list() == [[8, 11, 12], [9, 10]]


def test_vocabulary_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="vocab.txt"):
        load_vocabulary(tmp_path / "vocab.txt")
    bad = tmp_path / "bad.txt"
    bad.write_text("a\nb\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"\[PAD\]"):
        load_vocabulary(bad)
