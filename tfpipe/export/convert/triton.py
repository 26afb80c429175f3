"""Writes a Triton Inference Server model repository from an export version folder's verified conversions:
one model per variant, `<model_name>_<variant>/config.pbtxt` and `1/<model file>` (standard library only).

The config is Triton's ModelConfig in protobuf text format, written by hand so tfpipe needs no Triton package.
Triton serves the encoder, which takes token ids: clients tokenize with the export's `assets/vocab.txt`.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tfpipe.config.atomic import atomic_directory
from tfpipe.export.convert.manifest import ACCELERATED_DIR, MANIFEST, verified_variants

# format → (ModelConfig field and value, instance kind, the file names Triton looks for in the version folder)
BACKENDS = {"onnx": ('platform: "onnxruntime_onnx"', "KIND_CPU", ("model.onnx",)),
            "openvino": ('backend: "openvino"', "KIND_CPU", ("model.xml", "model.bin")),
            "tensorrt": ('platform: "tensorrt_plan"', "KIND_GPU", ("model.plan",))}
DATA_TYPES = {"int32": "TYPE_INT32", "int64": "TYPE_INT64", "float32": "TYPE_FP32", "float16": "TYPE_FP16",
              "bfloat16": "TYPE_BF16", "bool": "TYPE_BOOL", "int8": "TYPE_INT8", "uint8": "TYPE_UINT8"}
_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")  # safe both as a folder name and unquoted in text format


def _tensor(spec: dict[str, Any], batched: bool, where: Path) -> str:
    name, dtype, shape = spec.get("name"), spec.get("dtype"), list(spec.get("shape", []))
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"{where}: tensor name {name!r} is not usable in a Triton config")
    if dtype not in DATA_TYPES:
        raise ValueError(f"{where}: tensor {name!r} has dtype {dtype!r}, which has no Triton type here")
    lines = [f'    name: "{name}"', f"    data_type: {DATA_TYPES[dtype]}"]
    if batched:
        if not shape or shape[0] != -1:
            raise ValueError(f"{where}: tensor {name!r} has shape {shape}, without a variable batch dimension; "
                             "use --max-batch-size 0")
        shape = shape[1:]
        if not shape:  # a [batch] tensor: Triton wants dims [1] reshaped to a scalar per request
            lines += ["    dims: [ 1 ]", "    reshape: { shape: [ ] }"]
            return "  {\n" + "\n".join(lines) + "\n  }"
    lines.append(f"    dims: [ {', '.join(str(int(d)) for d in shape)} ]")
    return "  {\n" + "\n".join(lines) + "\n  }"


def model_config(name: str, manifest: dict[str, Any], source: str, max_batch_size: int,
                 max_queue_delay_microseconds: int, where: Path) -> str:
    """config.pbtxt text for one variant."""
    field, kind, _ = BACKENDS[manifest["format"]]
    batched = max_batch_size > 0
    inputs = ",\n".join(_tensor(t, batched, where) for t in manifest.get("inputs", []))
    outputs = ",\n".join(_tensor(t, batched, where) for t in manifest.get("outputs", []))
    if not inputs or not outputs:
        raise ValueError(f"{where}: the manifest lists no inputs or no outputs")
    names = ", ".join(t["name"] for t in manifest["inputs"])
    text = [f"# Written by tfpipe from the export {source}.",
            f"# The model takes token ids ({names}), not text: clients tokenize with the export's assets/vocab.txt.",
            f'name: "{name}"', field, f"max_batch_size: {max_batch_size}",
            f"input [\n{inputs}\n]", f"output [\n{outputs}\n]"]
    if batched:  # Triton accepts dynamic batching only for models that batch
        text.append(f"dynamic_batching {{\n  max_queue_delay_microseconds: {max_queue_delay_microseconds}\n}}")
    text.append(f"instance_group [\n  {{\n    count: 1\n    kind: {kind}\n  }}\n]")
    return "\n".join(text) + "\n"


def _selected(version_dir: Path, variants: Iterable[str | tuple[Path, dict]] | None) -> list[tuple[Path, dict]]:
    verified = verified_variants(version_dir)
    if variants is None:
        chosen = [(folder, manifest) for folder, manifest in verified if manifest.get("format") in BACKENDS]
    else:
        by_name, chosen = {folder.name: (folder, manifest) for folder, manifest in verified}, []
        for item in variants:
            if isinstance(item, str):
                if item not in by_name:
                    known = ", ".join(by_name) or "none"
                    raise ValueError(f"{version_dir}: {item!r} is not a verified variant (verified: {known})")
                item = by_name[item]
            folder, manifest = Path(item[0]), item[1]
            if manifest.get("format") not in BACKENDS:
                raise ValueError(f"{folder}: format {manifest.get('format')!r} cannot go in a Triton repository "
                                 f"(only {', '.join(BACKENDS)})")
            chosen.append((folder, manifest))
    if not chosen:
        raise ValueError(f"{version_dir}: no verified ONNX, OpenVINO or TensorRT variant in {ACCELERATED_DIR}/; "
                         "convert the export first (tfpipe export convert)")
    return chosen


def write_triton_repository(version_dir: str | Path, repository: str | Path, model_name: str,
                            variants: Iterable[str | tuple[Path, dict]] | None = None, max_batch_size: int = 32,
                            max_queue_delay_microseconds: int = 2000, overwrite: bool = False) -> list[Path]:
    """One Triton model folder per variant (by default every verified one); returns the model folders."""
    version_dir, repository = Path(version_dir), Path(repository)
    if not _NAME.match(model_name or ""):
        raise ValueError(f"--model-name: {model_name!r} must be letters, digits, '_', '.' or '-'")
    if max_batch_size < 0 or max_queue_delay_microseconds < 0:
        raise ValueError("--max-batch-size and --max-queue-delay-microseconds must not be negative")
    if not version_dir.is_dir():
        raise FileNotFoundError(f"{version_dir}: no such export version folder")
    chosen = _selected(version_dir, variants)

    plans = []  # everything is checked before anything is written, so a refusal leaves the repository as it was
    for folder, manifest in chosen:
        name = f"{model_name}_{folder.name.replace('-', '_')}"
        target = repository / name
        if any(target == planned[0] for planned in plans):
            raise ValueError(f"{folder}: two variants would both be the Triton model {name}")
        if target.exists() and not overwrite:
            raise FileExistsError(f"{target}: already exists; pass --overwrite to replace it")
        model_file = folder / manifest.get("model_file", "")
        sources = [model_file, model_file.with_suffix(".bin")] if manifest["format"] == "openvino" else [model_file]
        for source in sources:
            if not source.is_file():
                raise FileNotFoundError(f"{source}: missing; the variant {folder.name} is incomplete")
        batch = max_batch_size
        if batch and manifest.get("max_shape"):  # a TensorRT plan cannot take batches beyond its profile
            batch = min(batch, int(manifest["max_shape"][0]))
        source_text = f"{version_dir.resolve()} (manifest {ACCELERATED_DIR}/{folder.name}/{MANIFEST})"
        config = model_config(name, manifest, source_text, batch, max_queue_delay_microseconds, folder)
        plans.append((target, config, sources, BACKENDS[manifest["format"]][2]))

    repository.mkdir(parents=True, exist_ok=True)
    written = []
    for target, config, sources, names in plans:
        with atomic_directory(target, replace=overwrite) as temporary:  # Triton never sees half a model
            (temporary / "1").mkdir()
            for source, file_name in zip(sources, names):
                shutil.copy2(source, temporary / "1" / file_name)
            (temporary / "config.pbtxt").write_text(config, encoding="utf-8")
        written.append(target)
    return written
