"""Pretraining TFRecords: masking and NSP statistics, positions, determinism, manifest, whole-word masking."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import TINY_VOCAB, shared_path
from tfpipe.config import PretrainingConfig
from tfpipe.data.pipelines import pretraining_dataset
from tfpipe.data.pretraining_data import create_pretraining_data
from tfpipe.text.tokenizer import WordPieceTokenizer


def _all_examples(data_dir: Path) -> dict[str, np.ndarray]:
    batches = list(pretraining_dataset(data_dir, 4096, shuffle_buffer=0, repeat=False))
    return {k: np.concatenate([b[k].numpy() for b in batches]) for k in batches[0]}


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def wikitext_runs(tmp_path_factory):
    corpus = shared_path("data", "wikitext2", "valid.txt")
    tokenizer = WordPieceTokenizer(shared_path("checkpoints", "minilm-l6-h384-uncased", "vocab.txt"))
    config = PretrainingConfig(dupe_factor=2, num_shards=3, seed=11)
    dirs = [tmp_path_factory.mktemp(name) for name in ("a", "b")]
    manifests = [create_pretraining_data([corpus], tokenizer, d, config) for d in dirs]
    return tokenizer, config, dirs, manifests


def test_wikitext_masking_and_nsp_statistics(wikitext_runs):
    tokenizer, config, dirs, manifests = wikitext_runs
    ex = _all_examples(dirs[0])
    assert len(ex["input_word_ids"]) == manifests[0]["num_instances"] > 1000
    lengths = ex["input_mask"].sum(axis=1)
    non_special = (lengths - 3).sum()  # [CLS] and two [SEP] per instance
    masked = ex["masked_lm_weights"].sum()
    assert 0.14 <= masked / non_special <= 0.16
    assert 0.47 <= ex["next_sentence_labels"].mean() <= 0.53
    assert manifests[0]["stats"]["masked_fraction"] == pytest.approx(masked / non_special)


def test_wikitext_masked_positions_are_inside_and_never_on_specials(wikitext_runs):
    tokenizer, config, dirs, _ = wikitext_runs
    ex = _all_examples(dirs[0])
    lengths = ex["input_mask"].sum(axis=1)
    used = ex["masked_lm_weights"] > 0
    positions = np.where(used, ex["masked_lm_positions"], -1)
    assert (positions[used] >= 1).all()  # never [CLS] at position 0
    assert (positions < lengths[:, None]).all()  # inside the sequence
    rows = np.nonzero(used)[0]
    at = ex["input_word_ids"][rows, positions[used]]
    assert not np.isin(ex["masked_lm_ids"][used], [tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id]).any()
    assert not np.isin(at, [tokenizer.cls_id, tokenizer.sep_id]).any()
    # 80% [MASK], 10% random, 10% unchanged.
    mask_share = (at == tokenizer.mask_id).mean()
    same_share = (at == ex["masked_lm_ids"][used]).mean()
    assert 0.78 <= mask_share <= 0.82 and 0.08 <= same_share <= 0.12
    # Exactly two [SEP]s and one [CLS] per instance, segment ids 0 then 1.
    assert (ex["input_word_ids"][:, 0] == tokenizer.cls_id).all()
    assert ((ex["input_word_ids"] == tokenizer.sep_id).sum(axis=1) == 2).all()


def test_same_seed_same_bytes_and_no_absolute_paths(wikitext_runs, tmp_path):
    tokenizer, config, dirs, _ = wikitext_runs
    first, second = _files(dirs[0]), _files(dirs[1])
    assert first.keys() == {"manifest.json", *(f"pretrain-0000{i}-of-00003.tfrecord" for i in range(3))}
    assert first == second
    text = first["manifest.json"].decode()
    assert str(dirs[0]) not in text and "/work" not in text and "time" not in text


def test_different_seed_different_bytes(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("The cat sat on the mat. The dog ran fast.\nA cat is good. A dog is bad.\n\n"
                      "The movie is very good! It was new.\nJohn lives in New York. The city is fast.\n")
    tok = WordPieceTokenizer(TINY_VOCAB)
    configs = [PretrainingConfig(num_shards=1, seed=s, max_predictions_per_seq=4, max_seq_length=16) for s in (1, 2)]
    a = create_pretraining_data([corpus], tok, tmp_path / "a", configs[0])
    b = create_pretraining_data([corpus], tok, tmp_path / "b", configs[1])
    assert a["shards"][0]["sha256"] != b["shards"][0]["sha256"]


def test_random_next_is_an_unbiased_coin_on_short_documents(tmp_path):
    # Many one- and two-sentence documents: Google's script forces random-next on single-segment chunks.
    lines = []
    for i in range(400):
        # Distinct lines: corpus cleaning drops exact duplicates.
        lines.append(f"The cat sat on the mat {i}." if i % 2 else f"The dog ran fast {i}. A cat is good.")
        lines.append("")
    corpus = tmp_path / "short.txt"
    corpus.write_text("\n".join(lines), encoding="utf-8")
    manifest = create_pretraining_data([corpus], WordPieceTokenizer(TINY_VOCAB), tmp_path / "out",
                                       PretrainingConfig(num_shards=1, dupe_factor=10, seed=3, max_seq_length=32))
    assert manifest["num_instances"] > 3000
    assert 0.47 <= manifest["stats"]["random_next_fraction"] <= 0.53


def test_whole_word_masking_masks_every_piece_of_a_word(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n\n".join("The cats ran and the dogs sat. A movie is running." for _ in range(50)))
    tok = WordPieceTokenizer(TINY_VOCAB)
    create_pretraining_data([corpus], tok, tmp_path / "out", PretrainingConfig(
        num_shards=1, seed=5, whole_word_mask=True, masked_lm_prob=0.3, max_seq_length=32))
    ex = _all_examples(tmp_path / "out")
    continuation = np.array([t.startswith("##") for t in TINY_VOCAB])
    for ids, positions, weights, originals in zip(ex["input_word_ids"], ex["masked_lm_positions"],
                                                  ex["masked_lm_weights"], ex["masked_lm_ids"]):
        chosen = set(positions[weights > 0].tolist())
        restored = ids.copy()
        restored[positions[weights > 0]] = originals[weights > 0]
        for pos in chosen:
            if continuation[restored[pos]]:
                assert pos - 1 in chosen  # a "##" piece is masked only with the piece before it
            if pos + 1 < len(restored) and continuation[restored[pos + 1]]:
                assert pos + 1 in chosen


def test_manifest_records_vocab_and_config(tmp_path, tiny_vocab_file):
    corpus = tmp_path / "c.txt"
    corpus.write_text("The cat sat. The dog ran.\n\nA movie is good. It was bad.\n")
    tok = WordPieceTokenizer(tiny_vocab_file)
    manifest = create_pretraining_data([corpus], tok, tmp_path / "out", PretrainingConfig(num_shards=2))
    on_disk = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert on_disk == manifest
    assert manifest["vocab"] == {"size": len(TINY_VOCAB), "sha256": tok.hash, "lowercase": True}
    assert manifest["inputs"] == ["c.txt"]
    assert sum(s["num_instances"] for s in manifest["shards"]) == manifest["num_instances"]


def test_empty_corpus_is_a_clear_error(tmp_path):
    corpus = tmp_path / "empty.txt"
    corpus.write_text("\n\n")
    with pytest.raises(ValueError, match="empty.txt"):
        create_pretraining_data([corpus], WordPieceTokenizer(TINY_VOCAB), tmp_path / "out")


def test_pretraining_pipeline_is_deterministic_and_dynamic_masking_keeps_tokens(wikitext_runs):
    tokenizer, config, dirs, _ = wikitext_runs
    first = [b["input_word_ids"].numpy() for b in pretraining_dataset(dirs[0], 8, seed=4).take(3)]
    again = [b["input_word_ids"].numpy() for b in pretraining_dataset(dirs[0], 8, seed=4).take(3)]
    assert all((x == y).all() for x, y in zip(first, again))
    static = next(iter(pretraining_dataset(dirs[0], 8, seed=4)))
    dynamic = next(iter(pretraining_dataset(dirs[0], 8, seed=4, dynamic_masking=True, tokenizer=tokenizer)))

    def restore(batch):
        ids = batch["input_word_ids"].numpy().copy()
        for row in range(len(ids)):
            keep = batch["masked_lm_weights"].numpy()[row] > 0
            ids[row, batch["masked_lm_positions"].numpy()[row][keep]] = batch["masked_lm_ids"].numpy()[row][keep]
        return ids

    assert (restore(static) == restore(dynamic)).all()  # the same text underneath
    assert not (static["masked_lm_positions"].numpy() == dynamic["masked_lm_positions"].numpy()).all()
    used = dynamic["masked_lm_weights"].numpy() > 0
    lengths = dynamic["input_mask"].numpy().sum(1, keepdims=True)
    assert (np.where(used, dynamic["masked_lm_positions"].numpy(), 0) < lengths).all()
    assert (np.where(used, dynamic["masked_lm_positions"].numpy(), 1) >= 1).all()
