"""Shared CLI plumbing: config loading with flags and `--set` overrides, reader flags, progress, output."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from tfpipe.config import WIKITEXT_HEADING_REGEX, WIKITEXT_TITLE_REGEX, Config, apply_overrides, load_config
from tfpipe.config.schemas import BEAM_RUNNERS, FORMATS, MAX_LINE_BYTES, ON_ERROR

TASK_HELP = "the task (a registered one: tfpipe.config.tasks)"

# Named document-boundary presets for --doc-boundary-regex.
BOUNDARY_PRESETS = {"wikitext": (WIKITEXT_TITLE_REGEX, WIKITEXT_HEADING_REGEX)}


def add_config_args(parser: argparse.ArgumentParser, quiet: bool = True) -> None:
    parser.add_argument("--config", metavar="FILE.yaml", help="YAML config (sections as in config.yaml)")
    parser.add_argument("--set", metavar="SECTION.KEY=VALUE", action="append", default=[],
                        help="override one config value; repeatable (applied last)")
    if quiet:  # a command with a --quiet of its own says False
        parser.add_argument("--quiet", action="store_true", help="no progress bars")


def add_reader_args(parser: argparse.ArgumentParser, columns: bool = True, corpus: bool = False) -> None:
    group = parser.add_argument_group("input format")
    group.add_argument("--format", choices=FORMATS,
                       help="input format (default: from the file extension)")
    if columns:
        group.add_argument("--text-column", help="text column name (or 0-based index with --no-header)")
        group.add_argument("--text-pair-column", help="second text column for pair tasks")
        group.add_argument("--label-column", help="label column")
        group.add_argument("--no-header", action="store_true", default=None,
                           help="delimited file without a header: columns are 0-based indices")
    group.add_argument("--on-error", choices=ON_ERROR,
                       help="stop at the first bad record (raise, the default), or skip bad records and count them")
    group.add_argument("--max-line-bytes", type=int, metavar="N",
                       help=f"a longer line (or CSV record) is a bad record (default {MAX_LINE_BYTES}); it is never "
                            "held in memory whole")
    if corpus:
        group.add_argument("--doc-boundary-regex", metavar="REGEX",
                           help="lines matching it start documents and are dropped (default: blank lines "
                                "separate documents); 'wikitext' = WikiText article titles, dropping section "
                                "headings too")
        group.add_argument("--drop-regex", metavar="REGEX", help="lines matching it are dropped")


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """The model and training-run flags of `finetune` and `pretrain`."""
    group = parser.add_argument_group("model")
    source = group.add_mutually_exclusive_group()
    source.add_argument("--init-checkpoint", metavar="DIR",
                        help="Hugging Face BERT folder (config.json, model.safetensors, vocab.txt) or keras-hub preset")
    source.add_argument("--pretrained-run", metavar="DIR", help="output directory of tfpipe pretrain")
    group.add_argument("--model-size", choices=["tiny", "mini", "small", "medium", "base", "custom"],
                       help="named size for a randomly initialised encoder (with --vocab)")
    group.add_argument("--learning-rate", type=float)
    parser.add_argument_group("TensorBoard (OUTPUT/logs)").add_argument(
        "--profile", metavar="STEPS",
        help="profile training batches START,STOP (e.g. 10,15; counted from 1) or one batch N for TensorBoard's "
             "Profile dashboard (training.profile); the trace goes to OUTPUT/logs/train/plugins/profile")


def add_beam_args(parser: argparse.ArgumentParser) -> None:
    """`--runner` and `--pipeline-option` of the corpus stages (README: bigger than one machine)."""
    group = parser.add_argument_group("Apache Beam (without --runner the stage runs in this process)")
    group.add_argument("--runner", choices=BEAM_RUNNERS,
                       help="run as an Apache Beam pipeline: direct (this machine), dataflow, flink or spark; the "
                            "output is the same bytes as without it")
    group.add_argument("--pipeline-option", metavar="KEY=VALUE", action="append", default=[],
                       help="passed to Beam as --KEY=VALUE (a bare KEY: a switch); repeatable, e.g. "
                            "direct_num_workers=2, direct_running_mode=multi_processing, project=P, region=R, "
                            "temp_location=gs://B/tmp, setup_file=./pyproject.toml")


# argparse dest → (config section, key)
FLAG_KEYS = {
    "format": ("reader", "format"), "text_column": ("reader", "text_column"),
    "text_pair_column": ("reader", "text_pair_column"), "label_column": ("reader", "label_column"),
    "no_header": ("reader", "no_header"), "on_error": ("reader", "on_error"),
    "max_line_bytes": ("reader", "max_line_bytes"),
    "doc_boundary_regex": ("reader", "doc_boundary_regex"), "drop_regex": ("reader", "drop_regex"),
    "task": (None, "task"), "vocab": ("tokenizer", "vocab"), "vocab_size": ("vocab", "vocab_size"),
    "max_seq_length": ("pretraining", "max_seq_length"),
    "max_predictions_per_seq": ("pretraining", "max_predictions_per_seq"),
    "masked_lm_prob": ("pretraining", "masked_lm_prob"), "dupe_factor": ("pretraining", "dupe_factor"),
    "short_seq_prob": ("pretraining", "short_seq_prob"), "whole_word_mask": ("pretraining", "whole_word_mask"),
    "num_shards": ("pretraining", "num_shards"), "seed": ("pretraining", "seed"),
    "model_size": ("model", "size"), "init_checkpoint": ("model", "init_checkpoint"),
    "pretrained_run": ("model", "pretrained_run"), "learning_rate": ("training", "learning_rate"),
    "profile": ("training", "profile"),
    "epochs": ("training", "epochs"), "steps": ("training", "steps"),
    "train_batch_size": ("pipeline", "batch_size"), "train_max_seq_length": ("pipeline", "max_seq_length"),
    "lang": ("spacy", "lang"), "batch_size": ("spacy", "batch_size"), "n_process": ("spacy", "n_process"),
}


def build_config(args: argparse.Namespace, keys: dict[str, tuple] | None = None, base: Config | None = None
                 ) -> Config:
    """Defaults (or `base`) ← `--config` YAML ← explicit flags ← `--set` overrides; validated at the end."""
    path = getattr(args, "config", None)
    config = load_config(Config, path) if path or base is None else base
    for dest, (section, key) in {**FLAG_KEYS, **(keys or {})}.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        if dest == "doc_boundary_regex" and value in BOUNDARY_PRESETS:
            value, drop = BOUNDARY_PRESETS[value]
            if getattr(args, "drop_regex", None) is None:
                config.reader.drop_regex = drop
        target = config if section is None else getattr(config, section)
        setattr(target, key, value)
    if getattr(args, "cased", False):
        config.tokenizer.lowercase = False
    return apply_overrides(config, getattr(args, "set", []))


def progress_enabled(args: argparse.Namespace) -> bool:
    return not getattr(args, "quiet", False)


def print_json(data: Any) -> None:
    """Machine-readable result as the last stdout line."""
    print(json.dumps(data, sort_keys=True, default=str))


def check_inputs(paths: list[str]) -> list[str]:
    for path in paths:
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: input file not found")
    return paths


def quiet_tensorflow() -> None:
    """TensorFlow's C++ start-up chatter hides real output; users can still raise the level."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "2")


def eprint(*parts: Any) -> None:
    print(*parts, file=sys.stderr)


def report_reading(name: str, summary: dict) -> None:
    """Per-reason counts of what reading `name` skipped, on stderr (the run's record holds the same counts)."""
    from tfpipe.text.readers import describe_reading

    if summary.get("skipped") or summary.get("on_error") == "skip":
        eprint(f"{name}: {describe_reading(summary)}")
