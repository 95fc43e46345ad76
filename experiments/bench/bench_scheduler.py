"""What the XLA setting applied on ``import bayes_simrmf`` costs (``bayes_simrmf.runtime.avoid_lapack_deadlock``).

The package turns off XLA's concurrency-optimised CPU scheduler because, with jaxlib 0.10+, two batched LAPACK
calls run side by side can deadlock a small thread pool. This script measures the price on the machine it runs
on: each workload runs in a fresh process with the package's setting and with the scheduler left on
(``XLA_FLAGS=--xla_cpu_enable_concurrency_optimized_scheduler=true``, which the package respects), side by side
in one run, and prints the wall-time ratio and whether the results agree. A run with the scheduler on that does
not finish within ``--timeout`` seconds (60 for the reproducer) is reported as frozen (CPU time is shown so a freeze at 0 % is told
from slowness).

Workloads (openllm-v2-mmlupro-math, ``Protocol(500, 1000, T=300, seed=0)``, MF+groups dim 8):
the normal guide (SVI) and the Gibbs sampler with its defaults, fit and predict A-D; and the bare reproducer of
``tests/test_runtime.py``.

Usage:
    python experiments/bench/bench_scheduler.py [--repeats 1] [--timeout 600] [--out experiments/results/bench_scheduler.md]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"

WORKLOAD = """
import json, sys, time
import bayes_simrmf
from bayes_simrmf.data import load_dataset, shared_dataset_path
from bayes_simrmf.evaluate import evaluate_on_split, fit_on_split
from bayes_simrmf.predict import make_estimator
from bayes_simrmf.splits import Protocol
options = json.loads(sys.argv[1])
dataset = load_dataset(shared_dataset_path("openllm-v2-mmlupro-math"), log=None)
split = Protocol(500, 1000, T=300, seed=0).split(dataset, log=None)
groups = dataset.items.set_index("item")["benchmark"].fillna("(none)").astype(str)
estimator = make_estimator("mf", dim=8, seed=0, progress=False, **options)
start = time.perf_counter()
fit_on_split(estimator, split, item_groups=groups)
scores = evaluate_on_split(estimator, split)
print(json.dumps({"seconds": time.perf_counter() - start, "rmse_p": {k: v["rmse_p"] for k, v in scores.items()}}))
"""

WORKLOADS = (
    ("normal guide (SVI), fit + predict A-D", WORKLOAD, {"guide": "normal", "learning_rate": 0.02}),
    ("gibbs defaults, fit + predict A-D", WORKLOAD, {"inference": "gibbs"}),
    ("two batched Cholesky side by side (tests/test_runtime.py)", None, None),
)


def run_once(code: str, argument: str | None, scheduler_on: bool, timeout: float) -> dict:
    env = {key: value for key, value in os.environ.items() if key != "XLA_FLAGS"}
    if scheduler_on:
        env["XLA_FLAGS"] = f"{FLAG}=true"
    command = [sys.executable, "-c", code] + ([argument] if argument is not None else [])
    start = time.perf_counter()
    before = os.times()
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        after = os.times()
        return {"frozen": True, "wall": time.perf_counter() - start,
                "cpu": after.children_user + after.children_system - before.children_user - before.children_system}
    wall = time.perf_counter() - start
    after = os.times()
    if done.returncode != 0:
        raise RuntimeError(f"workload failed:\n{done.stderr[-2000:]}")
    last = done.stdout.strip().splitlines()[-1]
    result = json.loads(last) if last.startswith("{") else {"seconds": wall}
    result.update(frozen=False, wall=wall,
                  cpu=after.children_user + after.children_system - before.children_user - before.children_system)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from bayes_simrmf.evaluate.study import Report
    from test_runtime import REPRODUCER

    report = Report("The XLA scheduler setting applied on import: its cost, and what happens without it",
                    f"python experiments/bench/bench_scheduler.py --repeats {args.repeats} --timeout {args.timeout:g}")
    say = report.say
    say("Each cell: a fresh process; seconds are the workload's own timer (fit + predict) where it has one, else the "
        "process's wall time; the two settings alternate, package setting first.")
    say()
    say("| workload | repeat | package setting (scheduler off) s | scheduler on s | off / on | scheduler on: CPU s "
        "| same RMSE_p A-D |")
    say("|---|---|---|---|---|---|---|")
    for label, code_text, options in WORKLOADS:
        for repeat in range(args.repeats):
            text = REPRODUCER if code_text is None else code_text
            argument = None if options is None else json.dumps(options)
            # The reproducer takes seconds when it finishes; a minute is ample to call it frozen.
            timeout = min(args.timeout, 60.0) if code_text is None else args.timeout
            off = run_once(text, argument, False, timeout)
            on = run_once(text, argument, True, timeout)
            if off["frozen"]:
                raise RuntimeError(f"{label}: froze with the package's setting")
            if on["frozen"]:
                say(f"| {label} | {repeat} | {off['seconds']:.1f} | froze (killed after {on['wall']:.0f} s) | – | "
                    f"{on['cpu']:.1f} | – |")
                continue
            same = "–" if "rmse_p" not in off else (
                "yes" if all(abs(off["rmse_p"][k] - on["rmse_p"][k]) < 1e-6 for k in off["rmse_p"]) else
                "no: " + ", ".join(f"{k} {off['rmse_p'][k]:.6f} / {on['rmse_p'][k]:.6f}" for k in off["rmse_p"]))
            say(f"| {label} | {repeat} | {off['seconds']:.1f} | {on['seconds']:.1f} | "
                f"{off['seconds'] / on['seconds']:.2f} | {on['cpu']:.1f} | {same} |")
    if args.out:
        report.write(args.out)


if __name__ == "__main__":
    main()
