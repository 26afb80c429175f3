"""REST :classify / :regress bodies (`context`, `examples` as JSON objects) → tf.Examples, and their `results`
JSON, following TF Serving's json_tensor.cc (messages included)."""

from __future__ import annotations

import json
import math
from typing import Any

import tensorflow as tf

from tfpipe.serving.errors import invalid_argument
from tfpipe.serving.rest_body import repeated
from tfpipe.serving.rest_json import F32_MAX, decode_b64, format_float, is_b64, json_type, to_json_text


def _feature(name: str, content: Any) -> tf.train.Feature:
    kind = None
    values: list = []

    def need(new_kind: str) -> None:
        nonlocal kind
        if kind not in (None, new_kind):
            raise invalid_argument(f"Unexpected element type in feature: {name} expecting type: {kind}")
        kind = new_kind

    for value in content if isinstance(content, list) else [content]:
        if value is None or isinstance(value, list) or (isinstance(value, dict) and not is_b64(value)):
            raise invalid_argument(f"Feature: {name} has element with unexpected JSON type: {json_type(value)}")
        if isinstance(value, bool):
            need("int64")
            values.append(int(value))
        elif isinstance(value, dict):
            need("bytes")
            values.append(decode_b64(value))
        elif isinstance(value, str):
            need("bytes")
            values.append(value.encode("utf-8"))
        elif isinstance(value, float):
            need("float")
            if math.isfinite(value) and abs(value) > F32_MAX:
                raise invalid_argument(f"Cannot convert JSON value: {to_json_text(value)} to float without loss of "
                                       "precision.")
            values.append(value)
        else:
            need("int64")
            if value >= 2**63:
                raise invalid_argument(f"Feature: {name} has uint64 element. Only int64 is supported.")
            values.append(value)
    if kind == "bytes":
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
    if kind == "float":
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))
    if kind == "int64":
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    return tf.train.Feature()


def to_example(value: Any) -> tf.train.Example:
    if not isinstance(value, dict):
        raise invalid_argument(f"Example must be JSON object but got JSON {json_type(value)}")
    features = {}
    for name, content in list(value.items()) + repeated(value):  # a repeated feature name: the last wins, as in TF
        features[name] = _feature(name, content)                 # Serving's map assignment
    return tf.train.Example(features=tf.train.Features(feature=features))


def fill_example_input(doc: dict, model_input, method: str) -> None:
    """A classify/regress body's `context` and `examples` → a tensorflow.serving.Input."""
    if "context" in doc:
        model_input.example_list_with_context.context.CopyFrom(to_example(doc["context"]))
    examples = doc.get("examples")
    if examples is None:
        raise invalid_argument(f"JSON Value: {to_json_text(doc)} When method is {method}, key 'examples' is expected "
                               "and was not found")
    if not isinstance(examples, list):
        raise invalid_argument(f"JSON Value: {to_json_text(doc)} Expecting 'examples' value to be an list/array")
    if not examples:
        raise invalid_argument(f"JSON Value: {to_json_text(doc)} 'examples' value is an empty array")
    target = model_input.example_list_with_context if "context" in doc else model_input.example_list
    for example in examples:
        target.examples.append(to_example(example))


def classify_response(result) -> str:
    if not result.classifications:
        raise invalid_argument("Cannot convert empty ClassificationResults to JSON")
    rows = []
    for classifications in result.classifications:
        pairs = [f"[{json.dumps(c.label, ensure_ascii=False)}, {format_float(c.score)}]"
                 for c in classifications.classes]
        rows.append("[" + ", ".join(pairs) + "]")
    return '{"results": [' + ", ".join(rows) + "]}"


def regress_response(result) -> str:
    if not result.regressions:
        raise invalid_argument("Cannot convert empty RegressionResults to JSON")
    return '{"results": [' + ", ".join(format_float(r.value) for r in result.regressions) + "]}"
