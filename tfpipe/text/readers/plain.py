"""Plain-text corpus reader: one sentence or paragraph per line, grouped into documents.

Documents are separated by blank lines, or, with `doc_boundary_regex`, by lines that match it (WikiText's
` = Title = ` headings; the heading lines are dropped and blank lines are then just paragraph breaks).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from tfpipe.text.readers.base import ErrorLog, Record, counted
from tfpipe.text.readers.lines import iter_lines


@dataclass
class Document:
    lines: list[str]
    source: str
    line: int  # first line of the document


def read_documents(
    path: str | Path,
    doc_boundary_regex: Optional[str] = None,
    drop_regex: Optional[str] = None,
    log: Optional[ErrorLog] = None,
) -> Iterator[Document]:
    """Yields documents in file order; dropped heading lines are counted in `log.notes`, documents in
    `log.kept`. A file without any text is an error."""
    log = log or ErrorLog()
    return counted(_documents(path, doc_boundary_regex, drop_regex, log), path, log, "no text in the file")


def _documents(path: str | Path, doc_boundary_regex: Optional[str], drop_regex: Optional[str], log: ErrorLog
               ) -> Iterator[Document]:
    boundary = re.compile(doc_boundary_regex) if doc_boundary_regex else None
    drop = re.compile(drop_regex) if drop_regex else None
    lines: list[str] = []
    first = 0
    for number, line in iter_lines(path, log):
        if boundary is not None and boundary.search(line):
            log.notes["document boundary lines"] += 1
            if lines:
                yield Document(lines, str(path), first)
            lines = []
            continue
        if drop is not None and drop.search(line):
            log.notes["dropped lines"] += 1
            continue
        if not line.strip():
            if boundary is None and lines:
                yield Document(lines, str(path), first)
                lines = []
            continue
        if not lines:
            first = number
        lines.append(line.strip())
    if lines:
        yield Document(lines, str(path), first)


def read_text_records(path: str | Path, log: Optional[ErrorLog] = None) -> Iterator[Record]:
    """Each non-blank line as an unlabeled record (for inspection and tokenization)."""
    log = log or ErrorLog()
    for number, line in iter_lines(path, log):
        if line.strip():
            yield Record(line, source=str(path), line=number)
        else:
            log.notes["blank lines"] += 1
