"""tfpipe: raw text to a served BERT-style model (corpus preparation, pretraining, fine-tuning, export, serving)."""

import os as _os
import platform as _platform

# TensorFlow turns its oneDNN kernels on by default only on CPUs with AVX-512/AMX features; on an AVX2-only x86
# CPU it falls back to Eigen, whose fp32 matmuls are 1.2-1.4x slower (BENCHMARKS.md, issue 3, third try).
# Set before TensorFlow is first imported; a TF_ENABLE_ONEDNN_OPTS the user set still wins.
if _platform.machine().lower() in ("x86_64", "amd64"):
    _os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

# The public API (tfpipe/api.py) is re-exported here and imported on first use: `import tfpipe` loads no
# TensorFlow. `tfpipe.export` is both the export stage's package and, called, `tfpipe.api.export`.
import types as _types

_API = ("vocabulary", "tokenizer", "dataset", "model", "classifier", "optimizer", "callbacks")
__all__ = [*_API, "export"]


def __getattr__(name: str):
    if name in _API:
        from tfpipe import api

        return getattr(api, name)
    raise AttributeError(f"module 'tfpipe' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _ExportPackage(_types.ModuleType):
    """The `tfpipe.export` package; calling it runs `tfpipe.api.export` (a name the package already took)."""

    def __call__(self, *args, **kwargs):
        from tfpipe.api import export

        return export(*args, **kwargs)


from tfpipe import export as _export_package  # noqa: E402  (a docstring-only package: light)

_export_package.__class__ = _ExportPackage
