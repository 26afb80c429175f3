"""The spaCy corpus pass: sentence segmentation, documents, cleaning, de-duplication, multiprocessing."""

from __future__ import annotations

from tests.conftest import shared_path
from tfpipe.config import WIKITEXT_HEADING_REGEX, WIKITEXT_TITLE_REGEX, ReaderConfig, SpacyConfig
from tfpipe.text.corpus import CorpusStats, iter_sentence_documents, prepare_corpus
from tfpipe.text.readers import read_documents
from tfpipe.text.spacy_pass import SpacyPass


def test_sentences_and_words():
    spacy_pass = SpacyPass()
    assert list(spacy_pass.sentences(["Dr. Smith arrived. He sat down! Did he?"])) == [
        ["Dr. Smith arrived.", "He sat down!", "Did he?"]]
    assert list(spacy_pass.words(["Don't stop  now."])) == [["Do", "n't", "stop", "now", "."]]
    assert "the" in spacy_pass.stop_words()


def test_documents_by_blank_lines_and_cleaning(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("<p>First doc.</p> It has &amp; two sentences.\nSecond line here.\n\n\n"
                      "Another doc. Short.\nSecond line here.\n", encoding="utf-8")
    stats = CorpusStats()
    docs = list(iter_sentence_documents([corpus], stats=stats))
    assert docs == [["First doc.", "It has & two sentences.", "Second line here."], ["Another doc.", "Short."]]
    assert stats.duplicates == 1 and stats.documents == 2 and stats.sentences == 5
    out = tmp_path / "out" / "corpus.txt"
    prepare_corpus([corpus], out)
    assert out.read_text() == ("First doc.\nIt has & two sentences.\nSecond line here.\n\nAnother doc.\nShort.\n")
    assert [d.lines for d in read_documents(out)] == docs  # the output reads back as the same documents


def test_two_processes_give_the_same_sentences(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n\n".join(f"Document {i} starts. It ends here {i}." for i in range(60)), encoding="utf-8")
    one = list(iter_sentence_documents([corpus], spacy=SpacyConfig(n_process=1, batch_size=8)))
    two = list(iter_sentence_documents([corpus], spacy=SpacyConfig(n_process=2, batch_size=8)))
    assert one == two and len(one) == 60


def test_wikitext_article_boundaries():
    path = shared_path("data", "wikitext2", "valid.txt")
    docs = list(read_documents(path, WIKITEXT_TITLE_REGEX, WIKITEXT_HEADING_REGEX))
    assert len(docs) == 60  # one per " = Title = " article
    assert not any(line.lstrip().startswith("=") for doc in docs for line in doc.lines)
    stats = CorpusStats()
    sentences = list(iter_sentence_documents([path], ReaderConfig(doc_boundary_regex=WIKITEXT_TITLE_REGEX,
                                                                  drop_regex=WIKITEXT_HEADING_REGEX), stats=stats))
    assert len(sentences) == 60 and stats.sentences > 7000
