"""Tokenize JSONL files: every object gains `input_ids` and `token_type_ids`; its other keys are kept."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Optional

import tensorflow as tf

from tfpipe.config.atomic import atomic_file
from tfpipe.config.schemas import MAX_LINE_BYTES
from tfpipe.text.readers import DataError, ErrorLog
from tfpipe.text.readers.jsonl import iter_objects
from tfpipe.text.tokenizer import WordPieceTokenizer


def tokenize_jsonl(
    source: str | Path, target: str | Path, tokenizer: WordPieceTokenizer, max_length: Optional[int] = None,
    batch_size: int = 1024, max_line_bytes: int = MAX_LINE_BYTES,
) -> int:
    """Writes `target` in the input order; returns the number of records. Bad records (a line longer than
    `max_line_bytes` included) stop with file:line."""
    log = ErrorLog("raise", max_line_bytes)
    objects = iter_objects(source, log)
    count = 0
    with atomic_file(target) as out:  # a bad record or a kill leaves no half file under `target`
        while batch := list(itertools.islice(objects, batch_size)):
            for number, obj in batch:
                for key in ("text", "text_pair"):
                    if key in obj and not isinstance(obj[key], str):
                        raise DataError(source, number, f"{key!r} must be a string", "wrong type")
                if "text" not in obj:
                    raise DataError(source, number, f"missing key 'text'; keys present: {', '.join(obj)}",
                                    "missing column")
            singles = [i for i, (_, o) in enumerate(batch) if "text_pair" not in o]
            pairs = [i for i, (_, o) in enumerate(batch) if "text_pair" in o]
            results: dict[int, tuple[list, list]] = {}
            for group, with_pair in ((singles, False), (pairs, True)):
                if not group:
                    continue
                text = tf.constant([batch[i][1]["text"] for i in group])
                pair = tf.constant([batch[i][1]["text_pair"] for i in group]) if with_pair else None
                ids, types = tokenizer.encode(text, pair, max_length)
                for i, a, b in zip(group, ids.to_list(), types.to_list()):
                    results[i] = (a, b)
            for i, (_, obj) in enumerate(batch):
                obj["input_ids"], obj["token_type_ids"] = results[i]
                out.write(json.dumps(obj, ensure_ascii=False) + "\n")
            count += len(batch)
    return count
