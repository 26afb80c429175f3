"""Shared fixtures: the read-only `../shared` folder (skipped with a reason when absent, an error when CI requires
it) and tiny vocabularies."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TFPIPE_SHARED", REPO.parent / "shared"))
MINILM = SHARED / "checkpoints" / "minilm-l6-h384-uncased"
# CI has ../shared: there, a missing folder must fail the run, not quietly skip every test that needs it.
REQUIRE_SHARED = any(os.environ.get(name, "").lower() in ("1", "true", "yes")
                     for name in ("TFPIPE_REQUIRE_SHARED", "CI"))


def pytest_sessionstart(session) -> None:
    if REQUIRE_SHARED and not SHARED.is_dir():
        raise pytest.UsageError(f"{SHARED}: the shared data folder is missing, and CI / TFPIPE_REQUIRE_SHARED=1 "
                                "requires it (set TFPIPE_SHARED to where it is)")


TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "!", "the", "a", "cat", "dog", "sat", "on",
              "mat", "ran", "fast", "and", "is", "good", "bad", "movie", "##s", "##ed", "##ing", "run", "very",
              "new", "york", "city", "in", "john", "lives", "was", "it"]


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or a skip naming what is missing (a failure under CI / TFPIPE_REQUIRE_SHARED=1)."""
    path = SHARED.joinpath(*parts)
    if not path.exists() and REQUIRE_SHARED:
        pytest.fail(f"{path} is not present, and CI / TFPIPE_REQUIRE_SHARED=1 requires the shared data")
    if not path.exists():
        pytest.skip(f"{path} is not present (the shared data folder is only on development and CI machines)")
    return path


@pytest.fixture
def tiny_vocab_file(tmp_path: Path) -> Path:
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(TINY_VOCAB) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def minilm_vocab() -> Path:
    return shared_path("checkpoints", "minilm-l6-h384-uncased", "vocab.txt")


@pytest.fixture(scope="session")
def session_vocab(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(TINY_VOCAB) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory, session_vocab):
    """task → run directory of a tiny fine-tuned model, trained on first use (classification in mixed_bfloat16,
    to check exports come out in float32)."""
    from tests.runs import train_run

    root, runs = tmp_path_factory.mktemp("runs"), {}

    def get(task: str) -> Path:
        if task not in runs:
            extra = ("--set", "training.mixed_precision=mixed_bfloat16") if task == "classification" else ()
            runs[task] = train_run(root, session_vocab, task, extra)
        return runs[task]

    return get


@pytest.fixture(scope="session")
def tiny_exports(tmp_path_factory, tiny_runs):
    """task → (export base, model name, version dir) of the tiny run's export, written on first use."""
    from tfpipe.export.exporter import export_run

    base, exports = tmp_path_factory.mktemp("exports"), {}

    def get(task: str):
        if task not in exports:
            name = task.replace("-", "_")
            result = export_run(tiny_runs(task), base, name, log=lambda _: None)
            exports[task] = (base, name, result.path)
        return exports[task]

    return get


@pytest.fixture(scope="session")
def converted_exports(tmp_path_factory, tiny_runs, tiny_exports):
    """task → (base, name, version dir) of a copy of the tiny export with its encoder converted and verified to
    ONNX and OpenVINO in fp32 (and, for classification, both int8 variants, scored on the run's dev file)."""
    import shutil

    from tfpipe.export.convert.api import convert_export

    root, done = tmp_path_factory.mktemp("converted"), {}

    def get(task: str):
        if task not in done:
            _, name, path = tiny_exports(task)
            version = shutil.copytree(path, root / name / path.name)
            for to in ("onnx", "openvino"):
                convert_export(version, to, timing_repeats=1, log=lambda _: None)
            if task == "classification":
                dev = tiny_runs(task).parent / "dev.tsv"
                convert_export(version, "onnx", precision="int8", eval_data=dev, timing_repeats=1, log=lambda _: None)
                convert_export(version, "openvino", precision="int8", calibration_data=dev, eval_data=dev,
                               timing_repeats=1, log=lambda _: None)
            done[task] = (root, name, version)
        return done[task]

    return get
