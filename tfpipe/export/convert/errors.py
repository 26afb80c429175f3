"""What a conversion can fail with: the machine cannot do it (the CLI exits 2 with one line naming what is
missing), or the converted model disagreed with the SavedModel (exits 1; nothing is left behind)."""

from __future__ import annotations

import importlib
from types import ModuleType


class ConversionUnavailable(RuntimeError):
    """This machine or this install cannot do the conversion; the message names what is missing, in one line."""


class ConversionCheckError(RuntimeError):
    """The converted model did not match the SavedModel (or its accuracy fell too far); the output was removed."""


def require(module: str, purpose: str, extra: str, package: str | None = None) -> ModuleType:
    """Imports an optional dependency, or raises `ConversionUnavailable` saying which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        name = package or module.split(".")[0]
        raise ConversionUnavailable(f"{purpose} needs the Python package {name!r}, which is not installed "
                                    f"({type(error).__name__}: {error}); install it with "
                                    f"pip install 'tfpipe[{extra}]'") from None
