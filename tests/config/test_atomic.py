"""All-or-nothing writes (tfpipe.config.atomic): a writer SIGKILLed mid-write, or stopped by the kernel at a byte,
leaves the previous file (or nothing) under the final name and a recognisable temporary that `remove_stale`
removes once its process is gone; a live process's temporary is left alone."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.killing import killed_after_line, killed_at_byte
from tfpipe.config import Config, load_config, save_config
from tfpipe.config.atomic import (
    atomic_directory,
    atomic_file,
    atomic_path,
    is_temporary,
    remove_stale,
    temporary_name,
    write_json_atomic,
)


def _temporaries(folder) -> list:
    return sorted(p for p in folder.iterdir() if is_temporary(p.name))


def test_file_killed_mid_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("old\n")
    pid = killed_after_line(f"""
        import os, time
        from tfpipe.config.atomic import atomic_file
        with atomic_file({str(target)!r}) as out:
            for i in range(1000):
                out.write("new line %d\\n" % i)
                if i == 500:
                    out.flush(); os.fsync(out.fileno())
                    print("halfway", flush=True)
                    time.sleep(60)
    """, "halfway", tmp_path)
    assert target.read_text() == "old\n"
    [left] = _temporaries(tmp_path)
    assert left.name.startswith(f".notes.txt.tmp-{pid}-") and "new line 500" in left.read_text()
    assert remove_stale(tmp_path) == [left]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_directory_killed_mid_write_leaves_nothing_under_its_name(tmp_path):
    final = tmp_path / "model" / "3"
    pid = killed_after_line(f"""
        import time
        from tfpipe.config.atomic import atomic_directory
        with atomic_directory({str(final)!r}) as folder:
            (folder / "variables").mkdir()
            (folder / "saved_model.pb").write_bytes(b"half")
            print("halfway", flush=True)
            time.sleep(60)
    """, "halfway", tmp_path)
    assert not final.exists()
    [left] = _temporaries(final.parent)
    assert left.name.startswith(f".3.tmp-{pid}-") and not left.name.isdigit()
    assert remove_stale(final.parent) == [left] and not list(final.parent.iterdir())


def test_remove_stale_leaves_live_writers_and_other_names(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".data.tmp-{sleeper.pid}-abcdef"
        live.mkdir()
        mine = tmp_path / temporary_name("mine.txt")  # this very process
        mine.write_text("writing")
        kept = [tmp_path / "1", tmp_path / ".hidden", tmp_path / "data.tmp-1-abcdef"]
        kept[0].mkdir(), kept[1].write_text(""), kept[2].write_text("")
        assert remove_stale(tmp_path) == []
        assert all(p.exists() for p in [live, mine, *kept])
    finally:
        sleeper.kill()
        sleeper.wait()
    assert remove_stale(tmp_path) == [live]  # its process has ended now


def test_config_writer_stopped_at_a_byte_keeps_the_old_config(tmp_path):
    save_config(Config(), tmp_path)
    before = (tmp_path / "config.yaml").read_text()
    killed_at_byte("""
        import dataclasses
        from tfpipe.config import Config, save_config
        config = Config()
        config.reader = dataclasses.replace(config.reader, drop_regex="x" * 200_000)
    """, f"save_config(config, {str(tmp_path)!r})", limit=20_000, cwd=tmp_path)
    assert (tmp_path / "config.yaml").read_text() == before
    assert load_config(Config, tmp_path / "config.yaml") == Config()
    [left] = _temporaries(tmp_path)
    assert left.stat().st_size == 20_000  # the kernel stopped it exactly there


def test_a_failed_write_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.jsonl"
    with pytest.raises(RuntimeError):
        with atomic_file(target) as out:
            out.write("partial")
            raise RuntimeError("the writer failed")
    with pytest.raises(RuntimeError):
        with atomic_directory(tmp_path / "folder") as folder:
            (folder / "a").write_text("a")
            raise RuntimeError("the writer failed")
    with pytest.raises(FileNotFoundError):
        with atomic_path(tmp_path / "plot.png"):
            pass  # nothing written
    assert list(tmp_path.iterdir()) == []


def test_directories_are_not_overwritten_unless_asked(tmp_path):
    final = tmp_path / "variant"
    with atomic_directory(final) as folder:
        (folder / "v").write_text("1")
    with pytest.raises(FileExistsError):
        with atomic_directory(final) as folder:
            (folder / "v").write_text("2")
    assert (final / "v").read_text() == "1"
    with atomic_directory(final, replace=True) as folder:
        (folder / "v").write_text("3")
    assert (final / "v").read_text() == "3" and sorted(p.name for p in tmp_path.iterdir()) == ["variant"]


def test_atomic_path_keeps_the_file_name(tmp_path):
    target = tmp_path / "model.weights.h5"
    with atomic_path(target) as partial:
        assert partial.name == "model.weights.h5" and is_temporary(partial.parent.name)
        partial.write_bytes(b"weights")
    assert target.read_bytes() == b"weights" and list(tmp_path.iterdir()) == [target]


def test_json_is_written_sorted_with_the_mode_open_would_give(tmp_path):
    path = write_json_atomic(tmp_path / "m.json", {"b": 1, "a": 2})
    assert path.read_text() == '{\n  "a": 2,\n  "b": 1\n}\n'
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600: servers under other users read it
