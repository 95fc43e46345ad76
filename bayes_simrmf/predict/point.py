"""Predictions at one point of parameter space: the point estimate, or one posterior draw.

:class:`PointModel` turns coded pairs into probabilities for a :class:`FittedState`:

* two entities fitted with data: ``σ(logit)`` of the linear predictor;
* an entity the fit did not see (code -1): the mean over the fitted population of its group
  (:mod:`bayes_simrmf.predict.population`);
* an entity held without data (fitted through the similarity potential): its point vector is a
  shrunk regression on similarity, so its logits are too concentrated and centred on the prior
  mode, not on an average entity. Its logit is moved to the mean its partner shows against
  fitted entities, and the variance the similarity did not explain is integrated over:
  ``E[σ(ℓ̂ − m̂ + m + ε)], ε ~ N(0, max(v − v̂, 0))`` where ``m, v`` are the partner's logit mean
  and variance across fitted entities and ``m̂, v̂`` across those without data;
* an entity folded in (``fold_in``, or the kernel mode of ``fit``): the sigmoid averaged over
  its Gaussian posterior.

What depends only on the state (logit moments, spread tables) is computed once per PointModel.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.special import ndtri

from bayes_simrmf.model.predictor import expected_sigmoid, grid_logits, pair_logits, sigmoid, with_asymptotes
from bayes_simrmf.predict.population import (
    MAX_POPULATION,
    POPULATION_CHUNK,
    UnknownFill,
    population,
    sample_members,
    side_logits,
)
from bayes_simrmf.predict.sides import ITEM, LLM, SIDES, Side
from bayes_simrmf.predict.state import FittedState

# Quantile levels of the empirical logit spread (``fold_in_spread="empirical"``), and the normal's.
#: Pairs per chunk of :meth:`PointModel.probabilities` (bounds its temporaries to ~30 MB).
PAIR_CHUNK = 16_384
_SPREAD_LEVELS = (np.arange(32) + 0.5) / 32
_NORMAL_QUANTILES = ndtri(_SPREAD_LEVELS)


@dataclass(frozen=True)
class PredictOptions:
    """The estimator's settings prediction needs (see :class:`~bayes_simrmf.predict.SimRMF`)."""

    seed: int
    biases: bool
    fold_in_spread: str = "gaussian"
    population_draws: str = "fixed"


class PointModel:
    """Probabilities of coded pairs at the parameters of ``state`` (see the module docstring)."""

    def __init__(self, state: FittedState, options: PredictOptions) -> None:
        self.state = state
        self.options = options
        self._spread_tables: dict[tuple[str, int], np.ndarray] = {}

    def probabilities(self, llm_codes: np.ndarray, item_codes: np.ndarray, unknown: UnknownFill | None = None
                      ) -> np.ndarray:
        """Probabilities ``(n_pairs,)`` of coded pairs; code -1 marks an entity the model does not hold,
        whose stand-ins ``unknown`` names (:class:`~bayes_simrmf.predict.population.UnknownFill`, worked out
        here without groups when not given; pass it when calling once per posterior draw)."""
        prob = np.empty(len(llm_codes), dtype=np.float64)
        both = np.flatnonzero((llm_codes >= 0) & (item_codes >= 0))
        # In chunks: every step is per pair, and the temporaries (a fold-in covariance per pair, quadrature
        # nodes) would otherwise grow with the number of pairs asked for.
        for start in range(0, len(both), PAIR_CHUNK):
            rows = both[start:start + PAIR_CHUNK]
            prob[rows] = self._known_probabilities(llm_codes[rows], item_codes[rows])
        if unknown is None and ((llm_codes < 0) | (item_codes < 0)).any():
            unknown = UnknownFill.of(llm_codes, item_codes)
        if unknown is not None:
            unknown.fill(self.state, self.options.seed, prob)
        return prob

    def _known_probabilities(self, llm: np.ndarray, item: np.ndarray) -> np.ndarray:
        logits = pair_logits(self.state.params, llm, item)
        shift, extra_var = self._without_data_shift(llm, item)
        logits += shift
        extra_var += self._inductive_logit_variance(llm, item)
        result = np.empty(len(llm))
        plain = extra_var == 0
        result[plain] = sigmoid(logits[plain])
        spread = ~plain
        if self.options.fold_in_spread == "empirical":
            # A fitted partner meeting an entity without data: the partner's own logit shape.
            codes = {LLM.kind: llm, ITEM.kind: item}
            for partner in SIDES:
                other = partner.partner
                rows = spread & (codes[partner.kind] < self.state.n_warm(partner)) & (
                    codes[other.kind] >= self.state.n_warm(other))
                if rows.any():
                    result[rows] = self._empirical_expected_sigmoid(
                        partner, codes[partner.kind][rows], codes[other.kind][rows], logits[rows], extra_var[rows])
                    spread &= ~rows
        if spread.any():
            result[spread] = expected_sigmoid(logits[spread], extra_var[spread])
        # Affine in σ, so it applies to the expectations over a logit's spread as to σ itself.
        return with_asymptotes(result, self.state.params, item)

    # entities fitted without data --------------------------------------------------------------
    def _without_data_shift(self, llm: np.ndarray, item: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logit shift and extra variance of pairs with an entity fitted without data (see the module)."""
        state = self.state
        without_llm = (llm >= state.n_warm_llms) & (llm < state.n_fitted_llms)
        without_item = (item >= state.n_warm_items) & (item < state.n_fitted_items)
        shift = np.zeros(len(llm))
        extra_var = np.zeros(len(llm))
        if not (without_llm | without_item).any():
            return shift, extra_var
        moments = self.fold_in_moments
        for mask, warm_key, folded_key, partner in (
            (~without_llm & without_item, "llm_vs_warm", "llm_vs_folded", llm),
            (without_llm & ~without_item, "item_vs_warm", "item_vs_folded", item),
            (without_llm & without_item, "warm_block", "folded_block", np.zeros(len(llm), dtype=int)),
        ):
            if mask.any():
                (warm_mean, warm_var), (folded_mean, folded_var) = moments[warm_key], moments[folded_key]
                shift[mask] = warm_mean[partner[mask]] - folded_mean[partner[mask]]
                extra_var[mask] = np.maximum(warm_var[partner[mask]] - folded_var[partner[mask]], 0.0)
        return shift, extra_var

    @cached_property
    def fold_in_moments(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Logit moments of fitted entities against warm partners and against partners without data."""
        state, seed = self.state, self.options.seed
        warm_llms = population(state.n_warm_llms, LLM, seed)
        warm_items = population(state.n_warm_items, ITEM, seed)
        folded_llms = np.arange(state.n_warm_llms, state.n_fitted_llms)
        folded_items = np.arange(state.n_warm_items, state.n_fitted_items)
        all_warm_llms = np.arange(state.n_warm_llms)
        all_warm_items = np.arange(state.n_warm_items)
        moments: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if len(folded_items):
            moments["llm_vs_warm"] = self._logit_moments(LLM, all_warm_llms, warm_items)
            moments["llm_vs_folded"] = self._logit_moments(LLM, all_warm_llms, folded_items)
        if len(folded_llms):
            moments["item_vs_warm"] = self._logit_moments(ITEM, all_warm_items, warm_llms)
            moments["item_vs_folded"] = self._logit_moments(ITEM, all_warm_items, folded_llms)
        if len(folded_llms) and len(folded_items):
            block = grid_logits(state.params, warm_llms, warm_items)
            folded = grid_logits(state.params, folded_llms[:MAX_POPULATION], folded_items[:MAX_POPULATION])
            moments["warm_block"] = (np.array([block.mean()]), np.array([block.var()]))
            moments["folded_block"] = (np.array([folded.mean()]), np.array([folded.var()]))
        return moments

    def _logit_moments(self, side: Side, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of the logits of each entity ``rows`` of ``side`` across partners ``cols``."""
        means = np.empty(len(rows))
        variances = np.empty(len(rows))
        for start in range(0, len(rows), POPULATION_CHUNK):
            block = rows[start : start + POPULATION_CHUNK]
            logits = side_logits(self.state.params, side, block, cols)
            means[start : start + len(block)] = logits.mean(axis=1)
            variances[start : start + len(block)] = logits.var(axis=1)
        return means, variances

    # the empirical spread ----------------------------------------------------------------------
    def spread_table(self, partner: Side, group: int) -> np.ndarray:
        """``(n_warm partners, Q)`` quantiles of each fitted partner's standardised logits across the
        fitted entities of the other side in ``group`` (-1: all of them); a partner whose logits do
        not vary there gets the normal's quantiles."""
        key = (partner.kind, group)
        if key not in self._spread_tables:
            self._spread_tables[key] = self._build_spread_table(partner, group)
        return self._spread_tables[key]

    def _build_spread_table(self, partner: Side, group: int) -> np.ndarray:
        state, seed, other = self.state, self.options.seed, partner.partner
        n_warm_partner = state.n_warm(partner)
        coded = state.warm_group_codes(other)
        if group < 0 or coded is None:
            members = population(state.n_warm(other), other, seed)
        else:
            members = sample_members(np.flatnonzero(coded[1] == group), seed, other.salt, group)
        table = np.empty((n_warm_partner, len(_SPREAD_LEVELS)))
        for start in range(0, n_warm_partner, POPULATION_CHUNK):
            block = np.arange(start, min(start + POPULATION_CHUNK, n_warm_partner))
            logits = side_logits(state.params, partner, block, members)
            sd = logits.std(axis=1, keepdims=True)
            varies = sd[:, 0] > 1e-9
            standard = (logits - logits.mean(axis=1, keepdims=True)) / np.where(varies[:, None], sd, 1.0)
            table[block] = np.where(varies[:, None], np.quantile(standard, _SPREAD_LEVELS, axis=1).T,
                                    _NORMAL_QUANTILES[None, :])
        return table

    def _empirical_expected_sigmoid(self, partner: Side, partner_codes, other_codes, logits, variance) -> np.ndarray:
        """``E[σ(ℓ + √v · r)]`` per pair, ``r`` from the fitted partner's standardised logit quantiles
        across the fitted entities of the other entity's group (see ``fold_in_spread``)."""
        coded = self.state.warm_group_codes(partner.partner)
        group_of = coded[0][other_codes] if coded is not None else np.full(len(other_codes), -1)
        out = np.empty(len(partner_codes))
        for group in np.unique(group_of):
            rows = np.flatnonzero(group_of == group)
            table = self.spread_table(partner, int(group))
            for start in range(0, len(rows), 65_536):
                chunk = rows[start : start + 65_536]
                spread = np.sqrt(variance[chunk])[:, None] * table[partner_codes[chunk]]
                out[chunk] = sigmoid(logits[chunk, None] + spread).mean(axis=1)
        return out

    # folded-in entities ------------------------------------------------------------------------
    def _inductive_logit_variance(self, llm: np.ndarray, item: np.ndarray) -> np.ndarray:
        """Logit variance of pairs from the Gaussian posteriors of folded-in entities."""
        state = self.state
        variance = np.zeros(len(llm))
        codes = {LLM.kind: llm, ITEM.kind: item}
        covs = {}
        for side in SIDES:
            if side.kind not in state.inductive:
                continue
            mask = codes[side.kind] >= state.n_fitted(side)
            if not mask.any():
                continue
            partner_codes = codes[side.partner.kind][mask]
            partner = state.latent(side.partner)
            partner[:, -1] = 1.0 if self.options.biases else 0.0
            cov = state.inductive[side.kind][1][codes[side.kind][mask] - state.n_fitted(side)]
            covs[side.kind] = (mask, cov)
            variance[mask] += np.einsum("np,npq,nq->n", partner[partner_codes], cov, partner[partner_codes])
        if len(covs) == 2 and state.dim:
            (llm_mask, llm_cov), (item_mask, item_cov) = covs["llm"], covs["item"]
            both = llm_mask & item_mask
            if both.any():
                d = state.dim
                llm_block = np.zeros((len(llm), d, d))
                item_block = np.zeros((len(llm), d, d))
                llm_block[llm_mask] = llm_cov[:, :d, :d]
                item_block[item_mask] = item_cov[:, :d, :d]
                variance[both] += np.einsum("npq,nqp->n", llm_block[both], item_block[both])
        return variance
