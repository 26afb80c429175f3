"""`tfpipe export`: a fine-tuned run → `BASE/NAME/VERSION/`, a raw-text SavedModel TF Serving loads unchanged.

The version is written under a non-numeric temporary name (TF Serving treats every numeric folder as a version),
method names are set, assets and `assets.extra/` added, the result reloaded and compared in a fresh process, and
only then renamed into place. A failed check removes the partial export.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable, Optional

from tfpipe.export.layout import METADATA_PATH, next_version
from tfpipe.export.samples import sample_texts
from tfpipe.export.savedmodel_files import set_method_names, signature_summary, write_warmup_requests
from tfpipe.export.serving_module import ServingModule
from tfpipe.export.verify import VerifyError, build_cases, verify_export
from tfpipe.models.run_loader import load_run


class ExportError(RuntimeError):
    """The export could not be written or did not match the in-process model; nothing was left behind."""


@dataclass
class ExportResult:
    path: Path
    version: int
    signatures: str  # saved_model_cli-style summary
    verification: dict = field(default_factory=dict)


def _run_summary(run: Path) -> dict:
    path = run / "metrics.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def export_run(
    model_dir: str | Path,
    export_base: str | Path,
    name: str,
    version: Optional[int] = None,
    verify: bool = True,
    log: Callable[[str], None] = print,
) -> ExportResult:
    """Exports the fine-tuned run in `model_dir` to `export_base/name/version/` and returns where it went.

    Args:
        model_dir: output directory of `tfpipe finetune`.
        export_base: the folder TF Serving's `--model_base_path` parent points at.
        name: the model name (a folder under `export_base`).
        version: the version number; default the next free one. An existing version is never overwritten.
        verify: reload in a fresh process with only tensorflow + tensorflow-text and compare (≤ 1e-5).
        log: where progress lines go.
    """
    run = Path(model_dir)
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"--name {name!r}: give a plain folder name for the model")
    model_root = Path(export_base) / name
    version = next_version(model_root) if version is None else int(version)
    if version < 0:
        raise ValueError(f"--version {version}: versions are non-negative integers")
    final = model_root / str(version)
    if final.exists():
        raise FileExistsError(f"{final}: version {version} already exists; exports never overwrite "
                              "(leave --version out for the next free one)")
    loaded = load_run(run)
    config, summary = loaded.config, _run_summary(run)
    text_pair = bool(summary.get("training", {}).get("text_pair", config.reader.text_pair_column))
    module = ServingModule(loaded.model, loaded.tokenizer, config.task,
                           loaded.labels.labels if loaded.labels else None, config.pipeline.max_seq_length, text_pair)
    model_root.mkdir(parents=True, exist_ok=True)
    temporary = model_root / f".tmp-{version}-{os.getpid()}"
    try:
        log(f"writing {temporary}")
        archive = module.archive()
        archive.write_out(str(temporary), verbose=False)
        set_method_names(temporary, module.method_names())
        _copy_assets(run, temporary)
        texts, pairs = sample_texts(run, text_pair, config.pipeline.max_seq_length)
        write_warmup_requests(temporary, name, _warmup_requests(texts, pairs))
        _write_metadata(temporary, config, loaded.tokenizer.hash, summary, module, version)
        verification = verify_export(temporary, build_cases(module, texts, pairs)) if verify else {}
        if final.exists():
            raise FileExistsError(f"{final}: appeared while exporting; not overwritten")
        temporary.rename(final)
    except BaseException as error:
        shutil.rmtree(temporary, ignore_errors=True)
        if isinstance(error, VerifyError):
            raise ExportError(f"export check failed, nothing written: {error}") from error
        raise
    return ExportResult(final, version, signature_summary(final), verification)


def _copy_assets(run: Path, export_dir: Path) -> None:
    assets = export_dir / "assets"
    assets.mkdir(exist_ok=True)
    for name in ("vocab.txt", "labels.txt"):
        if (run / name).is_file():
            shutil.copyfile(run / name, assets / name)


def _warmup_requests(texts: list[str], pairs: Optional[list[str]]) -> list[dict[str, list]]:
    """One text (and pair) per request: a server batching with a small max_batch_size must accept every record."""
    requests = [{"text": [t.encode("utf-8")]} for t in texts]
    for request, pair in zip(requests, pairs or []):
        request["text_pair"] = [pair.encode("utf-8")]
    return requests


def _write_metadata(export_dir: Path, config, vocab_hash: str, summary: dict, module: ServingModule,
                    version: int) -> None:
    try:
        tfpipe_version = metadata.version("tfpipe")
    except metadata.PackageNotFoundError:
        tfpipe_version = "unknown"
    record = {
        "tfpipe_version": tfpipe_version, "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "version": version, "task": config.task, "labels": module.labels, "text_pair": module.text_pair,
        "max_seq_length": module.max_seq_length, "vocabulary_sha256": vocab_hash,
        "truncation": ("sentences longer than max_seq_length - 2 word pieces are cut into windows of whole words"
                       if config.task == "token-classification" else
                       "inputs are trimmed to max_seq_length word pieces with [CLS]/[SEP]; for pairs the longer "
                       "segment loses its last pieces first (as in training)"),
        "signatures": module.method_names(),
        "validation_metrics": {k: v for k, v in summary.items() if k != "training"},
        "training": summary.get("training", {}),
        "config": asdict(config),
    }
    path = export_dir / METADATA_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
