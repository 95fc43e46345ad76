"""Truncating the square-root similarities (``--similarity-energy``, issue 15): speed and accuracy against energy 1.

For each dataset: one protocol split (the package's ``Protocol``, as ``bayes-simrmf fit`` draws it), then for each
energy the side information ``build_side_information(energy=...)`` (each √S keeps the leading components holding
that share of its trace; 1.0 = all of them, the default), a SimRMF fit (delta guide, default options, in the
package's default ``kernel`` mode and in the paper's ``joint`` mode) and the metrics on splits A-D
(``evaluate_on_split``). Everything for one dataset runs in one process after a short warm-up fit (so the first
energy does not pay the process's one-off compilation), energies in turn, so the ratios compare like with like.

Reported per energy: columns kept of the question and LLM factors, the factor build time, ``fit()`` wall time
(SVI plus the kernel mode's fold-in), SVI time per step, steps, RMSE_p on B (new questions) and C (new LLMs), and
each as a ratio / relative change against energy 1.0.

Usage (about 8 minutes on a shared 2-core CPU):
    python experiments/bench/bench_energy.py [--datasets openllm-v2-mmlupro-math openllm-v2] [--T 300]
        [--energies 1.0 0.99 0.95 0.9 0.8] [--modes kernel joint]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from bayes_simrmf.runtime import configure_process  # noqa: E402

configure_process()  # one OpenBLAS thread, two malloc arenas: as bayes-simrmf runs (before NumPy loads)
from bayes_simrmf.data.locations import default_data_dir
from bayes_simrmf.machine import machine_line


def run_dataset(name: str, T: int, energies: list[float], modes: list[str], seed: int) -> list[dict]:
    from bayes_simrmf.data import load_dataset
    from bayes_simrmf.evaluate import evaluate_on_split, fit_on_split
    from bayes_simrmf.predict import SimRMF
    from bayes_simrmf.similarity import build_side_information
    from bayes_simrmf.splits import Protocol

    data_root = default_data_dir()
    dataset = load_dataset(data_root / name, log=None)
    split = Protocol(T=T, seed=seed).split(dataset, log=None)
    print(f"\n{name}: {len(split.llms)} LLMs ({split.n_known_llms} known), {len(split.items)} items "
          f"({split.n_known_items} known), T={T}, seed={seed}", flush=True)
    rows = []
    warm = build_side_information(dataset, split.llms, split.items)
    for mode in modes:  # the process's one-off compilation, not charged to the first energy
        fit_on_split(SimRMF(method="simrmf", similarity_mode=mode, max_steps=50, progress=False), split, side=warm)
    del warm
    for energy in energies:
        start = time.perf_counter()
        side = build_side_information(dataset, split.llms, split.items, energy=None if energy >= 1 else energy)
        build_s = time.perf_counter() - start
        for mode in modes:
            model = SimRMF(method="simrmf", similarity_mode=mode, seed=seed, progress=False)
            start = time.perf_counter()
            fit_on_split(model, split, side=side)
            fit_s = time.perf_counter() - start
            metrics = evaluate_on_split(model, split)
            row = {"data": name, "energy": energy, "mode": mode, "k_items": side.item_factor.shape[1],
                   "k_llms": side.llm_factor.shape[1], "build_s": build_s, "fit_s": fit_s,
                   "svi_step_ms": 1e3 * model.fit_seconds_ / len(model.losses_), "steps": len(model.losses_),
                   "converged": bool(model.converged_), "B": metrics["B"]["rmse_p"], "C": metrics["C"]["rmse_p"],
                   "A": metrics["A"]["rmse_p"], "D": metrics["D"]["rmse_p"]}
            rows.append(row)
            print(f"  energy {energy:<5g} {mode:<6} k {row['k_items']:>4} / {row['k_llms']:>4}  build {build_s:5.1f} s  "
                  f"fit {fit_s:6.1f} s  {row['svi_step_ms']:6.1f} ms/step x {row['steps']:>4}  "
                  f"B {row['B']:.4f}  C {row['C']:.4f}", flush=True)
    return rows


def report(rows: list[dict], energies: list[float], modes: list[str]) -> None:
    print("\n## against energy 1.0 (all components), same split and process; ratio = energy / 1.0; "
          "ΔB, ΔC = relative change of RMSE_p")
    print(f"{'data':<24} {'mode':<6} {'energy':>6} {'k items':>7} {'k LLMs':>6} {'fit':>8} {'fit ratio':>9} "
          f"{'ms/step':>8} {'step ratio':>10} {'RMSE_p B':>9} {'ΔB':>7} {'RMSE_p C':>9} {'ΔC':>7} {'within 1%':>9}")
    for data in dict.fromkeys(row["data"] for row in rows):
        for mode in modes:
            subset = [row for row in rows if row["data"] == data and row["mode"] == mode]
            full = next(row for row in subset if row["energy"] >= 1)
            for row in subset:
                delta_b = row["B"] / full["B"] - 1
                delta_c = row["C"] / full["C"] - 1
                within = "yes" if max(delta_b, delta_c) <= 0.01 else "no"
                print(f"{data:<24} {mode:<6} {row['energy']:>6g} {row['k_items']:>7} {row['k_llms']:>6} "
                      f"{row['fit_s']:>6.1f} s {row['fit_s'] / full['fit_s']:>8.2f}x {row['svi_step_ms']:>8.1f} "
                      f"{row['svi_step_ms'] / full['svi_step_ms']:>9.2f}x {row['B']:>9.4f} {delta_b:>+7.2%} "
                      f"{row['C']:>9.4f} {delta_c:>+7.2%} {within:>9}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["openllm-v2-mmlupro-math", "openllm-v2"])
    parser.add_argument("--T", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--energies", type=float, nargs="+", default=[1.0, 0.99, 0.95, 0.9, 0.8])
    parser.add_argument("--modes", nargs="+", default=["kernel", "joint"], choices=["kernel", "cold", "joint"])
    args = parser.parse_args()
    energies = sorted(set(args.energies) | {1.0}, reverse=True)
    print(f"command: python experiments/bench/bench_energy.py {' '.join(sys.argv[1:])}")
    print(machine_line())
    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}", flush=True)
    start = time.perf_counter()
    rows = []
    for name in args.datasets:
        rows += run_dataset(name, args.T, energies, args.modes, args.seed)
    report(rows, energies, args.modes)
    load = os.getloadavg()
    print(f"\ntotal wall time {(time.perf_counter() - start) / 60:.1f} min; load average at the end "
          f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")


if __name__ == "__main__":
    main()
