"""The export check: outputs of the in-process model on sample inputs, compared with the SavedModel reloaded in a
fresh interpreter that imports only tensorflow and tensorflow-text (`verify_child.py`)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np
import tensorflow as tf

from tfpipe.export.signatures import SignatureFunctions

CHILD = Path(__file__).with_name("verify_child.py")


class VerifyError(RuntimeError):
    """The reloaded export disagreed with the in-process model, or could not be loaded."""


def _encode(array: np.ndarray) -> dict:
    if array.dtype == object or array.dtype.kind in "SU":
        values = np.vectorize(lambda b: base64.b64encode(b if isinstance(b, bytes) else str(b).encode()).decode(),
                              otypes=[object])(array) if array.size else array
        return {"dtype": "string", "values": np.asarray(values).tolist(), "shape": list(array.shape)}
    return {"dtype": array.dtype.name, "values": array.tolist()}


def serialized_examples(texts: list[str], pairs: Optional[list[str]]) -> np.ndarray:
    """`[n]` serialized tf.Examples with `text` (and `text_pair`) features, as the classify signature takes."""
    serialized = []
    for i, text in enumerate(texts):
        feature = {"text": tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode("utf-8")]))}
        if pairs is not None:
            feature["text_pair"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[pairs[i].encode("utf-8")]))
        serialized.append(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    return np.array(serialized, dtype=object)


def build_cases(module: SignatureFunctions, texts: list[str], pairs: Optional[list[str]]) -> dict:
    """signature → {"inputs", "expected"}: the in-process outputs of every signature on the sample inputs."""
    first, *second = module.input_names  # text (text_pair), or the task's own names (question, context)
    text_inputs = {first: np.array([t.encode("utf-8") for t in texts], dtype=object)}
    if pairs is not None and second:
        text_inputs[second[0]] = np.array([t.encode("utf-8") for t in pairs], dtype=object)
    ids = module.encode(tf.constant(text_inputs[first]),
                        tf.constant(text_inputs[second[0]]) if pairs is not None and second else None)
    per_signature = {"serving_default": text_inputs,
                     "predict_ids": {k: v.numpy() for k, v in ids.items()},
                     "classify": {"inputs": serialized_examples(texts, pairs)},
                     "regress": {"inputs": serialized_examples(texts, pairs)}}
    cases = {}
    for name, (fn, _, _) in module.endpoints().items():
        inputs = per_signature[name]
        outputs = fn(**{k: tf.constant(v) for k, v in inputs.items()})  # eagerly, on the Keras model itself
        cases[name] = {"inputs": {k: _encode(v) for k, v in inputs.items()},
                       "expected": {k: _encode(v.numpy()) for k, v in outputs.items()}}
    return cases


def verify_export(export_dir: str | Path, cases: dict, timeout: float = 600) -> dict:
    """Runs the check in a fresh `python -I` process; returns its report or raises `VerifyError`."""
    with tempfile.TemporaryDirectory() as tmp:
        cases_path = Path(tmp) / "cases.json"
        cases_path.write_text(json.dumps(cases), encoding="utf-8")
        done = subprocess.run([sys.executable, "-I", str(CHILD), str(export_dir), str(cases_path)],
                              capture_output=True, text=True, timeout=timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise VerifyError(f"reloading {export_dir} failed:\n{done.stderr[-3000:]}")
    report = json.loads(lines[-1])
    if done.returncode != 0 or not report["ok"]:
        raise VerifyError("; ".join(report["problems"]) or done.stderr[-3000:])
    return report
