"""Execute the notebooks in experiments/notebooks (real data) and check the numbers they report."""

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
from step_cap import step_cap_code  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "experiments" / "notebooks"
NOTEBOOK = NOTEBOOKS / "diagnostics.ipynb"
ROUTING_NOTEBOOK = NOTEBOOKS / "routing.ipynb"
#: SVI steps each notebook fit may take here (they ask for 1,000 and 2,000), and pairs to_inference_data converts.
STEP_CAP, PAIR_CAP = 600, 100_000


def _summary_output(notebook) -> dict:
    """The JSON printed by the cell tagged ``summary``."""
    cells = [cell for cell in notebook.cells if "summary" in cell.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, "the notebook needs exactly one cell tagged 'summary'"
    text = "".join(output.get("text", "") for output in cells[0].outputs if output.get("output_type") == "stream")
    return json.loads(text)


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda path: path.name)
def test_committed_notebook_has_no_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, "clear the notebook's outputs before committing"


def _executed_summary(path: Path, monkeypatch) -> dict:
    """Run a notebook top to bottom in a fresh kernel; the JSON its ``summary`` cell prints."""
    # The kernel inherits this environment: a non-interactive backend, and this checkout first on the path.
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    notebook = nbformat.read(path, as_version=4)
    # The fits capped as in the README-examples test (tests/step_cap.py): the notebook's cells run as written.
    notebook.cells.insert(0, nbformat.v4.new_code_cell(step_cap_code(STEP_CAP, PAIR_CAP)))
    client = nbclient.NotebookClient(
        notebook, kernel_name="python3", timeout=900, resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()  # raises CellExecutionError naming the failing cell
    errors = [output for cell in notebook.cells if cell.cell_type == "code"
              for output in cell.outputs if output.get("output_type") == "error"]
    assert not errors
    return _summary_output(notebook)


def _require_shared(name: str) -> None:
    try:
        shared_dataset_path(name)
    except DataError as error:
        pytest.skip(str(error))


@pytest.mark.slow
def test_diagnostics_notebook_runs_and_reports_sane_numbers(monkeypatch):
    _require_shared("openllm-v2-mmlupro-math")
    summary = _executed_summary(NOTEBOOK, monkeypatch)

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


@pytest.mark.slow
def test_routing_notebook_runs_and_routes_better_than_chance(monkeypatch):
    _require_shared("openllm-v2")
    pytest.importorskip("sentence_transformers")  # the notebook embeds a question typed into it
    summary = _executed_summary(ROUTING_NOTEBOOK, monkeypatch)

    accuracy, cost = summary["accuracy"], summary["mean_cost"]
    assert summary["n_candidates"] >= 5 and summary["n_questions"] >= 1000
    full_routers = [name for name in accuracy if name not in ("oracle", "greedy + abstain")]
    assert all(accuracy["oracle"] >= accuracy[name] for name in full_routers)
    # Routing on the model beats routing at random by a wide margin (24 LLMs of very different strength).
    assert accuracy["greedy"] > accuracy["random"] + 0.05
    # The budgeted policy keeps to the best single LLM's cost (chosen from the model's expected cost).
    assert cost["cost-aware @ best-single cost"] <= summary["best_single_cost"] * (1 + 1e-6)
    # Abstaining on unsure questions raises the accuracy on those routed.
    assert accuracy["greedy + abstain"] > accuracy["greedy"]
    assert summary["selective_accuracy_first"] > accuracy["greedy"]
    low, high = summary["curve_cost_range"]
    assert 0 < low < high
    new = summary["new_question"]
    assert 0 < new["lower"] < new["prob"] < new["upper"] < 1 and new["cost"] > 0
    assert summary["new_question_prior_sd"] > 0
