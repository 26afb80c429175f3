"""Plots for run and evaluation directories: training curves from history.csv and a confusion matrix."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402

from tfpipe.config.atomic import atomic_path  # noqa: E402


def read_history(history_csv: Path) -> list[dict[str, str]]:
    """The CSV log's rows, one per epoch in epoch order: a restarted run appends the epochs it runs again, and
    the last row of each epoch is the one that counts."""
    if not history_csv.is_file():
        return []
    with history_csv.open(encoding="utf-8") as handle:
        rows = {int(r["epoch"]): r for r in csv.DictReader(handle)}
    return [rows[e] for e in sorted(rows)]


def plot_history(history_csv: Path, output: Path) -> Optional[Path]:
    """One panel per metric (train and validation); None when there is no history yet."""
    rows = read_history(history_csv)
    if not rows:
        return None
    names = [k for k in rows[0] if k not in ("epoch", "learning_rate") and not k.startswith("val_")]
    figure, axes = plt.subplots(1, len(names) + 1, figsize=(4 * (len(names) + 1), 3.2), squeeze=False)
    epochs = [int(r["epoch"]) + 1 for r in rows]
    def series(key: str) -> tuple[list[int], list[float]]:
        # CSVLogger writes "NA" where a run had no value (no validation set, a resumed epoch).
        points = [(e, float(r[key])) for e, r in zip(epochs, rows) if r.get(key) not in (None, "", "NA")]
        return [p[0] for p in points], [p[1] for p in points]

    for axis, name in zip(axes[0], names + ["learning_rate"]):
        axis.plot(*series(name), marker="o", label="train" if name in names else name)
        if any(series(f"val_{name}")[1]):
            axis.plot(*series(f"val_{name}"), marker="o", label="validation")
        axis.set_title(name)
        axis.set_xlabel("epoch")
        axis.legend()
    figure.tight_layout()
    with atomic_path(output) as partial:
        figure.savefig(partial, dpi=100)
    plt.close(figure)
    return output


def plot_confusion_matrix(matrix: Sequence[Sequence[int]], labels: Sequence[str], output: Path) -> Path:
    size = max(3.5, 0.6 * len(labels) + 2)
    figure, axis = plt.subplots(figsize=(size, size))
    image = axis.imshow(matrix, cmap="Blues")
    axis.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axis.set_yticks(range(len(labels)), labels)
    axis.set_xlabel("predicted")
    axis.set_ylabel("gold")
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            axis.text(j, i, str(value), ha="center", va="center", fontsize=8)
    figure.colorbar(image, ax=axis)
    figure.tight_layout()
    with atomic_path(output) as partial:
        figure.savefig(partial, dpi=100)
    plt.close(figure)
    return output
