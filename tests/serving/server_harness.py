"""Shared helpers for the server tests: TF Serving's test models (from ../shared), free ports, in-process servers,
gRPC stubs, tf.Example requests and a tiny slow SavedModel (for timeouts and draining)."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import grpc
import tensorflow as tf
from tensorflow.python.data.experimental.ops import testing as data_testing
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc
from tensorflow_serving.config import model_server_config_pb2

from tests.conftest import shared_path
from tfpipe.serving.flags import ServerOptions
from tfpipe.serving.server import ModelServer

HALF_PLUS_TWO = "saved_model_half_plus_two_cpu"
HALF_PLUS_TWO_TF2 = "saved_model_half_plus_two_tf2_cpu"
HALF_PLUS_THREE = "saved_model_half_plus_three"
TWO_VERSIONS = "saved_model_half_plus_two_2_versions"


def tfs_testdata(*parts: str) -> Path:
    """TF Serving's test models and files (skips when ../shared is absent)."""
    return shared_path("tf-serving-testdata", *parts)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(**options) -> ModelServer:
    """An in-process server on 127.0.0.1: gRPC on a free port, REST on another unless rest_api_port=0."""
    options.setdefault("port", 0)
    options.setdefault("rest_api_port", free_port())
    options.setdefault("file_system_poll_wait_seconds", 0)
    return ModelServer(ServerOptions(**options)).start()


def stubs(server: ModelServer | int, **channel_options):
    """(PredictionServiceStub, ModelServiceStub, channel) for a running server (or a gRPC port on 127.0.0.1)."""
    port = server if isinstance(server, int) else server.grpc_port
    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=list(channel_options.items()))
    return (prediction_service_pb2_grpc.PredictionServiceStub(channel),
            model_service_pb2_grpc.ModelServiceStub(channel), channel)


def rest_url(server: ModelServer, path: str = "") -> str:
    return f"http://127.0.0.1:{server.rest_port}{path}"


def example(**features: float | bytes) -> tf.train.Example:
    """A tf.Example with float (or bytes) features."""
    feature = {}
    for name, value in features.items():
        if isinstance(value, bytes):
            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
        else:
            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
    return tf.train.Example(features=tf.train.Features(feature=feature))


def copy_versions(model: str, dest: Path, versions: dict[str, int] | None = None) -> Path:
    """Copies a test model's version folders to `dest` (renumbered by `versions`: folder name → new number)."""
    source = tfs_testdata(model)
    dest.mkdir(parents=True, exist_ok=True)
    for folder in sorted(p for p in source.iterdir() if p.is_dir()):
        number = (versions or {}).get(folder.name, int(folder.name))
        shutil.copytree(folder, dest / str(number))
    return dest


def config_of(*models: tuple[str, Path], **policy) -> model_server_config_pb2.ModelServerConfig:
    config = model_server_config_pb2.ModelServerConfig()
    for name, path in models:
        entry = config.model_config_list.config.add(name=name, base_path=str(path), model_platform="tensorflow")
        for key, value in policy.items():
            getattr(entry, key).CopyFrom(value) if hasattr(value, "DESCRIPTOR") else getattr(entry, key).update(value)
    return config


def write_slow_model(base: Path, version: int = 1) -> Path:
    """A TF2 SavedModel whose `serving_default` sleeps `ms` milliseconds (int64 [batch]) and returns them as `y`.

    The sleep is tf.data's SleepDataset inside the graph, so it needs no Python at serving time; concurrent calls
    of it run one after another, so tests check other models while one sleeps.
    """

    class Slow(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="ms")])
        def serve(self, ms):
            delay = tf.reduce_max(ms) * 500  # SleepDataset sleeps on both GetNext calls of the reduce
            slept = tf.data.Dataset.range(1).apply(data_testing.sleep(delay)).reduce(
                tf.constant(0, tf.int64), lambda acc, x: acc + x)
            return {"y": ms + slept}

    module = Slow()
    path = base / str(version)
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path


def write_config(path: Path, text_proto: str) -> Path:
    path.write_text(text_proto, encoding="utf-8")
    return path


def multi_model_config(tmp: Path) -> Path:
    """default = TF1 half_plus_two, tf2 = TF2 half_plus_two, two = both versions of half_plus_two_2_versions
    (policy all, labels stable→123 and canary→124), slow = write_slow_model, counter = TF Serving's counter."""
    slow = tmp / "slow"
    write_slow_model(slow)
    return write_config(tmp / "models.config", f"""
model_config_list {{
  config {{ name: "default" base_path: "{tfs_testdata(HALF_PLUS_TWO)}" model_platform: "tensorflow" }}
  config {{ name: "tf2" base_path: "{tfs_testdata(HALF_PLUS_TWO_TF2)}" model_platform: "tensorflow" }}
  config {{
    name: "two" base_path: "{tfs_testdata(TWO_VERSIONS)}" model_platform: "tensorflow"
    model_version_policy {{ all {{}} }}
    version_labels {{ key: "stable" value: 123 }}
    version_labels {{ key: "canary" value: 124 }}
  }}
  config {{ name: "slow" base_path: "{slow}" model_platform: "tensorflow" }}
  config {{ name: "counter" base_path: "{tfs_testdata("saved_model_counter")}" model_platform: "tensorflow" }}
}}
""")
