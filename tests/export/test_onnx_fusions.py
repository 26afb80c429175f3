"""The ONNX rewrites of Keras patterns: on small hand-built graphs in the forms tf2onnx writes, each rewrite gives
the same numbers in onnxruntime and the ops runtimes fuse; a pattern whose intermediate value is used elsewhere is
left alone; and a real tiny export's encoder is rewritten layer by layer (its parity is `test_convert`'s)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from tfpipe.export.convert.manifest import read_manifest
from tfpipe.export.convert.onnx_fusions import fuse_keras_patterns

RNG = np.random.default_rng(0)
H = 8


def _const(name: str, value) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, np.float32), name)


def _model(nodes, initializers, outputs=(("y", [2, 3, H]),), inputs=(("x", [2, 3, H]),),
           opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _keras_layer_norm(x: str = "x", out: str = "y", mean_op: str = "GlobalAveragePool") -> tuple[list, list]:
    """Keras's LayerNormalization as tf2onnx writes it: moments, rsqrt, and x·s + (β − mean·s)."""
    def mean(src, dst):
        if mean_op == "GlobalAveragePool":
            return helper.make_node("GlobalAveragePool", [src], [dst])
        return helper.make_node("ReduceMean", [src], [dst], axes=[-1], keepdims=1)

    nodes = [mean(x, "mean"), helper.make_node("Neg", ["mean"], ["neg"]),
             helper.make_node("Sub", [x, "mean"], ["centered"]),
             helper.make_node("Mul", ["centered", "centered"], ["square"]), mean("square", "variance"),
             helper.make_node("Add", ["variance", "eps"], ["plus_eps"]), helper.make_node("Sqrt", ["plus_eps"], ["sd"]),
             helper.make_node("Reciprocal", ["sd"], ["inv"]), helper.make_node("Mul", ["inv", "gamma"], ["scale"]),
             helper.make_node("Mul", [x, "scale"], ["scaled"]), helper.make_node("Mul", ["neg", "scale"], ["shift"]),
             helper.make_node("Add", ["shift", "beta"], ["offset"]),
             helper.make_node("Add", ["scaled", "offset"], [out])]
    inits = [_const("eps", 1e-12), _const("gamma", RNG.normal(size=(1, 1, H))),
             _const("beta", RNG.normal(size=(1, 1, H)))]
    return nodes, inits


def _run(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)


def _ops(model: onnx.ModelProto) -> list[str]:
    return [node.op_type for node in model.graph.node]


@pytest.mark.parametrize("mean_op", ["GlobalAveragePool", "ReduceMean"])
def test_keras_layer_norm_becomes_one_layer_normalization(mean_op):
    model = _model(*_keras_layer_norm(mean_op=mean_op))
    feeds = {"x": RNG.normal(size=(2, 3, H)).astype(np.float32) * 3 + 1}
    want = _run(model, feeds)[0]
    counts = fuse_keras_patterns(model)
    onnx.checker.check_model(model)
    assert counts["layer_norm"] == 1 and _ops(model) == ["LayerNormalization"]
    assert {i.name for i in model.graph.initializer} == {n for n in model.graph.node[0].input[1:]}
    np.testing.assert_allclose(_run(model, feeds)[0], want, atol=1e-5)


def test_a_layer_norm_whose_mean_is_used_elsewhere_is_left_alone():
    model = _model(*_keras_layer_norm(), outputs=(("y", [2, 3, H]), ("mean", [2, 3, 1])))
    before = _ops(model)
    assert fuse_keras_patterns(model)["layer_norm"] == 0 and _ops(model) == before


def test_layer_norm_needs_opset_17():
    model = _model(*_keras_layer_norm(), opset=13)
    assert fuse_keras_patterns(model)["layer_norm"] == 0 and "LayerNormalization" not in _ops(model)


def test_tensorflow_exact_gelu_becomes_the_form_runtimes_fuse():
    # 0.5·x·erfc(−x·c), erfc(z) written as 1 − erf(z) (onnx_export's Erfc handler)
    nodes = [helper.make_node("Mul", ["half", "x"], ["half_x"]), helper.make_node("Neg", ["x"], ["neg"]),
             helper.make_node("Mul", ["neg", "c"], ["z"]), helper.make_node("Erf", ["z"], ["erf"]),
             helper.make_node("Sub", ["one", "erf"], ["erfc"]), helper.make_node("Mul", ["half_x", "erfc"], ["y"])]
    model = _model(nodes, [_const("half", 0.5), _const("c", 0.7071067811865476), _const("one", 1.0)])
    feeds = {"x": RNG.normal(size=(2, 3, H)).astype(np.float32) * 4}
    want = _run(model, feeds)[0]
    assert fuse_keras_patterns(model)["gelu"] == 1
    assert _ops(model) == ["Mul", "Mul", "Erf", "Add", "Mul"]
    np.testing.assert_array_equal(_run(model, feeds)[0], want)  # erf is odd: bit for bit


def test_attention_scores_are_computed_queries_times_keys():
    # Keras's einsum as tf2onnx writes it: keys [b, n, s, d] × queries [b, n, d, s], then turned around.
    nodes = [helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1, 3]),
             helper.make_node("Transpose", ["q"], ["qt"], perm=[0, 2, 3, 1]),
             helper.make_node("MatMul", ["kt", "qt"], ["scores_t"]),
             helper.make_node("Transpose", ["scores_t"], ["y"], perm=[0, 1, 3, 2])]
    model = _model(nodes, [], inputs=(("q", [2, 5, 3, 4]), ("k", [2, 5, 3, 4])), outputs=(("y", [2, 3, 5, 5]),))
    feeds = {"q": RNG.normal(size=(2, 5, 3, 4)).astype(np.float32),
             "k": RNG.normal(size=(2, 5, 3, 4)).astype(np.float32)}
    want = _run(model, feeds)[0]
    assert fuse_keras_patterns(model)["attention_scores"] == 1
    onnx.checker.check_model(model)
    assert _ops(model) == ["Transpose", "Transpose", "MatMul"]
    matmul = model.graph.node[2]
    assert list(matmul.input) == ["qt", "kt"] and list(matmul.output) == ["y"]
    np.testing.assert_allclose(_run(model, feeds)[0], want, atol=1e-6)


def test_a_tiny_exports_encoder_is_rewritten_in_every_layer(converted_exports):
    _, _, version = converted_exports("classification")
    manifest = read_manifest(version / "accelerated" / "onnx-fp32")
    ops = _ops(onnx.load(str(version / "accelerated" / "onnx-fp32" / "model.onnx")))
    layers = ops.count("Softmax")  # one attention per transformer layer
    assert layers >= 1
    # A layer norm after the embeddings and two per layer; one GELU and one attention score product per layer.
    assert manifest["graph_rewrites"] == {"layer_norm": 2 * layers + 1, "gelu": layers, "attention_scores": layers}
    assert ops.count("LayerNormalization") == 2 * layers + 1 and "GlobalAveragePool" not in ops
    assert manifest["parity"]["max_abs_diff"] <= 1e-4
