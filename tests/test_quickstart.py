"""`tfpipe quickstart` runs every stage that exists on the embedded data and reports what it made."""

from __future__ import annotations

import json

import tensorflow as tf
from google.protobuf import text_format
from tensorboard.plugins import projector
from tensorboard.plugins.hparams import metadata as hparams_metadata

from tests.training.test_tensorboard import Logs
from tfpipe.cli.main import main


def test_quickstart_end_to_end(tmp_path, capsys):
    out = tmp_path / "qs"
    assert main(["quickstart", "--output-dir", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    summary = json.loads(printed.splitlines()[-1])
    assert summary["inspect"] == {"records": 80, "errors": 0}
    assert summary["corpus"]["documents"] == 40
    assert 0.12 <= summary["pretraining"]["masked_fraction"] <= 0.18
    assert summary["pipelines"]["finetune_batches"] >= 5
    for name in (".tfpipe-quickstart", "config.yaml", "corpus.txt", "vocab.txt", "labels.txt", "summary.json",
                 "pretraining/manifest.json", "pretraining/pretrain-00000-of-00002.tfrecord"):
        assert (out / name).is_file(), name
    # The model stages: pretrain → fine-tune → evaluate → export → serve, answered over gRPC and REST alike.
    assert summary["pretrain"]["optimizer_steps"] == 40
    assert 0.0 <= summary["evaluate"]["accuracy"] <= 1.0
    assert summary["export"]["max_abs_diff"] <= 1e-5
    assert summary["serve"]["grpc"] == summary["serve"]["rest"]
    assert set(summary["serve"]["grpc"]) <= {"positive", "negative"}
    for name in ("pretrain-run/encoder.weights.h5", "finetune-run/model.weights.h5", "models/reviews/1/saved_model.pb",
                 "finetune-run/eval/validation/metrics.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "summary.json").read_text()) == summary
    _check_tensorboard(out, summary, printed)


def _check_tensorboard(out, summary: dict, printed: str) -> None:
    """Both runs' event files, read as TensorBoard reads the logdir the quickstart prints."""
    assert summary["tensorboard"] == f"tensorboard --logdir {out}" and summary["tensorboard"] in printed
    logs = Logs(out)
    scalars = logs.scalars()
    for run in ("pretrain-run/logs/train", "finetune-run/logs/train"):
        assert {"epoch_loss", "epoch_learning_rate", "epoch_examples_per_second"} <= set(scalars[run]), run
    assert "final/mlm_accuracy" in scalars["pretrain-run/logs"] and "final/accuracy" in scalars["finetune-run/logs"]
    sessions = logs.multiplexer.PluginRunToTagToContent(hparams_metadata.PLUGIN_NAME)
    for run in ("pretrain-run/logs", "finetune-run/logs"):
        assert {hparams_metadata.SESSION_START_INFO_TAG, hparams_metadata.SESSION_END_INFO_TAG} <= set(sessions[run])
    assert "predictions/worst_errors" in logs.texts()["finetune-run/logs/eval/validation"]
    run = out / "finetune-run" / "logs"
    config = text_format.Parse((run / "projector_config.pbtxt").read_text(), projector.ProjectorConfig())
    vectors = tf.train.load_checkpoint(str(run)).get_tensor(config.embeddings[0].tensor_name)
    rows = (run / config.embeddings[0].metadata_path).read_text().splitlines()
    assert len(rows) == len(vectors) + 1 and {r.split("\t")[0] for r in rows[1:]} <= {"positive", "negative"}


def test_quickstart_refuses_a_folder_it_did_not_make(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    assert main(["quickstart", "--output-dir", str(mine), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"tfpipe quickstart: error: --output-dir {mine}: a folder that is not empty" in err
    assert "no .tfpipe-quickstart file in it); nothing was deleted" in err
    assert (mine / "thesis.tex").read_text() == "years of work"
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    assert main(["quickstart", "--output-dir", str(a_file), "--quiet"]) == 2
    assert "not a folder" in capsys.readouterr().err and a_file.read_text() == "x"


def test_quickstart_replaces_its_own_folder_and_uses_an_empty_one(tmp_path):
    from tfpipe.quickstart import MARKER, prepare_output_dir

    empty = tmp_path / "empty"
    empty.mkdir()
    assert prepare_output_dir(empty) == empty and sorted(p.name for p in empty.iterdir()) == [MARKER]
    (empty / "summary.json").write_text("{}")  # what a run leaves; the marker says whose it is
    prepare_output_dir(empty)
    assert sorted(p.name for p in empty.iterdir()) == [MARKER]
    nested = prepare_output_dir(tmp_path / "a" / "b")
    assert (nested / MARKER).is_file()
