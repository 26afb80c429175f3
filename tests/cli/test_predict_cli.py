"""`tfpipe predict`, in-process through `tfpipe.cli.main.main`: offline from an export folder with reader flags,
and against a real server on 127.0.0.1 over gRPC and REST; user errors exit 2 with a message naming the flag."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.serving import raw_text_models
from tfpipe.cli.main import main


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> Path:
    return raw_text_models.save("classifier", tmp_path_factory.mktemp("exports") / "sst2" / "1")


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_offline_with_column_flags(classifier, tmp_path, capsys):
    data = tmp_path / "dev.tsv"
    data.write_text("0\tgood stuff\n1\tbad stuff\n", encoding="utf-8")
    out = tmp_path / "pred.jsonl"
    code, stdout, _ = run_cli(capsys, "predict", "--export-dir", classifier, "--input", data, "--output", out,
                              "--no-header", "--text-column", "1", "--quiet")
    assert code == 0
    summary = json.loads(stdout.splitlines()[-1])
    assert summary["records"] == 2 and summary["output"] == str(out)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["text"], r["labels"]) for r in rows] == [("good stuff", "pos"), ("bad stuff", "neg")]


@pytest.mark.parametrize("argv, message", [
    (["--input", "IN"], "--export-dir needs --input FILE and --output"),
    (["--input", "IN", "--output", "o.jsonl", "some text"], "TEXT arguments go to a server"),
    (["--input", "missing.tsv", "--output", "o.jsonl"], "missing.tsv: input file not found"),
    (["--input", "IN", "--output", "o.jsonl", "--batch-size", "0"], "batch_size: 0 is not allowed"),
])
def test_offline_user_errors(classifier, tmp_path, capsys, argv, message):
    data = tmp_path / "in.txt"
    data.write_text("good\n")
    argv = [str(data) if a == "IN" else a for a in argv]
    code, _, stderr = run_cli(capsys, "predict", "--export-dir", classifier, *argv)
    assert code == 2
    assert message in stderr


@pytest.mark.parametrize("argv, message", [
    (["--server", "127.0.0.1:1", "x"], "--model: name the model"),
    (["--rest", "http://127.0.0.1:1", "--model", "m"], "give one or more TEXT"),
    (["--server", "127.0.0.1:1", "--model", "m", "a", "b", "--text-pair", "c"], "--text-pair given 1 times for 2"),
])
def test_server_user_errors(capsys, argv, message):
    code, _, stderr = run_cli(capsys, "predict", *argv)
    assert code == 2
    assert message in stderr


@pytest.fixture(scope="module")
def server(classifier):
    from tests.serving.server_harness import start_server

    server = start_server(model_name="sst2", model_base_path=str(classifier.parent))
    yield server
    server.stop(grace=1)


def _both_transports(server, capsys, *args: str):
    """(flag, printed rows) of `tfpipe predict ARGS "so good" "bad bad"` over gRPC, then REST."""
    for flag, target in (("--server", f"127.0.0.1:{server.grpc_port}"),
                         ("--rest", f"http://127.0.0.1:{server.rest_port}")):
        code, stdout, _ = run_cli(capsys, "predict", flag, target, "--model", "sst2", *args, "so good", "bad bad")
        assert code == 0, flag
        yield flag, [json.loads(line) for line in stdout.splitlines()]


def test_server_grpc_and_rest(server, capsys):
    for flag, rows in _both_transports(server, capsys, "--version", "1"):
        assert [(r["text"], r["labels"], r["label_ids"]) for r in rows] == [("so good", "pos", 1),
                                                                            ("bad bad", "neg", 0)], flag
        assert all(len(r["probabilities"]) == 2 for r in rows)


def test_server_classify_api_on_examples(server, capsys):
    for flag, rows in _both_transports(server, capsys, "--api", "classify"):
        assert [r["text"] for r in rows] == ["so good", "bad bad"]
        assert [max(r["classes"], key=r["classes"].get) for r in rows] == ["pos", "neg"], flag
        assert all(abs(sum(r["classes"].values()) - 1) < 1e-5 for r in rows)


def test_server_errors_name_the_code(server, capsys):
    code, stdout, stderr = run_cli(capsys, "predict", "--server", f"127.0.0.1:{server.grpc_port}", "--model", "nope",
                                   "hi")
    assert code == 1 and not stdout
    assert "NOT_FOUND: Servable not found for request" in stderr
    code, _, stderr = run_cli(capsys, "predict", "--rest", f"http://127.0.0.1:{server.rest_port}", "--model", "sst2",
                              "--signature", "classify", "hi")
    assert code == 1
    assert "(HTTP 400)" in stderr


def test_offline_on_tfpipe_exports_uses_their_reader_settings(tiny_exports, tmp_path, capsys):
    import re

    # Tagging: a CoNLL file in, the export's own in-graph word split and one tag per word out.
    _, _, tagger = tiny_exports("tagging")
    conll = tmp_path / "test.conll"
    conll.write_text("John\tB-PER\nlives\tO\nin\tO\nnew\tB-LOC\nyork\tI-LOC\n\nthe\tO\ncat\tO\n")
    code, _, _ = run_cli(capsys, "predict", "--export-dir", tagger, "--input", conll, "--output",
                         tmp_path / "tags.jsonl", "--quiet")
    assert code == 0
    rows = [json.loads(line) for line in (tmp_path / "tags.jsonl").read_text().splitlines()]
    assert [r["words"] for r in rows] == [["John", "lives", "in", "new", "york"], ["the", "cat"]]
    assert all(len(r["tags"]) == r["num_words"] == len(r["words"]) for r in rows)
    assert all(re.fullmatch(r"O|[BI]-\w+", tag) for r in rows for tag in r["tags"])

    # Pairs: the run read columns a and b; the same file layout needs no flags.
    _, _, pair = tiny_exports("pair")
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("a\tb\nthe cat\tthe cat\njohn\ta dog\n")
    code, _, _ = run_cli(capsys, "predict", "--export-dir", pair, "--input", tsv, "--output", tmp_path / "p.jsonl",
                         "--quiet")
    assert code == 0
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [(r["text"], r["text_pair"]) for r in rows] == [("the cat", "the cat"), ("john", "a dog")]
    assert all(r["labels"] in ("0", "1") and len(r["probabilities"]) == 2 for r in rows)
