"""Token classification: sequence output → dropout → per-token tag logits (the loss reads first pieces only)."""

from __future__ import annotations

import keras

from tfpipe.models.backbone import BertEncoder, encode, encoder_inputs
from tfpipe.models.task import TaskModel


@keras.saving.register_keras_serializable(package="tfpipe")
class TokenTagger(TaskModel):
    """BERT token classifier: logits `[batch, seq, num_tags]` for every word piece.

    The pipelines put each word's tag on its first piece and `IGNORE_INDEX` elsewhere; training turns those into
    zero sample weights, so only first pieces count in the loss and metrics.

    Args:
        encoder: a `BertEncoder`.
        num_tags: number of BIO tags.
        dropout: dropout before the output layer.

    Examples:
    >>> import numpy as np
    >>> enc = BertEncoder(vocabulary_size=50, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16)
    >>> ids = np.array([[2, 3]])
    >>> x = {"input_word_ids": ids, "input_mask": np.ones_like(ids), "input_type_ids": np.zeros_like(ids)}
    >>> TokenTagger(enc, 5)(x).shape
    TensorShape([1, 2, 5])
    """

    _config_keys = ("num_tags", "dropout")

    def __init__(self, encoder: BertEncoder, num_tags: int, dropout: float = 0.1, **kwargs) -> None:
        # === Layers ===
        head_dropout = keras.layers.Dropout(dropout, name="tagger_dropout")
        head = keras.layers.Dense(num_tags, kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
                                  name="tag_logits", dtype="float32")
        # === Functional Model ===
        inputs = encoder_inputs()
        sequence = encode(encoder, inputs)["sequence_output"]
        logits = head(head_dropout(sequence))
        super().__init__(inputs=inputs, outputs=logits, **kwargs)
        # === Config ===
        self.encoder, self.num_tags, self.dropout = encoder, num_tags, dropout
