"""Deterministic train/validation/test split of a dataset, written in the input's own format as
DIR/train.EXT, DIR/validation.EXT and DIR/test.EXT (stratified by a label column when asked)."""

from __future__ import annotations

import argparse

from tfpipe.cli.common import add_config_args, build_config, print_json
from tfpipe.config.schemas import FORMATS, MAX_LINE_BYTES
from tfpipe.config.tasks import task_names

HELP = "split a dataset deterministically into train/validation/test"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True)
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--ratios", default="0.8,0.1,0.1", help="2 or 3 ratios summing to 1")
    parser.add_argument("--stratify-column", help="keep this column's label ratios in every split")
    # Its own dest: `seed` is pretraining's in the shared flag table of build_config.
    parser.add_argument("--seed", dest="split_seed", metavar="SEED", type=int, default=0)
    # The flags below default to the config (`reader.format`, `reader.no_header`, `task`, `reader.max_line_bytes`).
    parser.add_argument("--format", choices=FORMATS,
                        help="input format (default: from the file extension)")
    parser.add_argument("--no-header", action="store_true", default=None)
    parser.add_argument("--task", choices=task_names(),
                        help="decides what an extension means (.txt is CoNLL for token-classification)")
    parser.add_argument("--max-line-bytes", type=int, metavar="N",
                        help=f"a longer line (or CSV record) is an error naming file:line (default {MAX_LINE_BYTES})")
    add_config_args(parser, quiet=False)  # nothing to report progress on


def run(args: argparse.Namespace) -> int:
    from tfpipe.config import save_config
    from tfpipe.text.split import split_file

    config = build_config(args)
    reader = config.reader
    counts = split_file(args.input, args.output_dir, args.ratios, args.split_seed, args.stratify_column,
                        reader.format, reader.no_header, config.task, reader.max_line_bytes)
    save_config(config, args.output_dir)
    for name, count in counts.items():
        print(f"{name}: {count}")
    print_json({"output_dir": args.output_dir, "counts": counts})
    return 0
