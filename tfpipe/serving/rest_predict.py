"""REST :predict bodies (row `instances` / columnar `inputs`) → input arrays, and outputs → `predictions` /
`outputs` JSON, following TF Serving's json_tensor.cc (messages included)."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2

from tfpipe.serving.errors import ServingError, invalid_argument
from tfpipe.serving.rest_json import (
    dense_shape,
    fast_array,
    float_texts,
    is_b64,
    nest,
    signature_name,
    to_array,
    to_json_text,
)

ROW, COLUMNAR = "row", "columnar"


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
        shape = dense_shape(column)
        np_dtype = object if infos[name].dtype == types_pb2.DT_STRING else \
            tf.dtypes.as_dtype(infos[name].dtype).as_numpy_dtype
        array = fast_array(column, shape, infos[name].dtype, np_dtype)
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
