"""One loaded SavedModel version: its SignatureDefs (read from saved_model.pb) and a way to run a signature.

TF1 graphs run with session semantics (a fed tensor need only match the dtype, as in TF Serving's C++); TF2 object
graphs run their restored signature functions with the declared input shapes enforced.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2, meta_graph_pb2, saved_model_pb2

from tfpipe.serving.errors import ServingError, hidden, invalid_argument, reveals_internals
from tfpipe.serving.tensors import dtype_name

log = logging.getLogger(__name__)

# TF status codes are the gRPC codes' numbers.
_GRPC_CODES = {code.value[0]: code for code in grpc.StatusCode}
# Codes whose TF message describes the request (shapes, values, limits), so the client sees it as TF Serving sends
# it; the others (NOT_FOUND from a file op, UNKNOWN, INTERNAL, ...) describe the server and are logged instead.
_REQUEST_CODES = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.RESOURCE_EXHAUSTED,
                  grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED}
INIT_OP_SIGNATURE = "__saved_model_init_op"

try:  # the tensorflow-text op library, which TF Serving links, so exported tokenizers run here too
    import tensorflow_text  # noqa: F401
except ImportError:  # pragma: no cover - optional
    pass


def tf_error(error: tf.errors.OpError) -> ServingError:
    """The ServingError for a TensorFlow runtime error: its code, and its message when that is about the request
    (not a server path or traceback; those go to the log under a request id)."""
    code = _GRPC_CODES.get(error.error_code, grpc.StatusCode.UNKNOWN)
    if code in _REQUEST_CODES and not reveals_internals(error.message):
        return ServingError(code, error.message)
    return hidden(code, "The model failed to run", error.message)


def read_meta_graph(path: str | Path, tags: tuple[str, ...] = ("serve",)) -> meta_graph_pb2.MetaGraphDef:
    """The MetaGraphDef tagged `tags` in `path`/saved_model.pb (signature defs without loading any weights)."""
    pb = Path(path) / "saved_model.pb"
    if not pb.is_file():
        raise FileNotFoundError(f"{pb} does not exist: not a SavedModel directory")
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString(pb.read_bytes())
    for meta_graph in saved.meta_graphs:
        if set(meta_graph.meta_info_def.tags) == set(tags):
            return meta_graph
    found = [sorted(m.meta_info_def.tags) for m in saved.meta_graphs]
    raise ValueError(f"{pb} has no MetaGraphDef tagged {sorted(tags)} (found {found})")


class Servable:
    """A SavedModel version ready to run.

    Args:
        path: the version directory (holding saved_model.pb).
        name: the model name it serves under.
        version: its version number.
        session_config: thread settings for TF1 sessions (`--tensorflow_*_parallelism`).
        batcher_factory: optional `run_fn -> Batcher`; when given, every run goes through a batcher per
            (signature, inputs, outputs), which is what `--enable_batching` plugs in.

    Examples:
    >>> path = "../shared/tf-serving-testdata/saved_model_half_plus_two_cpu/00000123"
    >>> servable = Servable(path, "default", 123)  # doctest: +SKIP
    >>> servable.run("serving_default", {"x": np.array([1.0], np.float32)}, ["y"])["y"]  # doctest: +SKIP
    array([2.5], dtype=float32)
    """

    def __init__(self, path: str | Path, name: str, version: int, *, tags: tuple[str, ...] = ("serve",),
                 session_config: config_pb2.ConfigProto | None = None,
                 batcher_factory: Callable[[Callable], Any] | None = None) -> None:
        self.path = Path(path)
        self.name = name
        self.version = version
        self.meta_graph = read_meta_graph(self.path, tags)
        self.signatures = {k: v for k, v in self.meta_graph.signature_def.items() if k != INIT_OP_SIGNATURE}
        self.is_tf2 = len(self.meta_graph.object_graph_def.nodes) > 0
        self.warmup_records = 0
        self.method_name_check = False  # --enable_signature_method_name_check
        self.calls = 0  # model executions (fewer than requests when batching)
        self._lock = threading.Lock()
        self._batcher_factory = batcher_factory
        self._batchers: dict[tuple, Any] = {}
        self._callables: dict[tuple, Callable] = {}
        self.backend = "tensorflow"
        if self.is_tf2:
            self._loaded, self._functions = self._load_functions(tags)
        else:
            self._graph = tf.Graph()
            self._session = tf.compat.v1.Session(graph=self._graph, config=session_config)
            with self._graph.as_default():
                tf.compat.v1.saved_model.loader.load(self._session, list(tags), str(self.path))

    def _load_functions(self, tags: tuple[str, ...]) -> tuple[Any, dict[str, Callable]]:
        """The loaded TF2 object graph and its signature functions (keyword inputs by alias, dict outputs)."""
        loaded = tf.saved_model.load(str(self.path), tags=list(tags))
        return loaded, dict(loaded.signatures)

    # -- running ---------------------------------------------------------------------------------------------

    def run(self, signature_name: str, inputs: dict[str, np.ndarray], outputs: list[str]) -> dict[str, np.ndarray]:
        """Runs one signature on input arrays keyed by alias; returns the requested output aliases."""
        if self._batcher_factory is None:
            return self._run_direct(signature_name, outputs, inputs)
        key = (signature_name, tuple(sorted(inputs)), tuple(outputs))
        with self._lock:
            batcher = self._batchers.get(key)
            if batcher is None:
                batcher = self._batchers[key] = self._batcher_factory(
                    lambda batch, s=signature_name, o=tuple(outputs): self._run_direct(s, list(o), batch))
        return batcher.submit(inputs)

    def _run_direct(self, signature_name: str, outputs: list[str], inputs: dict[str, np.ndarray]):
        self.calls += 1
        try:
            if self.is_tf2:
                return self._run_function(signature_name, inputs, outputs)
            return self._run_session(signature_name, inputs, outputs)
        except tf.errors.OpError as error:
            raise tf_error(error) from None

    def _run_session(self, signature_name: str, inputs: dict[str, np.ndarray], outputs: list[str]):
        signature = self.signatures[signature_name]
        aliases = sorted(inputs)
        key = (signature_name, tuple(aliases), tuple(outputs))
        runner = self._callables.get(key)
        if runner is None:
            options = config_pb2.CallableOptions(feed=[signature.inputs[a].name for a in aliases],
                                                 fetch=[signature.outputs[a].name for a in outputs])
            # The callable bypasses Session.run's Python-side static-shape check, as TF Serving's C++ does.
            runner = self._session._make_callable_from_options(options)
            self._callables[key] = runner
        values = runner(*[inputs[a] for a in aliases])
        return dict(zip(outputs, values))

    def _run_function(self, signature_name: str, inputs: dict[str, np.ndarray], outputs: list[str]):
        function = self._functions[signature_name]
        specs = function.structured_input_signature[1]
        feeds = {}
        for alias, value in inputs.items():
            spec = specs.get(alias)
            if spec is None:
                raise invalid_argument(f"input tensor alias not found in signature: {alias}. Inputs expected to be "
                                       f"in the set {{{','.join(sorted(specs))}}}.")
            if value.dtype != spec.dtype.as_numpy_dtype and not (spec.dtype == tf.string and value.dtype == object):
                given = "string" if value.dtype == object else dtype_name(tf.as_dtype(value.dtype).as_datatype_enum)
                raise invalid_argument(f"Expects arg {alias} to be {dtype_name(spec.dtype.as_datatype_enum)} but "
                                       f"{given} is provided")
            if not spec.shape.is_compatible_with(value.shape):
                raise invalid_argument(f"The shape of input {alias} {list(value.shape)} is incompatible with the "
                                       f"signature's declared shape {spec.shape.as_list()}")
            feeds[alias] = tf.constant(value, dtype=spec.dtype)
        result = function(**feeds)
        return {alias: result[alias].numpy() for alias in outputs}

    def close(self) -> None:
        """Releases the session/function graph and any batchers."""
        for batcher in self._batchers.values():
            batcher.close()
        self._batchers.clear()
        self._callables.clear()
        if self.is_tf2:
            self._functions = {}
            self._loaded = None
        else:
            self._session.close()

    def __repr__(self) -> str:
        return f"Servable({self.name!r}, {self.version}, {'TF2' if self.is_tf2 else 'TF1'}, {self.backend})"
