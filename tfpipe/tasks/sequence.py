"""`SequenceTask`: what classification and regression share — a text (or text pair) in, one output per sequence.

Reading (TSV/CSV/JSONL/plain text, a label column), the fine-tuning pipeline, the length-sorted prediction pass,
prediction rows, and the raw-text `serving_default` with its tf.Example twin (`classify` / `regress`) and the
token-id `predict_ids` signature. Subclasses say how a label becomes a target and what the head outputs.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator, Optional, Sequence

from tfpipe.config.schemas import ReaderConfig
from tfpipe.export.layout import PREDICT_METHOD
from tfpipe.tasks.base import Task


def texts_of(records: Sequence[Any]) -> list[Any]:
    """Unlabelled `Record`s of texts (and pairs); a tagged sentence becomes its words joined by spaces."""
    from tfpipe.text.readers import Record, TokenRecord

    return [Record(" ".join(r.words), source=r.source, line=r.line) if isinstance(r, TokenRecord)
            else dataclasses.replace(r, label=None) for r in records]


def record_text(record: Any) -> str:
    """A record's text as the TensorBoard tables show it (`text ‖ pair`)."""
    return record.text if record.text_pair is None else f"{record.text} ‖ {record.text_pair}"


class SequenceTask(Task):
    """Base of the one-output-per-sequence tasks. Subclasses set `target` (the pipeline's label encoding,
    `"class"` or `"number"`) and implement the head-specific methods.

    `check_label` (a label string → why it is not allowed, or None) is the task's reading rule beyond "present".
    """

    target: ClassVar[str] = "class"
    check_label: ClassVar[Optional[Callable[[str], Optional[str]]]] = None
    example_signature: ClassVar[str] = ""  # the tf.Example signature's name (`classify`, `regress`)
    example_method: ClassVar[str] = ""  # ... and its TF Serving method name

    def read(self, path: str | Path, config: ReaderConfig, fmt: str, labels: Optional[set[str]], log: Any,
             lang: str) -> Iterator[Any]:
        from tfpipe.text.readers import read_text_examples

        return read_text_examples(path, config, fmt, labels, log, lang, type(self).check_label)

    def describe(self, records: Sequence[Any]) -> dict:
        from collections import Counter

        from tfpipe.text.readers import TokenRecord

        if records and isinstance(records[0], TokenRecord):  # a CoNLL file read for a sequence task
            from tfpipe.tasks.token_classification import describe_tags

            return describe_tags(records)
        labels = Counter(r.label for r in records if r.label is not None)
        return {"label_distribution": dict(sorted(labels.items()))} if labels else {}

    def as_texts(self, records: Sequence[Any]) -> list[Any]:
        return texts_of(records)

    def dataset(self, records, tokenizer, labels, config, training=False, repeat=False, fixed_length=False):
        from tfpipe.data.pipelines import finetune_dataset

        return finetune_dataset(records, tokenizer, self.name, labels, config, training, repeat, fixed_length)

    def has_gold(self, records: Sequence[Any]) -> bool:
        return all(r.label is not None for r in records)

    # --- evaluation -------------------------------------------------------------------------------------------

    def logits(self, model, tokenizer, labels, config, records: Sequence[Any]):
        """The head's outputs for `records`, in input order, from length-sorted batches (they pad little)."""
        import numpy as np

        from tfpipe.training.evaluate import model_outputs, prediction_pipeline

        pipeline = prediction_pipeline(config)
        order = sorted(range(len(records)), key=lambda i: len(records[i].text) + len(records[i].text_pair or ""))
        unlabelled = [dataclasses.replace(records[i], label=None) for i in order]
        sorted_logits = np.concatenate(model_outputs(model, self.dataset(unlabelled, tokenizer, labels, pipeline)))
        logits = np.empty_like(sorted_logits)
        logits[order] = sorted_logits
        return logits

    def prediction(self, predicted: dict, index: int, labels: Any) -> Any:
        """The `prediction` field of one predictions.jsonl row."""
        raise NotImplementedError

    def prediction_rows(self, records: Sequence[Any], predicted: dict, labels: Any) -> Iterator[dict]:
        for i, rec in enumerate(records):
            row = {"text": rec.text}
            if rec.text_pair is not None:
                row["text_pair"] = rec.text_pair
            if rec.label is not None:
                row["label"] = rec.label
            row["prediction"] = self.prediction(predicted, i, labels)
            yield row

    # --- export -----------------------------------------------------------------------------------------------

    def head_outputs(self, functions, logits) -> dict:
        """`serving_default`'s outputs from the head's logits."""
        raise NotImplementedError

    def example_outputs(self, functions, logits) -> dict:
        """The tf.Example signature's outputs (TF Serving's Classify / Regress result tensors)."""
        raise NotImplementedError

    def id_outputs(self, functions, logits) -> dict:
        """`predict_ids`'s outputs."""
        return {"logits": logits}

    def text_outputs(self, functions, text, text_pair=None) -> dict:
        return self.head_outputs(functions, functions.logits(functions.encode(text, text_pair)))

    def endpoints(self, functions) -> dict:
        """Signature name → (function, input signature, TF Serving method name), `serving_default` first."""
        import tensorflow as tf


        text = tf.TensorSpec([None], tf.string, name="text")
        pair = tf.TensorSpec([None], tf.string, name="text_pair")
        examples = tf.TensorSpec([None], tf.string, name="inputs")
        out: dict = {}
        if functions.text_pair:
            out["serving_default"] = (lambda text, text_pair: self.text_outputs(functions, text, text_pair),
                                      [text, pair], PREDICT_METHOD)
        else:
            out["serving_default"] = (lambda text: self.text_outputs(functions, text), [text], PREDICT_METHOD)
        if self.example_signature:
            out[self.example_signature] = (
                lambda inputs: self.example_outputs(functions, functions.logits(
                    functions.encode(*functions.parse_examples(inputs)))), [examples], self.example_method)
        out["predict_ids"] = functions.predict_ids(lambda logits: self.id_outputs(functions, logits))
        return out
