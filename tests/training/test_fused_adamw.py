"""FusedAdamW gives Keras AdamW's weights (fused kernel, same arithmetic), falls back where it must, and the
training step is traced once (the optimizer is built before the first traced step)."""

from __future__ import annotations

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.training.test_options import compile_model, make_batch, make_model, weights_by_path
from tfpipe.config.schemas import TrainingConfig
from tfpipe.models.task import TaskModel
from tfpipe.training.fused_adamw import FusedAdamW
from tfpipe.training.optimizers import NO_DECAY, build_optimizer
from tfpipe.training.resume import fit_resumable


@pytest.fixture(autouse=True)
def float32_policy():
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("float32")
    keras.utils.set_random_seed(0)
    yield
    keras.mixed_precision.set_global_policy(previous)


def _trained(optimizer_class, steps: int = 5) -> dict[str, np.ndarray]:
    keras.utils.set_random_seed(0)
    model = make_model()
    optimizer = optimizer_class(learning_rate=1e-2, weight_decay=0.1, epsilon=1e-6)
    optimizer.exclude_from_weight_decay(var_names=NO_DECAY)
    compile_model(model, optimizer)
    for step in range(steps):
        model.train_on_batch(*make_batch(8, seed=step))
    return weights_by_path(model.trainable_variables)


def test_fused_adamw_matches_keras_adamw_over_several_steps():
    fused, reference = _trained(FusedAdamW), _trained(keras.optimizers.AdamW)
    assert fused.keys() == reference.keys()
    start = weights_by_path(make_model().trainable_variables)  # same seed: the initial weights
    for path in reference:
        np.testing.assert_allclose(fused[path], reference[path], atol=1e-6, err_msg=path)
    assert any(not np.allclose(reference[p], start[p]) for p in reference)  # the steps did move the weights


def test_build_optimizer_gives_fused_adamw_and_it_serializes():
    optimizer = build_optimizer(TrainingConfig(optimizer="adamw"), 100)
    assert isinstance(optimizer, FusedAdamW)
    plain = build_optimizer(TrainingConfig(optimizer="adamw", fused_adamw=False), 100)
    assert type(plain) is keras.optimizers.AdamW
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(restored, FusedAdamW) and restored.weight_decay == optimizer.weight_decay


def test_mirrored_variables_take_keras_path_and_agree():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = make_model()
        optimizer = FusedAdamW(learning_rate=1e-2, weight_decay=0.1, epsilon=1e-6)
        optimizer.exclude_from_weight_decay(var_names=NO_DECAY)
        compile_model(model, optimizer)
    for step in range(5):
        model.train_on_batch(*make_batch(8, seed=step))
    mirrored = weights_by_path(model.trainable_variables)
    reference = _trained(keras.optimizers.AdamW)
    for path in reference:
        np.testing.assert_allclose(mirrored[path], reference[path], atol=1e-6, err_msg=path)


def test_training_step_is_traced_once_across_batch_shapes(tmp_path, monkeypatch):
    traces = []
    original = TaskModel.train_step

    def counting(self, data):  # Python runs here only while TensorFlow traces
        traces.append(1)
        return original(self, data)

    monkeypatch.setattr(TaskModel, "train_step", counting)
    model = make_model()
    model.compile(optimizer=build_optimizer(TrainingConfig(), 4), loss=keras.losses.SparseCategoricalCrossentropy(
        from_logits=True))

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
