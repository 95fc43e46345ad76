"""The README quotes its result files: its Table 2 block is what the committed cells give."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "readme_results.py"


def load_script():
    spec = importlib.util.spec_from_file_location("readme_results", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_blocks_match_the_result_files():
    module = load_script()
    text = module.README.read_text()
    assert module.updated_readme(text) == text, "README.md's result blocks are stale: run python experiments/readme_results.py"


def test_a_changed_routing_result_makes_the_check_fail(tmp_path):
    module = load_script()
    config = json.loads(module.ROUTING_CONFIG.read_text())
    name = next(iter(config["runs"]))
    source = module.RESULTS / f"routing_{name}.csv"
    if not source.is_file():
        pytest.skip("no routing results committed yet")
    frame = __import__("pandas").read_csv(source)
    frame.loc[frame["name"] == "greedy", "accuracy"] += 0.01
    frame.to_csv(tmp_path / f"routing_{name}.csv", index=False)
    assert module.render_routing(config, tmp_path) != module.render_routing(config, module.RESULTS)


def test_a_changed_cell_makes_the_check_fail(tmp_path):
    module = load_script()
    config = json.loads(module.CONFIG.read_text())
    dataset = "openllm-v2-bbh-tso5"  # one dataset's cells keep the test quick; render reads only the config's
    if not (module.CELLS / dataset).is_dir():
        pytest.skip("no result cells committed yet")
    config = {**config, "datasets": {dataset: config["datasets"][dataset]}}
    cells = tmp_path / "cells"
    shutil.copytree(module.CELLS / dataset, cells / dataset)
    before = module.render(config, cells)
    cell_file = next(p for p in sorted(cells.glob("*/T*/seed*/*.json")) if p.name == "MF+groups.json")
    payload = json.loads(cell_file.read_text())
    payload["scores"]["B"]["rmse_m"] += 0.01
    cell_file.write_text(json.dumps(payload))
    assert module.render(config, cells) != before


def test_paired_difference_is_the_mean_over_seeds_with_a_t_interval():
    import numpy as np
    import pandas as pd
    from scipy import stats

    load_script()  # puts experiments/ on sys.path
    from bayes_simrmf.evaluate.tables import paired_difference

    ours = [0.10, 0.12, 0.11]
    reference = [0.12, 0.13, 0.14]
    frame = pd.DataFrame({"seed": [0, 1, 2] * 2, "method": ["ours"] * 3 + ["ref"] * 3, "split": "B",
                          "rmse_m": ours + reference})
    result = paired_difference(frame, "ours", "ref", "B", "rmse_m")
    diff = np.subtract(ours, reference)
    half = stats.t.ppf(0.975, 2) * diff.std(ddof=1) / np.sqrt(3)
    assert result["n"] == 3 and result["wins"] == 3
    np.testing.assert_allclose([result["diff"], result["lower"], result["upper"]],
                               [diff.mean(), diff.mean() - half, diff.mean() + half])
    np.testing.assert_allclose(result["relative"], diff.mean() / np.mean(reference))
    assert paired_difference(frame[frame["seed"] == 0], "ours", "ref", "B", "rmse_m") is None  # one seed: no interval


def test_every_figure_in_the_readme_prose_is_in_a_result_file():
    """Outside code and the generated block, each decimal, percentage, ratio or duration the README states
    must appear verbatim in a committed result file (experiments/results/*.md or docs/*.md)."""
    import re

    text = (ROOT / "README.md").read_text()
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"<!-- results:(\w+):begin -->.*?<!-- results:\1:end -->", "", text, flags=re.S)  # generated
    sources = [*(ROOT / "experiments" / "results").glob("*.md"), *(ROOT / "experiments" / "results").glob("*.csv"),
               *(ROOT / "docs").glob("*.md")]
    corpus = "\n".join(path.read_text() for path in sources)
    patterns = (r"(?<![\w.])\d+\.\d+(?![\w.])", r"\d+(?:\.\d+)?\s?%", r"\d+(?:\.\d+)?[×x](?![\w])",
                r"\d[\d,]*(?:\.\d+)?\s(?:s|ms|MiB|GiB|GB|min)\b")
    missing = sorted({figure for pattern in patterns for figure in re.findall(pattern, text)
                      if figure not in corpus and figure.replace(" ", "") not in corpus})
    assert not missing, f"README figures not found in any result file: {missing}"


def test_goal_rows_need_the_reduction_and_an_interval_below_zero():
    import numpy as np
    import pandas as pd

    load_script()
    from bayes_simrmf.evaluate.tables import goal_rows

    rng = np.random.default_rng(0)
    reference = 0.10 + 0.005 * rng.random(5)
    rows = []
    for seed in range(5):
        for method, factor in (("ref", 1.0), ("big", 0.7), ("small", 0.9), ("noisy", 1.05 if seed % 2 else 0.55)):
            rows.append({"T": 100, "seed": seed, "method": method, "split": "B", "rmse_m": reference[seed] * factor})
    floors = pd.DataFrame({"T": 100, "seed": range(5), "B_floor_m": 0.04})
    config = {"goal": {"B rmse_m": -0.2}, "reference": "ref", "goal_methods": ["big", "small", "noisy", "absent"],
              "goal_bound": "big"}
    result = {row["method"]: row for row in goal_rows(pd.DataFrame(rows), floors, config)}
    assert set(result) == {"big", "small", "noisy"}
    assert result["big"]["met"] and not result["small"]["met"]
    noisy = result["noisy"]["B rmse_m"]  # a mean change past -20% but an interval that crosses zero
    assert noisy["relative"] < -0.2 and noisy["upper"] > 0 and not result["noisy"]["met"]
    np.testing.assert_allclose(result["big"]["B rmse_m"]["relative"], -0.3)
    np.testing.assert_allclose(result["small"]["B rmse_m"]["headroom"], np.mean(1 - 0.04 / reference))
    np.testing.assert_allclose(result["small"]["B rmse_m"]["bound"], -0.3)


def test_peer_rows_pair_ours_with_each_peer_on_every_split_and_metric():
    import numpy as np
    import pandas as pd

    load_script()
    from bayes_simrmf.evaluate.tables import METRICS, SPLITS, peer_rows

    rows = []
    for seed in range(4):
        for method, factor, seconds in (("ours", 0.9, 10.0), ("slow", 1.0, 50.0), ("lucky", 0.8, 5.0)):
            if method == "lucky" and seed > 0:  # a peer with one seed only: no interval
                continue
            for split in SPLITS:
                metrics = {metric: factor * (0.1 + 0.01 * seed) for metric in METRICS}
                if split == "D" and method == "slow":
                    metrics["rmse_x"] = 0.05  # the one cell where the peer is better
                rows.append({"T": 100, "seed": seed, "method": method, "split": split, **metrics,
                             "fit_seconds": seconds / 2, "tune_seconds": seconds / 2})
    config = {"peers": {"ours": "ours", "peers": ["slow", "lucky", "absent"]}}
    result = {row["peer"]: row for row in peer_rows(pd.DataFrame(rows), config)}
    assert set(result) == {"slow", "lucky"}
    slow, lucky = result["slow"], result["lucky"]
    assert slow["seeds"] == 4 and slow["n_cells"] == 12 and slow["ahead"] == 11
    np.testing.assert_allclose(slow["cells"]["A rmse_p"]["relative"], -0.1)
    assert slow["cells"]["A rmse_p"]["upper"] < 0 and slow["cells"]["D rmse_x"]["lower"] > 0
    np.testing.assert_allclose(slow["time_ratio"], 5.0)
    assert lucky["seeds"] == 1 and lucky["ahead"] == 0 and lucky["cells"]["B rmse_m"]["upper"] is None
    np.testing.assert_allclose(lucky["cells"]["B rmse_m"]["relative"], 0.9 / 0.8 - 1)
    assert peer_rows(pd.DataFrame(rows), {"peers": {"ours": "nobody", "peers": ["slow"]}}) == []
    both = peer_rows(pd.DataFrame(rows), {"peers": {"ours": ["ours", "lucky", "nobody"], "peers": ["slow"]}})
    assert [(row["ours"], row["peer"]) for row in both] == [("ours", "slow"), ("lucky", "slow")]


def test_every_percentage_in_the_findings_is_in_its_dataset_section_of_table2():
    """The prose under the Table 2 block quotes relative changes; each must stand in table2.md's section of the
    dataset its paragraph is about (a stale or mistyped figure fails)."""
    import re

    readme = (ROOT / "README.md").read_text()
    findings = readme.split("What the cells show", 1)[1].split("Other studies", 1)[0]
    table = (ROOT / "experiments" / "results" / "table2.md").read_text()
    sections = dict(re.findall(r"^## (\S+) \(.*?\n(.*?)(?=^## |\Z)", table, flags=re.M | re.S))
    paragraphs = re.findall(r"^\*\*(\S+) \(.*?\n(.*?)(?=^\*\*\S+ \(|\Z)", findings, flags=re.M | re.S)
    assert len(paragraphs) >= 4, "expected one findings paragraph per re-run dataset"
    for dataset, text in paragraphs:
        assert dataset in sections, f"README findings name {dataset}, which table2.md has no section for"
        missing = [figure for figure in re.findall(r"[-+]\d+\.\d%", text) if figure not in sections[dataset]]
        assert not missing, f"README's {dataset} findings quote {missing}, not in table2.md's {dataset} section"
