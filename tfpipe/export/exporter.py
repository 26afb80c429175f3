"""`tfpipe export`: a fine-tuned run → `BASE/NAME/VERSION/`, a raw-text SavedModel TF Serving loads unchanged.

The version is written under a non-numeric temporary name, `.VERSION.tmp-PID-XXXXXX` (TF Serving treats every
numeric folder as a version), method names are set, assets and `assets.extra/` added, the result reloaded and
compared in a fresh process, and only then renamed into place. A failed check removes the partial export; the
temporary folders of exports killed midway are removed by the next export under the same name.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable, Optional, Sequence

import keras

from tfpipe.config import Config
from tfpipe.config.atomic import atomic_directory, remove_stale
from tfpipe.config.tasks import get_task
from tfpipe.export.layout import METADATA_PATH, next_version
from tfpipe.export.samples import sample_texts, with_edge_cases
from tfpipe.export.savedmodel_files import set_method_names, signature_summary, write_warmup_requests
from tfpipe.export.serving_module import ServingModule
from tfpipe.export.verify import VerifyError, build_cases, verify_export
from tfpipe.models.run_loader import load_run
from tfpipe.text.tokenizer import WordPieceTokenizer
from tfpipe.text.vocab import write_vocabulary

LEGACY_TEMPORARY = re.compile(r"^\.tmp-\d+-(?P<pid>\d+)$")  # `.tmp-VERSION-PID`, before tfpipe.config.atomic


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
    _version_dir(export_base, name, version)  # a bad name or an existing version fails before the model loads
    loaded = load_run(run)
    config, summary = loaded.config, _run_summary(run)
    task = get_task(config.task)
    text_pair = task.pairs_always or bool(summary.get("training", {}).get("text_pair", config.reader.text_pair_column))
    samples = sample_texts(run, text_pair, config.pipeline.max_seq_length, task.input_names)
    return export_model(loaded.model, loaded.tokenizer, loaded.labels.labels if loaded.labels else None, config,
                        export_base, name, version, text_pair, samples, summary, verify, log)


def export_model(
    model: keras.Model,
    tokenizer: WordPieceTokenizer,
    labels: Optional[Sequence[str]],
    config: Config,
    export_base: str | Path,
    name: str,
    version: Optional[int] = None,
    text_pair: bool = False,
    samples: Optional[tuple[list[str], Optional[list[str]]]] = None,
    summary: Optional[dict] = None,
    verify: bool = True,
    log: Callable[[str], None] = print,
) -> ExportResult:
    """Exports an in-memory float32 task model with its tokenizer and labels to `export_base/name/version/`.

    Args:
        config: `config.task` and `config.pipeline.max_seq_length` decide the signatures and trimming; the whole
            config goes into `assets.extra/tfpipe_metadata.json`.
        samples: `(texts, pairs)` the export is checked and warmed up on (`samples.with_edge_cases`); default
            the edge cases alone.
        summary: the run's `metrics.json`, for the metadata.
        Others as for `export_run`.
    """
    final, version = _version_dir(export_base, name, version)
    max_seq_length = config.pipeline.max_seq_length
    module = ServingModule(model, tokenizer, config.task, list(labels) if labels else None, max_seq_length,
                           text_pair, config.pipeline)
    texts, pairs = samples or with_edge_cases([], [] if module.text_pair else None, max_seq_length)
    model_root = final.parent
    model_root.mkdir(parents=True, exist_ok=True)
    # Nothing else removes what a killed export left (TF Serving and `tfpipe serve` skip such folders); the
    # temporaries of exports still running are theirs.
    for stale in remove_stale(model_root, also=LEGACY_TEMPORARY):
        log(f"removed {stale}: the unfinished export of a process that has ended")
    try:
        with atomic_directory(final) as temporary:  # renamed to `final` only once written and checked
            log(f"writing {temporary}")
            archive = module.archive()
            archive.write_out(str(temporary), verbose=False)
            set_method_names(temporary, module.method_names())
            _write_assets(temporary, tokenizer, module.labels)
            write_warmup_requests(temporary, name, _warmup_requests(texts, pairs, module.input_names))
            _write_metadata(temporary, config, tokenizer.hash, summary or {}, module, version)
            verification = verify_export(temporary, build_cases(module, texts, pairs)) if verify else {}
    except VerifyError as error:
        raise ExportError(f"export check failed, nothing written: {error}") from error
    return ExportResult(final, version, signature_summary(final), verification)


def _version_dir(export_base: str | Path, name: str, version: Optional[int]) -> tuple[Path, int]:
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
    return final, version


def _write_assets(export_dir: Path, tokenizer: WordPieceTokenizer, labels: Optional[Sequence[str]]) -> None:
    # The same bytes as the run's vocab.txt and labels.txt: both are written from the same token and label lists.
    assets = export_dir / "assets"
    assets.mkdir(exist_ok=True)
    write_vocabulary(tokenizer.vocabulary, assets / "vocab.txt")
    if labels:
        (assets / "labels.txt").write_text("".join(f"{label}\n" for label in labels), encoding="utf-8")


def _warmup_requests(texts: list[str], pairs: Optional[list[str]], names: Sequence[str]) -> list[dict[str, list]]:
    """One text (and pair) per request: a server batching with a small max_batch_size must accept every record.
    `names` are serving_default's inputs (`text`, `text_pair`, or the task's own)."""
    requests = [{names[0]: [t.encode("utf-8")]} for t in texts]
    for request, pair in zip(requests, pairs or [] if len(names) > 1 else []):
        request[names[1]] = [pair.encode("utf-8")]
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
        "truncation": get_task(config.task).truncation(),
        "signatures": module.method_names(),
        "validation_metrics": {k: v for k, v in summary.items() if k != "training"},
        "training": summary.get("training", {}),
        "config": asdict(config),
    }
    path = export_dir / METADATA_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
