"""Rewrites the forms Keras 3 on TensorFlow gives two BERT ops in a tf2onnx graph into the forms ONNX runtimes
run as one kernel. Each rewrite is exact algebra, and every conversion is still checked against the SavedModel.

- Layer normalization: Keras computes `x·(γ/√(var+ε)) + (β − mean·γ/√(var+ε))` from `moments`, and tf2onnx turns the
  last-axis means into `GlobalAveragePool`: thirteen elementwise nodes that OpenVINO cannot fuse into its MVN
  (they took a quarter of an int8 encoder's time). They become one ONNX `LayerNormalization` (opset ≥ 17).
- Exact GELU: TensorFlow computes `0.5·x·erfc(−x/√2)`, which tf2onnx writes as `1 − erf(−x·c)` (with the `Erfc`
  handler in `onnx_export`). Since erf is odd, that is `1 + erf(x·c)`: the form OpenVINO's and onnxruntime's GELU
  fusions match.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping
from typing import Any, Optional

import numpy as np

from tfpipe.export.convert.errors import require

LAYER_NORM_OPSET = 17  # where ONNX's LayerNormalization appeared


class _Constants(Mapping):
    """Tensor name → value of the graph's initializers and Constant nodes, each converted to numpy when first
    looked up: the matchers read a few small ones, and the graph holds every weight of the model."""

    def __init__(self, graph: Any) -> None:
        self._to_array = require("onnx", "ONNX graph rewrites", "onnx").numpy_helper.to_array
        self._tensors = {i.name: i for i in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
                self._tensors[node.output[0]] = node.attribute[0].t
        self._arrays: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._arrays:
            self._arrays[name] = self._to_array(self._tensors[name])
        return self._arrays[name]

    def __contains__(self, name: object) -> bool:
        return name in self._tensors

    def __iter__(self) -> Iterator[str]:
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)


class _Graph:
    """Who produces and who consumes each tensor of an ONNX graph, and its constant values."""

    def __init__(self, graph: Any) -> None:
        self.graph = graph
        self.producer = {out: node for node in graph.node for out in node.output}
        self.consumers: dict[str, list] = defaultdict(list)
        for node in graph.node:
            for name in node.input:
                self.consumers[name].append(node)
        self.outputs = {value.name for value in graph.output}
        self.constants = _Constants(graph)

    def made_by(self, name: str, op_type: str) -> Optional[Any]:
        node = self.producer.get(name)
        return node if node is not None and node.op_type == op_type else None

    def only_use(self, name: str, op_type: str) -> Optional[Any]:
        """The one node reading `name`, if it is an `op_type` and `name` is not also a graph output."""
        users = self.consumers.get(name, [])
        if len(users) == 1 and users[0].op_type == op_type and name not in self.outputs:
            return users[0]
        return None

    def other_input(self, node: Any, name: str) -> Optional[str]:
        others = [i for i in node.input if i != name]
        return others[0] if len(node.input) == 2 and len(others) == 1 else None


def _remove_nodes(graph: Any, ids: Collection[int]) -> None:
    """Drops the nodes whose `id()` is in `ids`, keeping the others in order (the matchers hold those nodes, so
    protobuf hands back the same Python objects)."""
    kept = [node for node in graph.node if id(node) not in ids]
    if len(graph.node) - len(kept) != len(set(ids)):  # a half-applied rewrite would leave a broken graph
        raise RuntimeError("ONNX rewrite: the nodes to remove were not found in the graph")
    del graph.node[:]
    graph.node.extend(kept)


def _last_axis_mean(g: _Graph, name: str, ranks: dict[str, int]) -> Optional[Any]:
    """The node computing `name` as a keepdims mean over the last axis of its input, if it is one."""
    node = g.producer.get(name)
    if node is None:
        return None
    if node.op_type == "GlobalAveragePool":  # over the axes after the second: the last one alone for rank 3
        return node if ranks.get(node.input[0]) == 3 else None
    if node.op_type == "ReduceMean":
        attributes = {a.name: a for a in node.attribute}
        keepdims = attributes["keepdims"].i if "keepdims" in attributes else 1
        axes = list(attributes["axes"].ints) if "axes" in attributes else (
            list(g.constants.get(node.input[1], [])) if len(node.input) > 1 else [])
        rank = ranks.get(node.input[0])
        if keepdims and len(axes) == 1 and rank and axes[0] in (-1, rank - 1):
            return node
    return None


def _row_vector(value: Optional[np.ndarray]) -> Optional[np.ndarray]:
    """A per-feature constant of shape [..., 1, H] as [H]; None for anything else."""
    if value is None or value.ndim == 0 or any(d != 1 for d in value.shape[:-1]):
        return None
    return value.reshape(-1).astype(np.float32)


def _match_layer_norm(g: _Graph, reciprocal: Any, ranks: dict[str, int]) -> Optional[dict]:
    sqrt = g.made_by(reciprocal.input[0], "Sqrt")
    add_eps = sqrt and g.made_by(sqrt.input[0], "Add")
    if not add_eps:
        return None
    eps = next((g.constants[i] for i in add_eps.input if i in g.constants and g.constants[i].size == 1), None)
    variance = next((i for i in add_eps.input if i not in g.constants), None)
    variance_node = variance and _last_axis_mean(g, variance, ranks)
    square = variance_node and g.made_by(variance_node.input[0], "Mul")
    if eps is None or not square or square.input[0] != square.input[1]:
        return None
    centered = g.made_by(square.input[0], "Sub")
    mean_node = centered and _last_axis_mean(g, centered.input[1], ranks)
    if not mean_node or mean_node.input[0] != centered.input[0]:
        return None
    x, mean = centered.input[0], centered.input[1]
    scale = g.only_use(reciprocal.output[0], "Mul")
    gamma_name = scale and g.other_input(scale, reciprocal.output[0])
    gamma = _row_vector(g.constants.get(gamma_name)) if gamma_name else None
    users = g.consumers.get(scale.output[0], []) if scale else []
    if gamma is None or len(users) != 2 or any(u.op_type != "Mul" for u in users):
        return None
    scaled = next((u for u in users if x in u.input), None)
    shifted = next((u for u in users if u is not scaled), None)
    negated = shifted and g.made_by(g.other_input(shifted, scale.output[0]) or "", "Neg")
    if not scaled or not negated or negated.input[0] != mean:
        return None
    add_beta = g.only_use(shifted.output[0], "Add")
    beta = _row_vector(g.constants.get(g.other_input(add_beta, shifted.output[0]) or "")) if add_beta else None
    total = add_beta and g.only_use(add_beta.output[0], "Add")
    if beta is None or beta.shape != gamma.shape or not total or g.only_use(scaled.output[0], "Add") is not total:
        return None
    inner = [mean_node, negated, centered, square, variance_node, add_eps, sqrt, reciprocal, scale, scaled, shifted,
             add_beta]
    for node in inner:  # nothing outside the pattern may read its intermediate values
        for out in node.output:
            if out in g.outputs or any(u not in inner and u is not total for u in g.consumers.get(out, [])):
                return None
    return {"x": x, "gamma": gamma, "beta": beta, "epsilon": float(eps.reshape(-1)[0]), "remove": inner,
            "output": total}


def _fuse_layer_norms(model: Any) -> int:
    onnx = require("onnx", "ONNX graph rewrites", "onnx")
    inferred = onnx.shape_inference.infer_shapes(model)
    ranks = {v.name: len(v.type.tensor_type.shape.dim) for v in
             list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)
             if v.type.tensor_type.HasField("shape")}
    graph = model.graph
    g = _Graph(graph)
    matches = [m for node in list(graph.node) if node.op_type == "Reciprocal"
               if (m := _match_layer_norm(g, node, ranks))]
    removed = set()
    for i, m in enumerate(matches):
        total = m["output"]
        base = total.output[0].rsplit(":", 1)[0]
        names = [f"{base}/ln_gamma_{i}", f"{base}/ln_beta_{i}"]
        graph.initializer.extend([onnx.numpy_helper.from_array(m["gamma"], names[0]),
                                  onnx.numpy_helper.from_array(m["beta"], names[1])])
        fused = onnx.helper.make_node("LayerNormalization", [m["x"], *names], [total.output[0]],
                                      name=f"{base}/LayerNormalization", axis=-1, epsilon=m["epsilon"])
        total.CopyFrom(fused)  # in the place of the last node: its inputs are all computed before it
        removed.update(id(node) for node in m["remove"])
    _remove_nodes(graph, removed)
    return len(matches)


def _rewrite_gelus(model: Any) -> int:
    """`Sub(1, Erf(Mul(Neg(x), c)))` → `Add(1, Erf(Mul(x, c)))`."""
    g = _Graph(model.graph)
    dropped, count = [], 0
    for erf in [n for n in model.graph.node if n.op_type == "Erf"]:
        product = g.made_by(erf.input[0], "Mul")
        negated = product and next(filter(None, (g.made_by(i, "Neg") for i in product.input)), None)
        subtract = g.only_use(erf.output[0], "Sub")
        one = subtract and subtract.input[0]
        if (not negated or g.only_use(negated.output[0], "Mul") is not product
                or g.only_use(product.output[0], "Erf") is not erf or not subtract
                or subtract.input[1] != erf.output[0] or one not in g.constants
                or g.constants[one].size != 1 or float(g.constants[one].reshape(-1)[0]) != 1.0):
            continue
        product.input[list(product.input).index(negated.output[0])] = negated.input[0]
        subtract.op_type = "Add"
        dropped.append(id(negated))
        count += 1
    _remove_nodes(model.graph, dropped)
    return count


def _swap_last_two(perm: list[int]) -> list[int]:
    return perm[:-2] + [perm[-1], perm[-2]]


def _rewrite_attention_scores(model: Any) -> int:
    """`Transpose(MatMul(Transpose(k), Transpose(q)), swap last two)` → `MatMul(Transpose(q)ᵀ, Transpose(k)ᵀ)`
    ((AB)ᵀ = BᵀAᵀ, the transposes folded into the input ones): Keras's attention einsum comes out as keys × queries
    turned around, and that last transpose of the biggest tensor (batch × heads × seq × seq) between the scores
    and their softmax hides the usual attention pattern from OpenVINO's fused attention kernels."""
    make_attribute = require("onnx", "ONNX graph rewrites", "onnx").helper.make_attribute
    g = _Graph(model.graph)
    dropped, count = [], 0
    for matmul in [n for n in model.graph.node if n.op_type == "MatMul"]:
        after = g.only_use(matmul.output[0], "Transpose")
        left, right = (g.made_by(i, "Transpose") for i in matmul.input)
        perms = [list(next((a.ints for a in n.attribute if a.name == "perm"), [])) if n else [] for n in
                 (after, left, right)]
        if not after or not left or not right or any(len(p) < 2 for p in perms) or \
                perms[0] != _swap_last_two(list(range(len(perms[0])))) or len(perms[1]) != len(perms[0]) or \
                any(g.only_use(n.output[0], "MatMul") is not matmul for n in (left, right)):
            continue
        for node, perm in ((left, perms[1]), (right, perms[2])):
            del node.attribute[:]
            node.attribute.append(make_attribute("perm", _swap_last_two(perm)))
        matmul.input[:] = [right.output[0], left.output[0]]
        matmul.output[:] = [after.output[0]]
        dropped.append(id(after))
        count += 1
    _remove_nodes(model.graph, dropped)
    return count


def _drop_unused_initializers(graph: Any) -> None:
    used = {name for node in graph.node for name in node.input} | {value.name for value in graph.output}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def fuse_keras_patterns(model: Any) -> dict[str, int]:
    """Rewrites `model` (an `onnx.ModelProto`) in place; returns how many of each pattern it rewrote."""
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    counts = {"layer_norm": _fuse_layer_norms(model) if opset >= LAYER_NORM_OPSET else 0,
              "gelu": _rewrite_gelus(model), "attention_scores": _rewrite_attention_scores(model)}
    _drop_unused_initializers(model.graph)  # the layer norms' old per-feature constants and epsilons
    return counts
