"""Sequence regression (a text or text pair → one real number, e.g. STS-B similarity): `--task regression`.

Labels must be finite numbers; the head is `SequenceRegressor`, trained on mean squared error and scored with
MSE/MAE and Pearson/Spearman correlation; the best checkpoint is the lowest validation loss. Exports answer
`predictions`, and TF Serving's Regress API through the `regress` signature.
"""

from __future__ import annotations

import functools
from pathlib import Path

from tfpipe.config.tasks import register_task
from tfpipe.export.layout import REGRESS_METHOD
from tfpipe.tasks.base import record_line
from tfpipe.tasks.sequence import SequenceTask, record_text
from tfpipe.text.readers import finite_number


class RegressionTask(SequenceTask):
    name = "regression"
    description = "a text or text pair → a real number (similarity, rating)"
    target = "number"
    check_label = staticmethod(finite_number)
    monitor = ("val_loss", "min")
    uses_labels = False
    example_signature = "regress"
    example_method = REGRESS_METHOD

    def closed_labels(self, labels):
        return None

    def build_model(self, encoder, labels, dropout, pooling="cls"):
        from tfpipe.models.regressor import SequenceRegressor

        return SequenceRegressor(encoder, dropout, pooling)

    def owns(self, model) -> bool:
        from tfpipe.models.regressor import SequenceRegressor

        return isinstance(model, SequenceRegressor)

    def export_labels(self, model, labels):
        return None

    def compile_args(self, labels, training) -> dict:
        import keras

        return {"loss": keras.losses.MeanSquaredError(), "metrics": [keras.metrics.MeanAbsoluteError("mae")],
                "weighted_metrics": None}

    def describe(self, records) -> dict:
        import numpy as np

        report = super().describe(records)
        values = [float(r.label) for r in records if getattr(r, "label", None) is not None]
        if values:
            report["label_stats"] = {"min": float(np.min(values)), "mean": float(np.mean(values)),
                                     "max": float(np.max(values))}
        return report

    # --- evaluation -------------------------------------------------------------------------------------------

    def predict(self, model, tokenizer, labels, config, records) -> dict:
        return {"values": self.logits(model, tokenizer, labels, config, records).reshape(-1)}

    def prediction(self, predicted, index, labels):
        return float(predicted["values"][index])

    def score(self, records, predicted, labels, output_dir: Path) -> dict:
        from tfpipe.training.metrics import regression_metrics

        return regression_metrics([float(r.label) for r in records], predicted["values"])

    def prediction_tables(self, records, predicted, labels, gold_known, rows) -> dict[str, str]:
        import numpy as np

        from tfpipe.training.summaries import markdown_table

        line = functools.partial(record_line, records)

        values = np.asarray(predicted["values"], float)
        samples = [[line(i), record_text(r), r.label if gold_known else "", f"{values[i]:.4g}"]
                   for i, r in enumerate(records[:rows])]
        tables = {"predictions/samples": markdown_table(["line", "text", "gold", "predicted"], samples)}
        if gold_known:
            errors = np.abs(values - np.asarray([float(r.label) for r in records]))
            tables["predictions/worst_errors"] = markdown_table(["line", "text", "gold", "predicted", "|error|"], [
                [line(i), record_text(records[i]), records[i].label, f"{values[i]:.4g}", f"{errors[i]:.4g}"]
                for i in np.argsort(-errors, kind="stable")[:rows]])
        return tables

    # --- export -----------------------------------------------------------------------------------------------

    def head_outputs(self, functions, logits) -> dict:
        import tensorflow as tf

        return {"predictions": tf.reshape(logits, [-1])}

    def example_outputs(self, functions, logits) -> dict:
        import tensorflow as tf

        return {"outputs": tf.reshape(logits, [-1])}

    def id_outputs(self, functions, logits) -> dict:
        return self.head_outputs(functions, logits)

    def score_outputs(self, outputs, records) -> tuple[str, float]:
        import numpy as np

        gold = np.array([float(r.label) for r in records])
        return "mean_abs_error", float(np.mean(np.abs(outputs["predictions"] - gold)))


TASK = register_task(RegressionTask())
