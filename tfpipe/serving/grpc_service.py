"""gRPC servicers for tensorflow.serving.PredictionService and ModelService: each call runs the shared inference
code and turns a ServingError into the same status code and message TF Serving sends."""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc
from tensorflow_serving.apis import (
    model_management_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)

from tfpipe.serving import inference
from tfpipe.serving.errors import ServingError, internal_error
from tfpipe.serving.manager import ModelManager

Observer = Callable[[str, str, str, grpc.StatusCode, float], None]  # model, API, entrypoint, code, seconds


def _call(context: grpc.ServicerContext, api: str, model: str, fn, observer: Observer | None):
    start = time.perf_counter()
    code = grpc.StatusCode.OK
    try:
        return fn()
    except ServingError as error:
        code = error.code
        message = error.message
    except Exception as error:  # noqa: BLE001 - a bug answers INTERNAL, detail in the log; serving goes on
        hidden = internal_error(error)
        code, message = hidden.code, hidden.message
    finally:
        if observer is not None:
            observer(model, api, "GRPC", code, time.perf_counter() - start)
    context.abort(code, message)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict / Classify / Regress / MultiInference / GetModelMetadata over a model manager."""

    def __init__(self, core: ModelManager, observer: Observer | None = None) -> None:
        self.core = core
        self.observer = observer

    def Predict(self, request, context):  # noqa: N802 - gRPC method names
        return _call(context, "Predict", request.model_spec.name, lambda: inference.predict(self.core, request),
                     self.observer)

    def Classify(self, request, context):  # noqa: N802
        return _call(context, "Classify", request.model_spec.name, lambda: inference.classify(self.core, request),
                     self.observer)

    def Regress(self, request, context):  # noqa: N802
        return _call(context, "Regress", request.model_spec.name, lambda: inference.regress(self.core, request),
                     self.observer)

    def MultiInference(self, request, context):  # noqa: N802
        model = request.tasks[0].model_spec.name if request.tasks else ""
        return _call(context, "MultiInference", model, lambda: inference.multi_inference(self.core, request),
                     self.observer)

    def GetModelMetadata(self, request, context):  # noqa: N802
        return _call(context, "GetModelMetadata", request.model_spec.name,
                     lambda: inference.model_metadata(self.core, request), self.observer)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus and HandleReloadConfigRequest (base paths limited to the allowed roots; who may call it is
    tfpipe.serving.auth's interceptor)."""

    def __init__(self, core: ModelManager, on_reload: Callable[[object], None] | None = None) -> None:
        self.core = core
        self.on_reload = on_reload

    def GetModelStatus(self, request, context):  # noqa: N802
        def status():
            if not request.HasField("model_spec"):
                raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")
            return self.core.status(request.model_spec)

        return _call(context, "GetModelStatus", request.model_spec.name, status, None)

    def HandleReloadConfigRequest(self, request, context):  # noqa: N802
        def reload():
            self.core.apply_config(request.config, check_roots=True)
            if self.on_reload is not None:
                self.on_reload(request.config)
            return model_management_pb2.ReloadConfigResponse(status={"error_code": 0, "error_message": ""})

        return _call(context, "HandleReloadConfigRequest", "", reload, None)
