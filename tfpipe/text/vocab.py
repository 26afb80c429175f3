"""WordPiece vocabulary training over words split exactly as the runtime tokenizer's pre-split splits them.

Words are counted by streaming batches through `tokenizer.pre_split` (the same graph the model runs), so every
vocabulary entry is reachable at run time; tensorflow-text's WordPiece learner picks the pieces.
"""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path
from typing import Iterable, Optional

import tensorflow as tf
from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner
from tqdm import tqdm

from tfpipe.config.schemas import VocabConfig
from tfpipe.text.tokenizer import SPECIAL_TOKENS, pre_split


def _splitter(lowercase: bool):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def split(batch):
        return pre_split(batch, lowercase).flat_values

    return split


def count_words(
    texts: Iterable[str], lowercase: bool = True, batch_size: int = 1024, progress: bool = False
) -> Counter:
    """Counts pre-split words over a stream of texts; memory grows with distinct words only."""
    split = _splitter(lowercase)
    counts: Counter = Counter()
    iterator = iter(texts)
    bar = tqdm(desc="counting words", unit="text", disable=not progress, mininterval=1.0)
    while batch := list(itertools.islice(iterator, batch_size)):
        words = split(tf.constant(batch)).numpy()
        counts.update(w.decode("utf-8") for w in words)
        bar.update(len(batch))
    bar.close()
    return counts


def learn_vocabulary(counts: Counter, config: Optional[VocabConfig] = None) -> list[str]:
    """Special tokens first, then the pieces tf-text's learner chooses for `config.vocab_size`."""
    config = config or VocabConfig()
    if not counts:
        raise ValueError("no words to learn a vocabulary from: the input is empty after cleaning")
    # Sorted input makes the learner's output independent of the corpus order of first occurrences.
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    tokens = learner.learn(
        ordered,
        vocab_size=config.vocab_size,
        reserved_tokens=list(SPECIAL_TOKENS),
        lower_thresh=1,
        num_iterations=config.num_iterations,
        max_token_length=config.max_token_length,
    )
    tokens = list(tokens)
    # The learner's threshold search can end above the target; its list is ordered reserved tokens, then every
    # single character (with and without "##"), then pieces by falling count, so cutting the tail keeps every
    # character reachable and drops only the rarest pieces.
    fixed = len(SPECIAL_TOKENS) + sum(1 for t in tokens if len(t.removeprefix("##")) == 1)
    if config.vocab_size < fixed:
        raise ValueError(f"vocab.vocab_size={config.vocab_size} is below the {fixed} special and single-character "
                         "tokens this corpus needs; raise --vocab-size")
    return tokens[: config.vocab_size]


def write_vocabulary(tokens: Iterable[str], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{t}\n" for t in tokens), encoding="utf-8")
    return path


def build_vocabulary(
    texts: Iterable[str], config: Optional[VocabConfig] = None, lowercase: bool = True, progress: bool = False
) -> list[str]:
    """Counts words in `texts` and learns a WordPiece vocabulary of at most `config.vocab_size` tokens."""
    config = config or VocabConfig()
    counts = count_words(texts, lowercase, config.batch_size, progress)
    return learn_vocabulary(counts, config)
