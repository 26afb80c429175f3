"""Which of a model base path to serve: TF Serving's version policies (latest N / all / specific), and whether a
path lies inside the allowed roots (the numbered version folders are listed by `tfpipe.export.layout`)."""

from __future__ import annotations

import os
from pathlib import Path

from tensorflow_serving.config import model_server_config_pb2


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


def allowed_roots(extra_roots: list[str], base_paths: list[str]) -> list[Path]:
    """The folders reloads may point into: the operator's start-up base paths and `--allowed_model_roots`, resolved
    now (symlinks, `..`, relative to the working directory). Never a parent: a sibling of a base path is not the
    operator's choice, and the parent of `../..` can be `/`.

    Examples:
    >>> [str(p) for p in allowed_roots(["/srv/extra/"], ["/srv/models/a/../b"])]
    ['/srv/extra', '/srv/models/b']
    """
    return list(dict.fromkeys(Path(os.path.realpath(p)) for p in [*extra_roots, *base_paths] if p))


def is_under(path: str | Path, roots: list[Path]) -> bool:
    """Whether `path` (symlinks, `..` and relative parts resolved) is one of `roots` or inside one."""
    real = Path(os.path.realpath(path))
    return any(real == Path(os.path.realpath(r)) or Path(os.path.realpath(r)) in real.parents for r in roots)
