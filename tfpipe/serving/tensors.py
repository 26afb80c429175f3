"""TensorProto ↔ numpy for the gRPC API: requests parse like TF's Tensor::FromProto; responses fill the typed
`*_val` fields (TF Serving's AsProtoField), which is what clients read as `outputs["y"].float_val`."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

from tfpipe.serving.errors import invalid_argument

# numpy kind → the TensorProto repeated field TF Serving fills
_VAL_FIELD = {
    types_pb2.DT_FLOAT: "float_val", types_pb2.DT_DOUBLE: "double_val", types_pb2.DT_INT32: "int_val",
    types_pb2.DT_INT16: "int_val", types_pb2.DT_INT8: "int_val", types_pb2.DT_UINT8: "int_val",
    types_pb2.DT_UINT16: "int_val", types_pb2.DT_INT64: "int64_val", types_pb2.DT_BOOL: "bool_val",
    types_pb2.DT_UINT32: "uint32_val", types_pb2.DT_UINT64: "uint64_val",
}


def dtype_name(dtype: int) -> str:
    """TF's DataTypeString: DT_FLOAT → "float" (used in TF Serving's messages)."""
    try:
        name = tf.dtypes.as_dtype(dtype).name
        return {"float32": "float", "float64": "double", "float16": "half"}.get(name, name)
    except TypeError:
        return types_pb2.DataType.Name(dtype) if dtype in types_pb2.DataType.values() else str(dtype)


def to_ndarray(proto: tensor_pb2.TensorProto, alias: str) -> np.ndarray:
    """Parses a request tensor; one that does not describe a valid tensor is "tensor parsing error: ALIAS"."""
    try:
        if proto.dtype == types_pb2.DT_INVALID or proto.tensor_shape.unknown_rank:
            raise ValueError("no dtype or unknown rank")
        if any(d.size < 0 for d in proto.tensor_shape.dim):
            raise ValueError("negative dimension")
        n = int(np.prod([d.size for d in proto.tensor_shape.dim], dtype=np.int64))
        field = _VAL_FIELD.get(proto.dtype, "string_val" if proto.dtype == types_pb2.DT_STRING else None)
        if field and not proto.tensor_content and len(getattr(proto, field)) > n:
            raise ValueError("more values than the shape holds")
        return tf.make_ndarray(proto)
    except Exception:  # noqa: BLE001 - any malformed proto is the client's error
        raise invalid_argument(f"tensor parsing error: {alias}") from None


def to_proto(array: np.ndarray) -> tensor_pb2.TensorProto:
    """A response tensor with typed value fields (strings as bytes).

    Examples:
    >>> proto = to_proto(np.array([[1.5], [2.0]], np.float32))
    >>> list(proto.float_val), [d.size for d in proto.tensor_shape.dim]
    ([1.5, 2.0], [2, 1])
    """
    array = np.asarray(array)
    if array.dtype.kind in "OSU":
        proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING)
        proto.string_val.extend(v if isinstance(v, bytes) else str(v).encode() for v in array.ravel())
    else:
        dtype = tf.dtypes.as_dtype(array.dtype).as_datatype_enum
        proto = tensor_pb2.TensorProto(dtype=dtype)
        field = _VAL_FIELD.get(dtype)
        if field is not None:
            getattr(proto, field).extend(array.ravel().tolist())
        elif dtype == types_pb2.DT_HALF:
            proto.half_val.extend(array.ravel().view(np.uint16).tolist())
        else:  # rarer types (bfloat16, complex) go as raw bytes, which every client parses too
            proto = tf.make_tensor_proto(array)
            return proto
    proto.tensor_shape.CopyFrom(shape_proto(array.shape))
    return proto


def shape_proto(shape: tuple[int, ...]) -> tensor_shape_pb2.TensorShapeProto:
    return tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=int(d)) for d in shape])


def shape_string(shape: tuple[int, ...]) -> str:
    """TF's TensorShape::DebugString: [3,1]."""
    return "[" + ",".join(str(int(d)) for d in shape) + "]"
