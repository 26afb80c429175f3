"""tfpipe.training.metrics cross-checked against the reference libraries: scikit-learn (accuracy, precision/recall/F1,
MCC, confusion matrix, ROC-AUC, MSE/MAE), scipy (Pearson, Spearman) and seqeval (entity scores in its default,
conlleval-compatible mode), over random and edge-case inputs."""

from __future__ import annotations

import random
import warnings

import numpy as np
import pytest
from scipy import stats
from seqeval import metrics as seqeval
from seqeval.metrics.sequence_labeling import get_entities
from sklearn import metrics as sk

from tfpipe.training.metrics import chunks, classification_metrics, entity_metrics, regression_metrics

# --- classification -----------------------------------------------------------------------------------------

EDGE_CLASSIFICATION = [
    ([0, 0, 0, 0], [0, 0, 0, 0], 2),  # one class only, all right: MCC's denominator is 0
    ([0, 1, 0, 1], [0, 0, 0, 0], 2),  # a class never predicted (precision 0/0)
    ([0, 0, 0, 0], [1, 1, 1, 1], 2),  # all wrong, one class in gold and another in predictions
    ([1, 1, 0, 0], [0, 0, 1, 1], 2),  # perfectly anti-correlated: MCC -1
    ([0, 1, 2, 0], [0, 1, 1, 0], 4),  # a label that neither gold nor predictions use
    ([2], [2], 3),  # a single example
]


def _random_classification(rng: np.random.Generator, n: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
    gold = rng.integers(0, classes, n)
    # Mostly right, so every metric is away from its trivial value.
    pred = np.where(rng.random(n) < 0.6, gold, rng.integers(0, classes, n))
    return gold, pred


def _check_classification(gold, pred, classes: int, probabilities=None) -> None:
    labels = [str(i) for i in range(classes)]
    ours = classification_metrics(gold, pred, labels, probabilities)
    ids = list(range(classes))
    assert ours["accuracy"] == pytest.approx(sk.accuracy_score(gold, pred))
    assert ours["confusion_matrix"] == sk.confusion_matrix(gold, pred, labels=ids).tolist()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns on constant inputs; the value is what is compared
        mcc = sk.matthews_corrcoef(gold, pred)
    assert ours["mcc"] == pytest.approx(mcc, abs=1e-12)
    # Macro over every label of the vocabulary, those absent from this sample included (0/0 counts as 0).
    p, r, f, _ = sk.precision_recall_fscore_support(gold, pred, labels=ids, average="macro", zero_division=0)
    assert (ours["precision"], ours["recall"], ours["f1"]) == pytest.approx((p, r, f))
    p, r, f, support = sk.precision_recall_fscore_support(gold, pred, labels=ids, average=None, zero_division=0)
    for i, label in enumerate(labels):
        row = ours["per_class"][label]
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx((p[i], r[i], f[i]))
        assert row["support"] == support[i]
    if classes == 2:
        assert ours["f1_positive"] == pytest.approx(sk.f1_score(gold, pred, pos_label=1, average="binary",
                                                                zero_division=0))
        if probabilities is not None:
            if len(set(gold)) == 2:
                assert ours["roc_auc"] == pytest.approx(sk.roc_auc_score(gold, probabilities[:, 1]))
            else:
                assert ours["roc_auc"] is None  # undefined with one class; sklearn raises


@pytest.mark.parametrize("classes", [2, 3, 7])
def test_classification_matches_sklearn_on_random_inputs(classes):
    rng = np.random.default_rng(classes)
    for n in (1, 5, 50, 400):
        gold, pred = _random_classification(rng, n, classes)
        probabilities = None
        if classes == 2:
            # Rounded, so that tied scores exercise the average-rank handling.
            positive = np.round(np.clip(0.5 * gold + 0.5 * rng.random(n), 0, 1), 1)
            probabilities = np.stack([1 - positive, positive], axis=1)
        _check_classification(gold, pred, classes, probabilities)


@pytest.mark.parametrize("gold, pred, classes", EDGE_CLASSIFICATION)
def test_classification_matches_sklearn_on_edge_cases(gold, pred, classes):
    probabilities = np.eye(2)[pred] * 0.8 + 0.1 if classes == 2 else None
    _check_classification(np.array(gold), np.array(pred), classes, probabilities)


# --- regression ---------------------------------------------------------------------------------------------

def test_regression_matches_sklearn_and_scipy():
    rng = np.random.default_rng(0)
    for n in (3, 20, 500):
        gold = rng.normal(size=n)
        pred = gold + rng.normal(scale=0.7, size=n)
        for p in (pred, np.round(pred, 0)):  # the rounded copy has ties: Spearman's average ranks
            ours = regression_metrics(gold, p)
            assert ours["mse"] == pytest.approx(sk.mean_squared_error(gold, p))
            assert ours["mae"] == pytest.approx(sk.mean_absolute_error(gold, p))
            assert ours["pearson"] == pytest.approx(stats.pearsonr(gold, p).statistic)
            assert ours["spearman"] == pytest.approx(stats.spearmanr(gold, p).statistic)


def test_regression_with_ties_in_gold_matches_scipy():
    gold = [1.0, 1.0, 2.0, 2.0, 3.0, 5.0]  # STS-B style scores repeat
    pred = [0.9, 1.4, 1.4, 2.5, 3.5, 4.0]
    ours = regression_metrics(gold, pred)
    assert ours["spearman"] == pytest.approx(stats.spearmanr(gold, pred).statistic)
    assert ours["pearson"] == pytest.approx(stats.pearsonr(gold, pred).statistic)


def test_constant_predictions_give_zero_correlation_where_scipy_gives_nan():
    # A deliberate difference: an undefined correlation is reported as 0 (a JSON number), scipy says NaN.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isnan(stats.pearsonr([1.0, 2.0, 3.0], [2.0, 2.0, 2.0]).statistic)
    ours = regression_metrics([1.0, 2.0, 3.0], [2.0, 2.0, 2.0])
    assert ours["pearson"] == 0.0 and ours["spearman"] == 0.0


# --- entities (seqeval) -------------------------------------------------------------------------------------

EDGE_TAGGING = [
    (["I-PER", "I-PER", "O"], ["B-PER", "I-PER", "O"]),  # I- without B- starts an entity
    (["O", "I-LOC"], ["O", "B-LOC"]),  # I- after O
    (["B-PER", "I-LOC", "I-LOC"], ["B-PER", "B-LOC", "I-LOC"]),  # a type change inside I- starts a new entity
    (["B-PER", "I-PER", "B-PER"], ["B-PER", "B-PER", "B-PER"]),  # B- after B- of the same type
    (["B-LOC"], ["B-LOC"]),  # a single-token sentence and entity
    (["B-MISC", "O", "B-MISC"], ["O", "O", "O"]),  # nothing predicted: precision 0/0
    (["O", "O"], ["B-PER", "O"]),  # nothing in gold: recall 0/0
    (["O", "O"], ["O", "O"]),  # no entities anywhere
    (["B-PER", "I-PER", "I-PER"], ["B-PER", "I-PER", "O"]),  # a partial match is a miss
    (["S-PER", "B-LOC", "E-LOC", "O"], ["S-PER", "B-LOC", "I-LOC", "E-LOC"]),  # IOBES
    (["B-ORG-X", "I-ORG-X"], ["B-ORG-X", "I-ORG"]),  # types with dashes
]


def _check_entities(gold: list[list[str]], pred: list[list[str]]) -> None:
    ours = entity_metrics(gold, pred)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval warns when a score is 0/0 (it reports 0, as tfpipe does)
        assert ours["precision"] == pytest.approx(seqeval.precision_score(gold, pred))
        assert ours["recall"] == pytest.approx(seqeval.recall_score(gold, pred))
        assert ours["f1"] == pytest.approx(seqeval.f1_score(gold, pred))
        report = seqeval.classification_report(gold, pred, output_dict=True, zero_division=0)
    assert ours["accuracy"] == pytest.approx(seqeval.accuracy_score(gold, pred))
    types = {k: v for k, v in report.items() if not k.endswith(" avg")}
    assert set(ours["per_type"]) == set(types)
    for kind, row in types.items():
        mine = ours["per_type"][kind]
        assert (mine["precision"], mine["recall"], mine["f1"]) == pytest.approx(
            (row["precision"], row["recall"], row["f1-score"]))
        assert mine["support"] == row["support"]
    assert ours["num_entities"] == sum(len(get_entities(g)) for g in gold)


@pytest.mark.parametrize("gold, pred", EDGE_TAGGING)
def test_entities_match_seqeval_on_edge_cases(gold, pred):
    _check_entities([gold], [pred])
    # Same spans as seqeval's chunker (seqeval: (type, start, end inclusive)).
    assert chunks(gold) == {(s, e + 1, t) for t, s, e in get_entities(gold)}


def test_entities_match_seqeval_on_random_bio_sequences():
    rng = random.Random(0)
    tags = ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "I-MISC", "B-MISC"]
    for _ in range(200):
        gold, pred = [], []
        for _ in range(rng.randint(1, 6)):
            length = rng.randint(1, 12)
            sentence = [rng.choice(tags) for _ in range(length)]
            gold.append(sentence)
            # Mostly the gold tags, so that many entities match.
            pred.append([t if rng.random() < 0.7 else rng.choice(tags) for t in sentence])
        _check_entities(gold, pred)


def test_untyped_tags_chunk_as_seqeval_but_keep_conllevals_empty_type():
    # Bare "B"/"I" tags (no type) form the same spans as seqeval's; the type is "" as conlleval.pl prints it,
    # where seqeval says "_": scores are equal, only the per-type key differs.
    rng = random.Random(1)
    tags = ["O", "B-PER", "I-PER", "E-PER", "S-LOC", "B", "I", "O-PER", "I-X"]
    for _ in range(500):
        sentence = [rng.choice(tags) for _ in range(rng.randint(1, 8))]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # seqeval warns that "O-PER" is not an entity tag (nor is it here)
            theirs = {(s, e + 1, t) for t, s, e in get_entities(sentence)}
        assert {(s, e, t or "_") for s, e, t in chunks(sentence)} == theirs
    ours = entity_metrics([["B", "I", "O"]], [["B", "I", "O"]])
    assert ours["f1"] == 1.0 and set(ours["per_type"]) == {""}
