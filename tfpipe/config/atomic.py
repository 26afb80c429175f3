"""Writes a reader sees whole or not at all, even when the writer is killed: files and folders are written under a
temporary name beside their destination, flushed to disk, then renamed into place (a rename is atomic on POSIX).

Temporary names are `.NAME.tmp-PID-XXXXXX`: hidden and never numeric, so TF Serving and every tfpipe reader skip
them; `remove_stale` deletes those a dead process left behind. Standard library only, so every layer can use it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import IO, Any, Iterator, Optional

TEMPORARY_PATTERN = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>\d+)-(?P<token>[0-9a-f]{6})$")


def temporary_name(name: str) -> str:
    """A fresh temporary name for `name`, owned by this process: `.NAME.tmp-PID-XXXXXX`."""
    return f".{name}.tmp-{os.getpid()}-{secrets.token_hex(3)}"


def is_temporary(name: str) -> bool:
    """Whether `name` is one of `temporary_name`'s (a write in progress, or one a killed process left)."""
    return TEMPORARY_PATTERN.match(name) is not None


def process_alive(pid: int) -> bool:
    """Whether a process `pid` exists on this machine (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another account's live process
        return True
    return True


def remove_stale(folder: str | Path, also: Optional[re.Pattern] = None) -> list[Path]:
    """Deletes the temporaries in `folder` whose writing process has died; returns what it removed.

    Live processes' temporaries are left alone (they are still writing). `also` matches further names (older
    layouts) and must capture the owner's `pid`. Process ids are this machine's: on storage shared between
    machines run it where the writers run.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return removed
    for entry in entries:
        match = TEMPORARY_PATTERN.match(entry.name) or (also.match(entry.name) if also else None)
        if match is None or process_alive(int(match["pid"])):
            continue
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _fsync_path(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    try:
        os.fsync(fd)
    except OSError as error:  # some file systems cannot sync a folder; the rename is still atomic
        if error.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for folder, _, files in os.walk(root):
        for name in files:
            if not os.path.islink(os.path.join(folder, name)):
                _fsync_path(Path(folder, name))
        _fsync_path(Path(folder), directory=True)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _create(path: Path, directory: bool) -> tuple[Path, int]:
    """A new temporary beside `path` (an empty folder, or a file opened for writing: its descriptor)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        temporary = path.with_name(temporary_name(path.name))
        try:
            if directory:
                temporary.mkdir()
                return temporary, -1
            return temporary, os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # mode: the umask's
        except FileExistsError:  # the same six hex digits twice: draw again
            continue


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "w", encoding: Optional[str] = "utf-8",
                newline: Optional[str] = None) -> Iterator[IO]:
    """An open file (`w` text or `wb` binary) that becomes `path` when the block ends without an error.

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "notes.txt"
    >>> with atomic_file(target) as out:
    ...     _ = out.write("first line\\n")
    ...     target.exists()
    False
    >>> target.read_text()
    'first line\\n'
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode {mode!r}: atomic_file writes whole files ('w' or 'wb')")
    path = Path(path)
    temporary, fd = _create(path, directory=False)
    try:
        with os.fdopen(fd, mode, **({} if mode == "wb" else {"encoding": encoding, "newline": newline})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_path(path.parent, directory=True)  # so the rename itself survives a crash of the machine


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A path to write `path`'s file by name (for writers that open it themselves: Keras weights, plots, TFRecords),
    renamed into place when the block ends without an error.

    The path yielded keeps the file's name, inside a temporary folder beside `path`, so writers that look at the
    extension (`.weights.h5`, `.png`) see the right one.
    """
    path = Path(path)
    folder, _ = _create(path, directory=True)
    try:
        inner = folder / path.name
        yield inner
        if not inner.is_file():
            raise FileNotFoundError(f"{inner}: nothing was written for {path}")
        _fsync_path(inner)
        os.replace(inner, path)
    finally:
        _remove(folder)
    _fsync_path(path.parent, directory=True)


@contextlib.contextmanager
def atomic_directory(path: str | Path, replace: bool = False) -> Iterator[Path]:
    """An empty temporary folder beside `path` that becomes `path` when the block ends without an error.

    An existing `path` is an error (checked again at the rename: nothing is overwritten by a race) unless
    `replace`, which swaps it out (a reader then sees the old folder, briefly nothing, or the new one).
    Every file is flushed to disk before the rename. On an error the temporary folder is removed.
    """
    path = Path(path)
    temporary, _ = _create(path, directory=True)
    try:
        yield temporary
        _fsync_tree(temporary)
        old = None
        if path.exists() or path.is_symlink():
            if not replace:
                raise FileExistsError(f"{path}: already exists; not overwritten")
            old = path.with_name(temporary_name(path.name))
            os.replace(path, old)
        try:
            os.rename(temporary, path)
        except OSError as error:  # appeared meanwhile (a non-empty folder cannot be renamed over)
            if old is not None:
                os.replace(old, path)
            if error.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR):
                raise FileExistsError(f"{path}: appeared while writing; not overwritten") from None
            raise
        if old is not None:
            _remove(old)
    except BaseException:
        _remove(temporary)
        raise
    _fsync_path(path.parent, directory=True)


def write_text_atomic(path: str | Path, text: str, encoding: str = "utf-8", newline: Optional[str] = None) -> Path:
    """Writes `text` as `path`, whole or not at all; returns `path`."""
    with atomic_file(path, "w", encoding=encoding, newline=newline) as out:
        out.write(text)
    return Path(path)


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Writes `data` as `path`, whole or not at all; returns `path`."""
    with atomic_file(path, "wb") as out:
        out.write(data)
    return Path(path)


def write_json_atomic(path: str | Path, value: Any, indent: Optional[int] = 2, sort_keys: bool = True,
                      **dumps: Any) -> Path:
    """Writes `value` as JSON (and a final newline) to `path`, whole or not at all; returns `path`."""
    return write_text_atomic(path, json.dumps(value, indent=indent, sort_keys=sort_keys, **dumps) + "\n")


def copy_file_atomic(source: str | Path, target: str | Path, metadata: bool = False) -> Path:
    """Copies `source` to `target`, whole or not at all (`metadata`: with its mode and times, as `shutil.copy2`)."""
    with atomic_path(target) as temporary:
        (shutil.copy2 if metadata else shutil.copyfile)(source, temporary)
    return Path(target)
