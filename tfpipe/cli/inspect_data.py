"""Validate a dataset and print counts, label distribution, length percentiles, duplicates and every error
(with file:line). Exit status 1 when errors were found."""

from __future__ import annotations

import argparse

from tfpipe.cli.common import TASK_HELP, add_config_args, add_reader_args, build_config, print_json
from tfpipe.config.tasks import task_names

HELP = "validate a dataset and describe it (exit 1 on errors)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", choices=task_names(), help=TASK_HELP,
                        default="classification")
    parser.add_argument("--input", required=True, help="dataset file")
    parser.add_argument("--vocab", help="vocab.txt: report WordPiece token lengths instead of words")
    parser.add_argument("--cased", action="store_true", help="the vocabulary is cased")
    parser.add_argument("--json", action="store_true", help="print the report as JSON only")
    add_reader_args(parser)
    add_config_args(parser)


def run(args: argparse.Namespace) -> int:
    from tfpipe.text.inspect_data import format_report, inspect_dataset
    from tfpipe.text.tokenizer import WordPieceTokenizer

    config = build_config(args)
    tokenizer = WordPieceTokenizer(config.tokenizer.vocab, config.tokenizer.lowercase) \
        if config.tokenizer.vocab else None
    report = inspect_dataset(args.input, config.task, config.reader, tokenizer)
    if not args.json:
        print(format_report(report))
    print_json(report)
    return 1 if report["num_errors"] else 0
