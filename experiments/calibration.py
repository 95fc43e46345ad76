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
from bayes_simrmf.estimators import SimRMF
from bayes_simrmf.evaluate import TEST_SPLITS, fit_on_split
from bayes_simrmf.metrics import brier, ece, log_loss
from bayes_simrmf.sideinfo import build_side_information
from bayes_simrmf.splits import Protocol


def coverage(model, split, name: str, by: str, n_draws: int, max_pairs: int, seed: int) -> tuple[float, float, int]:
    pairs = split.pairs[name]
    rows = np.random.default_rng(seed).permutation(len(pairs))[:max_pairs]
    llm, item = split.llms[pairs.llm[rows]], split.items[pairs.item[rows]]
    table = model.predict_group_interval(llm, item, by=by, n_draws=n_draws, level=0.9, unknown="population", seed=seed)
    keys = llm if by == "llm" else item
    observed = pd.Series(pairs.correct[rows].astype(float)).groupby(keys).mean().reindex(table.index)
    inside = (table.lower <= observed) & (observed <= table.upper)
    bias = float((observed - table["mean"]).mean())
    return float(inside.mean()), float((table.upper - table.lower).mean()), len(table), bias


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
    side = None
    item_groups = dataset.items.set_index("item")["benchmark"] if args.item_groups else None
    for method in args.methods.split(","):
        if method == "simrmf" and side is None:
            side = build_side_information(dataset, split.llms, split.items, log=None)
        for guide in args.guides.split(","):
            options = dict(method=method, guide=guide, dim=args.dim, lambda_reg=args.lambda_reg,
                           learning_rate={"delta": 0.05, "normal": 0.02, "lowrank": 0.01}[guide], max_steps=3000,
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
                cov_llm, width_llm, n_llm, bias_llm = coverage(model, split, name, "llm", args.n_draws, args.max_pairs,
                                                               args.seed)
                cov_item, width_item, n_item, bias_item = coverage(model, split, name, "item", args.n_draws,
                                                                   args.max_pairs, args.seed)
                rows.append({"method": method, "guide": guide, "split": name, "log_loss": log_loss(prob, correct),
                             "brier": brier(prob, correct), "ece": ece(prob, correct), "cover90_llm_mean": cov_llm,
                             "width_llm_mean": width_llm, "bias_llm_mean": bias_llm, "n_llms": n_llm,
                             "cover90_item_mean": cov_item, "width_item_mean": width_item, "bias_item_mean": bias_item,
                             "n_items": n_item})
                print(rows[-1], flush=True)
    frame = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out.with_suffix(".csv"), index=False)
    text = [
        f"# Calibration per method, guide and split: {args.data}, T={args.T}, seed {args.seed}, d={args.dim}, "
        f"λ_reg={args.lambda_reg}" + (", item groups = benchmarks" if args.item_groups else "") + (f", SimRMF fold-in nuggets {args.ridge_items} (questions), {args.ridge_llms} (LLMs)"
                                      if "simrmf" in args.methods else ""),
        "",
        f"Command: `{shlex.join(['python', *sys.argv])}`  ",
        f"Machine: {platform.machine()}, JAX on CPU; wall time {time.time() - started:.0f} s. "
        f"Intervals: 90%, {args.n_draws} draws, up to {args.max_pairs:,} pairs per split; the delta guide's are the "
        "plug-in predictive (answer noise around the MAP). An LLM or item the fit never saw is, in each draw, a "
        "random fitted one (`SimRMF.predict_group_interval`); intervals are for the observed mean accuracy "
        "(answers drawn per draw). Coverage = share of LLMs (items) whose observed mean on the split lies in "
        "its interval.",
        "",
        frame.to_markdown(index=False, floatfmt=".4f") if _has_tabulate() else frame.round(4).to_string(index=False),
    ]
    args.out.with_suffix(".md").write_text("\n".join(text) + "\n")
    print("\n".join(text))


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
