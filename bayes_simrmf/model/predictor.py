"""The linear predictor, written once.

    logit(p_ik) = intercept + llm_bias_i + item_bias_k + m_i · x_k

Every place that turns parameters into success probabilities goes through this module: the
NumPyro program (JAX, observed pairs or a dense block), point predictions and population
averages (numpy, a grid of LLMs × items), posterior draws and routing (numpy, a leading draw
axis). Changing the likelihood's link or adding a term means changing these functions only.

``params`` maps site names (:mod:`bayes_simrmf.model.sites`) to arrays, all with the same leading
axes (none for a point estimate, ``(n_draws,)`` for draws): ``intercept`` ``(*lead,)``,
``llm_bias`` ``(*lead, n_llms)``, ``item_bias`` ``(*lead, n_items)``, ``llm_factors``
``(*lead, n_llms, d)``, ``item_factors`` ``(*lead, n_items, d)``. A site that is absent (a model
without biases, or with ``dim=0``) contributes nothing.

Asymptotes (``ModelConfig.asymptotes``): ``item_floor`` / ``item_ceiling`` ``(*lead, n_items)`` map σ of the
logit to ``p = floor + (ceiling − floor) σ(logit)``. The logits above stay the linear predictor's; the map is
affine in σ, so an expectation of σ over a logit's spread maps the same way (:func:`with_asymptotes`), and the
likelihood reads :func:`effective_logits` (the log-odds of ``p``). Every σ of a logit that becomes a probability of
a pair goes through :func:`pair_probabilities`, :func:`grid_probabilities` or :func:`with_asymptotes`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.special import expit

from bayes_simrmf.model.sites import (
    INTERCEPT,
    ITEM_BIAS,
    ITEM_CEILING,
    ITEM_FACTORS,
    ITEM_FLOOR,
    ITEM_GROUP_FLOOR,
    ITEM_GROUP_SLIP,
    LLM_BIAS,
    LLM_FACTORS,
)

Index = Any  # an int array of rows, or a slice


def _lead_shape(params: Mapping) -> tuple[int, ...]:
    """The leading (draw) axes shared by the sites, read off the per-entity sites first."""
    for name, trailing in ((LLM_BIAS, 1), (ITEM_BIAS, 1), (LLM_FACTORS, 2), (ITEM_FACTORS, 2), (INTERCEPT, 0)):
        if name in params:
            shape = tuple(np.shape(params[name]))
            return shape[: len(shape) - trailing]
    raise ValueError("params holds none of the linear predictor's sites")


def _intercept(params: Mapping, lead: tuple[int, ...], n_trailing: int, xp):
    """The intercept shaped to broadcast against ``(*lead, *trailing)`` (a draw axis may arrive as ``(n, 1)``)."""
    return xp.reshape(xp.asarray(params[INTERCEPT]), lead + (1,) * n_trailing)


def _has_factors(params: Mapping) -> bool:
    return LLM_FACTORS in params and ITEM_FACTORS in params


def pair_logits(params: Mapping, llm: Index, item: Index, *, xp=np, dtype=None):
    """Logits of the pairs ``(llm[p], item[p])``: ``(*lead, n_pairs)``.

    Args:
        params: site → array (see the module docstring); numpy or JAX arrays.
        llm, item: ``(n_pairs,)`` int rows of each pair into the LLM / item axes of ``params``.
        xp: the array namespace, ``numpy`` (default) or ``jax.numpy``.
        dtype: of the result; float64 for numpy, float32 for JAX by default.

    In numpy the latent term is summed one coordinate at a time, so no ``(*lead, n_pairs, d)``
    temporary is built (posterior draws × many pairs).
    """
    dtype = dtype or (np.float64 if xp is np else xp.float32)
    lead = _lead_shape(params)
    logits = xp.zeros(lead + (len(llm),), dtype=dtype)
    if _has_factors(params):
        llm_factors, item_factors = params[LLM_FACTORS], params[ITEM_FACTORS]
        if xp is np:
            for k in range(llm_factors.shape[-1]):
                logits += llm_factors[..., llm, k] * item_factors[..., item, k]
        else:
            logits = logits + xp.sum(llm_factors[..., llm, :] * item_factors[..., item, :], axis=-1)
    if INTERCEPT in params:
        logits = logits + _intercept(params, lead, 1, xp)
    if LLM_BIAS in params:
        logits = logits + params[LLM_BIAS][..., llm]
    if ITEM_BIAS in params:
        logits = logits + params[ITEM_BIAS][..., item]
    return logits


def grid_logits(params: Mapping, llm: Index, item: Index, *, xp=np, dtype=None):
    """Logits of every LLM in ``llm`` against every item in ``item``: ``(*lead, n_llm, n_item)``.

    Args:
        params: site → array (see the module docstring); numpy or JAX arrays.
        llm, item: rows (int arrays) or slices of the LLM / item axes.
        xp, dtype: as in :func:`pair_logits`.
    """
    dtype = dtype or (np.float64 if xp is np else xp.float32)
    lead = _lead_shape(params)
    if _has_factors(params):
        llm_factors, item_factors = params[LLM_FACTORS][..., llm, :], params[ITEM_FACTORS][..., item, :]
        logits = xp.matmul(llm_factors, xp.swapaxes(item_factors, -1, -2)).astype(dtype)
    else:
        n_llm = _count(params, LLM_BIAS, llm)
        n_item = _count(params, ITEM_BIAS, item)
        logits = xp.zeros(lead + (n_llm, n_item), dtype=dtype)
    if INTERCEPT in params:
        logits = logits + _intercept(params, lead, 2, xp)
    if LLM_BIAS in params:
        logits = logits + params[LLM_BIAS][..., llm, None]
    if ITEM_BIAS in params:
        logits = logits + params[ITEM_BIAS][..., None, item]
    return logits


def _count(params: Mapping, site: str, rows: Index) -> int:
    if isinstance(rows, slice):
        return len(range(*rows.indices(np.shape(params[site])[-1])))
    return len(rows)


def sigmoid(logits):
    """σ(logits) without overflow for any |logit| (numpy; the dtype of the input is kept for floats)."""
    return expit(logits)


# Gauss-Hermite nodes for E[σ(Normal(mean, var))]; 32 nodes are exact to float32 here.
_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite.hermgauss(32)


def expected_sigmoid(mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """``E[σ(u)]`` for ``u ~ Normal(mean, var)``, elementwise (Gauss-Hermite quadrature)."""
    mean = np.asarray(mean, dtype=np.float64)[..., None]
    sd = np.sqrt(np.maximum(np.asarray(var, dtype=np.float64), 0.0))[..., None]
    values = sigmoid(mean + np.sqrt(2.0) * sd * _GH_NODES)
    return (values @ _GH_WEIGHTS) / np.sqrt(np.pi)


# asymptotes -----------------------------------------------------------------------------------------------------
def has_asymptotes(params: Mapping) -> bool:
    return ITEM_FLOOR in params


def with_asymptotes(prob, params: Mapping, item: Index, *, grid: bool = False, xp=np):
    """``floor + (ceiling − floor) · prob`` for items ``item`` (``prob`` of pairs ``(*lead, n_pairs)``, or with
    ``grid`` of a grid ``(*lead, n_llm, n_item)``); ``prob`` itself without asymptotes. ``prob`` may be σ of a
    logit or its expectation over the logit's spread: the map is affine."""
    if not has_asymptotes(params):
        return prob
    floor, ceiling = params[ITEM_FLOOR][..., item], params[ITEM_CEILING][..., item]
    if grid:
        floor, ceiling = floor[..., None, :], ceiling[..., None, :]
    return floor + (ceiling - floor) * prob


def item_asymptotes(params: Mapping, group_codes: np.ndarray) -> dict[str, np.ndarray]:
    """``{item_floor, item_ceiling}`` float32 of items whose groups are ``group_codes`` (into the groups of
    ``params``' ``item_group_floor`` / ``item_group_slip``; −1, a group the model has no floor for, takes the mean
    over the groups)."""
    floor, slip = (np.asarray(params[name], np.float64) for name in (ITEM_GROUP_FLOOR, ITEM_GROUP_SLIP))
    ceiling = ceiling_of(floor, slip)
    codes = np.asarray(group_codes, int)
    known = codes >= 0
    rows = np.where(known, codes, 0)
    return {ITEM_FLOOR: np.where(known, floor[rows], floor.mean()).astype(np.float32),
            ITEM_CEILING: np.where(known, ceiling[rows], ceiling.mean()).astype(np.float32)}


def ceiling_of(floor, slip):
    """The ceiling of a group whose floor is ``floor`` and whose slip (the share of the range above the floor a
    perfect LLM still misses) is ``slip`` (numpy or JAX)."""
    return 1.0 - (1.0 - floor) * slip


def asymptotic_terms(logits: np.ndarray, floor: np.ndarray, ceiling: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(p, dp/dℓ, Fisher information)`` of ``p = floor + (ceiling − floor) σ(ℓ)`` per answer."""
    sig = sigmoid(logits)
    prob = floor + (ceiling - floor) * sig
    slope = (ceiling - floor) * sig * (1.0 - sig)
    return prob, slope, slope**2 / np.maximum(prob * (1.0 - prob), 1e-300)


def effective_logits(logits, floor, ceiling, *, xp=np):
    """The log-odds of ``floor + (ceiling − floor) σ(logits)``, computed in logs (no cancellation at any logit;
    ``floor`` 0 and ``ceiling`` 1 give ``logits`` back)."""
    log_sig, log_sig_neg = -xp.logaddexp(0.0, -logits), -xp.logaddexp(0.0, logits)
    if xp is np:
        with np.errstate(divide="ignore"):
            log_floor, log_gap, log_top = np.log(floor), np.log(ceiling - floor), np.log1p(-ceiling)
    else:
        log_floor, log_gap, log_top = xp.log(floor), xp.log(ceiling - floor), xp.log1p(-ceiling)
    return xp.logaddexp(log_floor, log_gap + log_sig) - xp.logaddexp(log_top, log_gap + log_sig_neg)


def pair_effective_logits(params: Mapping, llm: Index, item: Index) -> np.ndarray:
    """Log-odds of the pairs' success probabilities (:func:`pair_logits`, through the asymptotes where the model
    has them): what a log-likelihood reads."""
    logits = pair_logits(params, llm, item)
    if not has_asymptotes(params):
        return logits
    return effective_logits(logits, params[ITEM_FLOOR][..., item], params[ITEM_CEILING][..., item])


def pair_probabilities(params: Mapping, llm: Index, item: Index) -> np.ndarray:
    """Success probabilities of the pairs ``(llm[p], item[p])`` at ``params``: ``(*lead, n_pairs)`` (numpy)."""
    return with_asymptotes(sigmoid(pair_logits(params, llm, item)), params, item)


def grid_probabilities(params: Mapping, llm: Index, item: Index) -> np.ndarray:
    """Success probabilities of every LLM in ``llm`` against every item in ``item``: ``(*lead, n_llm, n_item)``."""
    return with_asymptotes(sigmoid(grid_logits(params, llm, item)), params, item, grid=True)
