"""Fine-tune a BERT model for classification, regression or token classification with Keras fit: from a
Hugging Face/keras-hub checkpoint (--init-checkpoint), a `tfpipe pretrain` run (--pretrained-run), or a named size
with --vocab. Writes a run directory (weights, config, labels, logs, metrics, plots)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tfpipe.cli.common import (
    TASK_HELP,
    add_config_args,
    add_model_args,
    add_reader_args,
    build_config,
    print_json,
    report_reading,
)
from tfpipe.config.tasks import task_names

HELP = "fine-tune a task model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", choices=task_names(), help=TASK_HELP)
    parser.add_argument("--train", required=True)
    parser.add_argument("--validation")
    parser.add_argument("--vocab", help="vocab.txt (with --model-size)")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", dest="train_batch_size", type=int)
    parser.add_argument("--max-seq-length", dest="train_max_seq_length", type=int)
    add_model_args(parser)
    add_reader_args(parser)
    add_config_args(parser)


def run(args: argparse.Namespace) -> int:
    from tfpipe.training.finetune import finetune
    from tfpipe.training.summaries import tensorboard_command

    config = build_config(args)
    metrics = finetune(config, args.train, args.validation, args.output_dir, verbose=0 if args.quiet else 2)
    for reading in metrics.get("data", {}).values():
        report_reading(reading["file"], reading)
    headline = {k: metrics[k] for k in ("accuracy", "exact_match", "f1", "f1_positive", "mse", "pearson")
                if k in metrics}
    print(f"{args.output_dir}: " + ", ".join(f"{k} {v:.4f}" for k, v in headline.items()))
    print(f"TensorBoard: {tensorboard_command(Path(args.output_dir) / 'logs')}")
    print_json({k: v for k, v in metrics.items() if k not in ("per_class", "per_type", "confusion_matrix")})
    return 0
