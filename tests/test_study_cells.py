"""CI re-computes one cheap committed cell per study kind and fails if it moved.

Table 2 (:mod:`bayes_simrmf.evaluate.runner`): the MeanScore and Counting cells of openllm-v2-bbh-tso5,
T=100, seed 0 (split, tuning and scores in a few seconds), compared with the committed cells to 1e-6.
Calibration (``experiments/calibration.py``): the config's ``ci`` run (MF, delta guide, small interval
sample on the same split), every number of its cell to 1e-6. Fold-in spread: openllm-v2-mmlupro-math,
seed 0, LLMs held out (two fits of a few seconds). Routing: the config's ``ci`` run (delta guide, one pool of
five LLMs).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from bayes_simrmf.data.locations import default_data_dir as shared_data_root
from bayes_simrmf.evaluate.study import max_difference

ROOT = Path(__file__).resolve().parents[1]
CELLS = ROOT / "experiments" / "results" / "table2_cells"
DATASET, T, SEED = "openllm-v2-bbh-tso5", 100, 0


@pytest.mark.slow
@pytest.mark.parametrize("label", ["MeanScore", "Counting"])
def test_a_committed_table2_cell_recomputes_within_1e_6(label):
    if not (shared_data_root() / DATASET).is_dir():
        pytest.skip(f"{DATASET} is not in {shared_data_root()} (set BAYES_SIMRMF_DATA or place ../shared beside the repo)")
    path = CELLS / DATASET / f"T{T}" / f"seed{SEED}" / f"{label}.json"
    assert path.is_file(), f"{path} is not committed"
    committed = json.loads(path.read_text())
    from bayes_simrmf.evaluate import runner

    config = json.loads((ROOT / "experiments" / "configs" / "table2.json").read_text())
    from bayes_simrmf.data import load_dataset

    dataset = load_dataset(shared_data_root() / DATASET, log=None)
    context = runner.SeedContext(dataset, config["datasets"][DATASET], T, SEED, config["n_test_pairs"], {})
    fresh = json.loads(json.dumps(runner.run_cell(context, label, config["methods"][label], config, {}), default=float))
    assert fresh["chosen"] == committed["chosen"]
    moved = max_difference(committed["scores"], fresh["scores"])
    assert moved <= 1e-6, f"{path} moved by {moved:.3g}: re-run Table 2 at this commit (run_protocol.py --rerun-stale)"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_the_committed_calibration_ci_cell_recomputes_within_1e_6():
    if not (shared_data_root() / DATASET).is_dir():
        pytest.skip(f"{DATASET} is not in {shared_data_root()} (set BAYES_SIMRMF_DATA or place ../shared beside the repo)")
    calibration = load_script("calibration")
    config = json.loads((ROOT / "experiments" / "configs" / "calibration.json").read_text())
    from bayes_simrmf.evaluate.seeds import ProtocolSeeds

    seeds = ProtocolSeeds.of(config)
    run = config["runs"]["ci"]
    assert run["dataset"] == DATASET
    label, guide = run["methods"][0], next(iter(run["guides"]))
    path = calibration.CELLS / "ci" / f"seed{SEED}" / f"{label}-{guide}.json"
    assert path.is_file(), f"{path} is not committed"
    committed = json.loads(path.read_text())
    cell_spec = calibration.cell_config(seeds, config, run, SEED, label, guide)
    from bayes_simrmf.evaluate.study import config_hash

    assert committed["provenance"]["config_hash"] == config_hash(cell_spec), "the ci run's config changed: re-run it"
    fresh = json.loads(json.dumps(calibration.run_cell(seeds.context(DATASET, run["T"], SEED), cell_spec), default=float))
    assert fresh["steps"] == committed["steps"]
    for key in ("rows", "reliability"):
        moved = max_difference(committed[key], fresh[key])
        assert moved <= 1e-6, f"{path} {key} moved by {moved:.3g}: re-run the calibration study at this commit"


@pytest.mark.slow
def test_a_committed_fold_in_spread_cell_recomputes_within_1e_6():
    dataset = "openllm-v2-mmlupro-math"
    if not (shared_data_root() / dataset).is_dir():
        pytest.skip(f"{dataset} is not in {shared_data_root()} (set BAYES_SIMRMF_DATA or place ../shared beside the repo)")
    study = load_script("fold_in_spread")
    config = json.loads((ROOT / "experiments" / "configs" / "fold_in_spread.json").read_text())
    path = study.CELLS / dataset / f"T{config['T']}" / f"seed{SEED}" / "llms.json"
    assert path.is_file(), f"{path} is not committed"
    committed = json.loads(path.read_text())
    from bayes_simrmf.evaluate.seeds import ProtocolSeeds
    from bayes_simrmf.evaluate.study import config_hash

    seeds = ProtocolSeeds.of(config)
    spec = study.cell_config(seeds, config, dataset, SEED, "llms")
    assert committed["provenance"]["config_hash"] == config_hash(spec), "the fold-in spread config changed: re-run it"
    fresh = study.run_cell(seeds.context(dataset, config["T"], SEED), spec)
    moved = max_difference(committed["scores"], json.loads(json.dumps(fresh["scores"])))
    assert moved <= 1e-6, f"{path} moved by {moved:.3g}: re-run the fold-in spread study at this commit"


@pytest.mark.slow
def test_the_committed_routing_ci_cell_recomputes_within_1e_6():
    routing = load_script("routing")
    config = json.loads((ROOT / "experiments" / "configs" / "routing.json").read_text())
    run = config["runs"]["ci"]
    if not (shared_data_root() / run["dataset"]).is_dir():
        pytest.skip(f"{run['dataset']} is not in {shared_data_root()} (set BAYES_SIMRMF_DATA or place ../shared beside the repo)")
    (guide,) = run["guides"]
    path = routing.CELLS / "ci" / f"seed{SEED}" / f"{guide}.json"
    assert path.is_file(), f"{path} is not committed"
    committed = json.loads(path.read_text())
    from bayes_simrmf.evaluate.seeds import ProtocolSeeds
    from bayes_simrmf.evaluate.study import config_hash

    seeds = ProtocolSeeds.of(config)
    spec = routing.cell_config(seeds, config, run, SEED, guide)
    assert committed["provenance"]["config_hash"] == config_hash(spec), "the routing ci run's config changed: re-run it"
    fresh = json.loads(json.dumps(routing.run_cell(seeds.context(run["dataset"], run["T"], SEED), spec), default=float))
    for key in ("per_pool", "selective", "differences"):
        moved = max_difference(committed[key], fresh[key])
        assert moved <= 1e-6, f"{path} {key} moved by {moved:.3g}: re-run the routing study at this commit"


def test_report_writes_its_header_and_what_was_said(tmp_path, capsys):
    from bayes_simrmf.evaluate.study import Report

    report = Report("A study", "python study.py --seed 3", code={"commit": "abc123", "dirty": True})
    report.say("| a | b |")
    report.write(tmp_path / "out.md")
    lines = (tmp_path / "out.md").read_text().splitlines()
    assert lines[:4] == ["# A study", "", "Command: `python study.py --seed 3`  ", "Code: abc123 (dirty)  "]
    assert lines[4].startswith("machine: ") and lines[-1] == "| a | b |"
    assert "| a | b |" in capsys.readouterr().out
