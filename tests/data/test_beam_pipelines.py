"""The corpus stages on Apache Beam (real DirectRunner engine, real files): each transform against the local path's
functions, and WikiText-2 valid end to end: the same bytes locally and on 1 or 2 workers."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import REPO, TINY_VOCAB, shared_path
from tfpipe.cli.main import main
from tfpipe.config import WIKITEXT_HEADING_REGEX, WIKITEXT_TITLE_REGEX, CleaningConfig, PretrainingConfig, ReaderConfig
from tfpipe.data import beam_pipelines as bp
from tfpipe.data.pretraining_data import create_pretraining_data, instance_record
from tfpipe.data.pretraining_examples import InstanceMaker, random_document, tokenize_documents
from tfpipe.text.corpus import CorpusStats, iter_identified_documents, prepare_corpus
from tfpipe.text.keys import document_id, shard_of
from tfpipe.text.tokenizer import WordPieceTokenizer
from tfpipe.text.vocab import count_words

WIKITEXT = ReaderConfig(doc_boundary_regex=WIKITEXT_TITLE_REGEX, drop_regex=WIKITEXT_HEADING_REGEX)
TWO_WORKERS = ["direct_num_workers=2", "direct_running_mode=multi_processing"]
CORPUS = ("The cat sat on the mat. The dog ran fast!\n<p>A cat is good.</p> A dog is bad.\n\n"
          "The movie is very good! It was new.\nThe cat sat on the mat. The dog ran fast!\n\n"
          "John lives in New York. The city is fast.\n\n\n   \n")


def _pipeline() -> test_pipeline.TestPipeline:
    return test_pipeline.TestPipeline(options=bp.pipeline_options("direct"))


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def corpus(tmp_path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text(CORPUS, encoding="utf-8")
    return path


def test_pipeline_options_pass_through_and_refuse_what_they_cannot_read():
    options = bp.pipeline_options("direct", ["direct_num_workers=2", "save_main_session"]).get_all_options()
    assert options["runner"] == "FnApiRunner"  # not DirectRunner, which tries to download Prism first
    assert options["direct_num_workers"] == 2 and options["save_main_session"] is True
    assert bp.pipeline_options("dataflow").get_all_options()["runner"] == "DataflowRunner"
    with pytest.raises(ValueError, match="allowed values: direct, dataflow, flink, spark"):
        bp.pipeline_options("prism")
    with pytest.raises(ValueError, match="KEY=VALUE"):
        bp.pipeline_options("direct", ["=2"])


def test_sentence_documents_are_the_local_documents_with_their_ids(corpus):
    stats = CorpusStats()
    local = list(iter_identified_documents([corpus], stats=stats))
    assert [doc_id for doc_id, _ in local] == [document_id(0, 0), document_id(0, 1), document_id(0, 2)]
    assert stats.duplicates == 1  # the repeated line of document 1, gone from there: document 0 had it first
    with _pipeline() as p:
        out = p | bp.SentenceDocuments([str(corpus)], ReaderConfig(), CleaningConfig(), None)
        assert_that(out["documents"], equal_to(local), label="documents")
        assert_that(out["reading"] | beam.Map(lambda r: (r[0], r[1]["records"])), equal_to([(0, 3)]),
                    label="reading")


def test_drop_duplicate_lines_keeps_the_first_in_id_order():
    documents = [(7, ["b", "a", "b"]), (3, ["a", "c"]), (9, ["c", "d"])]
    with _pipeline() as p:
        out = p | beam.Create(documents) | bp.DropDuplicateLines()
        assert_that(out, equal_to([(3, ["a", "c"]), (7, ["b"]), (9, ["d"])]))


def test_write_corpus_shards_writes_each_shard_sorted_as_the_local_path(corpus, tmp_path):
    prepare_corpus([corpus], tmp_path / "local" / "c.txt", num_shards=2)
    documents = list(iter_identified_documents([corpus]))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    shards = sorted({shard_of(doc_id, 2) for doc_id, _ in documents})
    with _pipeline() as p:
        written = p | beam.Create(list(reversed(documents))) | bp.WriteCorpusShards(str(scratch), ["c-0", "c-1"])
        assert_that(written, equal_to(shards))
    for i in shards:
        assert (scratch / f"c-{i}").read_bytes() == (tmp_path / "local" / f"c-0000{i}-of-00002.txt").read_bytes()


def test_count_words_is_the_local_count():
    texts = CORPUS.splitlines() * 3
    with _pipeline() as p:
        counts = p | beam.Create(texts) | bp.CountWords(lowercase=True, batch_size=4)
        assert_that(counts, equal_to(list(count_words(texts).items())))


def test_make_instances_and_tfrecord_shards_are_the_local_records(corpus, tmp_path):
    tokenizer = WordPieceTokenizer(TINY_VOCAB)
    config = PretrainingConfig(dupe_factor=3, seed=4, max_seq_length=16, max_predictions_per_seq=3, num_shards=2)
    documents = list(iter_identified_documents([corpus]))
    tokenized = tokenize_documents(documents, tokenizer)
    maker = InstanceMaker(tokenizer, config)
    records = [instance_record(i, config) for r in range(config.dupe_factor) for pos in range(len(tokenized))
               for i in maker.from_documents(tokenized, pos, r)]
    assert any(r[5] for r in records) and not all(r[5] for r in records)  # both kinds of next sentence
    with _pipeline() as p:
        made = p | beam.Create(documents) | bp.MakeInstances(tokenizer, config)
        assert_that(made, equal_to(records))
    with _pipeline() as p:
        _ = p | beam.Create(records) | bp.WriteTFRecordShards(str(tmp_path), config.num_shards)
    local = create_pretraining_data([corpus], tokenizer, tmp_path / "local", config)
    assert all(shard["num_instances"] for shard in local["shards"])
    for shard in local["shards"]:
        assert (tmp_path / shard["file"]).read_bytes() == (tmp_path / "local" / shard["file"]).read_bytes()


def test_random_next_document_is_another_one_by_key_alone():
    picks = [random_document(key, 3, 10) for key in range(2000)]
    assert 3 not in picks and set(picks) == set(range(10)) - {3}
    assert np.bincount(picks, minlength=10).max() < 2.0 * 2000 / 9  # roughly uniform over the others
    assert random_document(5, 0, 1) == 0  # a corpus of one document pairs it with itself


def test_corpus_and_vocab_cli_with_runner_match_the_local_commands(corpus, tmp_path, capsys):
    common = ["--input", str(corpus), "--num-shards", "2", "--quiet"]
    assert main(["prepare-corpus", *common, "--output", str(tmp_path / "local" / "c.txt")]) == 0
    assert main(["prepare-corpus", *common, "--output", str(tmp_path / "beam" / "c.txt"), "--runner", "direct"]) == 0
    local = _files(tmp_path / "local")
    assert set(local) == {"c-00000-of-00002.txt", "c-00001-of-00002.txt", "c.txt.manifest.json", "config.yaml"}
    assert _files(tmp_path / "beam") == local  # shards, manifest (counts from the Beam counters) and config
    shards = sorted(str(p) for p in (tmp_path / "local").glob("c-*.txt"))
    vocab = ["--input", *shards, "--vocab-size", "200", "--quiet"]
    assert main(["build-vocab", *vocab, "--output", str(tmp_path / "v1" / "vocab.txt")]) == 0
    assert main(["build-vocab", *vocab, "--output", str(tmp_path / "v2" / "vocab.txt"), "--runner", "direct"]) == 0
    assert (tmp_path / "v1" / "vocab.txt").read_bytes() == (tmp_path / "v2" / "vocab.txt").read_bytes()
    capsys.readouterr()
    assert main(["prepare-corpus", *common, "--output", str(tmp_path / "x.txt"), "--runner", "direct",
                 "--pipeline-option", "=1"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_bad_lines_are_skipped_and_counted_the_same_on_beam(tmp_path):
    corpus = tmp_path / "bad.txt"
    corpus.write_bytes(b"The cat sat on the mat.\n\xff bad byte\nThe dog ran fast.\n\nA movie is good.\n")
    tokenizer = WordPieceTokenizer(TINY_VOCAB)
    config = PretrainingConfig(num_shards=2, max_seq_length=16, max_predictions_per_seq=3)
    reader = ReaderConfig(on_error="skip")
    local = create_pretraining_data([corpus], tokenizer, tmp_path / "local", config, reader)
    beamed = bp.create_pretraining_data_beam([corpus], tokenizer, tmp_path / "beam", config, reader)
    assert local == beamed and local["corpus"]["reading"]["skipped"] == {"encoding": 1}
    with pytest.raises(ValueError, match=r"bad.txt:2: invalid UTF-8"):  # on_error=raise: file:line, as locally
        bp.create_pretraining_data_beam([corpus], tokenizer, tmp_path / "raise", config)


@pytest.fixture(scope="module")
def wikitext_valid_runs(tmp_path_factory):
    """create-pretraining-data on WikiText-2 valid (all 60 articles): locally, and on the direct runner with one
    worker and with two worker processes."""
    corpus = shared_path("data", "wikitext2", "valid.txt")
    tokenizer = WordPieceTokenizer(shared_path("checkpoints", "minilm-l6-h384-uncased", "vocab.txt"))
    config = PretrainingConfig(dupe_factor=2, num_shards=3, seed=11)
    root = tmp_path_factory.mktemp("wikitext-beam")
    manifests = {"local": create_pretraining_data([corpus], tokenizer, root / "local", config, WIKITEXT)}
    for name, options in (("one worker", []), ("two workers", TWO_WORKERS)):
        manifests[name] = bp.create_pretraining_data_beam([corpus], tokenizer, root / name, config, WIKITEXT,
                                                          options=options)
    return root, manifests


def test_wikitext_valid_same_bytes_locally_and_on_one_or_two_workers(wikitext_valid_runs):
    root, manifests = wikitext_valid_runs
    local = _files(root / "local")
    assert set(local) == {"manifest.json", *(f"pretrain-0000{i}-of-00003.tfrecord" for i in range(3))}
    assert manifests["local"]["corpus"]["documents"] == 60 and manifests["local"]["num_instances"] > 4000
    for name in ("one worker", "two workers"):
        assert _files(root / name) == local, name
        assert manifests[name] == manifests["local"]
    assert not [p for p in root.rglob(".*")]  # no scratch folder left behind


def test_setup_file_packaging_builds_an_sdist_with_the_pipelines(tmp_path):
    # What `--pipeline-option setup_file=./pyproject.toml` makes Beam run (offline): python -m build
    # --no-isolation --sdist; built from a copy, so the shared tree gets no egg-info.
    source = tmp_path / "src"
    source.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        (source / name).write_bytes((REPO / name).read_bytes())
    for path in (REPO / "tfpipe").rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            target = source / path.relative_to(REPO)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--sdist", "--outdir", str(tmp_path / "dist"),
                    str(source)], check=True, capture_output=True, timeout=300)
    (sdist,) = (tmp_path / "dist").glob("tfpipe-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
        info = archive.extractfile(next(m for m in archive.getmembers() if m.name.endswith("/PKG-INFO"))).read()
    resources = {str(p.relative_to(REPO)) for p in (REPO / "tfpipe" / "resources").iterdir() if p.is_file()}
    assert {"tfpipe/data/beam_pipelines.py", "tfpipe/text/keys.py", *resources} <= names
    assert b"Provides-Extra: beam" in info and b"apache-beam" in info
