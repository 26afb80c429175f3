"""tfpipe.text.cleaning: HTML, Unicode normalization, control characters, whitespace, stop words, duplicates."""

from __future__ import annotations

import unicodedata

import pytest

from tfpipe.config import CleaningConfig
from tfpipe.text.cleaning import Deduplicator, clean_lines, clean_text
from tfpipe.text.spacy_pass import SpacyPass


@pytest.fixture(scope="module")
def stop_words() -> frozenset[str]:
    return SpacyPass().stop_words()


# --- HTML ---------------------------------------------------------------------------------------------------


def test_html_tags_are_stripped():
    assert clean_text('<p class="intro">Hello <b>world</b></p>') == "Hello world"
    assert clean_text("line<br/>break < / div >end") == "line break end"


def test_html_entities_are_decoded():
    assert clean_text("Fish &amp; chips &#233; &eacute; &#x41; &nbsp;x") == "Fish & chips é é A x"


def test_html_comments_are_removed_even_across_lines():
    assert clean_text("keep <!-- drop\nthis --> this") == "keep this"


def test_decoded_entities_are_not_taken_for_tags():
    # Tags go first, entities are decoded after: "&lt;tag&gt;" is text, and survives as "<tag>".
    assert clean_text("&lt;tag&gt; stays") == "<tag> stays"


def test_comparisons_are_not_tags():
    assert clean_text("1 < 2 and 3 > 2, a<b") == "1 < 2 and 3 > 2, a<b"


def test_strip_html_off_keeps_markup():
    assert clean_text("<b>x</b> &amp;", CleaningConfig(strip_html=False)) == "<b>x</b> &amp;"


# --- Unicode normalization ----------------------------------------------------------------------------------


def test_nfc_composes_but_keeps_compatibility_characters():
    text = clean_text("Cafe\u0301 ＡＢＣ \ufb01ne")
    assert text == "Caf\u00e9 ＡＢＣ \ufb01ne"
    assert unicodedata.is_normalized("NFC", text)


def test_nfkc_folds_fullwidth_letters_and_ligatures():
    config = CleaningConfig(unicode_form="NFKC")
    assert clean_text("ＡＢＣ１２３", config) == "ABC123"
    assert clean_text("\ufb01ne \ufb02ow", config) == "fine flow"
    assert clean_text("Cafe\u0301", config) == "Caf\u00e9"


def test_unicode_form_none_leaves_decomposed_text():
    text = clean_text("Cafe\u0301", CleaningConfig(unicode_form="none"))
    assert text == "Cafe\u0301"
    assert len(text) == 5


# --- control characters and whitespace ----------------------------------------------------------------------


def test_control_and_format_characters_are_removed():
    assert clean_text("a\x00b\x07c\u200bd\ufeffe\x7ff\x1bg") == "abcdefg"


def test_tabs_and_newlines_become_spaces():
    assert clean_text("a\tb\nc\r\nd") == "a b c d"


def test_whitespace_is_collapsed_and_stripped():
    assert clean_text("  many   spaces \u00a0 here\u3000and  there  ") == "many spaces here and there"


def test_strip_control_off_keeps_control_characters():
    assert clean_text("a\x07b", CleaningConfig(strip_control=False)) == "a\x07b"


def test_normalize_whitespace_off_keeps_runs_of_spaces():
    assert clean_text(" a\tb  c ", CleaningConfig(normalize_whitespace=False)) == " a b  c "


def test_default_config_does_not_lowercase():
    assert clean_text("The Cat") == "The Cat"


# --- analysis-only options ----------------------------------------------------------------------------------


def test_spacy_stop_words_are_english_lowercase_words(stop_words):
    assert {"the", "is", "on", "and", "a"} <= stop_words
    assert "cat" not in stop_words


def test_lowercase():
    assert clean_text("The CAT Sat", CleaningConfig(lowercase=True)) == "the cat sat"


def test_stop_word_removal_with_lowercase(stop_words):
    config = CleaningConfig(lowercase=True, remove_stop_words=True)
    assert clean_text("The cat is on the Mat and it sleeps", config, stop_words) == "cat mat sleeps"


def test_stop_word_removal_is_case_insensitive_and_keeps_case(stop_words):
    config = CleaningConfig(remove_stop_words=True)
    assert clean_text("The Cat is ON the Mat", config, stop_words) == "Cat Mat"


def test_stop_words_need_the_option(stop_words):
    assert clean_text("the cat", CleaningConfig(), stop_words) == "the cat"


def test_stop_word_option_without_a_list_changes_nothing():
    assert clean_text("the cat", CleaningConfig(remove_stop_words=True)) == "the cat"


# --- duplicates ---------------------------------------------------------------------------------------------


def test_deduplicator_counts_exact_duplicates():
    dedupe = Deduplicator()
    seen = [dedupe.is_new(t) for t in ["a", "b", "a", "A", "a", "b"]]
    assert seen == [True, True, False, True, False, False]
    assert dedupe.duplicates == 3


def test_clean_lines_drops_duplicates_and_empty_lines():
    lines = ["Hello  world", "", "   ", "<p></p>", "Hello world", "hello world", "\x07", "Other\tline", "Other line"]
    assert list(clean_lines(lines)) == ["Hello world", "hello world", "Other line"]


def test_clean_lines_duplicates_are_judged_after_cleaning():
    lines = ["<b>Café</b>", "Cafe\u0301", "Café &amp; bar", "Café & bar"]
    assert list(clean_lines(lines)) == ["Café", "Café & bar"]


def test_clean_lines_with_a_shared_deduplicator_counts_across_calls():
    dedupe = Deduplicator()
    first = list(clean_lines(["a", "b", "a"], dedupe=dedupe))
    second = list(clean_lines(["b", "c"], dedupe=dedupe))
    assert first == ["a", "b"]
    assert second == ["c"]
    assert dedupe.duplicates == 2


def test_clean_lines_without_dedupe_keeps_duplicates_but_drops_empty_lines():
    config = CleaningConfig(dedupe=False)
    lines = ["same", "", "same", "  same ", "<i></i>"]
    assert list(clean_lines(lines, config)) == ["same", "same", "same"]


def test_clean_lines_dedupe_false_ignores_a_given_deduplicator():
    dedupe = Deduplicator()
    assert list(clean_lines(["x", "x"], CleaningConfig(dedupe=False), dedupe=dedupe)) == ["x", "x"]
    assert dedupe.duplicates == 0


def test_clean_lines_applies_stop_words(stop_words):
    config = CleaningConfig(lowercase=True, remove_stop_words=True)
    # Both lines are "cat" after stop-word removal; the second is a duplicate and the third is empty.
    assert list(clean_lines(["The cat", "a CAT", "the and of"], config, stop_words)) == ["cat"]


def test_clean_lines_is_lazy():
    def source():
        yield "one"
        raise AssertionError("read past the first line")

    assert next(iter(clean_lines(source()))) == "one"


def test_non_html_angle_brackets_are_kept():
    # WikiText's <unk> marker and comparisons are not markup: stripping them would lose words.
    assert clean_text("a species of <unk> lobster and x<y and z>w") == "a species of <unk> lobster and x<y and z>w"
    assert clean_text('<P class="x">Hi</p><br/>') == "Hi"
