"""ONNX → OpenVINO IR (`model.xml` + `model.bin`) in fp32, with bf16 inference on CPUs that have it, or int8 by
NNCF post-training quantization calibrated on batches from tfpipe's own fine-tuning pipeline.

bf16 is a runtime setting (OpenVINO's INFERENCE_PRECISION_HINT), not a different file: the IR stays fp32 and the
manifest tells the runtime to compile it for bf16. A CPU without bf16 instructions cannot do that, and says so.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable

import numpy as np

from tfpipe.export.convert.errors import ConversionUnavailable, require
from tfpipe.text.tokenizer import MODEL_INPUTS

PRECISIONS = ("fp32", "bf16", "int8")


def cpu_capabilities() -> list[str]:
    ov = require("openvino", "OpenVINO conversion", "openvino")
    return list(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def inference_precision(precision: str) -> str:
    """The INFERENCE_PRECISION_HINT a variant runs with: bf16 where asked (and possible), f32 otherwise; int8
    variants compute their non-quantized parts in bf16 where the CPU has it."""
    capabilities = cpu_capabilities()
    if precision == "bf16" and "BF16" not in capabilities:
        raise ConversionUnavailable(f"this CPU has no bf16 support (OpenVINO CPU capabilities: "
                                    f"{', '.join(capabilities)}); bf16 needs AVX-512-BF16 or AMX")
    return "bf16" if precision in ("bf16", "int8") and "BF16" in capabilities else "f32"


def onnx_to_openvino(onnx_path: str | Path, output_xml: str | Path, precision: str = "fp32",
                     calibration: Iterable[dict[str, np.ndarray]] | None = None, subset_size: int = 300) -> None:
    """Converts and saves the IR; for int8 quantizes it first on `calibration` (feature dicts of int32 ids)."""
    if precision not in PRECISIONS:
        raise ValueError(f"--precision {precision}: OpenVINO conversion takes one of {', '.join(PRECISIONS)}")
    ov = require("openvino", "OpenVINO conversion", "openvino")
    model = ov.convert_model(str(onnx_path))
    if precision == "int8":
        if calibration is None:
            raise ValueError("--precision int8 needs --calibration-data FILE (texts in the training format)")
        model = _quantize(model, list(calibration), subset_size)
    # compress_to_fp16 would halve the file but change fp32 weights: the check compares against fp32.
    ov.save_model(model, str(output_xml), compress_to_fp16=False)


def _quantize(model, batches: list[dict[str, np.ndarray]], subset_size: int):
    nncf = require("nncf", "OpenVINO int8 quantization", "openvino")
    logging.getLogger("nncf").setLevel(logging.ERROR)
    if not batches:
        raise ValueError("--calibration-data: no usable records to calibrate int8 on")
    names = [port.get_any_name() for port in model.inputs]
    missing = set(MODEL_INPUTS) - set(names)
    if missing:
        raise ValueError(f"the model has no input(s) {sorted(missing)}; cannot calibrate it")
    dataset = nncf.Dataset(batches, lambda batch: {name: batch[name] for name in names})
    return nncf.quantize(model, dataset, model_type=nncf.ModelType.TRANSFORMER,
                         subset_size=min(subset_size, len(batches)))
