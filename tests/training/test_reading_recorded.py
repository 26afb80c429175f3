"""`--on-error skip` in finetune and evaluate: the bad rows are printed per reason and recorded in the run's
metrics.json (and the evaluation's), next to the counts of what was read; under raise the first one stops the run."""

from __future__ import annotations

import json

from tests.training.conftest import TINY_MODEL, write_sentiment_tsv
from tfpipe.cli.main import main

BAD_TRAIN_ROWS = (b"pos\tthe good cat\textra\n"        # an extra field, never dropped silently
                  b"neg\tthe bad \x00 dog\n"           # a NUL byte
                  b"\xef\xbb\xbflabel\tsentence\n"     # a second file's header, BOM first (files concatenated)
                  b"pos\t" + b"good " * 60 + b"\n")    # longer than --max-line-bytes 200


def test_finetune_and_evaluate_record_what_they_skipped(tmp_path, vocab_file, capsys):
    train = write_sentiment_tsv(tmp_path / "train.tsv", 32, seed=1)
    train.write_bytes(train.read_bytes() + BAD_TRAIN_ROWS)
    dev = write_sentiment_tsv(tmp_path / "dev.tsv", 8, seed=2)
    dev.write_bytes(dev.read_bytes() + b"meh\tthe movie\n")  # a label the model was not trained on
    run = tmp_path / "run"
    columns = ["--text-column", "sentence", "--label-column", "label", "--on-error", "skip", "--max-line-bytes", "200"]
    code = main(["finetune", "--task", "classification", "--train", str(train), "--validation", str(dev), *columns,
                 "--vocab", str(vocab_file), "--output-dir", str(run), "--epochs", "1", "--batch-size", "8",
                 *TINY_MODEL])
    err = capsys.readouterr().err
    assert code == 0, err
    assert (f"{train}: 32 record(s) read, 4 skipped (NUL byte: 1, byte-order mark: 1, field count: 1, "
            f"line too long: 1); first: {train}:34: expected 2 fields (as in the header), got 3") in err
    assert f"{dev}: 8 record(s) read, 1 skipped (unknown label: 1); first: {dev}:10: unknown label 'meh'" in err
    recorded = json.loads((run / "metrics.json").read_text())["data"]
    assert recorded["train"]["records"] == 32 and recorded["train"]["file"] == str(train)
    assert recorded["train"]["skipped"] == {"NUL byte": 1, "byte-order mark": 1, "field count": 1,
                                            "line too long": 1}
    assert recorded["validation"]["skipped"] == {"unknown label": 1}
    assert json.loads((run / "eval" / "dev" / "metrics.json").read_text())["data"] == recorded["validation"]

    test = tmp_path / "test.tsv"
    test.write_bytes(b"label\tsentence\npos\tgood movie\nneg\tbad\tmovie\nneg\tbad cat\nneg\tbad dog\r\rnow\n")
    # evaluate reads with the run's reader settings (skip, 200 bytes) unless told otherwise on its command line
    code = main(["evaluate", "--model-dir", str(run), "--data", str(test), "--on-error", "raise"])
    assert code == 2
    assert f"{test}:3: expected 2 fields (as in the header), got 3" in capsys.readouterr().err
    code = main(["evaluate", "--model-dir", str(run), "--data", str(test)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"{test}: 2 record(s) read, 2 skipped (field count: 1, line ends: 1)" in err
    metrics = json.loads((run / "eval" / "test" / "metrics.json").read_text())
    assert metrics["num_examples"] == 2
    assert metrics["data"]["skipped"] == {"field count": 1, "line ends": 1}
    assert metrics["data"]["on_error"] == "skip" and metrics["data"]["max_line_bytes"] == 200
