"""CoNLL reader (`word ... tag` per line, blank line between sentences, `-DOCSTART-` between documents).

Tags must be valid BIO (IOB2): `O`, `B-X`, or `I-X` continuing a `B-X`/`I-X` of the same type. Every word line
has the column count of the file's first word line: a line with more (a word with a space in it, say) would
otherwise lose a piece of its word without a trace.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, Optional, Sequence

from tfpipe.text.readers.base import DataError, ErrorLog, TokenRecord
from tfpipe.text.readers.lines import iter_lines

_TAG = re.compile(r"^(O|[BI]-\S+)$")


def bio_error(tags: Sequence[str]) -> Optional[tuple[int, str]]:
    """The first position that breaks BIO (IOB2), with the reason; None when the sequence is valid."""
    previous = "O"
    for i, tag in enumerate(tags):
        if not _TAG.match(tag):
            return i, f"tag {tag!r} is not O, B-TYPE or I-TYPE"
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            return i, f"{tag} follows {previous}: not valid BIO (an I- tag must continue B-/I- of its type)"
        previous = tag
    return None


def read_conll(
    path: str | Path,
    word_column: int = 0,
    tag_column: int = -1,
    with_tags: bool = True,
    log: Optional[ErrorLog] = None,
) -> Iterator[TokenRecord]:
    """Yields one `TokenRecord` per sentence; a sentence with a bad line or bad BIO is reported whole."""
    path = Path(path)
    log = log or ErrorLog()
    words: list[str] = []
    tags: list[str] = []
    lines: list[int] = []
    broken: Optional[DataError] = None
    width: Optional[tuple[int, int]] = None  # (columns, line) of the first word line
    counted = False  # the sentence holds a line already reported (bad UTF-8): drop it without a second count

    def flush() -> Iterator[TokenRecord]:
        nonlocal broken, counted
        if broken is not None:
            log.report(broken)
        elif counted:
            pass
        elif words:
            problem = bio_error(tags) if with_tags else None
            if problem:
                index, reason = problem
                log.report(DataError(path, lines[index], reason, "invalid BIO"))
            else:
                yield TokenRecord(list(words), list(tags) if with_tags else None, str(path), lines[0], list(lines))
        words.clear(), tags.clear(), lines.clear()
        broken, counted = None, False

    for number, line in iter_lines(path, log, mark_bad=True):
        if line is None:
            counted = True
            continue
        fields = line.split()
        if not fields:
            yield from flush()
            continue
        if fields[0] == "-DOCSTART-":
            log.notes["-DOCSTART- lines"] += 1
            yield from flush()
            continue
        needed = max(word_column, tag_column) + 1 if tag_column >= 0 else max(word_column + 1, -tag_column)
        if with_tags and (len(fields) < 2 or len(fields) < needed):
            if broken is None:
                broken = DataError(path, number, f"expected a word and a tag column, got {len(fields)} field(s): "
                                   f"{line.strip()!r}", "missing column")
            continue
        width = width or (len(fields), number)
        if len(fields) != width[0]:
            if broken is None:
                broken = DataError(path, number, f"expected {width[0]} columns (as on line {width[1]}), got "
                                   f"{len(fields)}: {line.strip()!r}"[:200], "field count")
            continue
        words.append(fields[word_column])
        tags.append(fields[tag_column] if with_tags else "O")
        lines.append(number)
    yield from flush()
