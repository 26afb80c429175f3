"""The spaCy corpus pass: clean a plain-text corpus (Unicode, HTML, control characters, whitespace,
duplicates) and segment it into sentences with spacy.blank(LANG) + sentencizer, streamed through nlp.pipe.
Writes one sentence per line with a blank line between documents."""

from __future__ import annotations

import argparse
from pathlib import Path

from tfpipe.cli.common import add_config_args, add_reader_args, build_config, check_inputs, print_json, progress_enabled

HELP = "clean and sentence-segment a corpus with spaCy (streamed)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", nargs="+", required=True, help="plain-text corpus file(s)")
    parser.add_argument("--output", required=True, help="output corpus (one sentence per line)")
    parser.add_argument("--lang", help="spaCy language code (default en)")
    parser.add_argument("--batch-size", type=int, help="nlp.pipe batch size")
    parser.add_argument("--n-process", type=int, help="nlp.pipe processes")
    add_reader_args(parser, columns=False, corpus=True)
    add_config_args(parser)


def run(args: argparse.Namespace) -> int:
    from tfpipe.config import save_config
    from tfpipe.text.corpus import prepare_corpus

    config = build_config(args)
    stats = prepare_corpus(check_inputs(args.input), args.output, config.reader, config.cleaning, config.spacy,
                           progress_enabled(args))
    save_config(config, Path(args.output).parent)
    print(f"{args.output}: {stats.documents} documents, {stats.sentences} sentences, {stats.words} words "
          f"({stats.duplicates} duplicate lines removed)")
    print_json({"output": args.output, **vars(stats)})
    return 0
