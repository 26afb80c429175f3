"""Dataclass configs: build from dicts/YAML, apply `--set section.key=value` overrides, validate, save.

Standard library and YAML only: every stage imports this, so it must stay light.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from tfpipe.config.atomic import write_text_atomic

T = TypeVar("T")


class ConfigError(ValueError):
    """A config key or value that is not allowed; the message names the key and what is allowed."""


def choice(default: Any, choices: tuple | typing.Callable[[], tuple], help: str = "") -> Any:
    """A field restricted to `choices`: a tuple, or a function returning one (the registered task names)."""
    return dataclasses.field(default=default, metadata={"choices": choices, "help": help})


def bounded(default: Any, low: float | None = None, high: float | None = None, help: str = "") -> Any:
    """A numeric field within `[low, high]` (either bound optional)."""
    return dataclasses.field(default=default, metadata={"low": low, "high": high, "help": help})


def _fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Converts a YAML/override value to the field's annotated type, or raises ConfigError naming `key`."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping of {annotation.__name__} keys, got {value!r}")
        return from_dict(annotation, value, prefix=f"{key}.")
    if origin in (list, tuple):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        item = args[0] if args else Any
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, (int, str)) or isinstance(value, float):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{key}: expected an integer, got {value!r}") from None
    if annotation is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if annotation is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return str(value)
    return value


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Builds `cls` from a (possibly partial) dict; unknown keys are errors that list the allowed ones."""
    fields = _fields(cls)
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in (data or {}).items():
        if key not in fields:
            raise ConfigError(f"unknown key '{prefix}{key}'; allowed: {', '.join(sorted(fields))}")
        kwargs[key] = _coerce(value, hints[key], f"{prefix}{key}")
    obj = cls(**kwargs)
    validate(obj, prefix)
    return obj


def validate(obj: Any, prefix: str = "") -> None:
    """Checks every field's `choices` and bounds, recursing into nested configs."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            validate(value, f"{key}.")
            continue
        choices = f.metadata.get("choices")
        if callable(choices):
            choices = choices()
        if choices is not None and value not in choices:
            allowed = ", ".join(str(c) for c in choices)
            raise ConfigError(f"{key}: {value!r} is not allowed; allowed values: {allowed}")
        low, high = f.metadata.get("low"), f.metadata.get("high")
        if isinstance(value, float) and math.isnan(value) and (low is not None or high is not None):
            raise ConfigError(f"{key}: NaN is not allowed")
        if value is not None and low is not None and value < low:
            raise ConfigError(f"{key}: {value!r} is below the minimum {low}")
        if value is not None and high is not None and value > high:
            raise ConfigError(f"{key}: {value!r} is above the maximum {high}")
    check = getattr(obj, "check", None)
    if callable(check):
        check()


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def apply_overrides(obj: T, overrides: list[str] | None) -> T:
    """Applies `section.key=value` strings (values parsed as YAML scalars/lists) and re-validates."""
    data = to_dict(obj)
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        dotted, raw = item.split("=", 1)
        parts = dotted.strip().split(".")
        node = data
        for depth, part in enumerate(parts[:-1]):
            if not isinstance(node.get(part), dict):
                known = ", ".join(sorted(k for k, v in node.items() if isinstance(v, dict)))
                where = ".".join(parts[: depth + 1])
                raise ConfigError(f"unknown section '{where}' in override {item!r}; sections: {known}")
            node = node[part]
        if parts[-1] not in node:
            raise ConfigError(
                f"unknown key '{dotted}' in override {item!r}; allowed: {', '.join(sorted(node))}"
            )
        if _is_text_field(type(obj), parts):
            # A string field takes the text as written: YAML would turn `yes` into True and `007` into 7.
            node[parts[-1]] = None if raw.strip() in ("null", "~") else raw
            continue
        try:
            node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            node[parts[-1]] = raw
    return from_dict(type(obj), data)


def _is_text_field(cls: type, parts: list[str]) -> bool:
    for part in parts[:-1]:
        cls = typing.get_type_hints(cls)[part]
    annotation = typing.get_type_hints(cls).get(parts[-1])
    return annotation is str or annotation == typing.Optional[str]


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """Defaults ← YAML file ← overrides, validated."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return apply_overrides(from_dict(cls, data), overrides)


def save_config(obj: Any, directory: str | Path) -> Path:
    """Writes `config.yaml` into an output directory, so every result carries the config that made it."""
    return write_text_atomic(Path(directory) / "config.yaml", yaml.safe_dump(to_dict(obj), sort_keys=False))
