"""Deterministic train/validation/test splits written in the input's own format (bytes kept as they are).

Units are rows (TSV/CSV, after the header, which every output repeats), lines (JSONL), sentences (CoNLL) or
documents (plain text). The same seed and input give the same files; `stratify_column` keeps label ratios.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
from collections import defaultdict
from pathlib import Path
from typing import Optional, Sequence

from tfpipe.text.readers import DataError, detect_format

SPLIT_NAMES = ("train", "validation", "test")


def parse_ratios(text: str | Sequence[float]) -> list[float]:
    """`"0.8,0.1,0.1"` → floats; 2 or 3 positive ratios summing to 1."""
    try:
        ratios = [float(r) for r in (text.split(",") if isinstance(text, str) else text)]
    except ValueError:
        raise ValueError(f"--ratios {text!r}: expected comma-separated numbers such as 0.8,0.1,0.1") from None
    if not 2 <= len(ratios) <= 3 or not all(math.isfinite(r) and r >= 0 for r in ratios) \
            or abs(sum(ratios) - 1) > 1e-6:
        raise ValueError(f"--ratios {text!r}: give 2 or 3 non-negative ratios that sum to 1")
    return ratios


def _units(path: Path, fmt: str, no_header: bool) -> tuple[bytes, list[tuple[int, bytes]]]:
    """`(header bytes, [(first line, unit bytes)])` with every byte of each unit kept."""
    # Lines end at "\n" only, as the readers see them (a lone "\r" inside a field is not a line break).
    data = path.read_bytes()
    raw = [line + b"\n" for line in data.split(b"\n")]
    raw[-1] = raw[-1][:-1]
    if not raw[-1]:
        raw.pop()
    header = b""
    start = 0
    if fmt in ("tsv", "csv") and not no_header:
        if not raw:
            raise DataError(path, 1, "empty file: expected a header line", "file")
        header, start = raw[0], 1
    units: list[tuple[int, bytes]] = []
    if fmt in ("tsv", "jsonl"):
        units = [(i + 1, line) for i, line in enumerate(raw[start:], start) if line.strip()]
    elif fmt == "csv":
        text = [line.decode("utf-8-sig", errors="replace") for line in raw[start:]]
        reader = csv.reader(io.StringIO("".join(text)))
        consumed = 0
        for _ in reader:
            lines = raw[start + consumed: start + reader.line_num]
            if b"".join(lines).strip():
                units.append((start + consumed + 1, b"".join(lines)))
            consumed = reader.line_num
    else:  # conll sentences / text documents: blocks between blank lines
        block: list[bytes] = []
        first = 0
        for i, line in enumerate(raw + [b"\n"]):
            if line.strip() and not line.startswith(b"-DOCSTART-"):
                if not block:
                    first = i + 1
                block.append(line)
            elif block:
                units.append((first, b"".join(block)))
                block = []
    return header, units


def _label(path: Path, fmt: str, header: bytes, unit: tuple[int, bytes], column: str, no_header: bool) -> str:
    line, data = unit
    text = data.decode("utf-8", errors="replace")
    if fmt == "jsonl":
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(path, line, f"invalid JSON: {exc.msg} at column {exc.colno}", "json") from None
        if not isinstance(obj, dict):
            raise DataError(path, line, f"expected a JSON object, got {type(obj).__name__}", "json")
        value = obj.get(column)
        if value is None:
            raise DataError(path, line, f"stratify key {column!r} missing", "missing column")
        return str(value)
    if fmt not in ("tsv", "csv"):
        raise DataError(path, 0, f"--stratify-column works for TSV, CSV and JSONL, not {fmt}", "file")
    rows = list(csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE) if fmt == "tsv"
                else csv.reader(io.StringIO(text)))
    header_text = header.decode("utf-8-sig").rstrip("\r\n")
    if no_header:
        names = []
    elif fmt == "tsv":
        names = header_text.split("\t")
    else:
        names = next(csv.reader([header_text]), [])
    index = int(column) if no_header else (names.index(column) if column in names else -1)
    if index < 0:
        raise DataError(path, 1, f"stratify column {column!r} not in the header; columns: {', '.join(names)}",
                        "column")
    if not rows or index >= len(rows[0]):
        raise DataError(path, line, f"row has no column {column!r}", "missing column")
    return rows[0][index]


def split_file(
    path: str | Path,
    output_dir: str | Path,
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    stratify_column: Optional[str] = None,
    fmt: str = "auto",
    no_header: bool = False,
    task: str = "classification",
) -> dict[str, int]:
    """Writes `output_dir/{train,validation,test}.EXT`; returns the number of units in each."""
    path, output_dir = Path(path), Path(output_dir)
    if not path.is_file():
        raise DataError(path, 0, "file not found", "file")
    ratios = parse_ratios(ratios)
    fmt = detect_format(path, fmt, task)
    header, units = _units(path, fmt, no_header)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, unit in enumerate(units):
        key = _label(path, fmt, header, unit, stratify_column, no_header) if stratify_column else ""
        groups[key].append(i)
    rng = random.Random(seed)
    assignment: dict[str, list[int]] = {name: [] for name in SPLIT_NAMES[: len(ratios)]}
    for key in sorted(groups):
        members = groups[key]
        rng.shuffle(members)
        bounds = [round(len(members) * sum(ratios[: k + 1])) for k in range(len(ratios))]
        bounds[-1] = len(members)
        lo = 0
        for name, hi in zip(assignment, bounds):
            assignment[name].extend(members[lo:hi])
            lo = hi
    output_dir.mkdir(parents=True, exist_ok=True)
    joiner = b"\n" if fmt in ("conll", "text") else b""
    counts = {}
    for name, indices in assignment.items():
        body = joiner.join(units[i][1] for i in sorted(indices))  # input order within each split
        target = output_dir / f"{name}{path.suffix}"
        target.write_bytes(header + body)
        counts[name] = len(indices)
    return counts
