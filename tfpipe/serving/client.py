"""A client for TensorFlow Serving's gRPC and REST APIs (real TF Serving or `tfpipe serve`): predict, classify,
regress, model metadata and status, with timeouts, retries on UNAVAILABLE / 503, a message size limit and TLS."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence, TypeVar

import grpc
import numpy as np
import requests
import tensorflow as tf

from tfpipe.serving.client_encoding import (
    decode_strings,
    example,
    examples_json,
    from_json,
    json_value,
    proto_to_json,
)
from tfpipe.serving.errors import HTTP_STATUS, ServingError

T = TypeVar("T")

# TF Serving's own limit on a message (INT_MAX bytes): large batches pass unless the user asks for less.
DEFAULT_MAX_MESSAGE_BYTES = 2**31 - 1
# HTTP status → the gRPC code TF Serving mapped to it (400 and 500 stand for several; these are the usual ones).
_CODE_FOR_HTTP = {status: code for code, status in HTTP_STATUS.items() if status not in (400, 409, 500)}
_CODE_FOR_HTTP.update({400: grpc.StatusCode.INVALID_ARGUMENT, 409: grpc.StatusCode.ABORTED,
                       500: grpc.StatusCode.INTERNAL})


class ServingClientError(ServingError):
    """A failed call: TF Serving's status code and message (and, over REST, the HTTP status it answered).

    Examples:
    >>> str(ServingClientError(grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(x)"))
    'NOT_FOUND: Servable not found for request: Latest(x)'
    """

    def __init__(self, code: grpc.StatusCode, message: str, http_status: Optional[int] = None) -> None:
        super().__init__(code, message)
        self._http_status = http_status

    @property
    def http_status(self) -> int:
        return self._http_status or super().http_status

    def __str__(self) -> str:
        http = f" (HTTP {self._http_status})" if self._http_status else ""
        return f"{self.code.name}{http}: {self.message}"


def _read(path: Optional[str | Path]) -> Optional[bytes]:
    return Path(path).read_bytes() if path else None


class ServingClient:
    """One connection to a model server: gRPC for a "host:port" target, REST for an "http(s)://host:port" URL.

    Args:
        target: "host:8500" (gRPC) or "http://host:8501" (REST).
        model: default model name for every call (each call may name another).
        timeout: seconds per attempt; a call that runs longer fails with DEADLINE_EXCEEDED.
        retries: further attempts after UNAVAILABLE (gRPC), HTTP 503 or a refused connection, with exponential
            backoff starting at `backoff` seconds (capped at 5 s).
        max_message_bytes: largest request/response accepted (gRPC channel limits; REST request body check).
        root_certificates, client_certificate, client_key: PEM files for TLS (gRPC `ssl_channel_credentials`,
            REST `https://` verification and client certificate); the client pair enables mutual TLS.
        server_name_override: the name to check the server certificate against (gRPC), e.g. for tests.
        token: bearer token sent as `authorization: Bearer <token>` (gRPC metadata, REST header), for a server
            started with `--auth_token_file`.

    Examples:
    >>> client = ServingClient("http://127.0.0.1:8501", model="sst2")
    >>> client.transport, client._rest_url("sst2", 2, None, ":predict")
    ('rest', 'http://127.0.0.1:8501/v1/models/sst2/versions/2:predict')
    """

    def __init__(self, target: str, model: Optional[str] = None, *, timeout: float = 10.0, retries: int = 4,
                 backoff: float = 0.2, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                 root_certificates: Optional[str | Path] = None, client_certificate: Optional[str | Path] = None,
                 client_key: Optional[str | Path] = None, server_name_override: Optional[str] = None,
                 token: Optional[str] = None) -> None:
        if bool(client_certificate) != bool(client_key):
            raise ValueError("client_certificate and client_key go together (mutual TLS needs both)")
        self.target, self.model, self.timeout = target, model, timeout
        self.retries, self.backoff, self.max_message_bytes = retries, backoff, max_message_bytes
        self.transport = "rest" if target.startswith(("http://", "https://")) else "grpc"
        self._output_names: dict[tuple, str] = {}
        self._metadata = [("authorization", f"Bearer {token}")] if token else []
        if self.transport == "rest":
            self._session = requests.Session()
            self._session.headers.update(dict(self._metadata))
            if root_certificates:
                self._session.verify = str(root_certificates)
            if client_certificate:
                self._session.cert = (str(client_certificate), str(client_key))
            return
        from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

        # gRPC waits ~1 s (growing) before reconnecting to a refused address; our retries decide the pace instead.
        reconnect_ms = max(1, int(backoff * 1000))
        options = [("grpc.max_send_message_length", max_message_bytes),
                   ("grpc.max_receive_message_length", max_message_bytes),
                   ("grpc.initial_reconnect_backoff_ms", reconnect_ms), ("grpc.min_reconnect_backoff_ms", reconnect_ms),
                   ("grpc.max_reconnect_backoff_ms", 5000)]
        if server_name_override:
            options.append(("grpc.ssl_target_name_override", server_name_override))
        if root_certificates or client_certificate:
            credentials = grpc.ssl_channel_credentials(_read(root_certificates), _read(client_key),
                                                       _read(client_certificate))
            self._channel = grpc.secure_channel(target, credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(target, options=options)
        self._predict_stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._model_stub = model_service_pb2_grpc.ModelServiceStub(self._channel)

    def close(self) -> None:
        (self._session if self.transport == "rest" else self._channel).close()

    def __enter__(self) -> "ServingClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- public API -------------------------------------------------------------------------------------------

    def predict(self, texts: Optional[Sequence[str]] = None, text_pairs: Optional[Sequence[str]] = None, *,
                inputs: Optional[Mapping[str, Any]] = None, signature: str = "serving_default",
                model: Optional[str] = None, version: Optional[int] = None, label: Optional[str] = None,
                output_filter: Sequence[str] = ()) -> dict[str, np.ndarray]:
        """Runs a signature: `texts` (and `text_pairs`) feed the `text`/`text_pair` inputs of a tfpipe export;
        `inputs` feeds any named tensors (numpy arrays keep their dtype; Python floats are float32, as in
        `tf.constant`). Returns {output name: array}; strings come back as `str`. `output_filter` names the
        outputs wanted (TF Serving's REST API has no such field; REST drops the others here)."""
        feed = self._text_inputs(texts, text_pairs, inputs)
        if self.transport == "grpc":
            return self._grpc_predict(feed, signature, model, version, label, output_filter)
        body = {"signature_name": signature, "inputs": {k: json_value(v) for k, v in feed.items()}}
        response = self._rest("POST", self._rest_url(model, version, label, ":predict"), body)
        outputs = response["outputs"]
        if not isinstance(outputs, dict) or set(outputs) == {"b64"}:
            # TF Serving drops the name of a lone output in the columnar format; the signature says it.
            outputs = {self._lone_output(model, version, label, signature): outputs}
        return {name: from_json(value) for name, value in outputs.items()
                if not output_filter or name in output_filter}

    def classify(self, texts: Optional[Sequence[str]] = None, text_pairs: Optional[Sequence[str]] = None, *,
                 examples: Optional[Sequence[Mapping[str, Any]]] = None, signature: str = "classify",
                 model: Optional[str] = None, version: Optional[int] = None, label: Optional[str] = None
                 ) -> list[list[tuple[str, float]]]:
        """TF Serving's Classify on tf.Examples (from `texts`, or `examples` as {feature: value}): per example,
        its (class label, score) pairs; the label is "" where the signature has no `classes` output."""
        examples = self._text_examples(texts, text_pairs, examples)
        if self.transport == "rest":
            body = {"signature_name": signature, "examples": examples_json(examples)}
            results = self._rest("POST", self._rest_url(model, version, label, ":classify"), body)["results"]
            return [[(str(c[0]), float(c[1])) for c in row] for row in results]
        from tensorflow_serving.apis import classification_pb2

        request = classification_pb2.ClassificationRequest()
        self._fill_spec(request.model_spec, model, version, label, signature)
        request.input.example_list.examples.extend(example(ex) for ex in examples)
        response = self._grpc(self._predict_stub.Classify, request)
        return [[(c.label, c.score) for c in row.classes] for row in response.result.classifications]

    def regress(self, texts: Optional[Sequence[str]] = None, text_pairs: Optional[Sequence[str]] = None, *,
                examples: Optional[Sequence[Mapping[str, Any]]] = None, signature: str = "regress",
                model: Optional[str] = None, version: Optional[int] = None, label: Optional[str] = None
                ) -> list[float]:
        """TF Serving's Regress on tf.Examples: one value per example."""
        examples = self._text_examples(texts, text_pairs, examples)
        if self.transport == "rest":
            body = {"signature_name": signature, "examples": examples_json(examples)}
            results = self._rest("POST", self._rest_url(model, version, label, ":regress"), body)["results"]
            return [float(v) for v in results]
        from tensorflow_serving.apis import regression_pb2

        request = regression_pb2.RegressionRequest()
        self._fill_spec(request.model_spec, model, version, label, signature)
        request.input.example_list.examples.extend(example(ex) for ex in examples)
        response = self._grpc(self._predict_stub.Regress, request)
        return [r.value for r in response.result.regressions]

    def metadata(self, model: Optional[str] = None, version: Optional[int] = None, label: Optional[str] = None
                 ) -> dict:
        """The model's signatures, as the REST `/metadata` JSON ({"model_spec": ..., "metadata": {"signature_def":
        ...}}) over both transports."""
        if self.transport == "rest":
            return self._rest("GET", self._rest_url(model, version, label, "/metadata"))
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._fill_spec(request.model_spec, model, version, label)
        response = self._grpc(self._predict_stub.GetModelMetadata, request)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signatures)
        return {"model_spec": proto_to_json(response.model_spec),
                "metadata": {"signature_def": proto_to_json(signatures)}}

    def status(self, model: Optional[str] = None, version: Optional[int] = None, label: Optional[str] = None
               ) -> list[dict]:
        """The versions of the model and their states, as REST's `model_version_status` list: [{"version":
        "123", "state": "AVAILABLE", "status": {...}}]."""
        if self.transport == "rest":
            return self._rest("GET", self._rest_url(model, version, label, ""))["model_version_status"]
        from tensorflow_serving.apis import get_model_status_pb2

        request = get_model_status_pb2.GetModelStatusRequest()
        self._fill_spec(request.model_spec, model, version, label)
        response = self._grpc(self._model_stub.GetModelStatus, request)
        return proto_to_json(response)["model_version_status"]

    # ---- helpers ----------------------------------------------------------------------------------------------

    @staticmethod
    def _text_inputs(texts, text_pairs, inputs) -> dict[str, Any]:
        feed = dict(inputs or {})
        if texts is not None:
            feed["text"] = list(texts)
        if text_pairs is not None:
            if texts is None or len(text_pairs) != len(texts):
                raise ValueError("text_pairs needs one pair per text")
            feed["text_pair"] = list(text_pairs)
        if not feed:
            raise ValueError("nothing to send: give texts or inputs")
        return feed

    @staticmethod
    def _text_examples(texts, text_pairs, examples) -> list[Mapping[str, Any]]:
        if examples is not None:
            return list(examples)
        if texts is None:
            raise ValueError("nothing to send: give texts or examples")
        if text_pairs is not None and len(text_pairs) != len(texts):
            raise ValueError("text_pairs needs one pair per text")
        pairs = text_pairs if text_pairs is not None else [None] * len(texts)
        return [{"text": t} if p is None else {"text": t, "text_pair": p} for t, p in zip(texts, pairs)]

    def _model(self, model: Optional[str]) -> str:
        name = model or self.model
        if not name:
            raise ValueError("no model name: pass model= to the client or to the call")
        return name

    def _fill_spec(self, spec, model, version, label, signature: Optional[str] = None) -> None:
        if version is not None and label is not None:
            raise ValueError("give a version or a label, not both")
        spec.name = self._model(model)
        if version is not None:
            spec.version.value = int(version)
        if label is not None:
            spec.version_label = label
        if signature is not None:
            spec.signature_name = signature

    def _rest_url(self, model, version, label, suffix: str) -> str:
        if version is not None and label is not None:
            raise ValueError("give a version or a label, not both")
        url = f"{self.target.rstrip('/')}/v1/models/{self._model(model)}"
        if version is not None:
            url += f"/versions/{int(version)}"
        elif label is not None:
            url += f"/labels/{label}"
        return url + suffix

    def _lone_output(self, model, version, label, signature: str) -> str:
        """The name of a signature's only output, from the model's metadata (asked once per model/signature)."""
        key = (self._model(model), version, label, signature)
        if key not in self._output_names:
            signatures = self.metadata(model, version, label)["metadata"]["signature_def"]["signature_def"]
            self._output_names[key] = next(iter(signatures[signature]["outputs"]))
        return self._output_names[key]

    def _grpc_predict(self, feed, signature, model, version, label, output_filter) -> dict[str, np.ndarray]:
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest(output_filter=list(output_filter))
        self._fill_spec(request.model_spec, model, version, label, signature)
        for name, value in feed.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
        response = self._grpc(self._predict_stub.Predict, request)
        return {name: decode_strings(tf.make_ndarray(proto)) for name, proto in response.outputs.items()}

    def _with_retries(self, call: Callable[[], T]) -> T:
        for attempt in range(self.retries + 1):
            try:
                return call()
            except ServingClientError as error:
                if error.code != grpc.StatusCode.UNAVAILABLE or attempt == self.retries:
                    raise
            time.sleep(min(self.backoff * 2**attempt, 5.0))
        raise AssertionError("unreachable")

    def _grpc(self, method, request):
        def call():
            try:
                return method(request, timeout=self.timeout, metadata=self._metadata)
            except grpc.RpcError as error:
                raise ServingClientError(error.code(), error.details() or "") from None

        return self._with_retries(call)

    def _rest(self, verb: str, url: str, body: Optional[dict] = None) -> dict:
        data = None if body is None else json.dumps(body).encode("utf-8")
        if data is not None and len(data) > self.max_message_bytes:
            raise ServingClientError(grpc.StatusCode.RESOURCE_EXHAUSTED, f"request of {len(data)} bytes is over "
                                     f"max_message_bytes={self.max_message_bytes}")

        def call():
            try:
                response = self._session.request(verb, url, data=data, timeout=self.timeout,
                                                 headers={"Content-Type": "application/json"} if data else None)
            except requests.Timeout:
                raise ServingClientError(grpc.StatusCode.DEADLINE_EXCEEDED,
                                         f"no answer from {url} within {self.timeout} s") from None
            except requests.ConnectionError as error:
                raise ServingClientError(grpc.StatusCode.UNAVAILABLE, f"cannot reach {url}: {error}") from None
            if response.status_code == 200:
                return response.json()
            try:
                message = response.json()["error"]
            except (ValueError, KeyError, TypeError):
                message = response.text.strip() or response.reason
            code = _CODE_FOR_HTTP.get(response.status_code, grpc.StatusCode.UNKNOWN)
            raise ServingClientError(code, message, response.status_code)

        return self._with_retries(call)
