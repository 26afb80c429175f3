"""EDA augmentation of a labelled dataset: WordNet synonym replacement plus random insertion, swap and
deletion, with rates and a seed. Writes JSONL records (text, text_pair, label), originals first."""

from __future__ import annotations

import argparse
import json

from tfpipe.cli.common import add_config_args, add_reader_args, build_config, print_json, report_reading
from tfpipe.config.atomic import atomic_file

HELP = "augment training texts with WordNet synonyms and EDA operations"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True, help="JSONL to write")
    parser.add_argument("--num-aug", type=int)
    parser.add_argument("--alpha", type=float, help="one rate for all four operations")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--no-originals", action="store_true", help="write only the augmented copies")
    add_reader_args(parser)
    add_config_args(parser)


def run(args: argparse.Namespace) -> int:
    from tfpipe.text.augment import EdaAugmenter, augment_records, load_wordnet
    from tfpipe.text.readers import ErrorLog, read_records

    config = build_config(args, {"num_aug": ("augment", "num_aug"), "seed": ("augment", "seed")})
    if args.alpha is not None:
        aug = config.augment
        aug.alpha_sr = aug.alpha_ri = aug.alpha_rs = aug.p_rd = args.alpha
    cfg = config.augment
    augmenter = EdaAugmenter(cfg.alpha_sr, cfg.alpha_ri, cfg.alpha_rs, cfg.p_rd, cfg.num_aug, cfg.seed,
                             wordnet=load_wordnet())
    log = ErrorLog.for_reader(config.reader)
    records = read_records(args.input, config.reader, config.task, log=log)
    count = 0
    with atomic_file(args.output) as out:
        for rec in augment_records(records, augmenter, keep_original=not args.no_originals):
            out.write(json.dumps({"text": rec.text, "text_pair": rec.text_pair, "label": rec.label},
                                 ensure_ascii=False) + "\n")
            count += 1
    report_reading(args.input, log.summary())
    print(f"{args.output}: {count} records")
    print_json({"output": args.output, "records": count, "reading": log.summary()})
    return 0
