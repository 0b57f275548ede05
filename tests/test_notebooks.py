"""Both notebooks run end to end (nbclient) on synthetic data, so they cannot rot."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from test_plots import tiny_cascade

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def execute(name: str) -> nbformat.NotebookNode:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": NOTEBOOKS}}
    ).execute()
    return notebook


def outputs_of(notebook: nbformat.NotebookNode) -> list[dict]:
    return [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]


@pytest.mark.parametrize("name", ["01_dataset.ipynb", "02_results.ipynb"])
def test_notebooks_are_committed_without_outputs(name: str) -> None:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_dataset_notebook_runs(
    synthetic_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XRAY_DATA_ROOT", str(synthetic_root))
    monkeypatch.setenv("XRAY_FIGURE_DIR", str(tmp_path))
    outputs = outputs_of(execute("01_dataset.ipynb"))
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 3  # distribution, samples per class, preprocessing switches
    assert (tmp_path / "class_distribution.png").is_file()


def test_results_notebook_runs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir, root = tiny_cascade(tmp_path_factory)
    monkeypatch.setenv("XRAY_RUN_DIR", str(run_dir))
    monkeypatch.setenv("XRAY_DATA_ROOT", str(root))
    outputs = outputs_of(execute("02_results.ipynb"))
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 7  # 2 curves, showcase, confusion, ROC, failures, Grad-CAM
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "accuracy_first" in text and "recall_first" in text
