"""Deterministic train/validation/test split of a dataset, written in the input's own format as
DIR/train.EXT, DIR/validation.EXT and DIR/test.EXT (stratified by a label column when asked)."""

from __future__ import annotations

import argparse

from tfpipe.cli.common import print_json

HELP = "split a dataset deterministically into train/validation/test"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True)
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--ratios", default="0.8,0.1,0.1", help="2 or 3 ratios summing to 1")
    parser.add_argument("--stratify-column", help="keep this column's label ratios in every split")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", default="auto", choices=["auto", "text", "tsv", "csv", "jsonl", "conll"])
    parser.add_argument("--no-header", action="store_true")
    parser.add_argument("--task", default="classification",
                        choices=["classification", "regression", "token-classification"],
                        help="decides whether .txt is a CoNLL file (token-classification) or plain text")


def run(args: argparse.Namespace) -> int:
    from tfpipe.text.split import split_file

    counts = split_file(args.input, args.output_dir, args.ratios, args.seed, args.stratify_column, args.format,
                        args.no_header, args.task)
    for name, count in counts.items():
        print(f"{name}: {count}")
    print_json({"output_dir": args.output_dir, "counts": counts})
    return 0
