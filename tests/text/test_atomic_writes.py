"""vocab.txt and labels.txt are written whole or not at all: a writer the kernel stops mid-write (at its file-size
limit) leaves the previous file, which still loads, under the final name."""

from __future__ import annotations

import pytest

from tests.killing import killed_at_byte
from tfpipe.config.atomic import is_temporary
from tfpipe.text.labels import LabelVocab
from tfpipe.text.tokenizer import WordPieceTokenizer
from tfpipe.text.vocab import write_vocabulary

WRITERS = {
    "vocab.txt": ("from tfpipe.text.vocab import write_vocabulary\n"
                  "tokens = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] + ['word%d' % i for i in range(50_000)]",
                  "write_vocabulary(tokens, {path!r})"),
    "labels.txt": ("from tfpipe.text.labels import LabelVocab\n"
                   "labels = LabelVocab(['label%d' % i for i in range(50_000)])",
                   "labels.save({path!r})"),
}


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_writer_stopped_mid_write_keeps_the_previous_file(tmp_path, name, tiny_vocab_file):
    path = tmp_path / name
    if name == "vocab.txt":
        write_vocabulary(tiny_vocab_file.read_text().split(), path)
    else:
        LabelVocab(["neg", "pos"]).save(path)
    before = path.read_text()
    setup, write = WRITERS[name]
    killed_at_byte(setup, write.format(path=str(path)), limit=64 * 1024, cwd=tmp_path)
    assert path.read_text() == before
    if name == "vocab.txt":
        assert WordPieceTokenizer(path).vocabulary_size == len(before.split())
    else:
        assert LabelVocab.load(path).labels == ["neg", "pos"]
    [left] = [p for p in tmp_path.iterdir() if is_temporary(p.name)]  # what the stopped write had done
    assert left.name.startswith(f".{name}.tmp-") and left.stat().st_size == 64 * 1024

