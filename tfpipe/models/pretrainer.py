"""MLM+NSP pretraining model: a masked-LM head tied to the token embedding, and a next-sentence head."""

from __future__ import annotations

import keras
import keras_hub

from tfpipe.models.backbone import BertEncoder, encode, encoder_inputs
from tfpipe.models.task import TaskModel


@keras.saving.register_keras_serializable(package="tfpipe")
class BertPretrainer(TaskModel):
    """BERT pretraining heads on a `BertEncoder`.

    Inputs are the model inputs plus `masked_lm_positions` (int32 `[batch, predictions]`); outputs are
    `{"mlm": [batch, predictions, vocab] logits, "nsp": [batch, 2] logits}` (NSP label 1 = random next).

    Args:
        encoder: a `BertEncoder`.

    Examples:
    >>> import numpy as np
    >>> enc = BertEncoder(vocabulary_size=50, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16)
    >>> out = BertPretrainer(enc)({"input_word_ids": np.array([[2, 4, 3]]), "input_mask": np.array([[1, 1, 1]]),
    ...                           "input_type_ids": np.array([[0, 0, 0]]), "masked_lm_positions": np.array([[1]])})
    >>> tuple(out["mlm"].shape), tuple(out["nsp"].shape)
    ((1, 1, 50), (1, 2))
    """

    _config_keys = ()

    def __init__(self, encoder: BertEncoder, **kwargs) -> None:
        # === Layers ===
        mlm_head = keras_hub.layers.MaskedLMHead(
            vocabulary_size=encoder.vocabulary_size, token_embedding=encoder.token_embedding,
            intermediate_activation=keras.activations.gelu, kernel_initializer=keras.initializers.TruncatedNormal(
                stddev=0.02), name="mlm_head")
        nsp_head = keras.layers.Dense(2, kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
                                      name="nsp_head")
        as_float = keras.layers.Activation("linear", dtype="float32", name="float32_logits")
        # === Functional Model ===
        inputs = encoder_inputs()
        inputs["masked_lm_positions"] = keras.Input(shape=(None,), dtype="int32", name="masked_lm_positions")
        outputs = encode(encoder, inputs)
        mlm = as_float(mlm_head(outputs["sequence_output"], mask_positions=inputs["masked_lm_positions"]))
        nsp = keras.layers.Activation("linear", dtype="float32", name="nsp")(nsp_head(outputs["pooled_output"]))
        super().__init__(inputs=inputs, outputs={"mlm": mlm, "nsp": nsp}, **kwargs)
        # === Config ===
        self.encoder = encoder
