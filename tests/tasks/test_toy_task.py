"""A task defined and registered in this file alone — a binary scorer with a sigmoid head, a loss, a metric and
serving outputs of its own — trains with `tfpipe finetune`, exports with `tfpipe export` and answers over gRPC and
REST from `tfpipe serve`: a new head needs one module and no change to the stages."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import keras
import numpy as np
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from tests.serving.server_harness import rest_url, start_server, stubs
from tests.training.conftest import TINY_MODEL, write_sentiment_tsv
from tfpipe.cli.main import main
from tfpipe.config.tasks import get_task, register_task, unregister_task
from tfpipe.models.backbone import encoder_inputs, pool
from tfpipe.models.task import TaskModel
from tfpipe.tasks.sequence import SequenceTask

NAME = "toy-binary-score"


class SigmoidScorer(TaskModel):
    """Pooled [CLS] → one sigmoid probability per text."""

    _config_keys = ("dropout",)

    def __init__(self, encoder, dropout: float = 0.1, **kwargs) -> None:
        inputs = encoder_inputs()
        hidden = keras.layers.Dropout(dropout)(pool(encoder, inputs, "cls"))
        score = keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="score")(hidden)
        super().__init__(inputs=inputs, outputs=keras.layers.Reshape(())(score), **kwargs)
        self.encoder, self.dropout = encoder, dropout


def _zero_or_one(label: str) -> Optional[str]:
    return None if label in ("0", "1") else f"label {label!r} is not 0 or 1 ({NAME})"


class BinaryScoreTask(SequenceTask):
    name = NAME
    description = "a text → the probability that it is positive (labels 0/1)"
    target = "number"  # labels become float targets
    check_label = staticmethod(_zero_or_one)
    uses_labels = False
    convertible = False

    def build_model(self, encoder, labels, dropout, pooling="cls"):
        return SigmoidScorer(encoder, dropout)

    def owns(self, model) -> bool:
        return isinstance(model, SigmoidScorer)

    def compile_args(self, labels, training) -> dict:
        return {"loss": keras.losses.BinaryCrossentropy(), "metrics": [keras.metrics.BinaryAccuracy("accuracy")],
                "weighted_metrics": None}

    def predict(self, model, tokenizer, labels, config, records) -> dict:
        return {"scores": self.logits(model, tokenizer, labels, config, records).reshape(-1)}

    def prediction(self, predicted, index, labels):
        return float(predicted["scores"][index])

    def score(self, records, predicted, labels, output_dir: Path) -> dict:
        gold = np.array([float(r.label) for r in records])
        return {"accuracy": float(np.mean((predicted["scores"] > 0.5) == (gold > 0.5)))}

    def head_outputs(self, functions, logits) -> dict:
        return {"score": logits, "positive": logits > 0.5}

    def id_outputs(self, functions, logits) -> dict:
        return {"score": logits}


@pytest.fixture(scope="module")
def toy_task():
    task = register_task(BinaryScoreTask())
    yield task
    unregister_task(NAME)


def _binary_tsv(path: Path, rows: int, seed: int) -> Path:
    source = write_sentiment_tsv(path.with_suffix(".src.tsv"), rows, seed)
    lines = source.read_text().splitlines()
    path.write_text("\n".join([lines[0]] + [("1" if row.startswith("pos") else "0") + row[3:] for row in lines[1:]])
                    + "\n")
    return path


@pytest.fixture(scope="module")
def toy_export(toy_task, tmp_path_factory, session_vocab):
    root = tmp_path_factory.mktemp("toy")
    train, dev = _binary_tsv(root / "train.tsv", 64, 1), _binary_tsv(root / "dev.tsv", 24, 2)
    run = root / "run"
    assert main(["finetune", "--task", NAME, "--train", str(train), "--validation", str(dev), "--vocab",
                 str(session_vocab), "--output-dir", str(run), "--text-column", "sentence", "--label-column", "label",
                 "--epochs", "10", "--batch-size", "8", "--learning-rate", "3e-3", *TINY_MODEL]) == 0
    assert main(["export", "--model-dir", str(run), "--export-base", str(root / "models"), "--name", "toy"]) == 0
    return run, root / "models", root / "models" / "toy" / "1"


def test_the_registered_task_is_everywhere_a_task_name_is(toy_task):
    assert get_task(NAME) is toy_task
    with pytest.raises(SystemExit):  # argparse knows it too: a bad name lists the registered ones
        main(["finetune", "--task", "not-a-task", "--train", "x", "--output-dir", "y"])


def test_it_trains_and_evaluates_with_its_own_loss_and_metric(toy_export):
    import json

    run, _, _ = toy_export
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["task"] == NAME
    assert metrics["accuracy"] >= 0.9  # the tiny data is learnable: "good" vs "bad"
    rows = [json.loads(line) for line in (run / "eval" / "dev" / "predictions.jsonl").read_text().splitlines()]
    assert all(0.0 <= row["prediction"] <= 1.0 for row in rows) and len(rows) == 24


def test_its_export_has_its_own_outputs_and_is_served_over_grpc_and_rest(toy_export):
    _, base, version = toy_export
    loaded = tf.saved_model.load(str(version))
    assert sorted(loaded.signatures) == ["predict_ids", "serving_default"]
    texts = ["good movie", "the cat is bad"]
    expected = loaded.signatures["serving_default"](text=tf.constant(texts))
    assert sorted(expected) == ["positive", "score"]
    assert expected["positive"].numpy().tolist() == [True, False]
    server = start_server(model_name="toy", model_base_path=str(base / "toy"))
    try:
        stub, _, channel = stubs(server)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "toy"
        request.inputs["text"].CopyFrom(tf.make_tensor_proto(texts))
        response = stub.Predict(request, timeout=30)
        np.testing.assert_allclose(tf.make_ndarray(response.outputs["score"]), expected["score"].numpy(), atol=1e-6)
        channel.close()
        rest = requests.post(rest_url(server, "/v1/models/toy:predict"), json={"instances": texts}, timeout=30)
        assert rest.status_code == 200, rest.text
        assert [p["positive"] for p in rest.json()["predictions"]] == [True, False]
    finally:
        server.stop(grace=1)


def test_conversion_says_plainly_that_this_task_cannot_be_converted(toy_export, capsys):
    _, _, version = toy_export
    assert main(["convert", "--to", "onnx", "--export-dir", str(version)]) != 0
    assert "cannot be converted" in capsys.readouterr().err
