"""Losses for the task heads: cross-entropy with optional label smoothing, averaged over weighted positions."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfpipe")
class SparseCrossEntropy(keras.losses.Loss):
    """Sparse-label cross-entropy from logits with label smoothing.

    With `reduction="mean_with_sample_weight"` (the default here) the loss is the mean over positions that carry
    weight, so padding and ignored word pieces neither count nor dilute it.

    Examples:
    >>> loss = SparseCrossEntropy(num_classes=2)
    >>> round(float(loss([1], [[0.0, 0.0]])), 4)
    0.6931
    """

    def __init__(self, num_classes: int, label_smoothing: float = 0.0, reduction: str = "mean_with_sample_weight",
                 name: str = "sparse_cross_entropy", **kwargs) -> None:
        super().__init__(reduction=reduction, name=name, **kwargs)
        self.num_classes, self.label_smoothing = num_classes, label_smoothing

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        labels = ops.one_hot(ops.cast(y_true, "int32"), self.num_classes, dtype=y_pred.dtype)
        if self.label_smoothing:
            labels = labels * (1.0 - self.label_smoothing) + self.label_smoothing / self.num_classes
        return keras.losses.categorical_crossentropy(labels, y_pred, from_logits=True)

    def get_config(self) -> dict:
        return {**super().get_config(), "num_classes": self.num_classes, "label_smoothing": self.label_smoothing}


class SpanCrossEntropy(keras.losses.Loss):
    """Extractive QA: the mean of the start and the end cross-entropy (the BERT SQuAD loss).

    `y_true` holds `[start, end]` piece positions (int `[batch, 2]`); `y_pred` the start and end logits
    (`[batch, seq, 2]`, `tfpipe.models.span_extractor.SpanExtractor`).

    Examples:
    >>> import numpy as np
    >>> round(float(SpanCrossEntropy()(np.array([[1, 1]]), np.zeros([1, 4, 2], "float32"))), 4)  # uniform: log 4
    1.3863
    """

    def __init__(self, name: str = "span_cross_entropy", **kwargs) -> None:
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        positions = ops.cast(y_true, "int32")
        start = keras.losses.sparse_categorical_crossentropy(positions[:, 0], y_pred[..., 0], from_logits=True)
        end = keras.losses.sparse_categorical_crossentropy(positions[:, 1], y_pred[..., 1], from_logits=True)
        return (start + end) / 2.0


def span_exact_match(y_true, y_pred):
    """1 where the argmax start and end pieces both equal the target's, else 0 (a per-window training metric)."""
    positions = ops.cast(y_true, "int32")
    predicted = ops.cast(ops.argmax(y_pred, axis=1), "int32")  # [batch, 2]
    return ops.cast(ops.all(ops.equal(predicted, positions), axis=1), "float32")
