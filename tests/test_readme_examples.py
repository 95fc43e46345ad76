"""The README's Python examples run as written: its ```python blocks, in order, as one script from the
repository root on the shared data (``$BAYES_SIMRMF_DATA`` replaces ``../shared/data`` where set)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bayes_simrmf.data import default_data_dir
from step_cap import step_cap_code

ROOT = Path(__file__).resolve().parents[1]


#: SVI steps the examples may take here (the README's fits allow up to 3,000): enough for the fits to
#: reach the losses and metrics the examples print, few enough for the suite's time budget.
STEP_CAP = 500
#: Pairs the ArviZ example may convert here (the README's 100,000): PSIS-LOO over them was 39 s of the test's 65 s.
PAIR_CAP = 10_000
#: Prepended to the examples in the test only (see tests/step_cap.py).
PREAMBLE = step_cap_code(STEP_CAP, PAIR_CAP)


def readme_script() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    return "\n".join(blocks)


def test_the_readme_has_python_examples_that_use_the_shared_data():
    script = readme_script()
    assert script.count("import") >= 4 and "../shared/data/" in script


def test_the_readme_python_examples_run_as_written(tmp_path):
    data_dir = default_data_dir()
    if not (data_dir / "openllm-v2-mmlupro-math").is_dir():
        pytest.skip(f"shared data not found in {data_dir}")
    script = readme_script().replace("../shared/data/", f"{data_dir.as_posix()}/")
    path = tmp_path / "readme_examples.py"
    path.write_text(PREAMBLE + script)
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(path)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, f"README examples failed:\n{done.stderr[-3000:]}"
    assert "rmse_p" in done.stdout and "observed:" in done.stdout, done.stdout[-2000:]
    # The capped fits still learn: the printed split C RMSE_p is well below the 0.41 of the mean score.
    rmse_p = float(re.search(r"rmse_p\W+([0-9.]+)", done.stdout).group(1))
    assert rmse_p < 0.37, done.stdout[-2000:]
