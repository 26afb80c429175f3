"""Evaluation metrics computed on the whole prediction set (numpy): classification, regression and entity-level
tagging scores computed exactly as CoNLL's `conlleval` does."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np


def _safe_div(a: float, b: float) -> float:
    return float(a) / float(b) if b else 0.0


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> np.ndarray:
    """Rows are gold labels, columns predictions."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    return matrix


def matthews_corrcoef(matrix: np.ndarray) -> float:
    """Multi-class MCC (Gorodkin's R_K) from a confusion matrix; binary MCC for 2×2."""
    t, p = matrix.sum(axis=1).astype(float), matrix.sum(axis=0).astype(float)
    c, s = float(np.trace(matrix)), float(matrix.sum())
    denominator = np.sqrt((s * s - p @ p) * (s * s - t @ t))
    return float((c * s - t @ p) / denominator) if denominator else 0.0


def roc_auc(y_true: Sequence[int], scores: Sequence[float]) -> Optional[float]:
    """Binary ROC-AUC by the rank statistic (ties get average ranks); None when only one class is present."""
    y, s = np.asarray(y_true), np.asarray(scores, dtype=float)
    positives, negatives = int((y == 1).sum()), int((y == 0).sum())
    if not positives or not negatives:
        return None
    ranks = _average_ranks(s)
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=float)
    sorted_values = values[order]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and sorted_values[j + 1] == sorted_values[i]:
            j += 1
        ranks[order[i: j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def classification_metrics(
    y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str],
    probabilities: Optional[np.ndarray] = None,
) -> dict:
    """Accuracy, macro and per-class precision/recall/F1, MCC; for two classes also `f1_positive` (the
    second label, e.g. "1", as GLUE's MRPC) and ROC-AUC."""
    matrix = confusion_matrix(y_true, y_pred, len(labels))
    per_class = {}
    for i, label in enumerate(labels):
        tp = matrix[i, i]
        precision, recall = _safe_div(tp, matrix[:, i].sum()), _safe_div(tp, matrix[i].sum())
        per_class[label] = {"precision": precision, "recall": recall, "f1": _f1(precision, recall),
                            "support": int(matrix[i].sum())}
    result = {
        "accuracy": _safe_div(np.trace(matrix), matrix.sum()),
        "precision": float(np.mean([c["precision"] for c in per_class.values()])),
        "recall": float(np.mean([c["recall"] for c in per_class.values()])),
        "f1": float(np.mean([c["f1"] for c in per_class.values()])),
        "mcc": matthews_corrcoef(matrix),
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
        "num_examples": int(matrix.sum()),
    }
    if len(labels) == 2:
        result["f1_positive"] = per_class[labels[1]]["f1"]
        if probabilities is not None:
            result["roc_auc"] = roc_auc(y_true, np.asarray(probabilities)[:, 1])
    return result


def regression_metrics(y_true: Sequence[float], y_pred: Sequence[float]) -> dict:
    """MSE, MAE, Pearson and Spearman correlations."""
    t, p = np.asarray(y_true, float), np.asarray(y_pred, float)

    def pearson(a, b):
        a, b = a - a.mean(), b - b.mean()
        denominator = np.sqrt((a * a).sum() * (b * b).sum())
        return float((a * b).sum() / denominator) if denominator else 0.0

    return {"mse": float(np.mean((t - p) ** 2)), "mae": float(np.mean(np.abs(t - p))),
            "pearson": pearson(t, p), "spearman": pearson(_average_ranks(t), _average_ranks(p)),
            "num_examples": len(t)}


# --- conlleval ---------------------------------------------------------------------------------------------

def _split_tag(tag: str) -> tuple[str, str]:
    if tag == "O":
        return "O", ""
    prefix, dash, kind = tag.partition("-")
    return (prefix, kind) if dash else (tag, "")


def _end_of_chunk(prev_tag: str, tag: str, prev_type: str, kind: str) -> bool:
    return (prev_tag in ("E", "S")
            or (prev_tag in ("B", "I") and tag in ("B", "S", "O"))
            or (prev_tag not in ("O", ".") and prev_type != kind))


def _start_of_chunk(prev_tag: str, tag: str, prev_type: str, kind: str) -> bool:
    return (tag in ("B", "S")
            or (prev_tag in ("E", "S", "O") and tag in ("E", "I"))
            or (tag not in ("O", ".") and prev_type != kind))


def chunks(tags: Sequence[str]) -> set[tuple[int, int, str]]:
    """Entity spans `(start, end_exclusive, type)` by conlleval's chunk start/end rules (BIO, IOBES, IOB1)."""
    found: set[tuple[int, int, str]] = set()
    prev_tag, prev_type, start = "O", "", None
    for i, tag in enumerate(list(tags) + ["O"]):
        tag_prefix, kind = _split_tag(tag)
        if start is not None and _end_of_chunk(prev_tag, tag_prefix, prev_type, kind):
            found.add((start, i, prev_type))
            start = None
        if _start_of_chunk(prev_tag, tag_prefix, prev_type, kind):
            start = i
        prev_tag, prev_type = tag_prefix, kind
    return found


def entity_metrics(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict:
    """Entity-level micro precision/recall/F1 and per type, plus token accuracy, as conlleval reports them."""
    correct = guessed = expected = 0
    per_type: dict[str, list[int]] = {}
    tokens = right = 0
    for g, p in zip(gold, predicted):
        if len(g) != len(p):
            raise ValueError(f"a predicted sequence has {len(p)} tags for {len(g)} words")
        gold_chunks, pred_chunks = chunks(g), chunks(p)
        hits = gold_chunks & pred_chunks
        correct, guessed, expected = correct + len(hits), guessed + len(pred_chunks), expected + len(gold_chunks)
        for collection, slot in ((hits, 0), (pred_chunks, 1), (gold_chunks, 2)):
            for *_, kind in collection:
                per_type.setdefault(kind, [0, 0, 0])[slot] += 1
        tokens += len(g)
        right += sum(a == b for a, b in zip(g, p))
    precision, recall = _safe_div(correct, guessed), _safe_div(correct, expected)
    types = {}
    for kind, (c, gu, ex) in sorted(per_type.items()):
        tp, tr = _safe_div(c, gu), _safe_div(c, ex)
        types[kind] = {"precision": tp, "recall": tr, "f1": _f1(tp, tr), "support": ex}
    return {"precision": precision, "recall": recall, "f1": _f1(precision, recall),
            "accuracy": _safe_div(right, tokens), "per_type": types, "num_sentences": len(gold),
            "num_entities": expected}
