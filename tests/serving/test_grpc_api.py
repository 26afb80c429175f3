"""PredictionService and ModelService over a real gRPC server on TF Serving's own test models: the answers TF
Serving gives (Predict, Classify, Regress, MultiInference, metadata, status), TF1 session vs TF2 shape semantics,
string tensors, version labels."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    predict_pb2,
    regression_pb2,
)

from tests.serving.server_harness import example, multi_model_config, start_server, stubs


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_server(model_config_file=str(multi_model_config(tmp_path_factory.mktemp("grpc"))),
                          rest_api_port=0)
    yield server
    server.stop(grace=1)


@pytest.fixture(scope="module")
def stub(server):
    prediction, model, channel = stubs(server)
    yield prediction
    channel.close()


@pytest.fixture(scope="module")
def model_stub(server):
    prediction, model, channel = stubs(server)
    yield model
    channel.close()


def predict_request(model="default", signature="", **inputs) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return request


def test_predict_half_plus_two(stub):
    response = stub.Predict(predict_request(x=np.array([1.0, 2.0, 5.0], np.float32)))
    assert list(response.outputs["y"].float_val) == [2.5, 3.0, 4.5]
    assert response.model_spec.name == "default"
    assert response.model_spec.version.value == 123
    assert response.model_spec.signature_name == "serving_default"


def test_tf1_session_semantics_accept_any_shape_of_the_right_dtype(stub):
    # x is declared [-1, 1]; TF Serving's session run takes a [2, 2] float tensor as well
    response = stub.Predict(predict_request(x=np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)))
    assert tf.make_ndarray(response.outputs["y"]).tolist() == [[2.5, 3.0], [3.5, 4.0]]


def test_tf1_wrong_dtype_is_invalid_argument(stub):
    with pytest.raises(grpc.RpcError) as error:
        stub.Predict(predict_request(x=np.array([1.0], np.float64)))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "double" in error.value.details() and "float" in error.value.details()


def test_tf2_model_predicts_with_its_declared_shape(stub):
    response = stub.Predict(predict_request(model="tf2", x=np.array([1.0], np.float32)))
    assert list(response.outputs["y"].float_val) == [2.5]


def test_tf2_model_rejects_an_incompatible_shape(stub):
    with pytest.raises(grpc.RpcError) as error:
        stub.Predict(predict_request(model="tf2", x=np.array([1.0, 2.0, 5.0], np.float32)))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "shape" in error.value.details()


def test_classify(stub):
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "default"
    request.model_spec.signature_name = "classify_x_to_y"
    request.input.example_list.examples.append(example(x=2.0))
    response = stub.Classify(request)
    classes = response.result.classifications
    assert len(classes) == 1 and len(classes[0].classes) == 1
    assert classes[0].classes[0].score == 3.0
    assert response.model_spec.version.value == 123


def test_regress(stub):
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = "default"
    request.model_spec.signature_name = "regress_x_to_y"
    request.input.example_list.examples.append(example(x=2.0))
    assert [r.value for r in stub.Regress(request).result.regressions] == [3.0]


def test_regress_with_context_merges_features(stub):
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = "default"
    request.model_spec.signature_name = "regress_x_to_y"
    request.input.example_list_with_context.context.CopyFrom(example(x=4.0))
    request.input.example_list_with_context.examples.append(tf.train.Example())
    assert [r.value for r in stub.Regress(request).result.regressions] == [4.0]


def test_multi_inference_answers_classify_and_regress(stub):
    request = inference_pb2.MultiInferenceRequest()
    for signature, method in (("classify_x_to_y", "tensorflow/serving/classify"),
                              ("regress_x_to_y", "tensorflow/serving/regress")):
        task = request.tasks.add()
        task.model_spec.name = "default"
        task.model_spec.signature_name = signature
        task.method_name = method
    request.input.example_list.examples.extend([example(x=2.0), example(x=6.0)])
    results = stub.MultiInference(request).results
    assert [c.classes[0].score for c in results[0].classification_result.classifications] == [3.0, 5.0]
    assert [r.value for r in results[1].regression_result.regressions] == [3.0, 5.0]
    assert results[1].model_spec.signature_name == "regress_x_to_y"


def test_string_tensor_input_runs_a_dt_string_signature(stub):
    # classify_x_to_y takes serialized tf.Examples (DT_STRING); Predict feeds it the raw strings
    serialized = [example(x=2.0).SerializeToString(), example(x=4.0).SerializeToString()]
    response = stub.Predict(predict_request(signature="classify_x_to_y", inputs=np.array(serialized, dtype=object)))
    assert tf.make_ndarray(response.outputs["scores"]).ravel().tolist() == [3.0, 4.0]


def test_output_filter_returns_only_the_named_output(stub):
    request = predict_request(signature="regress_x2_to_y3", inputs=np.array([[1.0]], np.float32))
    request.output_filter.append("outputs")
    assert list(stub.Predict(request).outputs) == ["outputs"]


def test_model_metadata_lists_signatures(stub):
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "default"
    response = stub.GetModelMetadata(request)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    assert set(signatures.signature_def) == {"serving_default", "classify_x_to_y", "regress_x_to_y",
                                             "regress_x_to_y2", "regress_x2_to_y3"}
    assert response.model_spec.version.value == 123


def test_model_status_is_version_123_available(model_stub):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "default"
    (status,) = model_stub.GetModelStatus(request).model_version_status
    assert status.version == 123
    assert status.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    assert status.status.error_code == 0


def test_all_policy_serves_both_versions_and_latest_is_the_highest(stub, model_stub):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "two"
    versions = {s.version: s.state for s in model_stub.GetModelStatus(request).model_version_status}
    assert versions == {123: get_model_status_pb2.ModelVersionStatus.AVAILABLE,
                        124: get_model_status_pb2.ModelVersionStatus.AVAILABLE}
    assert stub.Predict(predict_request(model="two", x=np.array([1.0], np.float32))).model_spec.version.value == 124


@pytest.mark.parametrize("label, version", [("stable", 123), ("canary", 124)])
def test_version_labels_route_to_their_version(stub, label, version):
    request = predict_request(model="two", x=np.array([1.0], np.float32))
    request.model_spec.version_label = label
    assert stub.Predict(request).model_spec.version.value == version


def test_specific_version_request(stub):
    request = predict_request(model="two", x=np.array([1.0], np.float32))
    request.model_spec.version.value = 123
    assert stub.Predict(request).model_spec.version.value == 123
