"""Extractive question answering: sequence output → dropout → a start and an end logit for every word piece."""

from __future__ import annotations

import keras

from tfpipe.models.backbone import BertEncoder, encode, encoder_inputs
from tfpipe.models.task import TaskModel


@keras.saving.register_keras_serializable(package="tfpipe")
class SpanExtractor(TaskModel):
    """BERT span extractor (SQuAD): logits `[batch, seq, 2]`, start logits in `[..., 0]` and end logits in
    `[..., 1]`. The answer is the best-scoring `start ≤ end` pair of context pieces; training targets are the
    answer's first and last piece, or `[CLS]` (position 0) for a window that does not hold the whole answer.

    Args:
        encoder: a `BertEncoder`.
        dropout: dropout before the output layer.

    Examples:
    >>> import numpy as np
    >>> enc = BertEncoder(vocabulary_size=50, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16)
    >>> ids = np.array([[2, 7, 3, 9, 9, 3]])
    >>> x = {"input_word_ids": ids, "input_mask": np.ones_like(ids), "input_type_ids": np.zeros_like(ids)}
    >>> SpanExtractor(enc)(x).shape
    TensorShape([1, 6, 2])
    """

    _config_keys = ("dropout",)

    def __init__(self, encoder: BertEncoder, dropout: float = 0.1, **kwargs) -> None:
        # === Layers ===
        head_dropout = keras.layers.Dropout(dropout, name="span_dropout")
        head = keras.layers.Dense(2, kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
                                  name="span_logits", dtype="float32")
        # === Functional Model ===
        inputs = encoder_inputs()
        encoded = encode(encoder, inputs)
        logits = head(head_dropout(encoded["sequence_output"]))
        super().__init__(inputs=inputs, outputs=logits, **kwargs)
        # === Config ===
        self.encoder, self.dropout = encoder, dropout
        # The pooler feeds no output here: no gradient reaches it (and Keras would warn every step).
        encoder.pooled_dense.trainable = False
