"""Tokenize JSONL records ({"text": ..., "text_pair": ...}) with the in-graph WordPiece tokenizer and write them
back with input_ids and token_type_ids ([CLS]/[SEP] included; no truncation unless --max-length)."""

from __future__ import annotations

import argparse

from tfpipe.cli.common import print_json

HELP = "tokenize JSONL records with the in-graph tokenizer"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vocab", required=True, help="vocab.txt")
    parser.add_argument("--cased", action="store_true", help="the vocabulary is cased (no lower-casing)")
    parser.add_argument("--max-length", type=int, help="truncate to this many ids (longest segment first)")
    parser.add_argument("--input", required=True, help="JSONL with 'text' and optional 'text_pair'")
    parser.add_argument("--output", required=True, help="JSONL to write")
    parser.add_argument("--batch-size", type=int, default=1024)


def run(args: argparse.Namespace) -> int:
    from tfpipe.text.tokenize_file import tokenize_jsonl
    from tfpipe.text.tokenizer import WordPieceTokenizer

    tokenizer = WordPieceTokenizer(args.vocab, lowercase=not args.cased)
    count = tokenize_jsonl(args.input, args.output, tokenizer, args.max_length, args.batch_size)
    print(f"{args.output}: {count} records")
    print_json({"output": args.output, "records": count})
    return 0
