"""Simulation-based calibration of the Gibbs sampler and of the SVI guides (issue 23, part 3).

For each method, ``replicates`` times: draw parameters from the method's own prior, answers for a random share of
a small LLM × question grid from them, fit, and record the rank of each true summary among ``ranks`` posterior
draws. Summaries: the probability of the grid's first six pairs (observed or not) and LLM 0's mean probability
over all questions. If the posterior is right, every rank is uniform on {0, …, ranks} (Talts, Betancourt,
Simpson, Vehtari & Gelman 2018); the table gives a χ² test of uniformity over 10 bins per summary, and the share of
true values inside the central 90% interval of the draws (0.9 when right).

* gibbs: the sampler's model (:func:`bayes_simrmf.model.population.population_model`, learned Normal–Wishart
  populations), simulated with NumPyro's ``Predictive``; the ranks use ``ranks`` kept draws evenly spaced over
  both chains.
* normal, lowrank, delta: ``SimRMF(guide=...)`` on :func:`bayes_simrmf.model.simrmf_model`'s own prior (its
  default ``lambda_reg``, bias scale and intercept prior), simulated the same way; the delta guide's "draws"
  are copies of the MAP, so its ranks show what a point estimate claims.
* a method with ``"prior": "learned"`` (normal+learned): the guide on the sampler's learned-prior model
  (``SimRMF(prior="learned")``, :mod:`bayes_simrmf.inference.learned`), simulated from that model as for gibbs.

One cell per method × batch of replicates, with provenance (:class:`bayes_simrmf.evaluate.study.StudyCells`).

Usage:
    python experiments/sbc.py [--rerun-stale] [--aggregate-only]
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from scipy.stats import chisquare

from bayes_simrmf.evaluate.study import StudyCells, check_provenance, parse_study, run_driver, study_parser
from bayes_simrmf.evaluate.tables import markdown_table
from bayes_simrmf.inference.gibbs import GibbsConfig, run_gibbs
from bayes_simrmf.machine import machine_line
from bayes_simrmf.model.sites import OBSERVED

ROOT = Path(__file__).resolve().parents[1]
CODE = ("experiments/sbc.py",)
CELLS = ROOT / "experiments" / "results" / "sbc_cells"
OUT = ROOT / "experiments" / "results" / "sbc"
N_PAIRS_SHOWN = 6


def grid(n_llms: int, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    llm, item = np.meshgrid(np.arange(n_llms), np.arange(n_items), indexing="ij")
    return llm.ravel().astype(np.int32), item.ravel().astype(np.int32)


def summaries(prob: np.ndarray, n_items: int) -> np.ndarray:
    """``(..., 7)``: the first six pairs' probabilities and LLM 0's mean probability (``prob`` over the grid)."""
    return np.concatenate([prob[..., :N_PAIRS_SHOWN], prob[..., :n_items].mean(axis=-1, keepdims=True)], axis=-1)


def simulate(model, model_kwargs: dict, key) -> dict:
    from numpyro.infer import Predictive

    return {name: np.asarray(value[0]) for name, value in Predictive(model, num_samples=1)(key, **model_kwargs).items()}


def replicate_gibbs(problem: dict, settings: dict, index: int, ranks: int) -> tuple[np.ndarray, float]:
    from bayes_simrmf.model.population import population_model

    n_llms, n_items, dim = problem["n_llms"], problem["n_items"], problem["dim"]
    llm, item = grid(n_llms, n_items)
    truth = simulate(population_model, {"n_llms": n_llms, "n_items": n_items, "llm": jnp.asarray(llm),
                                        "item": jnp.asarray(item), "dim": dim}, jax.random.PRNGKey(index))
    true_prob = 1 / (1 + np.exp(-truth["logits"]))
    observed = np.random.default_rng([index, 1]).random(len(llm)) < problem["observed_share"]
    draws = run_gibbs(n_llms, n_items, llm[observed], item[observed], truth[OBSERVED][observed].astype(np.float32),
                      dim=dim, biases=True, seed=index, config=GibbsConfig(progress=False, **settings)).draws
    logits = (np.einsum("csld,csld->csl", draws["llm_factors"][:, :, llm], draws["item_factors"][:, :, item])
              + draws["llm_bias"][:, :, llm] + draws["item_bias"][:, :, item])
    prob = (1 / (1 + np.exp(-logits))).reshape(-1, len(llm))
    chosen = np.linspace(0, len(prob) - 1, ranks).round().astype(int)
    return rank_of(summaries(true_prob, n_items), summaries(prob[chosen], n_items)), float(truth[OBSERVED].mean())


def replicate_svi(problem: dict, settings: dict, index: int, ranks: int) -> tuple[np.ndarray, float]:
    from bayes_simrmf.model import PairsLayout, simrmf_model
    from bayes_simrmf.predict import SimRMF

    n_llms, n_items, dim = problem["n_llms"], problem["n_items"], problem["dim"]
    llm, item = grid(n_llms, n_items)
    model = SimRMF(dim=dim, seed=index, progress=False, **settings)
    config = model.model_config()
    truth = simulate(simrmf_model, {"n_llms": n_llms, "n_items": n_items,
                                    "layout": PairsLayout(llm=jnp.asarray(llm), item=jnp.asarray(item)),
                                    "config": config}, jax.random.PRNGKey(index))
    logits = (truth["intercept"] + truth["llm_bias"][llm] + truth["item_bias"][item]
              + np.sum(truth["llm_factors"][llm] * truth["item_factors"][item], axis=1))
    true_prob = 1 / (1 + np.exp(-logits))
    answers = truth["correct"]
    observed = np.random.default_rng([index, 1]).random(len(llm)) < problem["observed_share"]
    seen = np.unique(llm[observed]), np.unique(item[observed])
    if len(seen[0]) < n_llms or len(seen[1]) < n_items:  # every entity needs an answer to be in the fit
        observed[np.flatnonzero(~np.isin(llm, seen[0]) | ~np.isin(item, seen[1]))] = True
    model.fit(llm[observed].astype(str), item[observed].astype(str), answers[observed].astype(int))
    sampled = model.sample_posterior(ranks, seed=index)
    order_llm = pd.Index(model.llms_).get_indexer(llm.astype(str))
    order_item = pd.Index(model.items_).get_indexer(item.astype(str))
    from bayes_simrmf.model import pair_logits

    prob = 1 / (1 + np.exp(-pair_logits(sampled, order_llm, order_item)))
    return rank_of(summaries(true_prob, n_items), summaries(prob, n_items)), float(answers.mean())


def replicate_learned(problem: dict, settings: dict, index: int, ranks: int) -> tuple[np.ndarray, float]:
    """A guide on the learned-prior model (``SimRMF(prior="learned")``): simulated from the sampler's population
    model, as for gibbs, and fitted by SVI."""
    from bayes_simrmf.model import pair_logits
    from bayes_simrmf.model.population import population_model
    from bayes_simrmf.predict import SimRMF

    n_llms, n_items, dim = problem["n_llms"], problem["n_items"], problem["dim"]
    llm, item = grid(n_llms, n_items)
    truth = simulate(population_model, {"n_llms": n_llms, "n_items": n_items, "llm": jnp.asarray(llm),
                                        "item": jnp.asarray(item), "dim": dim}, jax.random.PRNGKey(index))
    true_prob = 1 / (1 + np.exp(-truth["logits"]))
    answers = truth[OBSERVED]
    observed = np.random.default_rng([index, 1]).random(len(llm)) < problem["observed_share"]
    seen = np.unique(llm[observed]), np.unique(item[observed])
    if len(seen[0]) < n_llms or len(seen[1]) < n_items:  # every entity needs an answer to be in the fit
        observed[np.flatnonzero(~np.isin(llm, seen[0]) | ~np.isin(item, seen[1]))] = True
    model = SimRMF(dim=dim, seed=index, progress=False, **settings)
    model.fit(llm[observed].astype(str), item[observed].astype(str), answers[observed].astype(int))
    sampled = model.sample_posterior(ranks, seed=index)
    order_llm = pd.Index(model.llms_).get_indexer(llm.astype(str))
    order_item = pd.Index(model.items_).get_indexer(item.astype(str))
    prob = 1 / (1 + np.exp(-pair_logits(sampled, order_llm, order_item)))
    return rank_of(summaries(true_prob, n_items), summaries(prob, n_items)), float(answers.mean())


def rank_of(true: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Rank of each true summary among the draws ``(ranks, k)``, ties split at random."""
    below = (draws < true).sum(axis=0)
    ties = (draws == true).sum(axis=0)
    return below + np.random.default_rng(int(below.sum())).integers(0, ties + 1)


def run_cell(config: dict, method: str, batch: int) -> dict:
    started = time.perf_counter()
    settings, ranks, rows = config["methods"][method], config["ranks"], []
    replicate = (replicate_gibbs if method == "gibbs" else replicate_learned if settings.get("prior") == "learned"
                 else replicate_svi)
    for index in range(batch * config["batch"], (batch + 1) * config["batch"]):
        rank, share_correct = replicate(config["problem"], settings, index, ranks)
        rows.append({"replicate": index, "ranks": rank.tolist(), "share_correct": share_correct})
    return {"rows": rows, "seconds": time.perf_counter() - started, "machine": machine_line()}


def main() -> None:
    args, config, command = parse_study(study_parser(__doc__, ROOT / "experiments" / "configs" / "sbc.json"),
                                        "experiments/sbc.py")
    study = StudyCells.from_args(CELLS, CODE, args)
    cells = []
    for method in config["methods"]:
        for batch in range(config["replicates"] // config["batch"]):
            spec = {key: config[key] for key in ("problem", "batch", "ranks")} | {
                "method": method, "settings": config["methods"][method], "batch_index": batch}
            cell = study.get((method, f"batch{batch}"), spec, lambda m=method, b=batch: run_cell(config, m, b),
                             compare="rows", name=f"{method} batch {batch}",
                             data_hash="simulated:" + json.dumps(config["problem"], sort_keys=True))
            if cell is not None:
                cells.append((f"{method}/batch{batch}", method, cell))
    report = check_provenance([(key, cell) for key, _, cell in cells], allow_mixed=args.allow_mixed)
    names = [f"pair {k} probability" for k in range(N_PAIRS_SHOWN)] + ["LLM 0 mean probability"]
    rows = []
    for method in config["methods"]:
        ranks = np.array([row["ranks"] for _, m, cell in cells if m == method for row in cell["rows"]])
        if not len(ranks):
            continue
        for k, name in enumerate(names):
            counts = np.histogram(ranks[:, k], bins=10, range=(0, config["ranks"] + 1))[0]
            inside = np.mean((ranks[:, k] >= 0.05 * (config["ranks"] + 1)) & (ranks[:, k] < 0.95 * (config["ranks"] + 1)))
            rows.append({"method": method, "summary": name, "replicates": len(ranks),
                         "chi2 p (10 bins)": float(chisquare(counts).pvalue), "inside central 90%": float(inside),
                         "rank histogram (10 bins)": " ".join(map(str, counts))})
    frame = pd.DataFrame(rows)
    frame.to_csv(OUT.with_suffix(".csv"), index=False)
    seconds = {method: sum(cell["seconds"] for _, m, cell in cells if m == method) for method in config["methods"]}
    text = ["# Simulation-based calibration of the sampler and the guides", "",
            f"Command: `{command}` (config `experiments/configs/sbc.json`)  ", *report.header(), "",
            f"Problem {config['problem']}; {config['ranks']} draws per fit; methods {json.dumps(config['methods'])}; "
            f"cell time {', '.join(f'{m} {s:.0f} s' for m, s in seconds.items())}. Each method is simulated from its own "
            "prior: gibbs and the learned-prior guide (`prior: learned`) from the learned Normal–Wishart population "
            "model, the other guides from `simrmf_model` with fixed priors. Uniform ranks (χ² p not small, 0.9 inside the central 90%) mean the posterior is right for that "
            "summary; a U shape means too narrow, a hump too wide.", "",
            markdown_table(frame.apply(lambda c: c.map("{:.3f}".format) if c.dtype.kind == "f" else c))]
    OUT.with_suffix(".md").write_text("\n".join(text) + "\n")
    print("\n".join(text))


if __name__ == "__main__":
    run_driver("sbc", main)
