"""Execute experiments/notebooks/diagnostics.ipynb (real data) and check the numbers it reports."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

from bayes_simrmf.data import shared_dataset_path  # noqa: E402
from bayes_simrmf.errors import DataError  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "experiments" / "notebooks" / "diagnostics.ipynb"


def _summary_output(notebook) -> dict:
    """The JSON printed by the cell tagged ``summary``."""
    cells = [cell for cell in notebook.cells if "summary" in cell.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, "the notebook needs exactly one cell tagged 'summary'"
    text = "".join(output.get("text", "") for output in cells[0].outputs if output.get("output_type") == "stream")
    return json.loads(text)


def test_committed_notebook_has_no_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, "clear the notebook's outputs before committing"


@pytest.mark.slow
def test_diagnostics_notebook_runs_and_reports_sane_numbers(monkeypatch):
    try:
        shared_dataset_path("openllm-v2-mmlupro-math")
    except DataError as error:
        pytest.skip(str(error))
    # The kernel inherits this environment: a non-interactive backend, and this checkout first on the path.
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute()  # raises CellExecutionError naming the failing cell

    errors = [output for cell in notebook.cells if cell.cell_type == "code"
              for output in cell.outputs if output.get("output_type") == "error"]
    assert not errors
    summary = _summary_output(notebook)

    assert summary["n_steps"] > 100 and summary["loss_last"] < 0.5 * summary["loss_first"]
    assert -0.7 < summary["elpd_loo_per_pair"] < -0.1  # Bernoulli at ~22 % correct: the mean alone gives -0.53
    assert -0.7 < summary["heldout_lpd_per_pair"] < -0.1
    assert abs(summary["elpd_loo_per_pair"] - summary["heldout_lpd_per_pair"]) < 0.1
    assert 0.6 <= summary["ppc_coverage_A"] <= 1.0
    for name in ("ece_A", "ece_C"):
        assert 0.0 <= summary[name] < 0.1, name
    assert set(summary["width"]) == set(summary["coverage"]) == {"A", "B", "C", "D"}
    for name in "ABCD":
        assert 0.0 < summary["width"][name] <= 1.0
        assert 0.5 <= summary["coverage"][name] <= 1.0
    assert summary["width_cold"] > summary["width_warm"] > 0
    assert all(math.isfinite(value) for value in (summary["width_cold"], summary["width_warm"], summary["seconds"]))
