"""SavedModel → ONNX: the export's `predict_ids` signature (token ids in, the head's logits out) through tf2onnx,
then optionally onnxruntime's transformer graph optimizer and dynamic int8 quantization.

tf2onnx converts from the SavedModel, not from Keras (`from_keras` does not handle Keras 3 models); it lacks a
handler for `Erfc`, which Keras 3's exact GELU uses, so one is registered here (erfc(x) = 1 − erf(x)).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from tfpipe.config.atomic import write_bytes_atomic
from tfpipe.export.convert.errors import require
from tfpipe.export.convert.onnx_fusions import fuse_keras_patterns
from tfpipe.text.tokenizer import MODEL_INPUTS

ENCODER_SIGNATURE = "predict_ids"
DEFAULT_OPSET = 17
PRECISIONS = ("fp32", "int8")  # int8: dynamic quantization
_registered = False


def _register_erfc(tf2onnx) -> None:
    global _registered
    if _registered:
        return
    from tf2onnx import utils
    from tf2onnx.handler import tf_op

    @tf_op("Erfc")
    class Erfc:  # noqa: F841 - registered by the decorator
        @classmethod
        def version_9(cls, ctx, node, **kwargs):
            node.type = "Erf"
            one = ctx.make_const(utils.make_name(f"{node.name}_one"), np.array(1, dtype=np.float32))
            ctx.insert_new_node_on_output("Sub", node.output[0], inputs=[one.output[0], node.output[0]],
                                          name=utils.make_name(f"{node.name}_erfc"))

    _registered = True


def encoder_function(export_dir: str | Path, loaded: Any = None):
    """The export's token-id signature as a `tf.function` with keyword inputs, and its input specs (`loaded`: the
    SavedModel already loaded, else it is loaded here)."""
    loaded = loaded if loaded is not None else tf.saved_model.load(str(export_dir))
    if ENCODER_SIGNATURE not in loaded.signatures:
        raise ValueError(f"{export_dir}: no {ENCODER_SIGNATURE!r} signature (found {sorted(loaded.signatures)}); "
                         "re-export the run with this tfpipe")
    signature = loaded.signatures[ENCODER_SIGNATURE]
    specs = signature.structured_input_signature[1]

    @tf.function
    def encoder(input_word_ids, input_mask, input_type_ids):
        return signature(input_word_ids=input_word_ids, input_mask=input_mask, input_type_ids=input_type_ids)

    return loaded, encoder, [specs[name] for name in MODEL_INPUTS]


def saved_model_to_onnx(export_dir: str | Path, output: str | Path, opset: int = DEFAULT_OPSET,
                        loaded: Any = None, rewrite: bool = True) -> dict[str, Any]:
    """Writes the export's encoder as ONNX to `output`, its Keras layer norms and GELUs in the forms runtimes fuse
    (`onnx_fusions`; `rewrite=False` keeps tf2onnx's graph, for measuring what they gain); returns its input/output
    descriptions and how many of each were rewritten. `loaded` is the SavedModel when the caller has it loaded
    already (a BERT export takes seconds to load)."""
    tf2onnx = require("tf2onnx", "ONNX conversion", "onnx")
    require("onnx", "ONNX conversion", "onnx")
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    _register_erfc(tf2onnx)
    _loaded, encoder, specs = encoder_function(export_dir, loaded)  # the loaded object must outlive the conversion
    names = list(encoder.get_concrete_function(*specs).structured_outputs)
    model, _ = tf2onnx.convert.from_function(encoder, input_signature=specs, opset=opset)
    # tf2onnx names outputs after graph tensors; give them the signature's aliases.
    for old, new in zip([o.name for o in model.graph.output], names):
        _rename(model.graph, old, new)
    rewrites = fuse_keras_patterns(model) if rewrite else {}
    write_bytes_atomic(output, model.SerializeToString())
    return describe(output) | {"rewrites": rewrites}


def _rename(graph, old: str, new: str) -> None:
    for node in graph.node:
        node.output[:] = [new if o == old else o for o in node.output]
        node.input[:] = [new if i == old else i for i in node.input]
    for value in graph.output:
        if value.name == old:
            value.name = new


def describe(path: str | Path) -> dict[str, Any]:
    """The inputs and outputs of an ONNX file: name, dtype and shape (-1 for a dynamic dimension)."""
    onnx = require("onnx", "reading an ONNX model", "onnx")
    model = onnx.load(str(path), load_external_data=False)

    def entries(values) -> list[dict]:
        out = []
        for value in values:
            tensor = value.type.tensor_type
            shape = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
            dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
            out.append({"name": value.name, "dtype": dtype, "shape": shape})
        return out

    initializers = {i.name for i in model.graph.initializer}
    return {"inputs": entries(v for v in model.graph.input if v.name not in initializers),
            "outputs": entries(model.graph.output), "opset": max(o.version for o in model.opset_import)}


def optimize_onnx(source: str | Path, output: str | Path, num_heads: int = 0, hidden_size: int = 0) -> None:
    """onnxruntime's BERT graph optimizer (LayerNorm / attention / GELU fusions where it finds them)."""
    require("onnxruntime", "ONNX graph optimization", "onnx")
    from onnxruntime.transformers.optimizer import optimize_model

    logging.getLogger("onnxruntime.transformers").setLevel(logging.ERROR)
    # opt_level 0: the Python fusions only (its onnxruntime pass imports torch); the session optimizes at load.
    optimized = optimize_model(str(source), model_type="bert", num_heads=num_heads, hidden_size=hidden_size,
                               opt_level=0)
    optimized.save_model_to_file(str(output))


def quantize_onnx_int8(source: str | Path, output: str | Path) -> None:
    """Dynamic int8 quantization of the MatMul/Gemm weights (activations quantized per batch at run time)."""
    require("onnxruntime", "ONNX int8 quantization", "onnx")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger("onnxruntime.quantization").setLevel(logging.ERROR)
    quantize_dynamic(str(source), str(output), weight_type=QuantType.QInt8)
