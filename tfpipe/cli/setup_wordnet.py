"""Place Debian's WordNet (/usr/share/wordnet, packages wordnet-base and wordnet-sense-index) where nltk looks,
adding the lexnames file those packages lack. Run once after installing the packages; augment does it too."""

from __future__ import annotations

import argparse

from tfpipe.cli.common import print_json

HELP = "make Debian's WordNet usable by nltk"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", help="nltk data folder (default: $TFPIPE_NLTK_DATA or ~/.cache/tfpipe)")


def run(args: argparse.Namespace) -> int:
    from tfpipe.text.augment import load_wordnet, prepare_wordnet

    folder = prepare_wordnet(target=args.target)
    synsets = len(list(load_wordnet(target=args.target).all_synsets("n")))
    print(f"WordNet ready for nltk at {folder} ({synsets} noun synsets)")
    print_json({"wordnet": str(folder), "noun_synsets": synsets})
    return 0
