"""Split-conformal calibration of the intervals of group means (issue 23, part 5): an explicit option, reported in
its own rows, never a silent replacement of the posterior.

A model's predictive draws of a group's observed mean accuracy (an LLM's over some questions, a question's over
some LLMs; :meth:`~bayes_simrmf.predict.SimRMF.group_draws`) give a centre (their mean) and a scale (their sd).
Conformal calibration learns, per kind of group, how many sds an interval about the centre must reach, on
validation entities carved from the seed's own training pairs (:func:`~bayes_simrmf.evaluate.tuning.carve_validation`),
never on test pairs: the model is refitted without them, and each validation group's score is
``|observed − centre| / sd``. The half-width is the ``⌈(n + 1) · level⌉``-th smallest of the ``n`` scores (split
conformal: with exchangeable groups, ``centre ± half-width · sd`` covers a new group's mean with probability at
least ``level``). Unlike re-reading the draws at another quantile, this reaches past the draws where a posterior
is too narrow, and the continuous centre and sd keep the scores free of the ties that discrete means would give.

Which validation matches which test split: held-out pairs of known LLMs and questions for A, held-out questions
for B, held-out LLMs for C; D (both new) takes the larger of the B and C half-widths.
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
class ConformalLevels:
    """Learned half-widths (in posterior sds) per ``(level, holdout, by)``, with the number of validation groups."""

    learned: dict[tuple[float, str, str], float] = field(default_factory=dict)
    counts: dict[tuple[str, str], int] = field(default_factory=dict)

    def for_split(self, split: str, by: str, level: float) -> float:
        """The half-width (in sds) of ``level`` intervals for the groups ``by`` ("llm" / "item") of test split
        ``split`` (the largest of its carves')."""
        if split not in HOLDOUT_OF_SPLIT:
            raise ConfigError(f"split must be one of {list(HOLDOUT_OF_SPLIT)}, got {split!r}")
        missing = [holdout for holdout in HOLDOUT_OF_SPLIT[split] if (level, holdout, by) not in self.learned]
        if missing:
            raise ConfigError(f"no conformal half-width for level {level}, {missing} carve(s), groups by {by!r}; learn it "
                              "with fit_conformal(..., levels=...)")
        return max(self.learned[(level, holdout, by)] for holdout in HOLDOUT_OF_SPLIT[split])

    def to_json(self) -> list[dict]:
        return [{"level": level, "holdout": holdout, "by": by, "half_width_sd": learned,
                 "n_groups": self.counts[(holdout, by)]} for (level, holdout, by), learned in self.learned.items()]


def conformal_interval(means: np.ndarray, half_width: float) -> tuple[np.ndarray, np.ndarray]:
    """``centre ± half_width · sd`` of draws ``(n_draws, n_groups)``, clipped to [0, 1]."""
    centre, sd = means.mean(axis=0), means.std(axis=0)
    return np.clip(centre - half_width * sd, 0.0, 1.0), np.clip(centre + half_width * sd, 0.0, 1.0)


def conformity_scores(observed: np.ndarray, means: np.ndarray) -> np.ndarray:
    """``|observed − centre| / sd`` per group (draws ``(n_draws, n_groups)``; infinite where the draws do not
    vary and the observed mean differs from them)."""
    centre, sd = means.mean(axis=0), means.std(axis=0)
    distance = np.abs(observed - centre)
    return np.where(sd > 0, distance / np.where(sd > 0, sd, 1.0), np.where(distance > 0, np.inf, 0.0))


def conformal_half_width(scores: np.ndarray, level: float) -> float:
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
) -> ConformalLevels:
    """Learn the half-widths on validation carved from ``split``'s training pairs.

    Args:
        make_model: returns a new, unfitted estimator with the hyper-parameters of the model to calibrate.
        split: the protocol split (only its training pairs are read).
        fit_kwargs: passed to ``fit`` (``side``, ``item_groups``); every id of the split is passed as ``llms`` /
            ``items``, as :func:`~bayes_simrmf.evaluate.fit_on_split` does, so validation entities are placed as
            test entities would be.
        levels: the interval levels to learn half-widths for; share: share of pairs / questions / LLMs held out.
        n_draws, max_pairs, seed: as in :func:`~bayes_simrmf.evaluate.split.interval_coverage`.
    """
    if not all(0 < level < 1 for level in levels):
        raise ConfigError(f"levels must lie in (0, 1), got {levels!r}")
    train = split.pairs["train"]
    llm, item, correct = split.llms[train.llm], split.items[train.item], train.correct
    learned, counts = {}, {}
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
            scores = conformity_scores(observed, means)
            for level in levels:
                learned[(level, holdout, by)] = conformal_half_width(scores, level)
    return ConformalLevels(learned, counts)
