"""Ctrl-C and SIGTERM stop a command within seconds, in one line, with exit code 130 / 143, never a segmentation
fault, never a fit that goes on and saves, and never a partial or staging folder (bayes_simrmf.interrupts).

The fits are real subprocesses of ``python -m bayes_simrmf.cli fit`` on a tiny synthetic split with an unbounded
number of steps; the save is a real ``save_model`` slowed down in a subprocess so that the signal lands during it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIT = ["fit", "--method", "mf", "--guide", "normal", "--T", "10", "--n-known-llms", "20", "--n-known-items", "30",
       "--dim", "2", "--no-baseline", "--max-steps", "100000000", "--tol", "0", "--n-test-pairs", "200"]


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), PYTHONUNBUFFERED="1")


def _start_fit(out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bayes_simrmf.cli", *FIT, "--out", str(out)], cwd=out.parent,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(process: subprocess.Popen, needle: str, stream: str = "stdout", timeout: float = 120) -> str:
    """Read ``stream`` of ``process`` until it holds ``needle`` (the fit never ends by itself: its steps are
    unbounded); what was read. The progress bar on stderr has no newlines, so this reads raw chunks."""
    import select

    handle = getattr(process, stream)
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and needle not in seen:
        ready, _, _ = select.select([handle], [], [], 0.2)
        if ready:
            chunk = os.read(handle.fileno(), 65536).decode(errors="replace")
            if not chunk and process.poll() is not None:
                pytest.fail(f"the process ended before {needle!r}: {seen[-2000:]}")
            seen += chunk
    if needle not in seen:
        pytest.fail(f"no {needle!r} within {timeout} s")
    return seen


def _stop(process: subprocess.Popen, number: int) -> tuple[int, float, str]:
    """Send signal ``number``; (exit code, seconds to exit, stderr)."""
    sent = time.monotonic()
    process.send_signal(number)
    try:
        _, stderr = process.communicate(timeout=20)  # what _wait_for did not read
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
        pytest.fail(f"still running 20 s after signal {number}: {stderr[-2000:]}")
    return process.returncode, time.monotonic() - sent, stderr


def _check_stopped(code: int, seconds: float, stderr: str, number: int, folder: Path) -> None:
    assert code == 128 + number, stderr[-2000:]  # not 139 (segmentation fault), not 0 (went on and saved)
    assert seconds < 10
    last = stderr.replace("\r", "\n").strip().splitlines()[-1]
    assert last.startswith("interrupted by SIG") and "Traceback" not in stderr and "Exception ignored" not in stderr
    assert sorted(p.name for p in folder.iterdir()) == []  # no model, no staging folder


# (signal, the output after which it is sent, on which stream): while importing (after 1 s), as the fit sets up
# (the split's summary was printed), while the SVI steps run (the progress bar on stderr shows a loss).
CASES = [(signal.SIGINT, None, None), (signal.SIGTERM, "train degree", "stdout"), (signal.SIGINT, "loss=", "stderr")]


@pytest.mark.parametrize(("number", "after", "stream"), CASES, ids=["int-import", "term-setup", "int-steps"])
def test_a_signal_during_a_fit_stops_it_in_one_line_leaving_nothing(tmp_path, number, after, stream):
    process = _start_fit(tmp_path / "model")
    if after is None:
        time.sleep(1.0)
    else:
        _wait_for(process, after, stream)
    _check_stopped(*_stop(process, number), number, tmp_path)


_SLOW_SAVE = textwrap.dedent("""
    import sys, time
    from bayes_simrmf import interrupts, saving
    from bayes_simrmf.predict import MeanScore

    interrupts.install()
    versions = saving._versions
    def slow_versions():
        print("saving", flush=True)
        time.sleep(30)
        return versions()
    saving._versions = slow_versions
    saving.save_model(sys.argv[1], MeanScore().fit(["a"], ["x"], [1]), data_fingerprint=None, overwrite=True)
    print("saved", flush=True)
""")


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_a_save_removes_the_staging_folder_and_keeps_the_old_model(tmp_path, number):
    from bayes_simrmf.predict import MeanScore
    from bayes_simrmf.saving import load_model, save_model

    old = save_model(tmp_path / "m", MeanScore().fit(["old"], ["x"], [0]), data_fingerprint=None)
    process = subprocess.Popen([sys.executable, "-c", _SLOW_SAVE, str(old)], env=_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    _wait_for(process, "saving")
    assert any(p.name.startswith(".m.staging-") for p in tmp_path.iterdir())
    code, seconds, stderr = _stop(process, number)
    assert code == 128 + number and seconds < 5 and "removed 1 unfinished output" in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    assert load_model(old).estimator.predict(["a"], ["x"])[0] == 0.0  # the old model (the new one predicts 1)


def test_a_signal_inside_deferred_waits_for_the_block_to_finish(tmp_path):
    script = textwrap.dedent("""
        import os, signal, sys
        from bayes_simrmf import interrupts

        interrupts.install()
        with interrupts.deferred():
            os.kill(os.getpid(), signal.SIGINT)
            open(sys.argv[1], "w").write("done")
        print("went on after the block", flush=True)
    """)
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "marker")], env=_env(), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 130 and (tmp_path / "marker").read_text() == "done"
    assert "went on" not in result.stdout


def test_a_signal_after_a_save_says_the_saved_output_is_whole(tmp_path):
    script = textwrap.dedent("""
        import os, signal, sys
        from bayes_simrmf import interrupts
        from bayes_simrmf.predict import MeanScore
        from bayes_simrmf.saving import save_model

        interrupts.install()
        save_model(sys.argv[1], MeanScore().fit(["a"], ["x"], [1]), data_fingerprint=None)
        print("saved to", sys.argv[1], flush=True)
        os.kill(os.getpid(), signal.SIGTERM)
    """)
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "m")], env=_env(), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 143 and "saved to" in result.stdout
    assert f"{tmp_path / 'm'} was written in full before it" in result.stderr
    from bayes_simrmf.saving import load_model

    assert load_model(tmp_path / "m").estimator.predict(["a"], ["x"])[0] == 1.0
