"""Where converted models live and what they say about themselves (standard library only: the server reads it).

A converted encoder sits inside the export's version folder, `BASE/NAME/VERSION/accelerated/<variant>/`, beside
the SavedModel (TF Serving ignores the folder and still loads the version). `<variant>` is `<format>-<precision>`
with `-optimized` for graph-optimized ONNX, e.g. `onnx-fp32`, `onnx-int8`, `openvino-bf16`. Its `manifest.json`
holds the format, runtime, precision, model file, the parity figures of the check it passed and the latencies
measured side by side with the SavedModel; a folder without a manifest that says `"verified": true` is never
served.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from tfpipe.config.atomic import write_json_atomic

ACCELERATED_DIR = "accelerated"
MANIFEST = "manifest.json"
# format → the runtime that executes it
RUNTIMES = {"onnx": "onnxruntime", "openvino": "openvino", "tensorrt": "tensorrt", "tf-trt": "tensorflow"}
SERVABLE_RUNTIMES = ("onnxruntime", "openvino")  # what `tfpipe serve --backend` can run on this kind of machine


def variant_name(fmt: str, precision: str, optimized: bool = False) -> str:
    return f"{fmt}-{precision}" + ("-optimized" if optimized else "")


def default_output(export_dir: str | Path, fmt: str, precision: str, optimized: bool = False) -> Path:
    return Path(export_dir) / ACCELERATED_DIR / variant_name(fmt, precision, optimized)


def write_manifest(folder: str | Path, record: dict[str, Any]) -> Path:
    """Writes `folder/manifest.json` whole or not at all (a temporary file renamed over it)."""
    return write_json_atomic(Path(folder) / MANIFEST, record)


def read_manifest(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: missing; {folder} is not a tfpipe conversion") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None


def verified_variants(version_dir: str | Path) -> list[tuple[Path, dict[str, Any]]]:
    """(folder, manifest) of every verified conversion inside a version folder, by name."""
    root = Path(version_dir) / ACCELERATED_DIR
    found = []
    if root.is_dir():
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            try:
                manifest = read_manifest(folder)
            except (FileNotFoundError, ValueError):
                continue
            if manifest.get("verified") is True:
                found.append((folder, manifest))
    return found


BACKENDS = ("tensorflow", "auto", *SERVABLE_RUNTIMES)  # `tfpipe serve --backend`


def speedup(manifest: dict[str, Any], batch_size: int | None = None) -> float:
    """The variant's speed-up over the SavedModel, measured side by side when it was converted (0 when it was not
    timed): at the timed batch size nearest `batch_size` (on a log scale, ties to the smaller), or the geometric
    mean over the timed batch sizes when `batch_size` is None."""
    timed = {int(key.rsplit("_", 1)[1]): float(r) for key, r in (manifest.get("speedup") or {}).items() if r}
    if batch_size is not None and timed:
        nearest = min(timed, key=lambda b: (abs(math.log(b) - math.log(max(batch_size, 1))), b))
        return timed[nearest]
    ratios = list(timed.values())
    product = 1.0
    for ratio in ratios:
        product *= ratio
    return product ** (1 / len(ratios)) if ratios else 0.0


def choose_variant(version_dir: str | Path, backend: str, usable: tuple[str, ...] = SERVABLE_RUNTIMES,
                   batch_size: int | None = None) -> tuple[Path, dict[str, Any]] | None:
    """The converted encoder `backend` serves for a version, or None for the SavedModel itself.

    `tensorflow` never picks one; `onnxruntime` / `openvino` pick that runtime's fastest verified variant;
    `auto` picks the fastest verified variant of any runtime in `usable`, and only when it beat the SavedModel.
    "Fastest" is at `batch_size` (the batch size the server mostly runs: 1, or the batcher's) when given: a
    variant fast at batch 1 but slow at 32 is the wrong pick behind a batcher.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if backend == "tensorflow":
        return None
    runtimes = usable if backend == "auto" else (backend,)
    candidates = [(speedup(m, batch_size), folder.name, folder, m) for folder, m in verified_variants(version_dir)
                  if m.get("runtime") in runtimes]
    if not candidates:
        return None
    best = max(candidates, key=lambda c: (c[0], c[1]))
    if backend == "auto" and best[0] <= 1.0:
        return None
    return best[2], best[3]
