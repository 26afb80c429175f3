"""`tfpipe tokenize` reproduces the reference tokenizer's ids for every case of the shared reference file."""

from __future__ import annotations

import json

from tests.conftest import shared_path
from tfpipe.cli.main import main


def test_tokenize_cli_reproduces_reference(tmp_path, capsys):
    reference = shared_path("checkpoints", "minilm-l6-h384-uncased", "tokenizer_reference.json")
    cases = json.loads(reference.read_text(encoding="utf-8"))["cases"]
    source = tmp_path / "in.jsonl"
    with source.open("w", encoding="utf-8") as out:
        for i, case in enumerate(cases):
            record = {"id": i, "text": case["text"]}
            if "text_pair" in case:
                record["text_pair"] = case["text_pair"]
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    target = tmp_path / "out.jsonl"
    code = main(["tokenize", "--vocab", str(reference.parent / "vocab.txt"), "--input", str(source),
                 "--output", str(target)])
    assert code == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == {"output": str(target), "records": len(cases)}
    results = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in results] == list(range(len(cases)))
    for case, result in zip(cases, results):
        assert result["input_ids"] == case["input_ids"], case["text"][:60]
        assert result["token_type_ids"] == case.get("token_type_ids", [0] * len(case["input_ids"]))
