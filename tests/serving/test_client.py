"""`ServingClient` over gRPC and REST against a real `tfpipe serve` core on 127.0.0.1: TF Serving's test models
(Predict, Classify, Regress, metadata, status, versions and labels), raw-text models and a tfpipe export (the
same answers over both transports and offline), errors with TF Serving's codes, retries while a server starts,
timeouts, message size limits, mTLS, and the serving/ config files and example clients."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
import requests

from tests.serving import raw_text_models
from tests.serving.certs import make_certs
from tests.serving.server_harness import (
    HALF_PLUS_TWO,
    TWO_VERSIONS,
    free_port,
    start_server,
    tfs_testdata,
    write_config,
    write_slow_model,
)
from tfpipe.serving.client import ServingClient, ServingClientError
from tfpipe.serving.offline import predict_file
from tfpipe.serving.outputs import output_rows

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("client")
    write_slow_model(tmp / "slow")
    raw_text_models.save("classifier", tmp / "sst2" / "1")
    raw_text_models.save("tagger", tmp / "tagger" / "1")
    config = write_config(tmp / "models.config", f"""
model_config_list {{
  config {{ name: "default" base_path: "{tfs_testdata(HALF_PLUS_TWO)}" model_platform: "tensorflow" }}
  config {{
    name: "two" base_path: "{tfs_testdata(TWO_VERSIONS)}" model_platform: "tensorflow"
    model_version_policy {{ all {{}} }}
    version_labels {{ key: "stable" value: 123 }}
  }}
  config {{ name: "slow" base_path: "{tmp / 'slow'}" model_platform: "tensorflow" }}
  config {{ name: "sst2" base_path: "{tmp / 'sst2'}" model_platform: "tensorflow" }}
  config {{ name: "tagger" base_path: "{tmp / 'tagger'}" model_platform: "tensorflow" }}
}}
""")
    server = start_server(model_config_file=str(config))
    yield server
    server.stop(grace=1)


@pytest.fixture(scope="module", params=["grpc", "rest"])
def client(request, server):
    target = f"127.0.0.1:{server.grpc_port}" if request.param == "grpc" else f"http://127.0.0.1:{server.rest_port}"
    with ServingClient(target, model="default", timeout=10, retries=1, backoff=0.05) as client:
        yield client


def test_predict_half_plus_two(client):
    outputs = client.predict(inputs={"x": np.array([[1.0], [2.0], [5.0]], np.float32)})
    assert list(outputs) == ["y"]
    np.testing.assert_allclose(outputs["y"], [[2.5], [3.0], [4.5]])


def test_classify_and_regress_on_examples(client):
    assert client.classify(examples=[{"x": 2.0}], signature="classify_x_to_y") == [[("", 3.0)]]
    assert client.regress(examples=[{"x": 2.0}, {"x": 4.0}], signature="regress_x_to_y") == [3.0, 4.0]


def test_metadata_matches_tf_serving(client):
    # The same JSON over both transports, equal to TF Serving's own expected metadata file.
    expected = json.loads(tfs_testdata("half_plus_two_model_metadata.json").read_text())
    assert client.metadata() == expected


def test_status_versions_and_labels(client):
    assert client.status() == [{"version": "123", "state": "AVAILABLE",
                                "status": {"error_code": "OK", "error_message": ""}}]
    assert sorted(s["version"] for s in client.status(model="two")) == ["123", "124"]
    x = {"x": np.array([[2.0]], np.float32)}
    assert client.predict(inputs=x, model="two", version=124)["y"].tolist() == [[3.0]]
    assert client.predict(inputs=x, model="two", label="stable")["y"].tolist() == [[3.0]]
    with pytest.raises(ValueError, match="a version or a label, not both"):
        client.predict(inputs=x, model="two", version=123, label="stable")


def test_raw_text_predict_and_classify(client):
    outputs = client.predict(["good film", "bad bad film"], model="sst2")
    assert outputs["labels"].tolist() == ["pos", "neg"]  # strings come back as str over both transports
    assert outputs["label_ids"].tolist() == [1, 0]
    np.testing.assert_allclose(outputs["probabilities"].sum(axis=1), [1.0, 1.0], rtol=1e-6)
    assert list(client.predict(["good"], model="sst2", output_filter=["labels"])) == ["labels"]
    (classes,) = client.classify(["good"], model="sst2")
    assert [label for label, _ in classes] == ["neg", "pos"] and classes[1][1] > classes[0][1]


def test_string_matrices_and_rows(client):
    texts = ["John lives in Paris", "hello"]
    outputs = client.predict(texts, model="tagger")
    assert outputs["words"].shape == (2, 4) and outputs["words"][1].tolist() == ["hello", "", "", ""]
    rows = output_rows(outputs, texts)
    assert rows[0]["tags"] == ["B-LOC", "O", "O", "B-LOC"]
    assert rows[1] == {"text": "hello", "num_words": 1, "tags": ["O"], "words": ["hello"]}


@pytest.mark.parametrize("call, code, http, message", [
    (lambda c: c.predict(inputs={"x": [[1.0]]}, model="nope"), grpc.StatusCode.NOT_FOUND, 404,
     "Servable not found for request"),
    (lambda c: c.predict(inputs={"x": [[1.0]]}, version=7), grpc.StatusCode.NOT_FOUND, 404,
     "Servable not found for request"),
    (lambda c: c.predict(inputs={"x": [[1.0]]}, signature="nope"), grpc.StatusCode.FAILED_PRECONDITION, 400,
     # REST looks the signature up first, with TF Serving's http_rest_api_handler wording.
     'Serving signature (key|name:) "nope" not found'),
    (lambda c: c.predict(inputs={"z": [[1.0]]}), grpc.StatusCode.INVALID_ARGUMENT, 400,
     # gRPC checks the fed names; TF Serving's REST layer looks up each signature input in the JSON.
     "input tensor alias not found in signature: z|Missing named input: x"),
])
def test_errors_carry_code_and_message(client, call, code, http, message):
    with pytest.raises(ServingClientError) as raised:
        call(client)
    assert re.search(message, raised.value.message)
    assert raised.value.http_status == http
    # Over REST the gRPC code is inferred from the HTTP status, and 400 stands for several codes.
    assert raised.value.code == code or (client.transport == "rest" and http == 400)
    assert str(raised.value).startswith(raised.value.code.name)


def test_retries_until_a_late_server_is_up(tmp_path):
    grpc_port, rest_port = free_port(), free_port()
    started = []

    def start_late():
        time.sleep(0.8)
        started.append(start_server(port=grpc_port, rest_api_port=rest_port,
                                    model_base_path=str(tfs_testdata(HALF_PLUS_TWO))))

    thread = threading.Thread(target=start_late)
    thread.start()
    try:
        for target in (f"127.0.0.1:{grpc_port}", f"http://127.0.0.1:{rest_port}"):
            with ServingClient(target, model="default", retries=12, backoff=0.1, timeout=5) as client:
                assert client.status()[0]["state"] == "AVAILABLE"
    finally:
        thread.join()
        for server in started:
            server.stop(grace=1)


def test_unavailable_after_the_last_retry():
    port = free_port()  # nothing listens there
    for target in (f"127.0.0.1:{port}", f"http://127.0.0.1:{port}"):
        with ServingClient(target, model="m", retries=1, backoff=0.01, timeout=2) as client:
            with pytest.raises(ServingClientError) as raised:
                client.status()
            assert raised.value.code == grpc.StatusCode.UNAVAILABLE


def test_timeout_is_deadline_exceeded(server):
    for target in (f"127.0.0.1:{server.grpc_port}", f"http://127.0.0.1:{server.rest_port}"):
        with ServingClient(target, model="slow", timeout=0.3, retries=0) as client:
            with pytest.raises(ServingClientError) as raised:
                client.predict(inputs={"ms": np.array([1000], np.int64)})
            assert raised.value.code == grpc.StatusCode.DEADLINE_EXCEEDED, target
            assert "0.3" in raised.value.message or client.transport == "grpc"
        with ServingClient(target, model="slow", timeout=10) as client:  # the server still answers
            assert client.predict(inputs={"ms": np.array([0], np.int64)})["y"].tolist() == [0]


def test_max_message_size(server):
    big = {"x": np.ones((20_000, 1), np.float32)}
    for target in (f"127.0.0.1:{server.grpc_port}", f"http://127.0.0.1:{server.rest_port}"):
        with ServingClient(target, model="default", max_message_bytes=10_000, retries=0) as client:
            with pytest.raises(ServingClientError) as raised:
                client.predict(inputs=big)
            assert raised.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED, target
        with ServingClient(target, model="default") as client:  # the default limit lets large batches pass
            assert client.predict(inputs=big)["y"].shape == (20_000, 1)


def test_mutual_tls(tmp_path):
    certs = make_certs(tmp_path / "certs")
    ssl = write_config(tmp_path / "ssl.config", f"""
server_key: {json.dumps(certs.server_key)}
server_cert: {json.dumps(certs.server_cert)}
custom_ca: {json.dumps(certs.ca_cert)}
client_verify: true
""")
    server = start_server(ssl_config_file=str(ssl), rest_api_port=0, model_base_path=str(tfs_testdata(HALF_PLUS_TWO)))
    target, folder = f"localhost:{server.grpc_port}", certs.folder
    try:
        with ServingClient(target, model="default", root_certificates=folder / "ca.crt",
                           client_certificate=folder / "client.crt", client_key=folder / "client.key") as client:
            assert client.status()[0]["state"] == "AVAILABLE"
        with ServingClient(target, model="default", root_certificates=folder / "ca.crt",
                           client_certificate=folder / "other_client.crt", client_key=folder / "other_client.key",
                           retries=0, timeout=3) as client:
            with pytest.raises(ServingClientError) as raised:
                client.status()
            assert raised.value.code == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop(grace=1)
    with pytest.raises(ValueError, match="go together"):
        ServingClient(target, client_certificate=folder / "client.crt")


def test_tfpipe_export_same_answers_over_grpc_rest_and_offline(tiny_exports, tmp_path):
    base, name, version_dir = tiny_exports("classification")
    texts = ["the movie was good", "a bad movie", "the cat sat on the mat"]
    data = tmp_path / "in.tsv"  # the run's own column name, which offline prediction takes from the export
    data.write_text("sentence\n" + "".join(t + "\n" for t in texts))
    predict_file(version_dir, data, tmp_path / "out.jsonl", progress=False)
    offline = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    server = start_server(model_name=name, model_base_path=str(base / name))
    try:
        for target in (f"127.0.0.1:{server.grpc_port}", f"http://127.0.0.1:{server.rest_port}"):
            with ServingClient(target, model=name) as client:
                outputs = client.predict(texts)
                assert outputs["labels"].tolist() == [row["labels"] for row in offline], target
                np.testing.assert_allclose(outputs["probabilities"], [row["probabilities"] for row in offline],
                                           atol=1e-5)
                classes = client.classify(texts)
                assert [max(c, key=lambda pair: pair[1])[0] for c in classes] == outputs["labels"].tolist()
                assert client.status()[0]["version"] == version_dir.name
    finally:
        server.stop(grace=1)


@pytest.fixture
def sst2_base(tmp_path) -> Path:
    raw_text_models.save("classifier", tmp_path / "sst2" / "1")
    return tmp_path / "sst2"


def test_serving_batching_file_and_example_clients(sst2_base):
    """serving/batching_parameters.txt, as docker-compose passes it, on `tfpipe serve`; the example clients run."""
    server = start_server(model_name="sst2", model_base_path=str(sst2_base), enable_batching=True,
                          batching_parameters_file=str(REPO / "serving" / "batching_parameters.txt"))
    try:
        rest, grpc_target = f"http://127.0.0.1:{server.rest_port}", f"127.0.0.1:{server.grpc_port}"
        for target in (grpc_target, rest):
            with ServingClient(target, model="sst2") as client:
                assert client.predict(["good", "bad"])["labels"].tolist() == ["pos", "neg"]
        for script, target in (("grpc_predict.py", grpc_target), ("rest_predict.py", rest)):
            result = subprocess.run([sys.executable, str(REPO / "serving" / "clients" / script), target, "sst2",
                                     "a good film", "bad"], capture_output=True, text=True, timeout=120)
            assert result.returncode == 0, result.stderr
            lines = [line.split("\t") for line in result.stdout.splitlines()]
            assert [(line[0], line[2]) for line in lines] == [("pos", "a good film"), ("neg", "bad")], script
    finally:
        server.stop(grace=1)


def test_serving_monitoring_file_on_tfpipe_serve(sst2_base):
    """serving/monitoring.config on `tfpipe serve`: Prometheus text at the configured path, counting requests."""
    server = start_server(model_name="sst2", model_base_path=str(sst2_base),
                          monitoring_config_file=str(REPO / "serving" / "monitoring.config"))
    try:
        for target in (f"127.0.0.1:{server.grpc_port}", f"http://127.0.0.1:{server.rest_port}"):
            with ServingClient(target, model="sst2", retries=0) as client:
                assert client.predict(["good"])["labels"].tolist() == ["pos"]
        metrics = requests.get(f"http://127.0.0.1:{server.rest_port}/monitoring/prometheus/metrics", timeout=5)
        assert metrics.status_code == 200
        assert ":tensorflow:serving:request_count" in metrics.text
    finally:
        server.stop(grace=1)


def test_regress_and_pairs_on_tfpipe_exports(tiny_exports):
    base, name, _ = tiny_exports("regression")
    pair_base, pair_name, _ = tiny_exports("pair")
    config = write_config(base / "both.config", f"""
model_config_list {{
  config {{ name: "{name}" base_path: "{base / name}" model_platform: "tensorflow" }}
  config {{ name: "{pair_name}" base_path: "{pair_base / pair_name}" model_platform: "tensorflow" }}
}}
""")
    server = start_server(model_config_file=str(config))
    texts = ["good movie the cat", "bad movie the cat"]
    try:
        for target in (f"127.0.0.1:{server.grpc_port}", f"http://127.0.0.1:{server.rest_port}"):
            with ServingClient(target, model=name) as client:
                predictions = client.predict(texts)["predictions"]  # a lone output: named from the metadata
                assert predictions.shape == (2,) and predictions[0] > predictions[1], target
                np.testing.assert_allclose(client.regress(texts), predictions, atol=1e-5)
                pairs = client.predict(["the cat", "john"], ["the cat", "a dog"], model=pair_name)
                assert pairs["labels"].shape == (2,) and set(pairs["labels"].tolist()) <= {"0", "1"}
                with pytest.raises(ServingClientError) as raised:
                    client.predict(["the cat"], model=pair_name)  # the pair input is missing
                assert raised.value.http_status == 400
    finally:
        server.stop(grace=1)


def test_retries_ride_out_a_full_batch_queue(tmp_path):
    """A real UNAVAILABLE (HTTP 503): one batch thread busy with a slow request and one batch waiting, so a third
    request finds the queue full; with retries the client gets through once the queue drains."""
    write_slow_model(tmp_path / "slow")
    params = write_config(tmp_path / "batching.txt", "max_batch_size { value: 1 } batch_timeout_micros { value: 0 } "
                                                     "max_enqueued_batches { value: 1 } num_batch_threads { value: 1 }")
    server = start_server(model_name="slow", model_base_path=str(tmp_path / "slow"), enable_batching=True,
                          batching_parameters_file=str(params))
    slow = {"ms": np.array([1200], np.int64)}
    targets = (f"127.0.0.1:{server.grpc_port}", f"http://127.0.0.1:{server.rest_port}")
    try:
        for target in targets:
            # One running, one queued (retrying, should a slow start let it arrive before the first is running).
            busy = [threading.Thread(target=ServingClient(target, model="slow", backoff=0.05).predict,
                                     kwargs={"inputs": slow}) for _ in range(2)]
            for thread in busy:
                thread.start()
                time.sleep(0.3)
            with ServingClient(target, model="slow", retries=0) as client:
                with pytest.raises(ServingClientError) as raised:
                    client.predict(inputs={"ms": np.array([0], np.int64)})
                assert raised.value.code == grpc.StatusCode.UNAVAILABLE, target
                assert "queue" in raised.value.message and raised.value.http_status == 503
            with ServingClient(target, model="slow", retries=10, backoff=0.1) as client:
                assert client.predict(inputs={"ms": np.array([0], np.int64)})["y"].tolist() == [0]
            for thread in busy:
                thread.join()
    finally:
        server.stop(grace=1)
