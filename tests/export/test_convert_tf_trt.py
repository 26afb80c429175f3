"""TF-TRT on pip TensorFlow (no TensorRT since 2.18): the build check, and the one-line `ConversionUnavailable`
for a real SavedModel, after the argument checks."""

from __future__ import annotations

import pytest
import tensorflow as tf

from tests.conftest import shared_path
from tfpipe.export.convert.errors import ConversionUnavailable
from tfpipe.export.convert.tf_trt import convert_tf_trt, tensorrt_enabled

TF_VERSION = tuple(int(p) for p in tf.__version__.split(".")[:2])


@pytest.fixture
def half_plus_two():
    return shared_path("tf-serving-testdata", "saved_model_half_plus_two_tf2_cpu", "00000123")


def test_tensorrt_enabled_is_a_bool():
    assert isinstance(tensorrt_enabled(), bool)
    if TF_VERSION > (2, 17):  # pip TensorFlow after 2.17 is built without TensorRT
        assert tensorrt_enabled() is False


@pytest.mark.skipif(TF_VERSION <= (2, 17), reason="this TensorFlow may still be built with TensorRT")
def test_convert_is_one_line_unavailable(half_plus_two, tmp_path):
    output = tmp_path / "tf-trt-fp32"
    with pytest.raises(ConversionUnavailable) as info:
        convert_tf_trt(half_plus_two, output)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"TensorFlow {tf.__version__} is built without TensorRT")
    assert "--to tensorrt" in message and "TensorFlow ≤ 2.17" in message
    assert not output.exists()


def test_argument_checks_come_first(half_plus_two, tmp_path):
    with pytest.raises(ValueError, match="--precision: 'int8' is not one of fp32, fp16 for TF-TRT"):
        convert_tf_trt(half_plus_two, tmp_path / "out", precision="int8")
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}: no saved_model.pb"):
        convert_tf_trt(tmp_path, tmp_path / "out")
