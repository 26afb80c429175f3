"""`tfpipe convert` as a Python API: an export's encoder to ONNX or OpenVINO, checked against the SavedModel and
kept only when it passes, with a manifest of what was measured.

Examples:
    result = convert_export("exports/sst2/1", "onnx")                       # → exports/sst2/1/accelerated/onnx-fp32
    result = convert_export("exports/sst2/1", "openvino", precision="int8", calibration_data="train.tsv",
                            eval_data="dev.tsv")
    result.manifest["parity"]["max_abs_diff"], result.manifest["speedup"]
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any, Callable, Optional

import tensorflow as tf

from tfpipe.config.atomic import (
    atomic_directory,
    copy_file_atomic,
    remove_stale,
    temporary_name,
    write_json_atomic,
)
from tfpipe.config.tasks import get_task
from tfpipe.export.convert import check, onnx_export, openvino_export
from tfpipe.export.convert.errors import ConversionCheckError
from tfpipe.export.convert.manifest import RUNTIMES, default_output, write_manifest
from tfpipe.export.convert.onnx_export import optimize_onnx, quantize_onnx_int8, saved_model_to_onnx
from tfpipe.export.convert.runtime import ConvertedModel, export_tokenizer, read_export_metadata

FORMATS = {"onnx": onnx_export.PRECISIONS, "openvino": openvino_export.PRECISIONS}
MODEL_FILES = {"onnx": "model.onnx", "openvino": "model.xml"}


@dataclass
class ConversionResult:
    path: Path  # the conversion folder (model file + manifest.json)
    manifest: dict[str, Any]


def _versions() -> dict[str, str]:
    found = {"tensorflow": tf.__version__}
    for name in ("tfpipe", "tf2onnx", "onnx", "onnxruntime", "openvino", "nncf"):
        try:
            found[name] = package_metadata.version(name)
        except package_metadata.PackageNotFoundError:
            pass
    return found


def _check_export(export_dir: Path) -> dict[str, Any]:
    if not (export_dir / "saved_model.pb").is_file():
        raise FileNotFoundError(f"{export_dir}/saved_model.pb: missing; --export-dir must be a version folder "
                                "written by `tfpipe export` (BASE/NAME/VERSION)")
    metadata = read_export_metadata(export_dir)
    if not get_task(metadata["task"]).convertible:
        raise ValueError(f"{export_dir}: a {metadata['task']} export cannot be converted yet (its signatures are not "
                         "text and text pairs over one encoder call); serve it with --backend tensorflow")
    return metadata


def convert_export(
    export_dir: str | Path,
    to: str,
    output: str | Path | None = None,
    *,
    precision: str = "fp32",
    optimize: bool = False,
    opset: int = 17,
    calibration_data: str | Path | None = None,
    eval_data: str | Path | None = None,
    min_agreement: Optional[float] = None,
    max_accuracy_drop: float = 1.0,
    timing_repeats: int = 5,
    overwrite: bool = False,
    log: Callable[[str], None] = print,
) -> ConversionResult:
    """Converts the encoder of the export in `export_dir` and keeps it only if it passes the check.

    Args:
        export_dir: a version folder written by `tfpipe export`.
        to: `onnx` or `openvino`.
        output: the conversion folder (default `EXPORT_DIR/accelerated/<format>-<precision>[-optimized]`); for
            `onnx`, a path ending in `.onnx` is the model file itself, checked the same way, with its manifest
            beside it as `FILE.manifest.json` (`tfpipe serve --backend` reads conversion folders, not files).
        precision: onnx: fp32 | int8 (dynamic quantization); openvino: fp32 | bf16 | int8 (NNCF, calibrated).
        optimize: ONNX only: run onnxruntime's transformer graph optimizer.
        opset: the ONNX opset.
        calibration_data: a file in the training format whose texts calibrate OpenVINO int8.
        eval_data: a labelled file: both models are scored on it and the score goes into the manifest.
        min_agreement: the share of sample rows whose labels/tags must match (default 1.0 for fp32, 0.8 else).
        max_accuracy_drop: with `eval_data`, the most accuracy (points) a reduced precision may lose.
        timing_repeats: timed runs per batch size for the latency figures (0: do not time).
        overwrite: replace an existing conversion folder.
        log: where progress lines go.
    """
    export_dir = Path(export_dir)
    if to not in FORMATS:
        raise ValueError(f"--to {to}: convert_export handles {', '.join(FORMATS)}")
    if precision not in FORMATS[to]:
        raise ValueError(f"--precision {precision}: {to} takes one of {', '.join(FORMATS[to])}")
    if optimize and to != "onnx":
        raise ValueError("--optimize is for --to onnx (OpenVINO optimizes when it compiles)")
    export_metadata = _check_export(export_dir)
    if to == "openvino":
        openvino_export.inference_precision(precision)  # a CPU without bf16: exit 2 before any work
    final = Path(output) if output else default_output(export_dir, to, precision, optimize)
    if final.exists() and not overwrite:
        raise FileExistsError(f"{final}: already exists; pass --overwrite to replace it")
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in remove_stale(final.parent):  # what killed conversions left (a model's worth each)
        log(f"removed {stale}: the unfinished conversion of a process that has ended")
    if to == "onnx" and final.suffix.lower() == ".onnx":
        return _convert_to_file(export_dir, export_metadata, final, precision, optimize, opset, eval_data,
                                min_agreement, max_accuracy_drop, timing_repeats, log)
    with atomic_directory(final, replace=overwrite) as temporary:  # a failed check keeps nothing
        saved = tf.saved_model.load(str(export_dir))  # once: converted from, then compared with
        manifest = _convert(export_dir, saved, export_metadata, to, temporary, precision, optimize, opset,
                            calibration_data, log)
        write_manifest(temporary, manifest)
        manifest.update(_verify(export_dir, saved, temporary, manifest, eval_data, min_agreement, max_accuracy_drop,
                                timing_repeats, log))
        manifest["verified"] = True
        write_manifest(temporary, manifest)
    log(f"wrote {final}")
    return ConversionResult(final, manifest)


def _convert_to_file(export_dir: Path, export_metadata: dict, final: Path, precision: str, optimize: bool,
                     opset: int, eval_data, min_agreement, max_accuracy_drop: float, timing_repeats: int,
                     log) -> ConversionResult:
    """`--output FILE.onnx`: converted and checked in a temporary folder beside the file, which keeps only the
    model and `FILE.manifest.json` (each written whole); a failed check leaves neither."""
    work = final.with_name(temporary_name(final.name))  # named so that a killed run's is removed by the next one
    work.mkdir()
    try:
        saved = tf.saved_model.load(str(export_dir))
        manifest = _convert(export_dir, saved, export_metadata, "onnx", work, precision, optimize, opset, None, log)
        write_manifest(work, manifest)
        manifest.update(_verify(export_dir, saved, work, manifest, eval_data, min_agreement, max_accuracy_drop,
                                timing_repeats, log))
        manifest.update(verified=True, model_file=final.name)
        copy_file_atomic(work / MODEL_FILES["onnx"], final)
        write_json_atomic(final.with_name(final.name + ".manifest.json"), manifest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log(f"wrote {final}")
    return ConversionResult(final, manifest)


def _convert(export_dir: Path, saved: Any, export_metadata: dict, to: str, folder: Path, precision: str, optimize: bool,
             opset: int, calibration_data, log) -> dict[str, Any]:
    started = time.monotonic()
    inference_precision = None
    if to == "openvino":
        # Before any work: a CPU without bf16 cannot run a bf16 variant.
        inference_precision = openvino_export.inference_precision(precision)
    onnx_path = folder / "model.onnx"
    log(f"converting {export_dir} (predict_ids signature) to ONNX opset {opset}")
    described = saved_model_to_onnx(export_dir, onnx_path, opset, loaded=saved)
    if to == "onnx" and optimize:
        log("optimizing the ONNX graph (onnxruntime transformer optimizer)")
        optimize_onnx(onnx_path, onnx_path)
    if to == "onnx" and precision == "int8":
        log("quantizing to int8 (onnxruntime dynamic quantization)")
        quantize_onnx_int8(onnx_path, onnx_path)
    if to == "openvino":
        calibration = None
        if precision == "int8":
            if calibration_data is None:
                raise ValueError("--precision int8 needs --calibration-data FILE (texts in the training format)")
            log(f"calibrating int8 on {calibration_data} (tfpipe's fine-tuning pipeline)")
            tokenizer = export_tokenizer(export_dir, export_metadata)
            calibration = check.calibration_batches(calibration_data, export_dir, tokenizer)
        log(f"converting to OpenVINO IR ({precision})")
        openvino_export.onnx_to_openvino(onnx_path, folder / "model.xml", precision, calibration)
        onnx_path.unlink()
    return {"format": to, "runtime": RUNTIMES[to], "precision": precision, "optimized": optimize,
            "model_file": MODEL_FILES[to], "inference_precision": inference_precision,
            "inputs": described["inputs"], "outputs": described["outputs"], "opset": opset,
            "graph_rewrites": described["rewrites"],
            "source": {"export_dir": str(export_dir.resolve()), "signature": "predict_ids",
                       "task": export_metadata["task"], "vocabulary_sha256": export_metadata.get("vocabulary_sha256")},
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "conversion_seconds": round(time.monotonic() - started, 2), "versions": _versions(), "verified": False}


def _verify(export_dir: Path, saved: Any, folder: Path, manifest: dict, eval_data, min_agreement,
            max_accuracy_drop: float, timing_repeats: int, log) -> dict[str, Any]:
    """Parity (and accuracy, timing) of the converted model against the SavedModel; raises ConversionCheckError."""
    model = ConvertedModel(export_dir, folder)
    texts, pairs = check.sample_texts(export_dir)
    figures = check.parity(saved, model, texts, pairs)
    reduced = manifest["precision"] != "fp32" or manifest.get("inference_precision") == "bf16"
    need = min_agreement if min_agreement is not None else (0.8 if reduced else 1.0)
    problems = []
    if not reduced and figures["max_abs_diff"] > check.FP32_TOLERANCE:
        problems.append(f"max abs diff {figures['max_abs_diff']:.3g} > {check.FP32_TOLERANCE} (fp32)")
    if figures["agreement"] < need:
        problems.append(f"labels/tags agree on {figures['agreement']:.1%} of {len(texts)} samples (< {need:.0%})")
    log(f"parity on {len(texts)} samples: max abs diff {figures['max_abs_diff']:.3g}, "
        f"agreement {figures['agreement']:.1%}")
    out: dict[str, Any] = {"parity": figures}
    if eval_data is not None:
        scored = check.accuracy(saved, model, check.read_labelled(eval_data, export_dir), export_dir)
        scored["file"] = str(eval_data)
        out["accuracy"] = scored
        log(f"{scored['metric']} on {eval_data}: SavedModel {scored['savedmodel']:.4f}, converted "
            f"{scored['converted']:.4f}")
        if reduced and not scored["metric"].endswith("error") and scored["drop"] > max_accuracy_drop:
            problems.append(f"{scored['metric']} fell {scored['drop']:.2f} points (> {max_accuracy_drop})")
    if problems:
        raise ConversionCheckError(f"{manifest['format']} {manifest['precision']} check failed, nothing kept: "
                                   + "; ".join(problems))
    if timing_repeats:
        vocabulary = model.functions.tokenizer.vocabulary_size
        sequence = min(check.TIMED_SEQUENCE, model.functions.max_seq_length)
        timed = check.latency(saved, model.encoder, vocabulary, timing_repeats, sequence)
        out["timed_sequence_length"] = sequence
        out.update(timed)
        log("latency ms (SavedModel → converted): " + ", ".join(
            f"{k} {timed['savedmodel_ms'][k]:.1f} → {timed['converted_ms'][k]:.1f}" for k in timed["speedup"]))
    return out
