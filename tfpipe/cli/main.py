"""`tfpipe` command line: one sub-command per module in this package; each parses, calls the API, prints."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from tfpipe.cli.common import eprint, quiet_tensorflow

# command name → module under tfpipe.cli (imported lazily so `tfpipe --help` is instant)
COMMANDS = {
    "quickstart": "quickstart",
    "inspect-data": "inspect_data",
    "split": "split",
    "prepare-corpus": "prepare_corpus",
    "build-vocab": "build_vocab",
    "tokenize": "tokenize",
    "create-pretraining-data": "create_pretraining_data",
    "augment": "augment",
    "setup-wordnet": "setup_wordnet",
    "pretrain": "pretrain",
    "finetune": "finetune",
    "evaluate": "evaluate",
    "serve": "serve",
    "predict": "predict",
    "export": "export",
    "convert": "convert",
}


def build_parser(subparsers: dict[str, argparse.ArgumentParser] | None = None) -> argparse.ArgumentParser:
    """The `tfpipe` parser; `subparsers`, when given, is filled with each command's own parser (by name)."""
    parser = argparse.ArgumentParser(prog="tfpipe", description="Raw text to a served BERT-style model.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in COMMANDS.items():
        mod = importlib.import_module(f"tfpipe.cli.{module}")
        command = sub.add_parser(name, help=mod.HELP, description=mod.__doc__)
        mod.add_arguments(command)
        command.set_defaults(run=mod.run)
        if subparsers is not None:
            subparsers[name] = command
    return parser


def main(argv: list[str] | None = None) -> int:
    quiet_tensorflow()
    args = build_parser().parse_args(argv)
    from tfpipe.config import ConfigError
    from tfpipe.text.readers import DataError

    try:
        return int(args.run(args) or 0)
    except (DataError, ConfigError, FileNotFoundError, ValueError) as error:
        if os.environ.get("TFPIPE_TRACEBACK"):
            raise
        eprint(f"tfpipe {args.command}: error: {error}")
        return 2
    except KeyboardInterrupt:
        eprint(f"tfpipe {args.command}: interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
