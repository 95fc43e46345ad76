"""Route questions with one or several policies on shared draws (:func:`route`, :func:`route_many`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from bayes_simrmf.errors import ConfigError
from bayes_simrmf.routing.candidates import Candidates, _as_candidates, _item_ids
from bayes_simrmf.routing.draws import (
    _check_draw_options,
    _check_model,
    _entity_codes,
    _probability_grid,
    _sample_rows,
    expected_success,
)
from bayes_simrmf.routing.policies import CostAware, Policy, PosteriorScores, _best, _check_unit, _question_uniforms


@dataclass
class RoutingResult:
    """What :func:`route` returns.

    Attributes:
        policy: the policy's label.
        decisions: one row per question, in input order: ``item``, ``llm`` (None: abstained), ``prob`` (posterior
            mean success probability of the chosen LLM), ``sd``, ``lower`` / ``upper`` (central ``level``
            credible interval), ``cost`` (0 when abstained).
        accuracy_draws: ``(n_draws,)`` the mean success probability over the routed questions in each posterior
            draw: the posterior of the expected accuracy of this routing (NaN when nothing is routed).
        level: the credible level of the intervals.
        realised_draws: ``(n_draws,)`` the posterior predictive of the *realised* accuracy, the share of the
            routed questions that will be answered correctly: each draw's expected accuracy plus answer noise,
            a normal with that draw's variance ``Σ p(1 − p) / n²`` (the sum of independent Bernoulli answers;
            close for more than a few dozen routed questions). Use its interval to check a routing against
            answers that come in; the expected accuracy's interval leaves out the answer noise.
    """

    policy: str
    decisions: pd.DataFrame
    accuracy_draws: np.ndarray
    level: float
    realised_draws: np.ndarray | None = None

    def summary(self) -> dict[str, float]:
        """Expected accuracy (over routed questions, with a ``level`` interval), the ``level`` predictive
        interval of the realised accuracy, expected correct answers, total and mean cost (per question,
        abstentions cost 0), abstention rate."""
        decisions = self.decisions
        routed = decisions["llm"].notna().to_numpy()
        tail = (1.0 - self.level) / 2.0
        lower, upper = (np.quantile(self.accuracy_draws, [tail, 1.0 - tail]) if routed.any() else (np.nan, np.nan))
        realised = self.accuracy_draws if self.realised_draws is None else self.realised_draws
        realised_lower, realised_upper = (np.quantile(realised, [tail, 1.0 - tail]) if routed.any()
                                          else (np.nan, np.nan))
        return {
            "n_questions": int(len(decisions)),
            "n_routed": int(routed.sum()),
            "abstain_rate": float(1.0 - routed.mean()),
            "expected_accuracy": float(decisions["prob"][routed].mean()) if routed.any() else float("nan"),
            "expected_accuracy_lower": float(lower),
            "expected_accuracy_upper": float(upper),
            "realised_accuracy_lower": float(realised_lower),
            "realised_accuracy_upper": float(realised_upper),
            "expected_correct": float(decisions["prob"][routed].sum()),
            "total_cost": float(decisions["cost"].sum()),
            "mean_cost": float(decisions["cost"].mean()),
        }

    def share_by_llm(self) -> pd.Series:
        """Number of questions routed to each LLM (``(abstain)`` for abstentions), most first."""
        return self.decisions["llm"].fillna("(abstain)").value_counts()


class _Collector:
    """Accumulates one policy's choices and the chosen pairs' posterior summaries over batches."""

    def __init__(self, n_items: int, n_draws: int, level: float, seed: int = 0) -> None:
        self.choice = np.full(n_items, -1, dtype=np.int64)
        self.summary = {name: np.full(n_items, np.nan) for name in ("prob", "sd", "lower", "upper")}
        self.accuracy_sums = np.zeros(n_draws)
        self.variance_sums = np.zeros(n_draws)  # Σ p(1 − p) over routed questions, per draw: the answer noise
        self.tail = (1.0 - level) / 2.0
        self.seed = seed

    def add(self, block: slice, choice: np.ndarray, draws: np.ndarray) -> None:
        self.choice[block] = choice
        rows = np.flatnonzero(choice >= 0)
        if not len(rows):
            return
        chosen = draws[:, rows, choice[rows]].astype(np.float64)  # (n_draws, n_routed)
        positions = np.arange(block.start, block.start + len(choice))[rows]
        self.summary["prob"][positions] = chosen.mean(axis=0)
        self.summary["sd"][positions] = chosen.std(axis=0, ddof=1)
        self.summary["lower"][positions], self.summary["upper"][positions] = np.quantile(
            chosen, [self.tail, 1.0 - self.tail], axis=0)
        self.accuracy_sums += chosen.sum(axis=1)
        self.variance_sums += (chosen * (1.0 - chosen)).sum(axis=1)

    def result(self, label: str, item_ids: np.ndarray, candidates: Candidates, level: float) -> RoutingResult:
        routed = self.choice >= 0
        llm = np.full(len(item_ids), None, dtype=object)
        llm[routed] = candidates.llms[self.choice[routed]]
        cost = np.where(routed, candidates.costs[np.maximum(self.choice, 0)], 0.0)
        decisions = pd.DataFrame({"item": item_ids, "llm": llm, **self.summary, "cost": cost})
        n_routed = int(routed.sum())
        if not n_routed:
            nothing = np.full_like(self.accuracy_sums, np.nan)
            return RoutingResult(label, decisions, nothing, level, nothing.copy())
        accuracy = self.accuracy_sums / n_routed
        noise = np.random.default_rng([int(self.seed), 7919]).standard_normal(len(accuracy))
        realised = accuracy + noise * np.sqrt(self.variance_sums) / n_routed
        return RoutingResult(label, decisions, accuracy, level, realised)


def _policy_map(policies) -> dict[str, Policy]:
    if isinstance(policies, Policy):
        policies = [policies]
    if isinstance(policies, Mapping):
        mapping = dict(policies)
    else:
        policies = list(policies)
        mapping = {policy.label: policy for policy in policies if isinstance(policy, Policy)}
        if len(mapping) != len(policies):
            labels = [getattr(policy, "label", repr(policy)) for policy in policies]
            repeated = sorted({label for label in labels if labels.count(label) > 1})
            raise ConfigError(
                f"policies must be distinct Policy objects; repeated or not a Policy: {repeated or labels}")
    if not mapping:
        raise ConfigError("need at least one policy")
    for name, policy in mapping.items():
        if not isinstance(policy, Policy):
            raise ConfigError(f"policy {name!r} is a {type(policy).__name__}, not a Policy (see make_policy)")
    return mapping


def route_many(
    model,
    items,
    candidates,
    policies: Sequence[Policy] | Mapping[str, Policy],
    *,
    n_draws: int = 200,
    level: float = 0.9,
    seed: int = 0,
    batch_items: int = 1000,
) -> dict[str, RoutingResult]:
    """Apply several policies to the same posterior draws; ``{label (or key): RoutingResult}``.

    See :func:`route`. The draws are shared, so policies differ only by their rule.
    """
    _check_model(model)
    _check_draw_options(n_draws, batch_items, "batch_items")
    level = _check_unit("level", level)
    candidates = _as_candidates(candidates, model)
    mapping = _policy_map(policies)
    for policy in mapping.values():
        policy.check(candidates)
    item_ids = _item_ids(items)
    item_codes = _entity_codes(model, "item", item_ids)
    llm_codes = _entity_codes(model, "llm", candidates.llms)
    sampled, item_rows, llm_rows = _sample_rows(model, n_draws, seed, item_codes, llm_codes)
    uniforms = _question_uniforms(len(item_ids), seed)
    collectors = {name: _Collector(len(item_ids), n_draws, level, seed) for name in mapping}
    for start in range(0, len(item_ids), batch_items):
        block = slice(start, min(start + batch_items, len(item_ids)))
        draws = _probability_grid(sampled, item_rows[block], llm_rows)
        scores = PosteriorScores(draws, candidates.costs, candidates.llms, uniforms[block])
        for name, policy in mapping.items():
            choice = np.asarray(policy.choose(scores), dtype=np.int64)
            if choice.shape != (draws.shape[1],) or choice.min() < -1 or choice.max() >= len(candidates):
                raise ConfigError(f"policy {name!r} returned invalid choices (shape {choice.shape})")
            collectors[name].add(block, choice, draws)
    return {name: collector.result(mapping[name].label, item_ids, candidates, level)
            for name, collector in collectors.items()}


def route(
    model,
    items,
    candidates,
    policy: Policy,
    *,
    n_draws: int = 200,
    level: float = 0.9,
    seed: int = 0,
    batch_items: int = 1000,
) -> RoutingResult:
    """Route each question to one candidate LLM (or abstain) by ``policy``, from the model's posterior.

    Args:
        model: a fitted :class:`~bayes_simrmf.predict.SimRMF`. A posterior guide ("normal", "lowrank") gives
            the policies uncertainty to act on; under the delta guide every draw is the MAP (except entities
            added by ``fold_in``), so risk-averse and Thompson routing equal greedy.
        items: question ids ``(n_questions,)`` (or a DataFrame with an ``item`` column), all in the model.
        candidates: :class:`Candidates` or a DataFrame with columns ``llm``, ``cost``.
        policy: a :class:`Policy` (e.g. ``Greedy()``, ``RiskAverse(0.9)``, ``make_policy("threshold", ...)``).
        n_draws: posterior draws per question and candidate.
        level: credible level of the reported intervals.
        seed: seeds the posterior draws (the same as ``predict_interval``'s) and randomised policies.
        batch_items: questions per batch; memory is ``n_draws × batch_items × n_candidates`` floats.
    Returns:
        :class:`RoutingResult`: ``decisions`` per question and ``summary()`` with expected accuracy and cost.
    """
    if not isinstance(policy, Policy):
        raise ConfigError(f"policy must be a Policy (see make_policy), got {type(policy).__name__}")
    return next(iter(route_many(model, items, candidates, [policy], n_draws=n_draws, level=level, seed=seed,
                                batch_items=batch_items).values()))


def cost_aware_for_budget(
    model, items, candidates, budget: float, *, n_draws: int = 200, seed: int = 0, batch_items: int = 1000
) -> CostAware:
    """The :class:`CostAware` policy with the smallest ``lam`` whose routing of ``items`` costs at most
    ``budget`` in total (expected success is then the highest such a rule reaches within the budget)."""
    candidates = _as_candidates(candidates, model)
    mean = expected_success(model, items, candidates, n_draws=n_draws, seed=seed, batch_items=batch_items)
    return CostAware(lam=lam_for_budget(mean.to_numpy(), candidates.costs, budget))


def lam_for_budget(mean: np.ndarray, costs: np.ndarray, budget: float) -> float:
    """Smallest ``lam`` such that choosing ``argmax(mean − lam·cost)`` per question costs ≤ ``budget`` in total.

    Args:
        mean: ``(n_questions, n_candidates)`` success probabilities.
        costs: ``(n_candidates,)``.
    The total cost falls as ``lam`` grows (each question's choice moves to cheaper candidates), so bisection finds it.
    """
    mean = np.asarray(mean, dtype=np.float64)
    costs = np.asarray(costs, dtype=np.float64)
    budget = float(budget)
    if not np.isfinite(budget) or budget < 0:
        raise ConfigError(f"budget must be a finite number >= 0, got {budget!r}")

    def total(lam: float) -> float:
        return float(costs[_best(mean - lam * costs[None, :], costs)].sum())

    if total(0.0) <= budget:
        return 0.0
    cheapest = float(costs.min() * mean.shape[0])
    if budget < cheapest - 1e-9:
        raise ConfigError(
            f"budget {budget:g} is below the cheapest possible routing ({cheapest:g}: every one of the "
            f"{mean.shape[0]} questions to the cheapest candidate)"
        )
    gaps = np.diff(np.unique(costs))
    if not len(gaps):  # equal costs: every routing costs the same, and it was over the budget
        raise ConfigError(f"budget {budget:g} is below the cost of any routing ({total(0.0):g})")
    low, high = 0.0, 2.0 / gaps.min()  # beyond this no success difference (≤ 1) outweighs a cost step
    for _ in range(100):
        middle = (low + high) / 2.0
        low, high = (low, middle) if total(middle) <= budget else (middle, high)
    return float(high)


