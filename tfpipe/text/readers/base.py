"""Records, errors and the error policy shared by every reader.

Every bad record is a `DataError` naming `file:line` and the reason. Under `on_error="raise"` the first one
stops the read; under `"skip"` it is counted in the `ErrorLog` and the read goes on. Nothing is dropped
without being counted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

MAX_KEPT_ERRORS = 1000


class DataError(ValueError):
    """A bad input record: `path:line: reason`. `kind` groups errors in reports."""

    def __init__(self, path: str | Path, line: int, reason: str, kind: str = "invalid record") -> None:
        self.path, self.line, self.reason, self.kind = str(path), line, reason, kind
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {reason}")


@dataclass
class Record:
    """One text (or text pair) example; `label` keeps the original string."""

    text: str
    text_pair: Optional[str] = None
    label: Optional[str] = None
    source: str = ""
    line: int = 0


@dataclass
class TokenRecord:
    """One sentence of words with optional per-word BIO tags."""

    words: list[str]
    tags: Optional[list[str]] = None
    source: str = ""
    line: int = 0
    word_lines: Optional[list[int]] = None  # the line of every word, where the format has one


@dataclass
class ErrorLog:
    """Applies the error policy and counts what was skipped, by kind."""

    policy: str = "raise"
    errors: list[DataError] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)  # counted, not errors (blank lines, -DOCSTART-, ...)

    def __post_init__(self) -> None:
        if self.policy not in ("raise", "skip"):
            raise ValueError(f"on_error: {self.policy!r} is not allowed; allowed values: raise, skip")

    def report(self, error: DataError) -> None:
        if self.policy == "raise":
            raise error
        self.skipped[error.kind] += 1
        if len(self.errors) < MAX_KEPT_ERRORS:
            self.errors.append(error)

    @property
    def num_errors(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> dict:
        return {
            "skipped": dict(self.skipped),
            "notes": dict(self.notes),
            "first_errors": [str(e) for e in self.errors[:20]],
        }


def iter_lines(path: str | Path, log: ErrorLog, mark_bad: bool = False) -> Iterator[tuple[int, Optional[str]]]:
    """Yields `(line_number, text)` with line ends (LF or CRLF) and a leading BOM removed.

    Lines that are not valid UTF-8 are reported with their line number and byte offset; with `mark_bad`
    they are then yielded as `(line_number, None)`, for readers whose records span lines.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, 0, "file not found" if not path.exists() else "not a regular file", "file")
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            raw = raw.rstrip(b"\n").rstrip(b"\r")
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                log.report(DataError(path, number, f"invalid UTF-8 at byte {exc.start} of the line", "encoding"))
                if mark_bad:
                    yield number, None
