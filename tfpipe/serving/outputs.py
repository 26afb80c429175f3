"""A batch of signature outputs (as a server or a loaded SavedModel returns them) → one JSON-ready dict per input:
strings decoded, arrays as lists, token-classification `words`/`tags` trimmed to `num_words`."""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import numpy as np


def _json(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [_json(v) for v in value]
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    return value


def output_rows(outputs: Mapping[str, Any], texts: Optional[Sequence[str]] = None,
                text_pairs: Optional[Sequence[str]] = None) -> list[dict]:
    """One dict per row of the batch: `text` (and `text_pair`) first when given, then every output.

    Examples:
    >>> rows = output_rows({"labels": np.array([b"pos", b"neg"], dtype=object),
    ...                     "probabilities": np.array([[0.25, 0.75], [0.5, 0.5]], dtype=np.float32)}, ["a", "b"])
    >>> rows[0]
    {'text': 'a', 'labels': 'pos', 'probabilities': [0.25, 0.75]}
    >>> output_rows({"words": np.array([["new", "york", ""]], dtype=object),
    ...              "tags": np.array([["B-LOC", "I-LOC", ""]], dtype=object), "num_words": np.array([2])})
    [{'num_words': 2, 'tags': ['B-LOC', 'I-LOC'], 'words': ['new', 'york']}]
    """
    arrays = {name: np.asarray(value) for name, value in outputs.items()}
    sizes = {len(a) for a in arrays.values() if a.ndim > 0}
    if len(sizes) > 1:
        raise ValueError(f"outputs disagree on the batch size: { {n: len(a) for n, a in arrays.items()} }")
    size = sizes.pop() if sizes else len(texts or ())
    rows = []
    for i in range(size):
        row: dict[str, Any] = {}
        if texts is not None:
            row["text"] = texts[i]
        if text_pairs is not None:
            row["text_pair"] = text_pairs[i]
        for name in sorted(arrays):
            row[name] = _json(arrays[name][i] if arrays[name].ndim > 0 else arrays[name])
        if "num_words" in row:
            # Padding ("") beyond each sentence's own words is an artefact of the batch, not a prediction.
            for name in ("words", "tags"):
                if isinstance(row.get(name), list):
                    row[name] = row[name][:row["num_words"]]
        rows.append(row)
    return rows
