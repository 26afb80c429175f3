"""Builds a TensorRT engine (a serialized plan) from the encoder's ONNX file with the TensorRT ≥ 10 Python API,
for token ids shaped [batch, seq] within one optimization profile; fp32, fp16, or int8 from a Q/DQ ONNX.

Everything a user can get wrong (shapes, precision, a missing file, int8 without Q/DQ nodes) is checked before
TensorRT is imported, so those errors read the same on every machine; a machine without the `tensorrt` package
or without a CUDA device gets `ConversionUnavailable` with one line naming what is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tfpipe.config.atomic import atomic_file
from tfpipe.export.convert.errors import ConversionUnavailable, require

PRECISIONS = ("fp32", "fp16", "int8")
DEFAULT_MIN_SHAPE, DEFAULT_OPT_SHAPE, DEFAULT_MAX_SHAPE = "1x8", "8x128", "32x128"
QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})
PURPOSE = "a TensorRT engine build"


def parse_shape(text: str, flag: str) -> tuple[int, int]:
    """`BATCHxSEQ` (e.g. `8x128`) as two positive ints; a ValueError names the flag otherwise."""
    parts = str(text).strip().lower().split("x")
    try:
        batch, seq = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"{flag}: {text!r} is not BATCHxSEQ (two positive integers, e.g. 8x128)") from None
    if batch < 1 or seq < 1:
        raise ValueError(f"{flag}: {text!r} must have a positive batch size and sequence length")
    return batch, seq


def _shapes(min_shape: str, opt_shape: str, max_shape: str) -> tuple[tuple[int, int], ...]:
    shapes = (parse_shape(min_shape, "--min-shape"), parse_shape(opt_shape, "--opt-shape"),
              parse_shape(max_shape, "--max-shape"))
    low, opt, high = shapes
    if not all(a <= b <= c for a, b, c in zip(low, opt, high)):
        raise ValueError(f"--min-shape {min_shape} ≤ --opt-shape {opt_shape} ≤ --max-shape {max_shape} must hold "
                         "for the batch size and for the sequence length")
    return shapes


def _onnx_inputs(onnx_path: Path, precision: str) -> list[str]:
    """The graph's input names (each must be [batch, seq]); for int8 also proof of Q/DQ nodes."""
    onnx = require("onnx", PURPOSE, "onnx")
    try:
        # External weights are not needed to read the graph, and TensorRT's parser loads them itself.
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as error:  # onnx raises DecodeError, OSError, ... for a file that is not a model
        raise ValueError(f"{onnx_path}: not a readable ONNX model ({type(error).__name__}: {error})") from None
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if not inputs:
        raise ValueError(f"{onnx_path}: the ONNX graph has no inputs")
    for tensor in inputs:
        rank = len(tensor.type.tensor_type.shape.dim)
        if rank != 2:
            raise ValueError(f"{onnx_path}: input {tensor.name!r} has rank {rank}; the encoder's inputs are "
                             "token ids shaped [batch, seq]")
    if precision == "int8":
        ops = {n.op_type for n in model.graph.node} | {n.op_type for f in model.functions for n in f.node}
        if not ops & QDQ_OPS:
            raise ValueError(f"{onnx_path}: --precision int8 needs an ONNX model with QuantizeLinear/"
                             "DequantizeLinear nodes (implicit calibration is deprecated in TensorRT 10); produce "
                             "a Q/DQ model first, e.g. with NVIDIA ModelOpt, and build from that")
    return [tensor.name for tensor in inputs]


def _builder(trt: Any, logger: Any) -> Any:
    """A `trt.Builder`, or `ConversionUnavailable` when no CUDA device answers."""
    try:
        builder = trt.Builder(logger)
    except (TypeError, RuntimeError, OSError) as error:  # pybind11 raises TypeError when the factory gives null
        detail = f"{type(error).__name__}: {error}".replace("\n", " ")
    else:
        if builder is not None:
            return builder
        detail = "trt.Builder returned None"
    raise ConversionUnavailable(f"no NVIDIA GPU with a CUDA driver is visible ({detail}); TensorRT engines can "
                                "only be built on one")


def _write_plan(plan: Any, output_path: Path) -> int:
    """Writes the plan whole or not at all: a temporary file beside it, renamed into place."""
    with atomic_file(output_path, "wb") as handle:
        handle.write(memoryview(plan))
    return output_path.stat().st_size


def build_engine(onnx_path: str | Path, output_path: str | Path, precision: str = "fp32",
                 min_shape: str = DEFAULT_MIN_SHAPE, opt_shape: str = DEFAULT_OPT_SHAPE,
                 max_shape: str = DEFAULT_MAX_SHAPE, workspace_gib: float = 4.0) -> dict[str, Any]:
    """Builds `output_path` (a TensorRT plan) from `onnx_path`; returns what was built, for the manifest."""
    if precision not in PRECISIONS:
        raise ValueError(f"--precision: {precision!r} is not one of {', '.join(PRECISIONS)} for TensorRT")
    shapes = _shapes(min_shape, opt_shape, max_shape)
    if not workspace_gib > 0:
        raise ValueError(f"--workspace-gib: {workspace_gib} must be a positive number of GiB")
    onnx_path, output_path = Path(onnx_path), Path(output_path)
    if not onnx_path.is_file():
        raise FileNotFoundError(f"{onnx_path}: no such ONNX file")
    input_names = _onnx_inputs(onnx_path, precision)

    trt = require("tensorrt", PURPOSE, "tensorrt")
    major = int(trt.__version__.split(".")[0])
    if major < 10:
        raise ConversionUnavailable(f"{PURPOSE} needs TensorRT ≥ 10, but tensorrt {trt.__version__} is installed; "
                                    "install it with pip install 'tfpipe[tensorrt]'")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = _builder(trt, logger)

    # TensorRT 10 networks are always explicit-batch; Q/DQ models are built strongly typed, as NVIDIA advises,
    # so the precision comes from the ONNX types and no INT8 flag is set.
    flags = (1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)) if precision == "int8" else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(parser.get_error(i).desc() for i in range(parser.num_errors)) or "no details given"
        raise ValueError(f"{onnx_path}: TensorRT's ONNX parser failed: {errors}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    if precision == "fp16":
        if not builder.platform_has_fast_fp16:
            raise ConversionUnavailable("this GPU has no fast FP16 support; build the TensorRT engine in fp32")
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    for name in input_names:  # the same [batch, seq] range for word ids, mask and type ids
        profile.set_shape(name, *shapes)
    config.add_optimization_profile(profile)

    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise RuntimeError(f"{onnx_path}: TensorRT could not build an engine (its messages above say why)")
    size = _write_plan(plan, output_path)
    return {"tensorrt_version": trt.__version__, "precision": precision, "inputs": input_names,
            "min_shape": list(shapes[0]), "opt_shape": list(shapes[1]), "max_shape": list(shapes[2]),
            "workspace_gib": workspace_gib, "plan": str(output_path), "plan_bytes": size}
