"""Run directories: what a training run writes, and how fine-tuning starts from a checkpoint or a pretraining run
(loading a fine-tuned run back is `tfpipe.models.run_loader`).

Layout: config.yaml, vocab.txt, labels.txt, model.weights.h5 (final, best on validation when monitored),
encoder.weights.h5, checkpoints/, backup/, logs/ (TensorBoard), history.csv, metrics.json, plots/*.png.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from tfpipe.config import Config, load_config
from tfpipe.config.schemas import ModelConfig
from tfpipe.models.backbone import (
    BertEncoder,
    build_encoder,
    encoder_from_preset,
    load_hf_checkpoint,
    resolve_dimensions,
)
from tfpipe.text.labels import LabelVocab
from tfpipe.text.tokenizer import WordPieceTokenizer


def _keras_hub_preset(folder: Path) -> tuple[BertEncoder, WordPieceTokenizer, ModelConfig]:
    """A keras-hub preset folder (config.json with a keras class name, model.weights.h5, assets/tokenizer)."""
    encoder, config = encoder_from_preset(folder, "gelu_approximate")  # keras-hub BERT's own activation
    vocab = folder / "assets" / "tokenizer" / "vocabulary.txt"
    lowercase = True
    tokenizer_json = folder / "tokenizer.json"
    if tokenizer_json.is_file():
        lowercase = json.loads(tokenizer_json.read_text()).get("config", {}).get("lowercase", True)
    return encoder, WordPieceTokenizer(vocab, lowercase), config


def load_checkpoint(folder: str | Path) -> tuple[BertEncoder, WordPieceTokenizer, ModelConfig]:
    """A Hugging Face BERT folder or a keras-hub preset folder, told apart by their config.json."""
    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path}: missing; --init-checkpoint takes a Hugging Face BERT folder "
                                "(config.json, model.safetensors, vocab.txt) or a keras-hub preset folder")
    if "class_name" in json.loads(config_path.read_text(encoding="utf-8")):
        return _keras_hub_preset(folder)
    return load_hf_checkpoint(folder)


def load_pretrained_run(run: str | Path) -> tuple[BertEncoder, WordPieceTokenizer, ModelConfig]:
    """The encoder trained by `tfpipe pretrain` in `run` (config.yaml, vocab.txt, encoder.weights.h5)."""
    run = Path(run)
    weights = run / "encoder.weights.h5"
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: missing; is {run} the output directory of `tfpipe pretrain`?")
    config = load_config(Config, run / "config.yaml")
    tokenizer = WordPieceTokenizer(run / "vocab.txt", config.tokenizer.lowercase)
    encoder = build_encoder(config.model, tokenizer.vocabulary_size)
    encoder.load_weights(str(weights))
    model = resolve_dimensions(config.model)
    return encoder, tokenizer, model


def save_run_files(run: Path, config: Config, tokenizer: WordPieceTokenizer, labels: Optional[LabelVocab]) -> None:
    from tfpipe.config import save_config
    from tfpipe.text.vocab import write_vocabulary

    run.mkdir(parents=True, exist_ok=True)
    save_config(config, run)
    write_vocabulary(tokenizer.vocabulary, run / "vocab.txt")
    if labels is not None:
        labels.save(run / "labels.txt")
