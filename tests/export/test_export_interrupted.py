"""An export SIGKILLed while it writes the SavedModel leaves no version folder, only its temporary one, and the
next export under the same name removes that (and older `.tmp-N-PID` ones) while a live export's is left alone."""

from __future__ import annotations

import subprocess
import sys

from tests.killing import killed_after_line
from tfpipe.config.atomic import is_temporary
from tfpipe.export.exporter import export_run
from tfpipe.export.layout import list_versions


def _unversioned(folder) -> list:
    """What a server skips: every entry of a model folder that is not a numeric version."""
    return sorted(p for p in folder.iterdir() if not p.name.isdigit())


def test_killed_export_leaves_no_version_and_the_next_export_cleans_up(tiny_runs, tmp_path):
    run, base = tiny_runs("classification"), tmp_path / "models"
    model = base / "m"

    def saved_model_started() -> bool:  # the SavedModel is half written: its folder has files, not all of them
        return any(any(t.iterdir()) for t in _unversioned(model)) if model.is_dir() else False

    pid = killed_after_line(f"""
        from tfpipe.export.exporter import export_run
        log = lambda m: print("writing" if m.startswith("writing") else m, flush=True)
        export_run({str(run)!r}, {str(base)!r}, "m", verify=False, log=log)
    """, "writing", tmp_path, until=saved_model_started)
    assert list_versions(model) == {} and not (model / "1").exists()
    [stale] = _unversioned(model)
    assert not (stale / "assets.extra").exists()  # killed before the end

    legacy = model / f".tmp-5-{pid}"  # the name exports were written under before tfpipe.config.atomic
    (legacy / "variables").mkdir(parents=True)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        live = model / f".2.tmp-{sleeper.pid}-abcdef"  # another export, still writing
        live.mkdir()
        logs: list[str] = []
        result = export_run(run, base, "m", verify=False, log=logs.append)
        assert result.version == 1 and (result.path / "saved_model.pb").is_file()
        assert not stale.exists() and not legacy.exists() and live.is_dir()
        assert sum("removed" in line for line in logs) == 2
        assert sorted(list_versions(model)) == [1] and _unversioned(model) == [live]
    finally:
        sleeper.kill()
        sleeper.wait()
    assert is_temporary(stale.name) and stale.name.startswith(f".1.tmp-{pid}-")  # `.VERSION.tmp-PID-XXXXXX`
