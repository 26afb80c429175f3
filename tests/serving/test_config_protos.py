"""TF Serving's config text protos parse with our descriptors exactly as with tensorflow_model_server's."""

from __future__ import annotations

from pathlib import Path

import pytest
from tensorflow_serving.config import model_server_config_pb2

from tests.conftest import shared_path
from tfpipe.serving.config_protos import (
    BatchingParameters,
    MonitoringConfig,
    SSLConfig,
    parse_text_proto,
)


def test_tf_serving_batching_config_parses() -> None:
    params = parse_text_proto(shared_path("tf-serving-testdata", "batching_config.txt"), BatchingParameters)
    assert params.max_batch_size.value == 128
    assert params.HasField("batch_timeout_micros") and params.batch_timeout_micros.value == 0
    assert params.max_enqueued_batches.value == 1000000
    assert params.num_batch_threads.value == 8
    assert not params.HasField("enable_large_batch_splitting")


def test_tf_serving_monitoring_config_parses() -> None:
    config = parse_text_proto(shared_path("tf-serving-testdata", "monitoring_config.txt"), MonitoringConfig)
    assert config.prometheus_config.enable is True
    assert config.prometheus_config.path == "/monitoring/prometheus/metrics"


def test_model_server_config_parses_with_the_same_function() -> None:
    config = parse_text_proto(shared_path("tf-serving-testdata", "good_model_config.txt"),
                              model_server_config_pb2.ModelServerConfig)
    assert [c.name for c in config.model_config_list.config] == ["half_plus_two", "half_plus_three"]


def test_bad_model_config_fails_naming_file_and_reason() -> None:
    path = shared_path("tf-serving-testdata", "bad_model_config.txt")
    with pytest.raises(ValueError) as caught:
        parse_text_proto(path, model_server_config_pb2.ModelServerConfig)
    assert str(path) in str(caught.value)
    assert "improperly" in str(caught.value)


def test_missing_file_is_a_clear_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"cannot read tensorflow.serving.SSLConfig text proto .*nope.txt"):
        parse_text_proto(tmp_path / "nope.txt", SSLConfig)


def test_wrong_field_type_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "batching.txt"
    path.write_text('max_batch_size { value: "many" }\n')
    with pytest.raises(ValueError, match="batching.txt is not a valid tensorflow.serving.BatchingParameters"):
        parse_text_proto(path, BatchingParameters)


def test_ssl_config_fields_and_newer_batching_fields(tmp_path: Path) -> None:
    ssl = tmp_path / "ssl.txt"
    ssl.write_text('server_key: "KEY"\nserver_cert: "CERT"\ncustom_ca: "CA"\nclient_verify: true\n')
    config = parse_text_proto(ssl, SSLConfig)
    assert (config.server_key, config.server_cert, config.custom_ca, config.client_verify) == (
        "KEY", "CERT", "CA", True)
    batching = tmp_path / "batching.txt"
    batching.write_text("max_batch_size { value: 64 }\nenable_large_batch_splitting { value: true }\n"
                        "max_execution_batch_size { value: 16 }\nallowed_batch_sizes: 8\nallowed_batch_sizes: 64\n"
                        'thread_pool_name { value: "pool" }\npad_variable_length_inputs: true\n')
    params = parse_text_proto(batching, BatchingParameters)
    assert params.enable_large_batch_splitting.value is True
    assert params.max_execution_batch_size.value == 16
    assert list(params.allowed_batch_sizes) == [8, 64]


def test_messages_keep_tf_serving_names_and_round_trip() -> None:
    assert BatchingParameters.DESCRIPTOR.full_name == "tensorflow.serving.BatchingParameters"
    assert MonitoringConfig.DESCRIPTOR.full_name == "tensorflow.serving.MonitoringConfig"
    assert SSLConfig.DESCRIPTOR.fields_by_name["client_verify"].number == 4
    original = SSLConfig(server_key="k", client_verify=True)
    assert SSLConfig.FromString(original.SerializeToString()) == original
