"""How many draws R-hat <= 1.01 on every prediction summary needs, and whether the learned populations are what
keeps the sampler's chains apart (issue 23).

Two parts, written to ``experiments/results/gibbs_rhat_floor.md`` with ``--real`` (part 1 alone is only printed):

1. **The floor of independent draws.** ArviZ's rank-normalised split R-hat of ``n_summaries`` summaries, each
   drawn independently (standard normal: R-hat is rank based, so the distribution does not matter) for 4 chains
   of ``per_chain`` draws. This is what a sampler with no autocorrelation at all would report, so it bounds what
   any sampler can show with that many kept draws. ``n_summaries`` defaults to the count the package's
   :meth:`SamplePosterior.prediction_diagnostics` reports on the bench problem (2,000 pairs + 494 LLMs + 861
   questions).
2. **Fixed populations** (``--real``): the sampler with the package defaults on the bench problem of
   ``experiments/bench/bench_gibbs.py`` (openllm-v2-mmlupro-math, ``Protocol(500, 1000, T=300, seed=0)``, MF+groups,
   dim 8), then the same run with the Normal–Wishart population draws replaced by a constant: the first run's
   posterior mean of each population's mean and covariance. If the chains drift apart because the learned
   populations wander (``gibbs_chains.md``: per-chain population eigenvalues differ by up to 2x), pinning them
   should lower the pairs' R-hat.

Usage:
    python experiments/gibbs_rhat_floor.py [--real] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "experiments" / "results" / "gibbs_rhat_floor.md"
PER_CHAIN = (100, 250, 500, 1000)


def independent_floor(n_summaries: int, per_chain: int, chains: int = 4, seed: int = 0) -> dict:
    """R-hat of ``n_summaries`` summaries whose draws are independent: median, max and the share above 1.01."""
    import arviz as az

    values = np.random.default_rng([seed, per_chain]).normal(size=(chains, per_chain, n_summaries))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rhat = az.rhat(az.convert_to_dataset({"x": values}))["x"].to_numpy()
    return {"median": float(np.median(rhat)), "max": float(rhat.max()), "share_above": float(np.mean(rhat > 1.01))}


def _diagnostics_row(label: str, estimator, seconds: float) -> str:
    diagnostics = estimator.sampler_diagnostics_
    kinds = diagnostics["by_kind"]
    return (f"| {label} | {seconds:.0f} | {diagnostics['max_rhat']:.3f} | "
            + " / ".join(f"{kinds[k]['median_rhat']:.4f}" for k in ("pair", "llm", "item")) + " | "
            + " / ".join(f"{kinds[k]['n_above']} of {kinds[k]['n']}" for k in ("pair", "llm", "item"))
            + f" | {diagnostics['min_ess_bulk']:.0f} |")


def fixed_population_rows(seed: int) -> list[str]:
    import jax.numpy as jnp

    import bayes_simrmf.inference.gibbs as gibbs
    from bayes_simrmf.data import load_dataset, shared_dataset_path
    from bayes_simrmf.evaluate import fit_on_split
    from bayes_simrmf.predict import make_estimator
    from bayes_simrmf.splits import Protocol

    dataset = load_dataset(shared_dataset_path("openllm-v2-mmlupro-math"), log=None)
    split = Protocol(500, 1000, T=300, seed=seed).split(dataset, log=None)
    groups = dataset.items.set_index("item")["benchmark"].fillna("(none)").astype(str)

    def fit():
        estimator = make_estimator("mf", dim=8, seed=seed, progress=False, inference="gibbs")
        start = time.perf_counter()
        fit_on_split(estimator, split, item_groups=groups)
        return estimator, time.perf_counter() - start

    learned, seconds = fit()
    rows = [_diagnostics_row("learned populations (package defaults)", learned, seconds)]
    draws = learned.posterior_.draws
    mean = {name: np.asarray(draws[name], np.float64).mean(axis=(0, 1)) for name in gibbs.POPULATION_SITES}
    fixed = {
        "llm": (jnp.asarray(mean[gibbs.LLM_POPULATION_LOC][None], jnp.float32),
                jnp.asarray(np.linalg.inv(mean[gibbs.LLM_POPULATION_COV]), jnp.float32)),
        "item": (jnp.asarray(mean[gibbs.ITEM_POPULATION_LOC], jnp.float32),
                 jnp.asarray(np.linalg.inv(mean[gibbs.ITEM_POPULATION_COV]), jnp.float32)),
    }
    n_llms = draws[gibbs.LLM_BIAS].shape[2]
    original = gibbs._normal_wishart

    def constant_population(key, rows, group, n_groups, beta0, nu0):
        return fixed["llm"] if rows.shape[0] == n_llms and n_groups == 1 else fixed["item"]

    # Read when the sweep is traced: drop the program the first fit compiled, before and after (restored below).
    gibbs._normal_wishart = constant_population
    gibbs._run_chunk.clear_cache()
    try:
        pinned, seconds = fit()
    finally:
        gibbs._normal_wishart = original
        gibbs._run_chunk.clear_cache()
    rows.append(_diagnostics_row("populations fixed at the first run's posterior mean", pinned, seconds))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real", action="store_true", help="also run part 2 on openllm-v2-mmlupro-math (~5 min)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-summaries", type=int, default=3355)
    args = parser.parse_args()

    from bayes_simrmf.evaluate.study import Report

    report = Report("R-hat <= 1.01 on every prediction summary: the floor of independent draws, and fixed populations",
                    f"python experiments/gibbs_rhat_floor.py{' --real' if args.real else ''} --seed {args.seed}")
    lines = ["", f"## 1. Independent draws: 4 chains, {args.n_summaries:,} summaries", "",
             "| draws per chain | median R-hat | max R-hat | share above 1.01 |", "|---:|---:|---:|---:|"]
    for per_chain in PER_CHAIN:
        floor = independent_floor(args.n_summaries, per_chain, seed=args.seed)
        lines.append(f"| {per_chain} | {floor['median']:.4f} | {floor['max']:.4f} | {floor['share_above']:.3f} |")
    lines += ["", "The package's default keeps 100 draws per chain (400 sweeps, thin 4)."]
    if args.real:
        lines += ["", "## 2. Learned against fixed populations (openllm-v2-mmlupro-math, Protocol(500, 1000, T=300, "
                  f"seed={args.seed}), MF+groups, dim 8, 4 chains x 100 kept draws)", "",
                  "| run | fit s | max R-hat | median R-hat (pair / LLM / question) | summaries > 1.01 (pair / LLM / "
                  "question) | min bulk ESS |", "|---|---:|---:|---|---|---:|"]
        lines += fixed_population_rows(args.seed)
    for line in lines:
        report.say(line)
    if args.real:  # the committed report holds both parts; part 1 alone is only printed
        report.write(OUT)


if __name__ == "__main__":
    main()
