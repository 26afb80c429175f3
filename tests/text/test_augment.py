"""EDA augmentation and the nltk WordNet layout, against the real system WordNet (/usr/share/wordnet)."""

from __future__ import annotations

import os
import random
import stat
import subprocess
import sys
from collections import Counter
from pathlib import Path

import nltk
import pytest

from tfpipe.text.augment import (
    LEXNAMES_TEXT,
    WORDNET_SOURCE,
    EdaAugmenter,
    WordNetMissingError,
    augment_records,
    load_wordnet,
    prepare_wordnet,
)
from tfpipe.text.readers.base import Record

SENTENCE = "the movie was good and the actors were great but the story felt long and slow"
LONG = "quick brown foxes jump over lazy dogs while clever cats watch happy birds sing sweet songs in green gardens"


def require_wordnet() -> None:
    if not (WORDNET_SOURCE / "data.noun").is_file():
        pytest.skip(f"{WORDNET_SOURCE / 'data.noun'} is absent: apt-get install wordnet-base wordnet-sense-index")


@pytest.fixture(autouse=True)
def _restore_nltk_path(monkeypatch):
    # prepare_wordnet adds its target to nltk.data.path; keep each test's tmp folder off the global list.
    monkeypatch.setattr(nltk.data, "path", list(nltk.data.path))


@pytest.fixture(scope="module")
def wordnet(tmp_path_factory):
    require_wordnet()
    # Loading WordNet takes seconds, so the module shares one reader; nltk.data.path is restored after.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(nltk.data, "path", list(nltk.data.path))
        yield load_wordnet(target=tmp_path_factory.mktemp("nltk_data"))


def make(wordnet, **rates) -> EdaAugmenter:
    settings = {"alpha_sr": 0.0, "alpha_ri": 0.0, "alpha_rs": 0.0, "p_rd": 0.0, "num_aug": 6, **rates}
    return EdaAugmenter(wordnet=wordnet, **settings)


def test_prepare_wordnet_builds_the_nltk_layout(tmp_path):
    require_wordnet()
    corpus = prepare_wordnet(target=tmp_path)

    assert corpus == tmp_path.resolve() / "corpora" / "wordnet"
    lines = (corpus / "lexnames").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 45
    assert [line.split("\t")[0] for line in lines] == [f"{i:02d}" for i in range(45)]
    assert lines[3] == "03\tnoun.Tops\t1" and lines[29] == "29\tverb.body\t2" and lines[44] == "44\tadj.ppl\t3"
    for src in (p for p in WORDNET_SOURCE.iterdir() if p.is_file()):
        copy = corpus / src.name
        assert copy.is_file() and not copy.is_symlink(), src.name
        assert copy.stat().st_size == src.stat().st_size, src.name
    assert (corpus / "adj.exc").read_bytes() == (WORDNET_SOURCE / "adj.exc").read_bytes()
    assert not (corpus / "bin").exists()  # the browser's folders are not part of the corpus
    for folder in (tmp_path, corpus.parent, corpus):  # nltk refuses data folders others can write to
        assert not folder.stat().st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    assert nltk.data.path[0] == str(tmp_path.resolve())


def test_prepare_wordnet_is_idempotent_and_replaces_old_symlinks(tmp_path):
    require_wordnet()
    corpus = prepare_wordnet(target=tmp_path)
    (corpus / "adv.exc").unlink()
    (corpus / "adv.exc").symlink_to(WORDNET_SOURCE / "adv.exc")  # a layout nltk refuses: links leave the root
    before = {p.name: p.lstat().st_ino for p in corpus.iterdir()}

    assert prepare_wordnet(target=tmp_path) == corpus
    after = {p.name: p.lstat().st_ino for p in corpus.iterdir()}

    assert after.keys() == before.keys()  # no temp files left behind, nothing added twice
    assert {name for name in after if after[name] != before[name]} == {"adv.exc"}
    assert not (corpus / "adv.exc").is_symlink()
    assert (corpus / "lexnames").read_text(encoding="utf-8") == LEXNAMES_TEXT
    assert nltk.data.path.count(str(tmp_path.resolve())) == 1


def test_default_target_honours_the_environment(tmp_path, monkeypatch):
    require_wordnet()
    monkeypatch.setenv("TFPIPE_NLTK_DATA", str(tmp_path / "env"))
    assert prepare_wordnet() == (tmp_path / "env" / "corpora" / "wordnet").resolve()
    assert (tmp_path / "env" / "corpora" / "wordnet" / "lexnames").is_file()


def test_missing_wordnet_names_the_install_command_and_path(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for call in (prepare_wordnet, load_wordnet):
        with pytest.raises(WordNetMissingError) as info:
            call(source=empty, target=tmp_path / "nltk")
        message = str(info.value)
        assert "apt-get install wordnet-base wordnet-sense-index" in message
        assert "make wordnet" in message and str(empty) in message
    assert not (tmp_path / "nltk").exists()


def test_load_wordnet_reads_the_system_wordnet(wordnet):
    assert wordnet.synsets("good") and wordnet.synsets("movie")
    assert any("film" in synset.lemma_names() for synset in wordnet.synsets("movie"))
    # Lexnames map synsets to their lexicographer files: a wrong file would shift these.
    assert wordnet.synset("movie.n.01").lexname() == "noun.communication"
    assert wordnet.synset("dog.n.01").lexname() == "noun.animal"
    assert wordnet.synset("run.v.01").lexname() == "verb.motion"
    synonyms = make(wordnet, alpha_sr=0.1).synonyms("Movie")
    assert "film" in synonyms and "motion picture" in synonyms
    assert "movie" not in synonyms and synonyms == sorted(synonyms)
    assert make(wordnet, alpha_sr=0.1).synonyms("zzxqv") == []


def test_nltk_corpus_wordnet_finds_the_prepared_folder(wordnet):
    from nltk.corpus import wordnet as lazy_wordnet

    lazy_wordnet._unload()  # start from the lazy loader, whatever another test loaded before
    try:
        assert Path(lazy_wordnet.root) == Path(wordnet.root)
        assert "film" in lazy_wordnet.synset("movie.n.01").lemma_names()
    finally:
        lazy_wordnet._unload()  # the folder is this module's tmp dir; do not leave nltk pointing at it


def test_synonym_replacement_swaps_words_for_their_synonyms(wordnet):
    augmenter = make(wordnet, alpha_sr=0.2)
    words = SENTENCE.split()
    for k in range(10):
        new = augmenter.synonym_replacement(words, random.Random(k))
        assert len(new) == len(words)
        changed = [i for i, (old, now) in enumerate(zip(words, new, strict=True)) if old != now]
        assert changed
        assert len({words[i] for i in changed}) <= round(0.2 * len(words))
        for i in changed:
            assert new[i] in augmenter.synonyms(words[i])

    vocabulary = set(words) | {part for w in words for s in augmenter.synonyms(w) for part in s.split()}
    outputs = augmenter.augment(SENTENCE)
    assert len(outputs) == 6
    for output in outputs:
        assert output != SENTENCE and set(output.split()) <= vocabulary


def test_synonym_replacement_never_touches_stop_words(wordnet):
    text = "well we still show the back part over there and make a movie"
    augmenter = make(wordnet, alpha_sr=1.0)
    words = text.split()
    stops = [i for i, w in enumerate(words) if w in augmenter.stop_words]
    # The check means something only if those stop words do have WordNet synonyms.
    assert {"well", "still", "show", "back", "part", "over", "make"} <= {words[i] for i in stops}
    assert all(augmenter.synonyms(w) for w in ("well", "still", "show", "back", "part", "over", "make"))
    for k in range(10):
        new = augmenter.synonym_replacement(words, random.Random(k))
        assert [new[i] for i in stops] == [words[i] for i in stops]
        assert new[words.index("movie")] != "movie"

    custom = make(wordnet, alpha_sr=1.0, stop_words=frozenset({"Movie"}))
    for k in range(5):
        new = custom.synonym_replacement(["movie", "film"], random.Random(k))
        assert new[0] == "movie" and new[1] != "film"


def test_random_swap_keeps_the_same_words(wordnet):
    augmenter = make(wordnet, alpha_rs=0.2)
    outputs = augmenter.augment(LONG)
    for output in outputs:
        assert sorted(output.split()) == sorted(LONG.split())
    assert any(output != LONG for output in outputs)


def test_random_deletion_keeps_one_word_at_p1_and_the_order_otherwise(wordnet):
    words = LONG.split()
    for output in make(wordnet, p_rd=1.0).augment(LONG):
        assert len(output.split()) == 1 and output in words
    for output in make(wordnet, p_rd=0.5).augment(LONG):
        kept = output.split()
        assert 1 <= len(kept) < len(words)
        remaining = iter(words)
        assert all(w in remaining for w in kept)  # a subsequence: deletion never reorders


def test_random_insertion_adds_n_synonyms_of_sentence_words(wordnet):
    augmenter = make(wordnet, alpha_ri=0.2)
    words = SENTENCE.split()
    n = round(0.2 * len(words))
    allowed = {s for w in words if w not in augmenter.stop_words for s in augmenter.synonyms(w)}
    for k in range(10):
        new = augmenter.random_insertion(words, random.Random(k))
        assert len(new) == len(words) + n
        inserted = Counter(new) - Counter(words)
        assert sum(inserted.values()) == n and set(inserted) <= allowed
        remaining = iter(new)
        assert all(w in remaining for w in words)  # the original words keep their order
    for output in augmenter.augment(SENTENCE):
        assert len(output.split()) >= len(words) + n


def test_augment_is_deterministic_per_seed_and_text(wordnet):
    first = EdaAugmenter(seed=7, wordnet=wordnet)
    second = EdaAugmenter(seed=7, wordnet=wordnet)
    second.augment("something else entirely, augmented first")
    assert first.augment(LONG) == second.augment(LONG) == first.augment(LONG)
    assert EdaAugmenter(seed=8, wordnet=wordnet).augment(LONG) != first.augment(LONG)
    assert make(wordnet, alpha_rs=0.1, num_aug=3).augment("   ") == ["", "", ""]


def test_augment_does_not_depend_on_the_process_hash_seed(wordnet):
    # A different PYTHONHASHSEED changes hash(str); outputs must not change with it.
    script = (
        "import sys; from pathlib import Path; from tfpipe.text.augment import EdaAugmenter, load_wordnet; "
        "a = EdaAugmenter(seed=3, wordnet=load_wordnet(target=Path(sys.argv[1]))); "
        "print('\\n'.join(a.augment(sys.argv[2])))"
    )
    target = Path(wordnet.root).parent.parent
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run([sys.executable, "-c", script, str(target), LONG], env=env, capture_output=True,
                            text=True, check=True, timeout=120)
    assert result.stdout.splitlines() == EdaAugmenter(seed=3, wordnet=wordnet).augment(LONG)


def test_unused_operations_and_bad_rates_are_refused(wordnet):
    with pytest.raises(ValueError, match="every rate is 0"):
        make(wordnet)
    with pytest.raises(ValueError, match="alpha_sr"):
        make(wordnet, alpha_sr=1.5)
    # Only swap is on, so no output may contain a word that is not in the input.
    for output in make(wordnet, alpha_rs=0.3, num_aug=10).augment(SENTENCE):
        assert Counter(output.split()) == Counter(SENTENCE.split())


def test_augment_records_keeps_labels_and_pairs(wordnet):
    augmenter = make(wordnet, alpha_sr=0.2, alpha_rs=0.2, num_aug=3)
    records = [
        Record(SENTENCE, text_pair="a film review", label="pos", source="train.tsv", line=2),
        Record("a slow story", text_pair=None, label="neg", source="train.tsv", line=3),
    ]
    out = list(augment_records(records, augmenter))
    assert len(out) == 2 * (1 + 3)
    assert out[0] is records[0] and out[4] is records[1]
    for original, copies in ((records[0], out[1:4]), (records[1], out[5:8])):
        assert [c.text for c in copies] == augmenter.augment(original.text)
        for copy in copies:
            assert (copy.text_pair, copy.label, copy.source, copy.line) == (
                original.text_pair, original.label, original.source, original.line
            )
    only_augmented = list(augment_records(records, augmenter, keep_original=False))
    assert only_augmented == out[1:4] + out[5:8]
