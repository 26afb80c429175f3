"""`--max-line-bytes` and `--on-error` on every command that reads data files: a long line is a `file:line`
error (exit 2) or, under skip, a counted skip that is printed per reason and written into the output's record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tfpipe.cli.main import main

READING_COMMANDS = ["inspect-data", "split", "prepare-corpus", "build-vocab", "tokenize", "create-pretraining-data",
                    "augment", "finetune", "evaluate", "predict"]
SKIP_COMMANDS = ["inspect-data", "prepare-corpus", "build-vocab", "create-pretraining-data", "augment", "finetune",
                 "evaluate", "predict"]  # `split` and `tokenize` rewrite files whole: a bad line always stops them


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def help_text(capsys, command: str) -> str:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    return capsys.readouterr().out


@pytest.mark.parametrize("command", READING_COMMANDS)
def test_every_command_that_reads_data_takes_max_line_bytes(capsys, command):
    assert "--max-line-bytes N" in help_text(capsys, command)


@pytest.mark.parametrize("command", SKIP_COMMANDS)
def test_every_command_with_a_skip_policy_lists_both_choices(capsys, command):
    assert "--on-error {raise,skip}" in help_text(capsys, command)


def test_inspect_data_reports_a_long_line_with_file_and_line(tmp_path, capsys):
    path = tmp_path / "d.tsv"
    path.write_bytes(b"text\tlabel\nok\t0\n" + b"x" * 40 + b"\t1\nfine\t1\n")
    code, out, _ = run_cli(capsys, "inspect-data", "--input", path, "--text-column", "text", "--label-column",
                           "label", "--max-line-bytes", "16")
    assert code == 1
    assert f"  error: {path}:3: line of 42 bytes is longer than the limit of 16 (--max-line-bytes)" in out
    assert json.loads(out.splitlines()[-1])["errors_by_kind"] == {"line too long": 1}


def test_a_limit_below_one_byte_is_a_config_error(tmp_path, capsys):
    path = tmp_path / "d.tsv"
    path.write_text("text\tlabel\nok\t0\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "inspect-data", "--input", path, "--text-column", "text", "--max-line-bytes", "0")
    assert code == 2
    assert "reader.max_line_bytes: 0" in err


def test_header_only_file_is_an_error_not_an_empty_success(tmp_path, capsys):
    path = tmp_path / "d.tsv"
    path.write_text("text\tlabel\n", encoding="utf-8")
    code, out, _ = run_cli(capsys, "inspect-data", "--input", path, "--text-column", "text", "--label-column",
                           "label")
    assert code == 1
    assert f"  error: {path}:1: header only: no data rows" in out


CORPUS = (b"The first document has a sentence. And a second one.\n"
          b"It goes on here.\n"
          b"A NUL \x00 byte makes this line bad.\n"
          b"\n" + b"y" * 100 + b"\n"
          b"The second document is fine too.\n")


def test_prepare_corpus_raises_on_a_bad_line_with_file_and_line(tmp_path, capsys):
    source = tmp_path / "corpus.txt"
    source.write_bytes(CORPUS)
    code, out, err = run_cli(capsys, "prepare-corpus", "--input", source, "--output", tmp_path / "o" / "c.txt",
                             "--quiet", "--max-line-bytes", "64")
    assert code == 2 and out == ""
    assert f"{source}:3: NUL byte at byte 6 of the line" in err


def test_prepare_corpus_skip_prints_per_reason_counts_and_records_them(tmp_path, capsys):
    source = tmp_path / "corpus.txt"
    source.write_bytes(CORPUS)
    output = tmp_path / "o" / "c.txt"
    code, out, err = run_cli(capsys, "prepare-corpus", "--input", source, "--output", output, "--quiet",
                             "--on-error", "skip", "--max-line-bytes", "64")
    assert code == 0
    assert f"{source}: 2 record(s) read, 2 skipped (NUL byte: 1, line too long: 1); first: {source}:3: NUL byte" in err
    printed = json.loads(out.splitlines()[-1])
    record = json.loads(output.with_name("c.txt.manifest.json").read_text(encoding="utf-8"))
    for reading in (printed["reading"], record["reading"]):
        assert reading["skipped"] == {"NUL byte": 1, "line too long": 1}
        assert reading["on_error"] == "skip" and reading["max_line_bytes"] == 64
        assert reading["first_errors"][1].startswith(f"{source}:5: line of 100 bytes")
    assert "NUL" not in output.read_text(encoding="utf-8")


def test_split_and_tokenize_stop_at_a_long_line(tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    data.write_bytes(b'{"text": "a b"}\n{"text": "' + b"z" * 50 + b'"}\n')
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "z"]) + "\n")
    code, _, err = run_cli(capsys, "split", "--input", data, "--output-dir", tmp_path / "s", "--ratios", "0.5,0.5",
                           "--max-line-bytes", "32")
    assert code == 2 and f"{data}:2: line of 62 bytes is longer than the limit of 32" in err
    assert not (tmp_path / "s" / "train.jsonl").exists()
    code, _, err = run_cli(capsys, "tokenize", "--vocab", vocab, "--input", data, "--output", tmp_path / "t.jsonl",
                           "--max-line-bytes", "32")
    assert code == 2 and f"{data}:2: line of 62 bytes is longer than the limit of 32" in err
    assert not Path(tmp_path / "t.jsonl").exists()
