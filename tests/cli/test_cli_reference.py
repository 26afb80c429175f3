"""docs/cli.md is the argparse parsers' own help: regenerate it with `make docs` when a flag changes."""

from pathlib import Path

from tfpipe.cli.main import COMMANDS
from tfpipe.cli.reference import main, render

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_the_cli_reference_is_current():
    assert main(["--check", str(REFERENCE)]) == 0, "docs/cli.md is stale: run `make docs`"


def test_the_reference_covers_every_command_and_its_flags(tmp_path):
    text = render()
    for name in COMMANDS:
        assert f"## tfpipe {name}\n" in text
    assert "--model_base_path" in text and "--max-seq-length" in text


def test_check_fails_on_a_stale_file(tmp_path, capsys):
    stale = tmp_path / "cli.md"
    stale.write_text(render().replace("--model_base_path", "--model_path"), encoding="utf-8")
    assert main(["--check", str(stale)]) == 1
    assert "is stale" in capsys.readouterr().err
    assert main(["--write", str(stale)]) == 0 and main(["--check", str(stale)]) == 0
