"""Runs a converted encoder behind an export's own signature functions: the raw text is tokenized by the export's
tokenizer ops, the ids go to ONNX Runtime or OpenVINO, and the head's outputs are built as the SavedModel builds
them. The conversion check and `tfpipe serve --backend` both run exactly this code (no Keras here)."""

from __future__ import annotations

import inspect
import json
import queue
from pathlib import Path
from typing import Any, Callable

import numpy as np
import tensorflow as tf

from tfpipe.export.convert.errors import require
from tfpipe.export.convert.manifest import read_manifest
from tfpipe.export.layout import METADATA_PATH
from tfpipe.export.signatures import SignatureFunctions
from tfpipe.text.tokenizer import MODEL_INPUTS, WordPieceTokenizer

Encoder = Callable[[dict[str, np.ndarray]], np.ndarray]


class OnnxRuntimeEncoder:
    """An ONNX encoder in an onnxruntime CPU session (`session.run` is thread-safe and releases the GIL).

    Args:
        path: the .onnx file.
        threads: intra-op threads (0: onnxruntime's default, one per core).
    """

    def __init__(self, path: str | Path, threads: int = 0) -> None:
        ort = require("onnxruntime", "running an ONNX model", "onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_name = self.session.get_outputs()[0].name

    def __call__(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run([self.output_name], {name: feeds[name] for name in self.input_names})[0]


class OpenVinoEncoder:
    """An OpenVINO IR compiled for the CPU; concurrent calls use separate infer requests (one is not thread-safe).

    Args:
        path: the model.xml (its weights in model.bin beside it).
        inference_precision: `f32` or `bf16` (OpenVINO's INFERENCE_PRECISION_HINT).
        requests: how many calls may run at once.
    """

    def __init__(self, path: str | Path, inference_precision: str = "f32", requests: int = 4) -> None:
        ov = require("openvino", "running an OpenVINO model", "openvino")
        self.core = ov.Core()  # kept: a compiled model outliving its Core crashes when called from other threads
        self.compiled = self.core.compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": inference_precision})
        self.input_names = [port.get_any_name() for port in self.compiled.inputs]
        # Infer requests are made here, up front: one created inside a TF graph's numpy_function (a TF-owned
        # thread) crashes the process. Each call borrows one; more concurrent callers than requests wait.
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        for _ in range(requests):
            self._requests.put(self.compiled.create_infer_request())

    def __call__(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        request = self._requests.get()
        try:
            request.infer({name: feeds[name] for name in self.input_names})
            return request.get_output_tensor(0).data.copy()
        finally:
            self._requests.put(request)


def load_encoder(folder: str | Path, manifest: dict[str, Any] | None = None) -> Encoder:
    """The encoder a conversion folder holds, ready to call on `{input name: int32 [batch, seq]}`."""
    folder = Path(folder)
    manifest = manifest or read_manifest(folder)
    model = folder / manifest["model_file"]
    if manifest["runtime"] == "onnxruntime":
        return OnnxRuntimeEncoder(model)
    if manifest["runtime"] == "openvino":
        return OpenVinoEncoder(model, manifest.get("inference_precision", "f32"))
    raise ValueError(f"{folder}: runtime {manifest['runtime']!r} cannot run on this machine's CPU")


def read_export_metadata(export_dir: str | Path) -> dict[str, Any]:
    path = Path(export_dir) / METADATA_PATH
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; is {export_dir} a version folder written by `tfpipe export`?")
    return json.loads(path.read_text(encoding="utf-8"))


def export_tokenizer(export_dir: str | Path, metadata: dict[str, Any]) -> WordPieceTokenizer:
    """The export's tokenizer, rebuilt from its vocabulary asset; refuses a vocabulary that is not the trained one."""
    lowercase = metadata.get("config", {}).get("tokenizer", {}).get("lowercase", True)
    tokenizer = WordPieceTokenizer(Path(export_dir) / "assets" / "vocab.txt", lowercase)
    if metadata.get("vocabulary_sha256") not in (None, tokenizer.hash):
        raise ValueError(f"{export_dir}/assets/vocab.txt: its hash differs from the one the export recorded")
    return tokenizer


def export_functions(export_dir: str | Path, logits_fn: Callable[[dict], tf.Tensor]) -> SignatureFunctions:
    """The export's signature functions (its tokenizer, task, labels, lengths) over another `logits_fn`."""
    metadata = read_export_metadata(export_dir)
    return SignatureFunctions(logits_fn, export_tokenizer(export_dir, metadata), metadata["task"],
                              metadata.get("labels"), int(metadata["max_seq_length"]),
                              bool(metadata.get("text_pair")))


def graph_logits(encoder: Encoder, output_shape: list[int]) -> Callable[[dict], tf.Tensor]:
    """`encoder` as a function of model-input tensors, callable inside a `tf.function`; `output_shape` is the
    encoder's (-1 for batch and sequence dimensions)."""
    def run(*arrays: np.ndarray) -> np.ndarray:
        if arrays[0].size == 0:  # e.g. a tagging batch of empty texts has no windows: [0, 0] ids, which OpenVINO
            # rejects; the answer is known without running anything.
            dims = [arrays[0].shape[i] if d == -1 else d for i, d in enumerate(output_shape)]
            return np.zeros(dims, np.float32)
        return np.asarray(encoder(dict(zip(MODEL_INPUTS, arrays))), dtype=np.float32)

    def logits(features: dict) -> tf.Tensor:
        out = tf.numpy_function(run, [tf.cast(features[n], tf.int32) for n in MODEL_INPUTS], tf.float32)
        out.set_shape([None] * len(output_shape))
        return out

    return logits


def _by_alias(fn: Callable, names: list[str]) -> Callable:
    """`fn` (positional inputs) taking keyword-only inputs named `names`, as a SavedModel's signatures do (inputs
    by alias, in `structured_input_signature[1]`). The parameters are declared, not `**inputs`: a concrete function
    binds keyword calls to declared parameters only, and on a failed bind falls back to its flat signature after
    formatting the inputs into an error message (a millisecond a call)."""
    def by_alias(**inputs):
        return fn(*[inputs[n] for n in names])

    by_alias.__signature__ = inspect.Signature(
        [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY) for n in names])
    return by_alias


class ConvertedModel:
    """An export's signatures with a converted encoder in the middle.

    Args:
        export_dir: the version folder (SavedModel, assets/, assets.extra/tfpipe_metadata.json).
        folder: the conversion folder inside it (model file + manifest.json).
        encoder: an already loaded encoder (default: the one `folder` holds).

    Attributes:
        functions: the export's `SignatureFunctions` over the converted encoder.
        signatures: signature name → concrete function taking and returning what the SavedModel's signature does
            (keyword arguments by alias).
    """

    def __init__(self, export_dir: str | Path, folder: str | Path, encoder: Encoder | None = None) -> None:
        self.folder = Path(folder)
        self.manifest = read_manifest(folder)
        self.encoder = encoder or load_encoder(folder, self.manifest)
        self.functions = export_functions(export_dir, graph_logits(self.encoder, self.manifest["outputs"][0]["shape"]))
        self.signatures: dict[str, Any] = {}
        for name, (fn, specs, _) in self.functions.endpoints().items():
            self.signatures[name] = tf.function(_by_alias(fn, [s.name for s in specs])).get_concrete_function(
                **{s.name: s for s in specs})
