"""Files for the Beam pipelines, on a local disk or any Beam file system (gs://, s3://, hdfs://).

Workers write into a scratch folder beside the output (named as `tfpipe.config.atomic` names temporaries, so
`remove_stale` clears one a killed run left); the launcher renames the files into place, atomically on a local
disk, and writes the manifest last: a manifest says its files are whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from tfpipe.config import Config, save_config, to_dict
from tfpipe.config.atomic import temporary_name, write_json_atomic

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_RAW = CompressionTypes.UNCOMPRESSED  # never guess a compression from the file name


def is_local(path: str | Path) -> bool:
    return FileSystems.get_scheme(str(path)) is None


def join(folder: str, name: str) -> str:
    return os.path.join(folder, name) if is_local(folder) else FileSystems.join(folder, name)


def split(path: str | Path) -> tuple[str, str]:
    """`(folder, name)` of a local path or URL."""
    if is_local(path):
        return str(Path(path).parent), Path(path).name
    return FileSystems.split(str(path))


def glob(pattern: str) -> list[str]:
    """The files matching `pattern`, sorted."""
    return sorted(m.path for r in FileSystems.match([pattern]) for m in r.metadata_list)


def expand_inputs(patterns: Sequence[str | Path]) -> list[str]:
    """Input files: each path as given, each glob (`gs://bucket/wiki/*.txt`) matched and sorted, in turn."""
    files: list[str] = []
    for pattern in map(str, patterns):
        if is_local(pattern) and not any(c in pattern for c in "*?["):
            if not Path(pattern).is_file():
                raise FileNotFoundError(f"{pattern}: input file not found")
            files.append(pattern)
            continue
        matched = glob(pattern)
        if not matched:
            raise FileNotFoundError(f"{pattern}: no input file matches")
        files.extend(matched)
    return files


@contextlib.contextmanager
def local_copy(path: str) -> Iterator[str]:
    """`path` itself, or a remote file copied to the worker's disk (the readers read local files)."""
    if is_local(path):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="tfpipe-input-") as folder:
        local = os.path.join(folder, FileSystems.split(path)[1])
        with FileSystems.open(path, compression_type=_RAW) as source, open(local, "wb") as target:
            shutil.copyfileobj(source, target)
        yield local


def write_bytes(path: str, data: bytes) -> None:
    with FileSystems.create(path, compression_type=_RAW) as out:
        out.write(data)


def copy_in(local: str, path: str) -> None:
    """Copies a file on this machine to `path`."""
    with open(local, "rb") as source, FileSystems.create(path, compression_type=_RAW) as target:
        shutil.copyfileobj(source, target)


def read_bytes(path: str) -> bytes:
    with FileSystems.open(path, compression_type=_RAW) as handle:
        return handle.read()


def read_json(path: str) -> Any:
    return json.loads(read_bytes(path))


def exists(path: str) -> bool:
    return FileSystems.exists(path)


def make_scratch(folder: str) -> str:
    """A new scratch folder in `folder` (made if missing) for the workers' files."""
    if is_local(folder):
        Path(folder).mkdir(parents=True, exist_ok=True)
    path = join(folder, temporary_name("beam"))
    FileSystems.mkdirs(path)
    return path


def remove(path: str) -> None:
    if exists(path):
        FileSystems.delete([path])


def write_json(path: str, value: Any) -> None:
    """JSON as `write_json_atomic` writes it (the same bytes), on any file system."""
    if is_local(path):
        write_json_atomic(path, value)
    else:
        write_bytes(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def publish(scratch: str, folder: str, names: Sequence[str], manifest: Optional[tuple[str, dict]] = None) -> None:
    """Removes the old manifest, renames the files `names` from `scratch` into `folder` (atomic on a local disk)
    and writes the new manifest `(name, value)`; then removes `scratch`."""
    if manifest is not None:
        remove(join(folder, manifest[0]))  # an old manifest must not list the new files
    sources, targets = [join(scratch, n) for n in names], [join(folder, n) for n in names]
    if is_local(folder):
        for source, target in zip(sources, targets):
            fd = os.open(source, os.O_RDONLY)
            try:
                os.fsync(fd)  # the workers' writes reach the disk before the name does
            finally:
                os.close(fd)
            os.replace(source, target)
    else:
        FileSystems.delete([t for t in targets if exists(t)])
        FileSystems.rename(sources, targets)
    if manifest is not None:
        write_json(join(folder, manifest[0]), manifest[1])
    remove(scratch)


def save_config_to(config: Config, folder: str | Path) -> None:
    """`config.yaml` into `folder`, local (`tfpipe.config.save_config`) or on a Beam file system."""
    if is_local(folder):
        save_config(config, folder)
    else:
        import yaml

        write_bytes(join(str(folder), "config.yaml"), yaml.safe_dump(to_dict(config), sort_keys=False).encode())
