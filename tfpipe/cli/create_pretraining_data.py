"""Documents → sentence pairs with next-sentence labels and 80/10/10 masking, written as
DIR/pretrain-00000-of-0000K.tfrecord shards (Model Garden v2 feature names) plus manifest.json.
The same seed gives byte-identical shards and manifest."""

from __future__ import annotations

import argparse

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

HELP = "write MLM+NSP pretraining TFRecords"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", nargs="+", required=True, help="plain-text corpus file(s)")
    parser.add_argument("--vocab", required=True, help="vocab.txt")
    parser.add_argument("--cased", action="store_true")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--max-seq-length", type=int)
    parser.add_argument("--max-predictions-per-seq", type=int)
    parser.add_argument("--masked-lm-prob", type=float)
    parser.add_argument("--dupe-factor", type=int)
    parser.add_argument("--short-seq-prob", type=float)
    parser.add_argument("--whole-word-mask", action="store_true", default=None)
    parser.add_argument("--num-shards", type=int)
    parser.add_argument("--seed", type=int)
    add_reader_args(parser, columns=False, corpus=True)
    add_beam_args(parser)
    add_config_args(parser)


def run(args: argparse.Namespace) -> int:
    from tfpipe.config import save_config
    from tfpipe.data.pretraining_data import create_pretraining_data
    from tfpipe.text.tokenizer import WordPieceTokenizer

    config = build_config(args)
    tokenizer = WordPieceTokenizer(config.tokenizer.vocab, config.tokenizer.lowercase)
    if args.runner:
        from tfpipe.data import beam_files
        from tfpipe.data.beam_pipelines import create_pretraining_data_beam

        manifest = create_pretraining_data_beam(args.input, tokenizer, args.output_dir, config.pretraining,
                                                config.reader, config.cleaning, config.spacy, progress_enabled(args),
                                                args.runner, args.pipeline_option)
        beam_files.save_config_to(config, args.output_dir)
    else:
        manifest = create_pretraining_data(check_inputs(args.input), tokenizer, args.output_dir,
                                           config.pretraining, config.reader, config.cleaning, config.spacy,
                                           progress_enabled(args))
        save_config(config, args.output_dir)
    report_reading(", ".join(args.input), manifest["corpus"]["reading"])
    stats = manifest["stats"]
    print(f"{args.output_dir}: {manifest['num_instances']} instances in {len(manifest['shards'])} shard(s); "
          f"masked {stats['masked_fraction']:.2%} of tokens, random next {stats['random_next_fraction']:.2%}")
    print_json({"output_dir": args.output_dir, "num_instances": manifest["num_instances"], **stats})
    return 0
