"""Calibration of point predictions and of predictive intervals, per guide and split (issue 4, first look).

For one split of a dataset, fits MF (and SimRMF with ``--methods mf,simrmf``) with the delta guide (MAP;
intervals are the plug-in predictive: answer noise around the MAP only) and with the normal and low-rank
guides (posterior draws), then per test split reports log loss, Brier and ECE of the pair predictions
(posterior predictive mean), and the share of LLMs (items) whose observed mean accuracy on the split falls
inside the 90% predictive interval, with the mean interval width and the mean signed error of the
interval's centre (observed − predicted).

Usage:
    python experiments/calibration.py --data openllm-v2-mmlupro-math --n-known-llms 500 --n-known-items 1000 \
        --T 300 --dim 8 --lambda-reg 2 --out experiments/results/calibration_mmlupro
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

from bayes_simrmf.data import load_dataset, shared_dataset_path
from bayes_simrmf.predict import SimRMF
from bayes_simrmf.evaluate import TEST_SPLITS, fit_on_split
from bayes_simrmf.evaluate.split import COVERAGE_LEVELS as LEVELS, interval_coverage
from bayes_simrmf.evaluate.metrics import brier, ece, log_loss, reliability_table
from bayes_simrmf.similarity import build_side_information
from bayes_simrmf.splits import Protocol


def reliability_figure(reliability: dict[tuple[str, str, str], pd.DataFrame], path: Path, title: str) -> None:
    """One panel per split: observed rate against mean predicted probability per bin (bins of ≥ 30 pairs), per
    method and guide."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    splits = sorted({key[2] for key in reliability})
    figure, axes = plt.subplots(1, len(splits), figsize=(4 * len(splits), 4), sharey=True)
    for axis, split_name in zip(np.atleast_1d(axes), splits):
        axis.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle="--")
        for (method, guide, name), table in reliability.items():
            if name == split_name:
                used = table.n_pairs >= 30  # bins with fewer pairs are noise
                axis.plot(table.mean_prob[used], table.observed[used], marker="o", markersize=3, label=f"{method} {guide}")
        axis.set_title(f"split {split_name}")
        axis.set_xlabel("predicted probability")
    np.atleast_1d(axes)[0].set_ylabel("observed rate")
    np.atleast_1d(axes)[-1].legend(fontsize=7)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="openllm-v2-mmlupro-math")
    parser.add_argument("--n-known-llms", type=int, default=None)
    parser.add_argument("--n-known-items", type=int, default=None)
    parser.add_argument("--T", type=int, default=300)
    parser.add_argument("--dim", type=int, default=8)
    parser.add_argument("--lambda-reg", type=float, default=2.0)
    parser.add_argument("--n-draws", type=int, default=100)
    parser.add_argument("--max-pairs", type=int, default=100_000, help="pairs sampled per split for the intervals")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=3000, help="SVI step cap of every fit")
    parser.add_argument("--methods", default="mf")
    parser.add_argument("--guides", default="delta,normal,lowrank")
    parser.add_argument("--ridge-items", type=float, default=1.0, help="SimRMF fold-in nugget (questions)")
    parser.add_argument("--ridge-llms", type=float, default=1.0, help="SimRMF fold-in nugget (LLMs)")
    parser.add_argument("--item-groups", action="store_true",
                        help="give the model each question's benchmark (items share a mean difficulty per benchmark)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    started = time.time()
    dataset = load_dataset(shared_dataset_path(args.data), unknown_entities="add", log=None)
    split = Protocol(args.n_known_llms, args.n_known_items, T=args.T, seed=args.seed, n_test_pairs=1_000_000).split(
        dataset, log=None)
    rows = []
    reliability = {}
    side = None
    item_groups = dataset.items.set_index("item")["benchmark"] if args.item_groups else None
    for method in args.methods.split(","):
        if method == "simrmf" and side is None:
            side = build_side_information(dataset, split.llms, split.items, log=None)
        for guide in args.guides.split(","):
            options = dict(method=method, guide=guide, dim=args.dim, lambda_reg=args.lambda_reg,
                           learning_rate={"delta": 0.05, "normal": 0.02, "lowrank": 0.01}[guide], max_steps=args.max_steps,
                           seed=args.seed,
                           progress=False)
            if method == "simrmf":
                options.update(fold_in_ridge_items=args.ridge_items, fold_in_ridge_llms=args.ridge_llms)
            model = fit_on_split(SimRMF(**options), split, side=side if method == "simrmf" else None,
                                 item_groups=item_groups)
            print(f"{method} {guide}: fitted in {model.fit_seconds_:.0f} s, {len(model.losses_)} steps, "
                  f"converged {model.converged_}", flush=True)
            for name in TEST_SPLITS:
                pairs = split.pairs[name]
                if not len(pairs):
                    continue
                sample = np.random.default_rng(args.seed).permutation(len(pairs))[: args.max_pairs]
                llm, item = split.llms[pairs.llm[sample]], split.items[pairs.item[sample]]
                prob = model.predict(llm, item, unknown="population")
                correct = pairs.correct[sample]
                reliability[(method, guide, name)] = reliability_table(prob, correct)
                rows.append({"method": method, "guide": guide, "split": name, "steps": len(model.losses_),
                             "converged": bool(model.converged_), "log_loss": log_loss(prob, correct),
                             "brier": brier(prob, correct), "ece": ece(prob, correct),
                             **interval_coverage(model, split, name, "llm", args.n_draws, args.max_pairs, args.seed),
                             **interval_coverage(model, split, name, "item", args.n_draws, args.max_pairs, args.seed)})
                print(rows[-1], flush=True)
    frame = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out.with_suffix(".csv"), index=False)
    figure = args.out.with_name(args.out.name + "_reliability.png")
    reliability_figure(reliability, figure, f"{args.data}, T={args.T}: reliability per split")
    main_columns = ["method", "guide", "split", "steps", "converged", "log_loss", "brier", "ece", "cover90_llm_mean", "width_llm_mean",
                    "bias_llm_mean", "n_llms", "cover90_item_mean", "width_item_mean", "bias_item_mean", "n_items"]
    level_columns = ["method", "guide", "split"] + [f"cover{round(level * 100)}_{by}_mean" for by in ("llm", "item")
                                                     for level in LEVELS]
    text = [
        f"# Calibration per method, guide and split: {args.data}, T={args.T}, seed {args.seed}, d={args.dim}, "
        f"λ_reg={args.lambda_reg}" + (", item groups = benchmarks" if args.item_groups else "")
        + (f", SimRMF fold-in nuggets {args.ridge_items} (questions), {args.ridge_llms} (LLMs)"
           if "simrmf" in args.methods else ""),
        "",
        f"Command: `{shlex.join(['python', *sys.argv])}`  ",
        f"Machine: {platform.machine()}, JAX on CPU; wall time {time.time() - started:.0f} s. "
        f"Pair metrics use the posterior predictive mean (`SimRMF.predict`). Intervals: {args.n_draws} draws, up to "
        f"{args.max_pairs:,} pairs per split; the delta guide's are the plug-in predictive (answer noise around the "
        "MAP). An LLM or item the fit never saw is, in each draw, a random fitted one; one folded in from similarity "
        "(SimRMF) is drawn from its Gaussian-process conditional. Intervals are for the observed mean accuracy "
        "(answers drawn per draw). Coverage = share of LLMs (items) whose observed mean on the split lies in its "
        "interval; bias = mean of observed − predicted centre. Reliability diagrams: "
        f"`{figure.name}`.",
        "",
        "## 90% intervals, pair metrics",
        "",
        frame[main_columns].round(4).to_string(index=False),
        "",
        "## Coverage at 50 / 80 / 90 / 95%",
        "",
        frame[level_columns].round(3).to_string(index=False),
    ]
    args.out.with_suffix(".md").write_text("\n".join(text) + "\n")
    print("\n".join(text))


if __name__ == "__main__":
    main()
