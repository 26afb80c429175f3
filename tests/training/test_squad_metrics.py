"""SQuAD v1.1 scores (`tfpipe.training.squad_metrics`) on hand-worked cases: the official script's normalization
(its order and its quirks), exact match, token F1 worked out by hand, the best over several ground truths, and
questions without a prediction."""

from __future__ import annotations

import json

import pytest

from tfpipe.text.readers.base import ErrorLog
from tfpipe.text.readers.squad import Answer, QARecord, read_squad
from tfpipe.training.squad_metrics import exact_match, f1, normalize_answer, squad_scores


def record(qid: str, *answers: str) -> QARecord:
    context = " ".join(answers) or "nothing"
    starts, at = [], 0
    for text in answers:
        starts.append(context.index(text, at))
        at = starts[-1] + len(text)
    return QARecord(qid, "Q?", context, [Answer(t, s) for t, s in zip(answers, starts)])


@pytest.mark.parametrize("text, normalized", [
    ("The  Quick, Brown-Fox!", "quick brownfox"),  # punctuation goes before articles: "brown-fox" joins up
    ("An apple a day", "apple day"),
    ("theatre and anthem", "theatre and anthem"),  # articles only as whole words
    ("a.m.", "am"),  # the dots go first, so "a" is not left alone as an article
    ("A", ""),
    ("  the\tRiver\n Ostrel ", "river ostrel"),
    ("Saint-Étienne's", "saintétiennes"),  # lower-cased beyond ASCII; only ASCII punctuation is removed
    ("“Paris”", "“paris”"),  # typographic quotes are not in string.punctuation: they stay, as in the script
    ("1,180 metres", "1180 metres"),
    ("(the) [a] {an}", ""),
    ("", ""),
])
def test_normalize_answer(text: str, normalized: str):
    assert normalize_answer(text) == normalized


def test_exact_match():
    assert exact_match("the Eiffel Tower.", "Eiffel tower") is True
    assert exact_match("Eiffel Towers", "Eiffel Tower") is False
    assert exact_match("“Paris”", "Paris") is False
    assert exact_match("", "Paris") is False
    # Both sides normalize to nothing: equal strings, so a match (F1 below is 0 for the same pair).
    assert exact_match("the", "a") is True


@pytest.mark.parametrize("prediction, truth, expected", [
    ("Paris", "paris!", 1.0),
    # pred [cat, sat, on, mat], gold [cat, on, mat]: 3 common, P = 3/4, R = 1 -> 2 * 0.75 / 1.75 = 6/7
    ("the cat sat on the mat", "a cat on a mat", 6 / 7),
    # pred [aldric, fair], gold [duke, aldric, fair]: P = 1, R = 2/3 -> (4/3) / (5/3) = 0.8
    ("Aldric the Fair", "Duke Aldric the Fair", 0.8),
    # repeated tokens count once per match: pred [paris x3], gold [paris]: P = 1/3, R = 1 -> 0.5
    ("paris paris paris", "Paris", 0.5),
    # order does not matter: [new, york, city] vs [york, new]: P = 2/3, R = 1 -> 0.8
    ("New York City", "York, New", 0.8),
    # [in, 1871] vs [1871]: P = 1/2, R = 1 -> 2/3
    ("in 1871", "1871", 2 / 3),
    # [the, river] -> [river] vs [river, ostrel]: P = 1, R = 1/2 -> 2/3
    ("the river", "River Ostrel", 2 / 3),
    ("", "Paris", 0.0),
    ("Paris", "", 0.0),
    ("London", "Paris", 0.0),
    ("the", "a", 0.0),  # nothing left on either side: no common token, so 0 (the script's rule)
])
def test_f1(prediction: str, truth: str, expected: float):
    assert f1(prediction, truth) == pytest.approx(expected, abs=1e-12)


def test_scores_take_the_best_ground_truth_and_count_missing_predictions():
    records = [
        record("q1", "Duke Aldric the Fair"),                      # EM 0, F1 0.8
        record("q2", "the river Ostrel", "river Ostrel", "Ostrel"),  # EM 0, F1 1.0 (against "river Ostrel")
        record("q3", "1587", "since 1587"),                         # EM 1 (against "since 1587"), F1 1.0
        record("q4", "Paris"),                                      # no prediction: 0 and 0
        record("q5", "capital", "the capital city, France"),      # EM 0, F1 max(2/3, 0.8) = 0.8
    ]
    predictions = {"q1": "Aldric the Fair", "q2": "Ostrel river", "q3": "since 1587.", "q5": "capital city",
                   "not-a-question": "ignored"}
    scores = squad_scores(predictions, records)
    assert scores == {"exact_match": pytest.approx(20.0), "f1": pytest.approx(100 * (0.8 + 1 + 1 + 0 + 0.8) / 5),
                      "num_examples": 5, "missing_predictions": 1}
    assert scores["f1"] == pytest.approx(72.0)


def test_perfect_and_empty_predictions():
    records = [record("a", "Paris"), record("b", "the Möwe", "Möwe")]
    assert squad_scores({"a": "paris", "b": "MÖWE"}, records) == {
        "exact_match": 100.0, "f1": 100.0, "num_examples": 2, "missing_predictions": 0}
    assert squad_scores({"a": "", "b": ""}, records) == {
        "exact_match": 0.0, "f1": 0.0, "num_examples": 2, "missing_predictions": 0}
    assert squad_scores({}, records) == {"exact_match": 0.0, "f1": 0.0, "num_examples": 2, "missing_predictions": 2}


def test_scores_from_a_file_read_by_the_reader(tmp_path):
    """The reader's records score as they are: a file of two questions, one answered in part."""
    context = "The Ostrel rises at Mossgill Flow and reaches the sea at Casselby."
    data = {"version": "1.1", "data": [{"title": "Ostrel", "paragraphs": [{"context": context, "qas": [
        {"id": "s", "question": "Where does it rise?",
         "answers": [{"text": "Mossgill Flow", "answer_start": context.index("Mossgill")},
                     {"text": "at Mossgill Flow", "answer_start": context.index("at Mossgill")}]},
        {"id": "e", "question": "Where does it reach the sea?",
         "answers": [{"text": "Casselby", "answer_start": context.index("Casselby")}]}]}]}]}
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    records = list(read_squad(path, ErrorLog()))
    # "s": [mossgill] vs [mossgill, flow] -> P = 1, R = 1/2 -> 2/3; "e": exact.
    scores = squad_scores({"s": "Mossgill", "e": "Casselby."}, records)
    assert scores["exact_match"] == pytest.approx(50.0)
    assert scores["f1"] == pytest.approx(100 * (2 / 3 + 1) / 2)


def test_what_cannot_be_scored():
    with pytest.raises(ValueError, match="no questions to score"):
        squad_scores({}, [])
    with pytest.raises(ValueError, match="question 'u' has no answers"):
        squad_scores({"u": "x"}, [QARecord("u", "Q?", "context", [])])
    with pytest.raises(TypeError, match="the prediction for 'a' must be a string, got int"):
        squad_scores({"a": 3}, [record("a", "Paris")])
