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
cost, plus the expected accuracy (with an interval) and total cost. :func:`route_many` applies several policies to
the same draws (for curves and comparisons).

Evaluation on held-out truth (``item, llm, correct``): :func:`evaluate_routing`, and baselines as plain functions
returning the same decision table: :func:`oracle_routing` (uses the truth: an upper bound),
:func:`single_llm_routing` with :func:`best_single_llm_from_training` or :func:`best_single_llm_from_model` (never
chosen on test truth), :func:`random_routing`, :func:`knn_routing` (question similarity over training answers).
Curves: :func:`accuracy_cost_curve` (sweep ``lam`` or ``threshold``) and :func:`selective_curve` (accuracy versus
share of questions routed when abstaining below a confidence).

Per-pair draws come from :meth:`SimRMF.sample_posterior` and the model's logit
``intercept + llm_bias + item_bias + llm_factors · item_factors``; they are the draws ``predict_interval`` uses
(same seed, same numbers) for entities fitted with data and entities added by ``fold_in``. Entities held without
data by ``similarity_mode="cold"``/``"joint"`` are predicted with a moment correction these draws do not
reproduce, and are refused.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from bayes_simrmf.errors import ConfigError, NotFittedError, UnknownEntityError
from bayes_simrmf.options import POLICIES  # noqa: F401 (re-exported)
from bayes_simrmf.estimators import encode_ids
from bayes_simrmf.pairs import check_pairs as _check_pairs
from bayes_simrmf.model import INTERCEPT, ITEM_BIAS, ITEM_FACTORS, LLM_BIAS, LLM_FACTORS, grid_logits, pair_logits, sigmoid
from bayes_simrmf.splits import Split

ABSTAIN = None  # the llm of a question nobody was confident enough for
_DECISION_COLUMNS = ("item", "llm", "prob", "sd", "lower", "upper", "cost")


def _examples(values: Iterable[Any], limit: int = 5) -> list:
    return list(values)[:limit]


# --------------------------------------------------------------------------------------------------
# Candidates
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Candidates:
    """The LLMs a router may choose from, each with a cost per call.

    Attributes:
        llms: str ``(n_candidates,)`` unique ids.
        costs: float64 ``(n_candidates,)`` finite, ≥ 0, in the caller's unit (dollars, parameter count, ...).
    """

    llms: np.ndarray
    costs: np.ndarray

    def __post_init__(self) -> None:
        llms = np.asarray(self.llms, dtype=object)
        if llms.ndim != 1 or len(llms) == 0:
            raise ConfigError(f"candidates need a non-empty 1-D list of LLM ids, got shape {llms.shape}")
        blank = np.flatnonzero(pd.isna(llms) | (llms.astype(str) == ""))
        if len(blank):
            raise ConfigError(
                f"candidates: {len(blank)} LLM id(s) are missing or empty, rows {_examples(blank.tolist())}")
        llms = llms.astype(str)
        try:
            costs = np.asarray(self.costs, dtype=np.float64)
        except (TypeError, ValueError):
            raise ConfigError(
                f"candidates: cost must be numeric, got {_examples(np.asarray(self.costs).tolist())}") from None
        if costs.shape != llms.shape:
            raise ConfigError(
                f"candidates: need one cost per LLM; got {costs.shape[0] if costs.ndim else 1} for {len(llms)}")
        duplicated = pd.Series(llms).duplicated(keep=False).to_numpy()
        if duplicated.any():
            raise ConfigError(
                f"candidates: LLM ids must be unique; {sorted(set(llms[duplicated]))[:5]} appear more than once "
                f"(rows {_examples(np.flatnonzero(duplicated).tolist())})"
            )
        bad = ~np.isfinite(costs) | (costs < 0)
        if bad.any():
            rows = np.flatnonzero(bad)
            raise ConfigError(
                f"candidates: cost must be finite and >= 0; {len(rows)} are not, e.g. "
                + ", ".join(f"row {row} ({llms[row]}: {costs[row]})" for row in rows[:5])
            )
        object.__setattr__(self, "llms", llms)
        object.__setattr__(self, "costs", costs)

    def __len__(self) -> int:
        return len(self.llms)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, *, model=None, source: str = "candidates") -> Candidates:
        """Candidates from a table with columns ``llm`` and ``cost`` (other columns are ignored).

        Args:
            model: if given, every id must be in it (:class:`UnknownEntityError` naming those that are not).
            source: how errors name the table (e.g. its file).
        """
        missing = {"llm", "cost"} - set(frame.columns)
        if missing:
            raise ConfigError(
                f"{source}: needs columns llm and cost; missing {sorted(missing)} (has {list(frame.columns)})")
        costs = pd.to_numeric(frame["cost"], errors="coerce").to_numpy(dtype=np.float64)
        unparsed = np.flatnonzero(np.isnan(costs) & frame["cost"].notna().to_numpy())
        if len(unparsed):
            raise ConfigError(
                f"{source}: column cost must be numeric; rows {_examples(unparsed.tolist())} hold "
                f"{_examples(frame['cost'].iloc[unparsed].tolist())}"
            )
        try:
            candidates = cls(frame["llm"].to_numpy(dtype=object), costs)
        except ConfigError as error:
            raise ConfigError(f"{source}: {str(error).removeprefix('candidates: ')}") from None
        if model is not None:
            candidates.check_known(model, source=source)
        return candidates

    @classmethod
    def uniform(cls, llms: Sequence[str], cost: float = 1.0) -> Candidates:
        """Every LLM at the same cost."""
        return cls(np.asarray(llms, dtype=object), np.full(len(llms), float(cost)))

    def check_known(self, model, *, source: str = "candidates") -> None:
        """Raise :class:`UnknownEntityError` naming the ids the model does not hold."""
        unknown = np.setdiff1d(self.llms, np.asarray(model.llms_, dtype=str))
        if len(unknown):
            raise UnknownEntityError(
                f"{source}: {len(unknown)} LLM id(s) are not in the model, e.g. {_examples(unknown.tolist())}; "
                "fold them in first with model.fold_in('llm', ids, answers=..., side=...)"
            )

    def index(self, llm: str, what: str = "fallback") -> int:
        """Position of ``llm`` among the candidates (ConfigError if absent)."""
        positions = np.flatnonzero(self.llms == str(llm))
        if not len(positions):
            raise ConfigError(f"{what} LLM {llm!r} is not among the candidates {_examples(self.llms.tolist(), 10)}")
        return int(positions[0])

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"llm": self.llms, "cost": self.costs})


def _as_candidates(candidates, model=None) -> Candidates:
    if isinstance(candidates, pd.DataFrame):
        return Candidates.from_frame(candidates, model=model)
    if not isinstance(candidates, Candidates):
        raise ConfigError(
            f"candidates must be a Candidates or a DataFrame with llm, cost; got {type(candidates).__name__}")
    if model is not None:
        candidates.check_known(model)
    return candidates


def _item_ids(items, what: str = "items") -> np.ndarray:
    """Unique question ids ``(n_questions,)`` from a sequence or a DataFrame with an ``item`` column."""
    if isinstance(items, pd.DataFrame):
        if "item" not in items.columns:
            raise ConfigError(f"{what}: needs an item column, has {list(items.columns)}")
        items = items["item"]
    ids = np.asarray(items, dtype=object)
    if ids.ndim != 1 or len(ids) == 0:
        raise ConfigError(f"{what}: need a non-empty 1-D list of item ids, got shape {ids.shape}")
    blank = np.flatnonzero(pd.isna(ids))
    if len(blank):
        raise ConfigError(f"{what}: {len(blank)} item id(s) are missing, rows {_examples(blank.tolist())}")
    ids = ids.astype(str)
    duplicated = pd.Series(ids).duplicated().to_numpy()
    if duplicated.any():
        raise ConfigError(
            f"{what}: item ids must be unique; {int(duplicated.sum())} repeat, "
            f"e.g. {_examples(ids[duplicated].tolist())} "
            f"(rows {_examples(np.flatnonzero(duplicated).tolist())})"
        )
    return ids


# --------------------------------------------------------------------------------------------------
# Posterior draws of success probabilities
# --------------------------------------------------------------------------------------------------


def _check_model(model) -> None:
    if not hasattr(model, "sample_posterior"):
        raise ConfigError(
            f"routing needs a fitted SimRMF (posterior draws of each LLM and question); got {type(model).__name__}"
        )
    if not hasattr(model, "llms_"):
        raise NotFittedError("this SimRMF is not fitted yet: call fit(...) or load a saved model first")


def _entity_codes(model, kind: str, ids: np.ndarray) -> np.ndarray:
    """Row of each id in the model; refuses ids it does not hold and rows draws cannot reproduce."""
    codes = encode_ids(ids, np.asarray(model.llms_ if kind == "llm" else model.items_, dtype=str), kind)
    n_warm = model.n_warm_llms_ if kind == "llm" else model.n_warm_items_
    n_fitted = model.n_fitted_llms_ if kind == "llm" else model.n_fitted_items_
    held = (codes >= n_warm) & (codes < n_fitted)
    if held.any():
        raise ConfigError(
            f"{int(held.sum())} {kind} id(s), e.g. {_examples(ids[held].tolist())}, were held in the fit without data "
            f"(similarity_mode={getattr(model, 'similarity_mode', '?')!r}); their predictions carry a moment "
            "correction that per-pair posterior draws do not reproduce. Fit with similarity_mode='kernel' (the "
            "default), which folds such entities in, or fold them in with model.fold_in"
        )
    return codes


def _sample_rows(model, n_draws: int, seed: int, item_codes: np.ndarray, llm_codes: np.ndarray):
    """Posterior draws restricted to the rows needed: ``(draws, item_rows, llm_rows)`` with the codes re-mapped."""
    sampled = model.sample_posterior(n_draws, seed)
    items, item_rows = np.unique(item_codes, return_inverse=True)
    llms, llm_rows = np.unique(llm_codes, return_inverse=True)
    kept = {INTERCEPT: sampled[INTERCEPT]} if INTERCEPT in sampled else {}
    for name, rows in ((ITEM_FACTORS, items), (ITEM_BIAS, items), (LLM_FACTORS, llms), (LLM_BIAS, llms)):
        if name in sampled:
            kept[name] = np.ascontiguousarray(sampled[name][:, rows])
    del sampled
    return kept, item_rows, llm_rows


def _probability_grid(sampled: dict, item_rows: np.ndarray, llm_rows: np.ndarray) -> np.ndarray:
    """Success-probability draws ``(n_draws, n_items, n_llms)`` float32 for every item × LLM."""
    return np.swapaxes(sigmoid(grid_logits(sampled, llm_rows, item_rows)), -1, -2).astype(np.float32)


def _check_draw_options(n_draws: int, batch: int, batch_name: str) -> None:
    if not isinstance(n_draws, (int, np.integer)) or n_draws < 2:
        raise ConfigError(f"n_draws must be an integer >= 2, got {n_draws!r}")
    if not isinstance(batch, (int, np.integer)) or batch < 1:
        raise ConfigError(f"{batch_name} must be an integer >= 1, got {batch!r}")


def pair_probability_draws(
    model, llm, item, *, n_draws: int = 200, seed: int = 0, batch_pairs: int = 50_000
) -> np.ndarray:
    """Posterior draws of each pair's success probability, joint across pairs: ``(n_draws, n_pairs)`` float32.

    Draw ``s`` of every pair comes from the same parameter draw, so comparisons across pairs (which LLM is
    better on a question) are taken within a draw. With the same seed these are the draws
    ``model.predict_interval`` summarises. LLMs and items must be in the model (fitted with data, or added
    by ``fold_in``).
    """
    _check_model(model)
    _check_draw_options(n_draws, batch_pairs, "batch_pairs")
    llm, item, _ = _check_pairs(llm, item)
    llm_codes = _entity_codes(model, "llm", llm)
    item_codes = _entity_codes(model, "item", item)
    sampled, item_rows, llm_rows = _sample_rows(model, n_draws, seed, item_codes, llm_codes)
    result = np.empty((n_draws, len(llm)), dtype=np.float32)
    for start in range(0, len(llm), batch_pairs):
        block = slice(start, start + batch_pairs)
        result[:, block] = sigmoid(pair_logits(sampled, llm_rows[block], item_rows[block]))
    return result


def expected_success(
    model, items, candidates, *, n_draws: int = 200, seed: int = 0, batch_items: int = 1000
) -> pd.DataFrame:
    """Posterior mean success probability of every candidate on every question: ``(n_items, n_candidates)``,
    indexed by item, one column per candidate LLM."""
    _check_model(model)
    _check_draw_options(n_draws, batch_items, "batch_items")
    candidates = _as_candidates(candidates, model)
    item_ids = _item_ids(items)
    sampled, item_rows, llm_rows = _sample_rows(
        model, n_draws, seed, _entity_codes(model, "item", item_ids), _entity_codes(model, "llm", candidates.llms)
    )
    mean = np.empty((len(item_ids), len(candidates)))
    for start in range(0, len(item_ids), batch_items):
        block = slice(start, start + batch_items)
        # the same reduction as PosteriorScores.mean, so a lam solved on these means routes identically
        mean[block] = _probability_grid(sampled, item_rows[block], llm_rows).mean(axis=0, dtype=np.float64)
    return pd.DataFrame(mean, index=pd.Index(item_ids, name="item"), columns=pd.Index(candidates.llms, name="llm"))


# --------------------------------------------------------------------------------------------------
# Policies
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PosteriorScores:
    """What a policy sees for a batch of questions.

    Attributes:
        draws: ``(n_draws, n_questions, n_candidates)`` success-probability draws in [0, 1].
        costs: ``(n_candidates,)`` cost per call.
        llms: ``(n_candidates,)`` candidate ids.
        uniforms: ``(n_questions,)`` uniform numbers in [0, 1), one per question, for randomised policies
            (drawn from the seed per question, so a choice does not depend on how questions are batched).
    """

    draws: np.ndarray
    costs: np.ndarray
    llms: np.ndarray
    uniforms: np.ndarray
    _quantiles: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        draws = np.asarray(self.draws)
        if draws.ndim != 3:
            raise ConfigError(f"draws must be (n_draws, n_questions, n_candidates), got shape {draws.shape}")
        n_draws, n_questions, n_candidates = draws.shape
        if np.shape(self.costs) != (n_candidates,) or np.shape(self.llms) != (n_candidates,):
            raise ConfigError(
                f"need {n_candidates} costs and llms, got {np.shape(self.costs)} and {np.shape(self.llms)}")
        if np.shape(self.uniforms) != (n_questions,):
            raise ConfigError(f"need {n_questions} uniforms, got shape {np.shape(self.uniforms)}")
        object.__setattr__(self, "draws", draws)

    @classmethod
    def from_draws(cls, draws: np.ndarray, candidates: Candidates, *, seed: int = 0) -> PosteriorScores:
        """Scores from hand-made or precomputed draws ``(n_draws, n_questions, n_candidates)``."""
        draws = np.asarray(draws, dtype=np.float64)
        if draws.ndim != 3:
            raise ConfigError(f"draws must be (n_draws, n_questions, n_candidates), got shape {draws.shape}")
        return cls(draws, candidates.costs, candidates.llms, _question_uniforms(draws.shape[1], seed))

    @property
    def n_draws(self) -> int:
        return self.draws.shape[0]

    @cached_property
    def mean(self) -> np.ndarray:
        """Posterior mean ``(n_questions, n_candidates)``."""
        return self.draws.mean(axis=0, dtype=np.float64)

    def quantile(self, q: float) -> np.ndarray:
        """The ``q`` posterior quantile ``(n_questions, n_candidates)``."""
        if q not in self._quantiles:
            self._quantiles[q] = np.quantile(self.draws, q, axis=0)
        return self._quantiles[q]

    def prob_at_least(self, threshold: float) -> np.ndarray:
        """``P(p ≥ threshold)`` under the posterior, ``(n_questions, n_candidates)``: the share of draws."""
        return np.mean(self.draws >= threshold, axis=0)


def _question_uniforms(n_questions: int, seed: int) -> np.ndarray:
    return np.random.default_rng([int(seed), 7919]).random(n_questions)


def _best(values: np.ndarray, costs: np.ndarray) -> np.ndarray:
    """Per row, the column with the highest value; ties to the cheaper, then the earlier column."""
    top = values.max(axis=1, keepdims=True)
    tied = values >= top - 1e-12
    return np.argmin(np.where(tied, costs[None, :], np.inf), axis=1)


def _check_unit(name: str, value: float, *, open_low: bool = True, open_high: bool = True) -> float:
    value = float(value)
    low_ok = value > 0 if open_low else value >= 0
    high_ok = value < 1 if open_high else value <= 1
    if not (np.isfinite(value) and low_ok and high_ok):
        interval = f"{'(' if open_low else '['}0, 1{')' if open_high else ']'}"
        raise ConfigError(f"{name} must be in {interval}, got {value!r}")
    return value


def _check_lam(lam: float) -> float:
    lam = float(lam)
    if not (np.isfinite(lam) and lam >= 0):
        raise ConfigError(f"lam must be a finite number >= 0, got {lam!r}")
    return lam


def _fallback_index(fallback: str | None, llms: np.ndarray) -> int:
    if fallback is None:
        return -1
    positions = np.flatnonzero(np.asarray(llms) == fallback)
    if not len(positions):
        raise ConfigError(f"fallback LLM {fallback!r} is not among the candidates")
    return int(positions[0])


class Policy:
    """A routing rule: :meth:`choose` maps a batch's :class:`PosteriorScores` to one candidate index per
    question, ``-1`` for an abstention."""

    kind: ClassVar[str] = "policy"

    def choose(self, scores: PosteriorScores) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        """The policy's parameters (for tables and curves)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    @property
    def label(self) -> str:
        """``kind(param=value, ...)``: a readable, unique-per-setting name."""
        params = ", ".join(f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
                           for name, value in self.params().items())
        return f"{self.kind}({params})" if params else self.kind

    def check(self, candidates: Candidates) -> None:
        """Raise ConfigError if the policy cannot run on these candidates (e.g. an absent fallback)."""
        fallback = getattr(self, "fallback", None)
        if fallback is not None:
            candidates.index(fallback)


@dataclass(frozen=True)
class Greedy(Policy):
    """The highest posterior mean success probability."""

    kind: ClassVar[str] = "greedy"

    def choose(self, scores: PosteriorScores) -> np.ndarray:
        return _best(scores.mean, scores.costs)


@dataclass(frozen=True)
class RiskAverse(Policy):
    """The highest lower end of the central ``level`` credible interval (quantile ``(1 − level)/2``), the
    ``lower`` that :func:`route` reports at the same level: a candidate with a high mean but a wide
    posterior loses to a slightly worse one the model is sure of."""

    level: float = 0.9
    kind: ClassVar[str] = "risk-averse"

    def __post_init__(self) -> None:
        _check_unit("level", self.level)

    def choose(self, scores: PosteriorScores) -> np.ndarray:
        return _best(scores.quantile((1.0 - self.level) / 2.0), scores.costs)


@dataclass(frozen=True)
class Thompson(Policy):
    """Thompson sampling: per question one posterior draw (from :attr:`PosteriorScores.uniforms`, so seeded),
    and the candidate best in it (``p⁽ˢ⁾ − lam·cost``). Each candidate is chosen with the posterior probability
    that it is the best, so uncertain candidates get tried."""

    lam: float = 0.0
    kind: ClassVar[str] = "thompson"

    def __post_init__(self) -> None:
        _check_lam(self.lam)

    def choose(self, scores: PosteriorScores) -> np.ndarray:
        n_questions = scores.draws.shape[1]
        draw = np.minimum((scores.uniforms * scores.n_draws).astype(np.int64), scores.n_draws - 1)
        sampled = scores.draws[draw, np.arange(n_questions), :].astype(np.float64)
        return _best(sampled - self.lam * scores.costs[None, :], scores.costs)


@dataclass(frozen=True)
class CostAware(Policy):
    """The highest ``E[p] − lam·cost`` (``lam`` = 0 is greedy; a large ``lam`` the cheapest candidate)."""

    lam: float = 0.0
    kind: ClassVar[str] = "cost-aware"

    def __post_init__(self) -> None:
        _check_lam(self.lam)

    def choose(self, scores: PosteriorScores) -> np.ndarray:
        return _best(scores.mean - self.lam * scores.costs[None, :], scores.costs)


@dataclass(frozen=True)
class Threshold(Policy):
    """The cheapest candidate whose success probability clears ``threshold`` with posterior probability at
    least ``confidence`` (``P(p ≥ threshold) ≥ confidence``, i.e. its ``1 − confidence`` quantile is ≥
    ``threshold``); among equally cheap ones the higher mean. When no candidate clears it, the question goes
    to ``fallback`` (an LLM among the candidates: escalate) or, with ``fallback=None``, nowhere (abstain)."""

    threshold: float = 0.5
    confidence: float = 0.9
    fallback: str | None = None
    kind: ClassVar[str] = "threshold"

    def __post_init__(self) -> None:
        _check_unit("threshold", self.threshold, open_low=False, open_high=False)
        _check_unit("confidence", self.confidence)

    def choose(self, scores: PosteriorScores) -> np.ndarray:
        clears = scores.prob_at_least(self.threshold) >= self.confidence - 1e-12
        cheapest = np.where(clears, scores.costs[None, :], np.inf).min(axis=1, keepdims=True)
        eligible = clears & (scores.costs[None, :] == cheapest)
        choice = _best(np.where(eligible, scores.mean, -np.inf), scores.costs)
        choice[~clears.any(axis=1)] = _fallback_index(self.fallback, scores.llms)
        return choice


@dataclass(frozen=True)
class Abstain(Policy):
    """Escalate or abstain when the chosen candidate is not confident enough.

    The wrapped ``policy`` chooses; the choice stands if its posterior mean is ≥ ``threshold``
    (``confidence=None``) or if ``P(p ≥ threshold) ≥ confidence``; otherwise the question goes to ``fallback``
    (an LLM among the candidates) or, with ``fallback=None``, nowhere.
    """

    policy: Policy = field(default_factory=Greedy)
    threshold: float = 0.5
    confidence: float | None = None
    fallback: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.policy, Policy):
            raise ConfigError(f"Abstain wraps a Policy, got {type(self.policy).__name__}")
        _check_unit("threshold", self.threshold, open_low=False, open_high=False)
        if self.confidence is not None:
            _check_unit("confidence", self.confidence)

    @property
    def kind(self) -> str:  # type: ignore[override]
        return f"{self.policy.kind}+abstain"

    def params(self) -> dict[str, Any]:
        return {**self.policy.params(), "threshold": self.threshold, "confidence": self.confidence,
                "fallback": self.fallback}

    @property
    def label(self) -> str:
        bar = (f"mean>={self.threshold:g}" if self.confidence is None
               else f"P(p>={self.threshold:g})>={self.confidence:g}")
        return f"{self.policy.label}+abstain({bar}, fallback={self.fallback})"

    def check(self, candidates: Candidates) -> None:
        self.policy.check(candidates)
        super().check(candidates)

    def choose(self, scores: PosteriorScores) -> np.ndarray:
        choice = self.policy.choose(scores).copy()
        routed = np.flatnonzero(choice >= 0)
        if self.confidence is None:
            confident = scores.mean[routed, choice[routed]] >= self.threshold
        else:
            chosen = scores.draws[:, routed, choice[routed]]
            confident = np.mean(chosen >= self.threshold, axis=0) >= self.confidence - 1e-12
        choice[routed[~confident]] = _fallback_index(self.fallback, scores.llms)
        return choice


def make_policy(
    name: str,
    *,
    level: float = 0.9,
    lam: float = 0.0,
    threshold: float | None = None,
    confidence: float = 0.9,
    fallback: str | None = None,
) -> Policy:
    """A policy by name (:data:`POLICIES`), as the CLI builds it.

    ``threshold`` is the bar of ``"threshold"`` (required there); for any other policy, a ``threshold`` wraps it
    in :class:`Abstain` with the same ``confidence`` and ``fallback``.
    """
    if name == "threshold":
        if threshold is None:
            raise ConfigError("the threshold policy needs a threshold (the success probability to clear)")
        return Threshold(threshold=threshold, confidence=confidence, fallback=fallback)
    builders = {"greedy": lambda: Greedy(), "risk-averse": lambda: RiskAverse(level=level),
                "thompson": lambda: Thompson(lam=lam), "cost-aware": lambda: CostAware(lam=lam)}
    if name not in builders:
        raise ConfigError(f"policy must be one of {', '.join(POLICIES)}; got {name!r}")
    policy = builders[name]()
    if threshold is not None:
        return Abstain(policy, threshold=threshold, confidence=confidence, fallback=fallback)
    if fallback is not None:
        raise ConfigError("a fallback LLM takes effect only with a threshold to fall short of")
    return policy


# --------------------------------------------------------------------------------------------------
# route
# --------------------------------------------------------------------------------------------------


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
    """

    policy: str
    decisions: pd.DataFrame
    accuracy_draws: np.ndarray
    level: float

    def summary(self) -> dict[str, float]:
        """Expected accuracy (over routed questions, with a ``level`` interval), expected correct answers,
        total and mean cost (per question, abstentions cost 0), abstention rate."""
        decisions = self.decisions
        routed = decisions["llm"].notna().to_numpy()
        tail = (1.0 - self.level) / 2.0
        lower, upper = (np.quantile(self.accuracy_draws, [tail, 1.0 - tail]) if routed.any() else (np.nan, np.nan))
        return {
            "n_questions": int(len(decisions)),
            "n_routed": int(routed.sum()),
            "abstain_rate": float(1.0 - routed.mean()),
            "expected_accuracy": float(decisions["prob"][routed].mean()) if routed.any() else float("nan"),
            "expected_accuracy_lower": float(lower),
            "expected_accuracy_upper": float(upper),
            "expected_correct": float(decisions["prob"][routed].sum()),
            "total_cost": float(decisions["cost"].sum()),
            "mean_cost": float(decisions["cost"].mean()),
        }

    def share_by_llm(self) -> pd.Series:
        """Number of questions routed to each LLM (``(abstain)`` for abstentions), most first."""
        return self.decisions["llm"].fillna("(abstain)").value_counts()


class _Collector:
    """Accumulates one policy's choices and the chosen pairs' posterior summaries over batches."""

    def __init__(self, n_items: int, n_draws: int, level: float) -> None:
        self.choice = np.full(n_items, -1, dtype=np.int64)
        self.summary = {name: np.full(n_items, np.nan) for name in ("prob", "sd", "lower", "upper")}
        self.accuracy_sums = np.zeros(n_draws)
        self.tail = (1.0 - level) / 2.0

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

    def result(self, label: str, item_ids: np.ndarray, candidates: Candidates, level: float) -> RoutingResult:
        routed = self.choice >= 0
        llm = np.full(len(item_ids), None, dtype=object)
        llm[routed] = candidates.llms[self.choice[routed]]
        cost = np.where(routed, candidates.costs[np.maximum(self.choice, 0)], 0.0)
        decisions = pd.DataFrame({"item": item_ids, "llm": llm, **self.summary, "cost": cost})
        n_routed = int(routed.sum())
        accuracy = self.accuracy_sums / n_routed if n_routed else np.full_like(self.accuracy_sums, np.nan)
        return RoutingResult(label, decisions, accuracy, level)


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
    collectors = {name: _Collector(len(item_ids), n_draws, level) for name in mapping}
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
        model: a fitted :class:`~bayes_simrmf.estimators.SimRMF`. A posterior guide ("normal", "lowrank") gives
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


# --------------------------------------------------------------------------------------------------
# Evaluation on held-out truth
# --------------------------------------------------------------------------------------------------


def pairs_frame(split: Split, name: str) -> pd.DataFrame:
    """The pairs of one split (``"train"``, ``"A"`` … ``"D"``) as ids: columns ``llm``, ``item``, ``correct``."""
    if name not in split.pairs:
        raise ConfigError(f"split has no pairs {name!r}; it has {list(split.pairs)}")
    pairs = split.pairs[name]
    return pd.DataFrame({"llm": split.llms[pairs.llm].astype(str), "item": split.items[pairs.item].astype(str),
                         "correct": pairs.correct.astype(np.int8)})


def _check_truth(truth: pd.DataFrame, what: str = "truth") -> pd.DataFrame:
    if not isinstance(truth, pd.DataFrame):
        raise ConfigError(f"{what} must be a DataFrame with columns item, llm, correct; got {type(truth).__name__}")
    missing = {"item", "llm", "correct"} - set(truth.columns)
    if missing:
        raise ConfigError(f"{what} needs columns item, llm, correct; missing {sorted(missing)}")
    frame = truth[["item", "llm", "correct"]].copy()
    frame["item"] = frame["item"].astype(str)
    frame["llm"] = frame["llm"].astype(str)
    correct = pd.to_numeric(frame["correct"], errors="coerce")
    bad = ~correct.isin([0, 1])
    if bad.any():
        rows = np.flatnonzero(bad.to_numpy())
        raise ConfigError(f"{what}: correct must be 0/1; rows {_examples(rows.tolist())} hold "
                          f"{_examples(frame['correct'].iloc[rows].tolist())}")
    frame["correct"] = correct.astype(np.int8)
    duplicated = frame.duplicated(["item", "llm"])
    if duplicated.any():
        rows = np.flatnonzero(duplicated.to_numpy())
        raise ConfigError(f"{what}: the same (item, llm) pair appears twice, e.g. rows {_examples(rows.tolist())}")
    return frame


def _decision_frame(decisions) -> pd.DataFrame:
    frame = decisions.decisions if isinstance(decisions, RoutingResult) else decisions
    if not isinstance(frame, pd.DataFrame):
        raise ConfigError(f"decisions must be a RoutingResult or a DataFrame, got {type(decisions).__name__}")
    missing = {"item", "llm", "cost"} - set(frame.columns)
    if missing:
        raise ConfigError(f"decisions need columns item, llm, cost; missing {sorted(missing)}")
    return frame


def _scored(frame: pd.DataFrame, truth: pd.DataFrame, missing: str) -> tuple[np.ndarray, np.ndarray]:
    """Per decision: correct (0/1, NaN where abstained or unscored) and whether the pair had no truth."""
    if missing not in ("error", "skip"):
        raise ConfigError(f"missing must be 'error' or 'skip', got {missing!r}")
    routed = frame["llm"].notna().to_numpy()
    keys = pd.MultiIndex.from_arrays([frame["item"].astype(str), frame["llm"].astype(str)])
    lookup = pd.Series(truth["correct"].to_numpy(), index=pd.MultiIndex.from_frame(truth[["item", "llm"]]))
    correct = np.array(lookup.reindex(keys).to_numpy(dtype=np.float64))
    correct[~routed] = np.nan
    unscored = routed & np.isnan(correct)
    if unscored.any() and missing == "error":
        rows = np.flatnonzero(unscored)
        examples = [(frame["item"].iloc[row], frame["llm"].iloc[row]) for row in rows[:5]]
        raise ConfigError(
            f"truth has no answer for {len(rows)} routed (item, llm) pair(s), e.g. {examples}; evaluate on pairs "
            "whose answers are known (a dense test split), or pass missing='skip' to leave those questions out"
        )
    return correct, unscored


def evaluate_routing(decisions, truth: pd.DataFrame, *, missing: str = "error") -> dict[str, float]:
    """Accuracy, cost and abstention of a routing, scored on held-out answers.

    Args:
        decisions: a :class:`RoutingResult` or a table with ``item``, ``llm`` (None/NaN: abstained), ``cost``.
        truth: ``item``, ``llm``, ``correct`` (0/1) for held-out pairs.
        missing: "error" (default) when a routed pair has no answer in ``truth``; "skip" leaves such
            questions out of every rate (counted in ``n_unscored``).
    Returns:
        ``n_questions``, ``n_routed``, ``abstain_rate``, ``accuracy`` (correct share of routed questions),
        ``accuracy_all`` (correct share of all questions: an abstention counts as not solved), ``mean_cost``
        (per question, abstentions cost 0), ``total_cost``, ``n_unscored``.
    """
    frame = _decision_frame(decisions)
    correct, unscored = _scored(frame, _check_truth(truth), missing)
    keep = ~unscored
    routed = frame["llm"].notna().to_numpy() & keep
    n_questions = int(keep.sum())
    n_correct = float(np.nansum(correct[routed]))
    cost = frame["cost"].to_numpy(dtype=np.float64)[keep]
    return {
        "n_questions": n_questions,
        "n_routed": int(routed.sum()),
        "abstain_rate": float(1.0 - routed.sum() / n_questions) if n_questions else float("nan"),
        "accuracy": n_correct / float(routed.sum()) if routed.any() else float("nan"),
        "accuracy_all": n_correct / n_questions if n_questions else float("nan"),
        "mean_cost": float(cost.mean()) if n_questions else float("nan"),
        "total_cost": float(cost.sum()),
        "n_unscored": int(unscored.sum()),
    }


def routing_table(routers: Mapping[str, Any], truth: pd.DataFrame, *, missing: str = "error") -> pd.DataFrame:
    """One row per router (a RoutingResult or a decision table): :func:`evaluate_routing`'s metrics, plus the
    model's own ``expected_accuracy`` and ``expected_mean_cost`` where the router is a RoutingResult."""
    rows = []
    for name, router in routers.items():
        row = {"router": name, **evaluate_routing(router, truth, missing=missing)}
        if isinstance(router, RoutingResult):
            summary = router.summary()
            row.update(expected_accuracy=summary["expected_accuracy"], expected_mean_cost=summary["mean_cost"])
        rows.append(row)
    return pd.DataFrame(rows).set_index("router")


def _baseline_frame(item_ids: np.ndarray, choice: np.ndarray, candidates: Candidates) -> pd.DataFrame:
    return pd.DataFrame({"item": item_ids, "llm": candidates.llms[choice], "cost": candidates.costs[choice]})


def oracle_routing(items, candidates, truth: pd.DataFrame) -> pd.DataFrame:
    """The best possible router (uses the truth: an upper bound, not a method): each question goes to the
    cheapest candidate that answers it correctly, or to the cheapest candidate with an answer if none does.

    Returns:
        decision table ``item``, ``llm``, ``cost``.
    """
    candidates = _as_candidates(candidates)
    item_ids = _item_ids(items)
    truth = _check_truth(truth)
    order = pd.Series(np.arange(len(candidates)), index=candidates.llms)
    known = truth[truth["item"].isin(item_ids) & truth["llm"].isin(candidates.llms)].copy()
    known["rank"] = order.reindex(known["llm"]).to_numpy()
    known["cost"] = candidates.costs[known["rank"].to_numpy()]
    best = known.sort_values(["item", "correct", "cost", "rank"], ascending=[True, False, True, True])
    best = best.drop_duplicates("item").set_index("item")
    absent = np.setdiff1d(item_ids, best.index.to_numpy(dtype=str))
    if len(absent):
        raise ConfigError(f"truth has no answer by any candidate for {len(absent)} question(s), e.g. "
                          f"{_examples(absent.tolist())}")
    return _baseline_frame(item_ids, best["rank"].reindex(item_ids).to_numpy(dtype=np.int64), candidates)


def single_llm_routing(items, candidates, llm: str) -> pd.DataFrame:
    """Every question to ``llm`` (one of the candidates). Choose ``llm`` with
    :func:`best_single_llm_from_training` or :func:`best_single_llm_from_model`, never on the test truth."""
    candidates = _as_candidates(candidates)
    item_ids = _item_ids(items)
    return _baseline_frame(item_ids, np.full(len(item_ids), candidates.index(llm, "single")), candidates)


def random_routing(items, candidates, *, seed: int = 0) -> pd.DataFrame:
    """Each question to a candidate drawn uniformly at random (seeded)."""
    candidates = _as_candidates(candidates)
    item_ids = _item_ids(items)
    choice = np.random.default_rng([int(seed), 104729]).integers(0, len(candidates), len(item_ids))
    return _baseline_frame(item_ids, choice, candidates)


def _training_counts(train: pd.DataFrame, candidates: Candidates, what: str = "train"):
    train = _check_truth(train, what)
    train = train[train["llm"].isin(candidates.llms)]
    without = np.setdiff1d(candidates.llms, train["llm"].unique().astype(str))
    if len(without):
        raise ConfigError(f"{what}: {len(without)} candidate(s) have no training answers, e.g. "
                          f"{_examples(without.tolist())}; this baseline judges LLMs by their training answers")
    return train


def best_single_llm_from_training(train: pd.DataFrame, candidates) -> str:
    """The candidate with the highest accuracy on its training answers (``llm``, ``item``, ``correct``);
    ties to the cheaper. Under the protocol each known LLM answers T random known questions, so the
    accuracies are comparable."""
    candidates = _as_candidates(candidates)
    train = _training_counts(train, candidates)
    accuracy = train.groupby("llm")["correct"].mean().reindex(candidates.llms).to_numpy()
    return str(candidates.llms[_best(accuracy[None, :], candidates.costs)[0]])


def best_single_llm_from_model(model, items, candidates, *, n_draws: int = 200, seed: int = 0,
                               batch_items: int = 1000) -> str:
    """The candidate with the highest mean predicted success over ``items`` (the model's predictions, no
    answers used); ties to the cheaper."""
    candidates = _as_candidates(candidates, model)
    mean = expected_success(model, items, candidates, n_draws=n_draws, seed=seed, batch_items=batch_items)
    return str(candidates.llms[_best(mean.to_numpy().mean(axis=0)[None, :], candidates.costs)[0]])


def knn_routing(
    items,
    candidates,
    train: pd.DataFrame,
    item_vectors: pd.DataFrame,
    *,
    k: int = 10,
    metric: str = "cosine",
    prior_strength: float = 1.0,
    batch_items: int | None = None,
) -> pd.DataFrame:
    """kNN over questions: each question goes to the candidate with the best accuracy on its ``k`` most
    similar training questions (ties to the cheaper).

    Args:
        items: the questions to route.
        train: training answers ``llm``, ``item``, ``correct`` (never test answers). A routed question that is
            itself a training question counts among its own neighbours with its training answers.
        item_vectors: one row per question id (index) holding its vector: text embeddings (``metric="cosine"``)
            or rows of a similarity factor ``W`` with ``√S = W Wᵀ`` (``metric="dot"``). Must cover ``items`` and
            the training questions.
        k: neighbours per question.
        prior_strength: each candidate's accuracy on the neighbours is smoothed towards its overall training
            accuracy with this many pseudo-answers (training data are sparse: a candidate may have answered
            few of the neighbours).
        batch_items: questions per block of the ``batch × n_train_questions`` similarity (default: about 2·10⁷
            entries per block). No questions × questions matrix is built.
    Returns:
        decision table ``item``, ``llm``, ``cost``.
    """
    candidates = _as_candidates(candidates)
    item_ids = _item_ids(items)
    train = _training_counts(train, candidates)
    if metric not in ("cosine", "dot"):
        raise ConfigError(f"metric must be 'cosine' or 'dot', got {metric!r}")
    if not isinstance(item_vectors, pd.DataFrame):
        raise ConfigError("item_vectors must be a DataFrame indexed by item id, one column per dimension")
    if not (np.isfinite(prior_strength) and prior_strength >= 0):
        raise ConfigError(f"prior_strength must be a finite number >= 0, got {prior_strength!r}")
    vectors = item_vectors.copy()
    vectors.index = vectors.index.astype(str)
    if vectors.index.duplicated().any():
        raise ConfigError(f"item_vectors: item ids repeat, e.g. {_examples(vectors.index[vectors.index.duplicated()])}")
    train_items, train_codes = np.unique(train["item"].to_numpy(dtype=str), return_inverse=True)
    for what, ids in (("questions to route", item_ids), ("training questions", train_items)):
        absent = np.setdiff1d(ids, vectors.index.to_numpy(dtype=str))
        if len(absent):
            raise ConfigError(f"item_vectors has no row for {len(absent)} {what}, e.g. {_examples(absent.tolist())}")
    if not isinstance(k, (int, np.integer)) or not 1 <= k:
        raise ConfigError(f"k must be an integer >= 1, got {k!r}")
    k = min(int(k), len(train_items))
    llm_codes = pd.Index(candidates.llms).get_indexer(train["llm"].to_numpy(dtype=str))
    successes = np.zeros((len(train_items), len(candidates)))
    answered = np.zeros((len(train_items), len(candidates)))
    np.add.at(successes, (train_codes, llm_codes), train["correct"].to_numpy(dtype=np.float64))
    np.add.at(answered, (train_codes, llm_codes), 1.0)
    overall = successes.sum(axis=0) / answered.sum(axis=0)

    def rows(ids: np.ndarray) -> np.ndarray:
        matrix = vectors.loc[ids].to_numpy(dtype=np.float64)
        if metric == "cosine":
            matrix = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
        return matrix

    train_matrix = rows(train_items)
    if batch_items is None:
        batch_items = max(1, 20_000_000 // len(train_items))
    choice = np.empty(len(item_ids), dtype=np.int64)
    for start in range(0, len(item_ids), batch_items):
        block = slice(start, start + batch_items)
        similarity = rows(item_ids[block]) @ train_matrix.T  # (batch, n_train_questions)
        neighbours = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        wins = successes[neighbours].sum(axis=1) + prior_strength * overall
        tries = answered[neighbours].sum(axis=1) + prior_strength
        choice[block] = _best(wins / np.maximum(tries, 1e-12), candidates.costs)
    return _baseline_frame(item_ids, choice, candidates)


# --------------------------------------------------------------------------------------------------
# Curves
# --------------------------------------------------------------------------------------------------


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
