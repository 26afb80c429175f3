"""`tfpipe convert` on real tiny exports: ONNX and OpenVINO encoders for a single-text classifier, a pair classifier
and a token tagger match the SavedModel on every signature, int8 variants run and report accuracy, a failed check
keeps nothing, the version still loads as a SavedModel, and what this machine cannot do exits 2 with one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from tfpipe.cli.main import main
from tfpipe.export.convert import check
from tfpipe.export.convert.api import convert_export
from tfpipe.export.convert.errors import ConversionCheckError
from tfpipe.export.convert.manifest import choose_variant, read_manifest, speedup, verified_variants
from tfpipe.export.convert.runtime import ConvertedModel
from tfpipe.export.savedmodel_files import signature_summary

TASKS = ["classification", "pair", "token-classification"]
SIGNATURES = {"classification": {"serving_default", "classify", "predict_ids"},
              "pair": {"serving_default", "classify", "predict_ids"},
              "token-classification": {"serving_default", "predict_ids"}}


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_fp32_conversion_matches_the_savedmodel_on_every_signature(converted_exports, task, fmt):
    _, _, version = converted_exports(task)
    folder = version / "accelerated" / f"{fmt}-fp32"
    manifest = read_manifest(folder)
    assert manifest["verified"] and manifest["format"] == fmt and (folder / manifest["model_file"]).is_file()
    assert manifest["parity"]["max_abs_diff"] <= 1e-4 and manifest["parity"]["agreement"] == 1.0
    assert {key.split(".")[0] for key in manifest["parity"]["per_output"]} == SIGNATURES[task]
    assert set(manifest["speedup"]) == {"batch_1", "batch_32"} and all(manifest["converted_ms"].values())
    # Independently of the recorded figures: raw text (with pairs, and sentences longer than the model's
    # sequence length for the tagger) through both, now.
    texts = ["the cat sat on the mat", "John lives in New York", "", "good " * 40]
    pairs = ["a dog ran", "the city", "", "bad movie"] if task == "pair" else None
    saved = tf.saved_model.load(str(version))
    model = ConvertedModel(version, folder)
    inputs = {"text": tf.constant(texts)} | ({"text_pair": tf.constant(pairs)} if pairs else {})
    want = saved.signatures["serving_default"](**inputs)
    got = model.signatures["serving_default"](**inputs)
    assert set(got) == set(want)
    for key, value in want.items():
        if value.dtype.is_floating:
            np.testing.assert_allclose(got[key].numpy(), value.numpy(), atol=1e-4)
        else:
            np.testing.assert_array_equal(got[key].numpy(), value.numpy())


def test_int8_variants_run_and_report_accuracy(converted_exports, tiny_runs):
    _, _, version = converted_exports("classification")
    for variant in ("onnx-int8", "openvino-int8"):
        manifest = read_manifest(version / "accelerated" / variant)
        scored = manifest["accuracy"]
        assert manifest["verified"] and manifest["precision"] == "int8"
        assert scored["metric"] == "accuracy" and scored["records"] == 24
        assert 0.0 <= scored["converted"] <= 1.0 and scored["drop"] <= 1.0  # the check's default allowance
        assert manifest["parity"]["agreement"] >= 0.8
    graph = (version / "accelerated" / "onnx-int8" / "model.onnx").read_bytes()
    assert b"DynamicQuantizeLinear" in graph and b"MatMulInteger" in graph


def test_the_version_still_loads_as_the_same_savedmodel(converted_exports, tiny_exports):
    _, _, version = converted_exports("classification")
    _, _, original = tiny_exports("classification")
    assert signature_summary(version) == signature_summary(original)
    loaded = tf.saved_model.load(str(version))
    assert set(loaded.signatures) == SIGNATURES["classification"]
    assert [folder.name for folder, _ in verified_variants(version)] == [
        "onnx-fp32", "onnx-int8", "openvino-fp32", "openvino-int8"]


def test_backend_choice_follows_the_manifests(converted_exports):
    _, _, version = converted_exports("classification")
    assert choose_variant(version, "tensorflow") is None
    folder, manifest = choose_variant(version, "openvino")
    assert manifest["runtime"] == "openvino"
    best = max(verified_variants(version), key=lambda v: speedup(v[1]))
    auto = choose_variant(version, "auto")
    assert auto is None if speedup(best[1]) <= 1.0 else auto[0] == best[0]


def test_timing_runs_at_the_exports_own_length_when_it_is_under_128(converted_exports):
    # A tagger exported at max_seq_length 16: ids of length 128 may exceed a small model's position embeddings.
    _, _, version = converted_exports("token-classification")
    for _, manifest in verified_variants(version):
        assert manifest["timed_sequence_length"] == 16 and all(manifest["speedup"].values())


def test_speedup_is_read_at_the_batch_size_the_server_runs():
    # Fast alone, slow in a batch: a batching server must not pick this variant for its batch-1 figure.
    manifest = {"speedup": {"batch_1": 1.5, "batch_32": 0.7}}
    assert speedup(manifest, 1) == 1.5 and speedup(manifest, 32) == 0.7
    assert speedup(manifest, 64) == 0.7 and speedup(manifest, 2) == 1.5
    assert speedup(manifest, 5) == 1.5 and speedup(manifest, 6) == 0.7  # nearest on a log scale (sqrt 32 = 5.66)
    assert abs(speedup(manifest) - (1.5 * 0.7) ** 0.5) < 1e-12
    assert speedup({}, 1) == 0.0


def test_a_failed_check_keeps_nothing(converted_exports, monkeypatch, tmp_path):
    _, _, version = converted_exports("classification")
    output = tmp_path / "strict"
    with pytest.raises(ConversionCheckError, match="agree on"):
        convert_export(version, "onnx", output, min_agreement=1.01, timing_repeats=0, log=lambda _: None)
    with pytest.raises(ConversionCheckError, match="agree on"):  # a model file: neither it nor its manifest
        convert_export(version, "onnx", tmp_path / "m.onnx", min_agreement=1.01, timing_repeats=0,
                       log=lambda _: None)
    monkeypatch.setattr(check, "FP32_TOLERANCE", -1.0)
    with pytest.raises(ConversionCheckError, match="max abs diff"):
        convert_export(version, "openvino", output, timing_repeats=0, log=lambda _: None)
    assert list(tmp_path.iterdir()) == []  # neither the output nor a temporary folder


def test_cli_writes_a_manifest_and_never_overwrites(converted_exports, tmp_path, capsys):
    _, _, version = converted_exports("pair")
    output = tmp_path / "onnx-opt"
    args = ["convert", "--to", "onnx", "--export-dir", str(version), "--output", str(output), "--optimize",
            "--timing-repeats", "0"]
    assert main(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["output"] == str(output) and printed["parity"]["max_abs_diff"] <= 1e-4
    assert read_manifest(output)["optimized"] is True
    assert main(args) == 1
    assert "already exists" in capsys.readouterr().err


def test_output_file_keeps_just_the_checked_onnx_model_and_its_manifest(converted_exports, tmp_path):
    import onnxruntime

    _, _, version = converted_exports("classification")
    target = tmp_path / "encoder.onnx"
    result = convert_export(version, "onnx", target, timing_repeats=0, log=lambda _: None)
    assert result.path == target
    assert sorted(p.name for p in tmp_path.iterdir()) == ["encoder.onnx", "encoder.onnx.manifest.json"]
    manifest = json.loads((tmp_path / "encoder.onnx.manifest.json").read_text())
    assert manifest["verified"] is True and manifest["model_file"] == "encoder.onnx"
    assert manifest["parity"]["max_abs_diff"] <= 1e-4
    ids = np.array([[2, 5, 6, 3]], np.int32)
    feed = {"input_word_ids": ids, "input_mask": np.ones_like(ids), "input_type_ids": np.zeros_like(ids)}
    session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in session.get_outputs()], session.run(None, feed)))
    expected = tf.saved_model.load(str(version)).signatures["predict_ids"](**{k: tf.constant(v) for k, v in
                                                                             feed.items()})
    np.testing.assert_allclose(got["logits"], expected["logits"].numpy(), atol=1e-4)
    with pytest.raises(FileExistsError):  # never overwritten without --overwrite
        convert_export(version, "onnx", target, timing_repeats=0, log=lambda _: None)


def _one_line_error(capsys, args: list[str]) -> str:
    assert main(args) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("tfpipe convert")]
    assert len(lines) == 1 and "Traceback" not in captured.err
    return lines[0]


def test_missing_tensorrt_exits_2_with_one_line(converted_exports, capsys):
    pytest.importorskip("onnx")
    if _has("tensorrt"):
        pytest.skip("tensorrt is installed here")
    _, _, version = converted_exports("classification")
    line = _one_line_error(capsys, ["convert", "--to", "tensorrt", "--export-dir", str(version)])
    assert "'tensorrt'" in line and "pip install 'tfpipe[tensorrt]'" in line


def test_tensorflow_without_tensorrt_exits_2_with_one_line(converted_exports, capsys):
    from tfpipe.export.convert.tf_trt import tensorrt_enabled

    if tensorrt_enabled():
        pytest.skip("this TensorFlow has TensorRT")
    _, _, version = converted_exports("classification")
    line = _one_line_error(capsys, ["convert", "--to", "tf-trt", "--export-dir", str(version)])
    assert f"TensorFlow {tf.__version__} is built without TensorRT" in line


def test_bf16_on_a_cpu_without_it_exits_2_before_any_work(converted_exports, capsys):
    from tfpipe.export.convert.openvino_export import cpu_capabilities

    if "BF16" in cpu_capabilities():
        pytest.skip("this CPU has bf16")
    _, _, version = converted_exports("classification")
    line = _one_line_error(capsys, ["convert", "--to", "openvino", "--precision", "bf16", "--export-dir",
                                    str(version)])
    assert "no bf16 support" in line
    assert not (version / "accelerated" / "openvino-bf16").exists()


def test_bf16_on_a_cpu_with_it_is_checked_as_a_reduced_precision(converted_exports, tmp_path):
    from tfpipe.export.convert.openvino_export import cpu_capabilities

    if "BF16" not in cpu_capabilities():
        pytest.skip("this CPU has no bf16 (AVX-512-BF16 or AMX)")
    _, _, version = converted_exports("classification")
    result = convert_export(version, "openvino", tmp_path / "bf16", precision="bf16", timing_repeats=1,
                            log=lambda _: None)
    manifest = read_manifest(result.path)
    assert manifest["verified"] and manifest["inference_precision"] == "bf16"
    # bf16 keeps 8 bits of mantissa: labels agree (the reduced-precision rule), logits only roughly.
    assert manifest["parity"]["agreement"] >= 0.8 and 0 < manifest["parity"]["max_abs_diff"] < 0.5
    assert manifest["graph_rewrites"]["layer_norm"] > 0


def test_triton_repository_of_the_verified_conversions(converted_exports, tmp_path, capsys):
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    _, name, version = converted_exports("token-classification")
    repo = tmp_path / "repo"
    assert main(["convert", "--to", "triton", "--export-dir", str(version), "--output", str(repo)]) == 0
    models = sorted(p.name for p in repo.iterdir())
    assert models == [f"{name}_onnx_fp32", f"{name}_openvino_fp32"]
    config = text_format.Parse((repo / models[0] / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert config.platform == "onnxruntime_onnx" and config.max_batch_size == 32
    assert [i.name for i in config.input] == ["input_word_ids", "input_mask", "input_type_ids"]
    labels = json.loads((version / "assets.extra" / "tfpipe_metadata.json").read_text())["labels"]
    assert list(config.output[0].dims) == [-1, len(labels)]
    assert config.HasField("dynamic_batching")


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
