"""A new LLM's scores from a saved model: wall time and peak memory of ``bayes-simrmf predict``.

Measures, side by side in one run and each in a fresh process, on the README's openllm-v2 model ("Evaluating a new
LLM": 60 known LLMs x 2,000 known questions, T=100, SimRMF with benchmark groups, seed 0; fitted here unless
``--model`` names it) and a new LLM described by one row of leaderboard metadata (the metadata of
``Aryanne/SuperHeart`` under the id ``acme/new-7b``, default 500 draws):

- start-up: a process that only imports what any predict needs (jax, numpyro, pandas, pyarrow, the package);
- predict, side tables: the data folder the model was fitted on, whose responses file is byte for byte the one
  the model recorded, so only the llms table is read;
- predict, full read: a copy of the folder whose responses file holds the same responses in other bytes (gzip),
  so every table is read and the responses are checked against the model's fingerprint (what every predict
  did before the digest was recorded).

"after start-up" is the predict's wall time less the start-up's (medians over ``--repeats``). The goal of issue 26:
at most 3 s after start-up and at most 500 MB.

Usage:
    python experiments/bench/bench_predict.py [--repeats 3] [--model DIR] [--out experiments/results/bench_predict.md]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NEW_LLM, SOURCE_LLM = "acme/new-7b", "Aryanne/SuperHeart"
FIT = ["fit", "--n-known-llms", "60", "--n-known-items", "2000", "--T", "100", "--method", "simrmf",
       "--item-groups", "benchmark", "--seed", "0", "--quiet"]

# A child that runs one command (or only the imports) and prints its wall time and peak memory as JSON.
CHILD = """
import json, resource, sys, time
start = time.perf_counter()
arguments = json.loads(sys.argv[1])
if arguments is None:
    import jax, numpyro, pandas, pyarrow.parquet, bayes_simrmf.predict, bayes_simrmf.saving
    code = 0
else:
    from bayes_simrmf.cli import main
    try:
        main(arguments, standalone_mode=False)
        code = 0
    except SystemExit as stop:
        code = stop.code or 0
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "code": code}))
"""


def measure(arguments: list[str] | None) -> dict:
    """One fresh process; its wall time (interpreter start included) and peak resident memory."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(arguments)], capture_output=True, text=True,
                          cwd=ROOT)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{arguments}: exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["code"]:
        raise SystemExit(f"{arguments}: exit {result['code']}\n{done.stdout[-2000:]}")
    return {"wall": wall, "peak_mb": result["peak_mb"], "output": done.stdout}


def _table(output: str) -> str:
    """The lines a predict printed from its table's header through its Monte Carlo line."""
    lines = output.splitlines()
    start = next(index for index, line in enumerate(lines) if line.split()[:1] == ["benchmark"])
    end = next(index for index, line in enumerate(lines) if line.startswith("Monte Carlo"))
    return "\n".join(lines[start:end + 1])


def main() -> None:
    from bayes_simrmf.data import shared_dataset_path
    from bayes_simrmf.evaluate.study import Report

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default=None, help="the README's openllm-v2 model, if already fitted")
    parser.add_argument("--out", default=str(ROOT / "experiments" / "results" / "bench_predict.md"))
    args = parser.parse_args()

    import pandas as pd

    data = shared_dataset_path("openllm-v2")
    work = Path(tempfile.mkdtemp(prefix="bench-predict-"))
    try:
        model = args.model
        if model is None:
            model = str(work / "model")
            subprocess.run([sys.executable, "-m", "bayes_simrmf.cli", *FIT, "--data", str(data), "--out", model],
                           check=True, capture_output=True, cwd=ROOT)
        llms = pd.read_parquet(data / "llms.parquet")
        llms[llms.llm == SOURCE_LLM].assign(llm=NEW_LLM).to_csv(work / "new.csv", index=False)
        copy = work / "copy"
        shutil.copytree(data, copy)
        pd.read_parquet(copy / "responses.parquet").to_parquet(copy / "responses.parquet", index=False,
                                                               compression="gzip")
        predict = ["predict", "--model", model, "--llm", NEW_LLM, "--llms", str(work / "new.csv")]
        runs = {"start-up (imports only)": None, "predict, side tables": [*predict, "--data", str(data)],
                "predict, full read": [*predict, "--data", str(copy)]}
        results: dict[str, list[dict]] = {name: [] for name in runs}
        for _ in range(args.repeats):  # interleaved, so a slow spell of the machine falls on every row
            for name, arguments in runs.items():
                results[name].append(measure(arguments))

        report = Report("A new LLM's scores: wall time and peak memory of `bayes-simrmf predict`",
                        "python experiments/bench/bench_predict.py" + (f" --repeats {args.repeats}"
                                                                       if args.repeats != 3 else ""))
        report.say(f"Model: `bayes-simrmf {' '.join(FIT)} --data {data.name}`; new LLM: the metadata of "
                   f"{SOURCE_LLM} as {NEW_LLM}; 500 draws. Each row: {args.repeats} fresh processes, interleaved; "
                   "medians (and the largest peak).")
        report.say()
        startup = statistics.median(run["wall"] for run in results["start-up (imports only)"])
        report.say("| run | wall s (median) | after start-up s | peak MB (max) |")
        report.say("|---|---:|---:|---:|")
        for name, runs_of in results.items():
            wall = statistics.median(run["wall"] for run in runs_of)
            after = "" if runs_of is results["start-up (imports only)"] else f"{wall - startup:.2f}"
            report.say(f"| {name} | {wall:.2f} | {after} | {max(run['peak_mb'] for run in runs_of):.0f} |")
        side, full = results["predict, side tables"], results["predict, full read"]
        ratio_time = statistics.median(run["wall"] for run in full) / statistics.median(run["wall"] for run in side)
        ratio_memory = max(run["peak_mb"] for run in full) / max(run["peak_mb"] for run in side)
        report.say()
        wall_side, wall_full = (statistics.median(run["wall"] for run in runs_of) for runs_of in (side, full))
        report.say(f"In words: predict from the side tables {wall_side:.2f} s in all, {wall_side - startup:.2f} s after "
                   f"a start-up of {startup:.2f} s, peak {max(run['peak_mb'] for run in side):.0f} MB; reading every "
                   f"table {wall_full:.2f} s, peak {max(run['peak_mb'] for run in full):.0f} MB.")
        same = all(_table(run["output"]) == _table(side[0]["output"]) for run in side + full)
        report.say(f"Full read / side tables: wall {ratio_time:.2f}x, peak memory {ratio_memory:.2f}x. Every run "
                   f"printed the same table: {same}.")
        report.say()
        report.say("```")
        report.say(_table(side[0]["output"]))
        report.say("```")
        report.write(args.out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
