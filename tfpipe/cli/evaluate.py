"""Evaluate a fine-tuned run on a data file: prints the metrics as one JSON line and writes metrics.json,
predictions.jsonl (input order, original label strings) and plots under OUT (default RUN/eval/<file-stem>/)."""

from __future__ import annotations

import argparse

from tfpipe.cli.common import add_config_args, add_reader_args, print_json

HELP = "evaluate a fine-tuned model on a data file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-dir", required=True, help="output directory of tfpipe finetune")
    parser.add_argument("--data", required=True)
    parser.add_argument("--output-dir")
    add_reader_args(parser)
    add_config_args(parser)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tfpipe.cli.common import FLAG_KEYS
    from tfpipe.config import Config, apply_overrides, load_config
    from tfpipe.training.evaluate import evaluate_file

    config = load_config(Config, Path(args.model_dir) / "config.yaml")
    if args.config:
        config = load_config(Config, args.config)
    for dest, (section, key) in FLAG_KEYS.items():  # column flags describe this data file
        value = getattr(args, dest, None)
        if value is not None and section == "reader":
            setattr(config.reader, key, value)
    config = apply_overrides(config, args.set)
    metrics = evaluate_file(args.model_dir, args.data, config, args.output_dir)
    print_json({k: v for k, v in metrics.items() if k not in ("per_class", "per_type", "confusion_matrix")})
    return 0
