"""A real tfpipe export (the tiny classification run) behind `tfpipe serve`: raw text over REST and gRPC gives what
the SavedModel gives in-process, Classify uses the export's `classify` signature, its warm-up records replay on
load, and metadata shows the three signatures with TF Serving's method names."""

from __future__ import annotations

import numpy as np
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import classification_pb2, model_pb2, predict_pb2

from tests.serving.server_harness import example, rest_url, start_server, stubs

TEXTS = ["good movie", "the cat is bad", "a " * 300]


@pytest.fixture(scope="module")
def served(tiny_exports):
    base, name, path = tiny_exports("classification")
    server = start_server(model_name=name, model_base_path=str(base / name))
    yield server, name, path
    server.stop(grace=1)


def test_rest_and_grpc_match_the_savedmodel_in_process(served):
    server, name, path = served
    expected = tf.saved_model.load(str(path)).signatures["serving_default"](text=tf.constant(TEXTS))
    rest = requests.post(rest_url(server, f"/v1/models/{name}:predict"), json={"instances": TEXTS}, timeout=30)
    predictions = rest.json()["predictions"]
    assert [p["labels"] for p in predictions] == [s.decode() for s in expected["labels"].numpy()]
    np.testing.assert_allclose([p["probabilities"] for p in predictions], expected["probabilities"].numpy(),
                               atol=1e-6)
    stub, _, channel = stubs(server)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.inputs["text"].CopyFrom(tf.make_tensor_proto(TEXTS))
    response = stub.Predict(request, timeout=30)
    np.testing.assert_array_equal(tf.make_ndarray(response.outputs["logits"]), expected["logits"].numpy())
    assert list(response.outputs["labels"].string_val) == list(expected["labels"].numpy())

    classify = classification_pb2.ClassificationRequest()
    classify.model_spec.name, classify.model_spec.signature_name = name, "classify"
    classify.input.example_list.examples.extend(example(text=t.encode()) for t in TEXTS)
    result = stub.Classify(classify, timeout=30).result
    assert [[c.label for c in r.classes] for r in result.classifications] == [["neg", "pos"]] * 3
    np.testing.assert_allclose([[c.score for c in r.classes] for r in result.classifications],
                               expected["probabilities"].numpy(), atol=1e-6)
    channel.close()


def test_the_exports_warmup_records_were_replayed_on_load(served):
    server, name, path = served
    assert (path / "assets.extra" / "tf_serving_warmup_requests").is_file()
    with server.manager.acquire(model_pb2.ModelSpec(name=name)) as servable:
        assert servable.warmup_records > 0


def test_metadata_shows_the_export_signatures(served):
    server, name, _ = served
    metadata = requests.get(rest_url(server, f"/v1/models/{name}/metadata"), timeout=30).json()
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    assert {k: v["method_name"] for k, v in signatures.items()} == {
        "serving_default": "tensorflow/serving/predict", "classify": "tensorflow/serving/classify",
        "predict_ids": "tensorflow/serving/predict"}
    assert signatures["serving_default"]["inputs"]["text"]["dtype"] == "DT_STRING"


def test_loads_behind_batching_with_batch_size_one(tiny_exports, tmp_path):
    """Its warm-up records hold one text each, so even max_batch_size 1 accepts them and the model loads."""
    base, name, _ = tiny_exports("classification")
    params = tmp_path / "batching.txt"
    params.write_text("max_batch_size { value: 1 }\nbatch_timeout_micros { value: 0 }\n")
    server = start_server(model_name=name, model_base_path=str(base / name), enable_batching=True,
                          batching_parameters_file=str(params), rest_api_port=0)
    try:
        with server.manager.acquire(model_pb2.ModelSpec(name=name)) as servable:
            assert servable.warmup_records >= 5
    finally:
        server.stop(grace=1)
