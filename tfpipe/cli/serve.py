"""Serve SavedModels over TensorFlow Serving's gRPC and REST APIs (tensorflow_model_server's flags, e.g.
`tfpipe serve --port=8500 --rest_api_port=8501 --model_name=NAME --model_base_path=DIR`). SIGTERM or Ctrl-C stops
accepting requests, lets those in flight finish, and exits 0."""

from __future__ import annotations

import argparse

HELP = "serve SavedModels with TensorFlow Serving's gRPC/REST API"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tfpipe.serving.flags import add_flags

    parser.allow_abbrev = False
    add_flags(parser)
    parser.add_argument("--shutdown_grace_seconds", type=float, default=30.0,
                        help="how long SIGTERM waits for in-flight requests (default 30)")


def run(args: argparse.Namespace) -> int:
    import logging
    import signal
    import sys

    from tfpipe.serving.flags import options_from_args
    from tfpipe.serving.server import ModelServer

    options = options_from_args(args)
    if options.version:
        from importlib.metadata import version

        print(f"TensorFlow ModelServer (tfpipe {version('tfpipe')})")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)  # its start/stop lines repeat ours
    server = ModelServer(options).start()
    ports = f"gRPC {options.host}:{server.grpc_port}"
    if server.rest_port:
        ports += f", REST {'https' if options.ssl_config_file else 'http'}://{options.host}:{server.rest_port}"
    print(f"tfpipe serve: serving {', '.join(server.manager.model_names())} on {ports}", flush=True)

    def shutdown(signum, _frame) -> None:
        print(f"tfpipe serve: {signal.Signals(signum).name}: draining in-flight requests", file=sys.stderr,
              flush=True)
        server.stop(grace=args.shutdown_grace_seconds)

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    while not server.wait(timeout=0.5):
        pass
    server.stop(grace=args.shutdown_grace_seconds)  # returns at once when the handler already stopped it
    return 0
