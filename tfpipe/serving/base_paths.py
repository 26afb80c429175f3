"""What a model base path holds and which of it to serve: numbered version folders, TF Serving's version
policies (latest N / all / specific), and whether a path lies under the allowed roots."""

from __future__ import annotations

import os
from pathlib import Path

from tensorflow_serving.config import model_server_config_pb2


def list_versions(base_path: str | Path) -> dict[int, Path]:
    """Numeric sub-directories of a base path: version → path (TF Serving ignores every other name)."""
    found = {}
    for entry in os.scandir(base_path):
        if entry.is_dir() and entry.name.isdigit():
            found[int(entry.name)] = Path(entry.path)
    return found


def aspired_versions(config: model_server_config_pb2.ModelConfig, on_disk: list[int]) -> set[int]:
    """The versions a model's policy wants served (latest 1 when none is set).

    Examples:
    >>> config = model_server_config_pb2.ModelConfig()
    >>> sorted(aspired_versions(config, [1, 3, 2]))
    [3]
    >>> config.model_version_policy.latest.num_versions = 2
    >>> sorted(aspired_versions(config, [1, 3, 2]))
    [2, 3]
    """
    policy = config.model_version_policy
    kind = policy.WhichOneof("policy_choice")
    if kind == "all":
        return set(on_disk)
    if kind == "specific":
        return set(policy.specific.versions) & set(on_disk)
    n = policy.latest.num_versions if kind == "latest" and policy.latest.num_versions > 0 else 1
    return set(sorted(on_disk, reverse=True)[:n])


def is_under(path: str | Path, roots: list[Path]) -> bool:
    """Whether `path` (symlinks and `..` resolved) is one of `roots` or inside one."""
    real = Path(os.path.realpath(path))
    return any(real == Path(os.path.realpath(r)) or Path(os.path.realpath(r)) in real.parents for r in roots)
