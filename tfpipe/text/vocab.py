"""WordPiece vocabulary training over words split exactly as the runtime tokenizer's pre-split splits them.

Words are counted by streaming batches through `tokenizer.pre_split` (the same graph the model runs), so every
vocabulary entry is reachable at run time; tensorflow-text's WordPiece learner picks the pieces.
"""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence

import tensorflow as tf
from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner
from tqdm import tqdm

from tfpipe.config.atomic import write_text_atomic
from tfpipe.config.schemas import CleaningConfig, ReaderConfig, VocabConfig
from tfpipe.text.cleaning import clean_lines
from tfpipe.text.readers import ErrorLog, detect_format, read_documents, read_records
from tfpipe.text.tokenizer import SPECIAL_TOKENS, pre_split


def word_counter(lowercase: bool = True) -> Callable[[Sequence[str]], Counter]:
    """A function from a batch of texts to its pre-split word counts (the graph is traced once, here)."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def split(batch):
        return pre_split(batch, lowercase).flat_values

    def count(texts: Sequence[str]) -> Counter:
        return Counter(w.decode("utf-8") for w in split(tf.constant(list(texts), tf.string)).numpy())

    return count


def count_words(
    texts: Iterable[str], lowercase: bool = True, batch_size: int = 1024, progress: bool = False
) -> Counter:
    """Counts pre-split words over a stream of texts; memory grows with distinct words only."""
    count = word_counter(lowercase)
    counts: Counter = Counter()
    iterator = iter(texts)
    bar = tqdm(desc="counting words", unit="text", disable=not progress, mininterval=1.0)
    while batch := list(itertools.islice(iterator, batch_size)):
        counts.update(count(batch))
        bar.update(len(batch))
    bar.close()
    return counts


def file_texts(path: str | Path, reader: ReaderConfig, cleaning: CleaningConfig, task: str, log: ErrorLog
               ) -> Iterator[str]:
    """The cleaned texts of one input: plain-text lines, or the text (and pair) column of a labelled file."""
    if detect_format(path, reader.format) == "text":
        lines = (line for doc in read_documents(path, reader.doc_boundary_regex, reader.drop_regex, log)
                 for line in doc.lines)
    else:
        records = read_records(path, reader, task, log=log)
        lines = (t for r in records for t in (getattr(r, "text", None) or " ".join(r.words), r.text_pair) if t)
    return clean_lines(lines, cleaning)


def iter_texts(paths: Iterable[str | Path], reader: ReaderConfig, cleaning: CleaningConfig, task: str,
               reading: dict) -> Iterator[str]:
    """`file_texts` of every input in turn; `reading[path]` gets what reading each file kept and skipped."""
    for path in paths:
        log = ErrorLog.for_reader(reader)
        yield from file_texts(path, reader, cleaning, task, log)
        reading[str(path)] = log.summary()


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
    return write_text_atomic(path, "".join(f"{t}\n" for t in tokens))  # a killed build leaves no half vocabulary


def build_vocabulary(
    texts: Iterable[str], config: Optional[VocabConfig] = None, lowercase: bool = True, progress: bool = False
) -> list[str]:
    """Counts words in `texts` and learns a WordPiece vocabulary of at most `config.vocab_size` tokens."""
    config = config or VocabConfig()
    counts = count_words(texts, lowercase, config.batch_size, progress)
    return learn_vocabulary(counts, config)
