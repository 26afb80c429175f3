"""The configuration sections of every stage, as dataclasses with their defaults and allowed values.

`Config` is the top level that commands load (`--config FILE.yaml`, `--set section.key=value`) and save.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from tfpipe.config.core import ConfigError, bounded, choice

FORMATS = ("auto", "text", "tsv", "csv", "jsonl", "conll", "spans")
TASKS = ("classification", "regression", "token-classification")
# WikiText article titles (" = Title = "), and its section headings (" = = Section = = ").
WIKITEXT_TITLE_REGEX = r"^ ?= [^=].* = ?$"
WIKITEXT_HEADING_REGEX = r"^ ?(= ){2,}.*( =){2,} ?$"


@dataclass
class ReaderConfig:
    format: str = choice("auto", FORMATS, "input format; auto picks it from the file extension")
    text_column: Optional[str] = None  # name, or 0-based index with no_header; jsonl key (default "text")
    text_pair_column: Optional[str] = None
    label_column: Optional[str] = None
    no_header: bool = False
    on_error: str = choice("raise", ("raise", "skip"), "stop at the first bad record, or skip and count")
    doc_boundary_regex: Optional[str] = None  # plain text: lines matching it start a document (and are dropped)
    drop_regex: Optional[str] = None  # plain text: lines matching it are dropped (e.g. section headings)
    word_column: int = 0  # CoNLL
    tag_column: int = -1  # CoNLL


@dataclass
class CleaningConfig:
    unicode_form: str = choice("NFC", ("NFC", "NFKC", "none"))
    strip_html: bool = True
    strip_control: bool = True
    normalize_whitespace: bool = True
    dedupe: bool = True
    lowercase: bool = False  # analysis only: the tokenizer does its own case folding
    remove_stop_words: bool = False  # analysis only


@dataclass
class SpacyConfig:
    lang: str = "en"
    batch_size: int = bounded(256, 1)
    n_process: int = bounded(1, 1)
    max_length: int = bounded(1_000_000, 1)


@dataclass
class TokenizerConfig:
    vocab: Optional[str] = None
    lowercase: bool = True
    max_chars_per_word: int = bounded(100, 1)


@dataclass
class VocabConfig:
    vocab_size: int = bounded(8000, 16)
    max_token_length: int = bounded(50, 1)
    num_iterations: int = bounded(4, 1)
    batch_size: int = bounded(1024, 1)


@dataclass
class PretrainingConfig:
    max_seq_length: int = bounded(128, 8)
    max_predictions_per_seq: int = bounded(20, 1)
    masked_lm_prob: float = bounded(0.15, 0.0, 1.0)
    dupe_factor: int = bounded(5, 1)
    short_seq_prob: float = bounded(0.1, 0.0, 1.0)
    whole_word_mask: bool = False
    num_shards: int = bounded(4, 1)
    seed: int = 12345


@dataclass
class PipelineConfig:
    batch_size: int = bounded(32, 1)
    max_seq_length: int = bounded(128, 8)
    shuffle_buffer: int = bounded(10_000, 0)
    seed: int = 0
    bucket_boundaries: list[int] = field(default_factory=list)  # e.g. [32, 64, 96]: pad to the bucket
    cache: bool = True
    dynamic_masking: bool = False

    def check(self) -> None:
        bounds = self.bucket_boundaries
        if bounds != sorted(set(bounds)) or any(b <= 0 for b in bounds):
            raise ConfigError(f"pipeline.bucket_boundaries: {bounds} must be increasing positive integers")
        if bounds and bounds[-1] > self.max_seq_length:
            raise ConfigError(
                f"pipeline.bucket_boundaries: {bounds[-1]} is above pipeline.max_seq_length={self.max_seq_length}"
            )


@dataclass
class AugmentConfig:
    num_aug: int = bounded(4, 1)
    alpha_sr: float = bounded(0.1, 0.0, 1.0)  # synonym replacement rate
    alpha_ri: float = bounded(0.1, 0.0, 1.0)  # random insertion rate
    alpha_rs: float = bounded(0.1, 0.0, 1.0)  # random swap rate
    p_rd: float = bounded(0.1, 0.0, 1.0)  # random deletion probability
    seed: int = 0


@dataclass
class Config:
    task: str = choice("classification", TASKS)
    reader: ReaderConfig = field(default_factory=ReaderConfig)
    cleaning: CleaningConfig = field(default_factory=CleaningConfig)
    spacy: SpacyConfig = field(default_factory=SpacyConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    vocab: VocabConfig = field(default_factory=VocabConfig)
    pretraining: PretrainingConfig = field(default_factory=PretrainingConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
