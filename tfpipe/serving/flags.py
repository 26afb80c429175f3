"""`tensorflow_model_server`'s flags (names and defaults from its main.cc) plus `--host`, `--allowed_model_roots`,
`--backend` and tfpipe.serving.auth's access flags; `--flag=value` and `--flag value` both work, booleans also bare
(`--enable_batching`)."""

from __future__ import annotations

import argparse
from dataclasses import MISSING, dataclass, field, fields

from tfpipe.export.convert.manifest import BACKENDS


def parse_bool(text: str | bool) -> bool:
    """TF flag booleans: true/false, 1/0, yes/no (any case)."""
    if isinstance(text, bool):
        return text
    value = text.strip().lower()
    if value in ("true", "1", "yes", "t", "y"):
        return True
    if value in ("false", "0", "no", "f", "n"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false), got {text!r}")


@dataclass
class ServerOptions:
    """Everything `tfpipe serve` / `ModelServer` can be told; field names are the flag names.

    Examples:
    >>> parse_flags(["--port=9000", "--rest_api_port", "9001", "--enable_batching"]).port
    9000
    >>> parse_flags(["--enable_batching=false"]).enable_batching
    False
    """

    port: int = 8500
    host: str = "127.0.0.1"
    grpc_socket_path: str = ""
    rest_api_port: int = 0  # 0 = REST disabled, as in TF Serving
    rest_api_num_threads: int = 8
    rest_api_timeout_in_ms: int = 30000
    rest_api_enable_cors_support: bool = False
    rest_api_read_timeout_in_ms: int = 30000  # tfpipe's own (tfpipe.serving.rest_server): a quiet client is dropped
    rest_api_max_connections: int = 1024  # tfpipe's own: REST connections served at once (0: no limit)
    enable_batching: bool = False
    allow_version_labels_for_unavailable_models: bool = False
    batching_parameters_file: str = ""
    model_config_file: str = ""
    model_config_file_poll_wait_seconds: int = 0
    model_name: str = "default"
    model_base_path: str = ""
    max_num_load_retries: int = 5
    load_retry_interval_micros: int = 60_000_000
    file_system_poll_wait_seconds: int = 1
    flush_filesystem_caches: bool = True
    tensorflow_session_parallelism: int = 0
    tensorflow_intra_op_parallelism: int = 0
    tensorflow_inter_op_parallelism: int = 0
    use_alts_credentials: bool = False
    ssl_config_file: str = ""
    platform_config_file: str = ""
    per_process_gpu_memory_fraction: float = 0.0
    saved_model_tags: str = "serve"
    grpc_channel_arguments: str = ""
    grpc_max_threads: int = 0
    enable_model_warmup: bool = True
    num_request_iterations_for_warmup: int = 1
    monitoring_config_file: str = ""
    remove_unused_fields_from_bundle_metagraph: bool = True
    prefer_tflite_model: bool = False
    enable_signature_method_name_check: bool = False
    xla_cpu_compilation_enabled: bool = False
    enable_profiler: bool = True
    allowed_model_roots: list[str] = field(default_factory=list)
    backend: str = "tensorflow"  # tfpipe's own: what runs versions that have a verified converted encoder
    enable_model_service: bool | None = None  # tfpipe's own (tfpipe.serving.auth): None = only on loopback
    admin_token_file: str = ""
    auth_token_file: str = ""
    version: bool = False

    def channel_arguments(self) -> list[tuple[str, int | str]]:
        """`--grpc_channel_arguments=a=1,b=x` → [("a", 1), ("b", "x")]."""
        out: list[tuple[str, int | str]] = []
        for item in filter(None, (p.strip() for p in self.grpc_channel_arguments.split(","))):
            if "=" not in item:
                raise ValueError(f"--grpc_channel_arguments: {item!r} is not key=value")
            key, value = item.split("=", 1)
            out.append((key.strip(), int(value) if value.strip().lstrip("-").isdigit() else value.strip()))
        return out


_HELP = {
    "port": "gRPC port (0 picks a free one)",
    "rest_api_port": "HTTP/REST port; 0 disables REST",
    "model_config_file": "ModelServerConfig text proto (overrides --model_name/--model_base_path)",
    "model_base_path": "folder of numbered SavedModel versions served as --model_name",
    "file_system_poll_wait_seconds": "seconds between base-path polls for new versions (0: only at load)",
    "allowed_model_roots": "comma-separated folders that reloaded configs may point into (besides the start-up ones)",
    "host": "address to listen on (default 127.0.0.1)",
    "rest_api_read_timeout_in_ms": "REST: a client that sends nothing for this long while it owes part of a request "
                                   "(or between requests) is disconnected",
    "rest_api_max_connections": "REST: connections served at once; requests on connections beyond answer 503 (0: no "
                                "limit)",
    "ssl_config_file": "SSLConfig text proto: TLS (mTLS with client_verify) for gRPC and REST",
    "enable_model_service": "serve config reloads (ModelService/HandleReloadConfigRequest); default: only when "
                            "--host is loopback",
    "admin_token_file": "file holding the bearer token config reloads need",
    "auth_token_file": "file holding the bearer token every other gRPC call and REST request needs",
    "backend": "what runs a version with a verified conversion (tfpipe convert): tensorflow (the SavedModel), "
               "onnxruntime or openvino (that runtime's fastest variant), auto (the fastest variant that beat the "
               "SavedModel); versions without one are served by TensorFlow",
}
_CHOICES = {"backend": BACKENDS}


def add_flags(parser: argparse.ArgumentParser) -> None:
    """Adds every ServerOptions field as `--name` to a parser."""
    for f in fields(ServerOptions):
        name = f"--{f.name}"
        default = f.default if f.default_factory is MISSING else f.default_factory()
        if f.type in ("bool", "bool | None"):  # None: decided from other flags
            parser.add_argument(name, nargs="?", const=True, default=default, type=parse_bool, metavar="BOOL",
                                help=_HELP.get(f.name, argparse.SUPPRESS if f.name in _QUIET else None))
        elif f.name == "allowed_model_roots":
            parser.add_argument(name, action="append", default=[], metavar="DIRS", help=_HELP[f.name])
        else:
            kind = {"int": int, "float": float}.get(f.type, str)
            parser.add_argument(name, type=kind, default=default, choices=_CHOICES.get(f.name), help=_HELP.get(f.name))


# Flags accepted for compatibility that do nothing here; kept out of --help noise.
_QUIET = {"flush_filesystem_caches", "use_alts_credentials", "remove_unused_fields_from_bundle_metagraph",
          "prefer_tflite_model", "xla_cpu_compilation_enabled", "enable_profiler"}


def options_from_args(args: argparse.Namespace) -> ServerOptions:
    values = {f.name: getattr(args, f.name) for f in fields(ServerOptions) if hasattr(args, f.name)}
    roots = [r.strip() for item in values.get("allowed_model_roots") or [] for r in item.split(",") if r.strip()]
    values["allowed_model_roots"] = roots
    return ServerOptions(**values)


def parse_flags(argv: list[str]) -> ServerOptions:
    parser = argparse.ArgumentParser(prog="tfpipe serve", allow_abbrev=False)
    add_flags(parser)
    return options_from_args(parser.parse_args(argv))
