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
