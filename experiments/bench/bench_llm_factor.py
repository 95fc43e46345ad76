"""The LLM similarity's square-root factor (issue 15): exact dense route vs the structured route, growth and accuracy.

Part 1, growth: for n LLMs of leaderboard-like metadata (``bench_scale.synthetic_llm_metadata``: families of
fine-tunes and merges), each in a fresh process, the time and peak memory (``VmHWM`` over the process's RSS before
the build) of ``llm_similarity_factor`` by the exact route (dense ``S_M``, float64 ``eigh``: what the package did
for every n before issue 15, and still does up to 2,000 LLMs) and by the structured route (its leading 512
components from the similarity's structure, what it does above 2,000), with log-log slopes.

Part 2, accuracy: on the real datasets with more than 2,000 LLMs, a SimRMF fit (delta guide, default options,
T=300, seed 0) with the LLM factor of each route, and RMSE_p on C (new LLMs: what the LLM similarity is for) and
the other splits.

Usage (about 6 minutes on a shared 2-core CPU):
    python experiments/bench/bench_llm_factor.py [--exact-sizes 1000 2000 4000] [--structured-sizes 1000 3000 10000 30000]
        [--datasets openllm-v2-bbh-tso5 openllm-v1-tiny]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from bayes_simrmf.runtime import configure_process

configure_process()  # one OpenBLAS thread, two malloc arenas: as bayes-simrmf runs (before NumPy loads)
import numpy as np  # noqa: E402

from bayes_simrmf.data.locations import default_data_dir  # noqa: E402
from bayes_simrmf.machine import current_rss_mib, machine_line, peak_rss_mib, power_law  # noqa: E402


def child_build(n: int, route: str) -> dict:
    from bayes_simrmf.similarity import llm_similarity_factor

    from bayes_simrmf.synthetic import synthetic_llm_metadata

    metadata, _ = synthetic_llm_metadata(n, np.random.default_rng(0))
    before = current_rss_mib()
    start = time.perf_counter()
    factor, report, _ = llm_similarity_factor(metadata, dense_limit=10**9 if route == "exact" else 0)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_over_mib": peak_rss_mib() - before, "shape": list(factor.shape),
            "trace_share": report.trace_share_kept}


def growth(args) -> None:
    print("\n## building the LLM factor: time and peak memory above the process's RSS before the build")
    print(f"{'route':<11} {'LLMs':>7} {'factor':>14} {'build':>9} {'peak over':>10} {'trace share kept':>17}")
    results: dict[str, list[tuple[int, dict]]] = {"exact": [], "structured": []}
    for route, sizes in (("exact", args.exact_sizes), ("structured", args.structured_sizes)):
        for n in sizes:
            completed = subprocess.run([sys.executable, __file__, "--child", json.dumps([n, route])],
                                       capture_output=True, text=True)
            if completed.returncode != 0:
                print(f"{route:<11} {n:>7} failed: {completed.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(completed.stdout.strip().splitlines()[-1])
            results[route].append((n, r))
            print(f"{route:<11} {n:>7} {str(tuple(r['shape'])):>14} {r['seconds']:>7.2f} s {r['peak_over_mib']:>6.0f} MiB "
                  f"{r['trace_share']:>16.1%}", flush=True)
    print("\nlog-log slopes (value ~ n^slope; target <= 1.1 for the package's route above 2,000 LLMs)")
    for route, rows in results.items():
        if len(rows) >= 2:
            sizes = [n for n, _ in rows]
            time_slope, _ = power_law(sizes, [r["seconds"] for _, r in rows])
            memory_slope, _ = power_law(sizes, [r["peak_over_mib"] for _, r in rows])
            print(f"{route:<11} {sizes[0]}-{sizes[-1]} LLMs: build time {time_slope:.2f}, peak memory {memory_slope:.2f}")


def accuracy(args) -> None:
    from bayes_simrmf.data import load_dataset
    from bayes_simrmf.evaluate import evaluate_on_split, fit_on_split
    from bayes_simrmf.predict import SimRMF
    from bayes_simrmf.similarity import SideInformation, build_side_information, centre_rows, llm_similarity_factor
    from bayes_simrmf.splits import Protocol

    data_root = default_data_dir()
    print("\n## accuracy: SimRMF (delta, default options, T=300, seed 0) with the LLM factor of each route")
    print(f"{'data':<22} {'LLMs':>5} {'route':<11} {'LLM factor':>13} {'build':>7} {'fit':>7} "
          f"{'RMSE_p A':>9} {'B':>7} {'C':>7} {'D':>7}")
    for name in args.datasets:
        dataset = load_dataset(data_root / name, log=None)
        split = Protocol(T=300, seed=0).split(dataset, log=None)
        side = build_side_information(dataset, split.llms, split.items)
        table = dataset.llms.set_index("llm").reindex(list(split.llms)).reset_index()
        scores = {}
        for route in ("exact", "structured"):
            start = time.perf_counter()
            factor, _, _ = llm_similarity_factor(table, dense_limit=10**9 if route == "exact" else 0)
            build_s = time.perf_counter() - start
            routed = SideInformation(side.llms, centre_rows(factor), side.items, side.item_factor, side.report)
            model = SimRMF(method="simrmf", progress=False, seed=0)
            start = time.perf_counter()
            fit_on_split(model, split, side=routed)
            fit_s = time.perf_counter() - start
            metrics = evaluate_on_split(model, split)
            scores[route] = metrics
            print(f"{name:<22} {len(split.llms):>5} {route:<11} {str(factor.shape):>13} {build_s:>5.1f} s {fit_s:>5.1f} s "
                  + " ".join(f"{metrics[s]['rmse_p']:>{9 if s == 'A' else 7}.4f}" for s in "ABCD"), flush=True)
        change = {s: scores["structured"][s]["rmse_p"] / scores["exact"][s]["rmse_p"] - 1 for s in "ABCD"}
        print(f"{'':<22} {'':>5} {'change':<11} {'':>13} {'':>7} {'':>7} "
              + " ".join(f"{change[s]:>+{9 if s == 'A' else 7}.2%}" for s in "ABCD"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exact-sizes", type=int, nargs="*", default=[1000, 2000, 4000])
    parser.add_argument("--structured-sizes", type=int, nargs="*", default=[1000, 3000, 10000, 30000])
    parser.add_argument("--datasets", nargs="*", default=["openllm-v2-bbh-tso5", "openllm-v1-tiny"])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        n, route = json.loads(args.child)
        print(json.dumps(child_build(n, route)))
        return
    print(f"command: python experiments/bench/bench_llm_factor.py {' '.join(sys.argv[1:])}")
    print(machine_line())
    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}", flush=True)
    start = time.perf_counter()
    growth(args)
    if args.datasets:
        accuracy(args)
    load = os.getloadavg()
    print(f"\ntotal wall time {(time.perf_counter() - start) / 60:.1f} min; load average at the end "
          f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")


if __name__ == "__main__":
    main()
