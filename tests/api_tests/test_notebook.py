"""docs/notebook.ipynb runs top to bottom in a real Jupyter kernel (nbclient + ipykernel) with the project
installed: the study trains, the trials come back as a table and the plot is drawn."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.api_tests.conftest import REPO, lab_env
from tests.support.limits import HANG_S

NOTEBOOK = REPO / "docs" / "notebook.ipynb"


def test_notebook_runs_a_tiny_study_and_shows_table_and_plot(lab_site: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in lab_env(lab_site).items():
        monkeypatch.setenv(key, value)  # the kernel process inherits this environment
    monkeypatch.delenv("TQDM_DISABLE", raising=False)  # progress as a user's kernel shows it
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    work = tmp_path / "work"
    work.mkdir()
    notebook = nbformat.read(shutil.copy(NOTEBOOK, work / "notebook.ipynb"), as_version=4)
    NotebookClient(notebook, timeout=HANG_S, kernel_name="python3",
                   resources={"metadata": {"path": str(work)}}).execute()

    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    texts = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    # Progress renders as plain lines (one per trial), not as widgets that need ipywidgets nor as bar redraws.
    assert "TqdmWarning" not in texts and "IProgress" not in texts, texts
    run_cell = next(c for c in notebook.cells if c.cell_type == "code" and "run_study(" in c.source)
    assert len(run_cell.outputs) <= 25, [o.get("text", o.get("data")) for o in run_cell.outputs]
    assert "\r" not in texts and "\x1b" not in texts
    assert "stdlib platform: True" in texts and "4/4 trials done" in texts
    tables = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("window_size=3" in t and "mlflow_run_id" in t and "COMPLETE" in t for t in tables)
    assert any("image/png" in o.get("data", {}) for o in outputs), "the plot was not drawn"
    assert (work / "runs" / "optuna.db").is_file()
