"""TF Serving's REST JSON ↔ tensors (its json_tensor.cc rules and messages): row `instances` and columnar
`inputs`, `{"b64": ...}` strings, tf.Examples for classify/regress, and float output formatting."""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2

from tfpipe.serving.errors import ServingError, invalid_argument
from tfpipe.serving.tensors import dtype_name

ROW, COLUMNAR = "row", "columnar"
_FLOAT_MAX_INT = (1 << 24) - 1
_F32_MAX = float(np.finfo(np.float32).max)
_INT_RANGES = {types_pb2.DT_INT32: (-(2**31), 2**31 - 1), types_pb2.DT_INT16: (-(2**31), 2**31 - 1),
               types_pb2.DT_INT8: (-(2**31), 2**31 - 1), types_pb2.DT_UINT8: (-(2**31), 2**31 - 1),
               types_pb2.DT_INT64: (-(2**63), 2**63 - 1), types_pb2.DT_UINT32: (0, 2**32 - 1),
               types_pb2.DT_UINT64: (0, 2**64 - 1)}
# rapidjson's wording for the common parse failures (Python's json words them differently)
_PARSE_ERRORS = {"Expecting value": "Invalid value.", "Extra data": "The document root must not be followed by "
                 "other values.", "Expecting property name enclosed in double quotes": "Missing a name for object "
                 "member.", "Expecting ':' delimiter": "Missing a colon after a name of object member.",
                 "Expecting ',' delimiter": "Missing a comma or ']' after an array element.",
                 "Unterminated string starting at": "Missing a closing quotation mark in string.",
                 "Invalid control character at": "Invalid encoding in string."}


def _json_type(value: Any) -> str:
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "True" if value else "False"
    return {dict: "Object", list: "Array", str: "String"}.get(type(value), "Number")


def format_float(value: float, digits: int = 9) -> str:
    """WriteDecimal: shortest %g form that round-trips (float32: up to 9 digits), '.0' on whole numbers."""
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


def to_json_text(value: Any) -> str:
    """JSON like rapidjson writes it (compact, floats via format_float) — for messages and responses."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return format_float(value, 17)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{to_json_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(to_json_text(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def parse_body(body: bytes) -> dict:
    if not body:
        raise invalid_argument("JSON Parse error: The document is empty")
    try:
        doc = json.loads(body)
    except json.JSONDecodeError as error:
        reason = next((v for k, v in _PARSE_ERRORS.items() if error.msg.startswith(k)), error.msg)
        raise invalid_argument(f"JSON Parse error: {reason} at offset: {error.pos}") from None
    except UnicodeDecodeError as error:
        raise invalid_argument(f"JSON Parse error: Invalid encoding in string. at offset: {error.start}") from None
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
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _decode_b64(value: Any) -> bytes:
    if not is_b64(value):
        raise invalid_argument(f"JSON Value: {to_json_text(value)} not formatted correctly for base64 data")
    try:
        return base64.b64decode(value["b64"], validate=True)
    except (binascii.Error, ValueError):
        raise invalid_argument("Unable to base64 decode") from None


def _type_error(value: Any, dtype: int) -> ServingError:
    return invalid_argument(f"JSON Value: {to_json_text(value)} Type: {_json_type(value)} is not of expected type: "
                            f"{dtype_name(dtype)}")


def _leaf(value: Any, dtype: int) -> Any:
    if isinstance(value, dict):
        if dtype == types_pb2.DT_STRING:
            return _decode_b64(value)
        raise _type_error(value, dtype)
    if dtype in (types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _type_error(value, dtype)
        if dtype == types_pb2.DT_FLOAT and math.isfinite(value) and (
                abs(value) > _FLOAT_MAX_INT if isinstance(value, int) else abs(value) > _F32_MAX):
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


def _shape(value: Any) -> list[int]:
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
    shape = _shape(value)
    np_dtype = object if dtype == types_pb2.DT_STRING else tf.dtypes.as_dtype(dtype).as_numpy_dtype
    fast = _fast_array(value, shape, dtype, np_dtype)
    if fast is not None:
        return fast
    flat: list = []
    _fill(value, 0, shape, dtype, flat)  # the exact per-element checks and messages
    return np.array(flat, dtype=np_dtype).reshape(shape)


def _fast_array(value: Any, shape: list[int], dtype: int, np_dtype) -> np.ndarray | None:
    """Dense, well-typed input converted in bulk (large batches); None sends it down the checking path."""
    if not shape or 0 in shape:
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
            if (finite.size and np.abs(finite).max() > _F32_MAX) or (ints and max(map(abs, ints)) > _FLOAT_MAX_INT):
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


# -- predict requests ------------------------------------------------------------------------------------------


def _instance_item(value: Any, name: str, infos: dict, sizes: dict, shapes: dict, parts: dict) -> None:
    if name not in infos:
        raise invalid_argument(f"JSON object: does not have named input: {name}")
    array = to_array(value, infos[name].dtype)
    if name not in sizes:
        sizes[name], shapes[name] = array.size, array.shape
    elif sizes[name] != array.size:
        raise invalid_argument(f"Expecting tensor size: {sizes[name]} but got: {array.size}")
    elif shapes[name] != array.shape:
        raise invalid_argument(f"Expecting shape {_shape_text(shapes[name])} but got: {_shape_text(array.shape)}")
    parts.setdefault(name, []).append(array)


def _shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def _wrapped(error: ServingError, prefix: str) -> ServingError:
    return ServingError(error.code, f"{prefix} Error: {error.code.name}: {error.message}")


def _from_instances(instances: list, infos: dict) -> dict[str, np.ndarray]:
    def is_object(value: Any) -> bool:
        return isinstance(value, dict) and not is_b64(value)

    if not isinstance(instances[0], dict) and len(infos) > 1:
        raise invalid_argument("instances is a plain list, but expecting list of objects as multiple input tensors "
                               "required as per tensorinfo_map")
    objects = is_object(instances[0])
    fast = _fast_instances(instances, infos, objects)
    if fast is not None:
        return fast
    sizes: dict = {}
    shapes: dict = {}
    parts: dict = {}
    for i, element in enumerate(instances):
        if objects:
            if not is_object(element):
                raise invalid_argument(f"Expecting object but got list at item {i} of input list")
            for name, value in element.items():
                try:
                    _instance_item(value, name, infos, sizes, shapes, parts)
                except ServingError as error:
                    raise _wrapped(error, f"Failed to process element: {i} key: {name} of 'instances' list.") from None
            if set(element) != set(infos):
                raise invalid_argument(f"Failed to process element: {i} of 'instances' list. JSON object: "
                                       f"{to_json_text(element)} keys must be equal to: {','.join(sorted(infos))}")
        else:
            if is_object(element):
                raise invalid_argument(f"Expecting value/list but got object at item {i} of input list")
            name = sorted(infos)[0]
            try:
                _instance_item(element, name, infos, sizes, shapes, parts)
            except ServingError as error:
                raise _wrapped(error, f"Failed to process element: {i} of 'instances' list.") from None
    return {name: np.stack(arrays) for name, arrays in parts.items()}


def _fast_instances(instances: list, infos: dict, objects: bool) -> dict[str, np.ndarray] | None:
    """Whole-batch conversion when every instance is well formed (None → per-instance checks and messages)."""
    if objects:
        keys = set(infos)
        if not all(isinstance(e, dict) and e.keys() == keys for e in instances):
            return None
        columns = {name: [e[name] for e in instances] for name in infos}
    else:
        columns = {sorted(infos)[0]: instances}
    out = {}
    for name, column in columns.items():
        shape = _shape(column)
        np_dtype = object if infos[name].dtype == types_pb2.DT_STRING else \
            tf.dtypes.as_dtype(infos[name].dtype).as_numpy_dtype
        array = _fast_array(column, shape, infos[name].dtype, np_dtype)
        if array is None:
            return None
        out[name] = array
    return out


def _from_inputs(value: Any, infos: dict) -> dict[str, np.ndarray]:
    if not isinstance(value, dict) or is_b64(value):
        if len(infos) > 1:
            raise invalid_argument("inputs is a plain value/list, but expecting an object as multiple input tensors "
                                   "required as per tensorinfo_map")
        name = next(iter(infos))
        return {name: to_array(value, infos[name].dtype)}
    tensors = {}
    for name in sorted(infos):
        if name not in value:
            raise invalid_argument(f"Missing named input: {name} in 'inputs' object.")
        tensors[name] = to_array(value[name], infos[name].dtype)
    return tensors


def predict_inputs(doc: dict, infos: dict) -> tuple[dict[str, np.ndarray], str]:
    """Input arrays and the format (row/columnar) of a :predict body, given the signature's input TensorInfos."""
    if not infos:
        raise invalid_argument(f"Failed to get input map for signature: {signature_name(doc) or 'DEFAULT'}")
    if "instances" in doc:
        if "inputs" in doc:
            raise invalid_argument(f"JSON Value: {to_json_text(doc)} Not formatted correctly expecting only one of "
                                   "'inputs' or 'instances' keys to exist ")
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise invalid_argument(f"JSON Value: {to_json_text(doc)} Excepting 'instances' to be an list/array")
        if not instances:
            raise invalid_argument(f"JSON Value: {to_json_text(doc)} No values in 'instances' array")
        return _from_instances(instances, infos), ROW
    if "inputs" in doc:
        return _from_inputs(doc["inputs"], infos), COLUMNAR
    raise invalid_argument("Missing 'inputs' or 'instances' key")


# -- predict responses -----------------------------------------------------------------------------------------


def _values_json(array: np.ndarray, as_b64: bool) -> str:
    """An array as nested JSON lists (strings decoded, or {"b64": ...} for `*_bytes` outputs)."""
    return nest(_value_texts(array, as_b64), array.shape)


def _row_texts(array: np.ndarray, as_b64: bool) -> list[str]:
    """One JSON text per row (first dimension) of an array."""
    items = _value_texts(array, as_b64)
    step = int(np.prod(array.shape[1:], dtype=np.int64))
    if step == 0:
        return [nest([], array.shape[1:])] * array.shape[0]
    return [nest(items[i:i + step], array.shape[1:]) for i in range(0, len(items), step)]


def _value_texts(array: np.ndarray, as_b64: bool) -> list[str]:
    flat = array.ravel()
    if array.dtype == object or array.dtype.kind in "SU":
        def text(v) -> str:
            if isinstance(v, bytes):
                if as_b64:
                    return json.dumps({"b64": base64.b64encode(v).decode()})
                return json.dumps(v.decode("utf-8", "replace"), ensure_ascii=False)
            return json.dumps(str(v), ensure_ascii=False)

        items = [text(v) for v in flat.tolist()]
    elif array.dtype.kind == "f":
        items = float_texts(flat)
    elif array.dtype.kind == "b":
        items = ["true" if v else "false" for v in flat.tolist()]
    else:
        items = [str(v) for v in flat.tolist()]
    return items


def predict_response(outputs: dict[str, np.ndarray], fmt: str) -> str:
    """{"predictions": ...} (row) or {"outputs": ...} (columnar), as MakeJsonFromTensors writes them."""
    if not outputs:
        raise invalid_argument("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    b64 = {n: outputs[n].dtype == object and n.endswith("_bytes") for n in names}
    if fmt == COLUMNAR:
        if len(names) == 1:
            return '{"outputs": ' + _values_json(outputs[names[0]], b64[names[0]]) + "}"
        body = ", ".join(f"{json.dumps(n)}: {_values_json(outputs[n], b64[n])}" for n in names)
        return '{"outputs": {' + body + "}}"
    batch = -1
    for name in names:
        if outputs[name].ndim == 0:
            raise invalid_argument(f"Tensor name: {name} has no shape information ")
        size = outputs[name].shape[0]
        if batch >= 0 and size != batch:
            raise invalid_argument(f"Tensor name: {name} has inconsistent batch size: {size} expecting: {batch}")
        batch = size
    if len(names) == 1:
        return '{"predictions": ' + _values_json(outputs[names[0]], b64[names[0]]) + "}"
    columns = {n: _row_texts(outputs[n], b64[n]) for n in names}
    rows = ["{" + ", ".join(f"{json.dumps(n)}: {columns[n][i]}" for n in names) + "}" for i in range(batch)]
    return '{"predictions": [' + ", ".join(rows) + "]}"


# -- classify / regress ----------------------------------------------------------------------------------------


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
            raise invalid_argument(f"Feature: {name} has element with unexpected JSON type: {_json_type(value)}")
        if isinstance(value, bool):
            need("int64")
            values.append(int(value))
        elif isinstance(value, dict):
            need("bytes")
            values.append(_decode_b64(value))
        elif isinstance(value, str):
            need("bytes")
            values.append(value.encode("utf-8"))
        elif isinstance(value, float):
            need("float")
            if math.isfinite(value) and abs(value) > _F32_MAX:
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
        raise invalid_argument(f"Example must be JSON object but got JSON {_json_type(value)}")
    return tf.train.Example(features=tf.train.Features(feature={k: _feature(k, v) for k, v in value.items()}))


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
