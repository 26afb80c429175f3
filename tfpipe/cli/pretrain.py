"""MLM+NSP pretraining from create-pretraining-data shards (from scratch with --vocab and --model-size, or
continuing a Hugging Face/keras-hub checkpoint with --init-checkpoint or an earlier `tfpipe pretrain` run with
--pretrained-run, e.g. on domain text), reporting MLM accuracy, MLM loss and NSP accuracy."""

from __future__ import annotations

import argparse
from pathlib import Path

from tfpipe.cli.common import add_config_args, add_model_args, build_config, print_json

HELP = "pretrain an encoder with MLM+NSP"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="create-pretraining-data output directory")
    parser.add_argument("--vocab", help="vocab.txt the data was made with (from-scratch models)")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--steps", type=int, help="optimizer steps")
    add_model_args(parser)
    add_config_args(parser)


def run(args: argparse.Namespace) -> int:
    from tfpipe.training.pretrain import pretrain
    from tfpipe.training.summaries import tensorboard_command

    config = build_config(args)
    metrics = pretrain(config, args.data, args.output_dir, verbose=0 if args.quiet else 2)
    print(f"{args.output_dir}: MLM accuracy {metrics['mlm_accuracy']:.4f}, MLM loss {metrics['mlm_loss']:.4f}, "
          f"NSP accuracy {metrics['nsp_accuracy']:.4f} after {metrics['optimizer_steps']} steps")
    print(f"TensorBoard: {tensorboard_command(Path(args.output_dir) / 'logs')}")
    print_json(metrics)
    return 0
