"""The task registry: one object per task, found by name, that every stage asks what the task needs.

A task (classification, regression, token classification, extractive question answering, or one of your own)
declares, layer by layer: how its files are read and validated, how labels become tensors, the head, the loss
and metrics, the evaluation, the export signatures and the outputs the server returns. The stages hold the
building blocks and ask the task which to use; none of them switches on a task name.

The built-in tasks live in `tfpipe.tasks`, one module each, and are registered the first time a name is looked
up; other packages register theirs under the `tfpipe.tasks` entry-point group (`name = package.module:TASK`),
or call `register_task` before using it:

    from tfpipe.config.tasks import register_task
    register_task(MyTask())          # MyTask subclasses tfpipe.tasks.base.Task; MyTask.name is its --task name

Standard library only: config validation and `--help` list the names without loading TensorFlow, since task
modules import their heavy building blocks where they use them.
"""

from __future__ import annotations

import importlib
import threading
from importlib import metadata
from typing import Any, Protocol, runtime_checkable

BUILTIN_PACKAGE = "tfpipe.tasks"  # importing it registers the built-in tasks
ENTRY_POINT_GROUP = "tfpipe.tasks"

_registry: dict[str, Any] = {}
_loaded = False
_lock = threading.RLock()


@runtime_checkable
class TaskLike(Protocol):
    """What the registry needs of a task object; `tfpipe.tasks.base.Task` documents the whole contract."""

    name: str
    description: str


class UnknownTaskError(ValueError):
    """A task name that no registered task has; the message lists the registered ones."""


def register_task(task: TaskLike, *, replace: bool = False) -> TaskLike:
    """Registers `task` under `task.name` and returns it. A name is taken once unless `replace` is given."""
    if not isinstance(task, TaskLike) or not isinstance(task.name, str) or not task.name:
        raise TypeError(f"{task!r}: a task needs a non-empty string `name` and a `description`")
    with _lock:
        existing = _registry.get(task.name)
        if existing is not None and not replace and existing is not task:
            raise ValueError(f"task {task.name!r} is already registered ({type(existing).__qualname__}); pass "
                             "replace=True to replace it")
        _registry[task.name] = task
    return task


def unregister_task(name: str) -> None:
    """Removes a registered task (tests that register a task of their own clean up with this)."""
    with _lock:
        _registry.pop(name, None)


def _load() -> None:
    global _loaded
    with _lock:
        if _loaded:
            return
        _loaded = True  # set first: the modules imported below register through this module
        importlib.import_module(BUILTIN_PACKAGE)
        for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if entry.name not in _registry:
                register_task(entry.load())


def task_names() -> tuple[str, ...]:
    """The registered task names, built-in ones first, in registration order."""
    _load()
    return tuple(_registry)


def get_task(name: str) -> Any:
    """The task registered as `name`; an unknown name raises `UnknownTaskError` listing the registered ones."""
    _load()
    task = _registry.get(name)
    if task is None:
        raise UnknownTaskError(f"task: {name!r} is not a registered task; registered tasks: "
                               f"{', '.join(_registry)}")
    return task


def all_tasks() -> tuple[Any, ...]:
    _load()
    return tuple(_registry.values())
