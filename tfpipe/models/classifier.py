"""Sequence classification (single text or text pair): pooled output → dropout → dense logits."""

from __future__ import annotations

import keras

from tfpipe.models.backbone import BertEncoder, encode, encoder_inputs
from tfpipe.models.task import TaskModel


@keras.saving.register_keras_serializable(package="tfpipe")
class SequenceClassifier(TaskModel):
    """BERT sequence classifier on tfpipe's inputs (`input_word_ids`, `input_mask`, `input_type_ids`).

    Args:
        encoder: a `BertEncoder`.
        num_classes: number of labels.
        dropout: dropout before the output layer.

    Examples:
    >>> import numpy as np
    >>> enc = BertEncoder(vocabulary_size=50, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16)
    >>> model = SequenceClassifier(enc, num_classes=3)
    >>> ids = np.array([[2, 7, 3]])
    >>> x = {"input_word_ids": ids, "input_mask": np.ones_like(ids), "input_type_ids": np.zeros_like(ids)}
    >>> model(x).shape
    TensorShape([1, 3])
    """

    _config_keys = ("num_classes", "dropout")

    def __init__(self, encoder: BertEncoder, num_classes: int, dropout: float = 0.1, **kwargs) -> None:
        # === Layers ===
        head_dropout = keras.layers.Dropout(dropout, name="classifier_dropout")
        head = keras.layers.Dense(num_classes, kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
                                  name="logits", dtype="float32")
        # === Functional Model ===
        inputs = encoder_inputs()
        pooled = encode(encoder, inputs)["pooled_output"]
        logits = head(head_dropout(pooled))
        super().__init__(inputs=inputs, outputs=logits, **kwargs)
        # === Config ===
        self.encoder, self.num_classes, self.dropout = encoder, num_classes, dropout
