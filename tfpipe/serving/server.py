"""`ModelServer`: the model manager behind a gRPC server (PredictionService, ModelService) and a REST server,
started from ServerOptions (tensorflow_model_server's flags); `stop()` stops accepting and lets requests finish."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import text_format
from tensorflow.core.protobuf import config_pb2
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc
from tensorflow_serving.config import model_server_config_pb2

from tfpipe.serving.auth import AccessPolicy, AuthInterceptor, access_policy, guard_wsgi
from tfpipe.serving.base_paths import allowed_roots
from tfpipe.serving.errors import ServingError
from tfpipe.serving.flags import ServerOptions
from tfpipe.serving.grpc_service import ModelService, PredictionService
from tfpipe.serving.manager import ManagerOptions, ModelManager
from tfpipe.serving.rest import RestApi
from tfpipe.serving.rest_server import RestServer

log = logging.getLogger(__name__)
MAX_MESSAGE_BYTES = 2**31 - 1  # TF Serving sets INT_MAX on its gRPC server


class ServerStartError(ValueError):
    """The server cannot start: bad flags, an unreadable config file, a model that does not load."""


def read_model_config(path: str | Path) -> model_server_config_pb2.ModelServerConfig:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ServerStartError(f"cannot read --model_config_file {path}: {error}") from None
    try:
        return text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    except text_format.ParseError as error:
        raise ServerStartError(f"--model_config_file {path} is not a valid ModelServerConfig text proto: "
                               f"{error}") from None


def model_config(options: ServerOptions) -> model_server_config_pb2.ModelServerConfig:
    """The ModelServerConfig the flags describe (a config file, or one model from --model_base_path)."""
    if options.model_config_file:
        return read_model_config(options.model_config_file)
    if not options.model_base_path:
        raise ServerStartError("Both --model_config_file and --model_base_path are empty: nothing to serve.")
    config = model_server_config_pb2.ModelServerConfig()
    config.model_config_list.config.add(name=options.model_name, base_path=options.model_base_path,
                                        model_platform="tensorflow")
    return config


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


class ModelServer:
    """tensorflow_model_server in-process.

    Args:
        options: ServerOptions (see tfpipe.serving.flags); `port=0` picks a free gRPC port, `rest_api_port=0`
            disables REST as in TF Serving.

    Examples:
    >>> server = ModelServer(ServerOptions(port=0, model_base_path="/nonexistent"))
    >>> server.start()
    Traceback (most recent call last):
    ...
    tfpipe.serving.server.ServerStartError: Could not find base path /nonexistent for servable default
    """

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.grpc_port: int | None = None
        self.rest_port: int | None = None
        self.manager: ModelManager | None = None
        self.metrics = None
        self._grpc: grpc.Server | None = None
        self._rest_server = None
        self._rest_api: RestApi | None = None
        self._threads: list[threading.Thread] = []
        self._stopped = threading.Event()
        self._config_text = ""
        self._access = AccessPolicy()

    # -- start -----------------------------------------------------------------------------------------------

    def start(self) -> ModelServer:
        o = self.options
        config = model_config(o)
        session_config = config_pb2.ConfigProto(intra_op_parallelism_threads=o.tensorflow_intra_op_parallelism,
                                                inter_op_parallelism_threads=o.tensorflow_inter_op_parallelism)
        if o.per_process_gpu_memory_fraction:
            session_config.gpu_options.per_process_gpu_memory_fraction = o.per_process_gpu_memory_fraction
        _eager_threads(o.tensorflow_intra_op_parallelism, o.tensorflow_inter_op_parallelism)
        self._access = _access_policy(o)
        roots = allowed_roots(o.allowed_model_roots, [c.base_path for c in config.model_config_list.config])
        batcher_factory, batch_size = self._batching()
        self.manager = ModelManager(ManagerOptions(
            poll_seconds=o.file_system_poll_wait_seconds, enable_warmup=o.enable_model_warmup,
            warmup_iterations=o.num_request_iterations_for_warmup, session_config=session_config,
            batcher_factory=batcher_factory, batch_size=batch_size, allowed_roots=roots,
            allow_labels_for_unavailable=o.allow_version_labels_for_unavailable_models,
            max_load_retries=o.max_num_load_retries,
            tags=tuple(t.strip() for t in o.saved_model_tags.split(",") if t.strip()),
            method_name_check=o.enable_signature_method_name_check, backend=o.backend))
        metrics_path = self._monitoring()
        self.manager.options.metrics = self.metrics
        try:
            self.manager.apply_config(config)
            self._start_grpc()
            if o.rest_api_port:
                self._start_rest(metrics_path)
        except BaseException as error:
            self.stop(grace=0)  # nothing half-started stays behind (loaded models, a bound port)
            if isinstance(error, ServingError):  # the operator sees the detail clients do not
                raise ServerStartError(error.detail or error.message) from None
            raise
        self.manager.start()
        if o.model_config_file and o.model_config_file_poll_wait_seconds > 0:
            self._config_text = Path(o.model_config_file).read_text(encoding="utf-8")
            self._spawn(self._poll_config, "tfpipe-config-poll")
        log.info("Running gRPC ModelServer at %s ...", _address(o.host, self.grpc_port))
        if self.rest_port:
            log.info("Exporting HTTP/REST API at:%s ...", _address(o.host, self.rest_port))
        return self

    def _batching(self) -> tuple[Callable[[Callable], Any] | None, int]:
        """The batcher factory (None without --enable_batching) and the batch size models mostly run at: 1 without
        batching, else what the batcher forms under load; the parameters file is read once for both."""
        if not self.options.enable_batching:
            return None, 1
        from tfpipe.serving.batching import Batcher
        from tfpipe.serving.config_protos import BatchingParameters, parse_text_proto

        path = self.options.batching_parameters_file
        params = parse_text_proto(path, BatchingParameters) if path else BatchingParameters()
        return (lambda run_fn: Batcher.from_proto(params, run_fn, self._record_batch)), Batcher.execution_size(params)

    def _record_batch(self, thread_pool_name: str, queued_s: list[float]) -> None:
        if self.metrics is not None:  # set up after the batcher factory, read at each batch
            self.metrics.record_batch(thread_pool_name, queued_s)

    def _monitoring(self) -> str | None:
        """The Prometheus path when --monitoring_config_file enables it (metrics also count gRPC traffic)."""
        if not self.options.monitoring_config_file:
            return None
        from tfpipe.serving.config_protos import MonitoringConfig, parse_text_proto

        monitoring = parse_text_proto(self.options.monitoring_config_file, MonitoringConfig)
        if not monitoring.prometheus_config.enable:
            return None
        self.metrics = _new_metrics()
        return monitoring.prometheus_config.path or "/monitoring/prometheus/metrics"

    def _observer(self):
        return None if self.metrics is None else self.metrics.record_request

    def _start_grpc(self) -> None:
        o = self.options
        # no SO_REUSEPORT: a second server on a busy port must fail, not share the traffic
        args = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES), ("grpc.so_reuseport", 0)]
        try:
            extra = o.channel_arguments()
        except ValueError as error:
            raise ServerStartError(str(error)) from None
        args = [a for a in args if a[0] not in dict(extra)] + extra
        interceptors = [] if self._access.is_open else [AuthInterceptor(self._access)]
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=o.grpc_max_threads or 32,
                                                        thread_name_prefix="tfpipe-grpc"), options=args,
                             interceptors=interceptors)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionService(self.manager, self._observer()), server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(self.manager), server)
        address = _address(o.host, o.port)
        try:
            if o.ssl_config_file:
                from tfpipe.serving.config_protos import SSLConfig, parse_text_proto
                from tfpipe.serving.tls import server_credentials

                credentials = server_credentials(parse_text_proto(o.ssl_config_file, SSLConfig))
                self.grpc_port = server.add_secure_port(address, credentials)
            else:
                self.grpc_port = server.add_insecure_port(address)
            if o.grpc_socket_path:
                server.add_insecure_port(f"unix:{o.grpc_socket_path}")
        except RuntimeError as error:
            raise ServerStartError(f"cannot listen on {address} for gRPC: {error}") from None
        if not self.grpc_port:
            raise ServerStartError(f"cannot listen on {address} for gRPC (port in use?)")
        server.start()
        self._grpc = server

    def _start_rest(self, metrics_path: str | None) -> None:
        o = self.options
        limit = dict(o.channel_arguments()).get("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)
        metrics = (metrics_path, self.metrics.render) if metrics_path and self.metrics is not None else None
        self._rest_api = RestApi(self.manager, timeout_ms=o.rest_api_timeout_in_ms, max_body_bytes=int(limit),
                                 num_threads=o.rest_api_num_threads, metrics=metrics, observer=self._observer(),
                                 cors=o.rest_api_enable_cors_support)
        app = guard_wsgi(self._rest_api, self._access, cors=o.rest_api_enable_cors_support)
        try:
            self._rest_server = RestServer(app, o.host, o.rest_api_port,
                                           read_timeout_s=o.rest_api_read_timeout_in_ms / 1000,
                                           max_connections=o.rest_api_max_connections, max_body_bytes=int(limit),
                                           threads=o.rest_api_num_threads, ssl_context=self._rest_ssl_context())
            self._rest_server.start()
        except OSError as error:
            raise ServerStartError(f"cannot listen on {_address(o.host, o.rest_api_port)} for REST: {error}") from None
        self.rest_port = self._rest_server.port

    def _rest_ssl_context(self):
        """TLS for REST from the same --ssl_config_file as gRPC (None: plain HTTP)."""
        if not self.options.ssl_config_file:
            return None
        from tfpipe.serving.config_protos import SSLConfig, parse_text_proto
        from tfpipe.serving.tls import server_ssl_context

        try:
            return server_ssl_context(parse_text_proto(self.options.ssl_config_file, SSLConfig))
        except ValueError as error:
            raise ServerStartError(str(error)) from None

    def _spawn(self, target, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _poll_config(self) -> None:
        path = Path(self.options.model_config_file)
        while not self._stopped.wait(self.options.model_config_file_poll_wait_seconds):
            try:
                text = path.read_text(encoding="utf-8")
                if text != self._config_text:
                    self.manager.apply_config(text_format.Parse(text, model_server_config_pb2.ModelServerConfig()))
                    self._config_text = text
            except Exception:  # noqa: BLE001 - a bad edit keeps the old config
                log.exception("reloading %s failed; keeping the current models", path)

    # -- stop ------------------------------------------------------------------------------------------------

    def stop(self, grace: float = 30.0) -> None:
        """Stops accepting requests, waits (up to `grace` s) for those in flight, then unloads the models."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        done = self._grpc.stop(grace) if self._grpc is not None else None
        if self._rest_server is not None:
            self._rest_server.stop(grace)  # no new connections; those in flight finish (up to grace)
            self._rest_api.wait_idle(grace)
            self._rest_api.close()
        if done is not None:
            done.wait(grace)
        if self.manager is not None:
            self.manager.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Blocks until stop() has been called."""
        return self._stopped.wait(timeout)

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop(grace=5)


def _access_policy(o: ServerOptions) -> AccessPolicy:
    try:
        policy = access_policy(o.host, o.enable_model_service, o.admin_token_file, o.auth_token_file)
    except ValueError as error:
        raise ServerStartError(str(error)) from None
    if o.admin_token_file and not policy.admin_enabled:
        log.warning("--admin_token_file is set but config reloads are off (--enable_model_service defaults to on "
                    "only for a loopback --host, and --host is %s)", o.host)
    return policy


def _eager_threads(intra: int, inter: int) -> None:
    """Thread pools for TF2 (eager) models; TF only takes them before its runtime starts, so later is a warning."""
    import tensorflow as tf

    try:
        if intra:
            tf.config.threading.set_intra_op_parallelism_threads(intra)
        if inter:
            tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError as error:
        log.warning("TF2 models keep TensorFlow's existing thread pools: %s", error)


def _new_metrics():
    from tfpipe.serving.metrics import Metrics

    return Metrics()
