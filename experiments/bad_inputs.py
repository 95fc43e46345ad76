"""Issue 16: bad inputs and faults tried as a user would, and what the command line does with each now.

Every case runs the real command (``python -m bayes_simrmf.cli ...``) in a subprocess, in a scratch folder, on
small generated data (the synthetic demo data or a tiny dataset written here), and records its exit code, its
time, the line it printed about the problem, and whether anything that existed before was lost or anything
half-written was left. The table is written to docs/bad_inputs.md:

    python experiments/bad_inputs.py --out docs/bad_inputs.md
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--T", "10", "--n-known-llms", "20", "--n-known-items", "30", "--dim", "2", "--quiet", "--no-baseline",
        "--n-test-pairs", "200"]


@dataclass
class Case:
    """One bad input: what it is, how to set it up, the command, and how to tell that nothing was lost."""

    name: str
    args: Callable[[Path], list[str]]
    setup: Callable[[Path], None] = lambda work: None
    check: Callable[[Path], str] = lambda work: ""
    signal_after: tuple[int, str] | None = None  # (signal, text on stderr after which it is sent)
    env: dict | None = None
    look_for: str | None = None  # the line to quote holds this text (default: the first error / warning line)


@dataclass
class Outcome:
    code: int
    seconds: float
    said: str
    check: str


def _run(case: Case, work: Path) -> Outcome:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", BAYES_SIMRMF_CACHE=str(work.parent / "cache"),
               **(case.env or {}))
    command = [sys.executable, "-m", "bayes_simrmf.cli", *case.args(work)]
    start = time.monotonic()
    process = subprocess.Popen(command, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stderr = b""
    if case.signal_after is not None:
        number, needle = case.signal_after
        while needle.encode() not in stderr and process.poll() is None:
            stderr += os.read(process.stderr.fileno(), 65536)
        process.send_signal(number)
        start = time.monotonic()  # a signal case's time is from the signal to the exit
    stdout, rest = process.communicate(timeout=600)
    seconds = time.monotonic() - start
    text = (stderr + rest + stdout).decode(errors="replace").replace("\r", "\n")  # stderr first
    lines = [line.strip() for line in text.splitlines() if line.strip() and "%|" not in line]
    out_lines = [line.strip() for line in stdout.decode(errors="replace").splitlines() if line.strip()]
    said = next((line for line in lines if line.startswith(("error:", "Error:", "warning:", "interrupted", "note:"))
                 and (case.look_for is None or case.look_for in line)),
                next((line for line in lines if case.look_for and case.look_for in line),
                     out_lines[-1] if out_lines else (lines[-1] if lines else "")))
    if "Traceback" in text:
        said = "TRACEBACK: " + lines[-1]
    return Outcome(process.returncode, seconds, said, case.check(work))


# ----------------------------------------------------------------------------- setups


def _tiny_data(folder: Path, texts=None) -> None:
    rng = np.random.default_rng(0)
    llms, items = [f"m{i}" for i in range(30)], [f"q{j}" for j in range(40)]
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([(m, q, int(rng.random() < 0.5)) for m in llms for q in items],
                 columns=["llm", "item", "correct"]).to_parquet(folder / "responses.parquet")
    pd.DataFrame({"llm": llms, "params_billions": rng.uniform(1, 70, 30), "architecture": "x", "model_type": "chat",
                  "base_model": llms, "is_merged": False, "is_moe": False, "weight_type": "Original",
                  "has_chat_template": True}).to_parquet(folder / "llms.parquet")
    texts = texts if texts is not None else [f"question {j} about something" for j in range(40)]
    pd.DataFrame({"item": items, "text": texts}).to_parquet(folder / "items.parquet")


def _model(work: Path, name: str = "model") -> None:
    subprocess.run([sys.executable, "-m", "bayes_simrmf.cli", "fit", "--method", "meanscore", *TINY, "--out", name],
                   cwd=work, env=dict(os.environ, PYTHONPATH=str(ROOT)), check=True, capture_output=True)


def _flip(work: Path) -> None:
    _model(work)
    path = work / "model/split/pairs.parquet"
    pairs = pd.read_parquet(path)
    pairs["correct"] = (1 - pairs["correct"]).astype("int8")
    pairs.to_parquet(path, index=False)


def _truncate(work: Path) -> None:
    _model(work)
    path = work / "model/split/pairs.parquet"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _notes(work: Path) -> None:
    (work / "x").mkdir()
    (work / "x/notes.txt").write_text("keep")


def _stale_staging(work: Path) -> None:
    """What a SIGKILL during a save leaves: a staging folder beside the target, of a process that is gone."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    staging = work / f".mk.staging-{dead.pid}-0123abcd"
    staging.mkdir()
    (staging / "state.npz").write_bytes(b"half")


def _listing(work: Path) -> str:
    return ", ".join(sorted(p.name for p in work.iterdir())) or "(empty)"


def _kept(path: str, text: str) -> Callable[[Path], str]:
    return lambda work: f"{path} kept" if (work / path).is_file() and (work / path).read_text() == text \
        else f"{path} LOST"


def _tune_data(work: Path) -> None:
    _tiny_data(work / "d")
    (work / "hyper.json").write_text("my notes")


def _bytes(work: Path) -> None:
    texts = [f"question {j}".encode() for j in range(40)]
    texts[3], texts[17] = b"\xff\xfe broken", b"caf\xe9"
    _tiny_data(work / "d", texts)


def _long(work: Path) -> None:
    texts = [f"question {j} about something" for j in range(40)]
    texts[5] = "a very long question " * 200_000  # about 4 MB
    _tiny_data(work / "d", texts)


def _factor_model(work: Path) -> None:
    """A factor model (mf) fitted on the tiny dataset in ``d``, and a file ``new.csv`` describing a new LLM."""
    _tiny_data(work / "d")
    subprocess.run([sys.executable, "-m", "bayes_simrmf.cli", "fit", "--data", "d", "--method", "mf", *TINY,
                    "--out", "model"], cwd=work, env=dict(os.environ, PYTHONPATH=str(ROOT)), check=True,
                   capture_output=True)
    _new_llm(work)


def _new_llm(work: Path, **values) -> None:
    row = {"llm": "acme/new", "params_billions": 7.0, "architecture": "x", "model_type": "chat", "base_model": "m1",
           "is_merged": False, "is_moe": False, "weight_type": "Original", "has_chat_template": True, **values}
    pd.DataFrame([row]).to_csv(work / "new.csv", index=False)


def _conflicting_rows(work: Path) -> None:
    _factor_model(work)
    pd.DataFrame([{"llm": "acme/new", "params_billions": 7.0}, {"llm": "acme/new", "params_billions": 70.0}]).to_csv(
        work / "new.csv", index=False)


def _unreadable_metadata(work: Path) -> None:
    _factor_model(work)
    _new_llm(work, params_billions="seven billion")


def _other_data(work: Path) -> None:
    _factor_model(work)
    _tiny_data(work / "other", [f"another question {j}" for j in range(40)])
    frame = pd.read_parquet(work / "other/responses.parquet")
    frame["correct"] = 1 - frame["correct"]
    frame.to_parquet(work / "other/responses.parquet")


def _debris(work: Path) -> None:
    _model(work)
    (work / "model/.DS_Store").write_bytes(b"\0")


def _format_version(work: Path) -> None:
    import json

    _model(work)
    path = work / "model/config.json"
    config = json.loads(path.read_text())
    config["format_version"] = 1
    path.write_text(json.dumps(config))


# ----------------------------------------------------------------------------- the cases


def cases() -> list[Case]:
    fit = ["fit", "--method", "mf", *TINY]
    steps_running = "loss="
    return [
        Case("`--overwrite` on a folder that is not a model folder (holds notes.txt)",
             lambda w: [*fit, "--out", "x", "--overwrite"], _notes, _kept("x/notes.txt", "keep")),
        Case("`--out . --overwrite` (the working directory)", lambda w: [*fit, "--out", ".", "--overwrite"],
             check=lambda w: _listing(w)),
        Case("`--out .. --overwrite` (a folder above it)", lambda w: [*fit, "--out", "..", "--overwrite"]),
        Case("`--out` an existing model folder without `--overwrite`",
             lambda w: [*fit, "--out", "model"], lambda w: _model(w), lambda w: "model kept"
             if (w / "model/config.json").is_file() else "model LOST"),
        Case("`tune --out` an existing file without `--overwrite`", lambda w: ["tune", "--data", "d", "--out",
                                                                              "hyper.json"],
             _tune_data, _kept("hyper.json", "my notes")),
        Case("`predict --out` an existing file without `--overwrite`",
             lambda w: ["predict", "--model", "model", "--llm", "m1", "--out", "mine.csv"],
             lambda w: (w / "mine.csv").write_text("mine"), _kept("mine.csv", "mine")),
        Case("`route --out` an existing file without `--overwrite`",
             lambda w: ["route", "--model", "model", "--items", "i.csv", "--llms", "l.csv", "--out", "mine.csv"],
             lambda w: [(w / n).write_text(t) for n, t in (("mine.csv", "mine"), ("i.csv", "item\nq1\n"),
                                                            ("l.csv", "llm,cost\nm1,1\n"))],
             _kept("mine.csv", "mine")),
        Case("`data pull --out` a folder not written by a pull",
             lambda w: ["data", "pull", "--out", "mine", "--hub-root", ".", "--models", "1"],
             lambda w: ((w / "mine").mkdir(), (w / "mine/responses.parquet").write_text("mine")),
             _kept("mine/responses.parquet", "mine")),
        Case("staging folder left by a SIGKILL during a save, then the same `fit --out mk`",
             lambda w: ["fit", "--method", "meanscore", *TINY, "--out", "mk"], _stale_staging,
             lambda w: f"left: {_listing(w)}"),
        Case("`evaluate` after flipping `correct` in split/pairs.parquet", lambda w: ["evaluate", "model"], _flip),
        Case("`evaluate` after truncating split/pairs.parquet to half", lambda w: ["evaluate", "model"], _truncate),
        Case("Ctrl-C (SIGINT) while the fit's SVI steps run",
             lambda w: ["fit", "--method", "mf", "--guide", "normal", *TINY[:-4], "--max-steps", "100000000",
                        "--tol", "0", "--out", "m"],
             check=lambda w: f"left: {_listing(w)}", signal_after=(signal.SIGINT, steps_running)),
        Case("SIGTERM while the fit's SVI steps run",
             lambda w: ["fit", "--method", "mf", *TINY[:-4], "--max-steps", "100000000", "--tol", "0", "--out", "m"],
             check=lambda w: f"left: {_listing(w)}", signal_after=(signal.SIGTERM, steps_running)),
        Case("`data pull --models 5 --dry-run` with no network (real: this machine has none)",
             lambda w: ["data", "pull", "--models", "5", "--dry-run", "--quiet"]),
        Case("`data pull` with `HF_HUB_OFFLINE=1`", lambda w: ["data", "pull", "--models", "5", "--dry-run"],
             env={"HF_HUB_OFFLINE": "1"}),
        Case("items parquet whose `text` is bytes with invalid UTF-8 (`fit --method simrmf`)",
             lambda w: ["fit", "--data", "d", "--method", "simrmf", *TINY], _bytes),
        Case("`--n-test-pairs 0`", lambda w: ["fit", "--method", "meanscore", *TINY[:-2], "--n-test-pairs", "0",
                                               "--out", "m"]),
        Case("`--learning-rate 1e6` (the loss diverges)", lambda w: [*fit, "--learning-rate", "1e6", "--max-steps",
                                                                    "100", "--out", "m"],
             check=lambda w: f"left: {_listing(w)}"),
        Case("a 4 MB question text (`fit --method simrmf`)",
             lambda w: ["fit", "--data", "d", "--method", "simrmf", *TINY, "--max-steps", "50", "--out", "m"], _long,
             look_for="truncated"),
        Case("`tune` on a tiny dataset (20 known LLMs x 30 items, T=10)",
             lambda w: ["tune", "--data", "d", "--method", "mf", "--T", "10", "--n-known-llms", "20",
                        "--n-known-items", "30", "--out", "h.json"], lambda w: _tiny_data(w / "d"),
             look_for="validation"),
        Case("`--data` a file instead of a folder", lambda w: [*fit, "--data", "f.csv"],
             lambda w: (w / "f.csv").write_text("a,b\n")),
        Case("`--data` a folder that does not exist", lambda w: [*fit, "--data", "nowhere"]),
        Case("`evaluate` a folder that is not a model", lambda w: ["evaluate", "x"], _notes),
        # issue 26
        Case("`predict --data` a dataset other than the one the model was fitted on",
             lambda w: ["predict", "--model", "model", "--llm", "acme/new", "--llms", "new.csv", "--data", "other"],
             _other_data),
        Case("`predict --llms` with two rows for the LLM that differ", lambda w: ["predict", "--model", "model", "--llm",
             "acme/new", "--llms", "new.csv"], _conflicting_rows),
        Case("`predict --llms` with `params_billions=\"seven billion\"`", lambda w: ["predict", "--model", "model",
             "--llm", "acme/new", "--llms", "new.csv"], _unreadable_metadata, look_for="seven billion"),
        Case("`predict --llm M1` (a case typo of the model's LLM m1)",
             lambda w: ["predict", "--model", "model", "--llm", "M1"], _factor_model),
        Case("`.DS_Store` dropped into a model folder, then `evaluate`", lambda w: ["evaluate", "model"], _debris),
        Case("`format_version` edited to 1 in a model's config.json, then `evaluate`", lambda w: ["evaluate", "model"],
             _format_version),
        Case("`tune --out` where nothing can be written (/proc/hyper.json)",
             lambda w: ["tune", "--data", "d", "--out", "/proc/hyper.json"], _tune_data),
        Case("`fit --seed 18446744073709551616`", lambda w: [*fit, "--seed", "18446744073709551616"]),
        Case("`fit --T 100000` on the demo data (more than the data allow)",
             lambda w: ["fit", "--method", "meanscore", *TINY[2:], "--T", "100000"], look_for="asked 100000"),
        Case("`fit --dim 0`", lambda w: [*fit, "--dim", "0"], look_for="dim"),
    ]


def _row(index: int, case: Case, outcome: Outcome) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    return (f"| {index} | {cell(case.name)} | {outcome.code} | {outcome.seconds:.1f} | {cell(outcome.said[:400])} | "
            f"{cell(outcome.check)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "bad_inputs.md"))
    parser.add_argument("--only", type=int, nargs="*", help="case numbers to run (1-based); default all")
    arguments = parser.parse_args()
    rows = []
    for index, case in enumerate(cases(), start=1):
        if arguments.only and index not in arguments.only:
            continue
        with tempfile.TemporaryDirectory(prefix="bad_inputs_") as scratch:
            work = Path(scratch) / "work"
            work.mkdir()
            case.setup(work)
            outcome = _run(case, work)
        print(f"{index:2d} rc={outcome.code} {outcome.seconds:5.1f}s {outcome.said[:150]}", flush=True)
        rows.append(_row(index, case, outcome))
    header = [
        "# Bad inputs and faults: what the command line does with them",
        "",
        "Produced by `python experiments/bad_inputs.py --out docs/bad_inputs.md` (issue 16), which runs each case as",
        "a real `python -m bayes_simrmf.cli ...` subprocess in a scratch folder on small generated data; do not edit",
        f"the table by hand. Last run: {time.strftime('%Y-%m-%d')}, {platform.platform()}, Python "
        f"{platform.python_version()}.",
        "",
        "Exit codes: 0 success, 1 a bayes-simrmf error (one line), 2 a usage error, 130 / 143 stopped by SIGINT /",
        "SIGTERM. *Said* is the line about the problem (the first `error:` / `warning:` / `note:` / `interrupted`",
        "line, else the last line); *Check* says whether what existed before is still there and what is left in",
        "the scratch folder afterwards. *Seconds* is the command's run time; for the signal cases, the time from the",
        "signal to the exit (the signal is sent once the progress bar shows a loss, i.e. while SVI steps run).",
        "",
        "| # | Input or fault | Exit | Seconds | Said | Check |",
        "|---|---|---|---|---|---|",
    ]
    Path(arguments.out).write_text("\n".join(header + rows) + "\n")
    print(f"written to {arguments.out}")


if __name__ == "__main__":
    main()
