"""Keras callbacks for every run: TensorBoard (with the learning rate), best checkpoint on the validation metric,
BackupAndRestore, EarlyStopping and a CSV log, laid out in the run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import keras

from tfpipe.config.schemas import TrainingConfig
from tfpipe.training.resume import EpochEndBackup


class LearningRateLogger(keras.callbacks.Callback):
    """Adds the optimizer's current learning rate to the epoch logs, for TensorBoard and the CSV log."""

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


def build_callbacks(
    run_dir: Path, config: TrainingConfig, monitor: Optional[str], mode: str = "max", chief: bool = True,
) -> list[keras.callbacks.Callback]:
    """The callbacks of a fit; workers other than the chief write nothing (they restore from the chief's backup)."""
    save_freq = config.checkpoint_every_steps or "epoch"
    callbacks: list[keras.callbacks.Callback] = [
        EpochEndBackup(str(run_dir / "backup"), save_freq=save_freq, delete_checkpoint=True, writer=chief),
        LearningRateLogger(),
    ]
    if monitor and config.early_stopping_patience:
        # On every worker: they see the same all-reduced validation metrics, so they stop together (a chief
        # stopping alone leaves the others waiting in an all-reduce).
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, mode=mode,
                                                       patience=config.early_stopping_patience))
    if not chief:
        return callbacks
    if monitor:
        (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        callbacks.append(keras.callbacks.ModelCheckpoint(
            str(run_dir / "checkpoints" / "best.weights.h5"), monitor=monitor, mode=mode, save_best_only=True,
            save_weights_only=True))
    callbacks += [
        keras.callbacks.TensorBoard(str(run_dir / "logs"), update_freq="epoch"),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
    ]
    return callbacks
