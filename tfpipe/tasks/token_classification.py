"""Token classification (named entities in BIO tags, one per word): `--task token-classification`.

Reads CoNLL (`.txt`/`.conll`) or span JSONL; a word's tag is learned and read at its first word piece (the other
pieces are weighted 0); sentences longer than the sequence length are cut into windows of whole words, never
truncated, and stitched back. The head is `TokenTagger`; scores are seqeval-style entity precision/recall/F1.
Exports take raw text, split it into words in-graph and answer `words`, `tags` and `num_words`.
"""

from __future__ import annotations

import functools
import itertools
from collections import Counter
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

from tfpipe.config.schemas import ReaderConfig
from tfpipe.config.tasks import register_task
from tfpipe.export.layout import PREDICT_METHOD
from tfpipe.tasks.base import Task, record_line
from tfpipe.tasks.sequence import texts_of


def describe_tags(records: Sequence[Any]) -> dict:
    """Tag and entity counts of tagged sentences (for `inspect-data`)."""
    tags = Counter(itertools.chain.from_iterable(r.tags or [] for r in records))
    return {"tag_distribution": dict(sorted(tags.items())),
            "entities": dict(sorted(Counter(t[2:] for t in tags.elements() if t.startswith("B-")).items()))}


def _entities(words: Sequence[str], tags: Sequence[str]) -> str:
    return " ".join(f"{w}/{t}" for w, t in zip(words, tags) if t != "O") or "—"


class TokenClassificationTask(Task):
    name = "token-classification"
    description = "words → one BIO tag each (named entities)"
    formats_by_suffix = {".txt": "conll", "": "conll"}
    target = "tags"

    def read(self, path: str | Path, config: ReaderConfig, fmt: str, labels: Optional[set[str]], log: Any,
             lang: str) -> Iterator[Any]:
        from tfpipe.text.readers import read_token_examples

        return read_token_examples(path, config, fmt, labels, log, lang)

    def describe(self, records: Sequence[Any]) -> dict:
        return describe_tags(records)

    def as_texts(self, records: Sequence[Any]) -> list[Any]:
        return texts_of(records)

    def projector_label(self, record) -> str:  # the entity types the sentence holds
        return " ".join(sorted({t.split("-", 1)[-1] for t in record.tags or [] if t != "O"})) or "O"

    def closed_labels(self, labels) -> Optional[set[str]]:
        return labels.entity_types() if labels is not None else None

    def prepare(self, records, tokenizer, max_seq_length):
        from tfpipe.data.windows import window_records

        return window_records(records, tokenizer, max_seq_length)[0]

    def dataset(self, records, tokenizer, labels, config, training=False, repeat=False, fixed_length=False):
        from tfpipe.data.pipelines import finetune_dataset, with_ignore_weights

        ds = finetune_dataset(records, tokenizer, self.name, labels, config, training, repeat, fixed_length)
        return with_ignore_weights(ds) if all(r.tags is not None for r in records) else ds

    def build_model(self, encoder, labels, dropout, pooling="cls"):
        from tfpipe.models.tagger import TokenTagger

        return TokenTagger(encoder, len(labels), dropout)

    def owns(self, model) -> bool:
        from tfpipe.models.tagger import TokenTagger

        return isinstance(model, TokenTagger)

    def export_labels(self, model, labels):
        if labels is None:
            raise ValueError("a tagger's export needs labels= (the BIO tags, train.labels)")
        if len(labels) != model.num_tags:
            raise ValueError(f"{len(labels)} labels for a head of {model.num_tags} outputs")
        return labels

    def compile_args(self, labels, training) -> dict:
        import keras

        from tfpipe.training.losses import SparseCrossEntropy

        # Only first pieces count: the pipeline's per-piece weights make accuracy a weighted metric.
        return {"loss": SparseCrossEntropy(len(labels), training.label_smoothing), "metrics": [],
                "weighted_metrics": [keras.metrics.SparseCategoricalAccuracy("accuracy")]}

    # --- evaluation -------------------------------------------------------------------------------------------

    def has_gold(self, records) -> bool:
        return all(r.tags is not None for r in records)

    def predict(self, model, tokenizer, labels, config, records) -> dict:
        from dataclasses import replace

        import numpy as np

        from tfpipe.data.labels import IGNORE_INDEX
        from tfpipe.data.windows import stitch, window_records
        from tfpipe.training.evaluate import compiled_predict, prediction_pipeline

        pipeline = prediction_pipeline(config)
        dummy = [replace(r, tags=r.tags if r.tags is not None else ["O"] * len(r.words)) for r in records]
        windows, origins = window_records(dummy, tokenizer, pipeline.max_seq_length)
        # Gold tags (or dummy "O"s) only mark each word's first piece; their values are not used here.
        from tfpipe.data.pipelines import finetune_dataset

        ds = finetune_dataset([replace(w, tags=["O"] * len(w.words)) for w in windows], tokenizer, self.name,
                              labels, pipeline)
        window_tags = []
        predict = compiled_predict(model, ds.element_spec[0])
        for features, target in ds:
            logits = np.asarray(predict(features))
            keep = target.numpy() != IGNORE_INDEX
            for row in range(len(logits)):
                window_tags.append([labels.labels[i] for i in logits[row][keep[row]].argmax(-1)])
        return {"tags": stitch(origins, window_tags, len(records))}

    def prediction_rows(self, records, predicted, labels) -> Iterator[dict]:
        for i, rec in enumerate(records):
            row = {"words": rec.words, "labels": rec.tags, "prediction": predicted["tags"][i]}
            if rec.tags is None:
                row.pop("labels")
            yield row

    def score(self, records, predicted, labels, output_dir: Path) -> dict:
        from tfpipe.training.metrics import entity_metrics

        return entity_metrics([r.tags for r in records], predicted["tags"])

    def prediction_tables(self, records, predicted, labels, gold_known, rows) -> dict[str, str]:
        from tfpipe.training.summaries import markdown_table

        line = functools.partial(record_line, records)

        tags = predicted["tags"]
        samples = [[line(i), " ".join(r.words), _entities(r.words, r.tags) if gold_known else "",
                    _entities(r.words, tags[i])] for i, r in enumerate(records[:rows])]
        tables = {"predictions/samples": markdown_table(["line", "words", "gold", "predicted"], samples)}
        if gold_known:
            wrong = [(sum(g != p for g, p in zip(r.tags, tags[i])), i) for i, r in enumerate(records)]
            worst = sorted((w for w in wrong if w[0]), key=lambda w: (-w[0], w[1]))[:rows]
            tables["predictions/worst_errors"] = markdown_table(["line", "wrong tags", "words", "gold → predicted"], [
                [line(i), n, " ".join(records[i].words),
                 ", ".join(f"{w}: {g}→{p}" for w, g, p in zip(records[i].words, records[i].tags, tags[i]) if g != p)]
                for n, i in worst])
        return tables

    # --- export -----------------------------------------------------------------------------------------------

    def endpoints(self, functions) -> dict:
        import tensorflow as tf

        from tfpipe.export.tagging import tag_text

        def text_outputs(text, text_pair=None):
            return tag_text(functions.tokenizer, functions.logits, functions.label_strings(), text,
                            functions.max_seq_length)

        out: dict = {}
        text = tf.TensorSpec([None], tf.string, name="text")
        if functions.text_pair:  # a pair column in training: the pair is accepted and, as in training, unused
            pair = tf.TensorSpec([None], tf.string, name="text_pair")
            out["serving_default"] = (text_outputs, [text, pair], PREDICT_METHOD)
        else:
            out["serving_default"] = (lambda text: text_outputs(text), [text], PREDICT_METHOD)
        out["predict_ids"] = functions.predict_ids(lambda logits: {"logits": logits})
        return out

    def truncation(self) -> str:
        return "sentences longer than max_seq_length - 2 word pieces are cut into windows of whole words"

    def score_outputs(self, outputs, records) -> tuple[str, float]:
        def rows(batches):
            return [[w.decode("utf-8") for w in row if w] for batch in batches for row in batch]

        right = total = 0
        for words, tags, record in zip(rows(outputs["words"]), rows(outputs["tags"]), records):
            if len(words) == len(record.words):  # words the model split as the file did
                right += sum(t == g for t, g in zip(tags, record.tags))
                total += len(record.words)
        return "word_tag_accuracy", right / max(total, 1)


TASK = register_task(TokenClassificationTask())
