"""The task registry: one list of task names everywhere, an unknown name fails the same way at every entry point,
no stage switches on a task name, and the built-in tasks' exports keep their signatures byte for byte."""

from __future__ import annotations

import ast
import copy
import json
from pathlib import Path

import keras
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

import tfpipe
from tests.training.conftest import write_sentiment_tsv
from tfpipe.config import Config, ConfigError, from_dict
from tfpipe.config.tasks import UnknownTaskError, get_task, register_task, task_names
from tfpipe.tasks.classification import ClassificationTask

PACKAGE = Path(tfpipe.__file__).parent
BUILT_IN = ("classification", "regression", "token-classification", "question-answering")
LISTED = "registered tasks: " + ", ".join(task_names())


def test_the_built_in_tasks_are_registered_in_order():
    assert task_names()[:len(BUILT_IN)] == BUILT_IN
    assert all(get_task(name).name == name for name in task_names())


@pytest.mark.parametrize("entry", ["get_task", "config", "read_records", "build_head", "api.model", "api.dataset",
                                   "signatures"])
def test_an_unknown_task_fails_with_the_one_list_of_registered_names(entry, tmp_path, tiny_vocab_file):
    data = write_sentiment_tsv(tmp_path / "d.tsv", 4)
    calls = {
        "get_task": lambda: get_task("sentiment"),
        "config": lambda: from_dict(Config, {"task": "sentiment"}),
        "read_records": lambda: list(__import__("tfpipe.text.readers", fromlist=["read_records"]).read_records(
            data, task="sentiment")),
        "build_head": lambda: __import__("tfpipe.models.run_loader", fromlist=["build_head"]).build_head(
            "sentiment", None, None, 0.1),
        "api.model": lambda: tfpipe.model("tiny", "sentiment", tokenizer=tiny_vocab_file, num_labels=2),
        "api.dataset": lambda: tfpipe.dataset(data, "sentiment", tokenizer=tiny_vocab_file),
        "signatures": lambda: __import__("tfpipe.export.signatures", fromlist=["SignatureFunctions"])
        .SignatureFunctions(lambda f: f, None, "sentiment", None, 16),
    }
    with pytest.raises((UnknownTaskError, ConfigError)) as raised:
        calls[entry]()
    message = str(raised.value)
    assert "'sentiment'" in message
    assert ", ".join(task_names()) in message


def test_a_task_name_is_taken_once():
    with pytest.raises(ValueError, match="already registered"):
        register_task(ClassificationTask())
    assert register_task(get_task("classification")) is get_task("classification")  # the same object again is fine


def _task_name_comparisons(path: Path) -> list[str]:
    """`x == "classification"`-style comparisons (==, !=, in, not in) against a registered task name."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Compare):
            parts = [node.left, *node.comparators]
            constants = [p.value for p in parts if isinstance(p, ast.Constant)]
            constants += [e.value for p in parts if isinstance(p, (ast.Tuple, ast.List, ast.Set))
                          for e in p.elts if isinstance(e, ast.Constant)]
            if any(c in task_names() for c in constants):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    return found


def test_no_stage_switches_on_a_task_name():
    offenders = [hit for path in sorted(PACKAGE.rglob("*.py")) if "tasks" not in path.relative_to(PACKAGE).parts[:1]
                 for hit in _task_name_comparisons(path)]
    assert offenders == []


def test_the_check_above_finds_a_switch(tmp_path):
    probe = PACKAGE / "_probe_switch.py"  # inside the package, so the relative path works
    probe.write_text('def f(task):\n    return 1 if task == "regression" else 0\n')
    try:
        assert _task_name_comparisons(probe) == ["tfpipe/_probe_switch.py:2"]
    finally:
        probe.unlink()


GOLDEN = Path(__file__).parents[1] / "export" / "golden_signatures.json"


@pytest.mark.parametrize("task", ["classification", "pair", "regression", "tagging"])
def test_exports_keep_their_signatures_byte_for_byte(task, tiny_exports):
    """The SignatureDefs of the tiny exports equal those the exporter wrote before the task registry existed."""
    _, _, path = tiny_exports(task)
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((path / "saved_model.pb").read_bytes())
    signatures = saved.meta_graphs[0].signature_def
    assert {name: str(signatures[name]) for name in signatures} == json.loads(GOLDEN.read_text())[task]


def test_load_run_leaves_the_global_dtype_policy_alone(tiny_runs):
    from tfpipe.models.run_loader import load_run

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        loaded = load_run(tiny_runs("regression"))
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
        assert loaded.model.dtype_policy.name == "float32"  # the loaded model itself is float32
    finally:
        keras.mixed_precision.set_global_policy(previous)


def test_finetune_leaves_the_callers_config_and_policy_alone(tmp_path, tiny_vocab_file):
    from tfpipe.training.finetune import finetune

    config = Config(task="classification")
    config.tokenizer.vocab = str(tiny_vocab_file)
    config.reader.text_column, config.reader.label_column = "sentence", "label"
    config.model.size, config.model.num_layers, config.model.hidden_dim = "custom", 1, 16
    config.model.num_heads, config.model.intermediate_dim, config.model.max_sequence_length = 2, 32, 64
    config.training.epochs, config.training.steps, config.training.mixed_precision = 1, 3, "mixed_bfloat16"
    config.pipeline.batch_size, config.pipeline.max_seq_length = 8, 32
    before = copy.deepcopy(config)
    policy = keras.mixed_precision.global_policy().name
    train = write_sentiment_tsv(tmp_path / "train.tsv", 16)
    finetune(config, str(train), None, tmp_path / "run", verbose=0)
    assert config == before  # steps → epochs and the resolved model went to the run's own copy
    assert keras.mixed_precision.global_policy().name == policy
    saved = (tmp_path / "run" / "config.yaml").read_text()
    assert "intermediate_dim: 32" in saved
    assert tf.io.gfile.exists(str(tmp_path / "run" / "model.weights.h5"))
