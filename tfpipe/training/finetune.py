"""`finetune`: Keras `fit` of a BERT task model on any reader's files, with the callbacks, optimizers and options
of `TrainingConfig`, writing a run directory that `evaluate` and `export` read back."""

from __future__ import annotations

import copy
import math
import warnings
from pathlib import Path
from typing import Optional

import keras
import tensorflow as tf

from tfpipe.config import Config
from tfpipe.config.atomic import atomic_path, copy_file_atomic, write_json_atomic
from tfpipe.config.tasks import get_task
from tfpipe.models import keras_compat
from tfpipe.models.backbone import build_encoder, resolve_dimensions
from tfpipe.models.run_loader import load_run
from tfpipe.text.labels import LabelVocab
from tfpipe.text.readers import ErrorLog, read_records
from tfpipe.text.tokenizer import WordPieceTokenizer
from tfpipe.training.callbacks import build_callbacks
from tfpipe.training.optimizers import build_optimizer
from tfpipe.training.precision import set_policy
from tfpipe.training.resume import fit_resumable
from tfpipe.training.run_dir import load_checkpoint, load_pretrained_run, save_run_files
from tfpipe.training.strategies import build_strategy, is_chief, worker_dir
from tfpipe.training.summaries import RunLog, cls_embeddings, config_hparams, write_projector

# Keras warns when a dataset of unknown length ends (our validation sets), though that is how they end.
warnings.filterwarnings("ignore", message="Your input ran out of data")


def configure_runtime(config: Config) -> str:
    """Seeds, thread counts and the mixed-precision policy; returns the policy in force."""
    keras.utils.set_random_seed(config.training.seed)
    if config.training.threads:
        tf.config.threading.set_intra_op_parallelism_threads(config.training.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    return set_policy(config.training.mixed_precision)


def encoder_and_tokenizer(config: Config):
    """The encoder, its tokenizer and resolved config: from `--init-checkpoint`, `--pretrained-run`, or a named
    size with `--vocab` (random initialisation). Shared by fine-tuning and pretraining."""
    model = config.model
    if model.init_checkpoint:
        encoder, tokenizer, resolved = load_checkpoint(model.init_checkpoint)
    elif model.pretrained_run:
        encoder, tokenizer, resolved = load_pretrained_run(model.pretrained_run)
        resolved.pretrained_run = model.pretrained_run
    else:
        if not config.tokenizer.vocab:
            raise ValueError("a model from a named size needs a vocabulary: --vocab FILE (or --init-checkpoint / "
                             "--pretrained-run)")
        tokenizer = WordPieceTokenizer(config.tokenizer.vocab, config.tokenizer.lowercase)
        resolved = resolve_dimensions(model)
        encoder = build_encoder(resolved, tokenizer.vocabulary_size)
        return encoder, tokenizer, resolved
    # The checkpoint fixes dimensions and vocabulary; dropout and pooling still come from the config.
    resolved.dropout, resolved.head_dropout, resolved.pooling = model.dropout, model.head_dropout, model.pooling
    return encoder, tokenizer, resolved


def apply_freezing(model, config: Config) -> None:
    """Freezes embeddings and/or the lowest N layers, or switches to LoRA adapters (keras-hub `enable_lora`)."""
    encoder = model.encoder
    training = config.training
    if training.lora_rank:
        encoder.enable_lora(training.lora_rank)
        # keras-hub freezes the adapted kernels but not their biases; LoRA trains the adapters only.
        for variable in encoder.trainable_variables:
            if "lora" not in variable.path:
                variable.trainable = False
    if training.freeze_embeddings:
        for layer in (encoder.token_embedding, encoder.position_embedding, encoder.segment_embedding,
                      encoder.embeddings_layer_norm):
            layer.trainable = False
    if training.freeze_layers > len(encoder.transformer_layers):
        raise ValueError(f"training.freeze_layers={training.freeze_layers} but the encoder has "
                         f"{len(encoder.transformer_layers)} layers")
    for layer in encoder.transformer_layers[: training.freeze_layers]:
        layer.trainable = False


def _read(path: str, config: Config, labels: Optional[set], reading: dict, role: str):
    """The file's records; what was kept and skipped goes into `reading[role]` (and so into metrics.json)."""
    log = ErrorLog.for_reader(config.reader)
    records = list(read_records(path, config.reader, config.task, labels=labels, log=log))
    reading[role] = {"file": str(path), **log.summary()}
    return records


def _dataset(records, tokenizer, labels, config, training, repeat=False):
    # Keras reduces a first batch across workers before training, so every worker must see the same shapes.
    fixed = config.training.strategy == "multi_worker"
    return get_task(config.task).dataset(records, tokenizer, labels, config.pipeline, training, repeat, fixed)


def _compile(model, config: Config, labels: Optional[LabelVocab], total_steps: int) -> None:
    training = config.training
    model.compile(optimizer=build_optimizer(training, total_steps), **get_task(config.task).compile_args(
        labels, training), jit_compile=training.jit_compile, steps_per_execution=training.steps_per_execution)


def finetune(
    config: Config, train_path: str, validation_path: Optional[str], output_dir: str | Path, verbose: int = 2,
) -> dict:
    """Trains, keeps the best weights on the validation metric, evaluates, and returns the validation metrics.

    `config` is not changed (the run's own copy, with the resolved model dimensions, goes to `config.yaml`), and
    the global Keras dtype policy is put back as it was when training ends.
    """
    previous_policy = keras.mixed_precision.global_policy()
    try:
        return _finetune(copy.deepcopy(config), train_path, validation_path, output_dir, verbose)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)


def _finetune(config: Config, train_path: str, validation_path: Optional[str], output_dir: str | Path,
              verbose: int) -> dict:
    from tfpipe.training.evaluate import evaluate_records

    run = Path(output_dir)
    task = get_task(config.task)
    policy = configure_runtime(config)
    strategy = build_strategy(config.training.strategy)
    chief = is_chief()
    reading: dict = {}  # what reading each file kept and skipped, recorded in metrics.json
    train_records = _read(train_path, config, None, reading, "train")
    if not train_records:
        raise ValueError(f"{train_path}: no training records")
    labels = task.labels_from_records(train_records)
    closed = task.closed_labels(labels)
    validation_records = _read(validation_path, config, closed, reading, "validation") if validation_path else []
    with strategy.scope():
        encoder, tokenizer, resolved = encoder_and_tokenizer(config)
        config.model = resolved
        if config.pipeline.max_seq_length > resolved.max_sequence_length:
            raise ValueError(f"pipeline.max_seq_length={config.pipeline.max_seq_length} is longer than the model's "
                             f"max_sequence_length={resolved.max_sequence_length}; lower --max-seq-length")
        model = task.build_model(encoder, labels, resolved.head_dropout, resolved.pooling)
        model.fgm_epsilon = config.training.fgm_epsilon
        apply_freezing(model, config)
    train_records = task.prepare(train_records, tokenizer, config.pipeline.max_seq_length)
    batch = config.pipeline.batch_size
    steps_per_epoch = math.ceil(task.examples_per_epoch(train_records, tokenizer, config.pipeline) / batch)
    total_steps = steps_per_epoch * config.training.epochs
    if config.training.steps:
        total_steps = config.training.steps
        config.training.epochs = math.ceil(total_steps / steps_per_epoch)
    with strategy.scope():
        _compile(model, config, labels, total_steps)
    if chief:
        save_run_files(run, config, tokenizer, labels)
    train = _dataset(train_records, tokenizer, labels, config, True, repeat=True)
    validation = None
    if validation_records:
        windows = task.prepare(validation_records, tokenizer, config.pipeline.max_seq_length)
        validation = _dataset(windows, tokenizer, labels, config, False)
    monitor, mode = task.monitor
    monitor = monitor if validation else None
    log = RunLog(run / "logs") if chief else None
    if log is not None:
        log.start(config_hparams(config, train=train_path, validation=validation_path), model, train.element_spec[0])
    history = fit_resumable(
        model, train, steps_per_epoch, config.training.epochs, run / "backup",
        total_steps=config.training.steps, validation_data=validation,
        callbacks=build_callbacks(run, config.training, monitor, mode, chief, batch_size=batch),
        class_weight=task.class_weights(train_records, labels, config.training) if labels else None,
        verbose=verbose)
    steps_done = keras_compat.optimizer_steps(model.optimizer)
    if not chief:  # other workers keep their (identical) weights in a scratch folder of their own
        with atomic_path(worker_dir(run) / "model.weights.h5") as weights:
            model.save_weights(str(weights))
        return {"training": {"optimizer_steps": steps_done}}
    # The best checkpoint (or the last weights) becomes model.weights.h5; Keras writes LoRA adapters merged into
    # their kernels, so a fresh model without adapters loads it, in float32, for evaluation and export.
    best = run / "checkpoints" / "best.weights.h5"
    if best.is_file():
        copy_file_atomic(best, run / "model.weights.h5")
    else:
        with atomic_path(run / "model.weights.h5") as weights:
            model.save_weights(str(weights))
    final = load_run(run)
    with atomic_path(run / "encoder.weights.h5") as weights:
        final.model.encoder.save_weights(str(weights))
    summary = {"optimizer_steps": steps_done, "epochs_run": len(history.get("loss", [])), "policy": policy,
               "train_examples": len(train_records), "steps_per_epoch": steps_per_epoch,
               "text_pair": any(getattr(r, "text_pair", None) is not None for r in train_records)}
    metrics = {}
    if validation_records:
        metrics = evaluate_records(final.model, tokenizer, labels, config, validation_records,
                                   run / "eval" / Path(validation_path).stem, run, reading["validation"],
                                   step=steps_done)
        shown = validation_records[: config.training.projector_examples]
        if shown:
            write_projector(run / "logs", cls_embeddings(final.model.encoder, tokenizer, config, shown), shown,
                            config.task)
    log.finish(metrics, steps_done)
    write_json_atomic(run / "metrics.json", {**metrics, "training": summary, "data": reading}, default=float)
    return {**metrics, "training": summary, "data": reading}
