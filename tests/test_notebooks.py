"""Every notebook in notebooks/ runs top to bottom in a real kernel, at small budgets."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))
#: Seconds per tuning call in the notebooks; the Keras one keeps its own small default.
BUDGETS = {"keras.ipynb": None}
BUDGET = "15"


def test_there_are_notebooks():
    names = {p.name for p in NOTEBOOKS}
    assert {"quickstart.ipynb", "inspect_and_resume.ipynb", "keras.ipynb"} <= names


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_cleanly(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AUTOTUNE_STORAGE", f"sqlite:///{tmp_path}/autotune.db")
    # On shared CI cores, OpenMP threads of HistGradientBoosting spin against each other
    # and a 0.4 s fit takes 15 s; one thread keeps the notebooks' small budgets meaningful.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    budget = BUDGETS.get(path.name, BUDGET)
    if budget is None:
        monkeypatch.delenv("AUTOTUNE_NOTEBOOK_BUDGET", raising=False)
    else:
        monkeypatch.setenv("AUTOTUNE_NOTEBOOK_BUDGET", budget)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error
    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors
    assert list(tmp_path.glob("*.db")), "the notebook did not use the temporary store"
