"""The export layout that export and serving agree on: `BASE/NAME/VERSION/` with numeric version folders (TF
Serving's notion of a version), and the files export puts under `assets.extra/`. Standard library only, so the
server can use it without loading export's Keras side."""

from __future__ import annotations

import os
from pathlib import Path

WARMUP_PATH = Path("assets.extra") / "tf_serving_warmup_requests"  # replayed by TF Serving on load
METADATA_PATH = Path("assets.extra") / "tfpipe_metadata.json"  # tfpipe version, config, vocab hash, metrics
# TF Serving's Predict, Classify and Regress APIs find their signatures by these method names (tensorflow#38081).
PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"


def list_versions(base_path: str | Path) -> dict[int, Path]:
    """Numeric sub-directories of a base path: version → path (TF Serving ignores every other name, among them the
    temporary `.VERSION.tmp-PID-XXXXXX` folders of exports still being written, or killed midway)."""
    found = {}
    for entry in os.scandir(base_path):
        if entry.is_dir() and entry.name.isascii() and entry.name.isdigit():  # "²".isdigit(), but int("²") fails
            found[int(entry.name)] = Path(entry.path)
    return found


def next_version(model_dir: str | Path) -> int:
    """One above the highest version folder under `model_dir`, or 1 when there is none (or no folder yet)."""
    return max(list_versions(model_dir), default=0) + 1 if Path(model_dir).is_dir() else 1
