"""`evaluate`: run a fine-tuned model over a data file in input order and write metrics.json, predictions.jsonl
and plots (confusion matrix, training curves) — labels shown as their original strings."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from tfpipe.config import Config
from tfpipe.config.atomic import atomic_file, write_json_atomic
from tfpipe.data.labels import IGNORE_INDEX
from tfpipe.data.pipelines import finetune_dataset
from tfpipe.data.windows import stitch, window_records
from tfpipe.models.run_loader import load_run
from tfpipe.text.labels import LabelVocab
from tfpipe.text.readers import ErrorLog, Record, TokenRecord, read_records
from tfpipe.text.tokenizer import WordPieceTokenizer
from tfpipe.training.metrics import classification_metrics, entity_metrics, regression_metrics
from tfpipe.training.reports import plot_confusion_matrix, plot_history
from tfpipe.training.summaries import prediction_tables, run_step, write_text


def _compiled(model, features_spec):
    """The model's inference as one traced function for every batch shape (eager calls cost ~6x more)."""
    return tf.function(lambda features: model(features, training=False), input_signature=[features_spec])


def _outputs(model, ds: tf.data.Dataset) -> list[np.ndarray]:
    predict = _compiled(model, ds.element_spec)
    return [np.asarray(predict(features), dtype=np.float32) for features in ds]


def predict_records(model, tokenizer: WordPieceTokenizer, labels: Optional[LabelVocab], config: Config,
                    records: Sequence[Record | TokenRecord]) -> dict:
    """Predictions in input order: label ids + probabilities, floats, or one tag list per sentence."""
    # No buckets here: bucketing regroups examples, and predictions must keep the input order.
    pipeline = replace(config.pipeline, cache=False, bucket_boundaries=[])
    if config.task == "token-classification":
        dummy = [replace(r, tags=r.tags if r.tags is not None else ["O"] * len(r.words)) for r in records]
        windows, origins = window_records(dummy, tokenizer, pipeline.max_seq_length)
        # Gold tags (or dummy "O"s) only mark each word's first piece; their values are not used here.
        ds = finetune_dataset([replace(w, tags=["O"] * len(w.words)) for w in windows], tokenizer, config.task,
                              labels, pipeline)
        window_tags = []
        predict = _compiled(model, ds.element_spec[0])
        for features, target in ds:
            logits = np.asarray(predict(features))
            keep = target.numpy() != IGNORE_INDEX
            for row in range(len(logits)):
                window_tags.append([labels.labels[i] for i in logits[row][keep[row]].argmax(-1)])
        return {"tags": stitch(origins, window_tags, len(records))}
    # Length-sorted batches pad little; predictions are put back in input order afterwards.
    order = sorted(range(len(records)), key=lambda i: len(records[i].text) + len(records[i].text_pair or ""))
    unlabelled = [replace(records[i], label=None) for i in order]
    sorted_logits = np.concatenate(_outputs(model, finetune_dataset(unlabelled, tokenizer, config.task, labels,
                                                                    pipeline)))
    logits = np.empty_like(sorted_logits)
    logits[order] = sorted_logits
    if config.task == "regression":
        return {"values": logits.reshape(-1)}
    probabilities = tf.nn.softmax(logits).numpy()
    return {"ids": probabilities.argmax(-1), "probabilities": probabilities}


def evaluate_records(model, tokenizer: WordPieceTokenizer, labels: Optional[LabelVocab], config: Config,
                     records: Sequence[Record | TokenRecord], output_dir: Path, run_dir: Optional[Path] = None,
                     reading: Optional[dict] = None, step: int = 0) -> dict:
    """Writes metrics.json, predictions.jsonl and plots under `output_dir`; returns the metrics. `reading`
    (`ErrorLog.summary()` of the data file) is recorded in metrics.json as `data`. With `run_dir`, sample
    predictions and the worst errors also go to TensorBoard, RUN/logs/eval/<output folder name>, at `step`."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    predicted = predict_records(model, tokenizer, labels, config, records)
    metrics: dict = {"task": config.task, "num_examples": len(records)}
    if reading is not None:
        metrics["data"] = reading
    with atomic_file(output_dir / "predictions.jsonl") as out:
        for i, rec in enumerate(records):
            if config.task == "token-classification":
                row = {"words": rec.words, "labels": rec.tags, "prediction": predicted["tags"][i]}
            else:
                row = {"text": rec.text}
                if rec.text_pair is not None:
                    row["text_pair"] = rec.text_pair
                row["label"] = rec.label
                row["prediction"] = (float(predicted["values"][i]) if config.task == "regression"
                                     else labels.labels[predicted["ids"][i]])
            if row.get("label") is None and row.get("labels") is None:
                row.pop("label", None), row.pop("labels", None)
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    gold_known = all((r.tags if isinstance(r, TokenRecord) else r.label) is not None for r in records)
    if gold_known and records:
        if config.task == "token-classification":
            metrics.update(entity_metrics([r.tags for r in records], predicted["tags"]))
        elif config.task == "regression":
            metrics.update(regression_metrics([float(r.label) for r in records], predicted["values"]))
        else:
            metrics.update(classification_metrics([labels.id(r.label) for r in records], predicted["ids"],
                                                  labels.labels, predicted["probabilities"]))
            plot_confusion_matrix(metrics["confusion_matrix"], labels.labels,
                                  output_dir / "plots" / "confusion_matrix.png")
    if run_dir is not None:
        plot_history(Path(run_dir) / "history.csv", output_dir / "plots" / "training_curves.png")
        if records:
            write_text(Path(run_dir) / "logs" / "eval" / output_dir.name,
                       prediction_tables(config.task, records, predicted, labels, gold_known), step)
    write_json_atomic(output_dir / "metrics.json", metrics)
    return metrics


def evaluate_file(run_dir: str | Path, data: str | Path, config: Optional[Config] = None,
                  output_dir: Optional[str | Path] = None) -> dict:
    """Loads the run's model and evaluates `data` (read with the run's reader settings unless `config` is given);
    output defaults to `RUN/eval/<data-file-stem>/`."""
    loaded = load_run(run_dir)
    config = config or loaded.config
    config.task, config.model = loaded.config.task, loaded.config.model
    closed = None
    if loaded.labels is not None:
        closed = loaded.labels.entity_types() if config.task == "token-classification" else set(loaded.labels.labels)
    log = ErrorLog.for_reader(config.reader)
    records = list(read_records(data, config.reader, config.task, labels=closed, log=log))
    output = Path(output_dir) if output_dir else Path(run_dir) / "eval" / Path(data).stem
    return evaluate_records(loaded.model, loaded.tokenizer, loaded.labels, config, records, output, Path(run_dir),
                            {"file": str(data), **log.summary()}, step=run_step(run_dir))
