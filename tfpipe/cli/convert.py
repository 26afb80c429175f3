"""Convert an export's encoder for faster or other runtimes, checked against the SavedModel before it is kept:
ONNX (onnxruntime; --optimize, --quantize int8), OpenVINO (fp32, bf16 on CPUs with it, int8 calibrated by NNCF),
a TensorRT engine from the ONNX file (NVIDIA GPU needed), TF-TRT (TensorFlow builds with TensorRT, <= 2.17), and a
Triton model repository of the verified conversions. Outputs go to EXPORT_DIR/accelerated/<format>-<precision>/
with a manifest.json of parity, accuracy and latency figures; real TF Serving still loads the version folder.
Exit status: 0 done, 1 the converted model failed its check (nothing kept), 2 this machine cannot do it (one line
names what is missing) or bad arguments."""

from __future__ import annotations

import argparse
from pathlib import Path

from tfpipe.cli.common import eprint, print_json

HELP = "convert an export to ONNX / OpenVINO / TensorRT / TF-TRT / a Triton repository, verified"
TARGETS = ("onnx", "openvino", "tensorrt", "tf-trt", "triton")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--to", required=True, choices=TARGETS, help="what to convert to")
    parser.add_argument("--export-dir", metavar="BASE/NAME/VERSION", help="a version folder from tfpipe export")
    parser.add_argument("--output", help="the conversion folder (default EXPORT_DIR/accelerated/<variant>); onnx: "
                                         "a FILE.onnx path keeps just the model (+ FILE.onnx.manifest.json); "
                                         "tensorrt: the .plan file; triton: the repository folder (required)")
    parser.add_argument("--precision", help="onnx: fp32|int8; openvino: fp32|bf16|int8; tensorrt: fp32|fp16|int8; "
                                            "tf-trt: fp32|fp16 (default fp32)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing conversion")
    check = parser.add_argument_group("check (onnx, openvino)")
    check.add_argument("--eval-data", metavar="FILE", help="labelled file (training format): score both models")
    check.add_argument("--min-agreement", type=float, help="share of sample rows whose labels/tags must match "
                                                           "(default 1.0 for fp32, 0.8 for reduced precision)")
    check.add_argument("--max-accuracy-drop", type=float, default=1.0,
                       help="with --eval-data: most accuracy points a reduced precision may lose (default 1)")
    check.add_argument("--timing-repeats", type=int, default=5,
                       help="timed runs per batch size, side by side with the SavedModel (0: no timing)")
    onnx = parser.add_argument_group("onnx")
    onnx.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    onnx.add_argument("--optimize", action="store_true", help="onnxruntime's transformer graph optimizer")
    onnx.add_argument("--quantize", choices=["int8"], help="dynamic int8 quantization (same as --precision int8)")
    openvino = parser.add_argument_group("openvino")
    openvino.add_argument("--calibration-data", metavar="FILE", help="texts (training format) to calibrate int8 on")
    trt = parser.add_argument_group("tensorrt")
    trt.add_argument("--onnx", metavar="FILE", help="the ONNX encoder (default: EXPORT_DIR's onnx-fp32 conversion)")
    trt.add_argument("--min-shape", default="1x8", metavar="BATCHxSEQ", help="optimization profile minimum")
    trt.add_argument("--opt-shape", default="8x128", metavar="BATCHxSEQ", help="the shape TensorRT tunes for")
    trt.add_argument("--max-shape", default="32x128", metavar="BATCHxSEQ", help="optimization profile maximum")
    trt.add_argument("--workspace-gib", type=float, default=4.0, help="builder workspace limit (GiB)")
    triton = parser.add_argument_group("triton")
    triton.add_argument("--model-name", help="model name prefix in the repository (default: the export's NAME)")
    triton.add_argument("--max-batch-size", type=int, default=32, help="Triton max_batch_size (default 32)")


def _export_dir(args: argparse.Namespace) -> Path:
    if not args.export_dir:
        raise ValueError(f"--to {args.to} needs --export-dir BASE/NAME/VERSION")
    return Path(args.export_dir)


def run(args: argparse.Namespace) -> int:
    from tfpipe.export.convert.errors import ConversionCheckError, ConversionUnavailable

    try:
        result = _convert(args)
    except ConversionUnavailable as error:
        eprint(f"tfpipe convert: cannot convert to {args.to} here: {error}")
        return 2
    except (ConversionCheckError, FileExistsError) as error:
        eprint(f"tfpipe convert: error: {error}")
        return 1
    print_json(result)
    return 0


def _convert(args: argparse.Namespace) -> dict:
    precision = args.precision or ("int8" if args.quantize else "fp32")
    if args.quantize and precision != "int8":
        raise ValueError(f"--quantize int8 contradicts --precision {precision}")
    if args.to in ("onnx", "openvino"):
        from tfpipe.export.convert.api import convert_export

        result = convert_export(_export_dir(args), args.to, args.output, precision=precision,
                                optimize=args.optimize, opset=args.opset, calibration_data=args.calibration_data,
                                eval_data=args.eval_data, min_agreement=args.min_agreement,
                                max_accuracy_drop=args.max_accuracy_drop, timing_repeats=args.timing_repeats,
                                overwrite=args.overwrite, log=eprint)
        keys = ("format", "precision", "parity", "accuracy", "savedmodel_ms", "converted_ms", "speedup")
        summary = {k: result.manifest[k] for k in keys if k in result.manifest}
        summary["parity"] = {k: v for k, v in summary["parity"].items() if k != "per_output"}
        return {"output": str(result.path), **summary}
    if args.to == "tensorrt":
        from tfpipe.export.convert.manifest import default_output
        from tfpipe.export.convert.tensorrt_engine import build_engine

        onnx = Path(args.onnx) if args.onnx else default_output(_export_dir(args), "onnx", "fp32") / "model.onnx"
        output = Path(args.output) if args.output else onnx.with_suffix(".plan")
        if output.exists() and not args.overwrite:
            raise FileExistsError(f"{output}: already exists; pass --overwrite to replace it")
        return build_engine(onnx, output, precision, args.min_shape, args.opt_shape, args.max_shape,
                            args.workspace_gib)
    if args.to == "tf-trt":
        from tfpipe.export.convert.manifest import default_output
        from tfpipe.export.convert.tf_trt import convert_tf_trt

        export_dir = _export_dir(args)
        return convert_tf_trt(export_dir, args.output or default_output(export_dir, "tf-trt", precision), precision)
    from tfpipe.export.convert.triton import write_triton_repository

    export_dir = _export_dir(args)
    if not args.output:
        raise ValueError("--to triton needs --output REPOSITORY")
    name = args.model_name or export_dir.resolve().parent.name
    folders = write_triton_repository(export_dir, args.output, name, max_batch_size=args.max_batch_size,
                                      overwrite=args.overwrite)
    return {"repository": str(args.output), "models": [str(f) for f in folders]}
