"""The signature functions of a tfpipe export — raw text in, through the training tokenizer, to whatever computes
the logits — with no Keras in sight, so the server can run the same functions over a converted encoder.

`ServingModule` (serving_module.py) runs them over the Keras model and writes the SavedModel; the converted
backends (`tfpipe.export.convert.runtime`) run them over an ONNX Runtime or OpenVINO encoder. Either way the
tokenization and every output are these ops, so a converted model answers exactly as the SavedModel would.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import tensorflow as tf

from tfpipe.export.tagging import tag_text
from tfpipe.text.tokenizer import MODEL_INPUTS, WordPieceTokenizer

# TF Serving's Classify and Regress APIs find their signatures by these method names (tensorflow#38081).
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
PREDICT_METHOD = "tensorflow/serving/predict"

LogitsFn = Callable[[dict], tf.Tensor]


class SignatureFunctions:
    """Signature functions over one encoder-plus-head, given as a function of the model inputs.

    Args:
        logits_fn: `{input_word_ids, input_mask, input_type_ids}` (int32 `[batch, seq]`) → the head's float
            output (`[batch, classes]`, `[batch, seq, tags]` or `[batch, 1]`/`[batch]` for regression).
        tokenizer: the tokenizer the model was trained with.
        task: `classification`, `regression` or `token-classification`.
        labels: label strings in id order (classification, tagging).
        max_seq_length: longer inputs are trimmed as in training (longest segment first, from its end);
            tagging cuts them into windows of whole words instead.
        text_pair: whether the model takes text pairs.

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
                 labels: Optional[Sequence[str]], max_seq_length: int, text_pair: bool = False) -> None:
        self.logits_fn, self.tokenizer, self.task = logits_fn, tokenizer, task
        self.labels = list(labels) if labels is not None else None
        self.max_seq_length, self.text_pair = max_seq_length, text_pair

    # --- building blocks --------------------------------------------------------------------------------------

    def logits(self, features: dict) -> tf.Tensor:
        return tf.cast(self.logits_fn(features), tf.float32)

    def encode(self, text: tf.Tensor, text_pair: Optional[tf.Tensor] = None) -> dict[str, tf.Tensor]:
        """Raw strings → dense int32 model inputs, exactly as the fine-tuning pipeline builds them."""
        ids, types = self.tokenizer.encode(text, text_pair, self.max_seq_length)
        return {"input_word_ids": ids.to_tensor(), "input_mask": tf.ones_like(ids).to_tensor(),
                "input_type_ids": types.to_tensor()}

    def _label_strings(self) -> tf.Tensor:
        return tf.constant(self.labels, tf.string)

    def _head_outputs(self, logits: tf.Tensor) -> dict[str, tf.Tensor]:
        if self.task == "regression":
            return {"predictions": tf.reshape(logits, [-1])}
        ids = tf.argmax(logits, axis=-1)
        return {"logits": logits, "probabilities": tf.nn.softmax(logits), "label_ids": ids,
                "labels": tf.gather(self._label_strings(), ids)}

    def _text(self, text: tf.Tensor, text_pair: Optional[tf.Tensor] = None) -> dict[str, tf.Tensor]:
        if self.task == "token-classification":
            return tag_text(self.tokenizer, self.logits, self._label_strings(), text, self.max_seq_length)
        return self._head_outputs(self.logits(self.encode(text, text_pair)))

    def _parse_examples(self, serialized: tf.Tensor) -> tuple[tf.Tensor, Optional[tf.Tensor]]:
        spec = {"text": tf.io.FixedLenFeature([], tf.string)}
        if self.text_pair:
            spec["text_pair"] = tf.io.FixedLenFeature([], tf.string)
        parsed = tf.io.parse_example(serialized, spec)
        return parsed["text"], parsed.get("text_pair")

    # --- signatures -------------------------------------------------------------------------------------------

    def endpoints(self) -> dict[str, tuple[Callable, list[tf.TensorSpec], str]]:
        """Signature name → (function, input signature, TF Serving method name)."""
        text = tf.TensorSpec([None], tf.string, name="text")
        pair = tf.TensorSpec([None], tf.string, name="text_pair")
        examples = tf.TensorSpec([None], tf.string, name="inputs")
        ids = [tf.TensorSpec([None, None], tf.int32, name=name) for name in MODEL_INPUTS]
        out: dict[str, tuple[Callable, list[tf.TensorSpec], str]] = {}
        if self.text_pair:
            out["serving_default"] = (lambda text, text_pair: self._text(text, text_pair), [text, pair],
                                      PREDICT_METHOD)
        else:
            out["serving_default"] = (lambda text: self._text(text), [text], PREDICT_METHOD)
        if self.task == "classification":
            out["classify"] = (self._classify, [examples], CLASSIFY_METHOD)
        elif self.task == "regression":
            out["regress"] = (self._regress, [examples], REGRESS_METHOD)
        out["predict_ids"] = (self._predict_ids, ids, PREDICT_METHOD)
        return out

    def _classify(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        logits = self.logits(self.encode(*self._parse_examples(inputs)))
        classes = tf.tile(tf.expand_dims(self._label_strings(), 0), [tf.shape(logits)[0], 1])
        return {"classes": classes, "scores": tf.nn.softmax(logits)}

    def _regress(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"outputs": tf.reshape(self.logits(self.encode(*self._parse_examples(inputs))), [-1])}

    def _predict_ids(self, input_word_ids: tf.Tensor, input_mask: tf.Tensor,
                     input_type_ids: tf.Tensor) -> dict[str, tf.Tensor]:
        logits = self.logits({"input_word_ids": input_word_ids, "input_mask": input_mask,
                              "input_type_ids": input_type_ids})
        return {"predictions": tf.reshape(logits, [-1])} if self.task == "regression" else {"logits": logits}

    def method_names(self) -> dict[str, str]:
        return {name: method for name, (_, _, method) in self.endpoints().items()}
