"""--monitoring_config_file with prometheus_config enabled: /monitoring/prometheus/metrics serves TF Serving's
metric names, and the request counters rise with gRPC and REST traffic."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import requests
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from tests.serving.server_harness import HALF_PLUS_TWO, rest_url, start_server, stubs, tfs_testdata
from tests.serving.test_metrics import parse_prometheus


def sample(text: str, name: str, **labels: str) -> float:
    """One sample's value by its exact name and label set (in any label order); 0 if absent."""
    families = parse_prometheus(text)
    family = families.get(name) or families.get(re.sub(r"_(count|sum|bucket)$", "", name), {"samples": []})
    return next((value for sample_name, found, value in family["samples"] if sample_name == name and found == labels),
                0)


def request_count(text: str, model: str, status: str) -> int:
    return int(sample(text, ":tensorflow:serving:request_count", model_name=model, status=status))


def test_prometheus_counters_rise_with_traffic():
    server = start_server(model_base_path=str(tfs_testdata(HALF_PLUS_TWO)),
                          monitoring_config_file=str(tfs_testdata("monitoring_config.txt")))
    stub, _, channel = stubs(server)
    metrics_url = rest_url(server, "/monitoring/prometheus/metrics")
    try:
        before = requests.get(metrics_url, timeout=10)
        assert before.status_code == 200 and before.headers["Content-Type"].startswith("text/plain")
        assert ":tensorflow:cc:saved_model:load_attempt_count" in before.text
        for _ in range(3):
            requests.post(rest_url(server, "/v1/models/default:predict"), json={"instances": [1.0]}, timeout=10)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "default"
        request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([1.0], np.float32)))
        for _ in range(2):
            stub.Predict(request, timeout=10)
        requests.post(rest_url(server, "/v1/models/default:predict"), json={"instances": ["a"]}, timeout=10)
        after = requests.get(metrics_url, timeout=10).text
    finally:
        channel.close()
        server.stop(grace=1)
    assert request_count(after, "default", "OK") == request_count(before.text, "default", "OK") + 5
    assert request_count(after, "default", "INVALID_ARGUMENT") == 1
    assert sample(after, ":tensorflow:serving:request_latency_count", model_name="default", API="Predict",
                  entrypoint="GRPC") == 2


def test_batching_metrics_count_model_runs_and_queued_tasks(tmp_path):
    # A batch waits up to 2 s to fill 8 slots: 8 concurrent requests run as fewer model runs than requests.
    params = tmp_path / "batching.txt"
    params.write_text("max_batch_size { value: 8 }\nbatch_timeout_micros { value: 2000000 }\n"
                      "num_batch_threads { value: 1 }\n")
    server = start_server(model_base_path=str(tfs_testdata(HALF_PLUS_TWO)), enable_batching=True,
                          batching_parameters_file=str(params),
                          monitoring_config_file=str(tfs_testdata("monitoring_config.txt")))
    stub, _, channel = stubs(server)
    metrics_url = rest_url(server, "/monitoring/prometheus/metrics")
    runs = ":tensorflow:serving:batching_session:wrapped_run_count"
    queued = ":tensorflow:serving:batching_session:queuing_latency_count"
    try:
        before = requests.get(metrics_url, timeout=10).text
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "default"
        request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([1.0], np.float32)))
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: stub.Predict(request, timeout=30), range(8)))
        after = requests.get(metrics_url, timeout=10).text
    finally:
        channel.close()
        server.stop(grace=1)
    assert all(tf.make_ndarray(a.outputs["y"]).tolist() == [2.5] for a in answers)
    ran = sample(after, runs) - sample(before, runs)
    assert 1 <= ran < 8  # batched: fewer model runs than requests
    assert sample(after, queued, thread_pool_name="batch_threads") - \
        sample(before, queued, thread_pool_name="batch_threads") == 8
    assert parse_prometheus(after)[runs]["type"] == "counter"


def test_metrics_are_not_served_without_monitoring_config():
    server = start_server(model_base_path=str(tfs_testdata(HALF_PLUS_TWO)))
    try:
        assert requests.get(rest_url(server, "/monitoring/prometheus/metrics"), timeout=10).status_code == 404
    finally:
        server.stop(grace=1)
