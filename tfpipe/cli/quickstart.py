"""Run every stage that exists on the embedded default corpus and dataset, end to end, and print a summary:
inspect-data, spaCy pass, build-vocab, create-pretraining-data, tf.data pipelines, augmentation."""

from __future__ import annotations

import argparse

from tfpipe.cli.common import add_config_args, print_json, progress_enabled

HELP = "run every stage end to end on the embedded default data"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output-dir", default="tfpipe-quickstart")
    add_config_args(parser)


def run(args: argparse.Namespace) -> int:
    from tfpipe.config import apply_overrides, load_config
    from tfpipe.quickstart import default_config, run_quickstart

    config = default_config()
    if args.config:
        config = load_config(type(config), args.config)
    config = apply_overrides(config, args.set)
    summary = run_quickstart(args.output_dir, config, progress_enabled(args))
    print_json(summary)
    return 0
