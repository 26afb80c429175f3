"""Predict with an exported model: over gRPC (`--server HOST:PORT`) or REST (`--rest URL`) from TF Serving or
`tfpipe serve`, printing one JSON line per TEXT; or offline from an export folder (`--export-dir DIR --input FILE
--output out.jsonl`), writing one JSON line per input record."""

from __future__ import annotations

import argparse
import json

from tfpipe.cli.common import (
    add_config_args,
    add_reader_args,
    build_config,
    eprint,
    print_json,
    progress_enabled,
    report_reading,
)

HELP = "predict with an exported model, through a server (gRPC/REST) or offline from the export folder"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--server", metavar="HOST:PORT", help="gRPC address of TF Serving or tfpipe serve")
    source.add_argument("--rest", metavar="URL", help="REST base URL, e.g. http://localhost:8501")
    source.add_argument("--export-dir", metavar="DIR", help="offline: an export version folder (NAME/VERSION)")
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="texts to predict (server mode)")
    server = parser.add_argument_group("server")
    server.add_argument("--model", help="model name on the server")
    parser.add_argument("--signature", help="signature to run (default: serving_default for --api predict, "
                        "classify / regress for those APIs)")
    server.add_argument("--api", choices=["predict", "classify", "regress"], default="predict",
                        help="TF Serving API: Predict on raw text (default), or Classify / Regress on tf.Examples "
                             "with a `text` feature")
    which = server.add_mutually_exclusive_group()
    which.add_argument("--version", type=int, help="a model version (default: the server's choice)")
    which.add_argument("--label", help="a version label, e.g. stable")
    server.add_argument("--text-pair", action="append", metavar="TEXT",
                        help="second text for pair tasks; repeat once per TEXT, in order")
    server.add_argument("--timeout", type=float, default=10.0, help="seconds per request (default 10)")
    server.add_argument("--retries", type=int, default=4, help="retries on UNAVAILABLE / HTTP 503 (default 4)")
    server.add_argument("--root-cert", metavar="PEM", help="TLS: CA certificate that signed the server's")
    server.add_argument("--client-cert", metavar="PEM", help="TLS: client certificate (mutual TLS)")
    server.add_argument("--client-key", metavar="PEM", help="TLS: client private key (mutual TLS)")
    offline = parser.add_argument_group("offline")
    offline.add_argument("--input", metavar="FILE", help="records to predict (text, tsv, csv, jsonl, conll)")
    offline.add_argument("--output", metavar="FILE.jsonl", help="where the predictions go")
    # Its own dest: `batch_size` is spaCy's in the shared flag table of build_config.
    offline.add_argument("--batch-size", dest="predict_batch_size", type=int, default=64,
                         help="texts per SavedModel call (default 64)")
    offline.add_argument("--quiet", action="store_true", help="no progress bar")
    add_reader_args(parser)
    add_config_args(parser, quiet=False)  # offline only: the reader section (and --set reader.KEY=VALUE)


def _server(args: argparse.Namespace) -> int:
    import numpy as np

    from tfpipe.serving.client import ServingClient, ServingClientError
    from tfpipe.serving.outputs import output_rows

    if not args.model:
        raise ValueError("--model: name the model on the server")
    if not args.texts:
        raise ValueError("give one or more TEXT arguments to predict")
    if args.config or args.set:
        raise ValueError("--config/--set set how offline prediction (--export-dir) reads its --input file; a server "
                         "request has no file to read")
    if args.text_pair is not None and len(args.text_pair) != len(args.texts):
        raise ValueError(f"--text-pair given {len(args.text_pair)} times for {len(args.texts)} texts; "
                         "give one per TEXT")
    target = args.server or args.rest
    client = ServingClient(target, args.model, timeout=args.timeout, retries=args.retries,
                           root_certificates=args.root_cert, client_certificate=args.client_cert,
                           client_key=args.client_key)
    signature = args.signature or ("serving_default" if args.api == "predict" else args.api)
    try:
        call = {"predict": client.predict, "classify": client.classify, "regress": client.regress}[args.api]
        answer = call(args.texts, args.text_pair, signature=signature, version=args.version, label=args.label)
    except ServingClientError as error:
        eprint(f"tfpipe predict: {target}: {error}")
        return 1
    finally:
        client.close()
    if args.api == "classify":  # per text: {"classes": {label: score}}
        outputs = {"classes": np.array([{label: score for label, score in row} for row in answer], dtype=object)}
    elif args.api == "regress":
        outputs = {"outputs": np.array(answer, dtype=np.float32)}
    else:
        outputs = answer
    for row in output_rows(outputs, args.texts, args.text_pair):
        print(json.dumps(row, ensure_ascii=False, sort_keys=False))
    return 0


def _offline(args: argparse.Namespace) -> int:
    from tfpipe.cli.common import check_inputs
    from tfpipe.config import Config
    from tfpipe.serving.offline import predict_file, prediction_reader

    if args.texts:
        raise ValueError("TEXT arguments go to a server; offline prediction reads --input FILE")
    if not args.input or not args.output:
        raise ValueError("--export-dir needs --input FILE and --output FILE.jsonl")
    check_inputs([args.input])
    # The export's own reader settings (its run's text columns), this file's flags on top.
    base = Config()
    base.reader = prediction_reader(args.export_dir)
    reader = build_config(args, base=base).reader
    summary = predict_file(args.export_dir, args.input, args.output, reader, args.signature or "serving_default",
                           args.predict_batch_size, progress_enabled(args))
    report_reading(args.input, summary["reading"])
    print_json(summary)
    return 0


def run(args: argparse.Namespace) -> int:
    return _offline(args) if args.export_dir else _server(args)
