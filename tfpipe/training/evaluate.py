"""`evaluate`: run a fine-tuned model over a data file in input order and write metrics.json, predictions.jsonl
and plots (confusion matrix, training curves) — labels shown as their original strings."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from tfpipe.config import Config, PipelineConfig
from tfpipe.config.atomic import atomic_file, write_json_atomic
from tfpipe.config.tasks import get_task
from tfpipe.models.run_loader import load_run
from tfpipe.text.labels import LabelVocab
from tfpipe.text.readers import ErrorLog, read_records
from tfpipe.text.tokenizer import WordPieceTokenizer
from tfpipe.training.reports import plot_history
from tfpipe.training.summaries import TABLE_ROWS, run_step, write_text


def compiled_predict(model, features_spec):
    """The model's inference as one traced function for every batch shape (eager calls cost ~6x more)."""
    return tf.function(lambda features: model(features, training=False), input_signature=[features_spec])


def model_outputs(model, ds: tf.data.Dataset) -> list[np.ndarray]:
    """The model's float32 outputs over every batch of an unlabelled dataset, in order."""
    predict = compiled_predict(model, ds.element_spec)
    return [np.asarray(predict(features), dtype=np.float32) for features in ds]


def prediction_pipeline(config: Config) -> PipelineConfig:
    """The run's pipeline settings for prediction: no cache, and no buckets (bucketing regroups examples, and
    predictions must keep the input order)."""
    return replace(config.pipeline, cache=False, bucket_boundaries=[])


def predict_records(model, tokenizer: WordPieceTokenizer, labels: Optional[LabelVocab], config: Config,
                    records: Sequence) -> dict:
    """Predictions in input order, as the task gives them (label ids + probabilities, floats, tag lists, ...)."""
    return get_task(config.task).predict(model, tokenizer, labels, config, records)


def evaluate_records(model, tokenizer: WordPieceTokenizer, labels: Optional[LabelVocab], config: Config,
                     records: Sequence, output_dir: Path, run_dir: Optional[Path] = None,
                     reading: Optional[dict] = None, step: int = 0) -> dict:
    """Writes metrics.json, predictions.jsonl and plots under `output_dir`; returns the metrics. `reading`
    (`ErrorLog.summary()` of the data file) is recorded in metrics.json as `data`. With `run_dir`, sample
    predictions and the worst errors also go to TensorBoard, RUN/logs/eval/<output folder name>, at `step`."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    task = get_task(config.task)
    predicted = predict_records(model, tokenizer, labels, config, records)
    metrics: dict = {"task": config.task, "num_examples": len(records)}
    if reading is not None:
        metrics["data"] = reading
    with atomic_file(output_dir / "predictions.jsonl") as out:
        for row in task.prediction_rows(records, predicted, labels):
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    gold_known = task.has_gold(records)
    if gold_known and records:
        metrics.update(task.score(records, predicted, labels, output_dir))
    if run_dir is not None:
        plot_history(Path(run_dir) / "history.csv", output_dir / "plots" / "training_curves.png")
        if records:
            write_text(Path(run_dir) / "logs" / "eval" / output_dir.name,
                       task.prediction_tables(records, predicted, labels, gold_known, TABLE_ROWS), step)
    write_json_atomic(output_dir / "metrics.json", metrics)
    return metrics


def evaluate_file(run_dir: str | Path, data: str | Path, config: Optional[Config] = None,
                  output_dir: Optional[str | Path] = None) -> dict:
    """Loads the run's model and evaluates `data` (read with the run's reader settings unless `config` is given);
    output defaults to `RUN/eval/<data-file-stem>/`."""
    loaded = load_run(run_dir)
    config = replace(config or loaded.config, task=loaded.config.task, model=loaded.config.model)
    closed = get_task(config.task).closed_labels(loaded.labels)
    log = ErrorLog.for_reader(config.reader)
    records = list(read_records(data, config.reader, config.task, labels=closed, log=log))
    output = Path(output_dir) if output_dir else Path(run_dir) / "eval" / Path(data).stem
    return evaluate_records(loaded.model, loaded.tokenizer, loaded.labels, config, records, output, Path(run_dir),
                            {"file": str(data), **log.summary()}, step=run_step(run_dir))
