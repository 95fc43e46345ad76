"""Uncertainty-aware routing: choose, for each question, the LLM to send it to, from posterior draws.

For question ``q`` and candidate LLM ``c`` the fitted posterior gives draws ``p_qc⁽ˢ⁾`` of the success
probability, joint across questions and candidates within a draw ``s`` (one parameter draw each). A policy
turns them into one candidate per question, or an abstention:

====================================================  ==============================================================
policy                                                chooses
====================================================  ==============================================================
:class:`Greedy`                                       the highest posterior mean ``E[p]``
:class:`RiskAverse` (level)                           the highest lower end of the central ``level`` credible interval
:class:`Thompson` (lam)                               the best candidate in one posterior draw per question
                                                      (``p⁽ˢ⁾ − lam·cost``)
:class:`CostAware` (lam)                              the highest ``E[p] − lam·cost``
:class:`Threshold` (threshold, confidence, fallback)  the cheapest candidate with ``P(p ≥ threshold) ≥ confidence``;
                                                      if none, the fallback LLM (None: abstain)
:class:`Abstain` (policy, threshold, ..., fallback)   the policy's choice if it clears the bar, else the fallback
====================================================  ==============================================================

Ties go to the cheaper candidate, then to the one listed first. ``cost`` is per call, in the caller's unit
(dollars, parameter count, ...); ``lam`` is success probability per unit of cost.

:func:`route` draws the posterior once and computes probabilities for ``batch_items`` questions × candidates ×
``n_draws`` at a time, so memory is bounded in the number of questions. It returns a :class:`RoutingResult`: a
table with the chosen LLM per question, its posterior mean success probability, sd and credible interval, and the
cost, plus the expected accuracy (with an interval), the predictive interval of the realised accuracy (answer
noise added) and total cost. :func:`route_many` applies several policies to
the same draws (for curves and comparisons).

Evaluation on held-out truth (``item, llm, correct``): :func:`evaluate_routing`, and baselines as plain functions
returning the same decision table: :func:`oracle_routing` (uses the truth: an upper bound),
:func:`single_llm_routing` with :func:`best_single_llm_from_training` or :func:`best_single_llm_from_model` (never
chosen on test truth), :func:`group_llm_routing` with :func:`best_llm_per_group_from_training` (the best LLM per
benchmark), :func:`random_routing`, :func:`knn_routing` (question similarity over training answers).
Curves: :func:`accuracy_cost_curve` (sweep ``lam`` or ``threshold``) and :func:`selective_curve` (accuracy versus
share of questions routed when abstaining below a confidence).

Per-pair draws come from :meth:`SimRMF.sample_posterior` and the model's logit
``intercept + llm_bias + item_bias + llm_factors · item_factors``; they are the draws ``predict_interval`` uses
(same seed, same numbers) for entities fitted with data and entities added by ``fold_in``. Entities held without
data by ``similarity_mode="cold"``/``"joint"`` are predicted with a moment correction these draws do not
reproduce, and are refused.
"""

from __future__ import annotations

from bayes_simrmf.options import POLICIES
from bayes_simrmf.routing.common import (
    ABSTAIN,
)
from bayes_simrmf.routing.candidates import (
    Candidates,
)
from bayes_simrmf.routing.draws import (
    expected_success,
    pair_probability_draws,
)
from bayes_simrmf.routing.policies import (
    Abstain,
    CostAware,
    Greedy,
    Policy,
    PosteriorScores,
    RiskAverse,
    Thompson,
    Threshold,
    make_policy,
)
from bayes_simrmf.routing.route import (
    RoutingResult,
    cost_aware_for_budget,
    lam_for_budget,
    route,
    route_many,
)
from bayes_simrmf.routing.evaluate import (
    best_llm_per_group_from_training,
    best_single_llm_from_model,
    best_single_llm_from_training,
    evaluate_routing,
    group_llm_routing,
    knn_routing,
    oracle_routing,
    pairs_frame,
    random_routing,
    routing_table,
    single_llm_routing,
)
from bayes_simrmf.routing.curves import (
    accuracy_cost_curve,
    lam_grid,
    selective_curve,
)

__all__ = [
    "ABSTAIN",
    "Abstain",
    "Candidates",
    "CostAware",
    "Greedy",
    "POLICIES",
    "Policy",
    "PosteriorScores",
    "RiskAverse",
    "RoutingResult",
    "Thompson",
    "Threshold",
    "accuracy_cost_curve",
    "best_llm_per_group_from_training",
    "best_single_llm_from_model",
    "best_single_llm_from_training",
    "cost_aware_for_budget",
    "evaluate_routing",
    "expected_success",
    "group_llm_routing",
    "knn_routing",
    "lam_for_budget",
    "lam_grid",
    "make_policy",
    "oracle_routing",
    "pair_probability_draws",
    "pairs_frame",
    "random_routing",
    "route",
    "route_many",
    "routing_table",
    "selective_curve",
    "single_llm_routing",
]
