"""The step count a resumed run skips batches by, read from a real backup: with loss scaling (mixed_float16 wraps
the optimizer in a LossScaleOptimizer, whose own counter never moves) and with gradient accumulation (whose public
`iterations` counts updates, not batches)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tfpipe.models.keras_compat import optimizer_steps
from tfpipe.training.resume import steps_done


def _model(optimizer: keras.optimizers.Optimizer) -> keras.Model:
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer=optimizer, loss="mse")
    return model


@pytest.mark.parametrize("make", [
    lambda: keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.01)),
    lambda: keras.optimizers.SGD(0.01, gradient_accumulation_steps=2),
], ids=["loss scaling", "gradient accumulation"])
def test_steps_done_counts_every_batch_taken(tmp_path, make):
    backup = tmp_path / "backup"
    trained = _model(make())
    trained.fit(np.ones((6, 2)), np.ones((6, 1)), batch_size=2, verbose=0,
                callbacks=[keras.callbacks.BackupAndRestore(str(backup), delete_checkpoint=False)])
    assert optimizer_steps(trained.optimizer) == 3
    assert steps_done(_model(make()), backup) == 3  # a fresh process's model, restored from the backup
    assert steps_done(_model(make()), tmp_path / "none") == 0
