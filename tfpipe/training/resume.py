"""Resumable `fit`: a run killed at any step and restarted with the same command ends with the same number of
optimizer steps, on the same batches, as one that was never interrupted.

Keras's BackupAndRestore restores weights, optimizer state and the epoch, then restarts that epoch from its first
batch. Here the optimizer's step counter says exactly how far the run got: the data stream skips that many
batches, and an interrupted epoch is finished with only its remaining steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import keras
import tensorflow as tf


def steps_done(model: keras.Model, backup_dir: Path) -> int:
    """Optimizer steps (batches, counting accumulation micro-steps) in the backup; 0 for a fresh run."""
    # Built here, not inside the first traced step: creating its variables there makes TensorFlow trace the
    # whole training step twice (~10 s for MiniLM).
    with model.distribute_strategy.scope():
        model.optimizer.build(model.trainable_variables)
    weights = Path(backup_dir) / "latest.weights.h5"
    if not weights.is_file():
        return 0
    model.load_weights(str(weights))
    return int(keras.ops.convert_to_numpy(model.optimizer._iterations))


class StopAtStep(keras.callbacks.Callback):
    """Ends `fit` once the optimizer has taken `steps` steps, inside an epoch if need be (with
    `steps_per_execution` k, at the end of the k-step execution that reaches it)."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps = steps

    def on_train_begin(self, logs=None) -> None:
        # Read the counter once and count batches after: reading it every step would sync the host each step.
        self._taken = int(keras.ops.convert_to_numpy(self.model.optimizer._iterations))

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self._last = -1

    def on_train_batch_end(self, batch, logs=None) -> None:
        self._taken += batch - self._last  # `batch` is the last batch index of the execution
        self._last = batch
        if self._taken >= self.steps:
            self.model.stop_training = True


def fit_resumable(
    model: keras.Model, train: tf.data.Dataset, steps_per_epoch: int, epochs: int, backup_dir: Path,
    total_steps: Optional[int] = None, **fit_kwargs
) -> dict[str, list]:
    """`model.fit` over an endless `train` stream for `epochs × steps_per_epoch` batches, resuming a backup.

    `total_steps` (at most that product) ends the run there instead: the last epoch is cut short, as when
    pretraining's step count is not a multiple of its logging interval.
    """
    if total_steps is not None:
        fit_kwargs["callbacks"] = [*fit_kwargs.get("callbacks", []), StopAtStep(total_steps)]
    done = steps_done(model, backup_dir)
    epoch, into = divmod(done, steps_per_epoch)
    history: dict[str, list] = {}

    def run(first_epoch: int, steps: int, last_epoch: int) -> None:
        result = model.fit(train.skip(done), epochs=last_epoch, initial_epoch=first_epoch, steps_per_epoch=steps,
                           shuffle=False, **fit_kwargs)
        for key, values in result.history.items():
            history.setdefault(key, []).extend(values)

    if into:  # finish the interrupted epoch with its remaining batches only
        run(epoch, steps_per_epoch - into, epoch + 1)
        done += steps_per_epoch - into
        epoch += 1
    if epoch < epochs and not model.stop_training:
        run(epoch, steps_per_epoch, epochs)
    return history
