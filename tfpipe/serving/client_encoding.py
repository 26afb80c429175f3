"""Values between Python/numpy and what TF Serving carries: tensors and tf.Examples for gRPC, JSON (with
{"b64": ...} for bytes) for REST, and protos as its REST layer prints them; strings come back as `str`."""

from __future__ import annotations

import base64
from typing import Any, Mapping, Sequence

import numpy as np
import tensorflow as tf
from google.protobuf import json_format


def _to_str(value: Any) -> Any:
    """Strings come back as `str` over both transports (bytes that are not UTF-8 stay bytes)."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    return value


def decode_strings(array: np.ndarray) -> np.ndarray:
    """A string tensor from `tf.make_ndarray` (bytes objects) with UTF-8 values as `str`."""
    if array.dtype == object:
        flat = [_to_str(v) for v in array.reshape(-1)]
        out = np.empty(len(flat), dtype=object)
        out[:] = flat
        return out.reshape(array.shape)
    return array


def json_value(value: Any) -> Any:
    """A REST request value: numpy to lists, and bytes that are not UTF-8 as TF Serving's {"b64": ...}.

    Examples:
    >>> json_value([b"caf\\xc3\\xa9", b"\\xff"])
    ['café', {'b64': '/w=='}]
    >>> from_json([{"b64": "/w=="}, "café"]).tolist()
    [b'\\xff', 'café']
    """
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, np.generic):
        return value.item()
    return value


def from_json(value: Any) -> np.ndarray:
    """A REST response value as an array; strings (and {"b64": ...} bytes) in an object array."""
    def unwrap(v: Any) -> Any:
        if isinstance(v, dict) and set(v) == {"b64"}:
            return base64.b64decode(v["b64"])
        return [unwrap(x) for x in v] if isinstance(v, list) else v

    def has_text(v: Any) -> bool:
        return any(has_text(x) for x in v) if isinstance(v, list) else isinstance(v, (str, bytes))

    data = unwrap(value)
    return np.array(data, dtype=object) if has_text(data) else np.asarray(data)


def proto_to_json(message) -> dict:
    """A proto as TF Serving's REST layer writes it (field names as in the .proto, default values included)."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


def example(features: Mapping[str, Any]) -> tf.train.Example:
    """A tf.Example from {name: value or list}: str/bytes → bytes_list, float → float_list, int → int64_list."""
    feature = {}
    for name, value in features.items():
        values = list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value]
        if all(isinstance(v, (str, bytes)) for v in values):
            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(
                value=[v.encode("utf-8") if isinstance(v, str) else v for v in values]))
        elif all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
            feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))
        else:
            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))
    return tf.train.Example(features=tf.train.Features(feature=feature))


def examples_json(examples: Sequence[Mapping[str, Any]]) -> list[dict]:
    """REST examples: integers stay JSON integers (int64 features), floats JSON floats, strings strings."""
    return [{k: json_value(list(v) if isinstance(v, tuple) else v) for k, v in ex.items()} for ex in examples]
