"""The scripts in examples/ run as a user runs them: a subprocess, the public API only, a JSON result line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO, SHARED, shared_path


def _run(tmp_path, *args: str) -> dict:
    env = {**os.environ, "TFPIPE_SHARED": str(SHARED), "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, str(REPO / "examples" / "keras_fit.py"), "--output-dir",
                           str(tmp_path / "out"), *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (tmp_path / "out" / "models" / "sentiment" / "1" / "saved_model.pb").is_file()
    assert (tmp_path / "out" / "run" / "history.csv").is_file()
    assert result["label"] in result["labels"] and abs(sum(result["probabilities"]) - 1) < 1e-4
    return result


def test_keras_fit_example_tiny_model(tmp_path):
    result = _run(tmp_path, "--tiny")
    assert result["setup"] == "tiny-reviews" and result["labels"] == ["negative", "positive"]
    assert result["dev_accuracy"] >= 0.75  # its own training reviews: the fit learned something


def test_keras_fit_example_minilm_sst2(tmp_path):
    shared_path("checkpoints", "minilm-l6-h384-uncased")
    shared_path("data", "sst2")
    result = _run(tmp_path, "--rows", "96")
    assert result["setup"] == "minilm-sst2" and result["labels"] == ["0", "1"]
    assert 0.0 <= result["dev_accuracy"] <= 1.0
