"""The configuration sections of every stage, as dataclasses with their defaults and allowed values.

`Config` is the top level that commands load (`--config FILE.yaml`, `--set section.key=value`) and save.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from tfpipe.config.core import ConfigError, bounded, choice
from tfpipe.config.tasks import task_names

# Texts (and pairs) and tagged sentences; "squad" files hold questions with their contexts (question answering).
TEXT_FORMATS = ("text", "tsv", "csv", "jsonl", "conll", "spans")
FORMATS = ("auto", *TEXT_FORMATS, "squad")
# What a reader does with a bad record: stop with `file:line: reason`, or skip it and count it by kind.
ON_ERROR = ("raise", "skip")
# The longest line (or CSV record) a reader accepts, in bytes: the bound on the memory one line may take.
MAX_LINE_BYTES = 1 << 20
# Where `--runner` runs the corpus stages as Apache Beam pipelines (`tfpipe.data.beam_pipelines`).
BEAM_RUNNERS = ("direct", "dataflow", "flink", "spark")
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
    on_error: str = choice("raise", ON_ERROR, "stop at the first bad record, or skip and count")
    max_line_bytes: int = bounded(MAX_LINE_BYTES, 1, help="longer lines are bad records (file:line)")
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
    # Training: sort this many batches' worth of shuffled examples by length, cut batches, shuffle them (0: off).
    sort_window: int = bounded(0, 0)
    # Extractive QA: context windows start every `doc_stride` pieces, a question keeps its first
    # `max_query_length` pieces, and an answer is at most `max_answer_length` pieces long.
    doc_stride: int = bounded(128, 1)
    max_query_length: int = bounded(64, 1)
    max_answer_length: int = bounded(30, 1)

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


MODEL_SIZES = ("tiny", "mini", "small", "medium", "base", "custom")
POOLINGS = ("cls", "mean")  # sequence heads' pooling


@dataclass
class ModelConfig:
    size: str = choice("mini", MODEL_SIZES, "named BERT miniature size, or custom with the dimensions below")
    num_layers: Optional[int] = None  # custom size, or override of a named size
    hidden_dim: Optional[int] = None
    num_heads: Optional[int] = None
    intermediate_dim: Optional[int] = None
    max_sequence_length: int = bounded(512, 8)
    dropout: float = bounded(0.1, 0.0, 1.0)
    activation: str = choice("gelu", ("gelu", "gelu_approximate"), "FFN activation (HF BERT: exact gelu)")
    init_checkpoint: Optional[str] = None  # Hugging Face-layout BERT folder or keras-hub preset folder
    pretrained_run: Optional[str] = None  # output directory of `tfpipe pretrain`
    head_dropout: float = bounded(0.1, 0.0, 1.0)
    pooling: str = choice("cls", POOLINGS, "sequence heads: pooled [CLS] output, or mean over real tokens")

    def check(self) -> None:
        if self.init_checkpoint and self.pretrained_run:
            raise ConfigError("model.init_checkpoint and model.pretrained_run exclude each other; give one")
        if self.size == "custom" and None in (self.num_layers, self.hidden_dim, self.num_heads):
            raise ConfigError("model.size=custom needs model.num_layers, model.hidden_dim and model.num_heads")
        if self.hidden_dim and self.num_heads and self.hidden_dim % self.num_heads:
            raise ConfigError(f"model.hidden_dim={self.hidden_dim} must be divisible by "
                              f"model.num_heads={self.num_heads}")


def profile_range(value: Optional[str]) -> Optional[tuple[int, int]]:
    """`training.profile` as Keras' `profile_batch` pair: "10,15" → (10, 15), "7" → (7, 7), None → None."""
    if value is None or not str(value).strip():
        return None
    parts = [p.strip() for p in str(value).split(",")]
    if len(parts) in (1, 2) and all(p.isdigit() for p in parts):
        start, stop = int(parts[0]), int(parts[-1])
        if 1 <= start <= stop:
            return start, stop
    raise ConfigError(f"training.profile: {value!r} is not a batch range; give START,STOP (e.g. 10,15, batches "
                      "counted from 1) or one batch N")


@dataclass
class TrainingConfig:
    epochs: int = bounded(3, 1)
    steps: Optional[int] = None  # total optimizer steps; overrides epochs (the last one is cut short)
    learning_rate: float = bounded(5e-5, 0.0)
    optimizer: str = choice("adamw", ("adamw", "lamb", "sgd"))
    weight_decay: float = bounded(0.01, 0.0)
    momentum: float = bounded(0.9, 0.0, 1.0)  # sgd
    warmup_ratio: float = bounded(0.1, 0.0, 1.0)
    decay: str = choice("linear", ("linear", "cosine", "constant"))
    clipnorm: Optional[float] = None
    gradient_accumulation_steps: int = bounded(1, 1)
    label_smoothing: float = bounded(0.0, 0.0, 1.0)
    class_weights: str = choice("none", ("none", "balanced"))
    freeze_embeddings: bool = False
    freeze_layers: int = bounded(0, 0)  # freeze the lowest N transformer layers
    lora_rank: int = bounded(0, 0)  # > 0: train LoRA adapters (keras-hub enable_lora) instead of the backbone
    fgm_epsilon: float = bounded(0.0, 0.0)  # > 0: FGM adversarial training on the word embeddings
    mixed_precision: str = choice("auto", ("auto", "none", "mixed_bfloat16", "mixed_float16"))
    jit_compile: bool = False
    steps_per_execution: int = bounded(1, 1)
    strategy: str = choice("default", ("default", "mirrored", "multi_worker", "tpu"))
    seed: int = 0
    early_stopping_patience: int = bounded(0, 0)  # 0: off
    checkpoint_every_steps: Optional[int] = 500  # BackupAndRestore frequency in steps; null: every epoch
    threads: int = bounded(0, 0)  # intra-op threads; 0: TensorFlow's default
    # TensorBoard's profiler over training batches "START,STOP" (1-based, each `fit` counted apart) or one batch "N"
    profile: Optional[str] = None
    projector_examples: int = bounded(2000, 0)  # validation [CLS] embeddings for TensorBoard's projector; 0: none

    def check(self) -> None:
        profile_range(self.profile)


@dataclass
class Config:
    task: str = choice("classification", task_names, "a registered task (tfpipe.config.tasks)")
    reader: ReaderConfig = field(default_factory=ReaderConfig)
    cleaning: CleaningConfig = field(default_factory=CleaningConfig)
    spacy: SpacyConfig = field(default_factory=SpacyConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    vocab: VocabConfig = field(default_factory=VocabConfig)
    pretraining: PretrainingConfig = field(default_factory=PretrainingConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
