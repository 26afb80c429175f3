"""The spaCy corpus pass: sentence and word segmentation with `spacy.blank(lang)` + `sentencizer`.

Texts stream through `nlp.pipe(batch_size, n_process)` with a progress bar, so memory stays flat as the
corpus grows. No trained pipeline is needed (nothing is downloaded).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Iterable, Iterator, Optional, TypeVar

from tqdm import tqdm

from tfpipe.config.schemas import SpacyConfig

if TYPE_CHECKING:
    import spacy

C = TypeVar("C")


@functools.lru_cache(maxsize=8)
def blank_pipeline(lang: str = "en", sentences: bool = True, max_length: int = 1_000_000) -> spacy.Language:
    """A blank spaCy pipeline (tokenizer only) with the rule-based sentencizer when `sentences`."""
    import spacy  # here, not at module level: fine-tuning and evaluation reach this module but never run spaCy

    try:
        nlp = spacy.blank(lang)
    except ImportError as exc:  # unknown language codes raise ImportError in spaCy
        raise ValueError(f"spacy.lang: {lang!r} is not a language spaCy knows ({exc})") from None
    if sentences:
        nlp.add_pipe("sentencizer")
    nlp.max_length = max_length
    return nlp


class SpacyPass:
    """Streams texts through spaCy and yields their sentences or words.

    Args:
        config: `SpacyConfig` (language, batch size, processes).
        progress: show a tqdm bar (on stderr).

    Examples:
    >>> list(SpacyPass().sentences(["One sentence. Another one!"]))
    [['One sentence.', 'Another one!']]
    """

    def __init__(self, config: Optional[SpacyConfig] = None, progress: bool = False) -> None:
        self.config = config or SpacyConfig()
        self.nlp = blank_pipeline(self.config.lang, True, self.config.max_length)
        self.progress = progress

    def _docs(self, items: Iterable[tuple[str, C]], total: Optional[int], desc: str):
        docs = self.nlp.pipe(items, as_tuples=True, batch_size=self.config.batch_size,
                             n_process=self.config.n_process)
        return tqdm(docs, total=total, desc=desc, unit="text", disable=not self.progress, mininterval=1.0)

    def sentences_with_context(
        self, items: Iterable[tuple[str, C]], total: Optional[int] = None
    ) -> Iterator[tuple[list[str], C]]:
        """`(text, context)` pairs to `(sentences, context)`; context travels with each text."""
        for doc, context in self._docs(items, total, "spaCy sentences"):
            yield [s.text.strip() for s in doc.sents if s.text.strip()], context

    def sentences(self, texts: Iterable[str], total: Optional[int] = None) -> Iterator[list[str]]:
        for sents, _ in self.sentences_with_context(((t, None) for t in texts), total):
            yield sents

    def words(self, texts: Iterable[str], total: Optional[int] = None) -> Iterator[list[str]]:
        """Word segmentation (spaCy tokens, whitespace tokens dropped)."""
        for doc, _ in self._docs(((t, None) for t in texts), total, "spaCy words"):
            yield [t.text for t in doc if not t.is_space]

    def stop_words(self) -> frozenset[str]:
        return frozenset(self.nlp.Defaults.stop_words)
