"""Tokenize JSONL records ({"text": ..., "text_pair": ...}) with the in-graph WordPiece tokenizer and write them
back with input_ids and token_type_ids ([CLS]/[SEP] included; no truncation unless --max-length)."""

from __future__ import annotations

import argparse

from tfpipe.cli.common import add_config_args, build_config, print_json
from tfpipe.config.schemas import MAX_LINE_BYTES

HELP = "tokenize JSONL records with the in-graph tokenizer"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vocab", help="vocab.txt (or tokenizer.vocab in --config)")
    parser.add_argument("--cased", action="store_true", help="the vocabulary is cased (no lower-casing)")
    parser.add_argument("--max-length", type=int, help="truncate to this many ids (longest segment first)")
    parser.add_argument("--input", required=True, help="JSONL with 'text' and optional 'text_pair'")
    parser.add_argument("--output", required=True, help="JSONL to write")
    # Its own dest: `batch_size` is spaCy's in the shared flag table of build_config.
    parser.add_argument("--batch-size", dest="tokenize_batch_size", metavar="BATCH_SIZE", type=int, default=1024)
    parser.add_argument("--max-line-bytes", type=int, metavar="N",
                        help=f"a longer line is an error naming file:line (default {MAX_LINE_BYTES}, or "
                             "reader.max_line_bytes)")
    add_config_args(parser, quiet=False)  # nothing to report progress on


def run(args: argparse.Namespace) -> int:
    from tfpipe.text.tokenize_file import tokenize_jsonl
    from tfpipe.text.tokenizer import WordPieceTokenizer

    config = build_config(args)
    if not config.tokenizer.vocab:
        raise ValueError("--vocab: give the vocab.txt (or tokenizer.vocab in --config)")
    tokenizer = WordPieceTokenizer(config.tokenizer.vocab, config.tokenizer.lowercase,
                                   config.tokenizer.max_chars_per_word)
    count = tokenize_jsonl(args.input, args.output, tokenizer, args.max_length, args.tokenize_batch_size,
                           config.reader.max_line_bytes)
    print(f"{args.output}: {count} records")
    print_json({"output": args.output, "records": count})
    return 0
