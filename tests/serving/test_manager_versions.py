"""ModelManager on TF Serving's test models: version policies, labels, refcounted unloading and warm-up replay."""

from __future__ import annotations

import logging
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, prediction_log_pb2
from tensorflow_serving.config import file_system_storage_path_source_pb2, model_server_config_pb2

from tests.serving.server_harness import (
    HALF_PLUS_THREE,
    HALF_PLUS_TWO,
    TWO_VERSIONS,
    config_of,
    copy_versions,
    example,
    tfs_testdata,
)
from tfpipe.export.layout import WARMUP_PATH
from tfpipe.serving.errors import ServingError
from tfpipe.serving.manager import ManagerOptions, ModelManager, State

Policy = file_system_storage_path_source_pb2.FileSystemStoragePathSourceConfig.ServableVersionPolicy


def manager_for(config, **options) -> ModelManager:
    manager = ModelManager(ManagerOptions(poll_seconds=0, **options))
    manager.apply_config(config)
    return manager


def available(manager: ModelManager, name: str) -> list[int]:
    return sorted(v for v, s in manager.servable_states(name).items() if s == State.AVAILABLE)


@pytest.mark.parametrize("policy, versions", [
    (None, [124]),
    (Policy(latest=Policy.Latest(num_versions=2)), [123, 124]),
    (Policy(all=Policy.All()), [123, 124]),
    (Policy(specific=Policy.Specific(versions=[123])), [123]),
])
def test_version_policies(policy, versions):
    extra = {"model_version_policy": policy} if policy is not None else {}
    manager = manager_for(config_of(("two", tfs_testdata(TWO_VERSIONS)), **extra))
    try:
        assert available(manager, "two") == versions
        with manager.acquire(model_pb2.ModelSpec(name="two")) as servable:
            assert servable.version == max(versions)
    finally:
        manager.stop()


def test_labels_resolve_and_unknown_label_is_invalid_argument():
    config = config_of(("two", tfs_testdata(TWO_VERSIONS)), model_version_policy=Policy(all=Policy.All()),
                       version_labels={"stable": 123, "canary": 124})
    manager = manager_for(config)
    try:
        with manager.acquire(model_pb2.ModelSpec(name="two", version_label="stable")) as servable:
            assert servable.version == 123
        with pytest.raises(ServingError) as error:
            with manager.acquire(model_pb2.ModelSpec(name="two", version_label="beta")):
                pass
        assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert error.value.message == "Unrecognized servable version label: beta"
    finally:
        manager.stop()


def test_label_on_an_unavailable_version_is_refused_unless_allowed():
    config = config_of(("two", tfs_testdata(TWO_VERSIONS)), version_labels={"stable": 123})  # latest: 124 only
    with pytest.raises(ServingError) as error:
        manager_for(config)
    assert error.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "version 123 of model two, which is not currently available" in error.value.message
    manager_for(config, allow_labels_for_unavailable=True).stop()


def test_unload_waits_for_requests_in_flight():
    manager = manager_for(config_of(("default", tfs_testdata(HALF_PLUS_TWO))))
    spec = model_pb2.ModelSpec(name="default")
    with manager.acquire(spec) as servable:
        remover = threading.Thread(target=manager.apply_config, args=(model_server_config_pb2.ModelServerConfig(),))
        remover.start()
        deadline = time.monotonic() + 30
        while manager.servable_states("default")[123] != State.UNLOADING and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        assert remover.is_alive() and manager.servable_states("default")[123] == State.UNLOADING
        # the held servable still runs while its unload waits
        assert servable.run("serving_default", {"x": np.array([1.0], np.float32)}, ["y"])["y"].tolist() == [2.5]
        with pytest.raises(ServingError, match=r"Servable not found for request: Latest\(default\)"):
            with manager.acquire(spec):
                pass
    remover.join(timeout=10)
    assert manager.servable_states("default")[123] == State.END


def write_warmup(version_dir, records: list[prediction_log_pb2.PredictionLog]) -> None:
    path = version_dir / WARMUP_PATH
    path.parent.mkdir(exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            writer.write(record.SerializeToString())


def warmup_records() -> list[prediction_log_pb2.PredictionLog]:
    predict = prediction_log_pb2.PredictionLog()
    predict.predict_log.request.model_spec.name = "default"
    predict.predict_log.request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([1.0], np.float32)))
    classify = prediction_log_pb2.PredictionLog()
    classify.classify_log.request.model_spec.signature_name = "classify_x_to_y"
    classify.classify_log.request.input.example_list.examples.append(example(x=2.0))
    regress = prediction_log_pb2.PredictionLog()
    regress.regress_log.request.model_spec.signature_name = "regress_x_to_y"
    regress.regress_log.request.input.example_list.examples.append(example(x=2.0))
    return [predict, classify, regress]


def test_warmup_records_are_replayed_on_load(tmp_path, caplog):
    base = copy_versions(HALF_PLUS_TWO, tmp_path / "hp2")
    write_warmup(base / "123", warmup_records())
    with caplog.at_level(logging.INFO, logger="tfpipe.serving.warmup"):
        manager = manager_for(config_of(("default", base)), warmup_iterations=2)
    try:
        with manager.acquire(model_pb2.ModelSpec(name="default")) as servable:
            assert servable.warmup_records == 3
            assert servable.calls == 6  # 3 records x 2 iterations, before any request
        assert "Number of warmup records read: 3" in caplog.text
    finally:
        manager.stop()


def test_a_failing_warmup_record_fails_the_load(tmp_path):
    base = copy_versions(HALF_PLUS_TWO, tmp_path / "hp2")
    bad = prediction_log_pb2.PredictionLog()
    bad.predict_log.request.model_spec.signature_name = "nope"
    write_warmup(base / "123", [bad])
    with pytest.raises(ServingError, match="Failed to load version 123 of model default; request id ") as error:
        manager_for(config_of(("default", base)))
    assert error.value.detail.endswith('Serving signature key "nope" not found.')  # for the log, not the client


def test_warmup_can_be_disabled(tmp_path):
    base = copy_versions(HALF_PLUS_TWO, tmp_path / "hp2")
    write_warmup(base / "123", warmup_records())
    manager = manager_for(config_of(("default", base)), enable_warmup=False)
    try:
        with manager.acquire(model_pb2.ModelSpec(name="default")) as servable:
            assert servable.warmup_records == 0 and servable.calls == 0
    finally:
        manager.stop()


def test_a_moved_base_path_reloads_the_same_version_number():
    manager = manager_for(config_of(("default", tfs_testdata(HALF_PLUS_TWO))))
    try:
        manager.apply_config(config_of(("default", tfs_testdata(HALF_PLUS_THREE))))  # also version 123
        with manager.acquire(model_pb2.ModelSpec(name="default")) as servable:
            assert servable.path == tfs_testdata(HALF_PLUS_THREE, "00000123")
            assert servable.run("serving_default", {"x": np.array([2.0], np.float32)}, ["y"])["y"].tolist() == [4.0]
    finally:
        manager.stop()
