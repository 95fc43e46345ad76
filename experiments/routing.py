"""Routing on held-out truth (issue 5): each policy's accuracy and mean cost against oracle, best single LLM,
random and kNN-over-questions routing, with parameter count as the cost proxy.

For one split of a dataset (default B: known LLMs, new questions), fits SimRMF with a posterior guide on the
split's training pairs (new questions are folded in from their text by the kernel mode), then routes the
split's questions among the candidate LLMs:

* candidates: the known LLMs with a parameter count, keeping those that answered at least ``--min-coverage``
  of the split's questions; the routed questions are those every candidate answered, so every decision is
  scored against a real answer;
* cost of a call: ``params_billions`` of the LLM (a proxy for inference cost);
* policies: greedy on the posterior mean, risk-averse (lower credible bound), Thompson sampling, cost-aware
  ``E[p] − lam·cost`` over a grid of ``lam``, threshold (cheapest LLM with ``P(p ≥ t) ≥ 0.9``, escalating to the
  best single LLM when none clears it), and greedy with abstention;
* baselines: oracle (cheapest correct LLM per question: an upper bound), best single LLM (highest training
  accuracy), random, kNN over questions (text embeddings, training answers);
* the operating point "at the best single LLM's cost" is chosen by the model alone: cost-aware with the
  smallest ``lam`` whose *expected* total cost fits the best single LLM's total cost (no test answers used).

Writes ``OUT.md`` (tables), ``OUT.csv`` (every policy and baseline), ``OUT_selective.csv`` and ``OUT.png``
(accuracy-cost curves and selective-prediction curves).

Usage:
    python experiments/routing.py --data openllm-v2 --T 300 --dim 16 --lambda-reg 1 --item-groups \
        --ridge-items 0.1 --ridge-llms 0.1 --out experiments/results/routing_openllm_v2
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_simrmf import routing
from bayes_simrmf.data import load_dataset, shared_dataset_path
from bayes_simrmf.predict import SimRMF
from bayes_simrmf.evaluate import fit_on_split
from bayes_simrmf.similarity import build_side_information, item_embeddings
from bayes_simrmf.splits import Protocol


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
                  vectors: pd.DataFrame, lams: np.ndarray, args) -> tuple[pd.DataFrame, pd.DataFrame, float, str]:
    """Every policy and baseline on one pool of candidates: (table, selective curves, risk-averse − greedy
    realised accuracy, best single LLM)."""
    best_single = routing.best_single_llm_from_training(train, pool)
    best_cost = float(pool.costs[pool.index(best_single, "single")])
    at_budget = routing.cost_aware_for_budget(model, questions, pool, best_cost * len(questions),
                                              n_draws=args.n_draws, seed=args.seed)
    # Thresholds spread over the model's own predicted probabilities (no test answers): quantiles 5–95%.
    predicted = routing.expected_success(model, questions, pool, n_draws=args.n_draws, seed=args.seed).to_numpy()
    thresholds = np.unique(np.round(np.quantile(predicted, np.linspace(0.05, 0.95, 13)), 3))
    policies: dict[str, routing.Policy] = {
        "greedy": routing.Greedy(),
        "risk-averse": routing.RiskAverse(level=args.level),
        "thompson": routing.Thompson(),
        "cost-aware @ best-single cost": at_budget,
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="openllm-v2")
    parser.add_argument("--split", default="B", choices=["A", "B", "C", "D"])
    parser.add_argument("--n-known-llms", type=int, default=None)
    parser.add_argument("--n-known-items", type=int, default=None)
    parser.add_argument("--T", type=int, default=300)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--lambda-reg", type=float, default=1.0)
    parser.add_argument("--guide", default="normal", choices=["normal", "lowrank", "delta"])
    parser.add_argument("--ridge-items", type=float, default=1.0, help="fold-in nugget (questions)")
    parser.add_argument("--ridge-llms", type=float, default=1.0, help="fold-in nugget (LLMs)")
    parser.add_argument("--item-groups", action="store_true", help="each benchmark its own mean difficulty")
    parser.add_argument("--min-coverage", type=float, default=0.99,
                        help="candidates: known LLMs that answered at least this share of the split's questions")
    parser.add_argument("--n-candidates", type=int, default=None,
                        help="route among random pools of this many candidates (default: all candidates, one pool)")
    parser.add_argument("--n-pools", type=int, default=10, help="pools drawn with --n-candidates")
    parser.add_argument("--knn-k", type=int, default=10)
    parser.add_argument("--n-draws", type=int, default=200)
    parser.add_argument("--level", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    started = time.time()

    dataset = load_dataset(shared_dataset_path(args.data), unknown_entities="add", log=None)
    split = Protocol(args.n_known_llms, args.n_known_items, T=args.T, seed=args.seed, n_test_pairs=10_000_000).split(
        dataset, log=None)
    candidates, questions, truth = candidate_pool(dataset, split, args.split, args.min_coverage)
    print(f"{args.data} split {args.split}: {len(candidates)} candidate LLMs (of {split.n_known_llms} known), "
          f"{len(questions)} questions, {len(truth)} answers; costs {candidates.costs.min():.2f}-"
          f"{candidates.costs.max():.2f} B parameters", flush=True)

    side = build_side_information(dataset, split.llms, split.items, log=None)
    groups = dataset.items.set_index("item")["benchmark"] if args.item_groups else None
    model = SimRMF(method="simrmf", guide=args.guide, dim=args.dim, lambda_reg=args.lambda_reg,
                   learning_rate={"delta": 0.05, "normal": 0.02, "lowrank": 0.01}[args.guide], max_steps=3000,
                   fold_in_ridge_items=args.ridge_items, fold_in_ridge_llms=args.ridge_llms, seed=args.seed,
                   progress=False)
    fit_on_split(model, split, side=side, item_groups=groups)
    print(f"fitted simrmf ({args.guide}) in {model.fit_seconds_:.0f} s, {len(model.losses_)} steps, "
          f"converged {model.converged_}", flush=True)

    # A point-estimate router (what routers on point estimates do): the delta guide (MAP), with questions
    # folded in at their Gaussian-process conditional mean and no uncertainty integrated over.
    point_model = SimRMF(method="simrmf", guide="delta", dim=args.dim, lambda_reg=args.lambda_reg, learning_rate=0.05,
                         max_steps=3000, fold_in_ridge_items=args.ridge_items, fold_in_ridge_llms=args.ridge_llms,
                         seed=args.seed, progress=False)
    fit_on_split(point_model, split, side=side, item_groups=groups)
    point_model.inductive_ = {kind: (mean, np.zeros_like(cov)) for kind, (mean, cov) in point_model.inductive_.items()}
    print(f"fitted the point model (delta) in {point_model.fit_seconds_:.0f} s", flush=True)

    train = routing.pairs_frame(split, "train")
    vectors = pd.DataFrame(item_embeddings(dataset, split.items, log=None), index=split.items)
    lams = routing.lam_grid(candidates, 13)
    rng = np.random.default_rng(args.seed)
    n_pool = min(args.n_candidates or len(candidates), len(candidates))
    pools = ([np.arange(len(candidates))] if n_pool == len(candidates) else
             [np.sort(rng.choice(len(candidates), n_pool, replace=False)) for _ in range(args.n_pools)])
    frames, selectives, differences, singles = [], [], [], []
    for number, members in enumerate(pools):
        pool = routing.Candidates(candidates.llms[members], candidates.costs[members])
        pool_truth = truth[truth["llm"].isin(pool.llms)]
        frame, selective, difference, single = evaluate_pool(model, point_model, pool, questions, pool_truth, train,
                                                             vectors, lams, args)
        frame.insert(0, "pool", number)
        selective.insert(0, "pool", number)
        frames.append(frame)
        selectives.append(selective)
        differences.append(difference)
        singles.append(single)
        print(f"pool {number}: greedy {frame.set_index('name').loc['greedy', 'accuracy']:.4f}, risk-averse "
              f"{frame.set_index('name').loc['risk-averse', 'accuracy']:.4f}, best single "
              f"{frame.set_index('name').loc['best single', 'accuracy']:.4f}", flush=True)
    per_pool = pd.concat(frames, ignore_index=True)
    selective_all = pd.concat(selectives, ignore_index=True)
    numeric = ["param", "accuracy", "mean_cost", "expected_accuracy", "expected_lower", "expected_upper", "n_llms_used"]
    frame = per_pool.groupby(["name", "family"], sort=False)[numeric].mean().reset_index()
    frame["accuracy_sd_over_pools"] = per_pool.groupby(["name", "family"], sort=False)["accuracy"].std().to_numpy()
    selective = selective_all.groupby(["policy", "score", "target_coverage"])[["coverage", "accuracy"]].mean().reset_index()
    difference = np.array([d["risk-averse − greedy"][0] for d in differences])
    paired = pd.DataFrame([{"comparison": name, "pool": number, "difference": value[0], "lower95": value[1],
                            "upper95": value[2]} for number, d in enumerate(differences) for name, value in d.items()])
    paired_table = paired.groupby("comparison", sort=False).agg(
        mean_difference=("difference", "mean"), pools_ahead=("difference", lambda v: int((v > 0).sum())),
        n_pools=("difference", "size"), lower95_first_pool=("lower95", "first"),
        upper95_first_pool=("upper95", "first")).reset_index()
    # Per pool: does a router (chosen without test answers) cost no more than the best single LLM and beat it?
    goal = pd.DataFrame([{"pool": number,
                          "best_single_accuracy": row["best single"]["accuracy"],
                          "best_single_cost": row["best single"]["mean_cost"],
                          "at_cost_accuracy": row["cost-aware @ best-single cost"]["accuracy"],
                          "at_cost_mean_cost": row["cost-aware @ best-single cost"]["mean_cost"],
                          "greedy_accuracy": row["greedy"]["accuracy"], "greedy_mean_cost": row["greedy"]["mean_cost"]}
                         for number, row in enumerate(f.set_index("name").to_dict("index") for f in frames)])
    best_cost = float(goal["best_single_cost"].mean())
    accuracy_by = per_pool.pivot_table(index="pool", columns="name", values="accuracy")
    point_gap = accuracy_by["greedy"] - accuracy_by["greedy (point estimate)"]
    cheaper = frame[(frame["mean_cost"] <= best_cost + 1e-9) & ~frame["family"].isin(["oracle", "best single"])]
    best_under = cheaper.sort_values("accuracy", ascending=False).head(5)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    per_pool.to_csv(args.out.with_suffix(".csv"), index=False)
    selective_all.to_csv(args.out.with_name(args.out.name + "_selective.csv"), index=False)
    png = args.out.with_suffix(".png")
    pools_text = (f"{len(pools)} random pools of {n_pool}" if len(pools) > 1 else f"{n_pool}")
    figure(frame, selective, png, f"{args.data}, split {args.split}, T={args.T}: {pools_text} LLMs, "
                                  f"{len(questions)} questions")
    sel = selective.pivot_table(index=["policy", "score"], columns="target_coverage", values="accuracy")
    sel = sel[[c for c in sel.columns if np.isclose(c, [0.1, 0.25, 0.5, 0.75, 1.0]).any()]]
    headline = ["name", "accuracy", "mean_cost", "expected_accuracy", "expected_lower", "expected_upper",
                "n_llms_used"] + (["accuracy_sd_over_pools"] if len(pools) > 1 else [])
    beats = goal[(goal["at_cost_accuracy"] > goal["best_single_accuracy"])
                 & (goal["at_cost_mean_cost"] <= goal["best_single_cost"] + 1e-9)]
    averaged = " (means over pools)" if len(pools) > 1 else ""
    text = [
        f"# Routing on held-out truth: {args.data}, split {args.split}, T={args.T}, seed {args.seed}",
        "",
        f"Command: `{shlex.join(['python', *sys.argv])}`  ",
        f"Machine: {platform.machine()}, JAX on CPU; wall time {time.time() - started:.0f} s.  ",
        f"Model: SimRMF, {args.guide} guide, d={args.dim}, λ_reg={args.lambda_reg}, fold-in nuggets "
        f"{args.ridge_items} (questions) / {args.ridge_llms} (LLMs)"
        + (", item groups = benchmarks" if args.item_groups else "")
        + f"; {args.n_draws} posterior draws, credible level {args.level}.  ",
        f"Candidates: {len(candidates)} known LLMs with a parameter count that answered ≥ {args.min_coverage:.0%} of "
        f"the split's questions; {len(questions)} questions that all of them answered. Cost = parameters "
        f"(billions) per call, {candidates.costs.min():.2f}–{candidates.costs.max():.2f}. Routing among "
        f"{pools_text} candidates.  ",
        "Best single LLM = highest training accuracy in the pool. The cost-aware operating point 'at best-single "
        "cost' is the smallest lam whose expected total cost (the model's, no test answers) fits the best single "
        "LLM's total cost. Threshold t (a grid over the 5–95% quantiles of the model's predicted probabilities): "
        "cheapest LLM with P(p ≥ t) ≥ "
        f"{args.level}, else the best single LLM. kNN: k={args.knn_k} nearest training questions by text embedding.",
        "",
        f"## Policies and baselines (realised accuracy on the held-out answers{averaged})",
        "",
        frame[frame["family"].isin(["greedy", "risk-averse", "thompson", "cost-aware @ best-single cost",
                                    "greedy (point estimate)", "cost-aware @ best-single cost (point estimate)",
                                    "oracle", "best single", "random", "knn"])][headline].round(4).to_string(index=False),
        "",
        "## Goal: at the best single LLM's cost or less, beat its accuracy",
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
        "## Risk-averse against greedy on the posterior mean",
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
        f"lower = lower {args.level:g} credible bound){averaged}:",
        "",
        sel.round(4).to_string(),
        "",
        f"## Sweeps (accuracy-cost curves{averaged})",
        "",
        frame[frame["family"].isin(["cost-aware", "threshold"])][["param", *headline]].round(4).to_string(index=False),
        "",
        f"Figure: `{png.name}`.",
    ]
    args.out.with_suffix(".md").write_text("\n".join(text) + "\n")
    print("\n".join(text))


if __name__ == "__main__":
    main()
