"""Test isolation for everything pytest collects (tests/ and the doctests in tfpipe/): each test starts with
Keras's default float32 policy, whatever an earlier test's training run set globally."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(autouse=True)
def _float32_policy():
    import keras

    keras.mixed_precision.set_global_policy("float32")
    yield
