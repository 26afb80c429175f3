"""Predict, Classify, Regress, MultiInference and GetModelMetadata with TF Serving's validation and messages,
shared by the gRPC and REST front ends (each `*_on` variant runs on one Servable, which warm-up replay uses)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

import grpc
import numpy as np
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    inference_pb2,
    input_pb2,
    model_pb2,
    predict_pb2,
    regression_pb2,
)

from tfpipe.serving.errors import ServingError, failed_precondition, invalid_argument
from tfpipe.serving.servable import Servable
from tfpipe.serving.tensors import dtype_name, shape_string, to_ndarray, to_proto

DEFAULT_SIGNATURE = "serving_default"
PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
SIGNATURE_DEF_FIELD = "signature_def"


class Core(Protocol):
    """What inference needs from the model manager: a ref-counted servable for a ModelSpec."""

    def acquire(self, spec: model_pb2.ModelSpec) -> AbstractContextManager[Servable]: ...


def _spec(name: str, signature: str | None, version: int) -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=name)
    if signature is not None:
        spec.signature_name = signature or DEFAULT_SIGNATURE
    spec.version.value = version
    return spec


def _keys(keys) -> str:
    return ",".join(sorted(keys))


# -- Predict ---------------------------------------------------------------------------------------------------


def predict(core: Core, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
    if not request.HasField("model_spec"):
        raise invalid_argument("Missing ModelSpec")
    with core.acquire(request.model_spec) as servable:
        return predict_on(servable, request)


def predict_on(servable: Servable, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
    signature = predict_signature(servable, request.model_spec.signature_name)
    check_inputs(signature, request.inputs)
    inputs = {alias: to_ndarray(proto, alias) for alias, proto in request.inputs.items()}
    name, result = run_predict(servable, request.model_spec.signature_name, inputs, list(request.output_filter))
    response = predict_pb2.PredictResponse(model_spec=_spec(request.model_spec.name, name, servable.version))
    for alias, value in result.items():
        response.outputs[alias].CopyFrom(to_proto(value))
    return response


def predict_signature(servable: Servable, signature_name: str):
    name = signature_name or DEFAULT_SIGNATURE
    signature = servable.signatures.get(name)
    if signature is None:
        raise failed_precondition(f'Serving signature key "{name}" not found.')
    if servable.method_name_check and signature.method_name not in (PREDICT_METHOD, CLASSIFY_METHOD, REGRESS_METHOD):
        raise ServingError(grpc.StatusCode.INTERNAL, "Expected prediction signature method_name to be one of "
                           f"{{{PREDICT_METHOD}, {CLASSIFY_METHOD}, {REGRESS_METHOD}}}. Was: {signature.method_name}")
    return signature


def check_inputs(signature, sent_keys) -> None:
    """PredictRequest inputs against the signature: counts first (TF Serving's message), then unknown aliases."""
    sent, declared = set(sent_keys), set(signature.inputs)
    if len(sent) > len(declared) or (len(sent) < len(declared) and not signature.defaults):
        raise invalid_argument(
            f"input size does not match signature: {len(sent)}!={len(declared)} len({{{_keys(sent)}}}) != "
            f"len({{{_keys(declared)}}}). Sent extra: {{{_keys(sent - declared)}}}. "
            f"Missing but required: {{{_keys(declared - sent)}}}.")
    for alias in sorted(sent - declared):
        raise invalid_argument(f"input tensor alias not found in signature: {alias}. Inputs expected to be in "
                               f"the set {{{_keys(declared)}}}.")


def run_predict(servable: Servable, signature_name: str, inputs: dict[str, np.ndarray],
                output_filter: list[str]) -> tuple[str, dict[str, np.ndarray]]:
    """Runs a predict signature on validated input arrays; returns (signature name, outputs by alias)."""
    name = signature_name or DEFAULT_SIGNATURE
    signature = predict_signature(servable, name)
    check_inputs(signature, inputs)
    for alias in output_filter:
        if alias not in signature.outputs:
            raise invalid_argument(f"output tensor alias not found in signature: {alias} Outputs expected to be in "
                                   f"the set {{{_keys(signature.outputs)}}}.")
    if len(set(output_filter)) != len(output_filter):
        seen = [a for i, a in enumerate(output_filter) if a in output_filter[:i]]
        raise invalid_argument(f"duplicate output tensor alias: {seen[0]}")
    return name, servable.run(name, inputs, output_filter or sorted(signature.outputs))


# -- Classify / Regress ----------------------------------------------------------------------------------------


def examples_tensor(model_input: input_pb2.Input) -> np.ndarray:
    """Serialized tf.Examples as a string vector (context merged into each example by concatenation)."""
    kind = model_input.WhichOneof("kind")
    if kind == "example_list":
        serialized = [e.SerializeToString() for e in model_input.example_list.examples]
    elif kind == "example_list_with_context":
        context = model_input.example_list_with_context.context.SerializeToString()
        serialized = [context + e.SerializeToString() for e in model_input.example_list_with_context.examples]
    else:
        serialized = []
    if not serialized:
        raise invalid_argument("Input is empty.")
    return np.array(serialized, dtype=object)


def _example_signature(servable: Servable, spec: model_pb2.ModelSpec, method: str, kind: str):
    name = spec.signature_name or DEFAULT_SIGNATURE
    signature = servable.signatures.get(name)
    if signature is None:
        raise invalid_argument(f"No signature was found with the name: {name}")
    if signature.method_name != method:
        raise invalid_argument(f"Expected {kind} signature method_name to be {method}. Was: {signature.method_name}")
    if len(signature.inputs) != 1:
        raise invalid_argument("Expected one input Tensor.")
    if "inputs" not in signature.inputs:
        raise failed_precondition(f"No {kind} inputs found in SignatureDef: {signature}")
    return name, signature


def _on_servable(core: Core, request, run):
    """Runs `run(servable, request)` on the servable the request's ModelSpec names, held for the call."""
    if not request.HasField("model_spec"):
        raise invalid_argument("Missing ModelSpec")
    with core.acquire(request.model_spec) as servable:
        return run(servable, request)


def classify(core: Core, request: classification_pb2.ClassificationRequest):
    return _on_servable(core, request, classify_on)


def classify_on(servable: Servable, request) -> classification_pb2.ClassificationResponse:
    name, signature = _example_signature(servable, request.model_spec, CLASSIFY_METHOD, "classification")
    if len(signature.outputs) not in (1, 2):
        raise invalid_argument(f"Expected one or two output Tensors, found {len(signature.outputs)}")
    wanted = [a for a in ("classes", "scores") if a in signature.outputs]
    if not wanted:
        raise failed_precondition('Expected classification signature outputs to contain at least one of "classes" '
                                  f'or "scores". Signature was: {signature}')
    examples = examples_tensor(request.input)
    out = servable.run(name, {"inputs": examples}, wanted)
    n = len(examples)
    classes, scores = out.get("classes"), out.get("scores")
    for label, tensor, want in (("classes", classes, "DT_STRING"), ("scores", scores, "DT_FLOAT")):
        if tensor is None:
            continue
        if tensor.ndim != 2:
            raise invalid_argument("Expected Tensor shape: [batch_size num_classes] but got "
                                   f"{shape_string(tensor.shape)}")
        ok = tensor.dtype == object if want == "DT_STRING" else tensor.dtype == np.float32
        if not ok:
            raise invalid_argument(f"Expected {label} Tensor of {want}. Got: DT_{dtype_name(tensor.dtype).upper()}")
        if tensor.shape[0] != n:
            raise invalid_argument(f"Expected {label} output batch size of {n}. Got: {tensor.shape[0]}")
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise invalid_argument(f"Tensors class and score should match in dim_size(1). Got {classes.shape[1]} vs. "
                               f"{scores.shape[1]}")
    num_classes = (classes if classes is not None else scores).shape[1]
    response = classification_pb2.ClassificationResponse(
        model_spec=_spec(request.model_spec.name, name, servable.version))
    for i in range(n):
        result = response.result.classifications.add()
        for c in range(num_classes):
            cls = result.classes.add()
            if classes is not None:
                label = classes[i, c]
                cls.label = label if isinstance(label, str) else label.decode("utf-8", "replace")
            if scores is not None:
                cls.score = float(scores[i, c])
    return response


def regress(core: Core, request: regression_pb2.RegressionRequest):
    return _on_servable(core, request, regress_on)


def regress_on(servable: Servable, request) -> regression_pb2.RegressionResponse:
    name, signature = _example_signature(servable, request.model_spec, REGRESS_METHOD, "regression")
    if len(signature.outputs) != 1:
        raise invalid_argument("Expected one output Tensor.")
    if "outputs" not in signature.outputs:
        raise failed_precondition(f"No regression outputs found in SignatureDef: {signature}")
    examples = examples_tensor(request.input)
    n = len(examples)
    out = servable.run(name, {"inputs": examples}, ["outputs"])["outputs"]
    if not (out.ndim == 1 or (out.ndim == 2 and out.shape[1] == 1)):
        raise invalid_argument("Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got "
                               f"{shape_string(out.shape)}")
    if out.shape[0] != n:
        raise invalid_argument(f"Input batch size did not match output batch size: {n} vs. {out.shape[0]}")
    if out.dtype != np.float32:
        raise invalid_argument(f"Expected output Tensor of DT_FLOAT.  Got: DT_{dtype_name(out.dtype).upper()}")
    response = regression_pb2.RegressionResponse(model_spec=_spec(request.model_spec.name, name, servable.version))
    for value in out.ravel():
        response.result.regressions.add(value=float(value))
    return response


# -- MultiInference --------------------------------------------------------------------------------------------


def multi_inference(core: Core, request: inference_pb2.MultiInferenceRequest):
    if not request.tasks:
        raise invalid_argument("MultiInferenceRequest must contain at least one InferenceTask")
    names = {task.model_spec.name for task in request.tasks}
    if len(names) != 1:
        raise invalid_argument("All ModelSpecs in a MultiInferenceRequest must access the same model name.")
    seen: set[str] = set()
    for task in request.tasks:
        signature = task.model_spec.signature_name or DEFAULT_SIGNATURE
        if signature in seen:
            raise invalid_argument(f"Duplicate evaluation of signature: {signature}")
        seen.add(signature)
        if task.method_name not in (CLASSIFY_METHOD, REGRESS_METHOD):
            raise ServingError(grpc.StatusCode.UNIMPLEMENTED, f"Unsupported signature method_name: {task.method_name}")
    with core.acquire(request.tasks[0].model_spec) as servable:
        input_names = set()
        for task in request.tasks:
            signature = servable.signatures.get(task.model_spec.signature_name or DEFAULT_SIGNATURE)
            if signature is not None and "inputs" in signature.inputs:
                input_names.add(signature.inputs["inputs"].name)
        if len(input_names) > 1:
            raise invalid_argument("Input tensor must be the same for all Signatures.")
        response = inference_pb2.MultiInferenceResponse()
        for task in request.tasks:
            response.results.append(run_task_on(servable, task, request.input))
        return response


def run_task_on(servable: Servable, task: inference_pb2.InferenceTask, model_input) -> inference_pb2.InferenceResult:
    """One MultiInference task (classify or regress) on a servable."""
    result = inference_pb2.InferenceResult()
    spec = model_pb2.ModelSpec()
    spec.CopyFrom(task.model_spec)
    if task.method_name == CLASSIFY_METHOD:
        answer = classify_on(servable, classification_pb2.ClassificationRequest(model_spec=spec, input=model_input))
        result.classification_result.CopyFrom(answer.result)
    elif task.method_name == REGRESS_METHOD:
        answer = regress_on(servable, regression_pb2.RegressionRequest(model_spec=spec, input=model_input))
        result.regression_result.CopyFrom(answer.result)
    else:
        raise ServingError(grpc.StatusCode.UNIMPLEMENTED, f"Unsupported signature method_name: {task.method_name}")
    result.model_spec.CopyFrom(answer.model_spec)
    return result


# -- GetModelMetadata ------------------------------------------------------------------------------------------


def model_metadata(core: Core, request: get_model_metadata_pb2.GetModelMetadataRequest):
    if not request.HasField("model_spec"):
        raise invalid_argument("Missing ModelSpec")
    if not request.metadata_field:
        raise invalid_argument("GetModelMetadataRequest must specify at least one metadata_field")
    for field in request.metadata_field:
        if field != SIGNATURE_DEF_FIELD:
            raise invalid_argument(f"Metadata field {field} is not supported")
    with core.acquire(request.model_spec) as servable:
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = servable.version
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, signature in servable.signatures.items():
            signature_map.signature_def[key].CopyFrom(signature)
        response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_map)
        return response
