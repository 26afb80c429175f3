"""Start-up costs that the CPU speed work removed stay removed: the training step is traced once (the optimizer is
built before the first traced step), and importing tfpipe turns TensorFlow's oneDNN kernels on for x86 CPUs."""

from __future__ import annotations

import os
import subprocess
import sys

import keras
import pytest
import tensorflow as tf

from tests.training.test_options import make_batch, make_model
from tfpipe.config.schemas import TrainingConfig
from tfpipe.models.task import TaskModel
from tfpipe.training.optimizers import build_optimizer
from tfpipe.training.resume import fit_resumable


def test_training_step_is_traced_once_across_batch_shapes(tmp_path, monkeypatch):
    traces = []
    original = TaskModel.train_step

    def counting(self, data):  # Python runs here only while TensorFlow traces
        traces.append(1)
        return original(self, data)

    monkeypatch.setattr(TaskModel, "train_step", counting)
    model = make_model()
    model.compile(optimizer=build_optimizer(TrainingConfig(), 4),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    def batches():
        for length in (3, 6, 4, 5):
            x, y = make_batch(4, seed=length)
            yield {k: v[:, :length] for k, v in x.items()}, y

    spec = ({k: tf.TensorSpec([None, None], tf.int32) for k in make_batch(1)[0]}, tf.TensorSpec([None], tf.int32))
    train = tf.data.Dataset.from_generator(batches, output_signature=spec).repeat()
    fit_resumable(model, train, steps_per_epoch=4, epochs=1, backup_dir=tmp_path / "backup", verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 4
    assert len(traces) == 1


@pytest.mark.parametrize("preset, expected", [(None, "1"), ("0", "0")])
def test_importing_tfpipe_turns_onednn_on_unless_the_user_said_otherwise(preset, expected):
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if preset is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = preset
    code = "import os, platform, tfpipe; print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'), platform.machine())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    value, machine = out.split()
    if machine.lower() not in ("x86_64", "amd64") and preset is None:
        pytest.skip(f"oneDNN is left to TensorFlow's default on {machine}")
    assert value == expected
