"""The `tfpipe` command line, driven in-process through `tfpipe.cli.main.main` on tiny real files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from tfpipe.cli.main import COMMANDS, build_parser, main
from tfpipe.config import Config, load_config
from tfpipe.config.atomic import is_temporary

CORPUS = (
    "The quick brown fox jumps over the lazy dog. It was a sunny day in the park!\n"
    "Dogs and cats played together. The children laughed loudly.\n"
    "\n"
    "A second document starts here. It talks about <b>cooking</b> pasta &amp; sauce.\n"
    "Boil the water first. Then add the salt and the pasta.\n"
    "Cooking takes about ten minutes.\n"
)
SENTENCES_DOC1 = [
    "The quick brown fox jumps over the lazy dog.",
    "It was a sunny day in the park!",
    "Dogs and cats played together.",
    "The children laughed loudly.",
]
SENTENCES_DOC2 = [
    "A second document starts here.",
    "It talks about cooking pasta & sauce.",
    "Boil the water first.",
    "Then add the salt and the pasta.",
    "Cooking takes about ten minutes.",
]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def prepared(workdir) -> Path:
    """The corpus after `prepare-corpus` (shared: spaCy and TensorFlow start-up are the slow part)."""
    source = workdir / "corpus.txt"
    source.write_text(CORPUS, encoding="utf-8")
    output = workdir / "prepared" / "corpus.txt"
    assert main(["prepare-corpus", "--input", str(source), "--output", str(output), "--quiet"]) == 0
    return output


@pytest.fixture(scope="module")
def vocab(workdir, prepared) -> Path:
    output = workdir / "vocab" / "vocab.txt"
    assert main(["build-vocab", "--input", str(prepared), "--output", str(output), "--vocab-size", "200",
                 "--quiet"]) == 0
    return output


# --- parser -------------------------------------------------------------------------------------------------


def test_build_parser_lists_every_command(capsys):
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == list(COMMANDS)
    help_text = parser.format_help()
    for name in COMMANDS:
        assert name in help_text
        with pytest.raises(SystemExit) as info:
            parser.parse_args([name, "--help"])
        assert info.value.code == 0
        assert capsys.readouterr().out.startswith(f"usage: tfpipe {name}")


def test_a_command_is_required(capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([])
    assert info.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


# --- inspect-data -------------------------------------------------------------------------------------------


def test_inspect_data_clean_tsv_exits_0(tmp_path, capsys):
    path = tmp_path / "clean.tsv"
    path.write_text("text\tlabel\ngood movie\tpos\nbad movie\tneg\nthe plot was fine\tpos\n", encoding="utf-8")
    code, out, _ = run_cli(capsys, "inspect-data", "--input", path, "--text-column", "text", "--label-column",
                           "label")
    assert code == 0
    report = last_json(out)
    assert report["records"] == 3
    assert report["num_errors"] == 0
    assert report["label_distribution"] == {"neg": 1, "pos": 2}
    assert out.splitlines()[0] == f"{path} (classification): 3 valid records, 0 error(s), 0 duplicate(s)"


def test_inspect_data_bad_tsv_exits_1_with_file_line(tmp_path, capsys):
    path = tmp_path / "bad.tsv"
    path.write_text("text\tlabel\ngood movie\tpos\nno label here\n\tneg\n", encoding="utf-8")
    code, out, _ = run_cli(capsys, "inspect-data", "--input", path, "--text-column", "text", "--label-column",
                           "label")
    assert code == 1
    assert f"  error: {path}:3: expected at least 2 fields, got 1; missing column(s): label" in out.splitlines()
    assert f"  error: {path}:4: empty text" in out.splitlines()
    report = last_json(out)
    assert report["num_errors"] == 2
    assert report["records"] == 1


def test_inspect_data_json_only_and_vocab_token_lengths(tmp_path, vocab, capsys):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"text": "The lazy dog.", "label": 1}) + "\n", encoding="utf-8")
    code, out, _ = run_cli(capsys, "inspect-data", "--input", path, "--vocab", vocab, "--json")
    assert code == 0
    assert len(out.strip().splitlines()) == 1
    report = json.loads(out)
    assert report["records"] == 1
    assert "length_words" not in report
    assert report["length_tokens"]["p100"] >= 6  # [CLS] the lazy dog . [SEP], at least


# --- split --------------------------------------------------------------------------------------------------


def test_split(tmp_path, capsys):
    path = tmp_path / "reviews.tsv"
    rows = [f"review {i}\t{'pos' if i % 2 else 'neg'}\n" for i in range(20)]
    path.write_text("text\tlabel\n" + "".join(rows), encoding="utf-8")
    out_dir = tmp_path / "splits"
    code, out, _ = run_cli(capsys, "split", "--input", path, "--output-dir", out_dir, "--ratios", "0.8,0.1,0.1",
                           "--stratify-column", "label", "--seed", "3")
    assert code == 0
    result = last_json(out)
    assert result == {"output_dir": str(out_dir), "counts": {"train": 16, "validation": 2, "test": 2}}
    assert "train: 16" in out.splitlines()
    got = []
    for name in ("train", "validation", "test"):
        data = (out_dir / f"{name}.tsv").read_text(encoding="utf-8")
        assert data.startswith("text\tlabel\n")
        got.extend(data.splitlines(keepends=True)[1:])
    assert sorted(got) == sorted(rows)


def test_split_bad_ratios_exit_2(tmp_path, capsys):
    path = tmp_path / "d.tsv"
    path.write_text("text\tlabel\na\tb\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "split", "--input", path, "--output-dir", tmp_path / "o", "--ratios", "0.5,0.6")
    assert code == 2
    assert "tfpipe split: error: --ratios '0.5,0.6'" in err


# --- prepare-corpus -----------------------------------------------------------------------------------------


def test_prepare_corpus(tmp_path, capsys):
    source = tmp_path / "corpus.txt"
    source.write_text(CORPUS + "\nDogs and cats played together. The children laughed loudly.\n", encoding="utf-8")
    output = tmp_path / "out" / "prepared.txt"
    code, out, _ = run_cli(capsys, "prepare-corpus", "--input", source, "--output", output, "--quiet")
    assert code == 0
    # One sentence per line, a blank line between documents; HTML stripped; the duplicate line (a third
    # document) removed, which leaves that document empty.
    assert output.read_text(encoding="utf-8") == "\n".join(SENTENCES_DOC1) + "\n\n" + "\n".join(SENTENCES_DOC2) + "\n"
    stats = last_json(out)
    assert stats["output"] == str(output)
    assert stats["documents"] == 2
    assert stats["sentences"] == 9
    assert stats["duplicates"] == 1
    config = load_config(Config, output.parent / "config.yaml")
    assert config == Config()
    assert not [p for p in output.parent.iterdir() if is_temporary(p.name)]  # no temporary left


def test_prepare_corpus_records_flags_in_config(tmp_path, capsys):
    source = tmp_path / "corpus.txt"
    source.write_text("Ｆｕｌｌ width text.\n", encoding="utf-8")
    output = tmp_path / "out" / "prepared.txt"
    code, _, _ = run_cli(capsys, "prepare-corpus", "--input", source, "--output", output, "--quiet", "--set",
                         "cleaning.unicode_form=NFKC", "--drop-regex", "^#")
    assert code == 0
    assert output.read_text(encoding="utf-8") == "Full width text.\n"
    config = load_config(Config, output.parent / "config.yaml")
    assert config.cleaning.unicode_form == "NFKC"
    assert config.reader.drop_regex == "^#"


def test_prepared_fixture_output(prepared):
    assert prepared.read_text(encoding="utf-8").split("\n\n") == [
        "\n".join(SENTENCES_DOC1), "\n".join(SENTENCES_DOC2) + "\n"]
    assert (prepared.parent / "config.yaml").is_file()


# --- build-vocab --------------------------------------------------------------------------------------------


def test_build_vocab(vocab, prepared):
    from tfpipe.text.tokenizer import SPECIAL_TOKENS, WordPieceTokenizer

    tokens = vocab.read_text(encoding="utf-8").splitlines()
    assert tokens[: len(SPECIAL_TOKENS)] == list(SPECIAL_TOKENS)
    assert len(tokens) <= 200
    assert len(tokens) == len(set(tokens))
    config = load_config(Config, vocab.parent / "config.yaml")
    assert config.tokenizer.vocab == str(vocab)
    assert config.vocab.vocab_size == 200

    tokenizer = WordPieceTokenizer(vocab)
    lines = [line for line in prepared.read_text(encoding="utf-8").splitlines() if line]
    ids = tokenizer.tokenize(lines).to_list()
    assert all(row and tokenizer.unk_id not in row for row in ids)
    assert tokenizer.unk_id in tokenizer.tokenize(["zebra \U0001f993"]).to_list()[0]  # unseen character


def test_build_vocab_json_and_cap(tmp_path, prepared, capsys):
    output = tmp_path / "v" / "vocab.txt"
    code, out, _ = run_cli(capsys, "build-vocab", "--input", prepared, "--output", output, "--vocab-size", "100",
                           "--quiet")
    assert code == 0
    tokens = output.read_text(encoding="utf-8").splitlines()
    result = last_json(out)
    assert result["output"] == str(output)
    assert result["size"] == len(tokens) <= 100
    from tfpipe.text.tokenizer import vocabulary_hash

    assert result["sha256"] == vocabulary_hash(tokens)


def test_build_vocab_size_below_the_characters_exits_2(tmp_path, prepared, capsys):
    code, _, err = run_cli(capsys, "build-vocab", "--input", prepared, "--output", tmp_path / "vocab.txt",
                           "--vocab-size", "20", "--quiet")
    assert code == 2
    assert "raise --vocab-size" in err
    assert not (tmp_path / "vocab.txt").exists()


def test_build_vocab_from_tsv_text_column(tmp_path, capsys):
    path = tmp_path / "d.tsv"
    path.write_text("text\tlabel\nalpha beta\t1\nbeta gamma\t0\n", encoding="utf-8")
    output = tmp_path / "vocab.txt"
    code, _, _ = run_cli(capsys, "build-vocab", "--input", path, "--text-column", "text", "--label-column", "label",
                         "--output", output, "--vocab-size", "200", "--quiet")
    assert code == 0
    tokens = output.read_text(encoding="utf-8").splitlines()
    assert "label" not in tokens and "text" not in tokens  # the header is not text
    assert {"a", "b", "g"} <= set(tokens)


# --- tokenize -----------------------------------------------------------------------------------------------


def write_jsonl(path: Path, objects: list[dict]) -> Path:
    path.write_text("".join(json.dumps(o) + "\n" for o in objects), encoding="utf-8")
    return path


def test_tokenize(tmp_path, vocab, capsys):
    from tfpipe.text.tokenizer import WordPieceTokenizer

    tokenizer = WordPieceTokenizer(vocab)
    source = write_jsonl(tmp_path / "in.jsonl", [
        {"text": "The quick fox", "id": 7, "label": "a"},
        {"text": "Dogs played.", "text_pair": "The children laughed loudly.", "meta": {"k": [1, 2]}},
        {"text": ""},
    ])
    target = tmp_path / "out.jsonl"
    code, out, _ = run_cli(capsys, "tokenize", "--vocab", vocab, "--input", source, "--output", target)
    assert code == 0
    assert last_json(out) == {"output": str(target), "records": 3}
    rows = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 3

    single, pair, empty = rows
    assert (single["text"], single["id"], single["label"]) == ("The quick fox", 7, "a")
    expected = tokenizer.tokenize(["The quick fox"]).to_list()[0]
    assert single["input_ids"] == [tokenizer.cls_id, *expected, tokenizer.sep_id]
    assert single["token_type_ids"] == [0] * len(single["input_ids"])

    assert pair["meta"] == {"k": [1, 2]}
    first = tokenizer.tokenize(["Dogs played."]).to_list()[0]
    second = tokenizer.tokenize(["The children laughed loudly."]).to_list()[0]
    assert pair["input_ids"] == [tokenizer.cls_id, *first, tokenizer.sep_id, *second, tokenizer.sep_id]
    assert pair["token_type_ids"] == [0] * (len(first) + 2) + [1] * (len(second) + 1)

    assert empty["input_ids"] == [tokenizer.cls_id, tokenizer.sep_id]
    assert empty["token_type_ids"] == [0, 0]
    assert not [p for p in tmp_path.iterdir() if is_temporary(p.name)]  # no temporary left


def test_tokenize_max_length_truncates(tmp_path, vocab, capsys):
    source = write_jsonl(tmp_path / "in.jsonl", [
        {"text": "The quick brown fox jumps over the lazy dog."},
        {"text": "Dogs played together.", "text_pair": "The children laughed loudly."},
        {"text": "dog"},
    ])
    target = tmp_path / "out.jsonl"
    code, _, _ = run_cli(capsys, "tokenize", "--vocab", vocab, "--input", source, "--output", target,
                         "--max-length", "6")
    assert code == 0
    rows = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    from tfpipe.text.tokenizer import WordPieceTokenizer

    tokenizer = WordPieceTokenizer(vocab)
    long, pair, short = rows
    full = tokenizer.tokenize(["The quick brown fox jumps over the lazy dog."]).to_list()[0]
    assert long["input_ids"] == [tokenizer.cls_id, *full[:4], tokenizer.sep_id]
    assert len(pair["input_ids"]) == 6
    assert pair["input_ids"][0] == tokenizer.cls_id
    assert pair["input_ids"].count(tokenizer.sep_id) == 2 and pair["input_ids"][-1] == tokenizer.sep_id
    assert pair["token_type_ids"][-1] == 1 and pair["token_type_ids"][1] == 0
    assert short["input_ids"] == [tokenizer.cls_id, *tokenizer.tokenize(["dog"]).to_list()[0], tokenizer.sep_id]


def test_tokenize_bad_record_names_file_line(tmp_path, vocab, capsys):
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "ok"}\n{"text": 5}\n', encoding="utf-8")
    code, _, err = run_cli(capsys, "tokenize", "--vocab", vocab, "--input", source, "--output", tmp_path / "o.jsonl")
    assert code == 2
    assert f"{source}:2: 'text' must be a string" in err
    assert not (tmp_path / "o.jsonl").exists()


# --- create-pretraining-data --------------------------------------------------------------------------------


def pretrain(capsys, prepared: Path, vocab: Path, output_dir: Path, *extra: str) -> tuple[int, str, str]:
    return run_cli(capsys, "create-pretraining-data", "--input", prepared, "--vocab", vocab, "--output-dir",
                   output_dir, "--max-seq-length", "32", "--max-predictions-per-seq", "5", "--dupe-factor", "2",
                   "--quiet", *extra)


def files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_create_pretraining_data_is_deterministic(tmp_path, prepared, vocab, capsys):
    import tensorflow as tf

    code, out, _ = pretrain(capsys, prepared, vocab, tmp_path / "a", "--seed", "1")
    assert code == 0
    result = last_json(out)
    assert pretrain(capsys, prepared, vocab, tmp_path / "b", "--seed", "1")[0] == 0
    assert pretrain(capsys, prepared, vocab, tmp_path / "c", "--seed", "2")[0] == 0

    first, second, other = files(tmp_path / "a"), files(tmp_path / "b"), files(tmp_path / "c")
    shards = [f"pretrain-{i:05d}-of-00004.tfrecord" for i in range(4)]  # default num_shards
    assert sorted(first) == sorted(shards + ["manifest.json", "config.yaml"])
    assert first == second  # byte-identical, manifest and config included
    assert [first[s] for s in shards] != [other[s] for s in shards]

    manifest = json.loads(first["manifest.json"])
    assert [s["file"] for s in manifest["shards"]] == shards
    assert manifest["num_instances"] == result["num_instances"] == sum(s["num_instances"] for s in manifest["shards"])
    assert manifest["num_instances"] > 0
    assert manifest["max_seq_length"] == 32
    assert manifest["config"]["pretraining"]["seed"] == 1
    assert manifest["inputs"] == [prepared.name]
    assert manifest["corpus"]["documents"] == 2

    records = list(tf.data.TFRecordDataset([str(tmp_path / "a" / s) for s in shards]).as_numpy_iterator())
    assert len(records) == manifest["num_instances"]
    example = tf.train.Example.FromString(records[0])
    features = example.features.feature
    assert set(features) == set(manifest["features"])
    assert len(features["input_word_ids"].int64_list.value) == 32
    assert len(features["masked_lm_positions"].int64_list.value) == 5


def test_set_num_shards_takes_effect(tmp_path, prepared, vocab, capsys):
    out_dir = tmp_path / "p"
    code, _, _ = pretrain(capsys, prepared, vocab, out_dir, "--set", "pretraining.num_shards=3")
    assert code == 0
    shards = sorted(p.name for p in out_dir.glob("*.tfrecord"))
    assert shards == [f"pretrain-{i:05d}-of-00003.tfrecord" for i in range(3)]
    assert len(json.loads((out_dir / "manifest.json").read_text())["shards"]) == 3
    assert load_config(Config, out_dir / "config.yaml").pretraining.num_shards == 3


def test_set_wins_over_flags(tmp_path, prepared, vocab, capsys):
    out_dir = tmp_path / "p"
    code, _, _ = pretrain(capsys, prepared, vocab, out_dir, "--num-shards", "2", "--set", "pretraining.num_shards=1")
    assert code == 0
    assert [p.name for p in out_dir.glob("*.tfrecord")] == ["pretrain-00000-of-00001.tfrecord"]


# --- errors -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["prepare-corpus", "build-vocab", "tokenize", "split", "create-pretraining-data"])
def test_bad_input_path_exits_2_naming_the_file(tmp_path, vocab, capsys, command):
    missing = tmp_path / "missing.txt"
    args = {
        "prepare-corpus": ["--output", tmp_path / "o.txt"],
        "build-vocab": ["--output", tmp_path / "v.txt"],
        "tokenize": ["--vocab", vocab, "--output", tmp_path / "o.jsonl"],
        "split": ["--output-dir", tmp_path / "o"],
        "create-pretraining-data": ["--vocab", vocab, "--output-dir", tmp_path / "o"],
    }[command]
    code, out, err = run_cli(capsys, command, "--input", missing, *args)
    assert code == 2
    assert err.startswith(f"tfpipe {command}: error: ")
    assert str(missing) in err
    assert "not found" in err
    assert out == ""


def test_missing_vocab_exits_2(tmp_path, prepared, capsys):
    code, _, err = run_cli(capsys, "create-pretraining-data", "--input", prepared, "--vocab", tmp_path / "nope.txt",
                           "--output-dir", tmp_path / "o", "--quiet")
    assert code == 2
    assert f"{tmp_path / 'nope.txt'}: vocabulary file not found" in err


def test_unknown_set_key_exits_2_naming_the_key(tmp_path, prepared, capsys):
    code, out, err = run_cli(capsys, "prepare-corpus", "--input", prepared, "--output", tmp_path / "o.txt",
                             "--quiet", "--set", "cleaning.bogus_key=1")
    assert code == 2
    assert "unknown key 'cleaning.bogus_key'" in err
    assert err.startswith("tfpipe prepare-corpus: error: ")
    assert out == ""
    assert not (tmp_path / "o.txt").exists()


def test_bad_config_file_exits_2_naming_it(tmp_path, prepared, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("pretraining:\n  num_shards: zero\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "prepare-corpus", "--input", prepared, "--output", tmp_path / "o.txt", "--quiet",
                           "--config", config)
    assert code == 2
    assert "pretraining.num_shards: expected an integer" in err
