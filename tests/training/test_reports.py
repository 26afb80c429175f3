"""Plots: training curves from history.csv (including runs without validation) and confusion matrices."""

from __future__ import annotations

from tfpipe.training.reports import plot_confusion_matrix, plot_history, read_history

PNG = b"\x89PNG\r\n\x1a\n"


def test_history_plot_with_and_without_validation(tmp_path):
    history = tmp_path / "history.csv"
    history.write_text("epoch,accuracy,learning_rate,loss,val_accuracy,val_loss\n"
                       "0,0.5,0.001,0.7,NA,NA\n1,0.8,0.0005,0.4,NA,NA\n")
    out = plot_history(history, tmp_path / "plots" / "curves.png")
    assert out.read_bytes().startswith(PNG)
    history.write_text("epoch,accuracy,learning_rate,loss,val_accuracy,val_loss\n0,0.5,0.001,0.7,0.6,0.65\n")
    assert plot_history(history, tmp_path / "curves2.png").read_bytes().startswith(PNG)
    assert plot_history(tmp_path / "missing.csv", tmp_path / "x.png") is None


def test_history_keeps_the_last_row_of_an_epoch_run_again_after_a_restart(tmp_path):
    history = tmp_path / "history.csv"
    history.write_text("epoch,loss\n0,0.7\n1,0.5\n1,0.45\n2,0.4\n")  # epoch 1 interrupted, then run again
    assert [(r["epoch"], r["loss"]) for r in read_history(history)] == [("0", "0.7"), ("1", "0.45"), ("2", "0.4")]
    assert read_history(tmp_path / "missing.csv") == []


def test_confusion_matrix_plot(tmp_path):
    out = plot_confusion_matrix([[5, 1], [2, 7]], ["neg", "pos"], tmp_path / "cm.png")
    assert out.read_bytes().startswith(PNG) and out.stat().st_size > 1000
