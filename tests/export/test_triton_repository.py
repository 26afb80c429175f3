"""Triton model repositories from real tiny conversions (ONNX, OpenVINO and a stand-in TensorRT plan): configs
parsed as Triton's own ModelConfig protobuf, copied files that still run, and the refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from google.protobuf import text_format
from onnx import TensorProto, helper, numpy_helper
from tritonclient.grpc import model_config_pb2 as mc

from tfpipe.export.convert.manifest import default_output, write_manifest
from tfpipe.export.convert.triton import model_config, write_triton_repository

INPUTS = ("input_word_ids", "input_mask", "input_type_ids")
VOCAB, HIDDEN = 40, 4


def tiny_encoder_onnx(path: Path, qdq: bool = False) -> Path:
    """An encoder-shaped ONNX model: int32 ids, mask and type ids [batch, seq] → float32 "logits" [batch, 2]
    (embedding lookups, a masked mean, a dense layer); with `qdq`, a QuantizeLinear/DequantizeLinear pair."""
    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.normal(size=shape).astype(np.float32), name)
               for name, shape in (("word_emb", (VOCAB, HIDDEN)), ("type_emb", (2, HIDDEN)), ("dense", (HIDDEN, 2)),
                                   ("bias", (2,)))]
    weights += [numpy_helper.from_array(np.array(v, dtype=d), n) for n, v, d in
                (("axis2", [2], np.int64), ("axis1", [1], np.int64), ("one", 1.0, np.float32),
                 ("scale", 0.05, np.float32), ("zero", 0, np.int8))]
    pooled = "pooled_dq" if qdq else "pooled"
    nodes = [helper.make_node("Gather", ["word_emb", "input_word_ids"], ["words"]),
             helper.make_node("Gather", ["type_emb", "input_type_ids"], ["types"]),
             helper.make_node("Add", ["words", "types"], ["hidden"]),
             helper.make_node("Cast", ["input_mask"], ["mask"], to=TensorProto.FLOAT),
             helper.make_node("Unsqueeze", ["mask", "axis2"], ["mask3"]),
             helper.make_node("Mul", ["hidden", "mask3"], ["masked"]),
             helper.make_node("ReduceSum", ["masked", "axis1"], ["total"], keepdims=0),
             helper.make_node("ReduceSum", ["mask3", "axis1"], ["count"], keepdims=0),
             helper.make_node("Max", ["count", "one"], ["safe_count"]),
             helper.make_node("Div", ["total", "safe_count"], ["pooled"])]
    if qdq:
        nodes += [helper.make_node("QuantizeLinear", ["pooled", "scale", "zero"], ["pooled_q"]),
                  helper.make_node("DequantizeLinear", ["pooled_q", "scale", "zero"], ["pooled_dq"])]
    nodes += [helper.make_node("MatMul", [pooled, "dense"], ["projected"]),
              helper.make_node("Add", ["projected", "bias"], ["logits"])]
    graph = helper.make_graph(
        nodes, "tiny_encoder",
        [helper.make_tensor_value_info(name, TensorProto.INT32, ["batch", "seq"]) for name in INPUTS],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])], initializer=weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every onnxruntime and OpenVINO the project supports
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


def feeds(batch: int = 3, seq: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    mask = np.ones((batch, seq), np.int32)
    mask[0, 3:] = 0
    return {"input_word_ids": rng.integers(0, VOCAB, (batch, seq)).astype(np.int32), "input_mask": mask,
            "input_type_ids": (rng.random((batch, seq)) > 0.5).astype(np.int32)}


def run_onnx(path: Path) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["logits"], feeds())[0]


def _manifest(fmt: str, precision: str, model_file: str, verified: bool = True) -> dict:
    ids = [{"name": name, "dtype": "int32", "shape": [-1, -1]} for name in INPUTS]
    return {"format": fmt, "runtime": {"onnx": "onnxruntime"}.get(fmt, fmt), "precision": precision,
            "optimized": False, "model_file": model_file, "verified": verified, "inputs": ids,
            "outputs": [{"name": "logits", "dtype": "float32", "shape": [-1, 2]}]}


@pytest.fixture
def version_dir(tmp_path: Path) -> Path:
    import openvino as ov

    version = tmp_path / "exports" / "sentiment" / "1"
    onnx_dir = default_output(version, "onnx", "fp32")
    onnx_dir.mkdir(parents=True)
    original = tiny_encoder_onnx(onnx_dir / "model.onnx")
    assert run_onnx(original).shape == (3, 2)  # a valid model before anything is built from it
    write_manifest(onnx_dir, _manifest("onnx", "fp32", "model.onnx"))

    ov_dir = default_output(version, "openvino", "fp32")
    ov_dir.mkdir()
    ov.save_model(ov.convert_model(str(original)), str(ov_dir / "model.xml"), compress_to_fp16=False)
    write_manifest(ov_dir, _manifest("openvino", "fp32", "model.xml"))

    # A real plan needs TensorRT and an NVIDIA GPU, which this machine lacks; the repository only copies the file.
    trt_dir = default_output(version, "tensorrt", "fp16")
    trt_dir.mkdir()
    (trt_dir / "model.plan").write_bytes(b"not a real TensorRT plan")
    write_manifest(trt_dir, {**_manifest("tensorrt", "fp16", "model.plan"), "max_shape": [16, 128]})

    unverified = default_output(version, "onnx", "int8")  # failed its parity check: never published
    unverified.mkdir()
    (unverified / "model.onnx").write_bytes(original.read_bytes())
    write_manifest(unverified, _manifest("onnx", "int8", "model.onnx", verified=False))
    return version


def _config(folder: Path) -> mc.ModelConfig:
    return text_format.Parse((folder / "config.pbtxt").read_text(encoding="utf-8"), mc.ModelConfig())


def test_repository_holds_every_verified_variant(version_dir: Path, tmp_path: Path):
    repository = tmp_path / "triton"
    written = write_triton_repository(version_dir, repository, "sentiment", max_queue_delay_microseconds=500)
    assert [p.name for p in written] == ["sentiment_onnx_fp32", "sentiment_openvino_fp32", "sentiment_tensorrt_fp16"]
    assert sorted(p.name for p in repository.iterdir()) == [p.name for p in written]  # no temporary folder left

    expected = {"sentiment_onnx_fp32": ("onnxruntime_onnx", "", mc.ModelInstanceGroup.KIND_CPU, 32, ["model.onnx"]),
                "sentiment_openvino_fp32": ("", "openvino", mc.ModelInstanceGroup.KIND_CPU, 32,
                                            ["model.bin", "model.xml"]),
                "sentiment_tensorrt_fp16": ("tensorrt_plan", "", mc.ModelInstanceGroup.KIND_GPU, 16,
                                            ["model.plan"])}
    for folder in written:
        platform, backend, kind, batch, files = expected[folder.name]
        text = (folder / "config.pbtxt").read_text(encoding="utf-8")
        assert text.startswith("# Written by tfpipe from the export ") and "assets/vocab.txt" in text
        assert f"manifest accelerated/{folder.name.split('_', 1)[1].replace('_', '-')}/manifest.json" in text
        config = _config(folder)
        assert (config.name, config.platform, config.backend) == (folder.name, platform, backend)
        assert config.max_batch_size == batch  # the TensorRT plan's profile stops at batch 16
        assert [(i.name, i.data_type, list(i.dims)) for i in config.input] == [
            (name, mc.TYPE_INT32, [-1]) for name in INPUTS]
        assert [(o.name, o.data_type, list(o.dims)) for o in config.output] == [("logits", mc.TYPE_FP32, [2])]
        assert config.HasField("dynamic_batching") and config.dynamic_batching.max_queue_delay_microseconds == 500
        assert [(g.kind, g.count) for g in config.instance_group] == [(kind, 1)]
        assert sorted(p.name for p in (folder / "1").iterdir()) == files

    original = version_dir / "accelerated" / "onnx-fp32" / "model.onnx"
    np.testing.assert_array_equal(run_onnx(repository / "sentiment_onnx_fp32" / "1" / "model.onnx"),
                                  run_onnx(original))
    import openvino as ov

    # f32 named: on a CPU with bf16, OpenVINO's default inference precision is bf16.
    compiled = ov.Core().compile_model(str(repository / "sentiment_openvino_fp32" / "1" / "model.xml"), "CPU",
                                       {"INFERENCE_PRECISION_HINT": "f32"})
    np.testing.assert_allclose(compiled(feeds())[compiled.output("logits")], run_onnx(original), rtol=1e-5, atol=1e-6)


def test_chosen_variants_and_overwrite(version_dir: Path, tmp_path: Path):
    repository = tmp_path / "triton"
    [folder] = write_triton_repository(version_dir, repository, "m", variants=["onnx-fp32"], max_batch_size=8)
    assert _config(folder).max_batch_size == 8
    with pytest.raises(FileExistsError, match="m_onnx_fp32: already exists; pass --overwrite"):
        write_triton_repository(version_dir, repository, "m")
    assert sorted(p.name for p in repository.iterdir()) == ["m_onnx_fp32"]  # the refusal wrote nothing
    written = write_triton_repository(version_dir, repository, "m", overwrite=True)
    assert [_config(p).max_batch_size for p in written] == [32, 32, 16]
    with pytest.raises(ValueError, match="'onnx-int8' is not a verified variant"):
        write_triton_repository(version_dir, repository, "m", variants=["onnx-int8"], overwrite=True)


def test_no_verified_variants_is_an_error(tmp_path: Path):
    version = tmp_path / "exports" / "m" / "1"
    version.mkdir(parents=True)
    with pytest.raises(ValueError, match=rf"{version}: no verified ONNX, OpenVINO or TensorRT variant"):
        write_triton_repository(version, tmp_path / "triton", "m")
    assert not (tmp_path / "triton").exists()


def test_config_without_batching_and_other_task_shapes():
    manifest = {**_manifest("onnx", "fp32", "model.onnx"),
                "outputs": [{"name": "logits", "dtype": "float32", "shape": [-1, -1, 5]},
                            {"name": "predictions", "dtype": "float32", "shape": [-1]}]}
    config = text_format.Parse(model_config("t", manifest, "x", 4, 0, Path("x")), mc.ModelConfig())
    assert [(list(o.dims), list(o.reshape.shape), o.HasField("reshape")) for o in config.output] == [
        ([-1, 5], [], False), ([1], [], True)]  # a [batch] output is dims [1] reshaped to a scalar
    unbatched = text_format.Parse(model_config("t", manifest, "x", 0, 0, Path("x")), mc.ModelConfig())
    assert unbatched.max_batch_size == 0 and not unbatched.HasField("dynamic_batching")
    assert [list(i.dims) for i in unbatched.input] == [[-1, -1]] * 3
