"""Routing on held-out truth (issue 5): each policy's accuracy and mean cost against oracle, best single LLM,
random and kNN-over-questions routing, with parameter count as the cost proxy.

Each run of ``experiments/configs/routing.json`` names a dataset, T, a Table 2 method and a test split
(B: known LLMs, new questions). For every seed it takes Table 2's split and that seed's Table 2
hyper-parameters (:class:`bayes_simrmf.evaluate.seeds.ProtocolSeeds`; chosen there on the seed's own
validation pairs), fits the method with a posterior guide on the training pairs (new questions are folded
in from their text by the kernel mode) and once more as a point estimate, then routes the split's
questions among the candidate LLMs:

* candidates: the known LLMs with a parameter count, keeping those that answered at least ``min_coverage``
  of the split's questions; the routed questions are those every candidate answered, so every decision is
  scored against a real answer;
* cost of a call: ``params_billions`` of the LLM (a proxy for inference cost);
* policies: greedy on the posterior mean, risk-averse (lower credible bound), Thompson sampling, cost-aware
  ``E[p] − lam·cost`` over a grid of ``lam``, threshold (cheapest LLM with ``P(p ≥ t) ≥ 0.9``, escalating to the
  best single LLM when none clears it), and greedy with abstention;
* baselines: oracle (cheapest correct LLM per question: an upper bound), best single LLM (highest training
  accuracy), best LLM per benchmark (highest training accuracy on the question's benchmark), random, kNN over
  questions (text embeddings, training answers);
* the operating points "at the best single LLM's cost" and "at the per-benchmark baseline's cost" are chosen
  by the model alone: cost-aware with the smallest ``lam`` whose *expected* total cost fits that baseline's
  total cost (no test answers used);
* every policy reports the posterior interval of its expected accuracy and the predictive interval of its
  realised accuracy (answer noise added); the report counts how often each holds the realised accuracy.

A run names its posterior guides (``guides``: "normal", "lowrank", "gibbs" — the sampler with learned priors
— or a named variant of ``guide_options`` such as "normal+learned"). One cell per run × seed × guide with
provenance (:class:`bayes_simrmf.evaluate.study.StudyCells`). Writes, per run,
``experiments/results/routing_<run>.md`` (tables per guide), ``.csv`` (every policy and baseline per pool,
seed and guide), ``_selective.csv`` and ``.png`` (accuracy-cost and selective-prediction curves, first
guide); and ``routing_summary.md`` / ``.csv``: per run and guide, interval coverage over seeds × pools and
the cost-aware policy against both baselines at their cost, paired over seeds × pools.

Usage:
    python experiments/routing.py [--runs openllm_v2] [--rerun-stale] [--aggregate-only]
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from bayes_simrmf import routing
from bayes_simrmf.errors import ConfigError
from bayes_simrmf.evaluate import fit_on_split
from bayes_simrmf.evaluate.runner import SeedContext, method_options
from bayes_simrmf.evaluate.seeds import ProtocolSeeds
from bayes_simrmf.evaluate.study import (StudyCells, check_provenance, paired_interval, parse_study, run_driver,
                                         study_parser)
from bayes_simrmf.machine import machine_line
from bayes_simrmf.options import DEFAULT_EMBEDDING_MODEL
from bayes_simrmf.predict.estimator import make_estimator
from bayes_simrmf.similarity import item_embeddings

ROOT = Path(__file__).resolve().parents[1]
CODE = ("experiments/routing.py",)
CELLS = ROOT / "experiments" / "results" / "routing_cells"


def candidate_pool(dataset, split, name: str, min_coverage: float) -> tuple[routing.Candidates, np.ndarray, pd.DataFrame]:
    """Known LLMs with a parameter count that answered ≥ ``min_coverage`` of the split's questions; the
    questions all of them answered; the truth restricted to both."""
    truth = routing.pairs_frame(split, name)
    questions = truth["item"].unique()
    params = dataset.llms.set_index("llm")["params_billions"].astype(float)
    coverage = truth.groupby("llm")["item"].nunique() / len(questions)
    keep = [llm for llm in split.llms[: split.n_known_llms]
            if coverage.get(llm, 0.0) >= min_coverage and params.get(llm, np.nan) > 0]
    truth = truth[truth["llm"].isin(keep)]
    answered = truth.groupby("item")["llm"].nunique()
    routed = np.sort(answered.index[answered == len(keep)].to_numpy(dtype=str))
    truth = truth[truth["item"].isin(routed)].reset_index(drop=True)
    candidates = routing.Candidates(np.asarray(keep, dtype=object), params.reindex(keep).to_numpy())
    return candidates, routed, truth


def paired_difference(truth: pd.DataFrame, first: pd.DataFrame, second: pd.DataFrame, seed: int,
                      n_boot: int = 2000) -> tuple[float, float, float]:
    """Realised accuracy of ``first`` − ``second`` on the same questions, with a 95% bootstrap interval over
    questions."""
    score = truth.set_index(["item", "llm"])["correct"]

    def correct(decisions: pd.DataFrame) -> np.ndarray:
        return score.reindex(pd.MultiIndex.from_arrays([decisions["item"], decisions["llm"]])).to_numpy(float)

    difference = correct(first) - correct(second)
    rng = np.random.default_rng(seed)
    boots = np.array([difference[rng.integers(0, len(difference), len(difference))].mean() for _ in range(n_boot)])
    return float(difference.mean()), float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))


def evaluate_pool(model, point_model, pool: routing.Candidates, questions: np.ndarray, truth: pd.DataFrame, train: pd.DataFrame,
                  vectors: pd.DataFrame, lams: np.ndarray, args,
                  groups: pd.Series | None = None) -> tuple[pd.DataFrame, pd.DataFrame, float, str]:
    """Every policy and baseline on one pool of candidates: (table, selective curves, risk-averse − greedy
    realised accuracy, best single LLM). ``groups`` (benchmark per question) adds the best-LLM-per-benchmark
    baseline and the cost-aware policy at its cost."""
    best_single = routing.best_single_llm_from_training(train, pool)
    best_cost = float(pool.costs[pool.index(best_single, "single")])
    at_budget = routing.cost_aware_for_budget(model, questions, pool, best_cost * len(questions),
                                              n_draws=args.n_draws, seed=args.seed)
    per_group = extra_policies = {}
    if groups is not None:
        choice = routing.best_llm_per_group_from_training(train, pool, groups)
        per_group = {"best per benchmark": routing.group_llm_routing(questions, pool, groups, choice, best_single)}
        extra_policies = {"cost-aware @ per-benchmark cost": routing.cost_aware_for_budget(
            model, questions, pool, float(per_group["best per benchmark"]["cost"].sum()), n_draws=args.n_draws,
            seed=args.seed)}
    # Thresholds spread over the model's own predicted probabilities (no test answers): quantiles 5–95%.
    predicted = routing.expected_success(model, questions, pool, n_draws=args.n_draws, seed=args.seed).to_numpy()
    thresholds = np.unique(np.round(np.quantile(predicted, np.linspace(0.05, 0.95, 13)), 3))
    policies: dict[str, routing.Policy] = {
        "greedy": routing.Greedy(),
        "risk-averse": routing.RiskAverse(level=args.level),
        "thompson": routing.Thompson(),
        "cost-aware @ best-single cost": at_budget,
        **extra_policies,
        **{f"cost-aware {lam:.4g}": routing.CostAware(lam=float(lam)) for lam in lams[1:]},
        **{f"threshold {t:g}": routing.Threshold(threshold=float(t), confidence=args.level, fallback=best_single)
           for t in thresholds},
    }
    results = routing.route_many(model, questions, pool, policies, n_draws=args.n_draws, level=args.level,
                                 seed=args.seed)
    point_results = routing.route_many(
        point_model, questions, pool,
        {"greedy (point estimate)": routing.Greedy(),
         "cost-aware @ best-single cost (point estimate)": routing.cost_aware_for_budget(
             point_model, questions, pool, best_cost * len(questions), n_draws=args.n_draws, seed=args.seed)},
        n_draws=args.n_draws, level=args.level, seed=args.seed)
    baselines = {
        **point_results,
        "oracle": routing.oracle_routing(questions, pool, truth),
        "best single": routing.single_llm_routing(questions, pool, best_single),
        **per_group,
        "random": routing.random_routing(questions, pool, seed=args.seed),
        "knn": routing.knn_routing(questions, pool, train, vectors, k=args.knn_k),
    }
    rows = []
    for name, result in {**results, **baselines}.items():
        original = name
        policy = policies.get(original)
        metrics = routing.evaluate_routing(result, truth)
        family = name.split(" ")[0] if name.startswith(("cost-aware ", "threshold ")) and "@" not in name else name
        if family == "threshold":  # thresholds differ per pool: name them by their rank in the grid
            name = f"threshold #{list(policies).index(name) - list(policies).index(next(p for p in policies if p.startswith('threshold')))}"
        row = {"name": name, "family": family, "param": getattr(policy, "threshold", getattr(policy, "lam", np.nan)),
               "accuracy": metrics["accuracy"], "mean_cost": metrics["mean_cost"]}
        if isinstance(result, routing.RoutingResult):
            summary = result.summary()
            row.update(expected_accuracy=summary["expected_accuracy"],
                       expected_lower=summary["expected_accuracy_lower"],
                       expected_upper=summary["expected_accuracy_upper"],
                       realised_lower=summary["realised_accuracy_lower"],
                       realised_upper=summary["realised_accuracy_upper"],
                       n_llms_used=int(result.decisions["llm"].nunique()))
        else:
            row["n_llms_used"] = int(result["llm"].nunique())
        rows.append(row)
    # Selective prediction: greedy and risk-averse, abstaining below a confidence (kept by mean or lower bound).
    curves = []
    for policy in ("greedy", "risk-averse"):
        for score in ("prob", "lower"):
            curve = routing.selective_curve(results[policy], truth, score=score,
                                            coverages=np.round(np.linspace(0.05, 1.0, 20), 2))
            curve.insert(0, "score", score)
            curve.insert(0, "policy", policy)
            curves.append(curve)
    curve = routing.selective_curve(point_results["greedy (point estimate)"], truth, score="prob",
                                    coverages=np.round(np.linspace(0.05, 1.0, 20), 2))
    curve.insert(0, "score", "prob")
    curve.insert(0, "policy", "greedy (point estimate)")
    curves.append(curve)
    differences = {
        "cost-aware at best-single cost − best single": paired_difference(
            truth, results["cost-aware @ best-single cost"].decisions, baselines["best single"], args.seed),
        **({"cost-aware at per-benchmark cost − best per benchmark": paired_difference(
            truth, results["cost-aware @ per-benchmark cost"].decisions, baselines["best per benchmark"], args.seed)}
           if groups is not None else {}),
        "risk-averse − greedy": paired_difference(truth, results["risk-averse"].decisions,
                                                  results["greedy"].decisions, args.seed),
        "greedy: posterior − point estimate": paired_difference(
            truth, results["greedy"].decisions, point_results["greedy (point estimate)"].decisions, args.seed),
        "cost-aware at best-single cost: posterior − point estimate": paired_difference(
            truth, results["cost-aware @ best-single cost"].decisions,
            point_results["cost-aware @ best-single cost (point estimate)"].decisions, args.seed),
    }
    return pd.DataFrame(rows), pd.concat(curves, ignore_index=True), differences, best_single


def figure(frame: pd.DataFrame, selective: pd.DataFrame, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    for family, style in (("cost-aware", "o-"), ("threshold", "s-")):
        rows = frame[frame["family"] == family].sort_values("mean_cost")
        left.plot(rows["mean_cost"], rows["accuracy"], style, ms=4, label=f"{family} (sweep)")
    markers = {"greedy": "^", "risk-averse": "v", "thompson": "D", "greedy (point estimate)": "<", "oracle": "*", "best single": "P",
               "random": "x", "knn": "h", "cost-aware @ best-single cost": "X"}
    for name, marker in markers.items():
        rows = frame[frame["family"] == name]
        if len(rows):
            left.plot(rows["mean_cost"], rows["accuracy"], marker, ms=10, label=name)
    left.set_xlabel("mean cost per question (parameters, billions)")
    left.set_ylabel("realised accuracy")
    left.set_title("accuracy against cost")
    left.legend(fontsize=8)
    for (policy, score), rows in selective.groupby(["policy", "score"]):
        right.plot(rows["coverage"], rows["accuracy"], "-", label=f"{policy}, keep by {score}")
    right.set_xlabel("share of questions routed (the rest abstained)")
    right.set_ylabel("realised accuracy on routed")
    right.set_title("selective prediction")
    right.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


SETTINGS = ("seeds", "guides", "guide_options", "max_steps", "min_coverage", "n_candidates", "n_pools", "knn_k",
            "n_draws", "level", "groups")


def settings(config: dict, run: dict) -> dict:
    """The config's settings, with the run's own where it sets them."""
    return {key: run.get(key, config[key]) for key in SETTINGS}


def cell_config(seeds: ProtocolSeeds, config: dict, run: dict, seed: int, guide: str) -> dict:
    """One cell's config: the seed's Table 2 cell, the run's settings, one posterior guide (with its options,
    and the point model's)."""
    own = {key: value for key, value in settings(config, run).items() if key not in ("seeds", "guides", "guide_options")}
    options = settings(config, run)["guide_options"]
    if guide not in options:
        raise ConfigError(f"routing guide {guide!r} has no entry in guide_options (it has {sorted(options)})")
    return {**seeds.cell_config(run["dataset"], run["T"], seed, [run["method"]]), "split": run["split"], **own,
            "guide": guide, "guide_options": options[guide], "point_options": options["delta"]}


def fitted(context: SeedContext, method: dict, guide: str, guide_options: dict, cell: dict):
    """The method fitted on the seed's split with one guide ("gibbs": the sampler at its defaults unless the
    options set them; a named variant such as "normal+learned" names its guide in its options)."""
    spec = method["spec"]
    options = method_options(spec, context.seed, method["chosen"])
    guide_options = dict(guide_options)
    if guide == "gibbs":
        options.update(inference="gibbs", **guide_options)
    else:
        options.update(guide=guide_options.pop("guide", guide), max_steps=cell["max_steps"], **guide_options)
    return fit_on_split(make_estimator(options.pop("method"), **options), context.split, side=context.side(spec),
                        item_groups=context.item_groups(spec))


def run_cell(context: SeedContext, cell: dict) -> dict:
    """Fit the posterior and the point model on the seed's split; route every pool; everything the report needs."""
    started = time.perf_counter()
    dataset, split, seed = context.dataset, context.split, context.seed
    args = SimpleNamespace(**cell)
    candidates, questions, truth = candidate_pool(dataset, split, args.split, args.min_coverage)
    print(f"{dataset.name} split {args.split} seed {seed}: {len(candidates)} candidate LLMs (of {split.n_known_llms} "
          f"known), {len(questions)} questions, {len(truth)} answers", flush=True)
    (method,) = cell["methods"].values()
    model = fitted(context, method, args.guide, args.guide_options, cell)
    # A point-estimate router (what routers on point estimates do): the delta guide (MAP), with questions
    # folded in at their conditional mean and no uncertainty integrated over.
    point_model = fitted(context, method, "delta", args.point_options, cell)
    point_model.fitted_ = dataclasses.replace(point_model.fitted_, inductive={
        kind: (mean, np.zeros_like(cov)) for kind, (mean, cov) in point_model.inductive_.items()})
    train = routing.pairs_frame(split, "train")
    vectors = pd.DataFrame(item_embeddings(dataset, split.items, log=None), index=split.items)
    lams = routing.lam_grid(candidates, 13)
    groups = None
    if args.groups:
        if args.groups not in dataset.items.columns:
            raise ConfigError(f"routing groups {args.groups!r} is not a column of {dataset.name}'s items table")
        groups = dataset.items.set_index("item")[args.groups].fillna("(none)").astype(str)
    rng = np.random.default_rng(seed)
    n_pool = min(args.n_candidates or len(candidates), len(candidates))
    pools = ([np.arange(len(candidates))] if n_pool == len(candidates) else
             [np.sort(rng.choice(len(candidates), n_pool, replace=False)) for _ in range(args.n_pools)])
    frames, selectives, differences = [], [], []
    args.seed = seed
    for number, members in enumerate(pools):
        pool = routing.Candidates(candidates.llms[members], candidates.costs[members])
        frame, selective, difference, _ = evaluate_pool(model, point_model, pool, questions,
                                                        truth[truth["llm"].isin(pool.llms)], train, vectors, lams, args,
                                                        groups)
        frames.append(frame.assign(pool=number))
        selectives.append(selective.assign(pool=number))
        differences.append({name: list(value) for name, value in difference.items()})
        named = frame.set_index("name")["accuracy"]
        print(f"pool {number}: greedy {named['greedy']:.4f}, risk-averse {named['risk-averse']:.4f}, best single "
              f"{named['best single']:.4f}", flush=True)
    return {"n_candidates": len(candidates), "n_known_llms": int(split.n_known_llms), "n_questions": len(questions),
            "n_answers": len(truth), "cost_range": [float(candidates.costs.min()), float(candidates.costs.max())],
            "n_pool": int(n_pool), "n_pools": len(pools),
            "fits": {name: {"steps": len(m.losses_), "converged": bool(m.converged_), "seconds": m.fit_seconds_}
                     for name, m in (("posterior", model), ("point", point_model))},
            "guide": args.guide,
            "options": {k: v for k, v in method_options(method["spec"], seed, method["chosen"]).items() if k != "progress"},
            "item_groups": method["spec"].get("item_groups"), "embedding_model": DEFAULT_EMBEDDING_MODEL,
            "machine": machine_line(),
            "seconds": time.perf_counter() - started,
            "per_pool": pd.concat(frames, ignore_index=True).to_dict(orient="list"),
            "selective": pd.concat(selectives, ignore_index=True).to_dict(orient="list"), "differences": differences}


def guide_section(name: str, run: dict, own: dict, guide: str, cells: list[tuple[int, dict]], png: Path | None,
                  level: str = "##") -> tuple[list[str], pd.DataFrame, pd.DataFrame]:
    """One guide's part of a run's report: (markdown lines, per-pool rows, selective curves); draws the figure
    into ``png`` when given."""
    seeds_used = [seed for seed, _ in cells]
    # The unit of every mean below is one pool of one seed.
    per_pool = pd.concat([pd.DataFrame(cell["per_pool"]).assign(seed=seed) for seed, cell in cells], ignore_index=True)
    per_pool["pool"] = per_pool["seed"].astype(str) + "/" + per_pool["pool"].astype(str)
    selective_all = pd.concat([pd.DataFrame(cell["selective"]).assign(seed=seed) for seed, cell in cells],
                              ignore_index=True)
    differences = [d for _, cell in cells for d in cell["differences"]]
    first = cells[0][1]
    n_units = per_pool["pool"].nunique()
    numeric = ["param", "accuracy", "mean_cost", "expected_accuracy", "expected_lower", "expected_upper",
               "realised_lower", "realised_upper", "n_llms_used"]
    frame = per_pool.groupby(["name", "family"], sort=False)[numeric].mean().reset_index()
    frame["accuracy_sd_over_pools"] = per_pool.groupby(["name", "family"], sort=False)["accuracy"].std().to_numpy()
    selective = selective_all.groupby(["policy", "score", "target_coverage"])[["coverage", "accuracy"]].mean().reset_index()
    difference = np.array([d["risk-averse − greedy"][0] for d in differences])
    paired = pd.DataFrame([{"comparison": label, "pool": number, "difference": value[0], "lower95": value[1],
                            "upper95": value[2]} for number, d in enumerate(differences) for label, value in d.items()])
    paired_table = paired.groupby("comparison", sort=False).agg(
        mean_difference=("difference", "mean"), pools_ahead=("difference", lambda v: int((v > 0).sum())),
        n_pools=("difference", "size"), lower95_first_pool=("lower95", "first"),
        upper95_first_pool=("upper95", "first")).reset_index()
    # Per pool: does a router (chosen without test answers) cost no more than the best single LLM and beat it?
    by_pool = {pool: rows.set_index("name") for pool, rows in per_pool.groupby("pool", sort=False)}
    goal = pd.DataFrame([{"pool": pool,
                          "best_single_accuracy": rows.loc["best single", "accuracy"],
                          "best_single_cost": rows.loc["best single", "mean_cost"],
                          "at_cost_accuracy": rows.loc["cost-aware @ best-single cost", "accuracy"],
                          "at_cost_mean_cost": rows.loc["cost-aware @ best-single cost", "mean_cost"],
                          "greedy_accuracy": rows.loc["greedy", "accuracy"], "greedy_mean_cost": rows.loc["greedy", "mean_cost"]}
                         for pool, rows in by_pool.items()])
    best_cost = float(goal["best_single_cost"].mean())
    accuracy_by = per_pool.pivot_table(index="pool", columns="name", values="accuracy")
    point_gap = accuracy_by["greedy"] - accuracy_by["greedy (point estimate)"]
    cheaper = frame[(frame["mean_cost"] <= best_cost + 1e-9) & ~frame["family"].isin(["oracle", "best single"])]
    best_under = cheaper.sort_values("accuracy", ascending=False).head(5)
    pools_text = (f"{first['n_pools']} random pools of {first['n_pool']}" if first["n_pools"] > 1 else f"{first['n_pool']}")
    seeds_text = f"seed{'s' if len(seeds_used) > 1 else ''} {', '.join(map(str, seeds_used))}"
    if png is not None:
        figure(frame, selective, png, f"{run['dataset']}, split {run['split']}, T={run['T']}, {seeds_text}, {guide} "
                                      f"guide: {pools_text} LLMs, {first['n_questions']} questions")
    sel = selective.pivot_table(index=["policy", "score"], columns="target_coverage", values="accuracy")
    sel = sel[[c for c in sel.columns if np.isclose(c, [0.1, 0.25, 0.5, 0.75, 1.0]).any()]]
    headline = ["name", "accuracy", "mean_cost", "expected_accuracy", "expected_lower", "expected_upper",
                "realised_lower", "realised_upper", "n_llms_used"] + (["accuracy_sd_over_pools"] if n_units > 1 else [])
    beats = goal[(goal["at_cost_accuracy"] > goal["best_single_accuracy"])
                 & (goal["at_cost_mean_cost"] <= goal["best_single_cost"] + 1e-9)]
    averaged = " (means over pools and seeds)" if n_units > 1 else ""
    options = first["options"]
    machines = sorted({cell["machine"].split("; load average")[0] for _, cell in cells})
    fits = "; ".join(f"seed {seed}: posterior {cell['fits']['posterior']['steps']} steps (converged "
                     f"{cell['fits']['posterior']['converged']}), point {cell['fits']['point']['steps']} steps"
                     for seed, cell in cells)
    sub = level + "#"
    text = [
        f"{level} {guide} guide: {seeds_text}",
        "",
        f"{'; '.join(machines)}; {sum(cell['seconds'] for _, cell in cells):.0f} s of cell time.  ",
        f"Model: {run['method']} with that seed's Table 2 hyper-parameters (chosen on its validation pairs): d="
        f"{options.get('dim')}, λ_reg={options.get('lambda_reg')}, fold-in nuggets {options.get('fold_in_ridge_items')} "
        f"(questions) / {options.get('fold_in_ridge_llms')} (LLMs), item groups = {first['item_groups'] or 'none'}, "
        f"question embeddings {first['embedding_model']}; {guide} guide; {own['n_draws']} posterior draws, "
        f"credible level {own['level']}. Fits: {fits}.  ",
        f"Candidates: {first['n_candidates']} known LLMs with a parameter count that answered ≥ {own['min_coverage']:.0%} "
        f"of the split's questions; {first['n_questions']} questions that all of them answered. Cost = parameters "
        f"(billions) per call, {first['cost_range'][0]:.2f}–{first['cost_range'][1]:.2f}. Routing among "
        f"{pools_text} candidates.  ",
        "Best single LLM = highest training accuracy in the pool; best per benchmark = highest training accuracy "
        "on the question's benchmark (the best single LLM where a benchmark has no training answers). The cost-aware operating point 'at best-single "
        "cost' is the smallest lam whose expected total cost (the model's, no test answers) fits the best single "
        "LLM's total cost. Threshold t (a grid over the 5–95% quantiles of the model's predicted probabilities): "
        "cheapest LLM with P(p ≥ t) ≥ "
        f"{own['level']}, else the best single LLM. kNN: k={own['knn_k']} nearest training questions by text embedding.",
        "",
        f"{sub} Policies and baselines (realised accuracy on the held-out answers{averaged})",
        "",
        frame[frame["family"].isin(["greedy", "risk-averse", "thompson", "cost-aware @ best-single cost",
                                    "cost-aware @ per-benchmark cost", "greedy (point estimate)",
                                    "cost-aware @ best-single cost (point estimate)", "oracle", "best single",
                                    "best per benchmark", "random", "knn"])][headline].round(4).to_string(index=False),
        "",
        f"{sub} Goal: at the best single LLM's cost or less, beat its accuracy",
        "",
        f"Cost-aware at the best single LLM's cost beats it (higher accuracy at no more cost) in {len(beats)} of "
        f"{len(goal)} pool(s); mean accuracy {goal['at_cost_accuracy'].mean():.4f} vs {goal['best_single_accuracy'].mean():.4f}"
        f", mean cost {goal['at_cost_mean_cost'].mean():.2f} vs {goal['best_single_cost'].mean():.2f}.",
        "",
        goal.round(4).to_string(index=False),
        "",
        f"Most accurate settings at or below the best single LLM's mean cost{averaged}, for reference (chosen here "
        "with test answers, so not a result):",
        "",
        best_under[["name", "accuracy", "mean_cost"]].round(4).to_string(index=False),
        "",
        f"{sub} Risk-averse against greedy on the posterior mean",
        "",
        f"Realised accuracy, risk-averse − greedy, per pool: mean {difference.mean():+.4f}, risk-averse ahead in "
        f"{int((difference > 0).sum())} of {len(difference)} pool(s)"
        + (f" (values {', '.join(f'{d:+.4f}' for d in difference)})" if len(difference) <= 12 else "") + ".",
        "",
        "Greedy on the posterior mean against greedy on the point estimate (delta guide, plug-in), per pool: "
        + "; ".join(f"{label}: accuracy {rows['accuracy'].mean():.4f}, the model's expected accuracy "
                    f"{rows['expected_accuracy'].mean():.4f}"
                    for label, rows in (("posterior", per_pool[per_pool["name"] == "greedy"]),
                                        ("point estimate", per_pool[per_pool["name"] == "greedy (point estimate)"])))
        + f"; posterior ahead in {int(point_gap.gt(0).sum())} of {len(point_gap)} pool(s) (mean "
        f"{point_gap.mean():+.4f}).",
        "",
        "Paired differences in realised accuracy on the same questions (95% bootstrap interval over questions, "
        "shown for the first pool):",
        "",
        paired_table.round(4).to_string(index=False),
        "",
        f"Selective prediction: realised accuracy on the routed questions when the most confident share is "
        f"kept (columns: share routed; rows: router and the score questions are kept by: prob = posterior mean, "
        f"lower = lower {own['level']:g} credible bound){averaged}:",
        "",
        sel.round(4).to_string(),
        "",
        f"{sub} Sweeps (accuracy-cost curves{averaged})",
        "",
        frame[frame["family"].isin(["cost-aware", "threshold"])][["param", *headline]].round(4).to_string(index=False),
        "",
        f"Figure: `{png.name}`." if png is not None else "No figure for this guide (the first guide's is drawn).",
    ]
    return text, per_pool, selective_all


#: Policies whose intervals the summary checks against the realised accuracy.
CHECKED = ("greedy", "risk-averse", "thompson", "cost-aware @ best-single cost", "cost-aware @ per-benchmark cost")
#: (policy, baseline): the cost-aware policy at a baseline's cost against that baseline.
GOALS = (("cost-aware @ best-single cost", "best single"), ("cost-aware @ per-benchmark cost", "best per benchmark"))


def write_report(name: str, run: dict, own: dict, cells: list[tuple[int, str, dict]], command: str,
                 report) -> pd.DataFrame:
    """``routing_<name>.md`` (a section per guide), ``.csv`` (per-pool rows with ``seed`` and ``guide``),
    ``_selective.csv`` and ``.png`` (first guide); returns the per-pool rows."""
    out = ROOT / "experiments" / "results" / f"routing_{name}"
    guides = list(dict.fromkeys(guide for _, guide, _ in cells))
    seeds_used = sorted({seed for seed, _, _ in cells})
    text = [f"# Routing on held-out truth: {run['dataset']}, split {run['split']}, T={run['T']}, seeds "
            f"{', '.join(map(str, seeds_used))}, guides {', '.join(guides)}", "",
            f"Command: `{command}` (config `experiments/configs/routing.json`, run `{name}`)  ", *report.header(), "",
            "Each guide's section has its own fits; the point-estimate rows (delta guide) are re-fitted in every cell "
            "and are the same model in each. `expected_lower`/`expected_upper`: the policy's expected accuracy, "
            f"central {own['level']:g} posterior interval; `realised_lower`/`realised_upper`: the predictive interval "
            "of the realised accuracy (answer noise added). Interval coverage and the goals, per guide: "
            "`routing_summary.md`.", ""]
    per_pools, selectives = [], []
    for number, guide in enumerate(guides):
        mine = [(seed, cell) for seed, g, cell in cells if g == guide]
        lines, per_pool, selective = guide_section(name, run, own, guide, mine,
                                                   out.with_suffix(".png") if number == 0 else None)
        text += lines + [""]
        per_pools.append(per_pool.assign(guide=guide))
        selectives.append(selective.assign(guide=guide))
    text[-1:] = [f"Figure (the {guides[0]} guide): `{out.with_suffix('.png').name}`."]
    per_pool = pd.concat(per_pools, ignore_index=True)
    per_pool.to_csv(out.with_suffix(".csv"), index=False)
    pd.concat(selectives, ignore_index=True).to_csv(out.with_name(out.name + "_selective.csv"), index=False)
    out.with_suffix(".md").write_text("\n".join(text) + "\n")
    return per_pool


def summary_tables(per_pool: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(interval coverage, goals) from per-pool rows of every run and guide (columns ``run``, ``guide``,
    ``seed``, ``pool``, ``name``, ...). A unit is one pool of one seed."""
    coverage, goals = [], []
    for (run, guide), rows in per_pool.groupby(["run", "guide"], sort=False):
        for policy in CHECKED:
            mine = rows[rows["name"] == policy]
            if not len(mine):
                continue
            inside = mine["accuracy"].between(mine["expected_lower"], mine["expected_upper"])
            predictive = mine["accuracy"].between(mine["realised_lower"], mine["realised_upper"])
            per_seed = mine.assign(inside=predictive).groupby("seed")["inside"].mean()
            coverage.append({"run": run, "guide": guide, "policy": policy, "units": len(mine),
                             "seeds": int(mine["seed"].nunique()),
                             "in_expected_interval": int(inside.sum()), "in_predictive_interval": int(predictive.sum()),
                             "seeds_mostly_inside": int((per_seed >= 0.5).sum()),
                             "realised_minus_expected": float((mine["accuracy"] - mine["expected_accuracy"]).mean()),
                             "sd_over_units": float((mine["accuracy"] - mine["expected_accuracy"]).std())
                             if len(mine) > 1 else np.nan,
                             "predictive_width": float((mine["realised_upper"] - mine["realised_lower"]).mean())})
        indexed = rows.set_index(["seed", "pool", "name"])
        for policy, baseline in GOALS:
            if policy not in set(rows["name"]):
                continue
            mine = indexed.xs(policy, level="name")
            other = indexed.xs(baseline, level="name").reindex(mine.index)
            gain = (mine["accuracy"] - other["accuracy"]).to_numpy()
            extra_cost = (mine["mean_cost"] - other["mean_cost"]).to_numpy()
            mean, lower, upper = paired_interval(gain) if len(gain) > 1 else (float(gain[0]), np.nan, np.nan)
            goals.append({"run": run, "guide": guide, "policy": policy, "baseline": baseline, "units": len(gain),
                          "accuracy": float(mine["accuracy"].mean()), "baseline_accuracy": float(other["accuracy"].mean()),
                          "gain": mean, "gain_lower95": lower, "gain_upper95": upper,
                          "units_ahead_at_no_more_cost": int(((gain > 0) & (extra_cost <= 1e-9)).sum()),
                          "mean_cost": float(mine["mean_cost"].mean()),
                          "baseline_mean_cost": float(other["mean_cost"].mean())})
    return pd.DataFrame(coverage), pd.DataFrame(goals)


def write_summary(per_pool: pd.DataFrame, command: str) -> None:
    """``routing_summary.md`` / ``.csv``: interval coverage and the cost-aware policy against both baselines."""
    coverage, goals = summary_tables(per_pool)
    out = ROOT / "experiments" / "results" / "routing_summary"
    pd.concat([coverage.assign(table="coverage"), goals.assign(table="goal")], ignore_index=True).to_csv(
        out.with_suffix(".csv"), index=False)
    text = ["# Routing: do the intervals hold, and does cost-aware routing beat the baselines at their cost?", "",
            f"Command: `{command}`; from the per-pool rows of `routing_<run>.csv` (provenance in `routing_<run>.md`). "
            "A unit is one pool of candidates in one seed (each seed has its own split, fit and pools).", "",
            "## Intervals against the realised accuracy", "",
            "`in_expected_interval`: units whose realised accuracy lies in the posterior interval of the policy's "
            "expected accuracy; `in_predictive_interval`: in the predictive interval of the realised accuracy "
            "(answer noise added; the one that should hold it at its level); `seeds_mostly_inside`: seeds where at "
            "least half the pools' predictive intervals hold it; `realised_minus_expected`: mean over units.", "",
            coverage.round(4).to_string(index=False) if len(coverage) else "no cells", "",
            "## Cost-aware routing at a baseline's cost (lam chosen from the model's expected cost, no test answers)",
            "",
            "`gain`: realised accuracy minus the baseline's, mean over units with a paired 95% t interval; "
            "`units_ahead_at_no_more_cost`: units where it is more accurate at no more mean cost. On a dataset of "
            "one benchmark the per-benchmark baseline is the best single LLM.", "",
            goals.round(4).to_string(index=False) if len(goals) else "no cells", ""]
    out.with_suffix(".md").write_text("\n".join(text) + "\n")


def main() -> None:
    parser = study_parser(__doc__, ROOT / "experiments" / "configs" / "routing.json")
    parser.add_argument("--runs", nargs="*", help="only these runs of the config")
    args, config, command = parse_study(parser, "experiments/routing.py")
    unknown = sorted(set(args.runs or []) - set(config["runs"]))
    if unknown:
        raise ConfigError(f"runs {unknown} are not in {args.config} (it has {list(config['runs'])})")
    seeds = ProtocolSeeds.of(config)
    study = StudyCells.from_args(CELLS, CODE, args)
    for name, run in config["runs"].items():
        if args.runs and name not in args.runs:
            continue
        own, cells = settings(config, run), []
        for seed, guide in itertools.product(own["seeds"], own["guides"]):
            spec = cell_config(seeds, config, run, seed, guide)
            cell = seeds.get(study, (name, f"seed{seed}", guide), spec, run_cell, compare="per_pool")
            if cell is not None:
                cells.append((seed, guide, cell))
        if cells and run.get("report", True):
            report = check_provenance(((f"{name}/seed{seed}/{guide}", cell) for seed, guide, cell in cells),
                                      allow_mixed=args.allow_mixed)
            write_report(name, run, own, cells, command, report)
            print(f"wrote experiments/results/routing_{name}.md ({len(cells)} cells)")
    # The summary gathers every reported run's table on disk, also those not selected by --runs.
    tables = [pd.read_csv(path).assign(run=name) for name, run in config["runs"].items()
              if run.get("report", True) and (path := ROOT / "experiments" / "results" / f"routing_{name}.csv").is_file()]
    tables = [table for table in tables if "guide" in table.columns]  # tables written before guides were recorded
    if tables:
        write_summary(pd.concat(tables, ignore_index=True), command)
        print("wrote experiments/results/routing_summary.md")


if __name__ == "__main__":
    run_driver("routing", main)
