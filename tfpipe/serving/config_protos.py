"""TF Serving config protos missing from the tensorflow-serving-api wheel, built at import time; a text-proto reader.

MonitoringConfig, SSLConfig and BatchingParameters keep TF Serving's package (`tensorflow.serving`), names, numbers
and types, so text protos written for `tensorflow_model_server` parse here unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from google.protobuf import descriptor_pb2, descriptor_pool, message, text_format, wrappers_pb2
from google.protobuf.message_factory import GetMessageClass

_F = descriptor_pb2.FieldDescriptorProto
_PACKAGE = "tensorflow.serving"

# (name, number, type, label, type_name) per field, as in TF Serving's .proto sources:
#   tensorflow_serving/config/monitoring_config.proto, tensorflow_serving/config/ssl_config.proto,
#   tensorflow_serving/servables/tensorflow/session_bundle_config.proto (BatchingParameters; wrapper types mark
#   "unset → scheduler default").
_OPT, _REP = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
_MESSAGES: dict[str, tuple[str, list[tuple[str, int, int, int, str]]]] = {
    "PrometheusConfig": ("tensorflow_serving/config/monitoring_config.proto", [
        ("enable", 1, _F.TYPE_BOOL, _OPT, ""),
        ("path", 2, _F.TYPE_STRING, _OPT, ""),
    ]),
    "MonitoringConfig": ("tensorflow_serving/config/monitoring_config.proto", [
        ("prometheus_config", 1, _F.TYPE_MESSAGE, _OPT, ".tensorflow.serving.PrometheusConfig"),
    ]),
    "SSLConfig": ("tensorflow_serving/config/ssl_config.proto", [
        ("server_key", 1, _F.TYPE_STRING, _OPT, ""),
        ("server_cert", 2, _F.TYPE_STRING, _OPT, ""),
        ("custom_ca", 3, _F.TYPE_STRING, _OPT, ""),
        ("client_verify", 4, _F.TYPE_BOOL, _OPT, ""),
    ]),
    "BatchingParameters": ("tensorflow_serving/servables/tensorflow/session_bundle_config.proto", [
        ("max_batch_size", 1, _F.TYPE_MESSAGE, _OPT, ".google.protobuf.Int64Value"),
        ("batch_timeout_micros", 2, _F.TYPE_MESSAGE, _OPT, ".google.protobuf.Int64Value"),
        ("max_enqueued_batches", 3, _F.TYPE_MESSAGE, _OPT, ".google.protobuf.Int64Value"),
        ("num_batch_threads", 4, _F.TYPE_MESSAGE, _OPT, ".google.protobuf.Int64Value"),
        ("thread_pool_name", 5, _F.TYPE_MESSAGE, _OPT, ".google.protobuf.StringValue"),
        ("allowed_batch_sizes", 6, _F.TYPE_INT64, _REP, ""),
        ("pad_variable_length_inputs", 7, _F.TYPE_BOOL, _OPT, ""),
        ("enable_large_batch_splitting", 8, _F.TYPE_MESSAGE, _OPT, ".google.protobuf.BoolValue"),
        ("max_execution_batch_size", 9, _F.TYPE_MESSAGE, _OPT, ".google.protobuf.Int64Value"),
    ]),
}


def _build() -> dict[str, type[message.Message]]:
    pool = descriptor_pool.Default()
    # Register the wrappers file in the default pool before files that depend on it.
    pool.FindFileByName(wrappers_pb2.DESCRIPTOR.name)
    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    for name, (file_name, fields) in _MESSAGES.items():
        proto = files.get(file_name)
        if proto is None:
            proto = files[file_name] = descriptor_pb2.FileDescriptorProto(
                name=file_name, package=_PACKAGE, syntax="proto3")
        msg = proto.message_type.add(name=name)
        for field_name, number, ftype, label, type_name in fields:
            field = msg.field.add(name=field_name, number=number, type=ftype, label=label)
            if type_name:
                field.type_name = type_name
                if type_name.startswith(".google.protobuf."):
                    if wrappers_pb2.DESCRIPTOR.name not in proto.dependency:
                        proto.dependency.append(wrappers_pb2.DESCRIPTOR.name)
    classes = {}
    for file_name, proto in files.items():
        try:
            file_desc = pool.FindFileByName(file_name)  # already built (module reloaded, or another copy)
        except KeyError:
            file_desc = pool.Add(proto)
        for name in file_desc.message_types_by_name:
            classes[name] = GetMessageClass(file_desc.message_types_by_name[name])
    return classes


_CLASSES = _build()
PrometheusConfig = _CLASSES["PrometheusConfig"]
MonitoringConfig = _CLASSES["MonitoringConfig"]
SSLConfig = _CLASSES["SSLConfig"]
BatchingParameters = _CLASSES["BatchingParameters"]

M = TypeVar("M", bound=message.Message)


def parse_text_proto(path: str | Path, message_class: type[M]) -> M:
    """Read a text-format proto file (as `tensorflow_model_server` does for its *_file flags).

    Raises ValueError naming the file and the parser's reason when the file is missing, unreadable or malformed.

    Examples:
    >>> import tempfile, os
    >>> with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
    ...     _ = f.write('prometheus_config { enable: true path: "/metrics" }')
    >>> parse_text_proto(f.name, MonitoringConfig).prometheus_config.path
    '/metrics'
    >>> os.unlink(f.name)
    """
    path = Path(path)
    kind = message_class.DESCRIPTOR.full_name
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read {kind} text proto {path}: {error}") from error
    try:
        return text_format.Parse(text, message_class())
    except text_format.ParseError as error:
        raise ValueError(f"{path} is not a valid {kind} text proto: {error}") from error
