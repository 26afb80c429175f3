"""Regression on a text or text pair: pooled output ([CLS] or mean) → dropout → one linear output per example."""

from __future__ import annotations

import keras

from tfpipe.models.backbone import BertEncoder, encoder_inputs, pool
from tfpipe.models.task import TaskModel


@keras.saving.register_keras_serializable(package="tfpipe")
class SequenceRegressor(TaskModel):
    """BERT regressor: `[batch]` float predictions, trained with mean squared error.

    Args:
        encoder: a `BertEncoder`.
        dropout: dropout before the output layer.
        pooling: `"cls"` (BERT's pooled `[CLS]` output) or `"mean"` (mean of the sequence output over
            real tokens).

    Examples:
    >>> import numpy as np
    >>> enc = BertEncoder(vocabulary_size=50, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16)
    >>> ids = np.array([[2, 3]])
    >>> x = {"input_word_ids": ids, "input_mask": np.ones_like(ids), "input_type_ids": np.zeros_like(ids)}
    >>> SequenceRegressor(enc)(x).shape
    TensorShape([1])
    """

    _config_keys = ("dropout", "pooling")

    def __init__(self, encoder: BertEncoder, dropout: float = 0.1, pooling: str = "cls", **kwargs) -> None:
        # === Layers ===
        head_dropout = keras.layers.Dropout(dropout, name="regressor_dropout")
        head = keras.layers.Dense(1, kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
                                  name="prediction", dtype="float32")
        squeeze = keras.layers.Reshape((), name="predictions")
        # === Functional Model ===
        inputs = encoder_inputs()
        pooled = pool(encoder, inputs, pooling)
        outputs = squeeze(head(head_dropout(pooled)))
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        # === Config ===
        self.encoder, self.dropout, self.pooling = encoder, dropout, pooling
