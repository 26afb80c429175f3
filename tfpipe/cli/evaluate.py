"""Evaluate a fine-tuned run on a data file: prints the metrics as one JSON line and writes metrics.json,
predictions.jsonl (input order, original label strings) and plots under OUT (default RUN/eval/<file-stem>/)."""

from __future__ import annotations

import argparse

from tfpipe.cli.common import add_config_args, add_reader_args, build_config, print_json, report_reading

HELP = "evaluate a fine-tuned model on a data file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-dir", required=True, help="output directory of tfpipe finetune")
    parser.add_argument("--data", required=True)
    parser.add_argument("--output-dir")
    add_reader_args(parser)
    add_config_args(parser)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tfpipe.config import Config, load_config
    from tfpipe.training.evaluate import evaluate_file

    # The run's own settings, with this data file's column flags on top.
    config = build_config(args, base=load_config(Config, Path(args.model_dir) / "config.yaml"))
    metrics = evaluate_file(args.model_dir, args.data, config, args.output_dir)
    report_reading(args.data, metrics["data"])
    print_json({k: v for k, v in metrics.items() if k not in ("per_class", "per_type", "confusion_matrix")})
    return 0
