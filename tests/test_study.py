"""The study framework: provenance of result cells, mixed-code refusal, one paired interval, grid extension."""

from __future__ import annotations

import json
import math
import subprocess

import numpy as np
import pytest

from bayes_simrmf.evaluate.study import (
    CellStore,
    StudyCells,
    StudyError,
    check_provenance,
    code_state,
    max_difference,
    paired_interval,
    provenance,
)
from bayes_simrmf.evaluate.tuning import GRID_BOUNDS, Bound, grid_search, next_value, staged_search


def git(root, *args):
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    (root / "bayes_simrmf").mkdir(parents=True)
    (root / "experiments" / "results").mkdir(parents=True)
    (root / "bayes_simrmf" / "model.py").write_text("x = 1\n")
    (root / "pyproject.toml").write_text("[project]\n")
    (root / "experiments" / "study.py").write_text("run = True\n")
    (root / "experiments" / "results" / "cell.json").write_text("{}\n")
    (root / "README.md").write_text("docs\n")
    git(root, "init", "-q")
    git(root, "-c", "user.email=t@t", "-c", "user.name=t", "add", ".")
    git(root, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "first")
    return root


def commit_all(root, message):
    git(root, "add", "-A")
    git(root, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", message)


def test_code_tree_follows_the_code_not_the_results_or_docs(repo):
    first = code_state(["experiments/study.py"], root=repo)
    assert first["dirty"] is False and len(first["commit"]) == 40
    (repo / "experiments" / "results" / "cell.json").write_text('{"a": 1}\n')
    (repo / "README.md").write_text("more docs\n")
    assert code_state(["experiments/study.py"], root=repo)["dirty"] is False  # results and docs are not code
    commit_all(repo, "results and docs")
    second = code_state(["experiments/study.py"], root=repo)
    assert second["commit"] != first["commit"] and second["code_tree"] == first["code_tree"]
    (repo / "bayes_simrmf" / "model.py").write_text("x = 2\n")
    dirty = code_state(["experiments/study.py"], root=repo)
    assert dirty["dirty"] is True and dirty["dirty_paths"] == ["bayes_simrmf/model.py"]
    commit_all(repo, "code")
    assert code_state(["experiments/study.py"], root=repo)["code_tree"] != first["code_tree"]
    (repo / "experiments" / "study.py").write_text("run = False\n")
    assert code_state(["experiments/study.py"], root=repo)["dirty"] is True
    assert code_state([], root=repo)["dirty"] is False  # a script the study does not name


def test_import_closure_follows_lazy_and_in_function_imports(tmp_path):
    from bayes_simrmf.evaluate.study import import_closure

    package = tmp_path / "bayes_simrmf"
    for folder in (package, package / "sub", package / "cli"):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "__init__.py").write_text("")
    (package / "__init__.py").write_text('_LAZY = {"thing": "bayes_simrmf.lazy"}\n')
    (package / "lazy.py").write_text("from bayes_simrmf.sub import inner\n")
    (package / "sub" / "inner.py").write_text("def f():\n    import bayes_simrmf.deep\n")
    (package / "deep.py").write_text("")
    (package / "unreached.py").write_text("")
    (package / "cli" / "main.py").write_text("import bayes_simrmf.lazy\n")
    (tmp_path / "script.py").write_text("def main():\n    from bayes_simrmf import sub\n")
    assert import_closure(["script.py"], root=tmp_path) == [
        "bayes_simrmf/__init__.py", "bayes_simrmf/deep.py", "bayes_simrmf/lazy.py", "bayes_simrmf/sub/__init__.py",
        "bayes_simrmf/sub/inner.py", "script.py"]


def test_the_table2_runner_does_not_depend_on_the_cli_or_the_hub():
    from bayes_simrmf.evaluate.study import import_closure

    from bayes_simrmf.evaluate.runner import STUDY_CODE

    closure = import_closure(STUDY_CODE)
    assert "bayes_simrmf/evaluate/tuning.py" in closure and "bayes_simrmf/model/program.py" in closure
    assert "bayes_simrmf/predict/peers.py" in closure
    # The tables and the driver are not part of what a cell computes: reformatting them keeps the cells current.
    assert not any(path.startswith(("bayes_simrmf/cli/", "bayes_simrmf/hub/", "experiments/")) for path in closure)
    assert "bayes_simrmf/evaluate/tables.py" not in closure


def test_code_state_outside_git_is_unknown(tmp_path):
    state = code_state([], root=tmp_path)
    assert state == {"commit": None, "code_tree": None, "dirty": None, "dirty_paths": None}


def cell(tree, dirty=False, commit="c" * 40):
    return {"scores": {"A": {"rmse_p": 0.3}}, "provenance": {"code_tree": tree, "dirty": dirty, "commit": commit}}


def test_mixed_code_is_refused_unless_asked_then_marked():
    cells = [("a", cell("t1")), ("b", cell("t1")), ("c", cell("t2")), ("d", {"scores": {}}), ("e", cell("t1", dirty=True))]
    with pytest.raises(StudyError) as caught:
        check_provenance(cells)
    message = str(caught.value)
    assert "c" in message and "without provenance" in message and "dirty" in message and "--allow-mixed" in message
    report = check_provenance(cells, allow_mixed=True)
    assert report.code_tree == "t1" and not report.clean
    assert [report.mark(name) for name in "abcde"] == ["", "", "other code", "no provenance", "dirty"]
    assert any("Mixed provenance" in line for line in report.header())
    clean = check_provenance(cells[:2])
    assert clean.clean and clean.commits == ["c" * 40]


def test_study_cells_resume_stamp_and_recompute_only_stale_cells(repo, tmp_path):
    calls = []

    def compute(value):
        def run():
            calls.append(value)
            return {"scores": {"rmse": np.float64(value)}, "n": np.int64(3)}
        return run

    config = {"dataset": "d", "seed": 0}
    study = StudyCells(tmp_path / "cells", ["experiments/study.py"], repo=repo)
    cell = study.get(("d", "seed0", "MF"), config, compute(0.5), data_hash=lambda: "fingerprint")
    assert cell["scores"] == {"rmse": 0.5} and cell["n"] == 3 and calls == [0.5]
    block = cell["provenance"]
    assert block["data_hash"] == "fingerprint" and block["dirty"] is False and block["code_tree"] == study.code["code_tree"]
    assert study.get(("d", "seed0", "MF"), config, compute(0.7), data_hash="x") == cell and calls == [0.5]  # resumed

    (repo / "experiments" / "study.py").write_text("run = False\n")
    with pytest.raises(StudyError, match="uncommitted changes .*experiments/study.py"):
        StudyCells(tmp_path / "cells", ["experiments/study.py"], repo=repo)
    commit_all(repo, "new code")
    later = StudyCells(tmp_path / "cells", ["experiments/study.py"], repo=repo)
    assert later.get(("d", "seed0", "MF"), config, compute(0.7), data_hash="x") == cell  # kept without rerun_stale
    lines = []
    rerun = StudyCells(tmp_path / "cells", ["experiments/study.py"], repo=repo, rerun_stale=True, log=lines.append)
    assert rerun.needs(("d", "seed0", "MF"), config)
    fresh = rerun.get(("d", "seed0", "MF"), config, compute(0.75), data_hash="x")
    assert calls == [0.5, 0.75] and fresh["recomputed"]["max_score_difference"] == pytest.approx(0.25)
    assert fresh["recomputed"]["from_commit"] == block["commit"] != fresh["provenance"]["commit"]
    assert lines and "moved by at most 0.25" in lines[0]
    assert not rerun.needs(("d", "seed0", "MF"), config) and rerun.needs(("d", "seed0", "MF"), {**config, "seed": 1})
    assert rerun.report().clean and rerun.report().n_cells == 1

    from bayes_simrmf.evaluate.study import study_parser

    args = study_parser("doc", tmp_path / "c.json").parse_args(["--aggregate-only"])
    stored = StudyCells.from_args(tmp_path / "cells", ["experiments/study.py"], args, log=None)
    assert stored.read_only and stored.get(("d", "seed0", "MF"), {}, compute(9.0), data_hash="x") == fresh
    assert stored.get(("d", "seed1", "MF"), config, compute(9.0), data_hash="x") is None and 9.0 not in calls


def test_provenance_block_hashes_the_config_and_records_the_code():
    code = {"commit": "a" * 40, "code_tree": "t", "dirty": False, "dirty_paths": []}
    first = provenance(code, config={"T": 100, "method": "MF"}, data_hash="d")
    second = provenance(code, config={"method": "MF", "T": 100}, data_hash="d")
    other = provenance(code, config={"method": "MF", "T": 300}, data_hash="d")
    assert first["config_hash"] == second["config_hash"] != other["config_hash"]
    assert first["commit"] == "a" * 40 and first["dirty"] is False and first["data_hash"] == "d"
    assert first["package_version"] and first["versions"]["jax"]


def test_cell_store_writes_whole_files(tmp_path):
    store = CellStore(tmp_path / "cells")
    path = store.write({"x": np.float32(0.5), "n": np.int64(3)}, "ds", "T100", "seed0", "MF")
    assert path == tmp_path / "cells" / "ds" / "T100" / "seed0" / "MF.json"
    assert store.has("ds", "T100", "seed0", "MF") and store.read("ds", "T100", "seed0", "MF") == {"x": 0.5, "n": 3}
    assert [p.name for p in path.parent.iterdir()] == ["MF.json"]  # no temporary left
    path.write_text("{not json")
    with pytest.raises(StudyError, match="MF.json"):
        store.read("ds", "T100", "seed0", "MF")


def test_paired_interval_is_the_t_interval():
    from scipy import stats

    diff = np.array([0.01, -0.02, 0.005, 0.0, 0.012])
    mean, lower, upper = paired_interval(diff)
    half = stats.t.ppf(0.975, 4) * diff.std(ddof=1) / math.sqrt(5)
    assert mean == pytest.approx(diff.mean()) and lower == pytest.approx(diff.mean() - half)
    assert upper == pytest.approx(diff.mean() + half)
    assert math.isnan(paired_interval([0.1])[1]) and math.isnan(paired_interval([])[0])


def test_max_difference_walks_json():
    assert max_difference({"a": [1.0, 2.0], "b": "x"}, {"a": [1.0, 2.5], "b": "x"}) == pytest.approx(0.5)
    assert max_difference({"a": 1.0}, {"b": 1.0}) == math.inf
    assert max_difference({"a": float("nan")}, {"a": float("nan")}) == 0.0
    assert max_difference([1], [1, 2]) == math.inf


class ConstantProbability:
    """Predicts one probability ``p`` for every pair; the log loss on 0/1 answers of rate r is lowest at p = r."""

    def __init__(self, p, label="x"):
        self.p = p

    def fit(self, llm, item, correct):
        return self

    def predict(self, llm, item, unknown="error"):
        return np.full(len(llm), self.p)


@pytest.fixture(scope="module")
def pairs():
    rng = np.random.default_rng(0)
    n = 4000
    return rng.integers(0, 40, n), rng.integers(0, 100, n), (rng.random(n) < 0.03).astype(np.int8)


def test_an_edge_choice_extends_the_grid_until_interior(pairs):
    lines = []
    result = grid_search(ConstantProbability, {"p": [0.3, 0.5, 0.7]}, *pairs, bounds={"p": Bound(1e-3, 1 - 1e-3)},
                         log=lines.append)
    assert result.edges == {"p": "interior"} and result.at_edge == []
    assert result.best["p"] < 0.1  # the grid's edge 0.3 was far from the optimum near 0.03
    added = result.table[result.table["extension"] > 0]
    assert len(added) >= 2 and added["p"].max() < 0.3
    assert any("lower edge" in line for line in lines)
    tried = sorted(result.table["p"])
    assert tried[0] < result.best["p"] < tried[-1]


def test_a_natural_bound_stops_the_extension(pairs):
    llm, item, _ = pairs
    never = np.zeros(len(llm), dtype=np.int8)  # no answer is correct: the best probability is the bound 0
    result = grid_search(ConstantProbability, {"p": [0.0, 0.1, 0.5]}, llm, item, never, bounds={"p": Bound(0, 1)})
    assert result.best == {"p": 0.0} and result.edges == {"p": "bound"} and len(result.table) == 3


def test_without_a_known_bound_or_with_extension_off_the_edge_is_reported(pairs):
    lines = []
    result = grid_search(ConstantProbability, {"p": [0.3, 0.5]}, *pairs, bounds={}, log=lines.append)
    assert result.edges == {"p": "edge"} and result.at_edge == ["p"] and len(result.table) == 2
    assert any("still at the edge" in line for line in lines)
    off = grid_search(ConstantProbability, {"p": [0.3, 0.5]}, *pairs, bounds={"p": Bound(1e-3, 1)}, extend=False)
    assert off.edges == {"p": "edge"} and len(off.table) == 2
    at_bound = grid_search(ConstantProbability, {"p": [0.03, 0.5]}, *pairs, bounds={"p": Bound(0.03, 1)})
    assert at_bound.edges == {"p": "bound"} and len(at_bound.table) == 2


def test_single_values_and_labels_have_no_edge(pairs):
    def make(p, label):
        return ConstantProbability(p)

    result = grid_search(make, {"p": [0.03], "label": ["a", "b"]}, *pairs, bounds={"p": Bound(1e-3, 1)})
    assert result.edges == {"p": "single", "label": "interior"}


def test_staged_search_passes_the_extension_on(pairs):
    chosen, results = staged_search(lambda **o: ConstantProbability(o["p"]), [{"grid": {"p": [0.3, 0.5]}}], *pairs)
    assert results[0].table["extension"].max() == 0 and results[0].edges == {"p": "edge"}  # "p" has no known bound
    chosen, results = staged_search(lambda **o: ConstantProbability(o["shrinkage"] / 1000),
                                    [{"grid": {"shrinkage": [300, 500]}}], *pairs)
    assert results[0].edges == {"shrinkage": "interior"} and chosen["shrinkage"] < 300


@pytest.mark.parametrize(("values", "side", "bound", "expected"), [
    ([0.1, 1.0, 10.0], "lower", GRID_BOUNDS["fold_in_ridge_llms"], 0.01),
    ([0.5, 1.0, 2.0], "upper", GRID_BOUNDS["lambda_reg"], 4.0),
    ([4, 8, 16], "upper", GRID_BOUNDS["dim"], 32),
    ([4, 8, 16], "lower", GRID_BOUNDS["dim"], 2),
    ([1, 2], "lower", GRID_BOUNDS["dim"], None),
    ([0, 1, 3, 10, 30, 100], "lower", GRID_BOUNDS["shrinkage"], None),
    ([0, 1, 3, 10, 30, 100], "upper", GRID_BOUNDS["shrinkage"], 333.333),
    ([0.2, 0.5], "upper", GRID_BOUNDS["alpha"], 1.0),
    ([1e-5, 1e-4], "lower", GRID_BOUNDS["fold_in_ridge_items"], None),
])
def test_next_value_is_a_geometric_step_within_the_bound(values, side, bound, expected):
    assert next_value(values, side, bound) == expected


def test_every_default_stage_parameter_has_a_bound():
    from bayes_simrmf.evaluate.tuning import DEFAULT_STAGES, PAPER_STAGES

    names = {name for stages in [*DEFAULT_STAGES.values(), PAPER_STAGES] for stage in stages for name in stage["grid"]}
    assert names <= set(GRID_BOUNDS)
    config = json.loads((__import__("pathlib").Path(__file__).resolve().parents[1]
                         / "experiments" / "configs" / "table2.json").read_text())
    tuned = {name for spec in config["methods"].values()
             for grid in [spec.get("tune", {})] + [s["grid"] for s in spec.get("stages", [])] for name in grid}
    assert tuned <= set(GRID_BOUNDS)


def test_protocol_seeds_read_table2_choices_and_name_what_is_missing(tmp_path):
    from bayes_simrmf.errors import ConfigError
    from bayes_simrmf.evaluate.seeds import ProtocolSeeds

    config = {"datasets": {"d": {"n_known_llms": 5}}, "methods": {"MF": {"method": "mf"}}, "n_test_pairs": 10}
    CellStore(tmp_path / "cells").write({"chosen": {"dim": 8}}, "d", "T100", "seed0", "MF")
    seeds = ProtocolSeeds(config, tmp_path / "cells", root=tmp_path)
    assert seeds.chosen("d", 100, 0, "MF") == {"dim": 8}
    inherited = seeds.cell_config("d", 100, 0, ["MF"])
    assert inherited["methods"]["MF"] == {"spec": {"method": "mf"}, "chosen": {"dim": 8}}
    assert inherited["dataset_options"] == {"n_known_llms": 5} and inherited["n_test_pairs"] == 10
    with pytest.raises(ConfigError, match="seed1/MF.json is missing"):
        seeds.chosen("d", 100, 1, "MF")
    with pytest.raises(ConfigError, match="'SimRMF' is not a method"):
        seeds.spec("SimRMF")
    with pytest.raises(ConfigError, match="'e' is not a dataset"):
        seeds.options("e")


def test_parse_study_names_a_bad_config_and_quotes_the_computing_command(tmp_path, monkeypatch):
    from bayes_simrmf.evaluate.study import parse_study, study_parser

    config = tmp_path / "c.json"
    config.write_text('{"seeds": [0]}')
    monkeypatch.setattr("sys.argv", ["x.py", "--config", str(config), "--aggregate-only", "--rerun-stale"])
    args, loaded, command = parse_study(study_parser("doc"), "experiments/x.py")
    assert loaded == {"seeds": [0]} and args.aggregate_only and args.rerun_stale
    assert command == f"python experiments/x.py --config {config} --rerun-stale"
    config.write_text("{not json")
    with pytest.raises(StudyError, match="cannot read the study config .*c.json"):
        parse_study(study_parser("doc"), "experiments/x.py")


def test_a_cell_store_in_another_checkout_than_the_package_is_refused(tmp_path):
    """A study run from a second worktree while the package is imported from the first would record the first's
    code as its provenance."""
    import subprocess

    from bayes_simrmf.evaluate.study import StudyCells, StudyError

    other = tmp_path / "other-checkout"
    other.mkdir()
    subprocess.run(["git", "init", "-q", str(other)], check=True)
    with pytest.raises(StudyError, match="but bayes_simrmf is imported from"):
        StudyCells(other / "experiments" / "results" / "cells", ["experiments/calibration.py"])
    StudyCells(tmp_path / "not-a-checkout" / "cells", ["experiments/calibration.py"], allow_dirty=True)  # outside git
