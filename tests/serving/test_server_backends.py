"""`tfpipe serve --backend`: the same raw-text predict, classify and metadata calls over REST and gRPC, answered by
the SavedModel and by its verified ONNX Runtime / OpenVINO conversions; batching works the same for each, and a
version without a conversion (TF Serving's own test model) is still served by TensorFlow."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import classification_pb2, get_model_metadata_pb2, model_pb2, predict_pb2

from tests.serving.server_harness import HALF_PLUS_TWO, copy_versions, example, rest_url, start_server, stubs
from tfpipe.export.convert.manifest import choose_variant

TEXTS = ["good movie", "the cat is bad", "a " * 300, ""]
BACKENDS = ["tensorflow", "onnxruntime", "openvino"]


@pytest.fixture(scope="module")
def fp32_export(converted_exports, tmp_path_factory):
    """A copy of the converted classification export with only its fp32 conversions, so every backend is held to
    the fp32 tolerance."""
    _, name, version = converted_exports("classification")
    base = tmp_path_factory.mktemp("fp32") / name
    copy = shutil.copytree(version, base / version.name)
    for folder in (copy / "accelerated").glob("*-int8"):
        shutil.rmtree(folder)
    return base, name, copy


def _predict(stub, name: str, signature: str = "", **inputs) -> dict[str, np.ndarray]:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = signature
    for key, values in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(values))
    return {k: tf.make_ndarray(v) for k, v in stub.Predict(request, timeout=30).outputs.items()}


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_answers_as_the_savedmodel(fp32_export, backend):
    base, name, version = fp32_export
    expected = tf.saved_model.load(str(version)).signatures["serving_default"](text=tf.constant(TEXTS))
    server = start_server(model_name=name, model_base_path=str(base), backend=backend)
    try:
        with server.manager.acquire(model_pb2.ModelSpec(name=name)) as servable:
            assert servable.backend.split(":")[0] == backend and servable.warmup_records > 0
        rest = requests.post(rest_url(server, f"/v1/models/{name}:predict"), json={"instances": TEXTS}, timeout=30)
        predictions = rest.json()["predictions"]
        assert [p["labels"] for p in predictions] == [s.decode() for s in expected["labels"].numpy()]
        np.testing.assert_allclose([p["logits"] for p in predictions], expected["logits"].numpy(), atol=1e-4)
        stub, _, channel = stubs(server)
        got = _predict(stub, name, text=TEXTS)
        assert set(got) == set(expected)
        np.testing.assert_allclose(got["probabilities"], expected["probabilities"].numpy(), atol=1e-4)
        np.testing.assert_array_equal(got["label_ids"], expected["label_ids"].numpy())
        classify = classification_pb2.ClassificationRequest()
        classify.model_spec.name, classify.model_spec.signature_name = name, "classify"
        classify.input.example_list.examples.extend(example(text=t.encode()) for t in TEXTS)
        result = stub.Classify(classify, timeout=30).result
        np.testing.assert_allclose([[c.score for c in r.classes] for r in result.classifications],
                                   expected["probabilities"].numpy(), atol=1e-4)
        ids = _predict(stub, name, "predict_ids", input_word_ids=np.array([[2, 19, 21, 3]], np.int32),
                       input_mask=np.ones((1, 4), np.int32), input_type_ids=np.zeros((1, 4), np.int32))
        assert ids["logits"].shape == (1, 2)
        metadata = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        metadata.model_spec.name = name
        signatures = get_model_metadata_pb2.SignatureDefMap()
        stub.GetModelMetadata(metadata, timeout=30).metadata["signature_def"].Unpack(signatures)
        assert set(signatures.signature_def) == {"serving_default", "classify", "predict_ids"}
        # Errors are the SavedModel's too: an unknown alias is TF Serving's INVALID_ARGUMENT message.
        with pytest.raises(Exception, match="input tensor alias not found in signature: txt"):
            _predict(stub, name, txt=TEXTS)
        channel.close()
    finally:
        server.stop(grace=1)


def test_auto_serves_the_fastest_variant_that_beat_the_savedmodel(converted_exports):
    base, name, version = converted_exports("classification")
    choice = choose_variant(version, "auto", batch_size=1)  # no batching: the server runs requests as they come
    server = start_server(model_name=name, model_base_path=str(base / name), backend="auto", rest_api_port=0)
    try:
        with server.manager.acquire(model_pb2.ModelSpec(name=name)) as servable:
            assert servable.backend == ("tensorflow" if choice is None else f"{choice[1]['runtime']}:{choice[0].name}")
        stub, _, channel = stubs(server)
        assert len(_predict(stub, name, text=TEXTS)["labels"]) == len(TEXTS)
        channel.close()
    finally:
        server.stop(grace=1)


def test_auto_behind_a_batcher_picks_the_variant_fastest_at_its_batch_size(converted_exports, tmp_path):
    base, name, version = converted_exports("classification")
    params = tmp_path / "batching.txt"
    params.write_text("max_batch_size { value: 64 }\nenable_large_batch_splitting { value: true }\n"
                      "max_execution_batch_size { value: 32 }\n")
    choice = choose_variant(version, "auto", batch_size=32)
    server = start_server(model_name=name, model_base_path=str(base / name), backend="auto", rest_api_port=0,
                          enable_batching=True, batching_parameters_file=str(params))
    try:
        assert server.manager.options.batch_size == 32
        with server.manager.acquire(model_pb2.ModelSpec(name=name)) as servable:
            assert servable.backend == ("tensorflow" if choice is None else f"{choice[1]['runtime']}:{choice[0].name}")
    finally:
        server.stop(grace=1)


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_batching_works_the_same_on_a_converted_backend(fp32_export, tmp_path, backend):
    base, name, version = fp32_export
    params = tmp_path / "batching.txt"
    params.write_text("max_batch_size { value: 8 }\nbatch_timeout_micros { value: 20000 }\n"
                      "num_batch_threads { value: 1 }\n")
    server = start_server(model_name=name, model_base_path=str(base), backend=backend, rest_api_port=0,
                          enable_batching=True, batching_parameters_file=str(params))
    texts = [f"the cat is {'good' if i % 2 else 'bad'} " * (1 + i % 5) for i in range(16)]
    expected = tf.saved_model.load(str(version)).signatures["serving_default"](text=tf.constant(texts))
    try:
        stub, _, channel = stubs(server)
        with server.manager.acquire(model_pb2.ModelSpec(name=name)) as servable:
            before = servable.calls
            with ThreadPoolExecutor(16) as pool:
                answers = list(pool.map(lambda t: _predict(stub, name, text=[t]), texts))
            assert servable.calls - before < len(texts)  # requests were merged into batches
        np.testing.assert_allclose(np.concatenate([a["logits"] for a in answers]), expected["logits"].numpy(),
                                   atol=1e-4)
        channel.close()
    finally:
        server.stop(grace=1)


@pytest.mark.parametrize("task", ["pair", "token-classification"])
def test_pair_and_tagging_exports_on_openvino(converted_exports, task):
    base, name, version = converted_exports(task)
    inputs = {"text": ["John lives in New York . " * 6, "the cat"]}
    if task == "pair":
        inputs["text_pair"] = ["a dog", "the cat"]
    expected = tf.saved_model.load(str(version)).signatures["serving_default"](
        **{k: tf.constant(v) for k, v in inputs.items()})
    server = start_server(model_name=name, model_base_path=str(base / name), backend="openvino", rest_api_port=0)
    try:
        stub, _, channel = stubs(server)
        got = _predict(stub, name, **inputs)
        for key, value in expected.items():
            if value.dtype.is_floating:
                np.testing.assert_allclose(got[key], value.numpy(), atol=1e-4)
            else:
                np.testing.assert_array_equal(got[key], value.numpy())
        channel.close()
    finally:
        server.stop(grace=1)


def test_a_model_without_conversions_is_served_by_tensorflow(tmp_path):
    base = copy_versions(HALF_PLUS_TWO, tmp_path / "half")
    server = start_server(model_name="half", model_base_path=str(base), backend="onnxruntime", rest_api_port=0)
    try:
        with server.manager.acquire(model_pb2.ModelSpec(name="half")) as servable:
            assert servable.backend == "tensorflow"
        stub, _, channel = stubs(server)
        assert _predict(stub, "half", x=np.array([1.0, 2.0], np.float32))["y"].tolist() == [2.5, 3.0]
        channel.close()
    finally:
        server.stop(grace=1)
