"""Under CI (or TFPIPE_REQUIRE_SHARED=1) a missing ../shared fails the run loudly instead of skipping its tests."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO


def _pytest(tmp_path, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("CI", "TFPIPE_REQUIRE_SHARED")}
    environment.update(TFPIPE_SHARED=str(tmp_path / "no-shared-here"), **env)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/test_examples.py::test_keras_fit_example_minilm_sst2"],
                          cwd=REPO, env=environment, capture_output=True, text=True, timeout=300)


def test_missing_shared_is_an_error_when_required(tmp_path):
    for env in ({"TFPIPE_REQUIRE_SHARED": "1"}, {"CI": "true"}):
        done = _pytest(tmp_path, **env)
        assert done.returncode == 4, done.stdout + done.stderr  # pytest's usage error: nothing ran
        assert "the shared data folder is missing, and CI / TFPIPE_REQUIRE_SHARED=1 requires it" in done.stderr


def test_missing_shared_skips_elsewhere(tmp_path):
    done = _pytest(tmp_path)
    assert done.returncode == 0 and "1 skipped" in done.stdout, done.stdout + done.stderr
