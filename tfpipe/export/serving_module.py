"""The signatures of a tfpipe export over the fine-tuned Keras model, written as a SavedModel.

Built on Keras's `ExportArchive` (it tracks the model's variables); the tokenizer and the label vocabulary are
tensorflow / tensorflow-text ops and constants inside the graph, so the SavedModel loads with `import
tensorflow_text` alone — in TensorFlow Serving too. The signature logic itself lives in `signatures.py`, shared
with the converted backends.
"""

from __future__ import annotations

from typing import Optional, Sequence

import keras

from tfpipe.config.schemas import PipelineConfig
from tfpipe.export.signatures import SignatureFunctions
from tfpipe.text.tokenizer import WordPieceTokenizer


class ServingModule(SignatureFunctions):
    """Signature functions over one fine-tuned Keras model.

    Args:
        model: the Keras task model (inputs `input_word_ids`, `input_mask`, `input_type_ids`), in float32.
        tokenizer, task, labels, max_seq_length, text_pair, pipeline: as for `SignatureFunctions`.
    """

    def __init__(self, model: keras.Model, tokenizer: WordPieceTokenizer, task: str,
                 labels: Optional[Sequence[str]], max_seq_length: int, text_pair: bool = False,
                 pipeline: Optional[PipelineConfig] = None) -> None:
        super().__init__(lambda features: model(features, training=False), tokenizer, task, labels, max_seq_length,
                         text_pair, pipeline)
        self.model = model

    def archive(self) -> keras.export.ExportArchive:
        """An `ExportArchive` tracking the model, with every endpoint added (serving_default first)."""
        archive = keras.export.ExportArchive()
        archive.track(self.model)
        for name, (fn, signature, _) in self.endpoints().items():
            archive.add_endpoint(name, fn, input_signature=signature)
        return archive
