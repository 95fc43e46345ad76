"""What a fitted SimRMF answers: probabilities, intervals, group means and posterior draws.

:class:`PosteriorQueries` is the query half of :class:`~bayes_simrmf.predict.SimRMF`: every method
reads the frozen :class:`~bayes_simrmf.predict.state.FittedState` in ``fitted_`` (and the settings
``seed``, ``biases``, ``guide``, ``fold_in_spread``, ``population_draws``) and never changes it.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
import pandas as pd

from bayes_simrmf.errors import ConfigError, NotFittedError
from bayes_simrmf.options import UNKNOWN_POLICIES
from bayes_simrmf.pairs import as_id_array, check_pairs
from bayes_simrmf.inference.samples import SamplePosterior
from bayes_simrmf.predict.draws import draw_batches, draw_points, sample_posterior, used_rows_only
from bayes_simrmf.predict.fold_in import fold_in_draws
from bayes_simrmf.predict.point import PointModel, PredictOptions
from bayes_simrmf.predict.population import UnknownFill, unknown_pools
from bayes_simrmf.predict.sides import ITEM, LLM
from bayes_simrmf.predict.state import FittedState, encode_ids


class PosteriorQueries:
    """Predictions of a fitted model (mixed into :class:`~bayes_simrmf.predict.SimRMF`)."""

    def predict(
        self,
        llm,
        item,
        *,
        unknown: Literal["error", "population"] = "error",
        n_draws: int | None = None,
        seed: int = 0,
        item_groups=None,
        llm_groups=None,
    ) -> np.ndarray:
        """P(correct) per pair ``(n_pairs,)``: at the point estimate, or averaged over ``n_draws`` posterior draws
        (default 100 for a posterior guide, every kept draw of a sampler, 0 for MAP).

        Args:
            unknown: "error" refuses an LLM or item the fit never saw; "population" predicts it as a random member
                of the fitted population (of its group, given ``item_groups`` / ``llm_groups``); with the Gibbs
                sampler, as a fresh draw from the learned population in each posterior draw.
        """
        state = self._state()
        llm, item, llm_codes, item_codes = self._coded_pairs(llm, item, unknown)
        state, llm_codes, item_codes = self._learned_population(state, llm, item, llm_codes, item_codes, llm_groups,
                                                                item_groups)
        if n_draws is None:
            n_draws = 0 if state.posterior.is_point else state.posterior.n_draws
        if n_draws < 0:
            raise ConfigError(f"n_draws must be >= 0, got {n_draws}")
        pools = unknown_pools(state, llm, item, llm_codes, item_codes, llm_groups, item_groups)
        if n_draws == 0 or state.posterior.is_point:
            point = self._point() if state is self._state() else PointModel(state, self._predict_options())
            return point.probabilities(llm_codes, item_codes, UnknownFill.of(llm_codes, item_codes, pools))
        total = np.zeros(len(llm_codes))
        state, llm_codes, item_codes = used_rows_only(state, llm_codes, item_codes)
        fill = UnknownFill.of(llm_codes, item_codes, pools)
        for point in draw_points(state, self._predict_options(), n_draws, seed):
            total += point.probabilities(llm_codes, item_codes, fill)
        return total / n_draws

    def predict_interval(
        self,
        llm,
        item,
        *,
        n_draws: int = 200,
        level: float = 0.9,
        unknown: Literal["error", "population"] = "error",
        batch_pairs: int = 50_000,
        seed: int = 0,
        item_groups=None,
        llm_groups=None,
    ) -> pd.DataFrame:
        """Posterior predictive probability with sd and a central credible interval, per pair.

        Draws parameters from the fitted variational posterior (``guide="normal"`` or
        ``"lowrank"``) and repeats :meth:`predict`'s computation for each draw (folded-in and
        unseen entities included), in batches of ``batch_pairs`` pairs so that at most
        ``n_draws × batch_pairs`` probabilities are held at once.

        An entity the fit never saw (``unknown="population"``) is, in each draw, a random fitted
        entity, so its interval covers the spread of the population. Entities folded in from
        similarity use their folded-in vectors per draw; the part of their logit the similarity
        did not explain is integrated over, not sampled, so their intervals are too narrow.

        Returns:
            DataFrame with columns ``prob`` (posterior mean), ``sd``, ``lower``, ``upper``
            (the ``level`` central interval), one row per pair, probabilities in [0, 1].
        """
        state = self._state()
        if state.posterior.is_point:
            raise ConfigError(
                "the delta guide is a point estimate (MAP) with no posterior spread; fit with "
                "guide='normal' or 'lowrank' for intervals"
            )
        _check_level(level)
        _check_draws(n_draws, batch_pairs)
        llm, item, llm_codes, item_codes = self._coded_pairs(llm, item, unknown)
        state, llm_codes, item_codes = self._learned_population(state, llm, item, llm_codes, item_codes, llm_groups,
                                                                item_groups)
        options = self._predict_options()
        state, llm_codes, item_codes = used_rows_only(state, llm_codes, item_codes)
        points = draw_points(state, options, n_draws, seed)
        columns = {name: np.empty(len(llm_codes)) for name in ("prob", "sd", "lower", "upper")}
        pools = unknown_pools(state, llm, item, llm_codes, item_codes, llm_groups, item_groups)
        for block, probs in draw_batches(state, options, points, llm, item, llm_codes, item_codes, batch_pairs, seed,
                                         pools):
            columns["prob"][block] = probs.mean(axis=0)
            columns["sd"][block] = probs.std(axis=0, ddof=1)
            columns["lower"][block], columns["upper"][block] = _central_interval(probs, level)
        return pd.DataFrame(columns)

    def predict_group_interval(
        self,
        llm,
        item,
        *,
        by="llm",
        n_draws: int = 200,
        level: float = 0.9,
        observed: bool = True,
        unknown: Literal["error", "population"] = "error",
        batch_pairs: int = 50_000,
        seed: int = 0,
        item_groups=None,
        llm_groups=None,
    ) -> pd.DataFrame:
        """Mean accuracy of each LLM (``by="llm"``), item (``by="item"``) or any grouping of the
        pairs (``by`` = one label per pair, e.g. LLM and benchmark) over the given pairs, with an
        interval.

        Per posterior draw the pairs' probabilities are averaged per group; with ``observed=True``
        answers are also drawn (Bernoulli), so the interval is for the *observed* mean accuracy
        on these pairs (what a user would measure by running them), not only its expectation.
        The delta guide gives the plug-in predictive (Bernoulli noise around the MAP only), plus
        the posterior of entities added by :meth:`fold_in`.

        Returns:
            DataFrame indexed by group with columns ``mean``, ``lower``, ``upper``, ``n_pairs``.
        """
        self._state()
        _check_level(level)
        group_ids, means, counts = self.group_draws(llm, item, by=by, n_draws=n_draws, observed=observed,
                                                    unknown=unknown, batch_pairs=batch_pairs, seed=seed,
                                                    item_groups=item_groups, llm_groups=llm_groups)
        lower, upper = _central_interval(means, level)
        name = by if isinstance(by, str) else "group"
        return pd.DataFrame(
            {"mean": means.mean(axis=0), "lower": lower, "upper": upper, "n_pairs": counts},
            index=pd.Index(group_ids, name=name),
        )

    def group_draws(
        self,
        llm,
        item,
        *,
        by="llm",
        n_draws: int = 200,
        observed: bool = True,
        unknown: Literal["error", "population"] = "error",
        batch_pairs: int = 50_000,
        seed: int = 0,
        item_groups=None,
        llm_groups=None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Posterior predictive draws of each group's mean accuracy (see :meth:`predict_group_interval`).

        Returns:
            ``(group_ids (n_groups,), means (n_draws, n_groups), n_pairs (n_groups,))``.
        """
        state = self._state()
        llm, item, _ = check_pairs(llm, item)
        labels = _group_labels(by, llm, item)
        _check_draws(n_draws, batch_pairs)
        llm, item, llm_codes, item_codes = self._coded_pairs(llm, item, unknown)
        state, llm_codes, item_codes = self._learned_population(state, llm, item, llm_codes, item_codes, llm_groups,
                                                                item_groups)
        group_codes, group_ids = pd.factorize(pd.Series(labels))
        n_groups = len(group_ids)
        options = self._predict_options()
        point = state.posterior.is_point and not state.inductive
        state, llm_codes, item_codes = used_rows_only(state, llm_codes, item_codes)  # a no-op for a point
        points = [self._point()] * n_draws if point else draw_points(state, options, n_draws, seed)
        rng = np.random.default_rng(seed)
        sums = np.zeros((n_draws, n_groups))
        pools = unknown_pools(state, llm, item, llm_codes, item_codes, llm_groups, item_groups)
        for block, probs in draw_batches(state, options, points, llm, item, llm_codes, item_codes, batch_pairs, seed,
                                         pools):
            values = (rng.random(probs.shape) < probs).astype(float) if observed else probs
            for index in range(n_draws):
                sums[index] += np.bincount(group_codes[block], weights=values[index], minlength=n_groups)
        counts = np.bincount(group_codes, minlength=n_groups)
        return np.asarray(group_ids, dtype=str), sums / counts, counts

    def sample_posterior(self, n_draws: int = 200, seed: int = 0) -> dict[str, np.ndarray]:
        """Joint draws of every parameter from the fitted posterior, one row per entity in the model.

        Rows follow :attr:`llms_` / :attr:`items_`: fitted entities are drawn from the guide's
        Gaussian; entities folded in (by the kernel mode of :meth:`fit` or by :meth:`fold_in`) from
        their own Gaussian, independently of the fitted ones. The delta guide gives ``n_draws``
        copies of the MAP for the fitted entities.

        Returns:
            site name (``bayes_simrmf.model`` constants) → ``(n_draws, *shape)`` float32.
        """
        return sample_posterior(self._state(), n_draws, seed)

    # helpers ------------------------------------------------------------------------------------
    def _learned_population(self, state: FittedState, llm, item, llm_codes, item_codes, llm_groups, item_groups):
        """For a posterior held as a sampler's draws: ``(state, llm_codes, item_codes)`` with every entity the model
        does not hold (code -1) added as a fresh draw from the learned population in each posterior draw (its
        group's, for a question whose group is known; :func:`~bayes_simrmf.predict.fold_in.fold_in_draws`), so
        it is predicted from the population the sampler learned rather than from the fitted entities. Other
        posteriors, or no unknown entity: unchanged."""
        if not isinstance(state.posterior, SamplePosterior) or ((llm_codes >= 0) & (item_codes >= 0)).all():
            return state, llm_codes, item_codes
        codes = {LLM.kind: llm_codes, ITEM.kind: item_codes}
        for which, ids, groups in ((LLM, llm, llm_groups), (ITEM, item, item_groups)):
            unseen = pd.unique(ids[codes[which.kind] < 0])
            if not len(unseen):
                continue
            updated = state.groups(which).updated(groups, f"{which.kind}_groups")
            state = dataclasses.replace(state, **{f"{which.kind}_groups": updated})
            state, _ = fold_in_draws(state, which, np.asarray(unseen), answers=None, side_info=None, ridge=1.0,
                                     biases=bool(self.biases), temperature=1.0, max_iter=1, seed=int(self.seed))
        for which, ids in ((LLM, llm), (ITEM, item)):
            codes[which.kind] = pd.Index(state.ids(which)).get_indexer(ids)
        return state, codes[LLM.kind], codes[ITEM.kind]

    def _state(self) -> FittedState:
        state = self.__dict__.get("fitted_")
        if state is None:
            raise NotFittedError("this SimRMF is not fitted yet: call fit(...) or load a saved model first")
        return state

    def _predict_options(self) -> PredictOptions:
        return PredictOptions(seed=int(self.seed), biases=bool(self.biases), fold_in_spread=self.fold_in_spread,
                              population_draws=self.population_draws)

    def _point(self) -> PointModel:
        """The point estimate's :class:`PointModel`, rebuilt when the state or the options change."""
        options, cached = self._predict_options(), self.__dict__.get("_point_model")
        if cached is None or cached.state is not self._state() or cached.options != options:
            cached = self._point_model = PointModel(self._state(), options)
        return cached

    def _coded_pairs(self, llm, item, unknown: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Checked id arrays and their row codes (-1 for an entity the model does not hold, if allowed)."""
        if unknown not in UNKNOWN_POLICIES:
            raise ConfigError(f"unknown must be one of {UNKNOWN_POLICIES}, got {unknown!r}")
        llm, item, _ = check_pairs(llm, item)
        state = self._state()
        codes = []
        for which, ids in ((LLM, llm), (ITEM, item)):
            if unknown == "error":
                also = f", or pass unknown='population' to predict them as an average fitted {which.label}"
                codes.append(encode_ids(ids, state.ids(which), which.label, also=also))
            else:
                codes.append(pd.Index(state.ids(which)).get_indexer(ids))
        return llm, item, codes[0], codes[1]


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ConfigError(f"level must be in (0, 1), got {level!r}")


def _check_draws(n_draws: int, batch_pairs: int) -> None:
    if n_draws < 2 or batch_pairs < 1:
        raise ConfigError(f"need n_draws >= 2 and batch_pairs >= 1, got {n_draws}, {batch_pairs}")


def quantile_standard_error(draws: np.ndarray, q: float) -> np.ndarray:
    """Monte Carlo standard error of the ``q`` quantile of ``draws`` over axis 0, without assuming a shape: half the
    distance between the order statistics one binomial sd (``√(n q (1 - q))`` ranks) either side of rank ``n q``
    (their span covers the true quantile with probability ≈ 0.68)."""
    ordered = np.sort(draws, axis=0)
    n = ordered.shape[0]
    rank, spread = q * (n - 1), np.sqrt(n * q * (1.0 - q))
    low, high = int(max(np.floor(rank - spread), 0)), int(min(np.ceil(rank + spread), n - 1))
    return (ordered[high] - ordered[low]) / 2.0


def _central_interval(draws: np.ndarray, level: float) -> np.ndarray:
    """``(2, ...)``: the lower and upper ends of the ``level`` central interval of ``draws`` over axis 0."""
    tail = (1.0 - level) / 2.0
    return np.quantile(draws, [tail, 1.0 - tail], axis=0)


def _group_labels(by, llm: np.ndarray, item: np.ndarray) -> np.ndarray:
    """One group label per pair: its LLM (``by="llm"``), its item (``"item"``) or the labels given."""
    if isinstance(by, str):
        if by not in ("llm", "item"):
            raise ConfigError(f"by must be 'llm', 'item' or one group label per pair, got {by!r}")
        return llm if by == "llm" else item
    labels = as_id_array(by, "by")
    if len(labels) != len(llm):
        raise ConfigError(f"by must give one group label per pair; got {len(labels)} for {len(llm)} pairs")
    return labels
