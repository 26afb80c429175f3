"""EDA text augmentation (Wei & Zou 2019: synonym replacement, random insertion, swap and deletion).

Synonyms come from the system WordNet (Debian `wordnet-base`), laid out for nltk so nothing is downloaded.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import random
import shutil
import stat
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Optional

import nltk
from nltk.corpus.reader.wordnet import WordNetCorpusReader

from tfpipe.config.atomic import atomic_path
from tfpipe.text.readers.base import Record

WORDNET_SOURCE = Path("/usr/share/wordnet")
DEFAULT_TARGET = Path("~/.cache/tfpipe/nltk_data")
TARGET_ENV = "TFPIPE_NLTK_DATA"

# WordNet's fixed lexicographer file names (WordNet's lexnames(5WN)); the Debian packages lack the file.
LEXNAMES = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact", "noun.attribute",
    "noun.body", "noun.cognition", "noun.communication", "noun.event", "noun.feeling", "noun.food", "noun.group",
    "noun.location", "noun.motive", "noun.object", "noun.person", "noun.phenomenon", "noun.plant",
    "noun.possession", "noun.process", "noun.quantity", "noun.relation", "noun.shape", "noun.state",
    "noun.substance", "noun.time", "verb.body", "verb.change", "verb.cognition", "verb.communication",
    "verb.competition", "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion",
    "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather", "adj.ppl",
)  # fmt: skip
_CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
LEXNAMES_TEXT = "".join(f"{i:02d}\t{name}\t{_CATEGORY[name.split('.')[0]]}\n" for i, name in enumerate(LEXNAMES))

_SHARED_WRITE = stat.S_IWGRP | stat.S_IWOTH


class WordNetMissingError(FileNotFoundError):
    """The system WordNet files are not installed where they were looked for."""

    def __init__(self, source: Path) -> None:
        self.source = Path(source)
        super().__init__(
            f"WordNet not found: {self.source / 'data.noun'} does not exist. Install it with "
            f"`apt-get install wordnet-base wordnet-sense-index` (or `make wordnet`); looked in {self.source}"
        )


def default_target() -> Path:
    """`$TFPIPE_NLTK_DATA` if set, else `~/.cache/tfpipe/nltk_data`."""
    return Path(os.environ.get(TARGET_ENV) or DEFAULT_TARGET).expanduser()


def _make_private(folder: Path) -> None:
    # nltk refuses data roots that another account could write to, so drop group/world write on our folders.
    st = folder.stat()
    if st.st_uid == os.geteuid() and st.st_mode & _SHARED_WRITE:
        os.chmod(folder, stat.S_IMODE(st.st_mode) & ~_SHARED_WRITE)


def _replace_atomically(folder: Path, name: str, fill: Callable[[Path], None]) -> None:
    # A concurrent reader (another process preparing the same folder) sees the old file or the new one.
    with atomic_path(folder / name) as tmp:
        fill(tmp)
        os.chmod(tmp, 0o644)  # readable by all, writable by us only, whatever the source's mode


def _copy_if_changed(src: Path, folder: Path) -> None:
    dest = folder / src.name
    src_st = src.stat()
    try:
        dest_st = dest.lstat()
        up_to_date = (
            stat.S_ISREG(dest_st.st_mode)
            and dest_st.st_size == src_st.st_size
            and dest_st.st_mtime_ns == src_st.st_mtime_ns
        )
    except FileNotFoundError:
        up_to_date = False
    if not up_to_date:
        _replace_atomically(folder, src.name, lambda tmp: shutil.copy2(src, tmp))


def _write_if_changed(folder: Path, name: str, text: str) -> None:
    dest = folder / name
    if dest.is_file() and not dest.is_symlink() and dest.read_text(encoding="utf-8") == text:
        return
    _replace_atomically(folder, name, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def prepare_wordnet(source: Path = WORDNET_SOURCE, target: Optional[Path] = None) -> Path:
    """Lays `source` out as `<target>/corpora/wordnet/` for nltk and returns that folder.

    The folder holds a copy of every file in `source` plus the generated `lexnames`. Copies, not symlinks:
    nltk's `CorpusReader.open` resolves links and refuses files outside the corpus root. Unchanged files are
    left alone, so calling it again (or from two processes) is cheap and safe. `target` (default
    `default_target()`) is put first on `nltk.data.path`, so `from nltk.corpus import wordnet` finds it.

    Raises:
        WordNetMissingError: `source/data.noun` does not exist.
    """
    source = Path(source)
    if not (source / "data.noun").is_file():
        raise WordNetMissingError(source)
    target = (Path(target).expanduser() if target is not None else default_target()).resolve()
    corpus = target / "corpora" / "wordnet"
    corpus.mkdir(parents=True, exist_ok=True)
    for folder in (target, corpus.parent, corpus):
        _make_private(folder)
    for entry in sorted(source.iterdir()):
        # Subfolders (bin/, pixmaps/) are the WordNet browser's; a packaged lexnames would be replaced below.
        if entry.is_file() and entry.name != "lexnames":
            _copy_if_changed(entry, corpus)
    _write_if_changed(corpus, "lexnames", LEXNAMES_TEXT)
    if str(target) not in nltk.data.path:
        # First, so this WordNet wins over any other `corpora/wordnet` on the path.
        nltk.data.path.insert(0, str(target))
    return corpus


@functools.lru_cache(maxsize=4)
def _reader(corpus: str, source: str) -> WordNetCorpusReader:
    # `source` is part of the cache key only: the same folder refilled from another source is another WordNet.
    with warnings.catch_warnings():
        # No Open Multilingual WordNet is wanted (English synonyms only), so its absence is not news.
        warnings.filterwarnings("ignore", message="The multilingual functions are not available")
        return WordNetCorpusReader(corpus, None)


def load_wordnet(source: Path = WORDNET_SOURCE, target: Optional[Path] = None) -> WordNetCorpusReader:
    """An nltk `WordNetCorpusReader` over `prepare_wordnet(source, target)`, cached per folder."""
    corpus = prepare_wordnet(source, target)
    return _reader(str(corpus), str(Path(source).resolve()))


def _default_stop_words() -> frozenset[str]:
    # Imported here: spaCy is slow to import and is not needed when stop words are given.
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS)


class EdaAugmenter:
    """Easy Data Augmentation: each augmented sentence comes from one of the four EDA operations.

    Args:
        alpha_sr, alpha_ri, alpha_rs: share of the words changed by synonym replacement, random insertion and
            random swap (`n = max(1, round(alpha * len(words)))`); 0 turns the operation off.
        p_rd: probability that random deletion drops each word; 0 turns it off.
        num_aug: augmented sentences per input text.
        seed: with the text, fixes the outputs (they do not depend on what was augmented before).
        stop_words: lower-case words never replaced nor used as insertion sources (default: spaCy's English).
        wordnet: an nltk `WordNetCorpusReader` (default: `load_wordnet()`).

    Words are split on whitespace, so a word with punctuation attached (`good.`) has no synonyms.
    """

    def __init__(
        self,
        alpha_sr: float = 0.1,
        alpha_ri: float = 0.1,
        alpha_rs: float = 0.1,
        p_rd: float = 0.1,
        num_aug: int = 4,
        seed: int = 0,
        stop_words: Optional[frozenset[str]] = None,
        wordnet: Optional[WordNetCorpusReader] = None,
    ) -> None:
        rates = {"alpha_sr": alpha_sr, "alpha_ri": alpha_ri, "alpha_rs": alpha_rs, "p_rd": p_rd}
        for name, value in rates.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: {value!r} is not allowed; allowed values: 0.0 to 1.0")
        if num_aug < 0:
            raise ValueError(f"num_aug: {num_aug!r} is not allowed; allowed values: 0 or more")
        if num_aug and not any(rates.values()):
            raise ValueError("EdaAugmenter: every rate is 0, so no operation could augment; set at least one")
        self.alpha_sr, self.alpha_ri, self.alpha_rs, self.p_rd = alpha_sr, alpha_ri, alpha_rs, p_rd
        self.num_aug, self.seed = num_aug, seed
        self.stop_words = frozenset(w.lower() for w in stop_words) if stop_words is not None else _default_stop_words()
        self.wordnet = wordnet if wordnet is not None else load_wordnet()
        self._operations: list[Callable[[list[str], random.Random], list[str]]] = [
            op
            for rate, op in (
                (alpha_sr, self.synonym_replacement),
                (alpha_ri, self.random_insertion),
                (alpha_rs, self.random_swap),
                (p_rd, self.random_deletion),
            )
            if rate > 0
        ]
        self._synonyms: dict[str, list[str]] = {}

    def synonyms(self, word: str) -> list[str]:
        """Sorted lemma names of every synset of `word` (lower-cased), `_` as spaces, without the word itself."""
        key = word.lower()
        if key not in self._synonyms:
            names = {lemma.name().replace("_", " ") for s in self.wordnet.synsets(key) for lemma in s.lemmas()}
            self._synonyms[key] = sorted(name for name in names if name.lower() != key)
        return self._synonyms[key]

    def _is_stop(self, word: str) -> bool:
        return word.lower() in self.stop_words

    @staticmethod
    def _count(rate: float, num_words: int) -> int:
        return max(1, round(rate * num_words))

    def synonym_replacement(self, words: list[str], rng: random.Random) -> list[str]:
        """Replaces up to n distinct non-stop words (every occurrence of each) by one of their synonyms."""
        new = list(words)
        candidates = [w for w in dict.fromkeys(words) if not self._is_stop(w)]
        rng.shuffle(candidates)
        replaced, n = 0, self._count(self.alpha_sr, len(words))
        for word in candidates:
            options = self.synonyms(word)
            if not options:
                continue
            choice = rng.choice(options)
            # By original position: a synonym put in earlier must not be taken for a later candidate word.
            new = [choice if old == word else current for old, current in zip(words, new, strict=True)]
            replaced += 1
            if replaced >= n:
                break
        return new

    def random_insertion(self, words: list[str], rng: random.Random) -> list[str]:
        """Inserts, n times, a synonym of a random non-stop word of the sentence at a random position."""
        sources = [w for w in words if not self._is_stop(w) and self.synonyms(w)]
        new = list(words)
        if not sources:
            return new
        for _ in range(self._count(self.alpha_ri, len(words))):
            synonym = rng.choice(self.synonyms(rng.choice(sources)))
            new.insert(rng.randint(0, len(new)), synonym)
        return new

    def random_swap(self, words: list[str], rng: random.Random) -> list[str]:
        """Swaps two words at distinct random positions, n times."""
        new = list(words)
        if len(new) < 2:
            return new
        for _ in range(self._count(self.alpha_rs, len(words))):
            i, j = rng.sample(range(len(new)), 2)
            new[i], new[j] = new[j], new[i]
        return new

    def random_deletion(self, words: list[str], rng: random.Random) -> list[str]:
        """Drops each word with probability `p_rd`; keeps one random word rather than return nothing."""
        if len(words) <= 1:
            return list(words)
        kept = [w for w in words if rng.random() >= self.p_rd]
        return kept or [rng.choice(words)]

    def _rng(self, text: str) -> random.Random:
        # sha256, not hash(): str hashes change per process (PYTHONHASHSEED), which would break reproducibility.
        digest = hashlib.sha256(f"{self.seed}\x00{text}".encode()).digest()
        return random.Random(int.from_bytes(digest, "big"))

    def augment(self, text: str) -> list[str]:
        """`num_aug` augmented versions of `text`, the operations taken in turns in a per-text random order.

        The same seed and text always give the same list. A text without words gives `num_aug` empty strings.
        """
        words = text.split()
        if not words:
            return [""] * self.num_aug
        rng = self._rng(text)
        schedule: list[Callable[[list[str], random.Random], list[str]]] = []
        while len(schedule) < self.num_aug:
            # Shuffled rounds: every active operation is used as evenly as num_aug allows, even for num_aug=1.
            round_ = list(self._operations)
            rng.shuffle(round_)
            schedule.extend(round_)
        return [" ".join(operation(words, rng)) for operation in schedule[: self.num_aug]]


def augment_records(records: Iterable[Record], augmenter: EdaAugmenter, keep_original: bool = True) -> Iterator[Record]:
    """Yields each record (when `keep_original`), then copies whose `text` is augmented; the rest is kept."""
    for record in records:
        if keep_original:
            yield record
        for text in augmenter.augment(record.text):
            yield dataclasses.replace(record, text=text)
