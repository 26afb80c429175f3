"""The spaCy corpus pass: clean a plain-text corpus (Unicode, HTML, control characters, whitespace,
duplicates) and segment it into sentences with spacy.blank(LANG) + sentencizer, streamed through nlp.pipe.
Writes one sentence per line with a blank line between documents."""

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

HELP = "clean and sentence-segment a corpus with spaCy (streamed)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", nargs="+", required=True, help="plain-text corpus file(s)")
    parser.add_argument("--output", required=True, help="output corpus (one sentence per line)")
    parser.add_argument("--lang", help="spaCy language code (default en)")
    parser.add_argument("--batch-size", type=int, help="nlp.pipe batch size")
    parser.add_argument("--n-process", type=int, help="nlp.pipe processes")
    parser.add_argument("--num-shards", type=int, default=1, dest="corpus_shards", metavar="N",
                        help="write N files STEM-0000i-of-0000N.SUFFIX beside --output, each document in the one its "
                             "id hashes to (default 1: --output itself)")
    add_reader_args(parser, columns=False, corpus=True)
    add_beam_args(parser)
    add_config_args(parser)


def run(args: argparse.Namespace) -> int:
    from tfpipe.config import save_config
    from tfpipe.text.corpus import prepare_corpus

    config = build_config(args)
    if args.runner:
        from tfpipe.data import beam_files
        from tfpipe.data.beam_pipelines import prepare_corpus_beam

        stats = prepare_corpus_beam(args.input, args.output, config.reader, config.cleaning, config.spacy,
                                    progress_enabled(args), args.corpus_shards, args.runner, args.pipeline_option)
        beam_files.save_config_to(config, beam_files.split(args.output)[0])
    else:
        stats = prepare_corpus(check_inputs(args.input), args.output, config.reader, config.cleaning, config.spacy,
                               progress_enabled(args), args.corpus_shards)
        save_config(config, Path(args.output).parent)
    report_reading(", ".join(args.input), stats.reading)
    print(f"{args.output}: {stats.documents} documents, {stats.sentences} sentences, {stats.words} words "
          f"({stats.duplicates} duplicate lines removed)")
    print_json({"output": args.output, **vars(stats)})
    return 0
