"""Offline batch prediction without a server: load an export with `tf.saved_model.load`, run a raw-text signature
over an input file in batches, and write one JSON line per input, in input order."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Optional

import tensorflow as tf
from tqdm import tqdm

from tfpipe.config import Config, ConfigError, ReaderConfig, from_dict
from tfpipe.config.atomic import atomic_file
from tfpipe.config.schemas import TEXT_FORMATS
from tfpipe.config.tasks import get_task
from tfpipe.export.layout import METADATA_PATH
from tfpipe.serving.outputs import output_rows
from tfpipe.text.readers import (
    DataError,
    ErrorLog,
    Record,
    TokenRecord,
    counted,
    detect_format,
    read_jsonl,
    read_records,
)


def export_config(export_dir: str | Path) -> Optional[Config]:
    """The run config stored with a tfpipe export (None for SavedModels that are not tfpipe exports)."""
    path = Path(export_dir) / METADATA_PATH
    if not path.is_file():
        return None
    try:
        return from_dict(Config, json.loads(path.read_text(encoding="utf-8")).get("config") or {})
    except (ValueError, ConfigError) as error:
        raise ValueError(f"{path}: unreadable tfpipe metadata: {error}") from error


def prediction_reader(export_dir: str | Path) -> ReaderConfig:
    """The run's reader settings (format, text columns) without its label column: inputs need no labels."""
    config = export_config(export_dir)
    reader = config.reader if config else ReaderConfig()
    return replace(reader, label_column=None)


def load_signature(export_dir: str | Path, signature: str = "serving_default"):
    """A concrete function of the SavedModel in `export_dir` (tensorflow-text registers the tokenizer's ops)."""
    import tensorflow_text  # noqa: F401  (the exported tokenizer's ops; loading fails without them)

    export_dir = Path(export_dir)
    if not (export_dir / "saved_model.pb").is_file():
        raise FileNotFoundError(f"{export_dir}: no saved_model.pb (give a version folder, e.g. EXPORTS/NAME/1)")
    loaded = tf.saved_model.load(str(export_dir))
    if signature not in loaded.signatures:
        raise ValueError(f"{export_dir}: no signature {signature!r}; it has {', '.join(sorted(loaded.signatures))}")
    function = loaded.signatures[signature]
    function._tfpipe_keepalive = loaded  # the signature holds only a weak reference to its variables' owner
    return function


def read_inputs(path: str | Path, reader: ReaderConfig, task: str = "classification",
                log: Optional[ErrorLog] = None) -> list[Record]:
    """Texts (and pairs, and labels when a label column is given) to predict. CoNLL/span files give their
    sentences' words joined by spaces; the export splits them again in-graph. `task` only decides what a `.txt`
    file is (CoNLL for token classification, else one text per line). `log` gets the counts of what was read."""
    log = log or ErrorLog.for_reader(reader)
    fmt = detect_format(path, reader.format, task)
    if fmt in ("conll", "spans"):
        return [Record(" ".join(r.words), source=r.source, line=r.line)
                for r in read_records(path, reader, "token-classification", log=log) if isinstance(r, TokenRecord)]
    if fmt == "jsonl" and reader.label_column is None:
        # read_records insists on a label for JSONL; prediction inputs have none.
        def texts():
            for rec in read_jsonl(path, reader.text_column, reader.text_pair_column, None, log):
                if not rec.text.strip() or (rec.text_pair is not None and not rec.text_pair.strip()):
                    log.report(DataError(rec.source, rec.line, "empty text", "empty text"))
                    continue
                yield rec

        return list(counted(texts(), path, log))
    if fmt not in TEXT_FORMATS:  # a task's own format (SQuAD): its records, as texts and pairs
        return get_task(task).as_texts(list(read_records(path, replace(reader, format=fmt), task, log=log)))
    return list(read_records(path, replace(reader, format=fmt), "classification", log=log))


def predict_file(export_dir: str | Path, input_path: str | Path, output_path: str | Path,
                 reader: Optional[ReaderConfig] = None, signature: str = "serving_default", batch_size: int = 64,
                 progress: bool = True) -> dict:
    """Writes `output_path` (JSONL): per input record, its `text` (`text_pair`, `label` when read) and every
    output of `signature` decoded — label strings, probability lists, words/tags trimmed to `num_words`.

    Returns a summary: {"records": n, "output": path, "signature": ..., "outputs": [names], "reading": what
    was read and skipped}.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size: {batch_size} is not allowed; it must be at least 1")
    config = export_config(export_dir)
    reader = reader or prediction_reader(export_dir)
    log = ErrorLog.for_reader(reader)
    records = read_inputs(input_path, reader, config.task if config else "classification", log)
    function = load_signature(export_dir, signature)
    inputs = set(function.structured_input_signature[1])
    # The raw-text inputs: `text` (and `text_pair`), or the task's own (question answering: question, context).
    first, second = ("text", "text_pair") if "text" in inputs or config is None else \
        get_task(config.task).input_names
    if first not in inputs:
        raise ValueError(f"{export_dir}: signature {signature!r} takes {sorted(inputs)}, not raw `{first}`")
    pairs = second in inputs
    if pairs and any(r.text_pair is None for r in records):
        raise ValueError(f"{export_dir}: the model reads text pairs; name the second column with "
                         "--text-pair-column")
    output_path = Path(output_path)
    names: list[str] = []
    bar = tqdm(total=len(records), desc="predicting", unit="text", disable=not progress, mininterval=1.0)
    with atomic_file(output_path) as out, bar:  # a failed or killed run leaves no half predictions file
        for start in range(0, len(records), batch_size):
            batch = records[start:start + batch_size]
            feed = {first: tf.constant([r.text for r in batch])}
            if pairs:
                feed[second] = tf.constant([r.text_pair for r in batch])
            outputs = {name: tensor.numpy() for name, tensor in function(**feed).items()}
            names = sorted(outputs)
            rows = output_rows(outputs, [r.text for r in batch], [r.text_pair for r in batch] if pairs else None)
            for rec, row in zip(batch, rows):
                if first != "text":  # the rows name the inputs as the signature does
                    row = {first: row.pop("text"), **({second: row.pop("text_pair")} if pairs else {}), **row}
                if rec.label is not None:
                    row = {"text": row.pop("text"), **({"text_pair": row.pop("text_pair")} if pairs else {}),
                           "label": rec.label, **row}
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
            bar.update(len(batch))
    return {"records": len(records), "output": str(output_path), "signature": signature, "outputs": names,
            "reading": log.summary()}
