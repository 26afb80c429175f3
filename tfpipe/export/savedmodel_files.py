"""Edits and extras around a written SavedModel: TF Serving method names, the fingerprint, warm-up records, and a
`saved_model_cli show`-style signature summary."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from tfpipe.export.layout import WARMUP_PATH


def read_saved_model(export_dir: str | Path) -> saved_model_pb2.SavedModel:
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((Path(export_dir) / "saved_model.pb").read_bytes())
    return proto


def set_method_names(export_dir: str | Path, methods: Mapping[str, str]) -> None:
    """Writes TF Serving method names into `saved_model.pb` (`tf.saved_model.save` always writes `.../predict`).

    The fingerprint is recomputed afterwards, since it holds a checksum of `saved_model.pb`.
    """
    export_dir = Path(export_dir)
    proto = read_saved_model(export_dir)
    for meta_graph in proto.meta_graphs:
        for name, method in methods.items():
            if name not in meta_graph.signature_def:
                raise ValueError(f"{export_dir}: signature {name!r} missing from saved_model.pb")
            meta_graph.signature_def[name].method_name = method
    (export_dir / "saved_model.pb").write_bytes(proto.SerializeToString(deterministic=True))
    _write_fingerprint(export_dir)


def _write_fingerprint(export_dir: Path) -> None:
    from tensorflow.python.saved_model.pywrap_saved_model import fingerprinting

    if (export_dir / "fingerprint.pb").exists():
        (export_dir / "fingerprint.pb").write_bytes(fingerprinting.CreateFingerprintDef(str(export_dir)))


def write_warmup_requests(export_dir: str | Path, model_name: str, requests: Sequence[Mapping[str, list]]) -> Path:
    """TF Serving's warm-up file: one PredictionLog (a `serving_default` PredictRequest) per batch of inputs."""
    path = Path(export_dir) / WARMUP_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for inputs in requests:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name="serving_default"))
            for key, values in inputs.items():
                request.inputs[key].CopyFrom(tf.make_tensor_proto(values))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return path


def _shape(info) -> str:
    if info.tensor_shape.unknown_rank:
        return "unknown_rank"
    dims = [str(d.size) for d in info.tensor_shape.dim]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def signature_summary(export_dir: str | Path) -> str:
    """The signatures of a SavedModel, laid out as `saved_model_cli show --dir D --tag_set serve --all` does."""
    lines = ["MetaGraphDef with tag-set: 'serve' contains the following SignatureDefs:", ""]
    meta_graph = read_saved_model(export_dir).meta_graphs[0]
    for key in sorted(meta_graph.signature_def):
        signature = meta_graph.signature_def[key]
        lines.append(f"signature_def['{key}']:")
        for kind, tensors in (("input", signature.inputs), ("output", signature.outputs)):
            lines.append(f"  The given SavedModel SignatureDef contains the following {kind}(s):")
            for name in sorted(tensors):
                info = tensors[name]
                lines += [f"    {kind}s['{name}'] tensor_info:",
                          f"        dtype: {types_pb2.DataType.Name(info.dtype)}",
                          f"        shape: {_shape(info)}", f"        name: {info.name}"]
        lines += [f"  Method name is: {signature.method_name}", ""]
    return "\n".join(lines)
