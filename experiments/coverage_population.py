"""A candidate fix for block-missing benchmarks (issue 23, part 5): draw a new LLM, on a question of benchmark g,
from the fitted LLMs that answered g, instead of from all fitted LLMs.

``ece_floor.md`` shows that benchmark coverage is not missing at random (on openllm-v2 the LLMs without
MMLU-Pro answers are stronger on every other benchmark), so the package's population for a new LLM, all fitted
LLMs, includes LLMs whose MMLU-Pro predictions are extrapolations from stronger models. The candidate keeps the
population per benchmark to the LLMs seen on it. It changes predictions only, so one fit per seed serves both.

Per dataset and seed: MF+groups (the delta guide, the hyper-parameters of that seed's Table 2 cell, chosen on
its validation pairs) is fitted twice:

* **validation**: on the seed's training pairs less 20% of its LLMs (``carve_validation(holdout="llms")``), and
  scored on the held-out LLMs' training pairs: the design choice is made here;
* **test**: on all training pairs, and scored on splits C and D (new LLMs): reported, not used to choose.

Each row gives log loss and ECE of both populations and the change. Writes
``experiments/results/coverage_population.md`` / ``.csv``.

Usage:
    python experiments/coverage_population.py [--datasets openllm-v2 openllm-v1-tiny] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_simrmf.data import load_dataset, shared_dataset_path
from bayes_simrmf.evaluate.metrics import ece, log_loss
from bayes_simrmf.evaluate.study import code_state, paired_interval
from bayes_simrmf.evaluate.tables import markdown_table
from bayes_simrmf.evaluate.tuning import carve_validation
from bayes_simrmf.machine import machine_line
from bayes_simrmf.predict import make_estimator
from bayes_simrmf.predict.population import population_mean
from bayes_simrmf.predict.sides import ITEM, LLM
from bayes_simrmf.splits import Protocol


ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
TABLE2_CELLS = RESULTS / "table2_cells"
T_OF = {"openllm-v2": 300, "openllm-v1-tiny": 100}
MAX_PAIRS = 60_000


def answered_members(state, correct_llms, correct_items, groups: pd.Series) -> dict:
    """Benchmark → rows of the fitted LLMs with training answers on it."""
    llm_rows = pd.Series(np.arange(state.n_warm(LLM)), index=state.ids(LLM)[: state.n_warm(LLM)])
    fit_group = groups.reindex(correct_items).to_numpy()
    return {g: llm_rows.reindex(np.unique(correct_llms[fit_group == g])).dropna().astype(int).to_numpy()
            for g in np.unique(fit_group)}


def answered_population(estimator, correct_llms, correct_items, groups: pd.Series, item_q, prob_all):
    """Probabilities of pairs (new LLM, fitted question ``item_q``) with each benchmark's population restricted
    to the fitted LLMs that have training answers on it."""
    state = estimator.fitted_
    item_rows = pd.Series(np.arange(len(state.ids(ITEM))), index=state.ids(ITEM))
    members = answered_members(state, correct_llms, correct_items, groups)
    prob = prob_all.copy()
    pair_group = groups.reindex(item_q).to_numpy()
    codes = item_rows.reindex(item_q).to_numpy()
    for group in np.unique(pair_group):
        mask = (pair_group == group) & ~np.isnan(codes)
        if not mask.any() or not len(members.get(group, [])):
            continue
        unique, inverse = np.unique(codes[mask].astype(int), return_inverse=True)
        prob[mask] = population_mean(state.params, ITEM, unique, members[group])[inverse]
    return prob


def both_new_answered(estimator, correct_llms, correct_items, groups: pd.Series, item_q, prob_all):
    """Split D (new LLM x new question): the mean over each benchmark's fitted questions of the answered-only
    population's probabilities."""
    state = estimator.fitted_
    fitted_items = state.ids(ITEM)[: state.n_warm(ITEM)]
    members = answered_members(state, correct_llms, correct_items, groups)
    prob = prob_all.copy()
    pair_group = groups.reindex(item_q).to_numpy()
    for group in np.unique(pair_group):
        llms = members.get(group, np.empty(0, int))
        items = np.flatnonzero(groups.reindex(fitted_items).to_numpy() == group)
        if len(llms) and len(items):
            prob[pair_group == group] = float(np.mean(population_mean(state.params, ITEM, items, llms)))
    return prob


def scores(prob_all, prob_answered, correct) -> dict:
    return {"log_loss_all": log_loss(prob_all, correct), "log_loss_answered": log_loss(prob_answered, correct),
            "ece_all": ece(prob_all, correct), "ece_answered": ece(prob_answered, correct)}


def run_seed(dataset, groups: pd.Series, T: int, seed: int) -> list[dict]:
    chosen = json.loads((TABLE2_CELLS / dataset.name / f"T{T}" / f"seed{seed}" / "MF+groups.json").read_text())["chosen"]
    split = Protocol(T=T, seed=seed).split(dataset, log=None)
    train = split.pairs["train"]
    llm, item, correct = split.llms[train.llm], split.items[train.item], train.correct
    rows = []

    def estimator():
        return make_estimator("mf", seed=seed, progress=False, **chosen)

    held = carve_validation(llm, item, share=0.2, holdout="llms", seed=seed)
    fitted = estimator().fit(llm[~held], item[~held], correct[~held], item_groups=groups)
    known = np.isin(item[held], fitted.items_)
    v_llm, v_item, v_correct = llm[held][known], item[held][known], correct[held][known]
    prob_all = fitted.predict(v_llm, v_item, unknown="population")
    prob_answered = answered_population(fitted, llm[~held], item[~held], groups, v_item, prob_all)
    rows.append({"dataset": dataset.name, "T": T, "seed": seed, "on": "validation (held-out training LLMs)",
                 "n_pairs": len(v_correct), "chosen": chosen, **scores(prob_all, prob_answered, v_correct)})
    fitted = estimator().fit(llm, item, correct, item_groups=groups)
    for name in ("C", "D"):
        pairs = split.pairs[name]
        take = np.sort(np.random.default_rng([seed, 5]).choice(len(pairs), min(len(pairs), MAX_PAIRS), replace=False))
        t_llm, t_item, t_correct = split.llms[pairs.llm[take]], split.items[pairs.item[take]], pairs.correct[take]
        prob_all = fitted.predict(t_llm, t_item, unknown="population")
        if name == "C":
            prob_answered = answered_population(fitted, llm, item, groups, t_item, prob_all)
        else:
            prob_answered = both_new_answered(fitted, llm, item, groups, t_item, prob_all)
        rows.append({"dataset": dataset.name, "T": T, "seed": seed, "on": f"test split {name} (not used to choose)",
                     "n_pairs": len(t_correct), "chosen": chosen, **scores(prob_all, prob_answered, t_correct)})
    return rows


def summary(table: pd.DataFrame) -> pd.DataFrame:
    out = []
    for (dataset, on), rows in table.groupby(["dataset", "on"], sort=False):
        entry = {"dataset": dataset, "on": on, "seeds": len(rows)}
        for metric in ("log_loss", "ece"):
            diff = (rows[f"{metric}_answered"] - rows[f"{metric}_all"]).to_numpy()
            mean, lower, upper = paired_interval(diff) if len(diff) > 1 else (float(diff[0]), np.nan, np.nan)
            entry.update({f"{metric} all": rows[f"{metric}_all"].mean(), f"{metric} answered": rows[f"{metric}_answered"].mean(),
                          f"{metric} change [95%]": f"{mean:+.4f} [{lower:+.4f}, {upper:+.4f}]",
                          f"{metric} better in": f"{int((diff < 0).sum())} of {len(diff)}"})
        out.append(entry)
    return pd.DataFrame(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="*", default=list(T_OF))
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    args = parser.parse_args()
    code, started, rows = code_state(["experiments/coverage_population.py"]), time.perf_counter(), []
    for name in args.datasets:
        dataset = load_dataset(shared_dataset_path(name), log=None)
        groups = dataset.items.set_index("item")["benchmark"].fillna("(none)").astype(str)
        for seed in args.seeds:
            new = run_seed(dataset, groups, T_OF[name], seed)
            rows += new
            for row in new:
                print(f"{name} seed {seed} {row['on']}: log loss {row['log_loss_all']:.4f} -> {row['log_loss_answered']:.4f}, "
                      f"ECE {row['ece_all']:.4f} -> {row['ece_answered']:.4f}", flush=True)
    table = pd.DataFrame(rows).assign(commit=code["commit"], dirty=code["dirty"])
    out = RESULTS / "coverage_population"
    table.to_csv(out.with_suffix(".csv"), index=False)
    command = ("python experiments/coverage_population.py --datasets " + " ".join(args.datasets)
               + " --seeds " + " ".join(map(str, args.seeds)))
    text = ["# A new LLM drawn from the LLMs that answered the question's benchmark, or from all fitted LLMs", "",
            f"Command: `{command}`; code {code['commit']}{' (dirty)' if code['dirty'] else ''}; "
            f"{time.perf_counter() - started:.0f} s.  ", machine_line() + "  ",
            "MF+groups, delta guide, each seed's Table 2 hyper-parameters. *all*: the package's population (every "
            "fitted LLM); *answered*: the fitted LLMs with training answers on the question's benchmark. Change = "
            "answered − all (negative is better), paired over seeds with a 95% t interval. The choice is made on the "
            "validation rows; the test rows are shown, not used.", "",
            markdown_table(summary(table), 4), "", "## Per seed", "",
            markdown_table(table.drop(columns=["chosen"]), 4), ""]
    out.with_suffix(".md").write_text("\n".join(text))


if __name__ == "__main__":
    main()
