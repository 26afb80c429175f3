"""`tfpipe serve --backend`: a version with a verified converted encoder (ONNX Runtime or OpenVINO) is served
through it, behind the SavedModel's own signatures, metadata and validation; every other version is the
SavedModel as before.

The converted servable keeps the raw-text contract: its signature functions are the export's (the same
tokenizer ops, head outputs and tf.Example parsing), with only the encoder call replaced, so requests, batching,
errors and GetModelMetadata are the SavedModel's.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tfpipe.export.convert.manifest import SERVABLE_RUNTIMES, choose_variant
from tfpipe.serving.servable import Servable

log = logging.getLogger(__name__)


def installed_runtimes() -> tuple[str, ...]:
    """The converted-model runtimes whose Python package is installed here."""
    return tuple(r for r in SERVABLE_RUNTIMES if importlib.util.find_spec(r) is not None)


class ConvertedServable(Servable):
    """A SavedModel version whose signatures run on a converted encoder.

    Args:
        path, name, version, **options: as for `Servable`.
        folder: the conversion folder (`VERSION/accelerated/<variant>/`).
    """

    def __init__(self, path: str | Path, name: str, version: int, folder: Path, **options: Any) -> None:
        self.folder = Path(folder)
        super().__init__(path, name, version, **options)
        self.backend = f"{self._loaded.manifest['runtime']}:{self.folder.name}"

    def _load_functions(self, tags: tuple[str, ...]) -> tuple[Any, dict[str, Callable]]:
        from tfpipe.export.convert.runtime import ConvertedModel

        model = ConvertedModel(self.path, self.folder)
        if set(model.signatures) != set(self.signatures):
            raise ValueError(f"{self.folder}: its signatures {sorted(model.signatures)} are not the SavedModel's "
                             f"{sorted(self.signatures)}")
        return model, dict(model.signatures)


def open_servable(path: str | Path, name: str, version: int, backend: str = "tensorflow", batch_size: int = 1,
                  **options: Any) -> Servable:
    """The servable `backend` runs for one version: its chosen converted encoder (the fastest at `batch_size`,
    the batch size the server mostly runs), or the SavedModel."""
    choice = choose_variant(path, backend, installed_runtimes(), batch_size) if backend != "tensorflow" else None
    if choice is None:
        if backend != "tensorflow":
            log.info("%s version %d: no verified conversion for --backend %s; serving the SavedModel", name,
                     version, backend)
        return Servable(path, name, version, **options)
    folder, manifest = choice
    try:
        servable = ConvertedServable(path, name, version, folder, **options)
    except Exception as error:  # noqa: BLE001 - the SavedModel can still answer, correctly
        log.error("%s version %d: cannot serve %s (%s); serving the SavedModel", name, version, folder, error)
        return Servable(path, name, version, **options)
    log.info("%s version %d: serving through %s (%s, %s)", name, version, folder, manifest["runtime"],
             manifest["precision"])
    return servable
