"""The signature functions of a tfpipe export — raw text in, through the training tokenizer, to whatever computes
the logits — with no Keras in sight, so the server can run the same functions over a converted encoder.

`ServingModule` (serving_module.py) runs them over the Keras model and writes the SavedModel; the converted
backends (`tfpipe.export.convert.runtime`) run them over an ONNX Runtime or OpenVINO encoder. Either way the
tokenization and every output are these ops, so a converted model answers exactly as the SavedModel would.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import tensorflow as tf

from tfpipe.config.schemas import PipelineConfig
from tfpipe.config.tasks import get_task
from tfpipe.export.layout import CLASSIFY_METHOD, PREDICT_METHOD, REGRESS_METHOD  # noqa: F401 (re-exported)
from tfpipe.text.tokenizer import MODEL_INPUTS, WordPieceTokenizer

LogitsFn = Callable[[dict], tf.Tensor]


class SignatureFunctions:
    """Signature functions over one encoder-plus-head, given as a function of the model inputs.

    Args:
        logits_fn: `{input_word_ids, input_mask, input_type_ids}` (int32 `[batch, seq]`) → the head's float
            output (`[batch, classes]`, `[batch, seq, tags]` or `[batch, 1]`/`[batch]` for regression).
        tokenizer: the tokenizer the model was trained with.
        task: a registered task name (`tfpipe.config.tasks`): its `endpoints(functions)` builds the signatures
            from these building blocks.
        labels: label strings in id order (classification, tagging).
        max_seq_length: longer inputs are trimmed as in training (longest segment first, from its end);
            tagging cuts them into windows of whole words instead.
        text_pair: whether the model takes text pairs.
        pipeline: the run's pipeline settings, for tasks that need more than `max_seq_length` (QA's stride).

    Examples:
    >>> import tensorflow as tf
    >>> from tfpipe.text.tokenizer import WordPieceTokenizer
    >>> import tempfile, os
    >>> vocab = os.path.join(tempfile.mkdtemp(), "vocab.txt")
    >>> _ = open(vocab, "w").write("\\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad"]))
    >>> count_good = lambda f: tf.stack([tf.zeros([tf.shape(f["input_word_ids"])[0]]),
    ...     tf.reduce_sum(tf.cast(f["input_word_ids"] == 5, tf.float32), axis=1)], axis=1)
    >>> functions = SignatureFunctions(count_good, WordPieceTokenizer(vocab), "classification", ["neg", "pos"], 16)
    >>> fn, _, method = functions.endpoints()["serving_default"]
    >>> fn(tf.constant(["good good", "bad"]))["labels"].numpy().tolist(), method
    ([b'pos', b'neg'], 'tensorflow/serving/predict')
    """

    def __init__(self, logits_fn: LogitsFn, tokenizer: WordPieceTokenizer, task: str,
                 labels: Optional[Sequence[str]], max_seq_length: int, text_pair: bool = False,
                 pipeline: Optional[PipelineConfig] = None) -> None:
        self.logits_fn, self.tokenizer, self.task = logits_fn, tokenizer, task
        self.spec = get_task(task)  # the registered task: it declares the signatures and their outputs
        self.labels = list(labels) if labels is not None else None
        self.max_seq_length, self.text_pair = max_seq_length, text_pair or self.spec.pairs_always
        self.pipeline = pipeline or PipelineConfig(max_seq_length=max_seq_length)

    @property
    def input_names(self) -> tuple[str, ...]:
        """The raw-text inputs of `serving_default`, in order (`text`, `text_pair`; QA: `question`, `context`)."""
        return self.spec.input_names if self.text_pair else self.spec.input_names[:1]

    # --- building blocks --------------------------------------------------------------------------------------

    def logits(self, features: dict) -> tf.Tensor:
        return tf.cast(self.logits_fn(features), tf.float32)

    def encode(self, text: tf.Tensor, text_pair: Optional[tf.Tensor] = None) -> dict[str, tf.Tensor]:
        """Raw strings → dense int32 model inputs, exactly as the fine-tuning pipeline builds them."""
        ids, types = self.tokenizer.encode(text, text_pair, self.max_seq_length)
        return {"input_word_ids": ids.to_tensor(), "input_mask": tf.ones_like(ids).to_tensor(),
                "input_type_ids": types.to_tensor()}

    def label_strings(self) -> tf.Tensor:
        return tf.constant(self.labels, tf.string)

    def parse_examples(self, serialized: tf.Tensor) -> tuple[tf.Tensor, Optional[tf.Tensor]]:
        """Serialized tf.Examples with a `text` (and `text_pair`) bytes feature → the strings."""
        spec = {"text": tf.io.FixedLenFeature([], tf.string)}
        if self.text_pair:
            spec["text_pair"] = tf.io.FixedLenFeature([], tf.string)
        parsed = tf.io.parse_example(serialized, spec)
        return parsed["text"], parsed.get("text_pair")

    def predict_ids(self, outputs: Callable[[tf.Tensor], dict]) -> tuple[Callable, list[tf.TensorSpec], str]:
        """The `predict_ids` endpoint every task has: the three int32 model inputs → `outputs(logits)`."""

        def predict_ids(input_word_ids, input_mask, input_type_ids):
            return outputs(self.logits({"input_word_ids": input_word_ids, "input_mask": input_mask,
                                        "input_type_ids": input_type_ids}))

        return predict_ids, [tf.TensorSpec([None, None], tf.int32, name=name) for name in MODEL_INPUTS], \
            PREDICT_METHOD

    # --- signatures -------------------------------------------------------------------------------------------

    def endpoints(self) -> dict[str, tuple[Callable, list[tf.TensorSpec], str]]:
        """Signature name → (function, input signature, TF Serving method name), as the task declares them."""
        return self.spec.endpoints(self)

    def method_names(self) -> dict[str, str]:
        return {name: method for name, (_, _, method) in self.endpoints().items()}
