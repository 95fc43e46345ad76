"""Minibatch SVI against full batch (issue 6): time per step, time to the full-batch optimum, peak memory.

Every configuration runs in its own child process (``python bench_minibatch.py --child SPEC``) that reports its
own peak RSS (``VmHWM`` of /proc/self/status), so peaks never mix; the inputs are generated once (seeded) into a
scratch folder and memory-mapped by the children.

Mid-size problem (1,000 LLMs x 2,000 items, 10 % of the cells observed at random = 200,000
pairs, planted rank-4 model, fitted with d = 4, MAP / delta guide, pairs layout for every run):

* the reference optimum: full batch with ``tol = 1e-7`` (max 5,000 steps);
* each configuration (full batch; batch sizes n/4, n/16, n/64 with the default learning-rate decay; n/16 with a
  constant rate) runs for a grid of ``max_steps`` (full batch: 100 .. 1,600; minibatch: 500 .. 4,000, because the
  minibatch schedule decays over ``max_steps``, a shorter run is a different run, not a prefix) until a run ends
  within the tolerance: full-batch loss at its solution within ``--rel-tol`` (default 1e-3) of the optimum.
  Each finished chunk of 50 steps is time-stamped (``run_svi(on_chunk=...)``). Reported: time per step (median
  over the chunks after the first, in the longest run), setup time (time to the end of the first chunk minus its
  steps at that rate: checks, initialisation, tracing and compilation, in the child's first run), the steps,
  passes over the data and optimisation time (steps x time per step) of the first run within tolerance, its
  relative loss gap and mean |Δp| over 200,000 random cells against the optimum's predictions, and the child's
  peak RSS.

Large observed set (default 10^7 pairs among 10,000 LLMs x 100,000 items, d = 8): time per step for full batch
(5 steps, one per chunk) and batch sizes 10^5 and 10^4 (120 steps in chunks of 20), median over the chunks after
the first, the setup time, and each child's peak RSS next to that of a child that only loads the data.

Usage (about 7 minutes on a shared 2-core CPU):
    python experiments/bench/bench_minibatch.py [--out experiments/results/bench_minibatch.md] [--rel-tol 1e-3]
        [--large-pairs 10000000] [--skip-large]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bayes_simrmf.machine import machine_line, peak_rss_mib

REPO = Path(__file__).resolve().parents[2]
MID = {"n_llms": 1000, "n_items": 2000, "share": 0.1, "dim": 4}
LARGE = {"n_llms": 10_000, "n_items": 100_000, "n_pairs": 10_000_000, "dim": 8}
FULL_GRID = (100, 200, 400, 800, 1600)
MINIBATCH_GRID = (500, 1000, 2000, 4000)
N_CELLS_COMPARED = 200_000


def generate(folder: Path, name: str, n_llms: int, n_items: int, n_pairs: int, dim: int, seed: int) -> None:
    """Distinct random pairs with 0/1 scores drawn from a planted model; saved as .npy in ``folder/name``."""
    from bayes_simrmf.model import pair_logits, sigmoid
    from bayes_simrmf.synthetic import planted_parameters

    rng = np.random.default_rng(seed)
    cells = n_llms * n_items
    # Oversample, drop repeats by a sort (np.unique's hash path is slow at 10^7), shuffle, keep n_pairs.
    draws = np.sort(rng.integers(0, cells, int(n_pairs + 3 * n_pairs**2 / cells + 1000), dtype=np.int64))
    keys = rng.permutation(draws[np.r_[True, draws[1:] != draws[:-1]]])[:n_pairs]
    if len(keys) < n_pairs:
        raise SystemExit(f"could only draw {len(keys)} distinct pairs of {cells} cells")
    llm, item = (keys // n_items).astype(np.int32), (keys % n_items).astype(np.int32)
    truth = planted_parameters(n_llms, n_items, dim, rng)
    correct = np.empty(n_pairs, np.int8)
    for start in range(0, n_pairs, 1_000_000):  # bounded temporaries
        rows = slice(start, start + 1_000_000)
        logits = pair_logits(truth, llm[rows], item[rows])
        correct[rows] = rng.random(len(logits)) < sigmoid(logits)
    target = folder / name
    target.mkdir(parents=True, exist_ok=True)
    for key, array in (("llm", llm), ("item", item), ("correct", correct)):
        np.save(target / f"{key}.npy", array)


def _load(folder: Path, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(np.load(folder / name / f"{key}.npy", mmap_mode="r") for key in ("llm", "item", "correct"))


# --------------------------------------------------------------------------------------------------
# children
# --------------------------------------------------------------------------------------------------


class Timing:
    """Wall time of a run and of each of its chunks (``run_svi(on_chunk=...)`` stamps each finished chunk)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.stamps: list[tuple[int, float]] = []  # (steps done, seconds since start)

    def __call__(self, steps_done: int, _losses: np.ndarray) -> None:
        self.stamps.append((steps_done, time.perf_counter() - self.start))

    def per_step(self) -> float:
        """Median seconds per step over the chunks after the first (the first one includes compilation)."""
        rates = [(t1 - t0) / (s1 - s0) for (s0, t0), (s1, t1) in zip(self.stamps, self.stamps[1:])]
        return float(np.median(rates)) if rates else float("nan")

    def setup(self, per_step: float | None = None) -> float:
        """Seconds before the first step ran at full speed: checks, initialisation, tracing, compilation."""
        first_steps, first_seconds = self.stamps[0]
        return first_seconds - first_steps * (self.per_step() if per_step is None else per_step)


def _fit(spec: dict, llm, item, correct, max_steps: int, **options):
    from bayes_simrmf.inference import InferenceConfig, run_svi
    from bayes_simrmf.model import ModelConfig

    config = InferenceConfig(max_steps=max_steps, layout="pairs", progress=False, batch_size=spec.get("batch_size"),
                             lr_decay=spec.get("lr_decay"), **options)
    timing = Timing()
    result = run_svi(spec["n_llms"], spec["n_items"], llm, item, correct, ModelConfig(dim=spec["dim"]), config,
                     seed=spec.get("seed", 0), on_chunk=timing)
    return result, timing


def _cell_probabilities(point: dict, cells: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    import jax
    import jax.numpy as jnp

    from bayes_simrmf.model import pair_logits

    logits = pair_logits({k: jnp.asarray(v) for k, v in point.items()}, jnp.asarray(cells[0]), jnp.asarray(cells[1]), xp=jnp)
    return np.asarray(jax.nn.sigmoid(logits), np.float64)


def child_mid_reference(spec: dict, folder: Path) -> dict:
    from bayes_simrmf.inference import negative_log_joint

    llm, item, correct = _load(folder, "mid")
    result, timing = _fit(spec, llm, item, correct, 5000, tol=1e-7)
    np.savez(folder / "mid_optimum.npz", **result.point)
    return {"steps": len(result.losses), "converged": result.converged, "seconds": timing.stamps[-1][1],
            "loss": negative_log_joint(result), "peak_rss_mib": peak_rss_mib()}


def child_mid(spec: dict, folder: Path) -> dict:
    """Grid of max_steps until the solution is within tolerance of the optimum."""
    from bayes_simrmf.inference import negative_log_joint

    llm, item, correct = _load(folder, "mid")
    optimum_point = dict(np.load(folder / "mid_optimum.npz"))
    rng = np.random.default_rng(1)
    cells = (rng.integers(0, spec["n_llms"], N_CELLS_COMPARED).astype(np.int32),
             rng.integers(0, spec["n_items"], N_CELLS_COMPARED).astype(np.int32))
    optimum_prob = _cell_probabilities(optimum_point, cells)
    runs, timings = [], []
    grid = FULL_GRID if spec.get("batch_size") is None else MINIBATCH_GRID
    for max_steps in grid:
        result, timing = _fit(spec, llm, item, correct, max_steps, tol=0.0)
        optimum = negative_log_joint(result, optimum_point)
        gap = (negative_log_joint(result) - optimum) / abs(optimum)
        mad = float(np.mean(np.abs(_cell_probabilities(result.point, cells) - optimum_prob)))
        timings.append(timing)
        runs.append({"max_steps": max_steps, "seconds": timing.stamps[-1][1], "gap": gap, "mad": mad})
        # Minibatch grids stop once within tolerance (two runs at least, for the time per step); the full-batch
        # grid is cheap and runs to the end, so its time per step comes from long runs.
        if spec.get("batch_size") is not None and gap <= spec["rel_tol"] and len(runs) >= 2:
            break
    # The longest run has the most chunks; its first run's setup includes the process's first compilation,
    # which is what a user's one fit per process pays.
    per_step = timings[-1].per_step()
    setup = timings[0].setup(per_step)
    within = next((run for run in runs if run["gap"] <= spec["rel_tol"]), None)
    return {"batch_size": spec.get("batch_size"), "runs": runs, "per_step_s": per_step, "setup_s": setup, "within": within, "peak_rss_mib": peak_rss_mib()}


def child_large(spec: dict, folder: Path) -> dict:
    llm, item, correct = _load(folder, "large")
    if spec.get("load_only"):
        np.asarray(llm).sum(), np.asarray(item).sum(), np.asarray(correct).sum()  # touch every page
        import jax.numpy as jnp  # the JAX runtime's own footprint belongs to the floor

        jnp.zeros(1).block_until_ready()
        return {"peak_rss_mib": peak_rss_mib()}
    # Full batch: 1-step chunks (a step takes seconds); minibatches: 20-step chunks. The first chunk is not timed.
    steps, chunk = (5, 1) if spec.get("batch_size") is None else (120, 20)
    _, timing = _fit(spec, llm, item, correct, steps, tol=0.0, chunk=chunk)
    return {"per_step_s": timing.per_step(), "setup_s": timing.setup(), "peak_rss_mib": peak_rss_mib()}


def run_child(spec: dict, folder: Path) -> dict:
    command = [sys.executable, __file__, "--child", json.dumps(spec), "--scratch", str(folder)]
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        raise SystemExit(f"child {spec} failed:\n{completed.stderr[-3000:]}")
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    print(f"  {spec.get('label', spec['kind'])}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return report


# --------------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(REPO / "experiments/results/bench_minibatch.md"))
    parser.add_argument("--rel-tol", type=float, default=1e-3, help="relative gap to the full-batch optimum that counts as reached")
    parser.add_argument("--large-pairs", type=int, default=LARGE["n_pairs"])
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--scratch", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        spec = json.loads(args.child)
        folder = Path(args.scratch)
        handler = {"mid_reference": child_mid_reference, "mid": child_mid, "large": child_large}[spec["kind"]]
        print(json.dumps(handler(spec, folder), default=float))
        return

    started = time.perf_counter()
    load_before = os.getloadavg()
    mid_pairs = int(MID["n_llms"] * MID["n_items"] * MID["share"])
    with tempfile.TemporaryDirectory(prefix="bench_minibatch_") as scratch:
        folder = Path(scratch)
        print("generating data", file=sys.stderr, flush=True)
        generate(folder, "mid", MID["n_llms"], MID["n_items"], mid_pairs, MID["dim"], seed=0)
        base = {**MID, "rel_tol": args.rel_tol}
        reference = run_child({**base, "kind": "mid_reference", "label": "mid reference"}, folder)
        mid_rows = []
        for label, batch_size, lr_decay in (
            ("full batch", None, None),
            (f"n/4 = {mid_pairs // 4:,}", mid_pairs // 4, None),
            (f"n/16 = {mid_pairs // 16:,}", mid_pairs // 16, None),
            (f"n/64 = {mid_pairs // 64:,}", mid_pairs // 64, None),
            (f"n/16 = {mid_pairs // 16:,}, constant rate", mid_pairs // 16, 1.0),
        ):
            report = run_child({**base, "kind": "mid", "label": label, "batch_size": batch_size, "lr_decay": lr_decay}, folder)
            mid_rows.append((label, report))
        large_rows = []
        if not args.skip_large:
            generate(folder, "large", LARGE["n_llms"], LARGE["n_items"], args.large_pairs, LARGE["dim"], seed=0)
            spec = {"kind": "large", "n_llms": LARGE["n_llms"], "n_items": LARGE["n_items"], "dim": LARGE["dim"]}
            floor = run_child({**spec, "load_only": True, "label": "large: data only"}, folder)
            for label, batch_size in (("full batch", None), ("10^5", 100_000), ("10^4", 10_000)):
                large_rows.append((label, run_child({**spec, "batch_size": batch_size, "label": f"large {label}"}, folder)))

    lines = [
        "# Minibatch SVI vs full batch",
        "",
        f"Command: `{shlex.join([Path(sys.executable).name, *map(str, [Path(__file__).relative_to(REPO), *sys.argv[1:]])])}`"
        f" (run from the repository root; {time.perf_counter() - started:.0f} s in all).",
        "",
        f"Machine: {machine_line()}. Load average at start {load_before[0]:.1f} (1 min; the machine is shared, so wall "
        f"times carry noise of tens of per cent), at end {os.getloadavg()[0]:.1f}. CPU only.",
        "",
        f"## Mid-size: {MID['n_llms']:,} LLMs x {MID['n_items']:,} items, {mid_pairs:,} random pairs "
        f"({MID['share']:.0%} of the cells), d = {MID['dim']}, MAP",
        "",
        f"Full-batch optimum: {reference['steps']} steps (tol 1e-7, converged: {reference['converged']}), "
        f"negative log joint {reference['loss']:.2f}. Within tolerance = the full-batch loss at the run's solution "
        f"is within {args.rel_tol:g} (relative) of the optimum. Minibatch runs use the default schedule (learning "
        "rate 0.05 decaying to 1 % at max_steps) unless marked constant. |Δp|: mean over 200,000 random cells of "
        "the difference to the optimum's predicted probability.",
        "",
        "| batch | ms / step | setup s | steps to tolerance | passes over data | optimisation s to tolerance "
        "| gap there | mean abs Δp there | longest run: steps, gap | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, report in mid_rows:
        within = report["within"]
        last = report["runs"][-1]
        batch = report["batch_size"] or mid_pairs
        reached = (f"{within['max_steps']:,} | {within['max_steps'] * batch / mid_pairs:.0f} | "
                   f"{within['max_steps'] * report['per_step_s']:.1f} | {within['gap']:.1e} | {within['mad']:.4f}"
                   if within else "not reached | - | - | - | -")
        lines.append(f"| {label} | {1000 * report['per_step_s']:.2f} | {report['setup_s']:.1f} | {reached} | "
                     f"{last['max_steps']:,}, {last['gap']:.1e} | {report['peak_rss_mib']:.0f} |")
    if large_rows:
        lines += [
            "",
            f"## Large observed set: {args.large_pairs:,} pairs, {LARGE['n_llms']:,} LLMs x {LARGE['n_items']:,} "
            f"items, d = {LARGE['dim']}, MAP",
            "",
            f"Peak RSS of a child that only loads the data (int32 + int32 + int8 per pair) and starts JAX: "
            f"{floor['peak_rss_mib']:.0f} MiB.",
            "",
            "| batch | s / step | speed-up vs full batch | setup s | peak RSS MiB | peak above data-only MiB |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        full_step = large_rows[0][1]["per_step_s"]
        for label, report in large_rows:
            lines.append(f"| {label} | {report['per_step_s']:.4f} | {full_step / report['per_step_s']:.0f}x | "
                         f"{report['setup_s']:.1f} | "
                         f"{report['peak_rss_mib']:.0f} | {report['peak_rss_mib'] - floor['peak_rss_mib']:.0f} |")
    text = "\n".join(lines) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
