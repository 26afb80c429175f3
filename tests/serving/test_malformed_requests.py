"""Table-driven malformed requests over gRPC and REST: each is answered with TF Serving's status code (HTTP status
for REST) and message, and the server keeps serving afterwards."""

from __future__ import annotations

import base64
import json

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    predict_pb2,
    regression_pb2,
)

from tests.serving.server_harness import config_of, example, multi_model_config, rest_url, start_server, stubs

C = grpc.StatusCode
LIMIT = 1 << 20  # the server's message limit for this module (--grpc_channel_arguments), for RESOURCE_EXHAUSTED


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_server(model_config_file=str(multi_model_config(tmp_path_factory.mktemp("bad"))),
                          grpc_channel_arguments=f"grpc.max_receive_message_length={LIMIT}")
    yield server
    server.stop(grace=1)


@pytest.fixture(scope="module")
def grpc_stubs(server):
    prediction, model, channel = stubs(server)
    yield prediction, model
    channel.close()


# -- gRPC requests ---------------------------------------------------------------------------------------------


def predict(model="default", signature="", version=None, label=None, output_filter=(), spec=True, **inputs):
    request = predict_pb2.PredictRequest()
    if spec:
        request.model_spec.name = model
        request.model_spec.signature_name = signature
        if version is not None:
            request.model_spec.version.value = version
        if label is not None:
            request.model_spec.version_label = label
    for name, value in inputs.items():
        proto = value if isinstance(value, tensor_pb2.TensorProto) else tf.make_tensor_proto(value)
        request.inputs[name].CopyFrom(proto)
    request.output_filter.extend(output_filter)
    return "Predict", request


def x(*values, dtype=np.float32):
    return np.array(values, dtype)


def examples_input(message, *examples_):
    message.input.example_list.examples.extend(examples_)
    return message


def classify(model="default", signature="classify_x_to_y", examples=(example(x=2.0),), spec=True):
    request = classification_pb2.ClassificationRequest()
    if spec:
        request.model_spec.name, request.model_spec.signature_name = model, signature
    return "Classify", examples_input(request, *examples)


def regress(model="default", signature="regress_x_to_y", examples=(example(x=2.0),)):
    request = regression_pb2.RegressionRequest()
    request.model_spec.name, request.model_spec.signature_name = model, signature
    return "Regress", examples_input(request, *examples)


def multi(*tasks, examples=(example(x=2.0),)):
    request = inference_pb2.MultiInferenceRequest()
    for model, signature, method in tasks:
        task = request.tasks.add(method_name=method)
        task.model_spec.name, task.model_spec.signature_name = model, signature
    return "MultiInference", examples_input(request, *examples)


def metadata(model="default", fields=("signature_def",)):
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=list(fields))
    request.model_spec.name = model
    return "GetModelMetadata", request


def status(model="default", version=None, spec=True):
    request = get_model_status_pb2.GetModelStatusRequest()
    if spec:
        request.model_spec.name = model
        if version is not None:
            request.model_spec.version.value = version
    return "GetModelStatus", request


def reload(config):
    return "HandleReloadConfigRequest", model_management_pb2.ReloadConfigRequest(config=config)


def bad_tensor(dtype=types_pb2.DT_FLOAT, dims=(2,), values=(1.0, 2.0, 3.0)):
    proto = tensor_pb2.TensorProto(dtype=dtype)
    proto.tensor_shape.dim.extend(tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims)
    proto.float_val.extend(values)
    return proto


CLASSIFY, REGRESS, PREDICT = "tensorflow/serving/classify", "tensorflow/serving/regress", "tensorflow/serving/predict"

GRPC_CASES = [
    ("unknown model", predict(model="nope", x=x(1.0)), C.NOT_FOUND, "Servable not found for request: Latest(nope)"),
    ("unknown version", predict(version=999, x=x(1.0)), C.NOT_FOUND,
     "Servable not found for request: Specific(default, 999)"),
    ("unknown label", predict(model="two", label="beta", x=x(1.0)), C.INVALID_ARGUMENT,
     "Unrecognized servable version label: beta"),
    ("unknown signature", predict(signature="nope", x=x(1.0)), C.FAILED_PRECONDITION,
     'Serving signature key "nope" not found.'),
    ("extra input", predict(x=x(1.0), z=x(1.0)), C.INVALID_ARGUMENT,
     "input size does not match signature: 2!=1 len({x,z}) != len({x}). Sent extra: {z}. Missing but required: {}."),
    ("missing input", predict(), C.INVALID_ARGUMENT,
     "input size does not match signature: 0!=1 len({}) != len({x}). Sent extra: {}. Missing but required: {x}."),
    ("wrong input name", predict(z=x(1.0)), C.INVALID_ARGUMENT,
     "input tensor alias not found in signature: z. Inputs expected to be in the set {x}."),
    ("wrong dtype TF1", predict(x=x(1.0, dtype=np.float64)), C.INVALID_ARGUMENT, "~double"),
    ("string to a float input", predict(x=np.array([b"a"], dtype=object)), C.INVALID_ARGUMENT, "~string"),
    ("more values than the shape", predict(x=bad_tensor()), C.INVALID_ARGUMENT, "tensor parsing error: x"),
    ("no dtype", predict(x=bad_tensor(dtype=types_pb2.DT_INVALID)), C.INVALID_ARGUMENT, "tensor parsing error: x"),
    ("negative dimension", predict(x=bad_tensor(dims=(-3,))), C.INVALID_ARGUMENT, "tensor parsing error: x"),
    ("unknown output filter", predict(x=x(1.0), output_filter=["q"]), C.INVALID_ARGUMENT,
     "output tensor alias not found in signature: q Outputs expected to be in the set {y}."),
    ("duplicate output filter", predict(x=x(1.0), output_filter=["y", "y"]), C.INVALID_ARGUMENT,
     "duplicate output tensor alias: y"),
    ("no model spec", predict(spec=False, x=x(1.0)), C.INVALID_ARGUMENT, "Missing ModelSpec"),
    ("TF2 incompatible shape", predict(model="tf2", x=x(1.0, 2.0)), C.INVALID_ARGUMENT,
     "The shape of input x [2] is incompatible with the signature's declared shape [1]"),
    ("TF2 wrong dtype", predict(model="tf2", x=x(1.0, dtype=np.float64)), C.INVALID_ARGUMENT,
     "Expects arg x to be float but double is provided"),
    ("classify a predict signature", classify(signature="serving_default"), C.INVALID_ARGUMENT,
     f"Expected classification signature method_name to be {CLASSIFY}. Was: {PREDICT}"),
    ("classify unknown signature", classify(signature="nope"), C.INVALID_ARGUMENT,
     "No signature was found with the name: nope"),
    ("classify no examples", classify(examples=()), C.INVALID_ARGUMENT, "Input is empty."),
    ("classify unknown model", classify(model="nope"), C.NOT_FOUND, "Servable not found for request: Latest(nope)"),
    ("classify no model spec", classify(spec=False), C.INVALID_ARGUMENT, "Missing ModelSpec"),
    ("classify TF2 predict-method signature", classify(model="tf2"), C.INVALID_ARGUMENT,
     f"Expected classification signature method_name to be {CLASSIFY}. Was: {PREDICT}"),
    ("regress a classify signature", regress(signature="classify_x_to_y"), C.INVALID_ARGUMENT,
     f"Expected regression signature method_name to be {REGRESS}. Was: {CLASSIFY}"),
    ("regress no examples", regress(examples=()), C.INVALID_ARGUMENT, "Input is empty."),
    ("regress examples into a float input", regress(signature="regress_x2_to_y3"), C.INVALID_ARGUMENT, "~"),
    ("multi no tasks", multi(), C.INVALID_ARGUMENT, "MultiInferenceRequest must contain at least one InferenceTask"),
    ("multi two models", multi(("default", "classify_x_to_y", CLASSIFY), ("two", "regress_x_to_y", REGRESS)),
     C.INVALID_ARGUMENT, "All ModelSpecs in a MultiInferenceRequest must access the same model name."),
    ("multi duplicate signature", multi(("default", "classify_x_to_y", CLASSIFY),
                                        ("default", "classify_x_to_y", CLASSIFY)),
     C.INVALID_ARGUMENT, "Duplicate evaluation of signature: classify_x_to_y"),
    ("multi predict method", multi(("default", "serving_default", PREDICT)), C.UNIMPLEMENTED,
     f"Unsupported signature method_name: {PREDICT}"),
    ("metadata without field", metadata(fields=()), C.INVALID_ARGUMENT,
     "GetModelMetadataRequest must specify at least one metadata_field"),
    ("metadata unsupported field", metadata(fields=("foo",)), C.INVALID_ARGUMENT,
     "Metadata field foo is not supported"),
    ("metadata unknown model", metadata(model="nope"), C.NOT_FOUND, "Servable not found for request: Latest(nope)"),
    ("status unknown model", status(model="nope"), C.NOT_FOUND, "Could not find any versions of model nope"),
    ("status unknown version", status(version=9), C.NOT_FOUND, "Could not find version 9 of model default"),
    ("status without model spec", status(spec=False), C.INVALID_ARGUMENT, "Missing ModelSpec"),
    ("reload duplicate names", reload(config_of(("a", "/tmp"), ("a", "/tmp"))), C.INVALID_ARGUMENT,
     "Illegal to list model a multiple times in config list"),
    ("message over the size limit", predict(x=np.zeros(LIMIT // 2, np.float32)), C.RESOURCE_EXHAUSTED,
     "~larger than max"),
]


@pytest.mark.parametrize("method, request_, code, message", [(c[1][0], c[1][1], c[2], c[3]) for c in GRPC_CASES],
                         ids=[c[0] for c in GRPC_CASES])
def test_grpc_malformed_request(grpc_stubs, method, request_, code, message):
    prediction, model = grpc_stubs
    stub = model if method in ("GetModelStatus", "HandleReloadConfigRequest") else prediction
    with pytest.raises(grpc.RpcError) as error:
        getattr(stub, method)(request_, timeout=30)
    assert error.value.code() == code, error.value.details()
    check_message(error.value.details(), message)


def check_message(got: str, expected: str) -> None:
    """Exact message, or `~part` for a substring (where the text comes from TensorFlow or gRPC core)."""
    if expected.startswith("~"):
        assert expected[1:] in got
    else:
        assert got == expected


# -- REST requests ---------------------------------------------------------------------------------------------


def b64(data: bytes) -> dict:
    return {"b64": base64.b64encode(data).decode()}


P = "/v1/models/default:predict"
CL = "/v1/models/default:classify"
RG = "/v1/models/default:regress"
EL = "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: "

REST_CASES = [
    ("unknown model", "POST", "/v1/models/nope:predict", {"instances": [1.0]}, 404,
     "Servable not found for request: Latest(nope)"),
    ("unknown version", "POST", "/v1/models/default/versions/999:predict", {"instances": [1.0]}, 404,
     "Servable not found for request: Specific(default, 999)"),
    ("unknown label", "POST", "/v1/models/two/labels/beta:predict", {"instances": [1.0]}, 400,
     "Unrecognized servable version label: beta"),
    ("version not numeric", "POST", "/v1/models/default/versions/99999999999999999999:predict", {"instances": [1.0]},
     400, "Failed to convert version: 99999999999999999999 to numeric."),
    ("empty body", "POST", P, b"", 400, "JSON Parse error: The document is empty"),
    ("malformed JSON", "POST", P, b'{"instances": [1.0', 400, "~JSON Parse error: "),
    ("trailing garbage", "POST", P, b'{"instances": [1.0]} x', 400, "~JSON Parse error: "),
    ("not UTF-8", "POST", P, b'{"instances": ["\xff"]}', 400, "~JSON Parse error: "),
    ("not an object", "POST", P, [1.0], 400, "JSON Value: [1.0] Is not object"),
    ("both instances and inputs", "POST", P, {"instances": [1.0], "inputs": [1.0]}, 400,
     "~Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist"),
    ("empty instances", "POST", P, {"instances": []}, 400, "~No values in 'instances' array"),
    ("instances not a list", "POST", P, {"instances": 1.0}, 400, "~Excepting 'instances' to be an list/array"),
    ("neither instances nor inputs", "POST", P, {"data": [1.0]}, 400, "Missing 'inputs' or 'instances' key"),
    ("string for a float", "POST", P, {"instances": ["a"]}, 400,
     EL + 'JSON Value: "a" Type: String is not of expected type: float'),
    ("bool for a float", "POST", P, {"instances": [True]}, 400,
     EL + "JSON Value: true Type: True is not of expected type: float"),
    ("null for a float", "POST", P, {"instances": [None]}, 400,
     EL + "JSON Value: null Type: Null is not of expected type: float"),
    ("b64 for a float", "POST", P, {"instances": [b64(b"a")]}, 400,
     EL + 'JSON Value: {"b64":"YQ=="} Type: Object is not of expected type: float'),
    ("float too large", "POST", P, {"instances": [1e39]}, 400,
     EL + "Cannot convert JSON value: 1e+39 to float without loss of precision."),
    ("integer too large for float", "POST", P, {"instances": [16777217]}, 400,
     EL + "Cannot convert JSON value: 16777217 to float without loss of precision."),
    ("ragged instances", "POST", P, {"instances": [[1.0], [1.0, 2.0]]}, 400,
     "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: Expecting tensor size: 1 but got: 2"),
    ("instances of different shapes", "POST", P, {"instances": [[1.0, 2.0], [[1.0], [2.0]]]}, 400,
     "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: Expecting shape [2] but got: [2,1]"),
    ("ragged columnar", "POST", P, {"inputs": [[1.0], [1.0, 2.0]]}, 400,
     "Encountered list at unexpected size: 2 at level: 1 expected size: 1"),
    ("value at the wrong level", "POST", P, {"inputs": [[1.0], 2.0]}, 400,
     "JSON Value: 2.0 found at incorrect level: 2 in the JSON DOM. Expected at level: 2"),
    ("list too deep", "POST", P, {"inputs": [1.0, [2.0]]}, 400, "Encountered list at unexpected level: 1 expected < 1"),
    ("signature_name not a string", "POST", P, {"signature_name": 3, "instances": [1.0]}, 400,
     "~not formatted correctly. 'signature_name' key must be a string value."),
    ("unknown signature", "POST", P, {"signature_name": "nope", "instances": [1.0]}, 400,
     'Serving signature name: "nope" not found in signature def'),
    ("missing named columnar input", "POST", P, {"inputs": {"z": [1.0]}}, 400,
     "Missing named input: x in 'inputs' object."),
    ("unknown named instance input", "POST", P, {"instances": [{"z": 1.0}]}, 400,
     "Failed to process element: 0 key: z of 'instances' list. Error: INVALID_ARGUMENT: JSON object: does not have "
     "named input: z"),
    ("object after list", "POST", P, {"instances": [{"x": [1.0]}, [1.0]]}, 400,
     "Expecting object but got list at item 1 of input list"),
    ("list after object", "POST", P, {"instances": [[1.0], {"x": [1.0]}]}, 400,
     "Expecting value/list but got object at item 1 of input list"),
    ("bad base64", "POST", P, {"signature_name": "classify_x_to_y", "instances": [{"b64": "!!!"}]}, 400,
     EL + "Unable to base64 decode"),
    ("number for a string input", "POST", P, {"signature_name": "classify_x_to_y", "instances": [1]}, 400,
     EL + "JSON Value: 1 Type: Number is not of expected type: string"),
    ("TF2 incompatible shape", "POST", "/v1/models/tf2:predict", {"instances": [1.0, 2.0, 3.0]}, 400,
     "The shape of input x [3] is incompatible with the signature's declared shape [1]"),
    ("signature without inputs", "POST", "/v1/models/counter:predict", {"signature_name": "get_counter",
                                                                        "instances": [1.0]}, 400,
     "Failed to get input map for signature: get_counter"),
    ("classify without examples", "POST", CL, {"signature_name": "classify_x_to_y"}, 400,
     "~When method is classify, key 'examples' is expected and was not found"),
    ("examples not a list", "POST", CL, {"signature_name": "classify_x_to_y", "examples": {}}, 400,
     "~Expecting 'examples' value to be an list/array"),
    ("empty examples", "POST", CL, {"signature_name": "classify_x_to_y", "examples": []}, 400,
     "~'examples' value is an empty array"),
    ("example not an object", "POST", CL, {"signature_name": "classify_x_to_y", "examples": [2.0]}, 400,
     "Example must be JSON object but got JSON Number"),
    ("null feature", "POST", CL, {"signature_name": "classify_x_to_y", "examples": [{"x": None}]}, 400,
     "Feature: x has element with unexpected JSON type: Null"),
    ("mixed feature types", "POST", CL, {"signature_name": "classify_x_to_y", "examples": [{"x": [1.0, "a"]}]}, 400,
     "Unexpected element type in feature: x expecting type: float"),
    ("nested feature list", "POST", RG, {"signature_name": "regress_x_to_y", "examples": [{"x": [[1.0]]}]}, 400,
     "Feature: x has element with unexpected JSON type: Array"),
    ("classify a predict signature", "POST", CL, {"examples": [{"x": 2.0}]}, 400,
     f"Expected classification signature method_name to be {CLASSIFY}. Was: {PREDICT}"),
    ("regress a classify signature", "POST", RG, {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}]}, 400,
     f"Expected regression signature method_name to be {REGRESS}. Was: {CLASSIFY}"),
    ("status of unknown model", "GET", "/v1/models/nope", None, 404, "Could not find any versions of model nope"),
    ("status without model name", "GET", "/v1/models", None, 400, "Missing model name in request."),
    ("metadata of unknown model", "GET", "/v1/models/nope/metadata", None, 404,
     "Servable not found for request: Latest(nope)"),
    ("unknown verb", "POST", "/v1/models/default:explain", {"instances": [1.0]}, 400,
     "Malformed request: POST /v1/models/default:explain"),
    ("GET on predict", "GET", P, None, 400, "Malformed request: GET /v1/models/default:predict"),
    ("body over the size limit", "POST", P, {"instances": [0.5] * (LIMIT // 4)}, 429, "~exceeds the maximum"),
]


@pytest.mark.parametrize("method, path, body, http_status, message", [c[1:] for c in REST_CASES],
                         ids=[c[0] for c in REST_CASES])
def test_rest_malformed_request(server, method, path, body, http_status, message):
    data = body if isinstance(body, bytes) or body is None else json.dumps(body)
    response = requests.request(method, rest_url(server, path), data=data, timeout=30)
    assert response.status_code == http_status, response.text
    assert response.headers["Content-Type"] == "application/json"
    check_message(response.json()["error"], message)


def test_enough_cases():
    assert len(GRPC_CASES) + len(REST_CASES) >= 50


def test_server_still_serves_after_every_bad_request(server, grpc_stubs):
    prediction, _ = grpc_stubs
    _, request = predict(x=x(1.0, 2.0, 5.0))
    assert list(prediction.Predict(request, timeout=10).outputs["y"].float_val) == [2.5, 3.0, 4.5]
    response = requests.post(rest_url(server, P), json={"instances": [2.0, 3.0, 4.0]}, timeout=10)
    assert response.json() == {"predictions": [3.0, 3.5, 4.0]}
