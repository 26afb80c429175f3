"""tfpipe.training.metrics against hand-computed cases and an independent port of CoNLL's conlleval.pl."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from tfpipe.training.metrics import chunks, classification_metrics, entity_metrics, regression_metrics, roc_auc

# --- classification -----------------------------------------------------------------------------------------

# Three classes a, b, c; gold / predicted:
#   gold a (3): a a b      gold b (4): b b c a      gold c (3): c c a
# Confusion matrix (rows gold, columns predicted):
#          a  b  c   | gold
#     a  [ 2, 1, 0 ] | 3
#     b  [ 1, 2, 1 ] | 4
#     c  [ 1, 0, 2 ] | 3
#   pred   4  3  3     total 10, diagonal 6 -> accuracy 0.6
# precision: a 2/4, b 2/3, c 2/3;   recall: a 2/3, b 2/4, c 2/3
# F1: a = 2*(1/2)(2/3)/(1/2+2/3) = 4/7, b = 4/7, c = 2/3;   macro F1 = (4/7 + 4/7 + 2/3)/3 = 38/63
# macro precision = macro recall = (1/2 + 2/3 + 2/3)/3 = 11/18
# MCC (Gorodkin): c=6, s=10, t=(3,4,3), p=(4,3,3): t.p = 33, p.p = 34, t.t = 34
#   (c*s - t.p) / sqrt((s^2 - p.p)(s^2 - t.t)) = (60 - 33) / sqrt(66 * 66) = 27/66 = 9/22
THREE_GOLD = [0, 0, 0, 1, 1, 1, 1, 2, 2, 2]
THREE_PRED = [0, 0, 1, 1, 1, 2, 0, 2, 2, 0]


def test_three_class_hand_computed():
    result = classification_metrics(THREE_GOLD, THREE_PRED, ["a", "b", "c"])
    assert result["confusion_matrix"] == [[2, 1, 0], [1, 2, 1], [1, 0, 2]]
    assert result["accuracy"] == pytest.approx(0.6)
    per_class = result["per_class"]
    assert per_class["a"]["precision"] == pytest.approx(1 / 2)
    assert per_class["b"]["precision"] == pytest.approx(2 / 3)
    assert per_class["c"]["precision"] == pytest.approx(2 / 3)
    assert per_class["a"]["recall"] == pytest.approx(2 / 3)
    assert per_class["b"]["recall"] == pytest.approx(1 / 2)
    assert per_class["c"]["recall"] == pytest.approx(2 / 3)
    assert per_class["a"]["f1"] == pytest.approx(4 / 7)
    assert per_class["b"]["f1"] == pytest.approx(4 / 7)
    assert per_class["c"]["f1"] == pytest.approx(2 / 3)
    assert [per_class[k]["support"] for k in "abc"] == [3, 4, 3]
    assert result["f1"] == pytest.approx(38 / 63)
    assert result["precision"] == pytest.approx(11 / 18)
    assert result["recall"] == pytest.approx(11 / 18)
    assert result["mcc"] == pytest.approx(9 / 22)
    assert result["num_examples"] == 10
    # Binary-only entries are absent for three classes.
    assert "f1_positive" not in result and "roc_auc" not in result


def test_binary_f1_positive_is_f1_of_second_label():
    # gold 0 0 0 0 1 1 / pred 0 1 0 0 1 0
    # label "1": TP 1, predicted 2, gold 2 -> P = R = F1 = 1/2
    # label "0": TP 3, predicted 4, gold 4 -> P = R = F1 = 3/4
    # MCC: TP=1 TN=3 FP=1 FN=1 -> (3 - 1) / sqrt(2*2*4*4) = 2/8 = 1/4
    result = classification_metrics([0, 0, 0, 0, 1, 1], [0, 1, 0, 0, 1, 0], ["0", "1"])
    assert result["f1_positive"] == pytest.approx(0.5)
    assert result["per_class"]["0"]["f1"] == pytest.approx(0.75)
    assert result["f1"] == pytest.approx(0.625)
    assert result["mcc"] == pytest.approx(0.25)
    assert "roc_auc" not in result  # no probabilities given


def test_roc_auc_with_ties_hand_computed():
    # positives score 0.35, 0.8, 0.4; negatives 0.1, 0.4, 0.4.  Pairs (pos > neg: 1, tie: 1/2):
    #   0.35: 1 + 0 + 0 = 1;  0.8: 1 + 1 + 1 = 3;  0.4: 1 + 1/2 + 1/2 = 2  -> 6 / 9 = 2/3
    y = [0, 0, 1, 1, 0, 1]
    scores = [0.1, 0.4, 0.35, 0.8, 0.4, 0.4]
    assert roc_auc(y, scores) == pytest.approx(2 / 3)
    probabilities = np.stack([1 - np.asarray(scores), np.asarray(scores)], axis=1)
    result = classification_metrics(y, [int(s > 0.5) for s in scores], ["0", "1"], probabilities)
    assert result["roc_auc"] == pytest.approx(2 / 3)
    # All scores tied: every pair counts 1/2.
    assert roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == pytest.approx(0.5)
    # One class only: undefined.
    assert roc_auc([1, 1], [0.2, 0.9]) is None


def test_perfect_and_all_wrong():
    y = [0, 1, 0, 1, 1]
    scores = np.array([0.1, 0.9, 0.3, 0.7, 0.8])
    perfect = classification_metrics(y, y, ["0", "1"], np.stack([1 - scores, scores], axis=1))
    assert perfect["accuracy"] == 1.0 and perfect["f1"] == 1.0 and perfect["f1_positive"] == 1.0
    assert perfect["mcc"] == pytest.approx(1.0)
    assert perfect["roc_auc"] == pytest.approx(1.0)

    wrong = [1 - v for v in y]
    all_wrong = classification_metrics(y, wrong, ["0", "1"], np.stack([scores, 1 - scores], axis=1))
    assert all_wrong["accuracy"] == 0.0 and all_wrong["f1"] == 0.0 and all_wrong["f1_positive"] == 0.0
    assert all_wrong["mcc"] == pytest.approx(-1.0)
    assert all_wrong["roc_auc"] == pytest.approx(0.0)


def test_class_never_predicted_has_zero_precision():
    # "c" is gold once but never predicted: precision 0/0 -> 0, recall 0, F1 0; no division error.
    result = classification_metrics([0, 1, 2, 2], [0, 1, 1, 0], ["a", "b", "c"])
    assert result["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert result["per_class"]["b"]["precision"] == pytest.approx(0.5)
    assert result["accuracy"] == pytest.approx(0.5)
    # A constant prediction makes the MCC denominator 0: reported as 0.
    assert classification_metrics([0, 1, 2], [1, 1, 1], ["a", "b", "c"])["mcc"] == 0.0


# --- regression ---------------------------------------------------------------------------------------------

def test_regression_hand_computed():
    # errors -1, 0, -2, 1 -> MSE 6/4, MAE 4/4
    # Pearson: t - 2.5 = (-1.5, -.5, .5, 1.5), p - 3 = (-1, -1, 2, 0): cov 3, ss 5 and 6 -> 3/sqrt(30)
    # Spearman with ties: ranks t (1, 2, 3, 4), p = (2, 2, 5, 3) -> (1.5, 1.5, 4, 3);
    #   rank deviations (-1.5, -.5, .5, 1.5) and (-1, -1, 1.5, .5): cov 3.5, ss 5 and 4.5 -> 3.5/sqrt(22.5)
    result = regression_metrics([1, 2, 3, 4], [2, 2, 5, 3])
    assert result["mse"] == pytest.approx(1.5)
    assert result["mae"] == pytest.approx(1.0)
    assert result["pearson"] == pytest.approx(3 / math.sqrt(30))
    assert result["spearman"] == pytest.approx(3.5 / math.sqrt(22.5))
    assert result["num_examples"] == 4


def test_spearman_is_one_for_monotonic_non_linear():
    t = np.arange(1.0, 7.0)
    result = regression_metrics(t, t ** 3)
    assert result["spearman"] == pytest.approx(1.0)
    assert result["pearson"] < 0.99
    reversed_result = regression_metrics(t, -np.exp(t))
    assert reversed_result["spearman"] == pytest.approx(-1.0)
    assert regression_metrics(t, t)["mse"] == 0.0


# --- entity-level (conlleval) hand cases ---------------------------------------------------------------------

def test_chunks_conll_conventions():
    assert chunks(["B-PER", "I-PER", "O"]) == {(0, 2, "PER")}
    # conlleval: I- after O starts a chunk (IOB1 style); so does I- at the sentence start.
    assert chunks(["O", "I-LOC", "I-LOC", "O"]) == {(1, 3, "LOC")}
    assert chunks(["I-ORG", "O"]) == {(0, 1, "ORG")}
    # B-LOC I-PER: the type change ends LOC and starts PER.
    assert chunks(["B-LOC", "I-PER"]) == {(0, 1, "LOC"), (1, 2, "PER")}
    assert chunks(["I-PER", "I-ORG", "I-ORG"]) == {(0, 1, "PER"), (1, 3, "ORG")}
    # B after B/I of the same type starts a new chunk.
    assert chunks(["B-PER", "B-PER", "I-PER"]) == {(0, 1, "PER"), (1, 3, "PER")}
    # A chunk running to the end of the sentence is closed there.
    assert chunks(["O", "O", "B-ORG", "I-ORG"]) == {(2, 4, "ORG")}
    assert chunks(["O", "O"]) == set()
    assert chunks([]) == set()


def test_entity_metrics_hand_computed():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O"]]
    # gold chunks PER(0,2) LOC(3,4) | ORG(0,1); predicted PER(0,2) ORG(3,4) | ORG(0,1); correct PER, ORG(0,1)
    result = entity_metrics(gold, pred)
    assert result["precision"] == pytest.approx(2 / 3)
    assert result["recall"] == pytest.approx(2 / 3)
    assert result["f1"] == pytest.approx(2 / 3)
    assert result["accuracy"] == pytest.approx(5 / 6)  # only B-LOC/B-ORG differs among 6 tokens
    assert result["num_entities"] == 3 and result["num_sentences"] == 2
    per_type = result["per_type"]
    assert list(per_type) == ["LOC", "ORG", "PER"]
    assert per_type["PER"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    assert per_type["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    # ORG: 1 correct of 2 guessed, 1 gold
    assert per_type["ORG"]["precision"] == pytest.approx(0.5)
    assert per_type["ORG"]["recall"] == pytest.approx(1.0)
    assert per_type["ORG"]["f1"] == pytest.approx(2 / 3)
    assert per_type["ORG"]["support"] == 1


def test_entity_partial_span_is_not_correct():
    result = entity_metrics([["B-PER", "I-PER", "O"]], [["B-PER", "O", "O"]])
    assert (result["precision"], result["recall"], result["f1"]) == (0.0, 0.0, 0.0)
    assert result["accuracy"] == pytest.approx(2 / 3)
    # A chunk does not run across sentences: I-PER opening sentence 2 is a new chunk.
    result = entity_metrics([["B-PER"], ["I-PER"]], [["B-PER"], ["I-PER"]])
    assert result["num_entities"] == 2 and result["f1"] == 1.0


def test_entity_length_mismatch_raises():
    with pytest.raises(ValueError, match="tags for"):
        entity_metrics([["O", "O"]], [["O"]])


# --- an independent port of conlleval.pl -------------------------------------------------------------------

def _conll_end_of_chunk(prev_tag, tag, prev_type, kind):
    chunk_end = False
    if prev_tag == "B" and tag == "B":
        chunk_end = True
    if prev_tag == "B" and tag == "O":
        chunk_end = True
    if prev_tag == "I" and tag == "B":
        chunk_end = True
    if prev_tag == "I" and tag == "O":
        chunk_end = True
    if prev_tag == "E" and tag == "E":
        chunk_end = True
    if prev_tag == "E" and tag == "I":
        chunk_end = True
    if prev_tag == "E" and tag == "O":
        chunk_end = True
    if prev_tag == "I" and tag == "O":
        chunk_end = True
    if prev_tag != "O" and prev_tag != "." and prev_type != kind:
        chunk_end = True
    if prev_tag == "]":
        chunk_end = True
    if prev_tag == "[":
        chunk_end = True
    return chunk_end


def _conll_start_of_chunk(prev_tag, tag, prev_type, kind):
    chunk_start = False
    if prev_tag == "B" and tag == "B":
        chunk_start = True
    if prev_tag == "I" and tag == "B":
        chunk_start = True
    if prev_tag == "O" and tag == "B":
        chunk_start = True
    if prev_tag == "O" and tag == "I":
        chunk_start = True
    if prev_tag == "E" and tag == "E":
        chunk_start = True
    if prev_tag == "E" and tag == "I":
        chunk_start = True
    if prev_tag == "O" and tag == "E":
        chunk_start = True
    if prev_tag == "O" and tag == "I":
        chunk_start = True
    if tag != "O" and tag != "." and prev_type != kind:
        chunk_start = True
    if tag == "[":
        chunk_start = True
    if tag == "]":
        chunk_start = True
    return chunk_start


def _conll_split(tag):
    # conlleval: /^([^-]*)-(.*)$/ -> (prefix, type), else (tag, "")
    if "-" in tag:
        prefix, _, kind = tag.partition("-")
        return prefix, kind
    return tag, ""


def conlleval(gold, predicted):
    """conlleval.pl's main loop over lines "word gold guess", each sentence followed by an empty line."""
    boundary = "-X-"
    lines = []
    for g, p in zip(gold, predicted):
        lines.extend(("w", a, b) for a, b in zip(g, p))
        lines.append((boundary, "O", "O"))  # an empty line becomes (boundary, O, O)
    correct_chunk = found_correct = found_guessed = correct_tags = token_counter = 0
    correct_chunk_t, found_correct_t, found_guessed_t = {}, {}, {}
    in_correct = False
    last_correct, last_correct_type, last_guessed, last_guessed_type = "O", "", "O", ""
    for first_item, gold_tag, guess_tag in lines:
        guessed, guessed_type = _conll_split(guess_tag)
        correct, correct_type = _conll_split(gold_tag)
        if first_item == boundary:
            guessed = "O"
        if in_correct:
            end_correct = _conll_end_of_chunk(last_correct, correct, last_correct_type, correct_type)
            end_guessed = _conll_end_of_chunk(last_guessed, guessed, last_guessed_type, guessed_type)
            if end_correct and end_guessed and last_guessed_type == last_correct_type:
                in_correct = False
                correct_chunk += 1
                correct_chunk_t[last_correct_type] = correct_chunk_t.get(last_correct_type, 0) + 1
            elif end_correct != end_guessed or guessed_type != correct_type:
                in_correct = False
        start_correct = _conll_start_of_chunk(last_correct, correct, last_correct_type, correct_type)
        start_guessed = _conll_start_of_chunk(last_guessed, guessed, last_guessed_type, guessed_type)
        if start_correct and start_guessed and guessed_type == correct_type:
            in_correct = True
        if start_correct:
            found_correct += 1
            found_correct_t[correct_type] = found_correct_t.get(correct_type, 0) + 1
        if start_guessed:
            found_guessed += 1
            found_guessed_t[guessed_type] = found_guessed_t.get(guessed_type, 0) + 1
        if first_item != boundary:
            if correct == guessed and guessed_type == correct_type:
                correct_tags += 1
            token_counter += 1
        last_guessed, last_correct = guessed, correct
        last_guessed_type, last_correct_type = guessed_type, correct_type
    if in_correct:
        correct_chunk += 1
        correct_chunk_t[last_correct_type] = correct_chunk_t.get(last_correct_type, 0) + 1

    def prf(c, guessed_n, expected_n):
        p = c / guessed_n if guessed_n else 0.0
        r = c / expected_n if expected_n else 0.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)

    types = {}
    for kind in sorted(set(found_correct_t) | set(found_guessed_t)):
        types[kind] = (correct_chunk_t.get(kind, 0), found_guessed_t.get(kind, 0), found_correct_t.get(kind, 0))
    return {"counts": (correct_chunk, found_guessed, found_correct),
            "prf": prf(correct_chunk, found_guessed, found_correct),
            "accuracy": correct_tags / token_counter, "types": {k: (v, prf(*v)) for k, v in types.items()}}


def test_conlleval_port_on_the_documented_cases():
    # Sanity of the port itself on the hand case above: 2 correct of 3 guessed, 3 gold.
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O"]]
    assert conlleval(gold, pred)["counts"] == (2, 3, 3)
    assert conlleval([["O", "I-LOC", "B-LOC", "I-PER"]], [["O", "I-LOC", "B-LOC", "I-PER"]])["counts"] == (3, 3, 3)


TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]


def _random_sentences(seed: int, n: int = 300):
    rng = random.Random(seed)
    gold, pred = [], []
    for _ in range(n):
        length = rng.randint(1, 12)
        g = [rng.choices(TAGS, weights=[6, 2, 2, 2, 2, 2, 2])[0] for _ in range(length)]
        # Predictions: the gold tags with about a third of the tokens re-drawn uniformly, which produces invalid
        # BIO (I- after O, I- of another type) as model predictions can.
        p = [rng.choice(TAGS) if rng.random() < 0.35 else t for t in g]
        gold.append(g)
        pred.append(p)
    return gold, pred


def _assert_agrees(gold, pred):
    reference = conlleval(gold, pred)
    correct, guessed, expected = reference["counts"]
    assert correct > 0 and guessed > correct and expected > correct  # a non-trivial sample
    result = entity_metrics(gold, pred)
    precision, recall, f1 = reference["prf"]
    assert result["precision"] == precision
    assert result["recall"] == recall
    assert result["f1"] == f1
    assert result["accuracy"] == reference["accuracy"]
    # The three counts: gold chunks directly, and correct/guessed recovered from recall and precision.
    assert result["num_entities"] == expected
    assert round(result["recall"] * result["num_entities"]) == correct
    assert round(correct / result["precision"]) == guessed
    assert list(result["per_type"]) == list(reference["types"])
    for kind, ((c, gu, ex), (p, r, f)) in reference["types"].items():
        scores = result["per_type"][kind]
        assert (scores["precision"], scores["recall"], scores["f1"], scores["support"]) == (p, r, f, ex), kind
        if c:
            assert round(c / scores["precision"]) == gu


def test_entity_metrics_match_conlleval_on_random_tags():
    gold, pred = _random_sentences(seed=1234)
    assert any(p[i].startswith("I-") and (i == 0 or p[i - 1] == "O") for p in pred for i in range(len(p)))
    _assert_agrees(gold, pred)


def test_entity_metrics_match_conlleval_on_independent_random_tags():
    # Gold and prediction drawn independently: both sides full of invalid BIO.
    rng = random.Random(99)
    gold, pred = [], []
    for _ in range(300):
        length = rng.randint(1, 10)
        gold.append([rng.choice(TAGS) for _ in range(length)])
        pred.append([rng.choice(TAGS) for _ in range(length)])
    _assert_agrees(gold, pred)
