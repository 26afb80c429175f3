"""TF Serving's REST JSON basics (its json_tensor.cc rules and messages): parsing a body, JSON values → typed
arrays with `{"b64": ...}` strings, and float formatting as its writer does."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from typing import Any

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2

from tfpipe.serving.errors import ServingError, invalid_argument
from tfpipe.serving.rest_body import decode, repeated
from tfpipe.serving.tensors import dtype_name

_FLOAT_MAX_INT = (1 << 24) - 1
F32_MAX = float(np.finfo(np.float32).max)
_INT_RANGES = {types_pb2.DT_INT32: (-(2**31), 2**31 - 1), types_pb2.DT_INT16: (-(2**31), 2**31 - 1),
               types_pb2.DT_INT8: (-(2**31), 2**31 - 1), types_pb2.DT_UINT8: (-(2**31), 2**31 - 1),
               types_pb2.DT_INT64: (-(2**63), 2**63 - 1), types_pb2.DT_UINT32: (0, 2**32 - 1),
               types_pb2.DT_UINT64: (0, 2**64 - 1)}
MAX_RANK = 32  # numpy 1.x's limit on dimensions (TF allows 254); also bounds the recursion of the checks below
_B64_SPACE = re.compile(rb"[ \t\n\v\f\r]")


def json_type(value: Any) -> str:
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, dict):
        return "Object"
    return "Array" if isinstance(value, list) else "String" if isinstance(value, str) else "Number"


def format_float(value: float, digits: int = 9) -> str:
    """WriteDecimal: %g when it round-trips, else up to 9 (float32) digits; '.0' on whole numbers.

    Examples:
    >>> format_float(3.0), format_float(0.1), format_float(float(np.float32(1 / 3))), format_float(float("nan"))
    ('3.0', '0.1', '0.333333343', 'NaN')
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "-Infinity" if value < 0 else "Infinity"
    text = f"{value:g}"
    cast = np.float32 if digits == 9 else np.float64
    if cast(float(text)) != cast(value):
        text = f"{value:.{digits}g}"
    if "." not in text and "e" not in text and "n" not in text:
        text += ".0"
    return text


def float_texts(values: np.ndarray) -> list[str]:
    """format_float over a 1-D float array, in bulk where it can be (large responses)."""
    digits = 9 if values.dtype.itemsize <= 4 else 17
    finite = np.isfinite(values)
    texts = [f"{v:g}" for v in values.tolist()]
    back = np.array([t if ok else "0" for t, ok in zip(texts, finite.tolist())], dtype=np.float64).astype(values.dtype)
    for i in np.flatnonzero((back != values) | ~finite).tolist():
        texts[i] = format_float(float(values[i]), digits)
    return [t if ("." in t or "e" in t or "N" in t or "I" in t) else t + ".0" for t in texts]


def nest(items: list[str], shape: tuple[int, ...]) -> str:
    """Flat JSON value texts → one nested JSON array text of `shape` (row-major)."""
    if not shape:
        return items[0]
    for k in range(len(shape) - 1, -1, -1):
        d = shape[k]
        if d == 0:
            items = ["[]"] * int(np.prod(shape[:k], dtype=np.int64))
        else:
            items = ["[" + ",".join(items[i:i + d]) + "]" for i in range(0, len(items), d)]
    return items[0]


class _Text(str):
    """Literal output text on to_json_text's stack (a plain str there is a JSON string value)."""


def to_json_text(value: Any) -> str:
    """JSON like rapidjson writes it (compact, floats via format_float) — for messages and responses. Iterative:
    a body may nest up to rest_body.MAX_DEPTH levels, past Python's recursion limit once the server's frames count.

    Examples:
    >>> to_json_text({"a": [1, 2.0, None, "é"]})
    '{"a":[1,2.0,null,"é"]}'
    """
    out: list[str] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if type(item) is _Text:
            out.append(item)
        elif isinstance(item, dict):
            out.append("{")
            stack.append(_Text("}"))
            members = list(item.items()) + repeated(item)
            for i in range(len(members) - 1, -1, -1):
                stack += [members[i][1], _Text(("," if i else "") + json.dumps(members[i][0]) + ":")]
        elif isinstance(item, list):
            out.append("[")
            stack.append(_Text("]"))
            for i in range(len(item) - 1, -1, -1):
                stack += [item[i], _Text(",")] if i else [item[i]]
        elif isinstance(item, bool) or item is None:
            out.append(json.dumps(item))
        elif isinstance(item, float):
            out.append(format_float(item, 17))
        else:
            out.append(json.dumps(item, ensure_ascii=False) if isinstance(item, str) else str(item))
    return "".join(out)


def parse_body(body: bytes) -> dict:
    """A request body that must hold a JSON object (rest_body.decode, then TF Serving's "Is not object")."""
    doc = decode(body)
    if not isinstance(doc, dict):
        raise invalid_argument(f"JSON Value: {to_json_text(doc)} Is not object")
    return doc


def signature_name(doc: dict) -> str:
    name = doc.get("signature_name", "")
    if not isinstance(name, str):
        raise invalid_argument(f"JSON Value: {to_json_text(doc)} not formatted correctly. 'signature_name' key must "
                               "be a string value.")
    return name


def is_b64(value: Any) -> bool:
    """{"b64": "<string>"} with no other member (a repeated "b64" is a second member, as in rapidjson's DOM)."""
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str) and not repeated(value)


def decode_b64(value: Any) -> bytes:
    """absl::Base64Unescape's rules: standard alphabet, ASCII whitespace skipped, padding ('=' or '.') optional but
    exact when present.

    Examples:
    >>> decode_b64({"b64": "YQ=="}), decode_b64({"b64": "YQ"}), decode_b64({"b64": " Y Q . . "})
    (b'a', b'a', b'a')
    """
    if not is_b64(value):
        raise invalid_argument(f"JSON Value: {to_json_text(value)} not formatted correctly for base64 data")
    text = _B64_SPACE.sub(b"", value["b64"].encode("utf-8")).replace(b".", b"=")
    data = text.rstrip(b"=")
    pads, missing = len(text) - len(data), -len(data) % 4
    try:
        if len(data) % 4 == 1 or (pads and pads != missing):
            raise ValueError("bad padding")
        return base64.b64decode(data + b"=" * missing, validate=True)
    except (binascii.Error, ValueError):
        raise invalid_argument("Unable to base64 decode") from None


def _type_error(value: Any, dtype: int) -> ServingError:
    return invalid_argument(f"JSON Value: {to_json_text(value)} Type: {json_type(value)} is not of expected type: "
                            f"{dtype_name(dtype)}")


def _leaf(value: Any, dtype: int) -> Any:
    if isinstance(value, dict):
        if dtype == types_pb2.DT_STRING:
            return decode_b64(value)
        raise _type_error(value, dtype)
    if dtype in (types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _type_error(value, dtype)
        if dtype == types_pb2.DT_FLOAT and math.isfinite(value) and (
                abs(value) > _FLOAT_MAX_INT if isinstance(value, int) else abs(value) > F32_MAX):
            raise invalid_argument(f"Cannot convert JSON value: {to_json_text(value)} to float without loss of "
                                   "precision.")
        return value
    if dtype in _INT_RANGES:
        low, high = _INT_RANGES[dtype]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _type_error(value, dtype)
        return value
    if dtype == types_pb2.DT_STRING:
        if not isinstance(value, str):
            raise _type_error(value, dtype)
        return value.encode("utf-8")
    if dtype == types_pb2.DT_BOOL:
        if not isinstance(value, bool):
            raise _type_error(value, dtype)
        return value
    raise ServingError(grpc.StatusCode.UNIMPLEMENTED,
                       f"Conversion of JSON Value: {to_json_text(value)} to type: {dtype_name(dtype)}")


def dense_shape(value: Any) -> list[int]:
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _fill(value: Any, level: int, shape: list[int], dtype: int, out: list) -> None:
    if not isinstance(value, list):
        if level != len(shape):
            raise invalid_argument(f"JSON Value: {to_json_text(value)} found at incorrect level: {level + 1} in the "
                                   f"JSON DOM. Expected at level: {len(shape)}")
        out.append(_leaf(value, dtype))
        return
    if level >= len(shape):
        raise invalid_argument(f"Encountered list at unexpected level: {level} expected < {len(shape)}")
    if len(value) != shape[level]:
        raise invalid_argument(f"Encountered list at unexpected size: {len(value)} at level: {level} expected size: "
                               f"{shape[level]}")
    for item in value:
        _fill(item, level + 1, shape, dtype, out)


def to_array(value: Any, dtype: int) -> np.ndarray:
    """A JSON value (scalar or nested lists) → an array of the signature's dtype, with TF Serving's checks."""
    shape = dense_shape(value)
    if len(shape) > MAX_RANK:
        raise invalid_argument(f"JSON Value nests lists {len(shape)} deep: tensors here have at most {MAX_RANK} "
                               "dimensions")
    np_dtype = object if dtype == types_pb2.DT_STRING else tf.dtypes.as_dtype(dtype).as_numpy_dtype
    fast = fast_array(value, shape, dtype, np_dtype)
    if fast is not None:
        return fast
    flat: list = []
    _fill(value, 0, shape, dtype, flat)  # the exact per-element checks and messages
    return np.array(flat, dtype=np_dtype).reshape(shape)


def fast_array(value: Any, shape: list[int], dtype: int, np_dtype) -> np.ndarray | None:
    """Dense, well-typed input converted in bulk (large batches); None sends it down the checking path."""
    if not shape or 0 in shape or len(shape) > MAX_RANK:
        return None
    try:
        grid = np.array(value, dtype=object)
    except ValueError:
        return None
    if list(grid.shape) != shape:
        return None
    flat = grid.ravel().tolist()
    kinds = set(map(type, flat))
    if dtype in (types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE) and kinds <= {int, float}:
        array = np.array(flat, dtype=np.float64)
        if dtype == types_pb2.DT_FLOAT:
            finite = array[np.isfinite(array)]
            ints = [v for v in flat if type(v) is int] if int in kinds else []
            if (finite.size and np.abs(finite).max() > F32_MAX) or (ints and max(map(abs, ints)) > _FLOAT_MAX_INT):
                return None
        return array.astype(np_dtype).reshape(shape)
    if dtype in _INT_RANGES and kinds == {int}:
        low, high = _INT_RANGES[dtype]
        if min(flat) < low or max(flat) > high:
            return None
        return np.array(flat, dtype=np_dtype).reshape(shape)
    if dtype == types_pb2.DT_STRING and kinds == {str}:
        return np.array([v.encode("utf-8") for v in flat], dtype=object).reshape(shape)
    if dtype == types_pb2.DT_BOOL and kinds == {bool}:
        return np.array(flat, dtype=bool).reshape(shape)
    return None
