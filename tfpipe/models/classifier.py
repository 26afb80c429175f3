"""Sequence classification (single text or text pair): pooled output ([CLS] or mean) → dropout → dense logits."""

from __future__ import annotations

import keras

from tfpipe.models.backbone import BertEncoder, encoder_inputs, pool
from tfpipe.models.task import TaskModel


@keras.saving.register_keras_serializable(package="tfpipe")
class SequenceClassifier(TaskModel):
    """BERT sequence classifier on tfpipe's inputs (`input_word_ids`, `input_mask`, `input_type_ids`).

    Args:
        encoder: a `BertEncoder`.
        num_classes: number of labels.
        dropout: dropout before the output layer.
        pooling: `"cls"` (BERT's pooled `[CLS]` output) or `"mean"` (mean of the sequence output over
            real tokens).

    Examples:
    >>> import numpy as np
    >>> enc = BertEncoder(vocabulary_size=50, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16)
    >>> model = SequenceClassifier(enc, num_classes=3)
    >>> ids = np.array([[2, 7, 3]])
    >>> x = {"input_word_ids": ids, "input_mask": np.ones_like(ids), "input_type_ids": np.zeros_like(ids)}
    >>> model(x).shape
    TensorShape([1, 3])
    """

    _config_keys = ("num_classes", "dropout", "pooling")

    def __init__(self, encoder: BertEncoder, num_classes: int, dropout: float = 0.1, pooling: str = "cls",
                 **kwargs) -> None:
        # === Layers ===
        head_dropout = keras.layers.Dropout(dropout, name="classifier_dropout")
        head = keras.layers.Dense(num_classes, kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
                                  name="logits", dtype="float32")
        # === Functional Model ===
        inputs = encoder_inputs()
        pooled = pool(encoder, inputs, pooling)
        logits = head(head_dropout(pooled))
        super().__init__(inputs=inputs, outputs=logits, **kwargs)
        # === Config ===
        self.encoder, self.num_classes, self.dropout, self.pooling = encoder, num_classes, dropout, pooling
