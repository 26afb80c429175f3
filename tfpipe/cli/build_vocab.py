"""Train a WordPiece vocabulary (BERT special tokens first) over words split exactly as the runtime
tokenizer's pre-split splits them, after corpus cleaning."""

from __future__ import annotations

import argparse
from pathlib import Path

from tfpipe.cli.common import add_config_args, add_reader_args, build_config, check_inputs, print_json, progress_enabled

HELP = "train a WordPiece vocabulary"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", nargs="+", required=True,
                        help="corpus file(s): plain text, or TSV/CSV/JSONL with --text-column")
    parser.add_argument("--vocab-size", type=int, help="at most this many tokens (default 8000)")
    parser.add_argument("--output", required=True, help="vocab.txt to write")
    parser.add_argument("--cased", action="store_true", help="keep case and accents")
    add_reader_args(parser)
    add_config_args(parser)


def iter_texts(paths, config):
    """Texts of every input: plain-text lines, or the text (and pair) column of labelled files."""
    from tfpipe.text.cleaning import clean_lines
    from tfpipe.text.readers import ErrorLog, detect_format, read_documents, read_records

    for path in paths:
        log = ErrorLog(config.reader.on_error)
        if detect_format(path, config.reader.format) == "text":
            lines = (line for doc in read_documents(path, config.reader.doc_boundary_regex,
                                                    config.reader.drop_regex, log) for line in doc.lines)
        else:
            records = read_records(path, config.reader, config.task, log=log)
            lines = (t for r in records for t in (getattr(r, "text", None) or " ".join(r.words), r.text_pair) if t)
        yield from clean_lines(lines, config.cleaning)


def run(args: argparse.Namespace) -> int:
    from tfpipe.config import save_config
    from tfpipe.text.tokenizer import vocabulary_hash
    from tfpipe.text.vocab import build_vocabulary, write_vocabulary

    config = build_config(args)
    config.cleaning.dedupe = False  # word counts should reflect the corpus as it is
    tokens = build_vocabulary(iter_texts(check_inputs(args.input), config), config.vocab,
                              config.tokenizer.lowercase, progress_enabled(args))
    path = write_vocabulary(tokens, args.output)
    config.tokenizer.vocab = str(path)
    save_config(config, Path(args.output).parent)
    print(f"{path}: {len(tokens)} tokens")
    print_json({"output": str(path), "size": len(tokens), "sha256": vocabulary_hash(tokens)})
    return 0
