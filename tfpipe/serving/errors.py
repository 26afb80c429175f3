"""TensorFlow Serving's error model: a gRPC status code plus message, and the HTTP status its REST layer maps it to.

Every failure a request can cause is raised as `ServingError`; the gRPC and REST front ends turn it into the same
code and message TF Serving would send.
"""

from __future__ import annotations

import logging
import re
import uuid

import grpc

log = logging.getLogger(__name__)

# tensorflow_serving/model_servers/http_rest_api_handler.cc → ToHTTPStatusCode
HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 500,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}


class ServingError(Exception):
    """A request failure with TF Serving's status code and message.

    Examples:
    >>> error = ServingError(grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(x)")
    >>> error.http_status, str(error)
    (404, 'Servable not found for request: Latest(x)')
    """

    def __init__(self, code: grpc.StatusCode, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail  # server-side only (logs, start-up errors); never sent to a client

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code, 500)


def invalid_argument(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.NOT_FOUND, message)


def failed_precondition(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.FAILED_PRECONDITION, message)


def unavailable(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.UNAVAILABLE, message)


# An absolute path (/a/b/, C:\x) or a Python traceback: text that describes the server, not the request.
_INTERNALS = re.compile(r'(?<![\w.:/])/[\w.~-]+/|\b[A-Za-z]:\\|Traceback \(most recent call last\)|File "')


def reveals_internals(message: str) -> bool:
    """Whether a message names server files or carries a traceback (and so must not reach a client).

    Examples:
    >>> reveals_internals("/srv/models/x/1; No such file or directory"), reveals_internals("Incompatible shapes")
    (True, False)
    >>> reveals_internals('Serving signature key "a/b" not found.'), reveals_internals("tensorflow/serving/predict")
    (False, False)
    """
    return bool(_INTERNALS.search(message))


def hidden(code: grpc.StatusCode, summary: str, detail: str, *, exc_info: bool = False) -> ServingError:
    """A failure whose detail (paths, exception text) stays in the server log under a short id; the client gets
    `code` and "<summary>; request id <id>" so an operator can find the log line.

    Examples:
    >>> error = hidden(grpc.StatusCode.INTERNAL, "Internal error", "KeyError: '/srv/x'")
    >>> error.message.startswith("Internal error; request id "), "/srv" in error.message
    (True, False)
    """
    ref = uuid.uuid4().hex[:8]
    log.error("%s [request id %s]: %s", summary, ref, detail, exc_info=exc_info)
    return ServingError(code, f"{summary}; request id {ref}", detail=detail)


def internal_error(error: BaseException) -> ServingError:
    """What a client sees of a bug (an unexpected exception): INTERNAL and an id; the traceback goes to the log."""
    return hidden(grpc.StatusCode.INTERNAL, "Internal error", f"{type(error).__name__}: {error}", exc_info=True)
