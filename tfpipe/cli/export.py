"""Export a fine-tuned run as a raw-text SavedModel under EXPORT_BASE/NAME/VERSION/ for TensorFlow Serving:
signatures serving_default (text in), classify or regress (tf.Example in), predict_ids (token ids in). The export
is reloaded in a fresh process with only TensorFlow and the tf-text kernels and compared with the in-process model
before it is renamed into place; a failed check leaves nothing behind and exits 1."""

from __future__ import annotations

import argparse

from tfpipe.cli.common import eprint, print_json

HELP = "export a fine-tuned run as a versioned SavedModel that takes raw text"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-dir", required=True, help="output directory of tfpipe finetune")
    parser.add_argument("--export-base", required=True, help="base folder; the model goes to BASE/NAME/VERSION/")
    parser.add_argument("--name", required=True, help="model name (TF Serving's --model_name)")
    parser.add_argument("--version", type=int, help="version number (default: the next free one; never overwrites)")
    parser.add_argument("--skip-verify", action="store_true",
                        help="do not reload and compare in a fresh process (not recommended)")


def run(args: argparse.Namespace) -> int:
    from tfpipe.export.exporter import ExportError, export_run

    try:
        result = export_run(args.model_dir, args.export_base, args.name, args.version, verify=not args.skip_verify,
                            log=eprint)
    except (ExportError, FileExistsError) as error:
        eprint(f"tfpipe export: error: {error}")
        return 1
    print(result.signatures)
    if result.verification:
        eprint(f"verified in a fresh process (tensorflow + tf-text ops only): max abs diff "
               f"{result.verification['max_abs_diff']:.3g} over {', '.join(result.verification['signatures'])}")
    print_json({"export_dir": str(result.path), "version": result.version,
                "max_abs_diff": result.verification.get("max_abs_diff")})
    return 0
