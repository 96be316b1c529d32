"""The tutorial notebook runs from top to bottom (outputs are not committed, so it cannot rot unseen)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).parent.parent / "notebooks" / "from-the-lecture-to-mnist.ipynb"


def test_the_tutorial_notebook_runs(tmp_path) -> None:
    nbformat = pytest.importorskip("nbformat", reason="the notebook extra is not installed: pip install '.[notebook]'")
    nbclient = pytest.importorskip("nbclient", reason="the notebook extra is not installed: pip install '.[notebook]'")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code")  # committed clean
    shutil.copy(NOTEBOOK, tmp_path)
    for _ in range(2):  # run again in the same folder, as a learner re-runs a notebook: its runs are replaced
        nb = nbformat.read(NOTEBOOK, as_version=4)
        nbclient.NotebookClient(nb, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = "".join(
        o.get("text", "") for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
    )
    assert "3-4-2 parameters: 26" in printed and "output: [0.62, 0.83]" in printed and "prediction:" in printed
