"""Accuracy against cost, and selective prediction (abstaining below a confidence)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from bayes_simrmf.errors import ConfigError
from bayes_simrmf.routing.candidates import _as_candidates
from bayes_simrmf.routing.policies import CostAware, Policy
from bayes_simrmf.routing.route import _policy_map, route_many
from bayes_simrmf.routing.evaluate import _check_truth, _decision_frame, _scored, evaluate_routing


def lam_grid(candidates, n: int = 13) -> np.ndarray:
    """``lam`` values for a cost-aware sweep: 0, then ``n − 1`` values from where cost barely matters
    (``lam·cost range`` = 0.001 in success probability) to where it dominates (= 10)."""
    candidates = _as_candidates(candidates)
    spread = float(candidates.costs.max() - candidates.costs.min())
    if spread == 0 or n < 2:
        return np.zeros(1)
    return np.concatenate([[0.0], np.geomspace(1e-3, 10.0, n - 1) / spread])


def accuracy_cost_curve(
    model,
    items,
    candidates,
    policies: Sequence[Policy] | None = None,
    *,
    truth: pd.DataFrame | None = None,
    missing: str = "error",
    n_draws: int = 200,
    level: float = 0.9,
    seed: int = 0,
    batch_items: int = 1000,
) -> pd.DataFrame:
    """Accuracy against cost for a family of policies (default: :class:`CostAware` over :func:`lam_grid`;
    pass e.g. ``[Threshold(t, 0.9) for t in np.linspace(0, 1, 21)]`` to sweep a threshold).

    Returns:
        one row per policy: ``policy`` (label), ``kind``, its parameters, the model's ``expected_accuracy``
        (with ``expected_accuracy_lower``/``_upper``), ``expected_mean_cost``, ``abstain_rate``; with
        ``truth``, also the realised ``accuracy``, ``accuracy_all`` and ``mean_cost``.
    """
    if policies is None:
        policies = [CostAware(lam=float(lam)) for lam in lam_grid(_as_candidates(candidates, model))]
    results = route_many(model, items, candidates, policies, n_draws=n_draws, level=level, seed=seed,
                         batch_items=batch_items)
    policy_map = _policy_map(policies)
    rows = []
    for name, result in results.items():
        summary = result.summary()
        policy = policy_map[name]
        row = {"policy": result.policy, "kind": policy.kind, **{key: value for key, value in policy.params().items()
                                                               if not isinstance(value, Policy)},
               "expected_accuracy": summary["expected_accuracy"],
               "expected_accuracy_lower": summary["expected_accuracy_lower"],
               "expected_accuracy_upper": summary["expected_accuracy_upper"],
               "expected_mean_cost": summary["mean_cost"], "abstain_rate": summary["abstain_rate"]}
        if truth is not None:
            metrics = evaluate_routing(result, truth, missing=missing)
            row.update({key: metrics[key] for key in ("accuracy", "accuracy_all", "mean_cost")})
        rows.append(row)
    return pd.DataFrame(rows)


def selective_curve(
    decisions,
    truth: pd.DataFrame | None = None,
    *,
    score: str = "prob",
    coverages: Sequence[float] | None = None,
    missing: str = "error",
) -> pd.DataFrame:
    """Accuracy against the share of questions routed, when a router abstains below a confidence.

    Questions are kept in decreasing order of ``score`` (a column of the decisions: ``prob``, the posterior
    mean, or ``lower``, the credible lower bound); for each target coverage the cutoff is the score at that
    rank and every question with score ≥ cutoff is routed.

    Returns:
        one row per cutoff: ``coverage`` (share routed), ``cutoff``, ``n_routed``, ``expected_accuracy`` (mean
        ``prob`` of the routed) and, with ``truth``, ``accuracy`` (realised, on the routed).
    """
    frame = _decision_frame(decisions)
    if score not in frame.columns:
        raise ConfigError(f"score {score!r} is not a column of the decisions ({list(frame.columns)})")
    n_questions = len(frame)
    routed = frame["llm"].notna().to_numpy() & frame[score].notna().to_numpy()
    frame = frame[routed]
    if not len(frame):
        raise ConfigError("no routed question has a score; nothing to draw a curve of")
    values = frame[score].to_numpy(dtype=np.float64)
    prob = frame["prob"].to_numpy(dtype=np.float64) if "prob" in frame.columns else np.full(len(frame), np.nan)
    correct = _scored(frame, _check_truth(truth), missing)[0] if truth is not None else None
    if coverages is None:
        coverages = np.linspace(0.05, 1.0, 20)
    coverages = np.asarray(coverages, dtype=np.float64)
    if coverages.ndim != 1 or ((coverages <= 0) | (coverages > 1)).any():
        raise ConfigError(f"coverages must lie in (0, 1], got {coverages.tolist()}")
    ordered = np.sort(values)[::-1]
    rows = []
    for target in coverages:
        cutoff = ordered[max(int(np.ceil(target * len(ordered))) - 1, 0)]
        keep = values >= cutoff
        row = {"target_coverage": float(target), "coverage": float(keep.sum() / n_questions), "cutoff": float(cutoff),
               "n_routed": int(keep.sum()), "expected_accuracy": float(prob[keep].mean())}
        if correct is not None:
            scored = keep & ~np.isnan(correct)
            row["accuracy"] = float(correct[scored].mean()) if scored.any() else float("nan")
        rows.append(row)
    return pd.DataFrame(rows).drop_duplicates("cutoff").reset_index(drop=True)
