"""TSV and CSV readers with column mapping by header name or, with `no_header`, by 0-based index.

TSV is read without quote processing: GLUE files such as MRPC contain stray `"` characters that a quoting
reader would silently merge into fewer rows. CSV uses standard RFC 4180 quoting (records may span lines).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator, Optional

from tfpipe.text.readers.base import DataError, ErrorLog, Record, iter_lines


def _resolve(path: Path, header: Optional[list[str]], spec: Optional[str], role: str) -> Optional[int]:
    """Maps a column name (or index, without a header) to its position; a bad one stops the read."""
    if spec is None:
        return None
    if header is None:
        try:
            index = int(spec)
        except ValueError:
            raise DataError(path, 1, f"{role} column {spec!r}: with --no-header, columns are 0-based indices",
                            "column") from None
        if index < 0:
            raise DataError(path, 1, f"{role} column {index}: indices start at 0", "column")
        return index
    if spec in header:
        return header.index(spec)
    # "sentence|content": the first alternative the header has (GLUE's SST-2 names it differently per split).
    for alternative in spec.split("|"):
        if alternative in header:
            return header.index(alternative)
    raise DataError(path, 1, f"{role} column {spec!r} not in the header; columns: {', '.join(header)}", "column")


def _split_rows(path: Path, fmt: str, log: ErrorLog) -> Iterator[tuple[int, list[str]]]:
    if fmt == "tsv":
        for number, line in iter_lines(path, log):
            yield number, line.split("\t")
        return
    lines = iter_lines(path, log)
    numbers: list[int] = []

    def feed() -> Iterator[str]:
        for number, line in lines:
            numbers.append(number)
            yield line + "\n"

    reader = csv.reader(feed(), strict=True)
    while True:
        start = len(numbers) + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # Name the line where the bad record starts (an unterminated quote runs to the end of the file).
            line = numbers[start - 1] if start - 1 < len(numbers) else start
            log.report(DataError(path, line, f"malformed CSV: {exc} (in the record that starts on this line)", "csv"))
            continue
        yield (numbers[start - 1] if start - 1 < len(numbers) else start), row


def read_delimited(
    path: str | Path,
    fmt: str,
    text_column: Optional[str],
    text_pair_column: Optional[str] = None,
    label_column: Optional[str] = None,
    no_header: bool = False,
    log: Optional[ErrorLog] = None,
) -> Iterator[Record]:
    """Yields one `Record` per data row; rows with missing fields are reported with their line."""
    path = Path(path)
    log = log or ErrorLog()
    rows = _split_rows(path, fmt, log)
    header = None
    if not no_header:
        first = next(rows, None)
        if first is None:
            raise DataError(path, 1, "empty file: expected a header line", "file")
        if first[0] != 1:  # the header itself was unreadable: no row may silently take its place
            reason = log.errors[-1].reason if log.errors else "unreadable header line"
            raise DataError(path, 1, f"{reason} (in the header, which cannot be skipped)", "file")
        header = [h.strip() for h in first[1]]
    if text_column is None:
        raise DataError(path, 1, "no text column given (--text-column)", "column")
    columns = {
        "text": _resolve(path, header, text_column, "text"),
        "text_pair": _resolve(path, header, text_pair_column, "text pair"),
        "label": _resolve(path, header, label_column, "label"),
    }
    needed = max(i for i in columns.values() if i is not None) + 1
    names = header or [str(i) for i in range(needed)]
    for number, row in rows:
        if row == [""] or not row:
            log.notes["blank lines"] += 1
            continue
        if len(row) < needed:
            missing = [names[i] if i < len(names) else str(i) for i in columns.values()
                       if i is not None and i >= len(row)]
            log.report(DataError(path, number, f"expected at least {needed} fields, got {len(row)}; "
                                 f"missing column(s): {', '.join(missing)}", "missing column"))
            continue
        values = {k: (row[i] if i is not None else None) for k, i in columns.items()}
        yield Record(values["text"], values["text_pair"], values["label"], str(path), number)
