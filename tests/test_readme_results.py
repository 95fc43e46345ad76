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


def test_readme_block_matches_the_result_cells():
    module = load_script()
    config = json.loads(module.CONFIG.read_text())
    text = module.README.read_text()
    assert module.replace_block(text, module.render(config, module.CELLS)) == text, (
        "README.md's results block is stale: run python experiments/readme_results.py")


def test_a_changed_cell_makes_the_check_fail(tmp_path):
    module = load_script()
    config = json.loads(module.CONFIG.read_text())
    cells = tmp_path / "cells"
    shutil.copytree(module.CELLS, cells)
    cell_files = [p for p in cells.glob("*/T*/seed*/*.json") if p.name != "split.json"]
    if not cell_files:
        pytest.skip("no result cells committed yet")
    payload = json.loads(cell_files[0].read_text())
    payload["scores"]["B"]["rmse_m"] += 0.01
    cell_files[0].write_text(json.dumps(payload))
    text = module.README.read_text()
    assert module.replace_block(text, module.render(config, cells)) != text
