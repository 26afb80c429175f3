"""Writers killed in the middle of a write, in real child processes, for the all-or-nothing tests.

`killed_at_byte` lets the kernel stop a writer at a chosen byte: past its file-size limit a write raises SIGXFSZ,
whose default action ends the process on the spot, as SIGKILL does (no handler, no `finally`, no flush).
`killed_after_line` SIGKILLs a child as soon as it prints a given line (it pauses there, mid-write).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Callable, Optional

from tests.conftest import REPO

# Python ignores SIGXFSZ (so a write past the limit raises instead); the child restores the kernel's default.
_LIMIT = textwrap.dedent("""
    import resource, signal
    def _limit_file_size(limit):
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
""")


def _python(code: str) -> list[str]:
    return [sys.executable, "-B", "-c", code]  # -B: no .pyc writes, which the file-size limit would also stop


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}


def killed_at_byte(setup: str, write: str, limit: int, cwd: Path) -> subprocess.CompletedProcess:
    """Runs `setup` (imports, data), then `write` with files limited to `limit` bytes; asserts the write died."""
    code = "\n".join([_LIMIT, textwrap.dedent(setup), f"_limit_file_size({limit})", textwrap.dedent(write),
                      "print('finished')"])
    done = subprocess.run(_python(code), cwd=cwd, capture_output=True, text=True, timeout=300, env=_env())
    assert done.returncode == -signal.SIGXFSZ, f"the writer was not killed mid-write:\n{done.stdout}{done.stderr}"
    return done


def killed_after_line(code: str, line: str, cwd: Path, timeout: float = 300,
                      until: Optional[Callable[[], bool]] = None) -> int:
    """Runs `code` and SIGKILLs it once it prints `line` (and then, if given, once `until()` holds); returns the
    dead child's pid."""
    child = subprocess.Popen(_python(textwrap.dedent(code)), cwd=cwd, stdout=subprocess.PIPE, text=True, env=_env())
    watchdog = threading.Timer(timeout, child.kill)  # a child that never prints the line must not hang the test
    watchdog.start()
    try:
        for printed in child.stdout:
            if printed.strip() == line:
                break
        else:
            raise AssertionError(f"the child ended (exit {child.wait()}) before printing {line!r}")
        while until is not None and not until():
            assert child.poll() is None, "the child ended before the moment to kill it"
            time.sleep(0.005)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        watchdog.cancel()
    assert child.returncode == -signal.SIGKILL
    return child.pid
