"""TF-TRT: rewrites a SavedModel's TensorRT-compatible subgraphs into TensorRT ops, for TensorFlow builds that
still ship TensorRT (pip TensorFlow dropped it after 2.17; elsewhere `--to tensorrt` builds a plan from ONNX).

The result is another SavedModel that plain TensorFlow (with the same TensorRT) loads; the tokenizer's tf-text
ops stay TensorFlow ops. On a build without TensorRT the conversion is `ConversionUnavailable`, in one line.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from tfpipe.config.atomic import atomic_directory
from tfpipe.export.convert.errors import ConversionUnavailable

# int8 TF-TRT needs a calibration input function over real text; tfpipe offers int8 only through Q/DQ ONNX.
PRECISIONS = ("fp32", "fp16")


def tensorrt_enabled() -> bool:
    """Whether this TensorFlow was built with TensorRT (False when the check itself is missing)."""
    try:
        # An internal module (no public API says this); this function is the one place tfpipe touches it.
        from tensorflow.compiler.tf2tensorrt import _pywrap_py_utils
    except ImportError:
        return False
    return bool(_pywrap_py_utils.is_tensorrt_enabled())


def convert_tf_trt(export_dir: str | Path, output_dir: str | Path, precision: str = "fp32",
                   signature_key: str = "serving_default") -> dict[str, Any]:
    """Converts the SavedModel at `export_dir` with TF-TRT and saves the result at `output_dir`."""
    if precision not in PRECISIONS:
        raise ValueError(f"--precision: {precision!r} is not one of {', '.join(PRECISIONS)} for TF-TRT "
                         "(for int8, build a TensorRT engine from a Q/DQ ONNX model with --to tensorrt)")
    export_dir, output_dir = Path(export_dir), Path(output_dir)
    if not (export_dir / "saved_model.pb").is_file():
        raise FileNotFoundError(f"{export_dir}: no saved_model.pb; not a SavedModel version folder")

    import tensorflow as tf

    if not tensorrt_enabled():
        raise ConversionUnavailable(f"TensorFlow {tf.__version__} is built without TensorRT (TF-TRT left pip "
                                    "TensorFlow after 2.17): use --to tensorrt on a machine with an NVIDIA GPU, "
                                    "or a TensorFlow ≤ 2.17 build with TensorRT")
    with contextlib.suppress(ImportError):
        import tensorflow_text  # noqa: F401  (registers the exported tokenizer's ops; loading fails without them)

    converter = tf.experimental.tensorrt.Converter(input_saved_model_dir=str(export_dir),
                                                   input_saved_model_signature_key=signature_key,
                                                   precision_mode=precision.upper())
    converter.convert()
    with atomic_directory(output_dir, replace=True) as temporary:  # a reader sees the old SavedModel or the new
        converter.save(str(temporary))
    return {"tensorflow_version": tf.__version__, "precision": precision, "signature": signature_key,
            "saved_model": str(output_dir)}
