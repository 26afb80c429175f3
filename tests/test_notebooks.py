"""Every notebook in notebooks/ runs top to bottom in a kernel of this interpreter (nbclient) without an error,
writing into a temporary folder; the stored notebooks carry no outputs."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import REPO, SHARED

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
KERNEL = "tfpipe-tests"


@pytest.fixture
def kernel(tmp_path, monkeypatch) -> str:
    """A kernelspec for this very interpreter (the venv), found through JUPYTER_PATH only by these tests."""
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "tfpipe (tests)", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return KERNEL


def test_there_are_notebooks_and_they_are_stored_without_outputs():
    assert [p.name for p in NOTEBOOKS] == ["01_prepare_and_pretrain.ipynb", "02_finetune_and_evaluate.ipynb",
                                           "03_export_serve_convert.ipynb"]
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        assert all(not cell.outputs and cell.execution_count is None for cell in code), f"{path.name} has outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, kernel: str, tmp_path, monkeypatch):
    if "onnx" in path.read_text(encoding="utf-8") and importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("needs onnxruntime (pip install -e '.[onnx]'; `make install` has it)")
    monkeypatch.setenv("TFPIPE_SHARED", str(SHARED))
    monkeypatch.setenv("TFPIPE_NOTEBOOK_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, kernel_name=kernel, timeout=900,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on any error
    images = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs
              if "image/png" in o.get("data", {})]
    if "plt.show()" in path.read_text(encoding="utf-8"):
        assert images, f"{path.name}: its plots did not render inline"
    assert (tmp_path / "out").is_dir()  # it wrote where TFPIPE_NOTEBOOK_OUT said, not into the repository
