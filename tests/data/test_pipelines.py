"""Fine-tuning tf.data pipelines: labels, pairs, bucketing, regression, token-label alignment, order."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import TINY_VOCAB, shared_path
from tfpipe.config import PipelineConfig, ReaderConfig
from tfpipe.data.labels import IGNORE_INDEX
from tfpipe.data.pipelines import finetune_dataset
from tfpipe.text.labels import LabelVocab
from tfpipe.text.readers import Record, TokenRecord, read_records
from tfpipe.text.tokenizer import WordPieceTokenizer

TOK = WordPieceTokenizer(TINY_VOCAB)


def _records(n: int = 10) -> list[Record]:
    texts = ["the cat sat", "a dog ran fast and the cat sat on the mat", "good movie", "bad"]
    return [Record(texts[i % 4], label=("pos", "neg")[i % 2], line=i + 2) for i in range(n)]


def test_classification_batches_keep_order_and_original_label_strings(tmp_path):
    records = _records()
    labels = LabelVocab.from_records(records)
    assert labels.labels == ["neg", "pos"]
    ds = finetune_dataset(records, TOK, "classification", labels, PipelineConfig(batch_size=4))
    got = [int(y) for _, batch in ds for y in batch.numpy()]
    assert [labels.labels[i] for i in got] == [r.label for r in records]
    features, _ = next(iter(ds))
    assert set(features) == {"input_word_ids", "input_mask", "input_type_ids"}
    ids = features["input_word_ids"].numpy()
    assert ids.dtype == np.int32 and ids.shape[1] == 13  # padded to the longest in the batch ([CLS] + 11 + [SEP])
    assert (features["input_mask"].numpy() == (ids != TOK.pad_id)).all()
    labels.save(tmp_path / "labels.txt")
    assert LabelVocab.load(tmp_path / "labels.txt").labels == ["neg", "pos"]


def test_buckets_pad_to_fixed_lengths():
    config = PipelineConfig(batch_size=2, max_seq_length=16, bucket_boundaries=[4, 8])
    ds = finetune_dataset(_records(12), TOK, "classification", LabelVocab(["neg", "pos"]), config, training=True)
    lengths = {int(f["input_word_ids"].shape[1]) for f, _ in ds}
    assert lengths <= {4, 8, 16} and len(lengths) >= 2
    total = sum(int(y.shape[0]) for _, y in ds)
    assert total == 12  # nothing dropped by bucketing


def _varied_records(n: int) -> list[Record]:
    words = "the cat sat on a mat and a dog ran fast good bad movie".split()
    rng = np.random.RandomState(0)
    return [Record(" ".join(rng.choice(words, rng.randint(1, 14))), label=("neg", "pos")[i % 2], line=i + 2)
            for i in range(n)]


def _real_lengths(ds) -> list[list[int]]:
    return [f["input_mask"].numpy().sum(axis=1).tolist() for f, *_ in ds]


def test_sorted_windows_pad_each_batch_to_its_longest_and_keep_every_example():
    records = _varied_records(50)
    labels = LabelVocab(["neg", "pos"])
    config = PipelineConfig(batch_size=4, max_seq_length=16, sort_window=5, shuffle_buffer=0)
    plain = list(finetune_dataset(records, TOK, "classification", labels, PipelineConfig(batch_size=4,
                                  max_seq_length=16, shuffle_buffer=0), training=True))
    batches = list(finetune_dataset(records, TOK, "classification", labels, config, training=True))
    # Every example once (ids + label), nothing dropped without repeat.
    def rows(bs):
        return sorted((tuple(int(t) for t in ids if t != TOK.pad_id), int(y))
                      for f, ys in bs for ids, y in zip(f["input_word_ids"].numpy(), ys.numpy()))
    assert rows(batches) == rows(plain)
    for features, _ in batches:
        mask = features["input_mask"].numpy()
        assert mask.shape[1] == mask.sum(axis=1).max()  # no all-padding columns
        assert (mask == (features["input_word_ids"].numpy() != TOK.pad_id)).all()
    padded = sum(f["input_mask"].numpy().size for f, _ in batches)
    assert padded < sum(f["input_mask"].numpy().size for f, _ in plain)
    # Within each window of 5 batches the lengths are sorted: each batch's lengths lie in one band.
    window_lengths = _real_lengths(batches[:5])
    spans = sorted((min(b), max(b)) for b in window_lengths)
    assert all(hi <= lo_next for (_, hi), (lo_next, _) in zip(spans, spans[1:]))
    # Batch order is shuffled (seeded): not simply shortest first, and the same seed gives the same batches.
    assert [min(b) for b in window_lengths] != sorted(min(b) for b in window_lengths)
    again = list(finetune_dataset(records, TOK, "classification", labels, config, training=True))
    assert _real_lengths(again) == _real_lengths(batches)


def test_sorted_windows_pad_to_bucket_boundaries_and_token_targets():
    records = [TokenRecord(r.text.split(), ["O"] * len(r.text.split()), line=r.line) for r in _varied_records(40)]
    labels = LabelVocab(["O"])
    config = PipelineConfig(batch_size=4, max_seq_length=16, sort_window=4, bucket_boundaries=[8])
    ds = finetune_dataset(records, TOK, "token-classification", labels, config, training=True, repeat=True)
    for features, target in ds.take(20):
        width = features["input_word_ids"].shape[1]
        assert width in (8, 16) and target.shape == (4, width)
        target, mask = target.numpy(), features["input_mask"].numpy()
        assert ((target == IGNORE_INDEX) | (mask == 1)).all()  # padded positions are ignored


def test_truncation_to_max_seq_length():
    config = PipelineConfig(batch_size=4, max_seq_length=8)
    ds = finetune_dataset(_records(4), TOK, "classification", LabelVocab(["neg", "pos"]), config)
    features, _ = next(iter(ds))
    ids = features["input_word_ids"].numpy()
    assert ids.shape[1] == 8 and ids[1, -1] == TOK.sep_id


def test_pairs_get_segment_ids():
    records = [Record("the cat", "a dog ran", "1"), Record("good", "bad movie", "0")]
    ds = finetune_dataset(records, TOK, "classification", LabelVocab(["0", "1"]), PipelineConfig(batch_size=2))
    features, labels = next(iter(ds))
    assert TOK.id_to_token(features["input_word_ids"].numpy()[0]) == [
        "[CLS]", "the", "cat", "[SEP]", "a", "dog", "ran", "[SEP]"]
    assert features["input_type_ids"].numpy()[0].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert labels.numpy().tolist() == [1, 0]


def test_regression_targets_are_floats():
    records = [Record("the cat", label="0.5"), Record("a dog", label="-2")]
    _, y = next(iter(finetune_dataset(records, TOK, "regression", None, PipelineConfig(batch_size=2))))
    assert y.numpy().dtype == np.float32 and y.numpy().tolist() == [0.5, -2.0]


def test_unlabelled_records_give_features_only():
    ds = finetune_dataset([Record("the cat"), Record("a dog")], TOK, "classification", None,
                          PipelineConfig(batch_size=2))
    element = next(iter(ds))
    assert isinstance(element, dict) and element["input_word_ids"].shape[0] == 2


def test_training_shuffle_is_seeded():
    records = [Record(f"the cat {'sat ' * (i % 5)}", label=str(i % 2)) for i in range(40)]
    labels = LabelVocab(["0", "1"])

    def order(seed):
        ds = finetune_dataset(records, TOK, "classification", labels, PipelineConfig(batch_size=40, seed=seed),
                              training=True)
        return next(iter(ds))[0]["input_mask"].numpy().sum(1).tolist()

    assert order(1) == order(1)
    assert order(1) != order(2)


def test_token_labels_on_first_piece_only():
    records = [TokenRecord(["John", "runs", "in", "New", "York."], ["B-PER", "O", "O", "B-LOC", "I-LOC"])]
    labels = LabelVocab.from_records(records)
    assert labels.labels == ["O", "B-LOC", "B-PER", "I-LOC"]
    features, target = next(iter(finetune_dataset(records, TOK, "token-classification", labels,
                                                  PipelineConfig(batch_size=1))))
    tokens = TOK.id_to_token(features["input_word_ids"].numpy()[0])
    assert tokens == ["[CLS]", "john", "run", "##s", "in", "new", "york", ".", "[SEP]"]
    names = [labels.labels[t] if t != IGNORE_INDEX else None for t in target.numpy()[0]]
    assert names == [None, "B-PER", "O", None, "O", "B-LOC", "I-LOC", None, None]


def test_token_word_with_no_pieces_keeps_its_label():
    records = [TokenRecord(["the", "\x07", "cat"], ["O", "B-MISC", "O"])]
    labels = LabelVocab.from_records(records)
    features, target = next(iter(finetune_dataset(records, TOK, "token-classification", labels,
                                                  PipelineConfig(batch_size=1))))
    assert TOK.id_to_token(features["input_word_ids"].numpy()[0]) == ["[CLS]", "the", "[UNK]", "cat", "[SEP]"]
    assert target.numpy()[0].tolist() == [IGNORE_INDEX, 0, labels.id("B-MISC"), 0, IGNORE_INDEX]


def test_labelled_records_without_label_vocab_is_an_error():
    with pytest.raises(ValueError, match="LabelVocab"):
        finetune_dataset(_records(2), TOK, "classification", None)


def test_real_conll_alignment_count_matches_words():
    path = shared_path("data", "conll2003", "valid.txt")
    records = list(read_records(path, ReaderConfig(), "token-classification"))[:200]
    labels = LabelVocab.from_records(records)
    tok = WordPieceTokenizer(shared_path("checkpoints", "minilm-l6-h384-uncased", "vocab.txt"))
    ds = finetune_dataset(records, tok, "token-classification", labels, PipelineConfig(batch_size=50,
                                                                                       max_seq_length=512))
    labelled = sum(int((t.numpy() != IGNORE_INDEX).sum()) for _, t in ds)
    assert labelled == sum(len(r.words) for r in records)  # one label per word, none lost
