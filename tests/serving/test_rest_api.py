"""TF Serving's REST API over real HTTP on its own test models: row and columnar predict, b64 and plain strings,
classify/regress, status, metadata equal to TF Serving's expected JSON, labels, large bodies and the timeout."""

from __future__ import annotations

import base64
import json

import pytest
import requests

from tests.serving.server_harness import (
    example,
    multi_model_config,
    rest_url,
    start_server,
    tfs_testdata,
    write_slow_model,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_server(model_config_file=str(multi_model_config(tmp_path_factory.mktemp("rest"))))
    yield server
    server.stop(grace=1)


def post(server, path: str, body) -> requests.Response:
    data = body if isinstance(body, bytes) else json.dumps(body)
    return requests.post(rest_url(server, path), data=data, timeout=60)


def test_row_predict(server):
    response = post(server, "/v1/models/default:predict", {"instances": [2.0, 3.0, 4.0]})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"predictions": [3.0, 3.5, 4.0]}


def test_columnar_predict(server):
    response = post(server, "/v1/models/default:predict", {"inputs": {"x": [[1.0], [2.0], [5.0]]}})
    assert response.json() == {"outputs": [[2.5], [3.0], [4.5]]}
    plain = post(server, "/v1/models/default:predict", {"inputs": [1.0, 2.0]})
    assert plain.json() == {"outputs": [2.5, 3.0]}


def test_named_row_instances_and_signature_name(server):
    body = {"signature_name": "regress_x2_to_y3", "instances": [{"inputs": [1.0]}, {"inputs": [3.0]}]}
    assert post(server, "/v1/models/default:predict", body).json() == {"predictions": [[3.5], [4.5]]}


def test_versions_and_labels_in_the_path(server):
    body = {"instances": [[1.0]]}
    assert post(server, "/v1/models/two/versions/123:predict", body).json() == {"predictions": [[2.5]]}
    assert post(server, "/v1/models/two/labels/canary:predict", body).status_code == 200
    missing = post(server, "/v1/models/two/versions/7:predict", body)
    assert missing.status_code == 404
    assert missing.json() == {"error": "Servable not found for request: Specific(two, 7)"}


def test_b64_and_plain_string_inputs_reach_a_string_signature(server):
    serialized = example(x=2.0).SerializeToString()
    b64 = {"signature_name": "classify_x_to_y", "instances": [{"b64": base64.b64encode(serialized).decode()}]}
    assert post(server, "/v1/models/default:predict", b64).json() == {"predictions": [[3.0]]}
    assert max(serialized) < 0x80  # plain JSON strings carry these bytes unchanged
    plain = {"signature_name": "classify_x_to_y", "inputs": [serialized.decode("ascii")]}
    assert post(server, "/v1/models/default:predict", plain).json() == {"outputs": [[3.0]]}


def test_classify_and_regress(server):
    body = {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}, {"x": 4.0}]}
    assert post(server, "/v1/models/default:classify", body).json() == {"results": [[["", 3.0]], [["", 4.0]]]}
    body = {"signature_name": "regress_x_to_y", "context": {"x": 6.0}, "examples": [{}]}
    assert post(server, "/v1/models/default:regress", body).json() == {"results": [5.0]}


def test_model_status(server):
    response = requests.get(rest_url(server, "/v1/models/default"), timeout=10)
    assert response.json() == {"model_version_status": [
        {"version": "123", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
    assert requests.get(rest_url(server, "/v1/models/two/versions/124"), timeout=10).json()[
        "model_version_status"][0]["version"] == "124"
    assert requests.get(rest_url(server, "/v1/models/nope"), timeout=10).status_code == 404


def test_metadata_equals_tf_servings_expected_json(server):
    expected = json.loads(tfs_testdata("half_plus_two_model_metadata.json").read_text())
    assert requests.get(rest_url(server, "/v1/models/default/metadata"), timeout=10).json() == expected


def test_two_versions_metadata_equals_tf_servings_expected_json(server):
    expected = json.loads(tfs_testdata("saved_model_half_plus_two_2_versions_metadata.json").read_text())
    expected["model_spec"]["name"] = "two"  # served here under a short name
    got = requests.get(rest_url(server, "/v1/models/two/versions/123/metadata"), timeout=10).json()
    assert got == expected


def test_tf2_metadata_hides_the_init_op_and_keeps_declared_shapes(server):
    got = requests.get(rest_url(server, "/v1/models/tf2/metadata"), timeout=10).json()
    signatures = got["metadata"]["signature_def"]["signature_def"]
    assert "__saved_model_init_op" not in signatures
    assert signatures["serving_default"]["inputs"]["x"]["tensor_shape"]["dim"] == [{"size": "1", "name": ""}]


def test_large_batch_passes(server):
    rows = [[float(i % 7)] for i in range(200_000)]  # ~2 MB of JSON; TF Serving's limit is ~2 GB
    response = post(server, "/v1/models/default:predict", {"instances": rows})
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    assert len(predictions) == 200_000 and predictions[3] == [3.5]


def test_request_over_the_timeout_is_deadline_exceeded(tmp_path):
    base = tmp_path / "slow"
    write_slow_model(base)
    server = start_server(model_name="slow", model_base_path=str(base), rest_api_timeout_in_ms=500)
    try:
        response = post(server, "/v1/models/slow:predict", {"instances": [1500]})
        assert response.status_code == 504
        assert response.json()["error"] == ("Deadline exceeded: the request took longer than "
                                            "--rest_api_timeout_in_ms=500")
        # the server still answers (status needs no model run)
        assert requests.get(rest_url(server, "/v1/models/slow"), timeout=10).status_code == 200
    finally:
        server.stop(grace=5)
