"""`tfpipe export` from the command line: signature summary, a JSON result line, and exit codes."""

from __future__ import annotations

import json

from tfpipe.cli.main import main


def test_export_cli_prints_signatures_and_refuses_to_overwrite(tiny_runs, tmp_path, capsys):
    run = tiny_runs("regression")
    args = ["export", "--model-dir", str(run), "--export-base", str(tmp_path), "--name", "scores"]
    assert main(args) == 0
    out = capsys.readouterr()
    result = json.loads(out.out.strip().splitlines()[-1])
    assert result["export_dir"] == str(tmp_path / "scores" / "1") and result["max_abs_diff"] <= 1e-5
    assert "signature_def['regress']" in out.out and "Method name is: tensorflow/serving/regress" in out.out
    assert "verified in a fresh process" in out.err
    assert main(args + ["--version", "1"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["export", "--model-dir", str(tmp_path / "nope"), "--export-base", str(tmp_path), "--name", "x"]) == 2
    assert "config.yaml: missing" in capsys.readouterr().err
