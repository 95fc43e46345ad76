"""Routing policies: how a question's candidate is chosen from the posterior draws."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

import numpy as np

from bayes_simrmf.errors import ConfigError
from bayes_simrmf.options import POLICIES
from bayes_simrmf.routing.candidates import Candidates


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


