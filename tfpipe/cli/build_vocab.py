"""Train a WordPiece vocabulary (BERT special tokens first) over words split exactly as the runtime
tokenizer's pre-split splits them, after corpus cleaning."""

from __future__ import annotations

import argparse
from pathlib import Path

from tfpipe.cli.common import (
    add_beam_args,
    add_config_args,
    add_reader_args,
    build_config,
    check_inputs,
    print_json,
    progress_enabled,
    report_reading,
)

HELP = "train a WordPiece vocabulary"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", nargs="+", required=True,
                        help="corpus file(s): plain text, or TSV/CSV/JSONL with --text-column")
    parser.add_argument("--vocab-size", type=int, help="at most this many tokens (default 8000)")
    parser.add_argument("--output", required=True, help="vocab.txt to write")
    parser.add_argument("--cased", action="store_true", help="keep case and accents")
    add_reader_args(parser)
    add_beam_args(parser)
    add_config_args(parser)


def run(args: argparse.Namespace) -> int:
    from tfpipe.config import save_config
    from tfpipe.text.tokenizer import vocabulary_hash
    from tfpipe.text.vocab import build_vocabulary, iter_texts, write_vocabulary

    config = build_config(args)
    config.cleaning.dedupe = False  # word counts should reflect the corpus as it is
    reading: dict = {}
    if args.runner:  # the word counts on Beam; the WordPiece learning here
        from tfpipe.data.beam_pipelines import build_vocabulary_beam

        tokens = build_vocabulary_beam(args.input, config.vocab, config.reader, config.cleaning, config.task,
                                       config.tokenizer.lowercase, progress_enabled(args), args.runner,
                                       args.pipeline_option, reading)
    else:
        tokens = build_vocabulary(iter_texts(check_inputs(args.input), config.reader, config.cleaning, config.task,
                                             reading), config.vocab, config.tokenizer.lowercase,
                                  progress_enabled(args))
    path = write_vocabulary(tokens, args.output)
    config.tokenizer.vocab = str(path)
    save_config(config, Path(args.output).parent)
    for name, summary in reading.items():
        report_reading(name, summary)
    print(f"{path}: {len(tokens)} tokens")
    print_json({"output": str(path), "size": len(tokens), "sha256": vocabulary_hash(tokens), "reading": reading})
    return 0
