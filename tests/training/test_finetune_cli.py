"""CLI round trips: finetune → evaluate on real files (TSV, CoNLL with windows, regression), pretrain → finetune."""

from __future__ import annotations

import csv
import json

import numpy as np

from tests.training.conftest import TINY_MODEL, write_conll, write_pretraining_data, write_sentiment_tsv
from tfpipe.cli.main import main
from tfpipe.training.run_dir import load_pretrained_run


def _last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_classification_finetune_and_evaluate_round_trip(tmp_path, vocab_file, capsys):
    train = write_sentiment_tsv(tmp_path / "train.tsv", 96, seed=1)
    dev = write_sentiment_tsv(tmp_path / "dev.tsv", 40, seed=2)
    run = tmp_path / "run"
    code = main(["finetune", "--task", "classification", "--train", str(train), "--validation", str(dev),
                 "--text-column", "sentence", "--label-column", "label", "--vocab", str(vocab_file),
                 "--output-dir", str(run), "--epochs", "12", "--batch-size", "8", "--learning-rate", "3e-3",
                 *TINY_MODEL])
    assert code == 0
    result = _last_json(capsys)
    assert result["accuracy"] >= 0.9  # "good"/"bad" decides the label
    assert result["training"]["optimizer_steps"] == 12 * 12
    for name in ("config.yaml", "vocab.txt", "labels.txt", "model.weights.h5", "encoder.weights.h5",
                 "history.csv", "metrics.json", "checkpoints/best.weights.h5", "eval/dev/predictions.jsonl",
                 "eval/dev/plots/confusion_matrix.png", "eval/dev/plots/training_curves.png"):
        assert (run / name).is_file(), name
    assert (run / "labels.txt").read_text().split() == ["neg", "pos"]
    assert not (run / "backup").exists()  # removed once training finished
    assert any((run / "logs" / "train").iterdir())
    with (run / "history.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 12 and "learning_rate" in rows[0] and "val_accuracy" in rows[0]

    out = tmp_path / "eval-out"
    assert main(["evaluate", "--model-dir", str(run), "--data", str(dev), "--output-dir", str(out)]) == 0
    metrics = _last_json(capsys)
    assert metrics["accuracy"] == result["accuracy"]
    assert {"accuracy", "f1", "f1_positive", "precision", "recall", "mcc", "roc_auc"} <= set(metrics)
    assert json.loads((out / "metrics.json").read_text())["accuracy"] == metrics["accuracy"]
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    rows = [line.split("\t") for line in dev.read_text().splitlines()[1:]]
    assert [p["text"] for p in predictions] == [r[1] for r in rows]  # input order
    assert [p["label"] for p in predictions] == [r[0] for r in rows]
    assert {p["prediction"] for p in predictions} <= {"neg", "pos"}


def test_evaluate_rejects_unknown_labels_with_file_and_line(tmp_path, vocab_file, capsys):
    train = write_sentiment_tsv(tmp_path / "train.tsv", 16)
    run = tmp_path / "run"
    assert main(["finetune", "--task", "classification", "--train", str(train), "--text-column", "sentence",
                 "--label-column", "label", "--vocab", str(vocab_file), "--output-dir", str(run), "--epochs", "1",
                 *TINY_MODEL]) == 0
    bad = tmp_path / "bad.tsv"
    bad.write_text("label\tsentence\npos\tthe cat\nmaybe\tthe dog\n")
    assert main(["evaluate", "--model-dir", str(run), "--data", str(bad)]) == 2
    assert f"{bad}:3: unknown label 'maybe'" in capsys.readouterr().err


def test_token_classification_windows_long_sentences(tmp_path, vocab_file, capsys):
    train = write_conll(tmp_path / "train.conll", 60, seed=3)
    dev = write_conll(tmp_path / "dev.conll", 12, seed=4, long_every=3)
    run = tmp_path / "run"
    assert main(["finetune", "--task", "token-classification", "--train", str(train), "--validation", str(dev),
                 "--vocab", str(vocab_file), "--output-dir", str(run), "--epochs", "15", "--batch-size", "8",
                 "--max-seq-length", "16", "--learning-rate", "3e-3", *TINY_MODEL]) == 0
    result = _last_json(capsys)
    assert result["f1"] >= 0.8 and "per_type" not in result
    predictions = [json.loads(line) for line in (run / "eval" / "dev" / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 12
    assert max(len(p["words"]) for p in predictions) == 40  # longer than 16 pieces: windowed, not truncated
    assert all(len(p["prediction"]) == len(p["words"]) == len(p["labels"]) for p in predictions)


def test_regression_round_trip(tmp_path, vocab_file, capsys):
    data = tmp_path / "scores.tsv"
    lines = ["score\ttext"] + [f"{1.0 if i % 2 else -1.0}\t{'good movie' if i % 2 else 'bad movie'} the cat"
                               for i in range(48)]
    data.write_text("\n".join(lines) + "\n")
    run = tmp_path / "run"
    assert main(["finetune", "--task", "regression", "--train", str(data), "--validation", str(data),
                 "--text-column", "text", "--label-column", "score", "--vocab", str(vocab_file), "--output-dir",
                 str(run), "--epochs", "15", "--batch-size", "8", "--learning-rate", "3e-3", *TINY_MODEL,
                 "--set", "model.pooling=mean"]) == 0  # evaluate rebuilds the mean-pooled head from config.yaml
    result = _last_json(capsys)
    assert result["pearson"] > 0.9 and result["mse"] < 0.5
    first = json.loads((run / "eval" / "scores" / "predictions.jsonl").read_text().splitlines()[0])
    assert isinstance(first["prediction"], float) and first["label"] == "-1.0"


def test_training_steps_ends_the_run_inside_its_last_epoch(tmp_path, vocab_file, capsys):
    train = write_sentiment_tsv(tmp_path / "train.tsv", 40)  # 5 steps an epoch at batch 8
    run = tmp_path / "run"
    assert main(["finetune", "--task", "classification", "--train", str(train), "--validation", str(train),
                 "--text-column", "sentence", "--label-column", "label", "--vocab", str(vocab_file),
                 "--output-dir", str(run), "--batch-size", "8", *TINY_MODEL, "--set", "training.steps=7"]) == 0
    training = json.loads((run / "metrics.json").read_text())["training"]
    assert training["optimizer_steps"] == 7 and training["epochs_run"] == 2  # 5 + 2, not 10
    with (run / "history.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 2  # the cut epoch was validated and logged


def test_pretrain_then_finetune_from_the_run(tmp_path, vocab_file, capsys):
    data = write_pretraining_data(tmp_path, vocab_file)
    capsys.readouterr()
    pre = tmp_path / "pre"
    assert main(["pretrain", "--data", str(data), "--vocab", str(vocab_file), "--output-dir", str(pre),
                 "--steps", "12", "--set", "pipeline.batch_size=8", *TINY_MODEL]) == 0
    metrics = _last_json(capsys)
    assert metrics["optimizer_steps"] == 12
    assert {"mlm_accuracy", "mlm_loss", "nsp_accuracy"} <= set(metrics)
    assert (pre / "encoder.weights.h5").is_file()
    # Continuing the run (as on domain text) starts from its encoder: at learning rate 0 it comes out unchanged.
    more = tmp_path / "more"
    assert main(["pretrain", "--data", str(data), "--pretrained-run", str(pre), "--output-dir", str(more),
                 "--steps", "2", "--learning-rate", "0", "--set", "pipeline.batch_size=8", "--quiet"]) == 0
    assert _last_json(capsys)["optimizer_steps"] == 2
    assert f"pretrained_run: {pre}" in (more / "config.yaml").read_text()
    before, after = (load_pretrained_run(run)[0].get_weights() for run in (pre, more))
    assert len(before) == len(after) and all(np.array_equal(a, b) for a, b in zip(before, after))
    train = write_sentiment_tsv(tmp_path / "train.tsv", 32)
    run = tmp_path / "run"
    assert main(["finetune", "--task", "classification", "--train", str(train), "--text-column", "sentence",
                 "--label-column", "label", "--pretrained-run", str(pre), "--output-dir", str(run), "--epochs", "1",
                 "--set", "training.mixed_precision=none", "--set", "model.pooling=mean", "--quiet"]) == 0
    config = (run / "config.yaml").read_text()
    assert f"pretrained_run: {pre}" in config and "hidden_dim: 16" in config and "pooling: mean" in config


def test_missing_checkpoint_is_a_clear_error(tmp_path, capsys):
    train = write_sentiment_tsv(tmp_path / "train.tsv", 8)
    code = main(["finetune", "--task", "classification", "--train", str(train), "--text-column", "sentence",
                 "--label-column", "label", "--init-checkpoint", str(tmp_path / "nope"), "--output-dir",
                 str(tmp_path / "run"), "--quiet"])
    assert code == 2
    assert "nope/config.json: missing" in capsys.readouterr().err
