"""Extractive question answering scores by the official SQuAD v1.1 rules.

These follow the official evaluation script, `evaluate-v1.1.py` (Rajpurkar et al., 2016, distributed with the
SQuAD v1.1 data), rule for rule, so that figures here compare with published ones:

* an answer is normalized by lower-casing it, removing every character of `string.punctuation`, removing the
  articles a/an/the as whole words (`\\b(a|an|the)\\b`), then collapsing whitespace — in that order;
* exact match: the normalized prediction equals the normalized ground truth;
* F1: over the normalized answers' whitespace tokens, the overlap counted as a multiset (`Counter` `&`); no
  overlap scores 0, so two answers that both normalize to nothing have exact match 1 but F1 0, as in the script;
* each question takes its best score over its ground truths; a question without a prediction scores 0 and is
  counted; the totals are 100 × the mean over all questions.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Callable, Iterable, Mapping, TypeVar

from tfpipe.text.readers.squad import QARecord

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
S = TypeVar("S", bool, float)


def normalize_answer(s: str) -> str:
    """`s` lower-cased, without ASCII punctuation and the articles a/an/the, whitespace collapsed to single
    spaces (the official script's `normalize_answer`)."""
    text = "".join(ch for ch in s.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, truth: str) -> bool:
    """Whether the two answers are equal once normalized."""
    return normalize_answer(prediction) == normalize_answer(truth)


def f1(prediction: str, truth: str) -> float:
    """Token F1 of the normalized answers: the harmonic mean of the precision and recall of the common tokens,
    each token counted as often as it occurs in both; 0.0 when no token is shared (or either side is empty)."""
    predicted, gold = normalize_answer(prediction).split(), normalize_answer(truth).split()
    common = sum((Counter(predicted) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def _best(metric: Callable[[str, str], S], prediction: str, truths: list[str]) -> S:
    return max(metric(prediction, truth) for truth in truths)


def squad_scores(predictions: Mapping[str, str], records: Iterable[QARecord]) -> dict:
    """`{"exact_match", "f1"}` (percentages over all `records`), `"num_examples"` and `"missing_predictions"`
    (questions without an answer in `predictions`, which score 0). Predictions for ids not in `records` are
    ignored, as in the official script. Every record must have answers: an unlabelled question cannot be scored."""
    total = missing = 0
    em_sum = f1_sum = 0.0
    for record in records:
        if not record.answers:
            raise ValueError(f"question {record.id!r} has no answers: only labelled questions can be scored")
        total += 1
        if record.id not in predictions:
            missing += 1
            continue
        prediction = predictions[record.id]
        if not isinstance(prediction, str):
            raise TypeError(f"the prediction for {record.id!r} must be a string, got {type(prediction).__name__}")
        truths = [answer.text for answer in record.answers]
        em_sum += _best(exact_match, prediction, truths)
        f1_sum += _best(f1, prediction, truths)
    if total == 0:
        raise ValueError("no questions to score")
    return {"exact_match": 100.0 * em_sum / total, "f1": 100.0 * f1_sum / total, "num_examples": total,
            "missing_predictions": missing}
