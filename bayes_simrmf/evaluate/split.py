"""Fit an estimator on a :class:`~bayes_simrmf.splits.Split` and score it on splits A–D.

The paper's protocol (PAPER.md): train on the known × known block, then report RMSE_p,
RMSE_m and RMSE_x (plus log loss and AUC) on A (known LLM × known item), B (known LLM ×
new item), C (new LLM × known item) and D (new LLM × new item). New LLMs and items are
predicted with ``unknown="population"`` for estimators without side information.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np
import pandas as pd

from bayes_simrmf.evaluate.conformal import conformal_interval
from bayes_simrmf.evaluate.metrics import evaluate, randomised_pit
from bayes_simrmf.splits import Split

TEST_SPLITS = ("A", "B", "C", "D")
METRIC_COLUMNS = ("rmse_p", "rmse_m", "rmse_x", "log_loss", "auc", "n_pairs")
#: Central interval levels whose coverage :func:`interval_coverage` reports.
COVERAGE_LEVELS = (0.5, 0.8, 0.9, 0.95)
#: Test pairs predicted per call in :func:`evaluate_on_split`.
EVALUATE_CHUNK = 262_144


def fit_on_split(estimator, split: Split, side=None, item_groups=None):
    """Fit ``estimator`` on the split's training pairs (with side information and item groups, e.g.
    each question's benchmark, if given); returns it."""
    train = split.pairs["train"]
    extra = {} if item_groups is None else {"item_groups": item_groups}
    return estimator.fit(
        split.llms[train.llm],
        split.items[train.item],
        train.correct,
        llms=split.llms,
        items=split.items,
        side=side,
        **extra,
    )


def evaluate_on_split(estimator, split: Split, splits: Iterable[str] = TEST_SPLITS) -> dict[str, dict[str, float]]:
    """Metrics per test split: ``{"A": {"rmse_p": ..., ...}, ...}`` (NaN metrics for an empty split)."""
    results: dict[str, dict[str, float]] = {}
    for name in splits:
        pairs = split.pairs[name]
        prob = np.zeros(len(pairs))
        # In chunks of pairs: a prediction is per pair, and the id arrays and temporaries of 10^6 pairs at once
        # were most of the peak memory of a fit on openllm-v2.
        for start in range(0, len(pairs), EVALUATE_CHUNK):
            rows = slice(start, start + EVALUATE_CHUNK)
            prob[rows] = estimator.predict(split.llms[pairs.llm[rows]], split.items[pairs.item[rows]], unknown="population")
        results[name] = evaluate(prob, pairs.correct, pairs.llm, pairs.item)
    return results


def metrics_frame(results: dict[str, dict[str, dict[str, float]]]) -> pd.DataFrame:
    """``{method: {split: metrics}}`` as a long table with columns method, split, metric columns."""
    rows = []
    for method, per_split in results.items():
        for split_name, metrics in per_split.items():
            rows.append({"method": method, "split": split_name, **{k: metrics.get(k, np.nan) for k in METRIC_COLUMNS}})
    return pd.DataFrame(rows)


def format_metrics(results: dict[str, dict[str, dict[str, float]]]) -> str:
    """A text table with one row per (split, method) and the metrics as columns."""
    frame = metrics_frame(results)
    frame["n_pairs"] = frame["n_pairs"].astype(int)
    frame = frame.sort_values(["split", "method"], key=lambda column: column.map(
        {name: i for i, name in enumerate([*TEST_SPLITS, *results])}).fillna(99), kind="stable")
    frame = frame.rename(columns={"rmse_p": "RMSE_p", "rmse_m": "RMSE_m", "rmse_x": "RMSE_x"})
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.4f}".format):
        return frame.to_string(index=False)


def interval_coverage(model, split, name: str, by: str, n_draws: int, max_pairs: int, seed: int,
                      conformal=None) -> dict[str, float]:
    """Coverage of the 50/80/90/95% predictive intervals of each group's observed mean accuracy on a split,
    the 90% interval's mean width and the centre's mean signed error (observed − predicted); with ``conformal``
    (:class:`~bayes_simrmf.evaluate.conformal.ConformalLevels`) each interval is ``centre ± learned half-width · sd`` instead.

    A group's observed mean over few answers takes few values, so a quantile interval that holds an atom at an end
    covers more than its level even where the predictive is right. ``pit<level>_<by>_mean`` is therefore also given
    (the posterior's, NaN with ``conformal``): the share of groups whose randomised PIT
    (:func:`~bayes_simrmf.evaluate.metrics.randomised_pit`) lies in the central ``level`` of [0, 1], the level
    itself in expectation for a calibrated predictive; ``answers_<by>_median`` is the median number of answers
    behind a group's mean."""
    pairs = split.pairs[name]
    rows = np.random.default_rng(seed).permutation(len(pairs))[:max_pairs]
    llm, item = split.llms[pairs.llm[rows]], split.items[pairs.item[rows]]
    groups, means, n_pairs = model.group_draws(llm, item, by=by, n_draws=n_draws, unknown="population", seed=seed)
    keys = llm if by == "llm" else item
    observed = pd.Series(pairs.correct[rows].astype(float)).groupby(keys).mean().reindex(groups).to_numpy()
    result = {f"n_{by}s": len(groups), f"bias_{by}_mean": float(np.mean(observed - means.mean(axis=0))),
              f"answers_{by}_median": float(np.median(n_pairs))}
    pit = randomised_pit(means, observed, np.random.default_rng([seed, 1]))
    for level in COVERAGE_LEVELS:
        lower, upper = np.quantile(means, [(1 - level) / 2, (1 + level) / 2], axis=0)
        if conformal is not None:
            lower, upper = conformal_interval(means, conformal.for_split(name, by, level))
        result[f"cover{round(level * 100)}_{by}_mean"] = float(np.mean((lower <= observed) & (observed <= upper)))
        result[f"pit{round(level * 100)}_{by}_mean"] = math.nan if conformal is not None else float(
            np.mean(np.abs(pit - 0.5) <= level / 2))
        if level == 0.9:
            result[f"width_{by}_mean"] = float(np.mean(upper - lower))
    return result
