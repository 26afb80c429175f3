"""Records, errors and the error policy shared by every reader.

Every bad record is a `DataError` naming `file:line` and the reason. Under `on_error="raise"` the first one
stops the read; under `"skip"` it is counted in the `ErrorLog` and the read goes on. Nothing is dropped
without being counted, and a file that gives no record at all is an error, whatever the policy.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, TypeVar

from tfpipe.config.schemas import MAX_LINE_BYTES, ON_ERROR, ReaderConfig

MAX_KEPT_ERRORS = 1000
T = TypeVar("T")


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
    """The error policy (`raise` or `skip`, and the longest line allowed) and the counts of what was read:
    records kept, records skipped by kind, and lines that are not records (`notes`: blank lines, -DOCSTART-)."""

    policy: str = "raise"
    max_line_bytes: int = MAX_LINE_BYTES
    errors: list[DataError] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)
    kept: int = 0

    def __post_init__(self) -> None:
        if self.policy not in ON_ERROR:
            raise ValueError(f"on_error: {self.policy!r} is not allowed; allowed values: {', '.join(ON_ERROR)}")
        if isinstance(self.max_line_bytes, bool) or not isinstance(self.max_line_bytes, int) \
                or self.max_line_bytes < 1:
            raise ValueError(f"max_line_bytes: {self.max_line_bytes!r} is not allowed; it must be an integer >= 1")

    @classmethod
    def for_reader(cls, config: Optional[ReaderConfig] = None) -> "ErrorLog":
        """The log for `config`'s `on_error` and `max_line_bytes`."""
        config = config or ReaderConfig()
        return cls(config.on_error, config.max_line_bytes)

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
        """What the read did, for a run's record (metrics.json, a manifest): counts by kind and the first errors."""
        return {
            "on_error": self.policy,
            "max_line_bytes": self.max_line_bytes,
            "records": self.kept,
            "skipped": dict(sorted(self.skipped.items())),
            "notes": dict(sorted(self.notes.items())),
            "first_errors": [str(e) for e in self.errors[:20]],
        }


def describe_reading(summary: dict) -> str:
    """One line for the terminal from `ErrorLog.summary()`: `N record(s) read, M skipped (kind: count, ...)`."""
    skipped = summary.get("skipped", {})
    line = f"{summary.get('records', 0)} record(s) read, {sum(skipped.values())} skipped"
    if skipped:
        line += " (" + ", ".join(f"{kind}: {n}" for kind, n in sorted(skipped.items())) + ")"
    if summary.get("first_errors"):
        line += f"; first: {summary['first_errors'][0]}"
    return line


def counted(records: Iterator[T], path: str | Path, log: ErrorLog, empty: str = "the file has no records",
            empty_line: int = 0) -> Iterator[T]:
    """`records`, each counted in `log.kept`; a file that gives none raises (there is nothing to use), naming
    what was skipped instead. `empty` (at `empty_line`) says why a file with nothing skipped has no records."""
    before = Counter(log.skipped)
    count = 0
    for record in records:
        count += 1
        log.kept += 1
        yield record
    if count:
        return
    skipped = log.skipped - before
    if skipped:
        kinds = ", ".join(f"{kind}: {n}" for kind, n in sorted(skipped.items()))
        raise DataError(path, 0, f"no valid records: all {sum(skipped.values())} were skipped ({kinds})",
                        "no records")
    raise DataError(path, empty_line, empty, "no records")
