"""TensorRT engine builds: shape flags, the checks made before TensorRT is imported, and the one-line
`ConversionUnavailable` on a machine without the `tensorrt` package (a real build runs where TensorRT and a GPU are)."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from tests.export.test_triton_repository import INPUTS, tiny_encoder_onnx
from tfpipe.export.convert.errors import ConversionUnavailable
from tfpipe.export.convert.tensorrt_engine import build_engine, parse_shape

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None


@pytest.fixture
def no_tensorrt(monkeypatch):
    """Makes `import tensorrt` fail, so a check that ran after the import would show up as the wrong error."""
    monkeypatch.setitem(sys.modules, "tensorrt", None)


@pytest.mark.parametrize("text, expected", [("1x16", (1, 16)), ("8x128", (8, 128)), (" 32X128 ", (32, 128))])
def test_parse_shape(text, expected):
    assert parse_shape(text, "--opt-shape") == expected


@pytest.mark.parametrize("text", ["8", "8x", "x8", "ax8", "8x8x8", "0x8", "8x0", "-1x8", "1.5x8", ""])
def test_parse_shape_rejects(text):
    with pytest.raises(ValueError, match=r"^--max-shape: "):
        parse_shape(text, "--max-shape")


@pytest.mark.parametrize("shapes, flag", [(("1x8", "8x128", "bad"), "--max-shape"),
                                          (("1x8", "0x128", "32x128"), "--opt-shape")])
def test_bad_shape_flags(tmp_path, no_tensorrt, shapes, flag):
    onnx_path = tiny_encoder_onnx(tmp_path / "model.onnx")
    with pytest.raises(ValueError, match=rf"^{flag}: "):
        build_engine(onnx_path, tmp_path / "model.plan", min_shape=shapes[0], opt_shape=shapes[1],
                     max_shape=shapes[2])


@pytest.mark.parametrize("shapes", [("8x8", "1x128", "32x128"), ("1x8", "8x256", "32x128")])
def test_min_opt_max_order(tmp_path, no_tensorrt, shapes):
    with pytest.raises(ValueError, match="--min-shape .* ≤ --opt-shape .* ≤ --max-shape .* must hold"):
        build_engine(tmp_path / "absent.onnx", tmp_path / "model.plan", min_shape=shapes[0], opt_shape=shapes[1],
                     max_shape=shapes[2])


def test_bad_precision_and_workspace(tmp_path, no_tensorrt):
    with pytest.raises(ValueError, match="--precision: 'bf16' is not one of fp32, fp16, int8"):
        build_engine(tmp_path / "absent.onnx", tmp_path / "model.plan", precision="bf16")
    with pytest.raises(ValueError, match="--workspace-gib: 0"):
        build_engine(tmp_path / "absent.onnx", tmp_path / "model.plan", workspace_gib=0)


def test_missing_or_unreadable_onnx(tmp_path, no_tensorrt):
    missing = tmp_path / "nowhere" / "model.onnx"
    with pytest.raises(FileNotFoundError, match=f"{missing}: no such ONNX file"):
        build_engine(missing, tmp_path / "model.plan")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00\xffnot protobuf at all")
    with pytest.raises(ValueError, match=f"{garbage}: not a readable ONNX model"):
        build_engine(garbage, tmp_path / "model.plan")


def test_int8_needs_qdq_nodes_before_tensorrt(tmp_path, no_tensorrt):
    onnx_path = tiny_encoder_onnx(tmp_path / "model.onnx")
    with pytest.raises(ValueError, match="int8 needs an ONNX model with QuantizeLinear/DequantizeLinear nodes") as info:
        build_engine(onnx_path, tmp_path / "model.plan", precision="int8")
    assert "ModelOpt" in str(info.value) and "deprecated in TensorRT 10" in str(info.value)
    # A Q/DQ model passes that check and only then needs TensorRT.
    qdq = tiny_encoder_onnx(tmp_path / "model.qdq.onnx", qdq=True)
    with pytest.raises(ConversionUnavailable, match="tensorrt"):
        build_engine(qdq, tmp_path / "model.plan", precision="int8")


@pytest.mark.skipif(HAS_TENSORRT, reason="the tensorrt package is installed here")
def test_without_tensorrt_is_one_line_unavailable(tmp_path):
    onnx_path = tiny_encoder_onnx(tmp_path / "model.onnx")
    with pytest.raises(ConversionUnavailable) as info:
        build_engine(onnx_path, tmp_path / "out" / "model.plan", precision="fp16")
    message = str(info.value)
    assert "\n" not in message
    assert "'tensorrt'" in message and "pip install 'tfpipe[tensorrt]'" in message
    assert message.startswith("a TensorRT engine build needs the Python package 'tensorrt'")
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not HAS_TENSORRT, reason="needs the tensorrt package (pip install 'tfpipe[tensorrt]') and an "
                                             "NVIDIA GPU")
def test_builds_a_real_fp32_engine(tmp_path):
    import tensorrt as trt

    onnx_path = tiny_encoder_onnx(tmp_path / "model.onnx")
    plan = tmp_path / "engine" / "model.plan"
    try:
        info = build_engine(onnx_path, plan, min_shape="1x4", opt_shape="2x8", max_shape="4x16", workspace_gib=0.25)
    except ConversionUnavailable as error:
        pytest.skip(str(error))
    assert info["plan_bytes"] == plan.stat().st_size > 0 and info["inputs"] == list(INPUTS)
    assert (info["min_shape"], info["opt_shape"], info["max_shape"]) == ([1, 4], [2, 8], [4, 16])
    assert [p.name for p in plan.parent.iterdir()] == ["model.plan"]  # no temporary file left
    engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(plan.read_bytes())
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    assert sorted(names) == sorted([*INPUTS, "logits"])
    assert tuple(engine.get_tensor_profile_shape("input_word_ids", 0)) == ((1, 4), (2, 8), (4, 16))
