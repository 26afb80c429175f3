"""TSV and CSV readers with column mapping by header name or, with `no_header`, by 0-based index.

TSV is read without quote processing: GLUE files such as MRPC contain stray `"` characters that a quoting
reader would silently merge into fewer rows. CSV uses standard RFC 4180 quoting (records may span lines, up to
`max_line_bytes` in all); a record that fails to parse (an unbalanced quote) is reported on its first line and
reading starts again on the next line, so the rows after it are not swallowed. Every row must have as many
fields as the header (or, without a header, as the first row): an extra field is an error, never dropped.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Generator, Iterator, Optional

from tfpipe.text.readers.base import DataError, ErrorLog, Record
from tfpipe.text.readers.lines import iter_lines, scan_lines


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


class _Unreadable(Exception):
    """A CSV record ran into a line that could not be read (already reported) or past the length limit."""


def _csv_rows(path: Path, log: ErrorLog) -> Iterator[tuple[int, list[str]]]:
    """`(first line, fields)` per CSV record. After a bad record the file is read again from the line after its
    first one (by byte offset: nothing is buffered), so one unbalanced quote costs one record, not the rest."""
    # The csv module caps a field at 128 KiB by default (a process-wide setting); the record limit here is ours.
    csv.field_size_limit(max(csv.field_size_limit(), log.max_line_bytes))
    start, reported = (0, 0), 0
    while start is not None:
        lines = scan_lines(path, log, True, True, start, reported)  # csv itself rejects a CR outside quotes
        try:
            start, reported = yield from _records_until_a_bad_one(path, log, lines, reported)
        finally:
            lines.close()


def _records_until_a_bad_one(path: Path, log: ErrorLog, lines: Iterator[tuple[int, Optional[str], int]],
                             reported: int) -> Generator[tuple[int, list[str]], None, tuple]:
    """Yields records; returns `(where to read again, last line reported)`, or `(None, ...)` at the end."""
    # The record being parsed: its first line (number, text, offset after it) and its bytes so far.
    first, first_text, after_first, size, fresh = 0, "", 0, 0, True

    def feed() -> Iterator[str]:
        nonlocal reported, first, first_text, after_first, size, fresh
        for number, text, end in lines:
            reported = max(reported, number)
            if fresh:
                if text is None:  # unreadable, and already reported: the next record starts after it
                    continue
                first, first_text, after_first, size, fresh = number, text, end, 0, False
            elif text is None:
                raise _Unreadable(f"it runs into line {number}, which is unreadable")
            else:  # a record over several lines is bounded as a line is (a first line alone is, already)
                size += (0 if size else len(first_text.encode("utf-8"))) + 1 + len(text.encode("utf-8"))
                if size > log.max_line_bytes:
                    raise _Unreadable(f"it spans more than {log.max_line_bytes} bytes (--max-line-bytes) by line "
                                      f"{number}: an unbalanced quote?")
            yield text + "\n"

    reader = csv.reader(feed(), strict=True)
    while True:
        fresh = True
        try:
            row = next(reader)
        except StopIteration:
            return None, reported
        except (csv.Error, _Unreadable) as exc:
            log.report(DataError(path, first, f"malformed CSV: {exc} (in the record that starts on this line)",
                                 "csv"))
            return (after_first, first), reported
        yield first, row


def _split_rows(path: Path, fmt: str, log: ErrorLog) -> Iterator[tuple[int, list[str]]]:
    if fmt == "tsv":
        return ((number, line.split("\t")) for number, line in iter_lines(path, log))
    return _csv_rows(path, log)


def _read_header(path: Path, rows: Iterator[tuple[int, list[str]]], log: ErrorLog) -> list[str]:
    first = next(rows, None)
    if first is None:
        raise DataError(path, 1, "empty file: expected a header line", "file")
    if first[0] != 1:  # the header itself was unreadable: no row may silently take its place
        reason = log.errors[-1].reason if log.errors else "unreadable header line"
        raise DataError(path, 1, f"{reason} (in the header, which cannot be skipped)", "file")
    header = [h.strip() for h in first[1]]
    seen: dict[str, int] = {}
    for i, name in enumerate(header):
        if name in seen:
            raise DataError(path, 1, f"duplicate column name {name!r} in the header (columns {seen[name] + 1} and "
                            f"{i + 1}): which one is meant cannot be told", "column")
        seen[name] = i
    return header


def read_delimited(
    path: str | Path,
    fmt: str,
    text_column: Optional[str],
    text_pair_column: Optional[str] = None,
    label_column: Optional[str] = None,
    no_header: bool = False,
    log: Optional[ErrorLog] = None,
) -> Iterator[Record]:
    """Yields one `Record` per data row; rows with missing or extra fields are reported with their line."""
    path = Path(path)
    log = log or ErrorLog()
    rows = _split_rows(path, fmt, log)
    header = None if no_header else _read_header(path, rows, log)
    if text_column is None:
        raise DataError(path, 1, "no text column given (--text-column)", "column")
    columns = {
        "text": _resolve(path, header, text_column, "text"),
        "text_pair": _resolve(path, header, text_pair_column, "text pair"),
        "label": _resolve(path, header, label_column, "label"),
    }
    needed = max(i for i in columns.values() if i is not None) + 1
    names = header or [str(i) for i in range(needed)]
    width, width_from = (len(header), "as in the header") if header else (None, "")
    for number, row in rows:
        if row == [""] or not row:
            log.notes["blank lines"] += 1
            continue
        if header is not None and row[0].strip() == header[0] and [f.strip() for f in row] == header:
            log.report(DataError(path, number, "the header line again (files concatenated?)", "repeated header"))
            continue
        if len(row) < needed:
            missing = [names[i] if i < len(names) else str(i) for i in columns.values()
                       if i is not None and i >= len(row)]
            log.report(DataError(path, number, f"expected at least {needed} fields, got {len(row)}; "
                                 f"missing column(s): {', '.join(missing)}", "missing column"))
            continue
        if width is None:
            width, width_from = len(row), f"as on line {number}"
        if len(row) != width:
            extra = f": extra field(s) {row[width:]!r}"[:120] if len(row) > width else ""
            log.report(DataError(path, number, f"expected {width} fields ({width_from}), got "
                                 f"{len(row)}{extra}", "field count"))
            continue
        values = {k: (row[i] if i is not None else None) for k, i in columns.items()}
        yield Record(values["text"], values["text_pair"], values["label"], str(path), number)
