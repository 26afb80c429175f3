"""A model base path with what killed exports leave (`.VERSION.tmp-PID-XXXXXX`, the older `.tmp-VERSION-PID`,
each a complete SavedModel) and folders whose names only look numeric: the server loads the real versions only,
and logs no error about the rest."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys

from tensorflow_serving.config import file_system_storage_path_source_pb2

from tests.serving.server_harness import TWO_VERSIONS, config_of, copy_versions
from tfpipe.serving.manager import ManagerOptions, ModelManager, State

Policy = file_system_storage_path_source_pb2.FileSystemStoragePathSourceConfig.ServableVersionPolicy


def test_temporary_and_lookalike_folders_are_never_loaded(tmp_path, caplog):
    base = copy_versions(TWO_VERSIONS, tmp_path / "two")  # versions 123 and 124
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(ended.stdout)
    for name in (f".125.tmp-{dead}-abcdef", f".tmp-126-{dead}", "１２７", "²"):  # fullwidth 127; int("²") fails
        shutil.copytree(base / "124", base / name)
    caplog.set_level(logging.INFO)
    manager = ModelManager(ManagerOptions(poll_seconds=0))
    try:
        manager.apply_config(config_of(("two", base), model_version_policy=Policy(all=Policy.All())))
        states = manager.servable_states("two")
        assert sorted(states) == [123, 124] and set(states.values()) == {State.AVAILABLE}
    finally:
        manager.stop()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("tfpipe")]
    assert not [r for r in caplog.records if ".tmp-" in r.getMessage() or "127" in r.getMessage()]
