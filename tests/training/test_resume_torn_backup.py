"""A backup torn by a kill while Keras wrote it (empty metadata JSON, truncated weights) does not stop the restart:
the chief puts the whole previous pair in its place, or, without one, resumes from what is whole or starts over —
and says so. Workers that only read the chief's backup never touch it."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.training.test_options import make_batch, make_model
from tests.training.test_resume import CountSteps, KillAtStep, Killed
from tfpipe.config.schemas import TrainingConfig
from tfpipe.models import keras_compat
from tfpipe.training.optimizers import build_optimizer
from tfpipe.training.resume import EpochEndBackup, fit_resumable

STEPS_PER_EPOCH, EPOCHS = 4, 2
TOTAL = STEPS_PER_EPOCH * EPOCHS


def _fit(folder, kill_at: int | None = None, double: bool = True, writer: bool = True):
    """The tiny classifier from the same initial weights over 8 distinct batches, backed up every 2 steps (the
    previous backup kept as `.bkp` with `double`); returns the model (None if killed) and the steps it ran."""
    keras.utils.set_random_seed(0)
    model = make_model()
    model.compile(optimizer=build_optimizer(TrainingConfig(), TOTAL),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), run_eagerly=True)
    x, y = make_batch(4 * TOTAL)
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(4).repeat()
    count = CountSteps()
    callbacks = [EpochEndBackup(str(folder), save_freq=2, double_checkpoint=double, writer=writer), count]
    if kill_at:
        callbacks.append(KillAtStep(kill_at))
    try:
        fit_resumable(model, train, steps_per_epoch=STEPS_PER_EPOCH, epochs=EPOCHS, backup_dir=folder,
                      callbacks=callbacks, verbose=0)
    except Killed:
        return None, count.steps
    return model, count.steps


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> list[np.ndarray]:
    model, ran = _fit(tmp_path_factory.mktemp("whole") / "backup")
    assert ran == TOTAL and int(model.optimizer.iterations.numpy()) == TOTAL
    return [w.numpy() for w in model.weights]


def _killed_at_step_7(folder, double: bool = True):
    # Backups at steps 2, 4 (the first epoch's end) and 6: latest is step 6's, and `.bkp` step 4's.
    assert _fit(folder, kill_at=7, double=double)[0] is None
    return keras_compat.backup_files(folder)


def _tear(path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def _assert_as_uninterrupted(model, uninterrupted) -> None:
    assert int(model.optimizer.iterations.numpy()) == TOTAL
    for weight, expected in zip(model.weights, uninterrupted):
        np.testing.assert_allclose(weight.numpy(), expected, atol=1e-6, err_msg=weight.path)


@pytest.mark.parametrize("torn", ["metadata", "weights"])
def test_a_torn_backup_resumes_from_the_whole_previous_pair(tmp_path, capsys, uninterrupted, torn):
    weights, metadata, previous_weights, _ = _killed_at_step_7(tmp_path / "backup")
    assert previous_weights.is_file()
    if torn == "metadata":
        metadata.write_text("")  # killed after Keras opened it for writing: `json.loads` failed on every restart
        torn_file = metadata
    else:
        _tear(weights)
        torn_file = weights
    capsys.readouterr()

    model, ran = _fit(tmp_path / "backup")
    assert ran == TOTAL - 4  # from the `.bkp` pair's step 4, not from step 0 (or 6, the torn backup's)
    _assert_as_uninterrupted(model, uninterrupted)
    lines = [line for line in capsys.readouterr().err.splitlines() if "torn" in line]
    assert lines == [f"{torn_file}: torn by a kill while the backup was written; resuming from the previous backup "
                     f"({weights.name}.bkp, {metadata.name}.bkp)"]


def test_torn_weights_without_a_previous_backup_start_the_run_over(tmp_path, capsys, uninterrupted):
    weights, _, previous_weights, _ = _killed_at_step_7(tmp_path / "backup", double=False)
    assert not previous_weights.exists()
    _tear(weights)
    capsys.readouterr()

    model, ran = _fit(tmp_path / "backup", double=False)
    assert ran == TOTAL
    _assert_as_uninterrupted(model, uninterrupted)
    assert f"{weights}: torn by a kill while the backup was written, and no whole previous backup; removed it: the " \
        "run starts from its beginning (nothing whole to resume)" in capsys.readouterr().err.splitlines()


def test_torn_metadata_without_a_previous_backup_resumes_from_the_whole_weights(tmp_path, capsys, uninterrupted):
    # The multi-worker restart test's flake: killed as soon as the metadata file appeared, still empty.
    weights, metadata, previous_weights, _ = _killed_at_step_7(tmp_path / "backup", double=False)
    assert not previous_weights.exists()
    metadata.write_text("")
    capsys.readouterr()

    model, ran = _fit(tmp_path / "backup", double=False)
    assert ran == TOTAL - 6  # the weights hold step 6: all that the resume needs
    _assert_as_uninterrupted(model, uninterrupted)
    assert f"{metadata}: torn by a kill while the backup was written, and no whole previous backup; removed it: " \
        f"resuming from {weights.name}" in capsys.readouterr().err.splitlines()


def test_a_reader_leaves_the_chiefs_torn_backup_alone(tmp_path, capsys):
    _, metadata, previous_weights, previous_metadata = _killed_at_step_7(tmp_path / "backup")
    metadata.write_text("")
    before = {path: path.read_bytes() for path in (previous_weights, previous_metadata)}
    capsys.readouterr()

    model, ran = _fit(tmp_path / "backup", writer=False)  # resumes from the (whole) weights, as the chief's backup
    assert ran == TOTAL - 6 and int(model.optimizer.iterations.numpy()) == TOTAL
    assert metadata.read_text() == ""  # the chief's to repair
    assert {path: path.read_bytes() for path in before} == before
    assert "torn" not in capsys.readouterr().err
