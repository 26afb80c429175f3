"""The CLI reference (docs/cli.md), generated from the argparse parsers themselves so it cannot drift.

    python -m tfpipe.cli.reference --write docs/cli.md   # regenerate (`make docs`)
    python -m tfpipe.cli.reference --check docs/cli.md   # exit 1 when the file is stale (the test suite does this)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tfpipe.cli.main import COMMANDS, build_parser

# argparse wraps help to the terminal's width (COLUMNS); the reference is rendered at one fixed width.
WIDTH = "100"
HEADER = ("# tfpipe command-line reference\n\n"
          "Generated from the argparse parsers by `python -m tfpipe.cli.reference --write docs/cli.md` "
          "(`make docs`); a test fails when it is stale. Do not edit by hand.\n")


def render() -> str:
    """Markdown: every command's `--help`, in the order `tfpipe --help` lists them."""
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH
    try:
        commands: dict[str, argparse.ArgumentParser] = {}
        parser = build_parser(commands)
        parts = [HEADER, "## tfpipe\n\n```text\n" + parser.format_help().rstrip() + "\n```\n"]
        for name in COMMANDS:
            help_text = commands[name].format_help().rstrip()
            parts.append(f"## tfpipe {name}\n\n```text\n{help_text}\n```\n")
    finally:
        if previous is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = previous
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfpipe.cli.reference", description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", type=Path, metavar="FILE", help="write the reference to FILE")
    group.add_argument("--check", type=Path, metavar="FILE", help="exit 1 when FILE differs from the parsers")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        from tfpipe.config.atomic import write_text_atomic

        write_text_atomic(args.write, text)
        return 0
    current = args.check.read_text(encoding="utf-8") if args.check.is_file() else ""
    if current != text:
        print(f"{args.check} is stale: run `python -m tfpipe.cli.reference --write {args.check}`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
