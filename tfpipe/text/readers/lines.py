"""Streamed, bounded line reading with the checks every text format shares (file kind, bytes, encoding).

A line is read at most `max_line_bytes` at a time and the rest of a longer one is skipped in small chunks, so
a single huge line costs no more memory than the limit. File-level problems (missing, a directory, compressed,
UTF-16) stop the read; line-level ones (too long, a byte-order mark or NUL byte inside the file, a stray
carriage return, invalid UTF-8) are `DataError`s with the line number, raised or counted by the `ErrorLog`.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO, Iterator, Optional

from tfpipe.text.readers.base import DataError, ErrorLog

BOM = b"\xef\xbb\xbf"
_CHUNK = 1 << 16
# Leading bytes of files that are not UTF-8 text, and what to do about them.
_MAGIC = (
    (b"\x1f\x8b", "gzip-compressed: decompress it first (gunzip)"),
    (b"PK\x03\x04", "a zip archive: extract the data file first"),
    (b"\xfd7zXZ\x00", "xz-compressed: decompress it first (unxz)"),
    (b"\xff\xfe", "UTF-16 (little-endian byte-order mark): re-encode it as UTF-8"),
    (b"\xfe\xff", "UTF-16 (big-endian byte-order mark): re-encode it as UTF-8"),
)


def open_checked(path: str | Path) -> BinaryIO:
    """The file opened for bytes, after the whole-file checks (fatal under any policy, line 0)."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, 0, "file not found", "file")
    if path.is_dir():
        raise DataError(path, 0, "is a directory, not a data file", "file")
    if not path.is_file():
        raise DataError(path, 0, "not a regular file", "file")
    handle = path.open("rb")
    head = handle.read(8)
    handle.seek(0)
    for magic, problem in _MAGIC:
        if head.startswith(magic):
            handle.close()
            raise DataError(path, 0, f"the file is {problem}", "file")
    return handle


def line_too_long(path: str | Path, number: int, size: int, max_line_bytes: int) -> DataError:
    """The error for a line (or CSV record) over the limit, the same from every reader."""
    return DataError(path, number, f"line of {size} bytes is longer than the limit of {max_line_bytes} "
                     "(--max-line-bytes)", "line too long")


def iter_raw_lines(handle: BinaryIO, max_line_bytes: int, number: int = 0
                   ) -> Iterator[tuple[int, Optional[bytes], int, int]]:
    """`(line_number, bytes with the line end, length without it, offset after it)` from the handle's position
    (`number` lines already read); bytes are None for a line longer than `max_line_bytes`, which is read past
    in chunks and never held whole."""
    offset = handle.tell()
    while True:
        raw = handle.readline(max_line_bytes + 2)  # + room for "\r\n"
        if not raw:
            return
        number += 1
        offset += len(raw)
        if not raw.endswith(b"\n") and len(raw) == max_line_bytes + 2:
            size, tail = len(raw), raw[-2:]
            while chunk := handle.readline(_CHUNK):
                size, tail, offset = size + len(chunk), (tail + chunk)[-2:], offset + len(chunk)
                if chunk.endswith(b"\n"):
                    break
            yield number, None, size - (2 if tail == b"\r\n" else 1 if tail.endswith(b"\n") else 0), offset
            continue
        size = len(raw) - (2 if raw.endswith(b"\r\n") else 1 if raw.endswith(b"\n") else 0)
        yield number, (raw if size <= max_line_bytes else None), size, offset


def _problem(raw: bytes, lone_cr_ok: bool) -> Optional[tuple[str, str]]:
    """`(reason, kind)` for a line's bytes (line end removed) that are not clean UTF-8 text."""
    at = raw.find(BOM)
    if at >= 0:
        return (f"UTF-8 byte-order mark at byte {at} of the line, inside the file (files concatenated?)",
                "byte-order mark")
    at = raw.find(b"\x00")
    if at >= 0:
        return f"NUL byte at byte {at} of the line (a binary or UTF-16 file?)", "NUL byte"
    at = -1 if lone_cr_ok else raw.find(b"\r")
    if at >= 0:
        return f"carriage return (\\r) at byte {at} of the line, not before its line feed", "line ends"
    return None


def iter_lines(path: str | Path, log: ErrorLog, mark_bad: bool = False, lone_cr_ok: bool = False
               ) -> Iterator[tuple[int, Optional[str]]]:
    """Yields `(line_number, text)` with line ends (LF or CRLF) and a BOM at the start of the file removed.

    Bad lines are reported with their line number; with `mark_bad` they are then yielded as
    `(line_number, None)`, for readers whose records span lines. A carriage return that does not end a line is
    an error (CR-only or broken line ends) unless `lone_cr_ok` (CSV, whose parser tells quoted from unquoted).
    """
    for number, text, _ in scan_lines(path, log, mark_bad, lone_cr_ok):
        yield number, text


def scan_lines(path: str | Path, log: ErrorLog, mark_bad: bool = False, lone_cr_ok: bool = False,
               start: tuple[int, int] = (0, 0), reported: int = 0) -> Iterator[tuple[int, Optional[str], int]]:
    """`iter_lines` with the byte offset after each line, from `start` = (byte offset, lines before it), for a
    reader that reads part of a file again; problems of lines up to `reported` are not reported a second time."""
    offset, before = start
    with open_checked(path) as handle:
        handle.seek(offset)
        for number, raw, size, end in iter_raw_lines(handle, log.max_line_bytes, before):
            problem: Optional[tuple[str, str]] = None
            if raw is None:
                error = line_too_long(path, number, size, log.max_line_bytes)
                problem = (error.reason, error.kind)
            else:
                raw = raw[:-1] if raw.endswith(b"\n") else raw
                raw = raw[:-1] if raw.endswith(b"\r") else raw
                if number == 1 and raw.startswith(BOM):
                    raw = raw[len(BOM):]
                problem = _problem(raw, lone_cr_ok)
            if problem is None:
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    problem = (f"invalid UTF-8 at byte {exc.start} of the line", "encoding")
                else:
                    yield number, text, end
                    continue
            if number > reported:
                log.report(DataError(path, number, *problem))
            if mark_bad:
                yield number, None, end
