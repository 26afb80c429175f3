"""`tfpipe quickstart` runs every stage that exists on the embedded data and reports what it made."""

from __future__ import annotations

import json

from tfpipe.cli.main import main


def test_quickstart_end_to_end(tmp_path, capsys):
    out = tmp_path / "qs"
    assert main(["quickstart", "--output-dir", str(out), "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["inspect"] == {"records": 80, "errors": 0}
    assert summary["corpus"]["documents"] == 40
    assert 0.12 <= summary["pretraining"]["masked_fraction"] <= 0.18
    assert summary["pipelines"]["finetune_batches"] >= 5
    for name in ("config.yaml", "corpus.txt", "vocab.txt", "labels.txt", "summary.json",
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
