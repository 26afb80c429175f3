"""String tensors end to end on SavedModels shaped like tfpipe exports (raw `text` in): REST plain strings and
{"b64": ...}, gRPC DT_STRING, Classify with string classes, two string inputs, and [batch, words] string outputs."""

from __future__ import annotations

import base64

import numpy as np
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import classification_pb2, predict_pb2

from tests.serving import raw_text_models
from tests.serving.server_harness import example, rest_url, start_server, stubs, write_config


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw")
    for kind in ("classifier", "pair-regressor", "tagger"):
        raw_text_models.save(kind, root / kind / "1")
    entries = "".join(f'config {{ name: "{k}" base_path: "{root / k}" model_platform: "tensorflow" }}\n'
                      for k in ("classifier", "pair-regressor", "tagger"))
    server = start_server(model_config_file=str(write_config(root / "models.config",
                                                             f"model_config_list {{\n{entries}}}\n")))
    yield server
    server.stop(grace=1)


def post(server, path, body):
    return requests.post(rest_url(server, path), json=body, timeout=30)


def test_rest_row_plain_strings(server):
    answer = post(server, "/v1/models/classifier:predict", {"instances": ["a good movie", "bad bad film"]}).json()
    assert [p["labels"] for p in answer["predictions"]] == ["pos", "neg"]
    assert [p["label_ids"] for p in answer["predictions"]] == [1, 0]
    assert answer["predictions"][0]["probabilities"][1] > 0.5


def test_rest_columnar_b64_strings(server):
    texts = [{"b64": base64.b64encode(t.encode()).decode()} for t in ("good", "bad")]
    answer = post(server, "/v1/models/classifier:predict", {"inputs": {"text": texts}}).json()
    assert answer["outputs"]["labels"] == ["pos", "neg"]


def test_rest_classify_returns_string_classes(server):
    answer = post(server, "/v1/models/classifier:classify", {"signature_name": "classify",
                                                             "examples": [{"text": "so good"}]}).json()
    (classes,) = answer["results"]
    assert [label for label, _ in classes] == ["neg", "pos"]
    assert classes[1][1] > classes[0][1]


def test_grpc_string_tensors(server):
    stub, _, channel = stubs(server)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "classifier"
    request.inputs["text"].CopyFrom(tf.make_tensor_proto(np.array([b"good good", b"bad"], dtype=object)))
    response = stub.Predict(request, timeout=10)
    assert list(response.outputs["labels"].string_val) == [b"pos", b"neg"]
    classify = classification_pb2.ClassificationRequest()
    classify.model_spec.name, classify.model_spec.signature_name = "classifier", "classify"
    classify.input.example_list.examples.append(example(text=b"good"))
    result = stub.Classify(classify, timeout=10).result.classifications[0]
    assert [c.label for c in result.classes] == ["neg", "pos"]
    channel.close()


def test_two_string_inputs_row_and_columnar(server):
    rows = post(server, "/v1/models/pair-regressor:predict",
                {"instances": [{"text": "a b c", "text_pair": "a"}, {"text": "a", "text_pair": "a b"}]}).json()
    assert rows == {"predictions": [2.0, -1.0]}
    columns = post(server, "/v1/models/pair-regressor:predict", {"inputs": {"text": ["a b"], "text_pair": ["a"]}})
    assert columns.json() == {"outputs": [1.0]}
    plain = post(server, "/v1/models/pair-regressor:predict", {"instances": ["a b"]})
    assert plain.status_code == 400
    assert plain.json()["error"] == ("instances is a plain list, but expecting list of objects as multiple input "
                                     "tensors required as per tensorinfo_map")


def test_string_matrix_outputs(server):
    answer = post(server, "/v1/models/tagger:predict", {"instances": ["John lives in York", "hi"]}).json()
    first, second = answer["predictions"]
    assert first == {"num_words": 4, "tags": ["B-LOC", "O", "O", "B-LOC"], "words": ["John", "lives", "in", "York"]}
    assert second["words"] == ["hi", "", "", ""] and second["num_words"] == 1
