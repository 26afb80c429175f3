"""Extractive question answering end to end on the embedded SQuAD-format sample: fine-tune a tiny model (windows
over long contexts), score with the official SQuAD rules, export raw question/context strings → answer text,
serve it over gRPC and REST, predict offline, inspect the data, and refuse conversion plainly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.serving.server_harness import start_server
from tests.training.conftest import TINY_MODEL
from tfpipe.cli.main import main
from tfpipe.quickstart import resource_path
from tfpipe.serving.client import ServingClient
from tfpipe.text.readers import ErrorLog, read_records
from tfpipe.training.squad_metrics import squad_scores

SAMPLE = resource_path("squad_sample.json")
QA_FLAGS = ["--max-seq-length", "64", "--set", "pipeline.doc_stride=24", "--set", "pipeline.max_query_length=16"]


@pytest.fixture(scope="module")
def qa_run(tmp_path_factory, session_vocab):
    root = tmp_path_factory.mktemp("qa")
    run = root / "run"
    assert main(["finetune", "--task", "question-answering", "--train", str(SAMPLE), "--validation", str(SAMPLE),
                 "--vocab", str(session_vocab), "--output-dir", str(run), "--epochs", "3", "--batch-size", "16",
                 "--learning-rate", "3e-3", *QA_FLAGS, *TINY_MODEL]) == 0
    assert main(["export", "--model-dir", str(run), "--export-base", str(root / "models"), "--name", "qa"]) == 0
    return run, root / "models", root / "models" / "qa" / "1"


def _records():
    return list(read_records(SAMPLE, task="question-answering", log=ErrorLog()))


def test_the_sample_reads_as_squad_with_contexts_longer_than_a_window():
    records = _records()
    assert len(records) == 44 and all(r.answers for r in records)
    assert max(len(r.context.split()) for r in records) > 250  # several windows at 64 pieces, stride 24


def test_finetune_scores_with_the_official_rules_and_writes_answer_rows(qa_run):
    run, _, _ = qa_run
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["task"] == "question-answering" and metrics["num_examples"] == 44
    rows = [json.loads(line) for line in (run / "eval" / "squad_sample" / "predictions.jsonl").read_text()
            .splitlines()]
    records = _records()
    assert [row["id"] for row in rows] == [r.id for r in records]
    # Every prediction is cut from its own context, at the character offset it reports.
    for row in rows:
        assert row["context"][row["answer_start"]:row["answer_start"] + len(row["prediction"])] == row["prediction"]
    rescored = squad_scores({row["id"]: row["prediction"] for row in rows}, records)
    assert metrics["exact_match"] == pytest.approx(rescored["exact_match"])
    assert metrics["f1"] == pytest.approx(rescored["f1"])
    # Training windows: more windows than questions, so more steps per epoch than 44 / 16 questions would give.
    assert metrics["training"]["steps_per_epoch"] > 3


def test_the_export_takes_question_and_context_and_answers_with_text(qa_run):
    run, _, version = qa_run
    loaded = tf.saved_model.load(str(version))
    assert sorted(loaded.signatures) == ["predict_ids", "serving_default"]
    serving = loaded.signatures["serving_default"]
    assert sorted(serving.structured_input_signature[1]) == ["context", "question"]
    records = _records()[:6]
    out = serving(question=tf.constant([r.question for r in records]),
                  context=tf.constant([r.context for r in records]))
    assert sorted(out) == ["answer", "answer_end", "answer_start", "score"]
    rows = [json.loads(line) for line in (run / "eval" / "squad_sample" / "predictions.jsonl").read_text()
            .splitlines()][:6]
    for i, record in enumerate(records):
        answer = out["answer"].numpy()[i].decode("utf-8")
        start, end = int(out["answer_start"][i]), int(out["answer_end"][i])
        assert record.context[start:end] == answer
        assert answer == rows[i]["prediction"]  # the export answers as the evaluation did
    empty = serving(question=tf.constant([""]), context=tf.constant([""]))
    assert empty["answer"].numpy().tolist() == [b""] and not np.isfinite(empty["score"].numpy()[0])
    metadata = json.loads((version / "assets.extra" / "tfpipe_metadata.json").read_text())
    assert metadata["task"] == "question-answering" and "doc_stride" in metadata["truncation"]


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_the_server_answers_questions_as_the_savedmodel_does(qa_run, transport):
    _, base, version = qa_run
    records = _records()[:4]
    questions, contexts = [r.question for r in records], [r.context for r in records]
    expected = tf.saved_model.load(str(version)).signatures["serving_default"](
        question=tf.constant(questions), context=tf.constant(contexts))
    server = start_server(model_name="qa", model_base_path=str(base / "qa"))
    try:
        target = f"127.0.0.1:{server.grpc_port}" if transport == "grpc" else f"http://127.0.0.1:{server.rest_port}"
        client = ServingClient(target, "qa", timeout=30)
        got = client.predict(inputs={"question": questions, "context": contexts})
        assert list(got["answer"]) == [a.decode("utf-8") for a in expected["answer"].numpy()]
        np.testing.assert_allclose(np.asarray(got["score"], np.float32), expected["score"].numpy(), atol=1e-5)
        assert list(got["answer_start"]) == expected["answer_start"].numpy().tolist()
    finally:
        server.stop(grace=1)


def test_offline_predict_reads_a_squad_file(qa_run, tmp_path):
    _, _, version = qa_run
    output = tmp_path / "answers.jsonl"
    assert main(["predict", "--export-dir", str(version), "--input", str(SAMPLE), "--output", str(output)]) == 0
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(rows) == 44
    assert {"question", "context", "answer", "score"} <= set(rows[0])
    assert rows[0]["context"][rows[0]["answer_start"]:rows[0]["answer_end"]] == rows[0]["answer"]


def test_inspect_data_describes_a_squad_file(capsys):
    assert main(["inspect-data", "--task", "question-answering", "--input", str(SAMPLE), "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["records"] == 44 and report["unanswered"] == 0 and report["contexts"] == 12


def test_conversion_is_refused_with_one_line(qa_run, capsys):
    _, _, version = qa_run
    assert main(["convert", "--to", "onnx", "--export-dir", str(version)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot be converted" in err[0]


def test_api_dataset_and_model_build_a_trainable_qa_pair(session_vocab):
    import tfpipe

    ds = tfpipe.dataset(SAMPLE, "question-answering", tokenizer=session_vocab, batch_size=8, max_seq_length=64,
                        doc_stride=24, max_query_length=16)
    x, y = next(iter(ds))
    assert x["input_word_ids"].shape[1] == 64 and y.shape[1] == 2
    model = tfpipe.model("custom", "question-answering", tokenizer=session_vocab, num_layers=1, hidden_dim=16,
                         num_heads=2, intermediate_dim=32)
    assert model(x).shape == (x["input_word_ids"].shape[0], 64, 2)
    assert Path(SAMPLE).is_file()
