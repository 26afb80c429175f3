"""In-graph BERT WordPiece tokenizer: the one tokenizer used by training pipelines and baked into exports.

It composes tensorflow-text ops (regex rewrites, Unicode normalization, `regex_split`,
`FastWordpieceTokenizer`, `ShrinkLongestTrimmer`, `combine_segments`) so the same graph runs in tf.data,
inside Keras models and in TensorFlow Serving, with no `py_function`.

Its rules are those of the reference Hugging Face `BertTokenizer` (basic tokenizer + WordPiece), which differ
from tf-text's own `BertTokenizer` in three places that matter for parity:
- case folding is a plain Unicode lower-casing followed by NFD accent stripping, not NFKC_Casefold
  (fullwidth letters stay fullwidth, `ß` stays `ß`);
- control and format characters (Cc/Cf/Co/Cs, U+FFFD) are deleted, while whitespace (incl. Zs) becomes a space;
- a word longer than 100 *characters* (not bytes) becomes `[UNK]`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import tensorflow as tf
import tensorflow_text as tf_text

# The model-input contract (DESIGN.md): what `encode` feeds every encoder, in the training pipelines, the exports
# and the converted (ONNX / OpenVINO / TensorRT) encoders alike.
MODEL_INPUTS = ("input_word_ids", "input_mask", "input_type_ids")
PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)
MAX_CHARS_PER_WORD = 100

# Whitespace as the reference sees it: \t \n \r and the Zs category become a plain space.
_WHITESPACE = r"[\t\n\r\p{Zs}]"
# Everything else in category C (control, format, private use, surrogates, unassigned) and U+FFFD is
# deleted. RE2 has no \p{Cn}, so C is spelled as "none of the other six categories".
_DELETED = r"[^\p{L}\p{M}\p{N}\p{P}\p{S}\p{Z}]|\x{FFFD}"
_CJK = (
    r"[\x{4E00}-\x{9FFF}\x{3400}-\x{4DBF}\x{20000}-\x{2A6DF}\x{2A700}-\x{2B73F}"
    r"\x{2B740}-\x{2B81F}\x{2B820}-\x{2CEAF}\x{F900}-\x{FAFF}\x{2F800}-\x{2FA1F}]"
)
# Python's str.split() also splits on the line/paragraph separators, which survive cleaning.
_SPLIT_SPACE = r"[ \x{2028}\x{2029}]"
_PUNCTUATION = r"[!-/:-@\[-`{-~\p{P}]"
_SPLIT_PATTERN = f"{_SPLIT_SPACE}|{_PUNCTUATION}|{_CJK}"
_KEEP_PATTERN = f"{_PUNCTUATION}|{_CJK}"


def normalize_text(text: tf.Tensor, lowercase: bool = True) -> tf.Tensor:
    """Cleans and case-folds a string tensor exactly as the reference basic tokenizer does before splitting."""
    text = tf.strings.regex_replace(text, _WHITESPACE, " ")
    text = tf.strings.regex_replace(text, _DELETED, "")
    text = tf_text.normalize_utf8(text, "NFC")
    if lowercase:
        text = tf.strings.lower(text, encoding="utf-8")
        text = tf_text.normalize_utf8(text, "NFD")
        text = tf.strings.regex_replace(text, r"\p{Mn}", "")
    return text


def pre_split(text: tf.Tensor, lowercase: bool = True) -> tf.RaggedTensor:
    """Normalizes then splits `[batch]` strings into `[batch, words]` on whitespace, punctuation and CJK."""
    return tf_text.regex_split(normalize_text(text, lowercase), _SPLIT_PATTERN, _KEEP_PATTERN)


def load_vocabulary(path: str | Path) -> list[str]:
    """Reads a `vocab.txt` (one token per line), checking the special tokens are present."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: vocabulary file not found")
    tokens = path.read_text(encoding="utf-8").splitlines()
    missing = [t for t in SPECIAL_TOKENS if t not in tokens]
    if missing:
        raise ValueError(f"{path}: vocabulary lacks the special tokens {missing}")
    return tokens


def vocabulary_hash(tokens: Sequence[str]) -> str:
    """sha256 of the vocabulary as written to vocab.txt; recorded in manifests and exports."""
    return hashlib.sha256(("\n".join(tokens) + "\n").encode("utf-8")).hexdigest()


class WordPieceTokenizer(tf.Module):
    """BERT WordPiece tokenizer built from tensorflow-text ops, with the reference tokenizer's rules.

    Args:
        vocabulary: the tokens in id order, or the path of a `vocab.txt`.
        lowercase: lower-case and strip accents (uncased models). `False` for cased vocabularies.
        max_chars_per_word: words longer than this many characters become `[UNK]`.

    Examples:
    >>> tok = WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "fox", "##es"])
    >>> tok.tokenize(tf.constant(["The foxes"])).to_list()
    [[5, 6, 7]]
    >>> ids, types = tok.pack([tok.tokenize(tf.constant(["fox"])), tok.tokenize(tf.constant(["the"]))])
    >>> ids.to_list(), types.to_list()
    ([[2, 6, 3, 5, 3]], [[0, 0, 0, 1, 1]])
    """

    def __init__(
        self,
        vocabulary: Sequence[str] | str | Path,
        lowercase: bool = True,
        max_chars_per_word: int = MAX_CHARS_PER_WORD,
    ) -> None:
        super().__init__(name="wordpiece_tokenizer")
        if isinstance(vocabulary, (str, Path)):
            vocabulary = load_vocabulary(vocabulary)
        self.vocabulary = list(vocabulary)
        self.lowercase = lowercase
        self.max_chars_per_word = max_chars_per_word
        ids = {t: i for i, t in enumerate(self.vocabulary)}
        self.pad_id, self.unk_id = ids[PAD], ids[UNK]
        self.cls_id, self.sep_id, self.mask_id = ids[CLS], ids[SEP], ids[MASK]
        self.special_ids = tuple(ids[t] for t in SPECIAL_TOKENS)
        # Byte limit high enough never to bite before the character limit (4 bytes per UTF-8 character).
        self._wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=self.vocabulary,
            suffix_indicator="##",
            max_bytes_per_word=4 * max_chars_per_word + 4,
            token_out_type=tf.int32,
            unknown_token=UNK,
            no_pretokenization=True,
            support_detokenization=False,
        )

    @property
    def vocabulary_size(self) -> int:
        return len(self.vocabulary)

    @property
    def hash(self) -> str:
        return vocabulary_hash(self.vocabulary)

    def split_words(self, text: tf.Tensor) -> tf.RaggedTensor:
        """`[batch]` strings to `[batch, words]`: the pre-split every other method and the vocab builder use."""
        return pre_split(text, self.lowercase)

    def _wordpieces(self, words: tf.RaggedTensor) -> tf.RaggedTensor:
        """Pre-split words `[..., words]` to `[..., words, pieces]`; over-long words become one `[UNK]`."""
        flat = words.flat_values
        too_long = tf.strings.length(flat, unit="UTF8_CHAR") > self.max_chars_per_word
        flat = tf.where(too_long, tf.constant(UNK), flat)
        return words.with_flat_values(self._wordpiece.tokenize(flat))

    def tokenize(self, text: tf.Tensor) -> tf.RaggedTensor:
        """`[batch]` strings to `[batch, tokens]` WordPiece ids, no special tokens."""
        text = tf.convert_to_tensor(text, tf.string)
        return self._wordpieces(self.split_words(text)).merge_dims(-2, -1)

    def tokenize_with_offsets(self, text: tf.Tensor) -> tuple[tf.RaggedTensor, tf.RaggedTensor, tf.RaggedTensor]:
        """`tokenize` plus every piece's byte span `[start, end)` in the original, un-normalized string.

        Returns `(ids, starts, ends)`, all `[batch, tokens]`; `ids` always equals `tokenize(text)`. A piece's span is
        exact (sub-word) where normalization kept the width of every character of its word (ASCII, fullwidth,
        CJK, emoji); where it did not (accents stripped, control characters deleted), every piece of the word
        spans the whole original word, and an over-long word's `[UNK]` spans the word. Where that would need a
        word normalized alone, but a rule looks across punctuation (the final sigma of lower-casing, `=` + U+0338
        composing to `≠` when cased), the pieces span their whole whitespace-separated chunk.

        Examples:
        >>> tok = WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "fox", "##es"])
        >>> ids, starts, ends = tok.tokenize_with_offsets(tf.constant(["The  Fóxes"]))
        >>> ids.to_list(), starts.to_list(), ends.to_list()
        ([[5, 6, 7]], [[0, 5, 5]], [[3, 11, 11]])
        """
        text = tf.convert_to_tensor(text, tf.string)

        def same_widths(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
            # Same characters' UTF-8 widths, in order: then byte offsets into `b` are byte offsets into `a`.
            _, a_at = tf.strings.unicode_decode_with_offsets(a, "UTF-8")
            _, b_at = tf.strings.unicode_decode_with_offsets(b, "UTF-8")
            same = tf.logical_and(tf.equal(a_at.row_lengths(), b_at.row_lengths()),
                                  tf.equal(tf.strings.length(a), tf.strings.length(b)))
            # Compare the k-th character offsets of rows of equal length, with flat gathers only (fast).
            rows = a_at.value_rowids()
            b_index = tf.range(tf.size(a_at.flat_values, tf.int64)) + tf.gather(
                b_at.row_starts() - a_at.row_starts(), rows)
            b_flat = tf.concat([b_at.flat_values, [-1]], 0)  # a row of unequal length reads -1
            b_index = tf.where(tf.gather(same, rows), b_index, tf.size(b_at.flat_values, tf.int64))
            differ = tf.cast(tf.not_equal(a_at.flat_values, tf.gather(b_flat, b_index)), tf.int32)
            return tf.logical_and(same, tf.math.unsorted_segment_max(differ, rows, tf.size(a)) <= 0)

        def split(originals: tf.Tensor, base: tf.Tensor) -> tuple[tf.Tensor | tf.RaggedTensor, ...]:
            """Normalizes and splits flat `originals` (at byte `base` of their row) to words `[n, words]`, with their
            original spans and whether each is exact (else the whole original's), and whether each original is."""
            normalized = normalize_text(originals, self.lowercase)
            words, starts, ends = tf_text.regex_split_with_offsets(normalized, _SPLIT_PATTERN, _KEEP_PATTERN)
            exact = same_widths(originals, normalized)
            rows = words.value_rowids()
            word_exact, word_base = tf.gather(exact, rows), tf.gather(base, rows)
            end = tf.gather(base + tf.cast(tf.strings.length(originals), base.dtype), rows)
            starts = tf.where(word_exact, word_base + starts.flat_values, word_base)
            ends = tf.where(word_exact, word_base + ends.flat_values, end)
            return (words, words.with_flat_values(starts), words.with_flat_values(ends),
                    words.with_flat_values(word_exact), exact)

        # Whitespace splits words and blocks every context rule of normalization (NFC composition, final sigma),
        # so normalizing each whitespace-separated chunk alone gives exactly the words `tokenize` sees.
        space = r"[\t\n\r\p{Zs}\x{2028}\x{2029}]"
        # regex_split stops at a NUL byte; U+0001 is deleted by normalization just the same, and as wide.
        text = tf.strings.regex_replace(text, r"\x00", "\x01")
        chunks, chunk_starts, _ = tf_text.regex_split_with_offsets(text, space)
        originals, base = chunks.flat_values, chunk_starts.flat_values
        words, *coarse, chunk_exact = split(originals, base)
        # A chunk whose normalization changed character widths gives its words only its whole span. Finer: split it
        # on punctuation and CJK first and normalize each part alone ("Zürich," → "zurich" spanning "Zürich", and
        # an exact ","), then split again (a part can normalize to a split character: U+1FEF becomes "`"). A rule
        # that looks across a split (final sigma, `=` + U+0338 → `≠` when cased) can make the parts' words differ
        # from the chunk's; such a chunk keeps its coarse spans.
        redo = tf.where(tf.logical_not(chunk_exact))[:, 0]
        parts, part_starts, _ = tf_text.regex_split_with_offsets(tf.gather(originals, redo), _SPLIT_PATTERN,
                                                                 _KEEP_PATTERN)
        part_base = tf.gather(tf.gather(base, redo), parts.value_rowids()) + part_starts.flat_values
        fine = [parts.with_flat_values(f).merge_dims(1, 2) for f in split(parts.flat_values, part_base)[:4]]
        redone = [tf.gather(c, redo) for c in [words] + coarse]
        same = tf.logical_and(tf.equal(fine[0].row_lengths(), redone[0].row_lengths()),
                              tf.equal(tf.strings.reduce_join(fine[0], axis=1, separator=" "),
                                       tf.strings.reduce_join(redone[0], axis=1, separator=" ")))
        take_fine = fine[0].with_flat_values(tf.gather(same, fine[0].value_rowids()))
        take_coarse = redone[0].with_flat_values(tf.gather(tf.logical_not(same), redone[0].value_rowids()))
        mask = tf.concat([take_fine, take_coarse], axis=1)
        # The redone chunks keep their number of words, so their spans go back in place of the coarse ones.
        at = tf.ragged.range(tf.gather(words.row_starts(), redo), tf.gather(words.row_limits(), redo)).flat_values
        word_start, word_end, word_exact = (
            tf.tensor_scatter_nd_update(c.flat_values, at[:, None],
                                        tf.ragged.boolean_mask(tf.concat([f, r], axis=1), mask).flat_values)
            for f, r, c in zip(fine[1:], redone[1:], coarse))
        flat = words.flat_values
        too_long = tf.strings.length(flat, unit="UTF8_CHAR") > self.max_chars_per_word
        ids, starts, ends = self._wordpiece.tokenize_with_offsets(tf.where(too_long, tf.constant(UNK), flat))
        rows = ids.value_rowids()
        exact = tf.gather(tf.logical_and(word_exact, tf.logical_not(too_long)), rows)
        word_start, word_end = tf.gather(word_start, rows), tf.gather(word_end, rows)
        starts = tf.where(exact, word_start + starts.flat_values, word_start)
        ends = tf.where(exact, word_start + ends.flat_values, word_end)

        def nest(values: tf.Tensor) -> tf.RaggedTensor:  # all pieces → [batch, chunks, words, pieces] → [batch, tokens]
            return chunks.with_flat_values(words.with_flat_values(ids.with_flat_values(values))).merge_dims(1, 3)

        return nest(ids.flat_values), nest(starts), nest(ends)

    def tokenize_words(self, words: tf.RaggedTensor) -> tf.RaggedTensor:
        """Given words `[batch, words]` (CoNLL, say) to `[batch, words, pieces]`.

        Each given word is normalized and pre-split like running text (`U.S.` is four pre-split words), and
        all its pieces stay under it, so labels can be aligned to the first piece of every given word.
        """
        per_word = self.tokenize(words.flat_values)
        return words.with_flat_values(per_word)

    def word_pieces(self, words: tf.RaggedTensor, max_pieces: int | None = None) -> tf.RaggedTensor:
        """`tokenize_words` with a position for every word's tag: a word with no pieces (only control characters,
        say) gets `[UNK]`, and a word keeps at most `max_pieces` pieces.

        Examples:
        >>> tok = WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "fox", "##es"])
        >>> tok.word_pieces(tf.ragged.constant([["foxes", "\\x00"]])).to_list()
        [[[5, 6], [1]]]
        >>> tok.word_pieces(tf.ragged.constant([["foxes"]]), max_pieces=1).to_list()
        [[[5]]]
        """
        pieces = self.tokenize_words(words)  # [batch, words, pieces]
        per_word = pieces.values
        lengths = per_word.row_lengths()
        unk = tf.RaggedTensor.from_tensor(tf.fill([tf.shape(lengths)[0], 1], self.unk_id))
        keep = tf.maximum(lengths, 1) if max_pieces is None else tf.clip_by_value(lengths, 1, max_pieces)
        mask = tf.ragged.range(lengths + 1) < tf.expand_dims(keep, 1)
        return pieces.with_values(tf.ragged.boolean_mask(tf.concat([per_word, unk], axis=1), mask))

    def pack(
        self, segments: Sequence[tf.RaggedTensor], max_length: int | None = None
    ) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
        """`[CLS] a [SEP] (b [SEP])` with segment ids; over `max_length`, the longest segment is trimmed first."""
        segments = list(segments)
        if max_length is not None:
            budget = max_length - len(segments) - 1
            if budget < len(segments):
                raise ValueError(f"max_length={max_length} leaves no room for {len(segments)} segment(s)")
            if len(segments) == 1:  # the trimmer's while_loop fails shape inference with one segment
                segments = [segments[0][:, :budget]]
            else:
                segments = tf_text.ShrinkLongestTrimmer(budget).trim(segments)
        return tf_text.combine_segments(segments, self.cls_id, self.sep_id)

    def encode(
        self, text: tf.Tensor, text_pair: tf.Tensor | None = None, max_length: int | None = None
    ) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
        """Raw strings (and optional pairs) to packed `input_ids` and `token_type_ids` (ragged)."""
        segments = [self.tokenize(text)]
        if text_pair is not None:
            segments.append(self.tokenize(text_pair))
        return self.pack(segments, max_length)

    def id_to_token(self, ids: Sequence[int]) -> list[str]:
        return [self.vocabulary[i] for i in ids]
