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
from array import array
from collections import defaultdict, deque
from pathlib import Path
from typing import BinaryIO, Iterator, Optional, Sequence

from tfpipe.config.atomic import atomic_file
from tfpipe.config.schemas import MAX_LINE_BYTES, TEXT_FORMATS
from tfpipe.text.readers import DataError, detect_format, iter_raw_lines, line_too_long, open_checked

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


def _lines(handle: BinaryIO, path: Path, max_line_bytes: int) -> Iterator[tuple[int, bytes, int]]:
    """`(line number, bytes with the line end, offset of its start)`, streamed; a longer line stops the split."""
    start = handle.tell()
    for number, raw, size, end in iter_raw_lines(handle, max_line_bytes):
        if raw is None:
            raise line_too_long(path, number, size, max_line_bytes)
        yield number, raw, start
        start = end


SPLITTABLE = TEXT_FORMATS  # a SQuAD file is one JSON document, not lines or blocks


def _units(path: Path, handle: BinaryIO, fmt: str, no_header: bool, max_line_bytes: int
           ) -> tuple[bytes, array]:
    """`(header bytes, units)`: units is flat `[first line, start offset, end offset, ...]`, three per unit, so a
    file of millions of rows costs 24 bytes a row here; the bytes stay in the file until they are written."""
    # Lines end at "\n" only, as the readers see them (a lone "\r" inside a field is not a line break).
    lines = _lines(handle, path, max_line_bytes)
    header = b""
    if fmt in ("tsv", "csv") and not no_header:
        first = next(lines, None)
        if first is None:
            raise DataError(path, 1, "empty file: expected a header line", "file")
        header = first[1]
    units = array("q")
    if fmt in ("tsv", "jsonl", "spans"):
        for number, raw, start in lines:
            if raw.strip():
                units.extend((number, start, start + len(raw)))
    elif fmt == "csv":
        pending: deque[tuple[int, int, int, bool]] = deque()  # the record's lines: number, start, end, not blank

        def feed() -> Iterator[str]:
            for number, raw, start in lines:
                pending.append((number, start, start + len(raw), bool(raw.strip())))
                if pending[-1][2] - pending[0][1] > max_line_bytes:  # an unbalanced quote, most likely
                    raise DataError(path, pending[0][0], f"CSV record spans more than {max_line_bytes} bytes "
                                    "(--max-line-bytes): an unbalanced quote?", "csv")
                yield raw.decode("utf-8-sig" if number == 1 else "utf-8", errors="replace")

        reader = csv.reader(feed())
        consumed = 0
        for _ in reader:
            taken = [pending.popleft() for _ in range(reader.line_num - consumed)]
            consumed = reader.line_num
            if any(line[3] for line in taken):
                units.extend((taken[0][0], taken[0][1], taken[-1][2]))
    else:  # conll sentences / text documents: blocks between blank lines
        block: Optional[list[int]] = None  # first line, start, end
        for number, raw, start in lines:
            if raw.strip() and not raw.startswith(b"-DOCSTART-"):
                if block is None:
                    block = [number, start, 0]
                block[2] = start + len(raw)
            elif block is not None:
                units.extend(block)
                block = None
        if block is not None:
            units.extend(block)
    return header, units


def _unit(handle: BinaryIO, units: array, i: int) -> tuple[int, bytes]:
    """Unit `i` as `(first line, its bytes)`, read back from the file."""
    first, start, end = units[3 * i: 3 * i + 3]
    handle.seek(start)
    return first, handle.read(end - start)


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
    max_line_bytes: int = MAX_LINE_BYTES,
) -> dict[str, int]:
    """Writes `output_dir/{train,validation,test}.EXT`; returns the number of units in each. The input is
    streamed (a line longer than `max_line_bytes` is an error naming file:line) and read again to write."""
    path, output_dir = Path(path), Path(output_dir)
    ratios = parse_ratios(ratios)
    if max_line_bytes < 1:
        raise ValueError(f"max_line_bytes: {max_line_bytes} is not allowed; it must be at least 1")
    fmt = detect_format(path, fmt, task)
    if fmt not in SPLITTABLE:
        raise DataError(path, 0, f"split cuts {', '.join(SPLITTABLE)} files into units, not {fmt}", "file")
    with open_checked(path) as handle:
        return _split(path, handle, output_dir, ratios, seed, stratify_column, fmt, no_header, max_line_bytes)


def _split(path: Path, handle: BinaryIO, output_dir: Path, ratios: list[float], seed: int,
           stratify_column: Optional[str], fmt: str, no_header: bool, max_line_bytes: int) -> dict[str, int]:
    header, units = _units(path, handle, fmt, no_header, max_line_bytes)
    groups: dict[str, list[int]] = defaultdict(list)
    for i in range(len(units) // 3):
        key = _label(path, fmt, header, _unit(handle, units, i), stratify_column, no_header) \
            if stratify_column else ""
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
        with atomic_file(output_dir / f"{name}{path.suffix}", "wb") as out:
            out.write(header)
            for k, i in enumerate(sorted(indices)):  # input order within each split
                out.write(joiner * bool(k) + _unit(handle, units, i)[1])
        counts[name] = len(indices)
    return counts
