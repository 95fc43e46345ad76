"""Where the sampler's R-hat misses (issue 23: R-hat <= 1.01 on every prediction summary).

Fits ``SimRMF(method="mf", item_groups=benchmark, inference="gibbs", dim=8)`` with the package defaults on
openllm-v2-mmlupro-math (``Protocol(500, 1000, T=300, seed=0)``, as ``experiments/bench/bench_gibbs.py``), takes
2,000 training pairs (seeded), and breaks the rank-normalised split R-hat of each pair's probability down by the
posterior mean probability and by the question's training accuracy; then the R-hat of every question's mean logit
over the fitted LLMs against how one-sided its answers are. Output: ``experiments/results/gibbs_rhat_where.md``.

Usage:
    python experiments/gibbs_rhat_where.py [--seed 0] [--dim 8]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "experiments" / "results" / "gibbs_rhat_where.md"


def rhat(values: np.ndarray) -> np.ndarray:
    """Rank-normalised split R-hat over the last axis's summaries: ``values`` is (chains, draws, n)."""
    import arviz as az

    return az.rhat(az.convert_to_dataset({"x": values}))["x"].to_numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dim", type=int, default=8)
    args = parser.parse_args()

    from bayes_simrmf.data import load_dataset, shared_dataset_path
    from bayes_simrmf.evaluate import fit_on_split
    from bayes_simrmf.evaluate.study import code_state
    from bayes_simrmf.evaluate.tables import markdown_table
    from bayes_simrmf.machine import machine_line
    from bayes_simrmf.predict import make_estimator
    from bayes_simrmf.splits import Protocol

    dataset = load_dataset(shared_dataset_path("openllm-v2-mmlupro-math"), log=None)
    split = Protocol(500, 1000, T=300, seed=args.seed).split(dataset, log=None)
    groups = dataset.items.set_index("item")["benchmark"].fillna("(none)").astype(str)
    estimator = make_estimator("mf", dim=args.dim, seed=args.seed, progress=False, inference="gibbs")
    start = time.perf_counter()
    fit_on_split(estimator, split, item_groups=groups)
    seconds = time.perf_counter() - start
    draws = estimator.fitted_.posterior.draws
    train = split.pairs["train"]
    llm = pd.Index(estimator.fitted_.llms).get_indexer(np.asarray(split.llms)[train.llm])
    item = pd.Index(estimator.fitted_.items).get_indexer(np.asarray(split.items)[train.item])
    correct = np.asarray(train.correct, dtype=float)

    rows = np.sort(np.random.default_rng([args.seed, 23]).choice(len(llm), 2000, replace=False))
    pair_llm, pair_item = llm[rows], item[rows]
    logit = (np.einsum("csnk,csnk->csn", draws["llm_factors"][:, :, pair_llm], draws["item_factors"][:, :, pair_item])
             + draws["llm_bias"][:, :, pair_llm] + draws["item_bias"][:, :, pair_item])
    if "intercept" in draws:
        logit = logit + draws["intercept"][:, :, None]
    prob = 1.0 / (1.0 + np.exp(-logit))
    pair_rhat = rhat(prob)
    n_items = draws["item_factors"].shape[2]
    answered = np.bincount(item, minlength=n_items)
    item_accuracy = np.bincount(item, weights=correct, minlength=n_items) / np.maximum(answered, 1)
    frame = pd.DataFrame({"rhat": pair_rhat, "mean_probability": prob.mean(axis=(0, 1)),
                          "question_accuracy": item_accuracy[pair_item]})

    def by(column: str, edges: list[float], labels: list[str]) -> pd.DataFrame:
        binned = pd.cut(frame[column], edges, labels=labels, include_lowest=True)
        table = frame.groupby(binned, observed=True)["rhat"].agg(
            pairs="size", median_rhat="median", max_rhat="max", share_above_1_01=lambda r: float(np.mean(r > 1.01)))
        return table.reset_index()

    by_probability = by("mean_probability", [0, 0.02, 0.1, 0.3, 0.7, 0.9, 0.98, 1.0],
                        ["≤ 0.02", "0.02–0.1", "0.1–0.3", "0.3–0.7", "0.7–0.9", "0.9–0.98", "> 0.98"])
    accuracy = frame["question_accuracy"]
    frame["question"] = np.select(
        [accuracy == 0, accuracy <= 0.05, accuracy < 0.95, accuracy < 1], ["0 (all wrong)", "(0, 0.05]",
                                                                           "(0.05, 0.95)", "[0.95, 1)"], "1 (all right)")
    by_accuracy = frame.groupby("question", sort=False)["rhat"].agg(
        pairs="size", median_rhat="median", max_rhat="max", share_above_1_01=lambda r: float(np.mean(r > 1.01)))
    order = ["0 (all wrong)", "(0, 0.05]", "(0.05, 0.95)", "[0.95, 1)", "1 (all right)"]
    by_accuracy = by_accuracy.reindex([label for label in order if label in by_accuracy.index]).reset_index()

    # Every question's mean logit over the fitted LLMs (identified: no rotation or shift changes it).
    mean_llm_factor = draws["llm_factors"].mean(axis=2)
    mean_logit = (np.einsum("csk,csnk->csn", mean_llm_factor, draws["item_factors"]) + draws["item_bias"]
                  + draws["llm_bias"].mean(axis=2)[:, :, None])
    item_rhat = rhat(mean_logit)
    one_sided = np.abs(item_accuracy - 0.5)
    all_wrong = item_accuracy == 0
    questions = pd.DataFrame([
        {"questions": "all answers wrong", "n": int(all_wrong.sum()),
         "median_rhat": float(np.median(item_rhat[all_wrong])), "max_rhat": float(item_rhat[all_wrong].max()),
         "share_above_1_01": float(np.mean(item_rhat[all_wrong] > 1.01))},
        {"questions": "some right", "n": int((~all_wrong).sum()),
         "median_rhat": float(np.median(item_rhat[~all_wrong])), "max_rhat": float(item_rhat[~all_wrong].max()),
         "share_above_1_01": float(np.mean(item_rhat[~all_wrong] > 1.01))},
    ])
    correlation = float(np.corrcoef(item_rhat, one_sided)[0, 1])

    code = code_state()
    lines = [
        "# Where the sampler's R-hat misses",
        "",
        f"Command: `python experiments/gibbs_rhat_where.py --seed {args.seed} --dim {args.dim}`  ",
        f"Code: {code['commit']}{' (dirty)' if code['dirty'] else ''}  ",
        machine_line() + "  ",
        f"Data: {dataset.name}, Protocol(500, 1000, T=300, seed={args.seed}); MF+groups (item groups: benchmark), "
        f"dim {args.dim}, gibbs with the package defaults ({draws['llm_factors'].shape[0]} chains × "
        f"{draws['llm_factors'].shape[1]} kept draws); fit {seconds:.0f} s. R-hat: ArviZ rank-normalised split R-hat "
        "of each of 2,000 seeded training pairs' probability.",
        "",
        "## Pair probabilities by their posterior mean",
        "",
        markdown_table(by_probability, 3),
        "",
        "## Pair probabilities by the question's training accuracy",
        "",
        markdown_table(by_accuracy, 3),
        "",
        "## Each question's mean logit over the fitted LLMs",
        "",
        markdown_table(questions, 3),
        "",
        f"Correlation of a question's R-hat with how one-sided its answers are (|accuracy − 0.5|): {correlation:.2f}.",
        "",
    ]
    OUT.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
