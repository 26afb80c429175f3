"""The check every conversion passes before it is kept: the converted model and the SavedModel side by side on
the export's own sample texts (every signature, raw text in), on a labelled file when one is given, and timed on
the same token-id batches.

fp32 must match to 1e-4 in every float output and exactly in labels and tags; reduced precisions must agree on
enough samples and, with `--eval-data`, lose at most the allowed accuracy.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from tfpipe.config import Config, from_dict
from tfpipe.config.tasks import get_task
from tfpipe.export.convert.runtime import ConvertedModel, Encoder, read_export_metadata
from tfpipe.export.layout import WARMUP_PATH
from tfpipe.export.samples import EDGE_CASES
from tfpipe.export.verify import serialized_examples
from tfpipe.text.readers import Record, TokenRecord, read_records
from tfpipe.text.tokenizer import MODEL_INPUTS

FP32_TOLERANCE = 1e-4
TIMED_BATCHES = (1, 32)
TIMED_SEQUENCE = 128


def sample_texts(export_dir: str | Path) -> tuple[list[str], Optional[list[str]]]:
    """The texts of the export's warm-up records (real evaluation examples and edge cases), plus tfpipe's edge
    cases, with their pairs for pair models."""
    texts, pairs = [], []
    path = Path(export_dir) / WARMUP_PATH
    if path.is_file():
        for record in tf.data.TFRecordDataset(str(path)):
            request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
            texts += [t.decode("utf-8") for t in request.inputs["text"].string_val]
            pairs += [t.decode("utf-8") for t in request.inputs["text_pair"].string_val]
    texts += EDGE_CASES
    pairs += [t[::-1] for t in EDGE_CASES]
    return texts, (pairs if read_export_metadata(export_dir).get("text_pair") else None)


def _text_inputs(texts: list[str], pairs: Optional[list[str]]) -> dict[str, tf.Tensor]:
    return {"text": tf.constant(texts)} | ({"text_pair": tf.constant(pairs)} if pairs is not None else {})


def _signature_inputs(model: ConvertedModel, texts: list[str],
                      pairs: Optional[list[str]]) -> list[tuple[str, dict]]:
    """(signature, inputs): every signature on the whole batch, and serving_default on each text alone too (as
    warm-up records and single requests arrive: an empty text alone gives the encoder an empty batch)."""
    text = _text_inputs(texts, pairs)
    examples = {"inputs": tf.constant(serialized_examples(texts, pairs))}
    ids = model.functions.encode(text["text"], text.get("text_pair"))
    cases = [("serving_default", text), ("classify", examples), ("regress", examples), ("predict_ids", ids)]
    for i in range(len(texts)):
        cases.append(("serving_default", _text_inputs(texts[i:i + 1], pairs[i:i + 1] if pairs else None)))
    return cases


def _agreement(got: np.ndarray, want: np.ndarray) -> float:
    if got.shape != want.shape:
        return 0.0
    rows = (got == want).reshape(len(want), -1).all(axis=1) if want.size else np.ones(len(want), bool)
    return float(rows.mean()) if len(rows) else 1.0


def parity(saved: Any, model: ConvertedModel, texts: list[str], pairs: Optional[list[str]]) -> dict[str, Any]:
    """Every signature of both on the sample texts: the largest float difference and the smallest agreement
    (share of rows equal) of the label/tag/id outputs, per output and overall."""
    per_output: dict[str, float] = {}
    max_diff, agreement = 0.0, 1.0
    for name, inputs in _signature_inputs(model, texts, pairs):
        if name not in model.signatures:
            continue
        want = {k: v.numpy() for k, v in saved.signatures[name](**inputs).items()}
        got = {k: v.numpy() for k, v in model.signatures[name](**inputs).items()}
        for key, expected in want.items():
            label = f"{name}.{key}"  # serving_default runs on the batch and on each sample: keep the worst
            if expected.dtype.kind == "f":
                diff = float(np.max(np.abs(got[key] - expected))) if expected.size else 0.0
                per_output[label] = max(diff, per_output.get(label, 0.0))
                max_diff = max(max_diff, diff)
            else:
                share = _agreement(got[key], expected)
                per_output[label] = min(share, per_output.get(label, 1.0))
                agreement = min(agreement, share)
    return {"samples": len(texts), "max_abs_diff": max_diff, "agreement": agreement, "per_output": per_output}


def _interleaved_median_ms(fns: list[Callable[[], Any]], repeats: int) -> list[float]:
    """Median milliseconds of each of `fns`, run in turn within each repeat: a shared machine's load changes hit
    them alike, which timing one after the other would not."""
    for fn in fns:
        fn()  # warm-up (first-call graph building and allocation)
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, kept in zip(fns, times):
            start = time.perf_counter()
            fn()
            kept.append((time.perf_counter() - start) * 1000)
    return [statistics.median(kept) for kept in times]


def latency(saved: Any, encoder: Encoder, vocabulary_size: int, repeats: int = 5,
            sequence: int = TIMED_SEQUENCE) -> dict[str, dict[str, float]]:
    """Median milliseconds of the SavedModel's token-id signature and the converted encoder on the same random
    `[batch, sequence]` ids (128, or the export's shorter `max_seq_length`, which its position embeddings may not
    exceed), run in turn, and the speed-up."""
    rng = np.random.default_rng(0)
    out: dict[str, dict[str, float]] = {"savedmodel_ms": {}, "converted_ms": {}, "speedup": {}}
    for batch in TIMED_BATCHES:
        ids = rng.integers(5, vocabulary_size, (batch, sequence), dtype=np.int32)
        feeds = {"input_word_ids": ids, "input_mask": np.ones_like(ids), "input_type_ids": np.zeros_like(ids)}
        constants = {k: tf.constant(v) for k, v in feeds.items()}
        key = f"batch_{batch}"
        out["savedmodel_ms"][key], out["converted_ms"][key] = _interleaved_median_ms(
            [lambda c=constants: saved.signatures["predict_ids"](**c), lambda f=feeds: encoder(f)], repeats)
        out["speedup"][key] = out["savedmodel_ms"][key] / out["converted_ms"][key]
    return out


def export_config(export_dir: str | Path) -> Config:
    return from_dict(Config, read_export_metadata(export_dir)["config"])


def read_labelled(path: str | Path, export_dir: str | Path) -> list[Record | TokenRecord]:
    """A labelled file, read with the reader settings the model was trained with."""
    config, task = export_config(export_dir), read_export_metadata(export_dir)["task"]
    records = list(read_records(path, config.reader, task))
    if not records:
        raise ValueError(f"{path}: no records to evaluate on")
    return records


def _predict_all(signature, records: list, pair: bool, task: str, batch_size: int = 32) -> dict[str, np.ndarray]:
    parts: dict[str, list] = {}
    texts = get_task(task).as_texts(records)
    for start in range(0, len(records), batch_size):
        chunk = texts[start:start + batch_size]
        inputs = _text_inputs([r.text for r in chunk], [r.text_pair or "" for r in chunk] if pair else None)
        for key, value in signature(**inputs).items():
            parts.setdefault(key, []).append(value.numpy())
    return {k: np.concatenate(v) if v[0].ndim == 1 else v for k, v in parts.items()}


def accuracy(saved: Any, model: ConvertedModel, records: list, export_dir: str | Path) -> dict[str, Any]:
    """The SavedModel's and the converted model's score on a labelled file (raw text through serving_default)."""
    metadata = read_export_metadata(export_dir)
    task, pair = metadata["task"], bool(metadata.get("text_pair"))
    spec = get_task(task)
    records = [r for r in records if spec.has_gold([r])]
    metric, base = spec.score_outputs(_predict_all(saved.signatures["serving_default"], records, pair, task), records)
    _, converted = spec.score_outputs(_predict_all(model.signatures["serving_default"], records, pair, task), records)
    # How much worse the converted model is: accuracy points, or the rise in an error (lower is better).
    drop = converted - base if metric.endswith("error") else (base - converted) * 100
    return {"metric": metric, "records": len(records), "savedmodel": base, "converted": converted, "drop": drop}


def calibration_batches(path: str | Path, export_dir: str | Path, tokenizer, limit: int = 300,
                        batch_size: int = 8) -> list[dict[str, np.ndarray]]:
    """Token-id batches for int8 calibration, from tfpipe's own fine-tuning pipeline over a file (labels unused)."""
    from tfpipe.data.pipelines import finetune_dataset

    config, task = export_config(export_dir), read_export_metadata(export_dir)["task"]
    records = [replace(r, tags=None) if isinstance(r, TokenRecord) else replace(r, label=None)
               for r in read_labelled(path, export_dir)]
    pipeline = replace(config.pipeline, batch_size=batch_size)
    batches = []
    for features in finetune_dataset(records, tokenizer, task, None, pipeline).take(limit):
        features = features[0] if isinstance(features, tuple) else features
        batches.append({name: features[name].numpy().astype(np.int32) for name in MODEL_INPUTS})
    return batches
