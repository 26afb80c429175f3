"""Who may call what, for gRPC (a `grpc.ServerInterceptor`) and REST (a WSGI wrapper) alike: config reloads are an
admin call (on by default only on a loopback server), and bearer tokens (`authorization: Bearer <token>`) can guard
reloads (`--admin_token_file`) and every other call (`--auth_token_file`). TF Serving has none of this."""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import grpc

from tfpipe.serving.errors import HTTP_STATUS, ServingError

# The one RPC that changes what the server serves (and so reads any folder it is pointed at).
ADMIN_METHODS = frozenset({"/tensorflow.serving.ModelService/HandleReloadConfigRequest"})


def is_loopback(host: str) -> bool:
    """Whether a listen address only accepts connections from this machine.

    Examples:
    >>> [is_loopback(h) for h in ("127.0.0.1", "::1", "[::1]", "localhost", "0.0.0.0", "10.0.0.5", "")]
    [True, True, True, True, False, False, False]
    """
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost may resolve anywhere
        return False


def read_token(path: str | Path, flag: str) -> str:
    """The token in a file (surrounding whitespace dropped); ValueError when unreadable or empty."""
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read {flag} {path}: {error}") from None
    if not token or any(c.isspace() for c in token):
        raise ValueError(f"{flag} {path} must hold one token (no spaces), and holds "
                         f"{'nothing' if not token else 'several words'}")
    return token


def access_policy(host: str, enable_model_service: bool | None = None, admin_token_file: str = "",
                  auth_token_file: str = "") -> AccessPolicy:
    """The policy the flags describe; `enable_model_service` None (the default) means on only for a loopback `host`,
    since a reload makes the server read any folder inside the allowed roots on a caller's word."""
    enabled = is_loopback(host) if enable_model_service is None else enable_model_service
    return AccessPolicy(admin_enabled=enabled,
                        admin_token=read_token(admin_token_file, "--admin_token_file") if admin_token_file else "",
                        auth_token=read_token(auth_token_file, "--auth_token_file") if auth_token_file else "")


@dataclass(frozen=True)
class AccessPolicy:
    """What a call needs.

    Args:
        admin_enabled: whether reloads are served at all (`--enable_model_service`); refused ones answer
            PERMISSION_DENIED.
        admin_token: the token reloads need (empty: the auth token, if any).
        auth_token: the token every other call needs (empty: none); the admin token is accepted too.

    Examples:
    >>> policy = AccessPolicy(admin_token="s3cret", auth_token="t0ken")
    >>> policy.check(False, "Bearer t0ken") is None, policy.check(True, "Bearer t0ken").code.name
    (True, 'UNAUTHENTICATED')
    >>> AccessPolicy(admin_enabled=False).check(True, None).code.name
    'PERMISSION_DENIED'
    """

    admin_enabled: bool = True
    admin_token: str = ""
    auth_token: str = ""

    @property
    def is_open(self) -> bool:
        return self.admin_enabled and not self.admin_token and not self.auth_token

    def _tokens(self, admin: bool) -> list[str]:
        if admin:
            return [self.admin_token or self.auth_token]
        return [self.auth_token, self.admin_token] if self.auth_token else []

    def check(self, admin: bool, authorization: str | None) -> ServingError | None:
        """None when a call (`admin`: a reload) with this `authorization` header may go on, else the refusal."""
        if admin and not self.admin_enabled:
            return ServingError(grpc.StatusCode.PERMISSION_DENIED, "Config reloads (ModelService/"
                                "HandleReloadConfigRequest) are disabled on this server: start it with "
                                "--enable_model_service=true to allow them")
        tokens = [t for t in self._tokens(admin) if t]
        if not tokens:
            return None
        scheme, _, given = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return ServingError(grpc.StatusCode.UNAUTHENTICATED,
                                "Missing bearer token: send the header 'authorization: Bearer <token>'")
        # every token compared in constant time, none skipped, so timing tells nothing about which one is close
        matches = [hmac.compare_digest(given.strip().encode(), t.encode()) for t in tokens]
        if not any(matches):
            return ServingError(grpc.StatusCode.UNAUTHENTICATED, "Invalid bearer token")
        return None


class AuthInterceptor(grpc.ServerInterceptor):
    """Refuses gRPC calls the policy does not allow, before they reach a servicer."""

    def __init__(self, policy: AccessPolicy) -> None:
        self.policy = policy

    def intercept_service(self, continuation: Callable, handler_call_details: grpc.HandlerCallDetails):
        metadata = {k.lower(): v for k, v in handler_call_details.invocation_metadata or ()}
        refusal = self.policy.check(handler_call_details.method in ADMIN_METHODS, metadata.get("authorization"))
        if refusal is None:
            return continuation(handler_call_details)

        def refuse(request, context: grpc.ServicerContext):
            context.abort(refusal.code, refusal.message)

        return grpc.unary_unary_rpc_method_handler(refuse)  # every TF Serving RPC is unary


def guard_wsgi(app: Callable, policy: AccessPolicy, cors: bool = False) -> Callable:
    """The REST app behind the policy: every path (/v1/models/..., the metrics path) needs the auth token when one
    is set; CORS preflights (OPTIONS, which browsers send without credentials) pass when `cors` is on. TF Serving's
    REST API has no admin paths, so the admin settings do not apply here."""
    if not policy.auth_token:
        return app

    def guarded(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if cors and environ.get("REQUEST_METHOD") == "OPTIONS":
            return app(environ, start_response)
        refusal = policy.check(False, environ.get("HTTP_AUTHORIZATION"))
        if refusal is None:
            return app(environ, start_response)
        body = json.dumps({"error": refusal.message}).encode()  # TF Serving's REST error shape
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                   ("WWW-Authenticate", 'Bearer realm="tfpipe"')]
        if cors:
            headers.append(("Access-Control-Allow-Origin", "*"))
        start_response(f"{HTTP_STATUS[refusal.code]} Unauthorized", headers)
        return [body]

    return guarded
