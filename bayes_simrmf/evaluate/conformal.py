"""Split-conformal calibration of the intervals of group means (issue 23, part 5): an explicit option, reported in
its own rows, never a silent replacement of the posterior.

A model's predictive interval for a group's observed mean accuracy (an LLM's over some questions, a question's
over some LLMs; :meth:`~bayes_simrmf.predict.SimRMF.group_draws`) is stretched or shrunk about its centre by one
factor per kind of group. The factor is learned on validation entities carved from the seed's own training
pairs (:func:`~bayes_simrmf.evaluate.tuning.carve_validation`), never on test pairs: the model is refitted
without them, each validation group gets its interval as a test group would, and its score is how far the
observed mean lies from the centre in units of the interval's half on that side. The factor is the
``⌈(n + 1) · level⌉``-th smallest of the ``n`` scores (split conformal: with exchangeable groups, a stretched
interval covers a new group's mean with probability at least ``level``).

Which validation matches which test split: held-out pairs of known LLMs and questions for A, held-out questions
for B, held-out LLMs for C; D (both new) takes the larger of the B and C factors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from bayes_simrmf.errors import ConfigError
from bayes_simrmf.evaluate.tuning import carve_validation

#: The validation carve whose groups stand in for each test split's.
HOLDOUT_OF_SPLIT = {"A": ("pairs",), "B": ("items",), "C": ("llms",), "D": ("items", "llms")}


@dataclass(frozen=True)
class ConformalFactors:
    """Stretch factors per ``(level, holdout, by)``, with the number of validation groups behind each."""

    factors: dict[tuple[float, str, str], float] = field(default_factory=dict)
    counts: dict[tuple[str, str], int] = field(default_factory=dict)

    def for_split(self, split: str, by: str, level: float) -> float:
        """The factor for ``level`` intervals of the groups ``by`` ("llm" / "item") of test split ``split`` (the
        largest of its carves')."""
        if split not in HOLDOUT_OF_SPLIT:
            raise ConfigError(f"split must be one of {list(HOLDOUT_OF_SPLIT)}, got {split!r}")
        missing = [holdout for holdout in HOLDOUT_OF_SPLIT[split] if (level, holdout, by) not in self.factors]
        if missing:
            raise ConfigError(f"no conformal factor for level {level}, {missing} carve(s), groups by {by!r}; learn it "
                              "with fit_conformal(..., levels=...)")
        return max(self.factors[(level, holdout, by)] for holdout in HOLDOUT_OF_SPLIT[split])

    def to_json(self) -> list[dict]:
        return [{"level": level, "holdout": holdout, "by": by, "factor": factor, "n_groups": self.counts[(holdout, by)]}
                for (level, holdout, by), factor in self.factors.items()]


def centred_interval(means: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(centre, lower, upper)`` of draws ``(n_draws, n_groups)``: the posterior mean and the central interval."""
    lower, upper = np.quantile(means, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return means.mean(axis=0), lower, upper


def stretch(centre: np.ndarray, lower: np.ndarray, upper: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """The interval stretched about ``centre`` by ``factor`` on each side, clipped to [0, 1]."""
    return np.clip(centre - factor * (centre - lower), 0.0, 1.0), np.clip(centre + factor * (upper - centre), 0.0, 1.0)


def conformity_scores(observed: np.ndarray, centre: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """How far each observed mean lies from the centre, in units of the interval's half on its side (≤ 1: inside)."""
    above = observed >= centre
    half = np.where(above, upper - centre, centre - lower)
    distance = np.abs(observed - centre)
    return np.where(half > 0, distance / np.where(half > 0, half, 1.0), np.where(distance > 0, np.inf, 0.0))


def conformal_factor(scores: np.ndarray, level: float) -> float:
    """The ``⌈(n + 1) · level⌉``-th smallest score (infinite when there are too few scores for ``level``)."""
    scores = np.sort(np.asarray(scores, dtype=float))
    rank = int(np.ceil((len(scores) + 1) * level))
    return float(scores[rank - 1]) if 0 < rank <= len(scores) else float("inf")


def fit_conformal(
    make_model: Callable[[], object],
    split,
    *,
    fit_kwargs: dict | None = None,
    levels: tuple[float, ...] = (0.9,),
    share: float = 0.1,
    n_draws: int = 100,
    max_pairs: int = 100_000,
    seed: int = 0,
) -> ConformalFactors:
    """Learn the stretch factors on validation carved from ``split``'s training pairs.

    Args:
        make_model: returns a new, unfitted estimator with the hyper-parameters of the model to calibrate.
        split: the protocol split (only its training pairs are read).
        fit_kwargs: passed to ``fit`` (``side``, ``item_groups``); every id of the split is passed as ``llms`` /
            ``items``, as :func:`~bayes_simrmf.evaluate.fit_on_split` does, so validation entities are placed as
            test entities would be.
        levels: the interval levels to learn factors for; share: share of pairs / questions / LLMs held out per carve.
        n_draws, max_pairs, seed: as in :func:`~bayes_simrmf.evaluate.split.interval_coverage`.
    """
    if not all(0 < level < 1 for level in levels):
        raise ConfigError(f"levels must lie in (0, 1), got {levels!r}")
    train = split.pairs["train"]
    llm, item, correct = split.llms[train.llm], split.items[train.item], train.correct
    factors, counts = {}, {}
    for holdout in ("pairs", "items", "llms"):
        held = carve_validation(llm, item, share=share, holdout=holdout, seed=seed)
        model = make_model().fit(llm[~held], item[~held], correct[~held], llms=split.llms, items=split.items,
                                 **(fit_kwargs or {}))
        rows = np.flatnonzero(held)
        rows = rows[np.random.default_rng(seed).permutation(len(rows))[:max_pairs]]
        for by in ("llm", "item"):
            groups, means, _ = model.group_draws(llm[rows], item[rows], by=by, n_draws=n_draws, unknown="population",
                                                 seed=seed)
            keys = llm[rows] if by == "llm" else item[rows]
            observed = pd.Series(correct[rows].astype(float)).groupby(keys).mean().reindex(groups).to_numpy()
            counts[(holdout, by)] = len(groups)
            for level in levels:
                scores = conformity_scores(observed, *centred_interval(means, level))
                factors[(level, holdout, by)] = conformal_factor(scores, level)
    return ConformalFactors(factors, counts)
