"""`--config FILE.yaml` and `--set section.key=value` on the commands that lacked them (split, tokenize, offline
predict), and the one place they are refused (predict against a server)."""

from __future__ import annotations

import json

import yaml

from tfpipe.cli.main import main


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_split_reads_its_reader_settings_from_a_config(tmp_path, capsys):
    data = tmp_path / "rows.tsv"
    data.write_text("".join(f"review {i}\t{'pos' if i % 2 else 'neg'}\n" for i in range(10)), encoding="utf-8")
    config = tmp_path / "split.yaml"
    config.write_text(yaml.safe_dump({"reader": {"no_header": True}}), encoding="utf-8")
    out = tmp_path / "splits"
    code, stdout, _ = _run(capsys, "split", "--input", data, "--output-dir", out, "--ratios", "0.8,0.2",
                           "--stratify-column", "1", "--config", config)
    assert code == 0 and json.loads(stdout.splitlines()[-1])["counts"] == {"train": 8, "validation": 2}
    assert (out / "train.tsv").read_text(encoding="utf-8").startswith("review ")  # no header line was invented
    written = yaml.safe_load((out / "config.yaml").read_text(encoding="utf-8"))
    assert written["reader"]["no_header"] is True and written["task"] == "classification"
    code, _, err = _run(capsys, "split", "--input", data, "--output-dir", tmp_path / "o2", "--config", config,
                        "--set", "reader.max_line_bytes=8")
    assert code == 2 and f"{data}:1: line of" in err and "(--max-line-bytes)" in err
    code, _, err = _run(capsys, "split", "--input", data, "--output-dir", tmp_path / "o3", "--set", "reader.nope=1")
    assert code == 2 and "unknown key 'reader.nope'" in err


def test_tokenize_takes_the_vocabulary_and_casing_from_the_config(tmp_path, capsys, tiny_vocab_file):
    records = tmp_path / "in.jsonl"
    records.write_text(json.dumps({"text": "The cat sat"}) + "\n", encoding="utf-8")
    flags = tmp_path / "flags.jsonl"
    assert main(["tokenize", "--vocab", str(tiny_vocab_file), "--input", str(records), "--output", str(flags)]) == 0
    config = tmp_path / "tok.yaml"
    config.write_text(yaml.safe_dump({"tokenizer": {"vocab": str(tiny_vocab_file)}}), encoding="utf-8")
    from_config = tmp_path / "config.jsonl"
    code, _, _ = _run(capsys, "tokenize", "--config", config, "--input", records, "--output", from_config)
    assert code == 0 and from_config.read_text() == flags.read_text()
    cased = tmp_path / "cased.jsonl"
    assert main(["tokenize", "--config", str(config), "--set", "tokenizer.lowercase=false", "--input", str(records),
                 "--output", str(cased)]) == 0
    unk = 1  # "The" is not in the lower-case vocabulary once case is kept
    assert json.loads(cased.read_text())["input_ids"][1] == unk != json.loads(flags.read_text())["input_ids"][1]
    code, _, err = _run(capsys, "tokenize", "--input", records, "--output", tmp_path / "x.jsonl")
    assert code == 2 and "--vocab: give the vocab.txt (or tokenizer.vocab in --config)" in err


def test_predict_refuses_config_for_server_requests(capsys):
    code, _, err = _run(capsys, "predict", "--server", "127.0.0.1:1", "--model", "m", "--set", "reader.on_error=skip",
                        "a text")
    assert code == 2 and "a server request has no file to read" in err
