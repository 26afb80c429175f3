"""`pretrain`: MLM+NSP training from `create-pretraining-data` shards, from scratch or continuing a checkpoint,
reporting MLM accuracy, MLM loss and NSP accuracy; writes the encoder for `finetune --pretrained-run`."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import keras
import tensorflow as tf

from tfpipe.config import Config
from tfpipe.config.atomic import atomic_path, write_json_atomic
from tfpipe.data.pipelines import pretraining_dataset
from tfpipe.data.pretraining_data import read_manifest
from tfpipe.models import keras_compat
from tfpipe.models.pretrainer import BertPretrainer
from tfpipe.training.callbacks import build_callbacks
from tfpipe.training.finetune import apply_freezing, configure_runtime, encoder_and_tokenizer
from tfpipe.training.losses import SparseCrossEntropy
from tfpipe.training.optimizers import build_optimizer
from tfpipe.training.resume import fit_resumable
from tfpipe.training.run_dir import save_run_files
from tfpipe.training.strategies import build_strategy, is_chief, num_workers
from tfpipe.training.summaries import RunLog, config_hparams

STEPS_PER_EPOCH = 200  # pretraining streams; an "epoch" is just the logging/checkpoint interval


def _as_keras(batch):
    x = {k: batch[k] for k in ("input_word_ids", "input_mask", "input_type_ids", "masked_lm_positions")}
    y = {"mlm": batch["masked_lm_ids"], "nsp": batch["next_sentence_labels"][:, 0]}
    weights = {"mlm": batch["masked_lm_weights"], "nsp": tf.ones_like(batch["next_sentence_labels"][:, 0],
                                                                      tf.float32)}
    return x, y, weights


def pretrain(config: Config, data_dir: str | Path, output_dir: str | Path, verbose: int = 2) -> dict:
    """Trains for `config.training.steps` optimizer steps; returns the final MLM/NSP metrics."""
    run = Path(output_dir)
    manifest = read_manifest(data_dir)
    configure_runtime(config)
    strategy = build_strategy(config.training.strategy)
    with strategy.scope():
        encoder, tokenizer, resolved = encoder_and_tokenizer(config)
        if tokenizer.hash != manifest["vocab"]["sha256"]:
            raise ValueError(f"{data_dir} was made with a different vocabulary than the model's "
                             f"({manifest['vocab']['sha256'][:12]} vs {tokenizer.hash[:12]}); rebuild the data "
                             "with the model's vocab.txt")
        config.model = resolved
        model = BertPretrainer(encoder)
        apply_freezing(model, config)
        steps = config.training.steps or STEPS_PER_EPOCH * config.training.epochs
        config.training.steps = steps
        model.compile(
            optimizer=build_optimizer(config.training, steps),
            loss={"mlm": SparseCrossEntropy(tokenizer.vocabulary_size), "nsp": SparseCrossEntropy(2)},
            weighted_metrics={"mlm": [keras.metrics.SparseCategoricalAccuracy("accuracy")]},
            metrics={"nsp": [keras.metrics.SparseCategoricalAccuracy("accuracy")]},
            jit_compile=config.training.jit_compile, steps_per_execution=config.training.steps_per_execution)
    chief = is_chief()
    if chief:
        save_run_files(run, config, tokenizer, None)
    ds = pretraining_dataset(data_dir, config.pipeline.batch_size, seed=config.training.seed,
                             shuffle_buffer=config.pipeline.shuffle_buffer,
                             dynamic_masking=config.pipeline.dynamic_masking, tokenizer=tokenizer,
                             masked_lm_prob=manifest["config"]["pretraining"]["masked_lm_prob"]).map(_as_keras)
    workers, shards = num_workers(strategy), len(manifest["shards"])
    if shards < workers:
        # tf.data gives each worker whole shard files; with fewer files than workers it cannot, and fails.
        if chief:
            print(f"{data_dir}: {shards} shard file(s) for {workers} workers: every worker reads all of them and "
                  f"keeps its share; make at least {workers} (--num-shards) to read each once", file=sys.stderr)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        ds = ds.with_options(options)
    per_epoch = min(STEPS_PER_EPOCH, steps)
    epochs = math.ceil(steps / per_epoch)
    log = RunLog(run / "logs") if chief else None
    if log is not None:
        log.start(config_hparams(config, pretraining_data=data_dir), model, ds.element_spec[0])
    callbacks = build_callbacks(run, config.training, None, chief=chief, batch_size=config.pipeline.batch_size)
    history = fit_resumable(model, ds, per_epoch, epochs, run / "backup", total_steps=steps, callbacks=callbacks,
                            verbose=verbose)
    last = {k: float(v[-1]) for k, v in history.items() if v}
    metrics = {"mlm_accuracy": last.get("mlm_accuracy"), "mlm_loss": last.get("mlm_loss"),
               "nsp_accuracy": last.get("nsp_accuracy"), "loss": last.get("loss"),
               "optimizer_steps": keras_compat.optimizer_steps(model.optimizer)}
    if chief:
        with atomic_path(run / "encoder.weights.h5") as weights:
            model.encoder.save_weights(str(weights))
        write_json_atomic(run / "metrics.json", metrics)
        log.finish(metrics, metrics["optimizer_steps"])
    return metrics
