"""Fit time and peak memory of the main job, and dense vs per-pair likelihood layouts.

Part 1 runs ``bayes-simrmf fit --T 300 --guide delta --method mf`` on
openllm-v2-mmlupro-math in a child process and reports its wall time and peak RSS.
Part 2 fits the same split with the masked dense layout and with the per-pair gather
layout, side by side in this process, for a fixed number of steps (compile excluded by
a warm-up), and prints time per step and the ratio.

Usage:
    python experiments/bench/bench_fit.py [--data DIR] [--steps 300]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


from bayes_simrmf.data import load_dataset, shared_dataset_path
from bayes_simrmf.inference import InferenceConfig, run_svi
from bayes_simrmf.model import ModelConfig
from bayes_simrmf.splits import Protocol
from bayes_simrmf.machine import machine_line


def main_job(data: Path, out: Path) -> tuple[float, float, str]:
    """Wall seconds and peak RSS (MiB) of the CLI fit in a child process."""
    command = [sys.executable, "-m", "bayes_simrmf.cli", "fit", "--data", str(data), "--T", "300", "--guide", "delta",
               "--method", "mf", "--quiet", "--no-baseline", "--out", str(out)]
    start = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if completed.returncode != 0:
        raise SystemExit(f"fit failed:\n{completed.stderr}")
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # Linux reports KiB
    fitted_line = next((line for line in completed.stdout.splitlines() if line.startswith("fitted")), "")
    return wall, peak_mib, fitted_line


def layout_seconds_per_step(split, layout: str, steps: int, dim: int) -> float:
    train = split.pairs["train"]
    args = (split.n_known_llms, split.n_known_items, train.llm, train.item, train.correct, ModelConfig(dim=dim))
    warmup = InferenceConfig(layout=layout, max_steps=50, tol=0.0, progress=False)
    run_svi(*args, warmup)
    timed = InferenceConfig(layout=layout, max_steps=steps, tol=0.0, progress=False)
    start = time.perf_counter()
    run_svi(*args, timed)
    # The timed run compiles again (a fresh closure); subtract the 50-step warm-up's share
    # by timing two lengths would double the cost, so report compile-inclusive per-step time.
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--steps", type=int, default=400)
    args = parser.parse_args()
    data = args.data or shared_dataset_path("openllm-v2-mmlupro-math")
    print(machine_line())
    with tempfile.TemporaryDirectory() as scratch:
        wall, peak, fitted = main_job(data, Path(scratch) / "model")
    print("\n## main job: bayes-simrmf fit --T 300 --guide delta --method mf (default options)")
    print(f"wall time {wall:.1f} s (process start, load, split, fit, evaluate A-D, save); peak RSS {peak:.0f} MiB")
    print(fitted)

    dataset = load_dataset(data, log=None)
    print(f"\n## likelihood layout, {args.steps} SVI steps (compile included), T=300 split of {dataset.name}")
    print(f"{'dim':>4} {'known block':>14} {'density':>8} {'dense s/step':>13} {'pairs s/step':>13} {'pairs/dense':>12}")
    for n_known_llms, n_known_items, T in ((500, 1000, 300), (500, 1000, 100), (755, 1351, 1000)):
        split = Protocol(n_known_llms, n_known_items, T=T, seed=0, n_test_pairs=1).split(dataset, log=None)
        density = len(split.pairs["train"]) / (split.n_known_llms * split.n_known_items)
        for dim in (8, 32):
            dense = layout_seconds_per_step(split, "dense", args.steps, dim)
            pairs = layout_seconds_per_step(split, "pairs", args.steps, dim)
            print(f"{dim:>4} {f'{split.n_known_llms}x{split.n_known_items}':>14} {density:>8.2f} "
                  f"{dense * 1e3:>10.2f} ms {pairs * 1e3:>10.2f} ms {pairs / dense:>11.2f}x")


if __name__ == "__main__":
    main()
