"""Every Keras internal tfpipe uses resolves in the installed Keras, and one that does not stops the import with an
error naming the Keras version and the internal, instead of a run that trains silently wrong."""

from __future__ import annotations

import subprocess
import sys

import keras
import numpy as np
import pytest

from tests.conftest import REPO
from tfpipe.models import keras_compat
from tfpipe.models.keras_compat import INTERNALS, Internal, KerasInternalsError, check_internals, resolves


@pytest.mark.parametrize("internal", INTERNALS, ids=lambda i: f"{i.owner}.{i.name}")
def test_every_internal_resolves(internal):
    assert resolves(internal)


def test_the_pinned_minor_is_the_installed_one():
    assert keras.version().startswith(keras_compat.TESTED_KERAS + ".")
    assert f"keras>={keras_compat.TESTED_KERAS},<" in (REPO / "setup.cfg").read_text()


@pytest.mark.parametrize("internal", [
    Internal("keras.callbacks.BackupAndRestore", "_save_checkpoint_now", "no public 'back up now'"),
    Internal("keras.Model", "_no_such_tracker", "a tracker", instance=True),
    Internal("keras.src.no_such_module", "helper", "a helper"),
    Internal("keras.Model", "_maybe_symbolic_build", "a hook", parameters=("iterator", "renamed_batch")),
], ids=["method", "instance attribute", "module", "parameter"])
def test_a_missing_internal_is_a_clear_import_error(internal):
    with pytest.raises(ImportError) as raised:
        check_internals([*INTERNALS, internal])
    message = str(raised.value)
    assert isinstance(raised.value, KerasInternalsError)
    assert f"Keras {keras.version()}" in message
    lacking = message.split(" lacks: ")[1].split(". tfpipe is tested with")[0]
    assert lacking == f"{internal.owner}.{internal.name} ({internal.missing})"  # only it: the real ones resolve


def test_importing_tfpipe_models_fails_loudly_when_an_internal_moved():
    # A Keras without BackupAndRestore._save_model, made for real in a fresh interpreter.
    code = ("import keras\n"
            "del keras.callbacks.BackupAndRestore._save_model\n"
            "import tfpipe.models.task\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("tfpipe.models.keras_compat.KerasInternalsError: tfpipe relies on Keras internals")
    assert f"Keras {keras.version()}" in last and "keras.callbacks.BackupAndRestore._save_model" in last


def test_accessors_reach_the_internals_of_real_objects():
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((4, 2)), np.ones((4, 1)), batch_size=2, verbose=0)
    assert keras_compat.loss_tracker(model).name == "loss"
    keras_compat.clear_restored_epoch(model)
    stopping = keras.callbacks.EarlyStopping(monitor="val_loss", mode="min", min_delta=0.1)
    assert keras_compat.is_improvement(stopping, 0.5, 1.0) and not keras_compat.is_improvement(stopping, 0.95, 1.0)
    with pytest.raises(KerasInternalsError, match="object._loss_tracker"):
        keras_compat.loss_tracker(object())
