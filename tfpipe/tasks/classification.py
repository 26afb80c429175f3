"""Sequence classification (single text or text pair → one of N classes): `--task classification`.

Labels keep their original strings (`labels.txt`, sorted); the head is `SequenceClassifier` (logits), trained
with cross-entropy (optional label smoothing and balanced class weights) and scored with accuracy, per-class and
macro F1, MCC, ROC-AUC and a confusion matrix. Exports answer `labels`/`probabilities`, and TF Serving's
Classify API through the `classify` signature.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Sequence

from tfpipe.config.tasks import register_task
from tfpipe.export.layout import CLASSIFY_METHOD
from tfpipe.tasks.base import record_line
from tfpipe.tasks.sequence import SequenceTask, record_text


class ClassificationTask(SequenceTask):
    name = "classification"
    description = "a text or text pair → one of N classes (sentiment, topic, paraphrase, entailment)"
    target = "class"
    example_signature = "classify"
    example_method = CLASSIFY_METHOD

    def build_model(self, encoder, labels, dropout, pooling="cls"):
        from tfpipe.models.classifier import SequenceClassifier

        return SequenceClassifier(encoder, len(labels), dropout, pooling)

    def owns(self, model) -> bool:
        from tfpipe.models.classifier import SequenceClassifier

        return isinstance(model, SequenceClassifier)

    def export_labels(self, model, labels):
        from tfpipe.text.labels import LabelVocab

        labels = labels or LabelVocab([str(i) for i in range(model.num_classes)])
        if len(labels) != model.num_classes:
            raise ValueError(f"{len(labels)} labels for a head of {model.num_classes} outputs")
        return labels

    def compile_args(self, labels, training) -> dict:
        import keras

        from tfpipe.training.losses import SparseCrossEntropy

        return {"loss": SparseCrossEntropy(len(labels), training.label_smoothing),
                "metrics": [keras.metrics.SparseCategoricalAccuracy("accuracy")], "weighted_metrics": None}

    def class_weights(self, records, labels, training):
        import numpy as np

        if training.class_weights != "balanced":
            return None
        counts = np.bincount([labels.id(r.label) for r in records], minlength=len(labels))
        return {i: len(records) / (len(labels) * c) if c else 0.0 for i, c in enumerate(counts)}

    def describe(self, records: Sequence[Any]) -> dict:
        report = super().describe(records)
        if records and hasattr(records[0], "label"):
            by_text: dict = {}
            for rec in records:
                by_text.setdefault((rec.text, rec.text_pair), set()).add(rec.label)
            report["conflicting_duplicates"] = sum(1 for v in by_text.values() if len(v) > 1)
        return report

    # --- evaluation -------------------------------------------------------------------------------------------

    def predict(self, model, tokenizer, labels, config, records) -> dict:
        import tensorflow as tf

        probabilities = tf.nn.softmax(self.logits(model, tokenizer, labels, config, records)).numpy()
        return {"ids": probabilities.argmax(-1), "probabilities": probabilities}

    def prediction(self, predicted, index, labels):
        return labels.labels[predicted["ids"][index]]

    def score(self, records, predicted, labels, output_dir: Path) -> dict:
        from tfpipe.training.metrics import classification_metrics
        from tfpipe.training.reports import plot_confusion_matrix

        metrics = classification_metrics([labels.id(r.label) for r in records], predicted["ids"], labels.labels,
                                         predicted["probabilities"])
        plot_confusion_matrix(metrics["confusion_matrix"], labels.labels, output_dir / "plots" / "confusion_matrix.png")
        return metrics

    def prediction_tables(self, records, predicted, labels, gold_known, rows) -> dict[str, str]:
        import numpy as np

        from tfpipe.training.summaries import markdown_table

        line = functools.partial(record_line, records)

        ids, probabilities = predicted["ids"], predicted["probabilities"]
        samples = [[line(i), record_text(r), r.label if gold_known else "", labels.labels[ids[i]],
                    f"{probabilities[i, ids[i]]:.3f}"] for i, r in enumerate(records[:rows])]
        tables = {"predictions/samples": markdown_table(["line", "text", "gold", "predicted", "p(predicted)"],
                                                        samples)}
        if gold_known:
            gold = np.asarray([labels.id(r.label) for r in records])
            wrong = np.flatnonzero(gold != ids)
            worst = wrong[np.argsort(-probabilities[wrong, ids[wrong]], kind="stable")][:rows]
            tables["predictions/worst_errors"] = markdown_table(
                ["line", "text", "gold", "predicted", "p(predicted)", "p(gold)"],
                [[line(i), record_text(records[i]), records[i].label, labels.labels[ids[i]],
                  f"{probabilities[i, ids[i]]:.3f}", f"{probabilities[i, gold[i]]:.3f}"] for i in worst])
        return tables

    # --- export -----------------------------------------------------------------------------------------------

    def head_outputs(self, functions, logits) -> dict:
        import tensorflow as tf

        ids = tf.argmax(logits, axis=-1)
        return {"logits": logits, "probabilities": tf.nn.softmax(logits), "label_ids": ids,
                "labels": tf.gather(functions.label_strings(), ids)}

    def example_outputs(self, functions, logits) -> dict:
        import tensorflow as tf

        classes = tf.tile(tf.expand_dims(functions.label_strings(), 0), [tf.shape(logits)[0], 1])
        return {"classes": classes, "scores": tf.nn.softmax(logits)}

    def score_outputs(self, outputs, records) -> tuple[str, float]:
        import numpy as np

        predicted = [s.decode("utf-8") for s in outputs["labels"]]
        return "accuracy", float(np.mean([p == r.label for p, r in zip(predicted, records)]))


TASK = register_task(ClassificationTask())
