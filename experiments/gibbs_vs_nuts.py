"""The Gibbs sampler against NUTS on the same model (issue 23, part 3): is the sampler's posterior right?

For each small problem of ``experiments/configs/gibbs_vs_nuts.json`` (answers simulated from planted factors, or
a random block of a shared dataset with a random share of its answers observed), NUTS runs on
:func:`bayes_simrmf.model.population.population_model` — the joint density with learned Normal–Wishart
populations that :func:`bayes_simrmf.inference.gibbs.run_gibbs` samples — and the Gibbs sampler on the same
answers. Factors are not identifiable, so only predictions are compared: the posterior mean and sd of the
probability of every LLM × question pair (observed or not) and of every LLM's mean probability. For each
summary, ``z`` is the difference of the two posterior means over its Monte Carlo standard error (each method's
sd / √ESS); with both samplers right, ``z`` is roughly standard normal (mean |z| ≈ 0.8, 5% beyond 2).

One cell per problem with provenance (:class:`bayes_simrmf.evaluate.study.StudyCells`).

Usage:
    python experiments/gibbs_vs_nuts.py [--rerun-stale] [--aggregate-only]
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from bayes_simrmf.data import load_dataset
from bayes_simrmf.data.locations import shared_dataset_path
from bayes_simrmf.evaluate.study import StudyCells, check_provenance, parse_study, run_driver, study_parser
from bayes_simrmf.evaluate.tables import markdown_table
from bayes_simrmf.inference.gibbs import GibbsConfig, run_gibbs
from bayes_simrmf.machine import machine_line
from bayes_simrmf.model.population import population_model

ROOT = Path(__file__).resolve().parents[1]
CODE = ("experiments/gibbs_vs_nuts.py",)
CELLS = ROOT / "experiments" / "results" / "gibbs_vs_nuts_cells"
OUT = ROOT / "experiments" / "results" / "gibbs_vs_nuts"


def problem_answers(problem: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """``(llm, item, correct, n_llms, n_items)`` of the observed pairs of one problem."""
    rng = np.random.default_rng(problem["seed"])
    n_llms, n_items = problem["n_llms"], problem["n_items"]
    if problem["source"] == "synthetic":
        logits = (rng.normal(size=(n_llms, problem["dim"])) @ rng.normal(size=(problem["dim"], n_items))
                  + rng.normal(size=(n_llms, 1)) + rng.normal(size=(1, n_items)))
        matrix = (rng.random((n_llms, n_items)) < 1 / (1 + np.exp(-logits))).astype(np.float32)
    else:
        responses = load_dataset(shared_dataset_path(problem["source"]), log=None).responses
        llms = rng.choice(np.sort(responses.llm.unique()), n_llms, replace=False)
        items = rng.choice(np.sort(responses.item.unique()), n_items, replace=False)
        block = responses[responses.llm.isin(llms) & responses.item.isin(items)]
        matrix = np.full((n_llms, n_items), np.nan, np.float32)
        matrix[pd.Index(llms).get_indexer(block.llm), pd.Index(items).get_indexer(block.item)] = block.correct
    observed = (rng.random((n_llms, n_items)) < problem["observed_share"]) & ~np.isnan(matrix)
    llm, item = np.nonzero(observed)
    return llm.astype(np.int32), item.astype(np.int32), matrix[llm, item].astype(np.float32), n_llms, n_items


def data_hash(problem: dict) -> str:
    """The shared dataset's fingerprint, or the simulation's settings for a synthetic problem."""
    if problem["source"] == "synthetic":
        return "synthetic:" + json.dumps(problem, sort_keys=True)
    return load_dataset(shared_dataset_path(problem["source"]), log=None).fingerprint()


def summaries(llm_rows: np.ndarray, item_rows: np.ndarray, dim: int) -> np.ndarray:
    """``(chains, draws, n_llms · n_items + n_llms)``: every pair's probability, then every LLM's mean one."""
    logits = np.einsum("csld,csid->csli", llm_rows[..., :dim], item_rows[..., :dim])
    logits += llm_rows[..., dim][..., :, None] + item_rows[..., dim][..., None, :]
    prob = 1 / (1 + np.exp(-logits))
    return np.concatenate([prob.reshape(*prob.shape[:2], -1), prob.mean(axis=3)], axis=2)


def run_cell(problem: dict, config: dict) -> dict:
    llm, item, correct, n_llms, n_items = problem_answers(problem)
    dim = problem["dim"]
    nuts_settings, gibbs_settings = config["nuts"], config["gibbs"]
    from numpyro.infer import MCMC, NUTS

    started = time.perf_counter()
    mcmc = MCMC(NUTS(population_model, target_accept_prob=nuts_settings["target_accept_prob"]),
                num_warmup=nuts_settings["warmup"], num_samples=nuts_settings["samples"],
                num_chains=nuts_settings["chains"], chain_method="sequential", progress_bar=False)
    mcmc.run(jax.random.PRNGKey(problem["seed"]), n_llms, n_items, jnp.asarray(llm), jnp.asarray(item), dim=dim,
             correct=jnp.asarray(correct))
    nuts_seconds = time.perf_counter() - started
    samples = mcmc.get_samples(group_by_chain=True)
    nuts = summaries(np.asarray(samples["llm_rows"], np.float64), np.asarray(samples["item_rows"], np.float64), dim)
    started = time.perf_counter()
    draws = run_gibbs(n_llms, n_items, llm, item, correct, dim=dim, biases=True, seed=problem["seed"],
                      config=GibbsConfig(progress=False, **gibbs_settings)).draws
    gibbs_seconds = time.perf_counter() - started
    llm_rows = np.concatenate([draws["llm_factors"], draws["llm_bias"][..., None]], axis=-1).astype(np.float64)
    item_rows = np.concatenate([draws["item_factors"], draws["item_bias"][..., None]], axis=-1).astype(np.float64)
    gibbs = summaries(llm_rows, item_rows, dim)
    stats = {}
    for name, values in (("nuts", nuts), ("gibbs", gibbs)):
        dataset = az.convert_to_dataset({"s": values})
        stats[name] = {"mean": values.mean(axis=(0, 1)), "sd": values.std(axis=(0, 1)),
                       "ess": az.ess(dataset, method="bulk")["s"].to_numpy(), "rhat": az.rhat(dataset)["s"].to_numpy()}
    error = np.sqrt(stats["nuts"]["sd"] ** 2 / stats["nuts"]["ess"] + stats["gibbs"]["sd"] ** 2 / stats["gibbs"]["ess"])
    z = (stats["gibbs"]["mean"] - stats["nuts"]["mean"]) / error
    ratio = stats["gibbs"]["sd"] / stats["nuts"]["sd"]
    pairs = n_llms * n_items
    rows = []
    for kind, part in (("pair probability", slice(0, pairs)), ("LLM mean probability", slice(pairs, None))):
        rows.append({"summary": kind, "n": int(z[part].size), "mean |z|": float(np.mean(np.abs(z[part]))),
                     "share |z| > 2": float(np.mean(np.abs(z[part]) > 2)), "max |z|": float(np.max(np.abs(z[part]))),
                     "sd ratio median": float(np.median(ratio[part])), "sd ratio min": float(np.min(ratio[part])),
                     "sd ratio max": float(np.max(ratio[part])),
                     "max |mean diff|": float(np.max(np.abs(stats["gibbs"]["mean"][part] - stats["nuts"]["mean"][part]))),
                     "R-hat max gibbs": float(np.max(stats["gibbs"]["rhat"][part])),
                     "R-hat max nuts": float(np.max(stats["nuts"]["rhat"][part])),
                     "ESS min gibbs": float(np.min(stats["gibbs"]["ess"][part])),
                     "ESS min nuts": float(np.min(stats["nuts"]["ess"][part]))})
    return {"rows": rows, "n_pairs": int(len(llm)), "nuts_seconds": nuts_seconds, "gibbs_seconds": gibbs_seconds,
            "machine": machine_line()}


def main() -> None:
    args, config, command = parse_study(study_parser(__doc__, ROOT / "experiments" / "configs" / "gibbs_vs_nuts.json"),
                                        "experiments/gibbs_vs_nuts.py")
    study = StudyCells.from_args(CELLS, CODE, args)
    cells = []
    for name, problem in config["problems"].items():
        spec = {"problem": problem, "nuts": config["nuts"], "gibbs": config["gibbs"]}
        cell = study.get((name,), spec, lambda problem=problem: run_cell(problem, config), compare="rows",
                         name=name, data_hash=lambda problem=problem: data_hash(problem))
        if cell is not None:
            cells.append((name, cell))
    report = check_provenance(cells, allow_mixed=args.allow_mixed)
    frame = pd.DataFrame([{"problem": name, "observed pairs": cell["n_pairs"], **row} for name, cell in cells
                          for row in cell["rows"]])
    frame.columns = [column.replace("|z|", "abs z").replace("|mean diff|", "abs mean diff") for column in frame.columns]
    frame.to_csv(OUT.with_suffix(".csv"), index=False)
    timing = pd.DataFrame([{"problem": name, "observed pairs": cell["n_pairs"], "NUTS s": cell["nuts_seconds"],
                            "Gibbs s": cell["gibbs_seconds"]} for name, cell in cells])
    text = ["# The Gibbs sampler against NUTS on the same model", "",
            f"Command: `{command}` (config `experiments/configs/gibbs_vs_nuts.json`)  ", *report.header(), "",
            "Both sample the model with learned Normal–Wishart populations (`bayes_simrmf.model.population`); NUTS "
            f"{config['nuts']}, Gibbs {config['gibbs']}. Every LLM × question pair's probability (observed or not) "
            "and every LLM's mean probability; z = (Gibbs mean − NUTS mean) / Monte Carlo standard error (each "
            "method's sd / √bulk ESS): near standard normal when both are right (mean |z| ≈ 0.80, 4.6% beyond 2). "
            "sd ratio: Gibbs posterior sd / NUTS posterior sd.", "",
            markdown_table(frame.apply(lambda c: c.map("{:.3f}".format) if c.dtype.kind == "f" else c)), "",
            markdown_table(timing.apply(lambda c: c.map("{:.1f}".format) if c.dtype.kind == "f" else c))]
    OUT.with_suffix(".md").write_text("\n".join(text) + "\n")
    print("\n".join(text))


if __name__ == "__main__":
    run_driver("gibbs_vs_nuts", main)
