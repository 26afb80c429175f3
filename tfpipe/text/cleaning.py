"""Python-side text cleaning for corpus preparation (never for fine-tuning inputs, which stay in-graph).

Unicode normalization, HTML tag/entity stripping, control characters, whitespace, exact-duplicate removal,
and for analysis only: lower-casing and spaCy stop-word removal.
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from typing import Iterable, Iterator, Optional

from tfpipe.config.schemas import CleaningConfig

# Only real HTML element names count as tags: corpora use angle brackets for their own markers (WikiText's
# `<unk>`), and a comparison like `x<y and z>w` is not markup either.
_HTML_ELEMENTS = (
    "a|abbr|address|article|aside|b|bdi|bdo|blockquote|body|br|button|caption|cite|code|col|colgroup|dd|del|"
    "details|dfn|div|dl|dt|em|figcaption|figure|font|footer|form|h[1-6]|head|header|hr|html|i|iframe|img|input|"
    "ins|kbd|label|legend|li|link|main|mark|meta|nav|noscript|ol|option|p|pre|q|s|samp|script|section|select|"
    "small|source|span|strike|strong|style|sub|summary|sup|table|tbody|td|textarea|tfoot|th|thead|time|title|tr|"
    "tt|u|ul|var|video|wbr"
)
_TAG = re.compile(rf"<\s*/?\s*(?:{_HTML_ELEMENTS})(?:\s[^<>]*)?/?\s*>", re.IGNORECASE)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_SPACES = re.compile(r"\s+")


def _is_control(ch: str) -> bool:
    return ch not in "\t\n\r" and unicodedata.category(ch)[0] == "C"


def clean_text(text: str, config: Optional[CleaningConfig] = None, stop_words: frozenset[str] = frozenset()) -> str:
    """Cleans one text according to `config`.

    Examples:
    >>> clean_text("<p>Caf\\u00e9 &amp; bar</p>\\x07  ok")
    'Café & bar ok'
    """
    config = config or CleaningConfig()
    if config.strip_html:
        text = _COMMENT.sub(" ", text)
        text = _TAG.sub(" ", text)
        text = html.unescape(text)
    if config.unicode_form != "none":
        text = unicodedata.normalize(config.unicode_form, text)
    if config.strip_control:
        text = "".join(" " if ch in "\t\n\r" else ch for ch in text if not _is_control(ch))
    if config.normalize_whitespace:
        text = _SPACES.sub(" ", text).strip()
    if config.lowercase:
        text = text.lower()
    if config.remove_stop_words and stop_words:
        text = " ".join(w for w in text.split() if w.lower() not in stop_words)
    return text


def line_digest(text: str) -> bytes:
    """The 16-byte digest by which exact duplicates are recognised (here and in the Beam pipelines)."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


class Deduplicator:
    """Remembers 16-byte digests of texts seen, so exact duplicates are dropped in bounded memory per text."""

    def __init__(self) -> None:
        self._seen: set[bytes] = set()
        self.duplicates = 0

    def is_new(self, text: str) -> bool:
        digest = line_digest(text)
        if digest in self._seen:
            self.duplicates += 1
            return False
        self._seen.add(digest)
        return True


def clean_lines(
    lines: Iterable[str], config: Optional[CleaningConfig] = None, stop_words: frozenset[str] = frozenset(),
    dedupe: Optional[Deduplicator] = None,
) -> Iterator[str]:
    """Cleans a stream of lines, dropping those left empty and (with `config.dedupe`) exact duplicates."""
    config = config or CleaningConfig()
    if config.dedupe and dedupe is None:
        dedupe = Deduplicator()
    for line in lines:
        text = clean_text(line, config, stop_words)
        if text and (dedupe is None or not config.dedupe or dedupe.is_new(text)):
            yield text
