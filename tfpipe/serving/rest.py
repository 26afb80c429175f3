"""TF Serving's REST API as a WSGI app: GET /v1/models/NAME[/versions/N|/labels/L][/metadata],
POST .../NAME[/versions/N|/labels/L]:(predict|classify|regress); errors as {"error": "..."} with its HTTP mapping."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import grpc
from google.protobuf import json_format
from tensorflow_serving.apis import classification_pb2, get_model_metadata_pb2, model_pb2, regression_pb2
from werkzeug.wrappers import Request, Response

from tfpipe.serving import inference, rest_examples, rest_json, rest_predict
from tfpipe.serving.errors import ServingError, internal_error, invalid_argument
from tfpipe.serving.inference import Core

_MODEL = r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?"
PREDICTION_PATH = re.compile(_MODEL + r":(classify|regress|predict)", re.IGNORECASE)
STATUS_PATH = re.compile(r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?",
                         re.IGNORECASE)
INT64_MAX = 2**63 - 1
Observer = Callable[[str, str, str, "grpc.StatusCode", float], None]  # model, API, entrypoint, code, seconds


def _to_dict(message) -> dict:
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True,
                                     preserving_proto_field_name=True)


class RestApi:
    """The WSGI application behind `--rest_api_port`.

    Args:
        core: the model manager (anything with `acquire(model_spec)` and `status(model_spec)`).
        timeout_ms: `--rest_api_timeout_in_ms`; a request running longer answers DEADLINE_EXCEEDED (504).
        max_body_bytes: larger bodies answer RESOURCE_EXHAUSTED (429); TF Serving's default is INT_MAX.
        num_threads: workers that run requests (the HTTP threads wait on them with the timeout).
        metrics: optional (path, render_fn) serving Prometheus text.
        observer: called once per finished API request (metrics).
        cors: answer browsers' preflight and allow any origin (`--rest_api_enable_cors_support`).

    Examples:
    >>> PREDICTION_PATH.fullmatch("/v1/models/default/versions/123:predict").groups()
    ('default', '123', None, 'predict')
    """

    def __init__(self, core: Core, *, timeout_ms: int = 30000, max_body_bytes: int = 2**31 - 1, num_threads: int = 8,
                 metrics: tuple[str, Callable[[], str]] | None = None, observer: Observer | None = None,
                 cors: bool = False) -> None:
        self.core = core
        self.timeout_s = timeout_ms / 1000 if timeout_ms > 0 else None
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics
        self.observer = observer
        self.cors = cors
        self._pool = ThreadPoolExecutor(max_workers=max(1, num_threads), thread_name_prefix="tfpipe-rest")
        self._in_flight = 0
        self._idle = threading.Condition()

    # -- WSGI ------------------------------------------------------------------------------------------------

    def __call__(self, environ, start_response):
        request = Request(environ)
        with self._idle:
            self._in_flight += 1
        try:
            response = self._dispatch(request)
        except Exception as error:  # noqa: BLE001 - never an HTML error page
            response = self._error(internal_error(error))  # the detail goes to the log, not the client
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()
        if self.cors:
            response.headers["Access-Control-Allow-Origin"] = "*"
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = "Content-Type, Authorization"
        return response(environ, start_response)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Waits until no request is in flight (graceful shutdown)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _dispatch(self, request: Request) -> Response:
        path = request.path
        if self.cors and request.method == "OPTIONS":
            return Response(status=204)
        if self.metrics is not None and path == self.metrics[0] and request.method == "GET":
            return Response(self.metrics[1](), content_type="text/plain; version=0.0.4; charset=utf-8")
        if not path.lower().startswith("/v1/"):
            return self._error(ServingError(grpc.StatusCode.NOT_FOUND, f"Not found: {request.method} {path}"))
        start = time.perf_counter()
        model, api = "", "unknown"
        try:
            if request.method == "POST" and (match := PREDICTION_PATH.fullmatch(path)):
                model, api = match.group(1), match.group(4).lower()
                spec = self._spec(*match.groups()[:3])
                size = request.content_length or 0
                if size > self.max_body_bytes:
                    raise ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED, f"Request body of {size} bytes exceeds "
                                       f"the maximum message size of {self.max_body_bytes} bytes")
                body = request.get_data(cache=False)
                handler = {"predict": self._predict, "classify": self._classify, "regress": self._regress}[api]
                text = self._run(handler, spec, body)
            elif request.method == "GET" and (match := STATUS_PATH.fullmatch(path)):
                model, api = match.group(1) or "", "metadata" if match.group(4) else "status"
                if not model:
                    raise invalid_argument("Missing model name in request.")
                spec = self._spec(*match.groups()[:3])
                text = self._run(self._metadata if match.group(4) else self._status, spec, b"")
            else:
                raise invalid_argument(f"Malformed request: {request.method} {path}")
        except ServingError as error:
            self._observe(model, api, error.code, start)
            return self._error(error)
        self._observe(model, api, grpc.StatusCode.OK, start)
        return Response(text, content_type="application/json")

    def _observe(self, model: str, api: str, code: grpc.StatusCode, start: float) -> None:
        names = {"predict": "Predict", "classify": "Classify", "regress": "Regress", "metadata": "GetModelMetadata"}
        if self.observer is not None and api in names:
            self.observer(model, names[api], "REST", code, time.perf_counter() - start)

    @staticmethod
    def _error(error: ServingError) -> Response:
        return Response(json.dumps({"error": error.message}, ensure_ascii=False), status=error.http_status,
                        content_type="application/json")

    @staticmethod
    def _spec(name: str, version: str | None, label: str | None) -> model_pb2.ModelSpec:
        spec = model_pb2.ModelSpec(name=name)
        if version:
            if int(version) > INT64_MAX:
                raise invalid_argument(f"Failed to convert version: {version} to numeric.")
            spec.version.value = int(version)
        elif label:
            spec.version_label = label
        return spec

    def _run(self, handler, spec: model_pb2.ModelSpec, body: bytes) -> str:
        future = self._pool.submit(handler, spec, body)
        try:
            return future.result(timeout=self.timeout_s)
        except FutureTimeout:
            future.cancel()
            raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline exceeded: the request took longer than "
                               f"--rest_api_timeout_in_ms={int(self.timeout_s * 1000)}") from None
        except ServingError:
            raise
        except Exception as error:  # noqa: BLE001 - a bug must answer 500, not kill the connection
            raise internal_error(error) from None

    # -- handlers (run on the worker pool) -------------------------------------------------------------------

    def _predict(self, spec: model_pb2.ModelSpec, body: bytes) -> str:
        doc = rest_json.parse_body(body)
        signature_name = rest_json.signature_name(doc)
        with self.core.acquire(spec) as servable:
            signature = servable.signatures.get(signature_name or inference.DEFAULT_SIGNATURE)
            if signature is None:
                raise invalid_argument(f'Serving signature name: "{signature_name or inference.DEFAULT_SIGNATURE}" '
                                       "not found in signature def")
            inputs, fmt = rest_predict.predict_inputs(doc, dict(signature.inputs))
            _, outputs = inference.run_predict(servable, signature_name, inputs, [])
        return rest_predict.predict_response(outputs, fmt)

    def _classify(self, spec: model_pb2.ModelSpec, body: bytes) -> str:
        request = self._example_request(classification_pb2.ClassificationRequest, spec, body, "classify")
        return rest_examples.classify_response(inference.classify(self.core, request).result)

    def _regress(self, spec: model_pb2.ModelSpec, body: bytes) -> str:
        request = self._example_request(regression_pb2.RegressionRequest, spec, body, "regress")
        return rest_examples.regress_response(inference.regress(self.core, request).result)

    @staticmethod
    def _example_request(request_class, spec: model_pb2.ModelSpec, body: bytes, api: str):
        """A Classification/RegressionRequest from a REST body (`examples` / `context`, `signature_name`)."""
        doc = rest_json.parse_body(body)
        request = request_class(model_spec=spec)
        request.model_spec.signature_name = rest_json.signature_name(doc)
        rest_examples.fill_example_input(doc, request.input, api)
        return request

    def _status(self, spec: model_pb2.ModelSpec, body: bytes) -> str:
        return json.dumps(_to_dict(self.core.status(spec)), indent=1)

    def _metadata(self, spec: model_pb2.ModelSpec, body: bytes) -> str:
        request = get_model_metadata_pb2.GetModelMetadataRequest(model_spec=spec,
                                                                 metadata_field=[inference.SIGNATURE_DEF_FIELD])
        response = inference.model_metadata(self.core, request)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata[inference.SIGNATURE_DEF_FIELD].Unpack(signature_map)
        return json.dumps({"model_spec": _to_dict(response.model_spec),
                           "metadata": {inference.SIGNATURE_DEF_FIELD: _to_dict(signature_map)}}, indent=1)
