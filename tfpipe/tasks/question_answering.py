"""Extractive question answering (SQuAD v1.1: a question and a context → the span of the context that answers
it): `--task question-answering`.

Reads SQuAD v1.1 JSON (or its JSON Lines form); long contexts are read in windows of `max_seq_length` pieces
that start every `pipeline.doc_stride` pieces, the question cut to `pipeline.max_query_length` (in-graph:
`tfpipe.data.qa_features`, the same ops in training and in the export). The head is `SpanExtractor` (a start and
an end logit per piece), trained on the mean start/end cross-entropy; the answer is the best start ≤ end pair of
context pieces over all windows, at most `pipeline.max_answer_length` pieces long, cut from the context as written
through the tokenizer's byte offsets. Scores are the official SQuAD v1.1 exact match and F1. Exports take raw
`question` and `context` strings and answer `answer`, `score` and the answer's character offsets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

from tfpipe.config.schemas import ReaderConfig
from tfpipe.config.tasks import register_task
from tfpipe.export.layout import PREDICT_METHOD
from tfpipe.tasks.base import Task

PREDICT_CHUNK = 32  # questions answered per call in evaluation (their windows run as one batch)


def answer_spans(tokenizer: Any, logits_fn: Any, question: Any, context: Any, pipeline: Any) -> dict:
    """In-graph: `[batch]` questions and contexts → `answer` (string), `score` (start + end logit) and the answer's
    `answer_start`/`answer_end` character offsets in the context (end exclusive), through every window."""
    import tensorflow as tf

    from tfpipe.data import qa_features
    from tfpipe.text.tokenizer import MODEL_INPUTS

    windows = qa_features.qa_windows(tokenizer, question, context, pipeline.max_seq_length, pipeline.doc_stride,
                                     pipeline.max_query_length)
    logits = tf.cast(logits_fn({name: windows[name] for name in MODEL_INPUTS}), tf.float32)
    best = qa_features.best_spans(logits[..., 0], logits[..., 1], windows, tf.shape(question)[0],
                                  pipeline.max_answer_length)
    return {"answer": qa_features.answer_text(context, best["start_byte"], best["end_byte"]),
            "score": best["score"],
            "answer_start": qa_features.char_offset(context, best["start_byte"]),
            "answer_end": qa_features.char_offset(context, best["end_byte"])}


class QuestionAnsweringTask(Task):
    name = "question-answering"
    description = "a question and a context → the answer span of the context (SQuAD v1.1)"
    formats_by_suffix = {".json": "squad", ".jsonl": "squad"}
    monitor = ("val_loss", "min")
    uses_labels = False
    convertible = False  # its signatures run the encoder over windows, not one call per text
    input_names = ("question", "context")
    pairs_always = True

    def read(self, path: str | Path, config: ReaderConfig, fmt: str, labels: Optional[set[str]], log: Any,
             lang: str) -> Iterator[Any]:
        from tfpipe.text.readers import DataError
        from tfpipe.text.readers.squad import iter_squad

        if fmt != "squad":
            raise DataError(path, 0, f"question answering reads SQuAD files (v1.1 JSON, or JSON Lines), not {fmt}",
                            "file")
        return iter_squad(path, log)

    def describe(self, records: Sequence[Any]) -> dict:
        answered = [r for r in records if r.answers]
        return {"contexts": len({r.context for r in records}), "unanswered": len(records) - len(answered),
                "answers_per_question": round(sum(len(r.answers) for r in answered) / max(len(answered), 1), 3)}

    def as_texts(self, records: Sequence[Any]) -> list[Any]:
        from tfpipe.text.readers import Record

        return [Record(r.question, r.context, source=r.source, line=r.line) for r in records]

    def projector_label(self, record) -> str:
        return record.answers[0].text if record.answers else ""

    def closed_labels(self, labels) -> None:
        return None

    def has_gold(self, records) -> bool:
        return all(r.answers for r in records)

    # --- data -------------------------------------------------------------------------------------------------

    def _spans(self, records) -> list[tuple[int, int]]:
        from tfpipe.data.qa_features import char_to_byte_span

        # Training reads the first answer, as the SQuAD recipes do; evaluation scores against all of them.
        return [char_to_byte_span(r.context, r.answers[0].start, r.answers[0].text) for r in records]

    def examples_per_epoch(self, records, tokenizer, config) -> int:
        """Windows, not questions: an epoch sees every window once (a long context gives several)."""
        import tensorflow as tf

        from tfpipe.data.qa_features import qa_windows

        count = 0
        for start in range(0, len(records), 256):
            chunk = records[start:start + 256]
            windows = qa_windows(tokenizer, tf.constant([r.question for r in chunk]),
                                 tf.constant([r.context for r in chunk]), config.max_seq_length, config.doc_stride,
                                 config.max_query_length)
            count += int(tf.shape(windows["example_index"])[0])
        return count

    def dataset(self, records, tokenizer, labels, config, training=False, repeat=False, fixed_length=False):
        import tensorflow as tf

        from tfpipe.data.qa_features import qa_dataset

        labelled = self.has_gold(records)
        if training and not labelled:
            first = next(r for r in records if not r.answers)
            raise ValueError(f"{first.source}: question {first.id!r} has no answer; training needs one per question")
        ds = qa_dataset([r.question for r in records], [r.context for r in records],
                        self._spans(records) if labelled else None, tokenizer, config.max_seq_length,
                        config.doc_stride, config.max_query_length, config.batch_size, training, config.seed,
                        config.shuffle_buffer, repeat)
        if not labelled:
            return ds.map(lambda features, _: features)
        # Keras takes one target per output: the start and end positions side by side, [batch, 2].
        return ds.map(lambda features, y: (features, tf.stack([y["start_positions"], y["end_positions"]], axis=1)))

    # --- models and training ----------------------------------------------------------------------------------

    def build_model(self, encoder, labels, dropout, pooling="cls"):
        from tfpipe.models.span_extractor import SpanExtractor

        return SpanExtractor(encoder, dropout)

    def owns(self, model) -> bool:
        from tfpipe.models.span_extractor import SpanExtractor

        return isinstance(model, SpanExtractor)

    def export_labels(self, model, labels):
        return None

    def compile_args(self, labels, training) -> dict:
        import keras

        from tfpipe.training.losses import SpanCrossEntropy, span_exact_match

        return {"loss": SpanCrossEntropy(), "metrics": [keras.metrics.MeanMetricWrapper(span_exact_match,
                                                                                       name="span_accuracy")],
                "weighted_metrics": None}

    # --- evaluation -------------------------------------------------------------------------------------------

    def predict(self, model, tokenizer, labels, config, records) -> dict:
        import numpy as np
        import tensorflow as tf

        strings = tf.TensorSpec([None], tf.string)
        answer = tf.function(lambda q, c: answer_spans(tokenizer, lambda f: model(f, training=False), q, c,
                                                       config.pipeline), input_signature=[strings, strings])
        out: dict[str, list] = {"answers": [], "scores": [], "starts": []}
        for start in range(0, len(records), PREDICT_CHUNK):
            chunk = records[start:start + PREDICT_CHUNK]
            result = answer(tf.constant([r.question for r in chunk]), tf.constant([r.context for r in chunk]))
            out["answers"] += [a.decode("utf-8") for a in result["answer"].numpy()]
            out["scores"] += result["score"].numpy().tolist()
            out["starts"] += result["answer_start"].numpy().tolist()
        return {"answers": out["answers"], "scores": np.asarray(out["scores"], np.float32),
                "starts": out["starts"]}

    def prediction_rows(self, records, predicted, labels) -> Iterator[dict]:
        for i, rec in enumerate(records):
            row = {"id": rec.id, "question": rec.question, "context": rec.context}
            if rec.answers:
                row["answers"] = [a.text for a in rec.answers]
            row.update({"prediction": predicted["answers"][i], "answer_start": predicted["starts"][i],
                        "score": float(predicted["scores"][i])})
            yield row

    def score(self, records, predicted, labels, output_dir: Path) -> dict:
        from tfpipe.training.squad_metrics import squad_scores

        return squad_scores({r.id: a for r, a in zip(records, predicted["answers"])}, records)

    def prediction_tables(self, records, predicted, labels, gold_known, rows) -> dict[str, str]:
        from tfpipe.training.squad_metrics import f1
        from tfpipe.training.summaries import markdown_table

        answers, scores = predicted["answers"], predicted["scores"]
        samples = [[r.id, r.question, r.answers[0].text if gold_known else "", answers[i], f"{scores[i]:.3g}"]
                   for i, r in enumerate(records[:rows])]
        tables = {"predictions/samples": markdown_table(["id", "question", "gold", "predicted", "score"], samples)}
        if gold_known:
            f1s = [max(f1(answers[i], a.text) for a in r.answers) for i, r in enumerate(records)]
            worst = sorted(range(len(records)), key=lambda i: (f1s[i], -scores[i]))[:rows]
            tables["predictions/worst_errors"] = markdown_table(
                ["id", "question", "gold", "predicted", "F1", "score"],
                [[records[i].id, records[i].question, " | ".join(a.text for a in records[i].answers), answers[i],
                  f"{f1s[i]:.2f}", f"{scores[i]:.3g}"] for i in worst if f1s[i] < 1.0])
        return tables

    # --- export -----------------------------------------------------------------------------------------------

    def endpoints(self, functions) -> dict:
        import tensorflow as tf

        question = tf.TensorSpec([None], tf.string, name="question")
        context = tf.TensorSpec([None], tf.string, name="context")

        def serving_default(question, context):
            return answer_spans(functions.tokenizer, functions.logits, question, context, functions.pipeline)

        return {"serving_default": (serving_default, [question, context], PREDICT_METHOD),
                # One window per row: its start and end logits.
                "predict_ids": functions.predict_ids(
                    lambda logits: {"start_logits": logits[..., 0], "end_logits": logits[..., 1]})}

    def truncation(self) -> str:
        return ("contexts longer than a window are read in windows of max_seq_length pieces starting every "
                "doc_stride pieces; a question keeps its first max_query_length pieces")


TASK = register_task(QuestionAnsweringTask())
