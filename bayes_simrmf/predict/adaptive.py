"""Adaptive testing: which questions to ask a new LLM next, to learn its benchmark accuracies fastest.

A folded-in LLM has a Gaussian posterior ``z ~ N(μ, Σ)`` over its latent row ``[factors, bias]``
(:meth:`~bayes_simrmf.predict.SimRMF.fold_in`). Its expected accuracy on benchmark ``b`` is
``a_b(z) = mean_{j ∈ b} σ(x_j · z + o_j)`` over the benchmark's questions ``j`` (``x_j``: the question's
design row ``[factors, 1]``, ``o_j``: intercept plus the question's bias). Linearised at the
posterior mean, ``Var a_b ≈ g_bᵀ Σ g_b`` with ``g_b = mean_{j ∈ b} σ'(ℓ_j) x_j``.

Answering question ``q`` adds ``w_q x_q x_qᵀ`` to the posterior precision (the curvature the fold-in's
Laplace approximation gives it: ``w_q = σ'(ℓ_q) / τ``, τ the fold-in temperature), whatever the answer
turns out to be. By Sherman–Morrison the variance of ``a_b`` then falls by

    Δ_b(q) = w_q (g_bᵀ Σ x_q)² / (1 + w_q x_qᵀ Σ x_q),

so the criterion, the expected reduction of ``Σ_b Var a_b`` (every benchmark counts the same), can be
computed before the answer is known. :func:`next_questions` picks ``k`` questions greedily: the best
one, then ``Σ`` updated as if it had been answered, then the next. Questions that tell the model
most about the LLM's accuracy are those whose outcome is uncertain (``σ'`` large), whose factors
point where the posterior is wide, and that resemble many questions of the benchmarks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_simrmf.errors import ConfigError, UnknownEntityError
from bayes_simrmf.model import ITEM_CEILING, ITEM_FLOOR
from bayes_simrmf.model.predictor import asymptotic_terms, has_asymptotes, sigmoid, with_asymptotes
from bayes_simrmf.predict.fold_in import partner_design
from bayes_simrmf.predict.sides import ITEM
from bayes_simrmf.predict.state import FittedState


def llm_posterior(state: FittedState, llm: str) -> tuple[np.ndarray, np.ndarray]:
    """``(mean (p,), cov (p, p))`` of a folded-in LLM's latent row; refuses an LLM without one."""
    codes = pd.Index(state.llms).get_indexer([llm])
    if codes[0] < 0:
        raise UnknownEntityError(f"LLM {llm!r} is not in the model; fold it in first (metadata and/or answers)")
    offset = codes[0] - state.n_fitted_llms
    if offset < 0 or "llm" not in state.inductive:
        raise ConfigError(
            f"LLM {llm!r} was fitted with the model, so it has no fold-in posterior to sharpen; adaptive testing is "
            "for an LLM folded in after the fit"
        )
    mean, cov = state.inductive["llm"]
    return mean[offset], cov[offset]


def accuracy_gradients(state: FittedState, mean: np.ndarray, biases: bool, item_codes: np.ndarray,
                       group_codes: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Design rows ``x (n, p)``, curvatures (the Fisher information of one answer per unit logit², ``σ'(ℓ)`` for
    the logistic likelihood) ``(n,)`` of the items ``item_codes``, and the gradients ``g (n_groups, p)`` of each
    group's mean accuracy at the posterior mean. With asymptotes, the slope of a success probability is
    ``(ceiling − floor) σ'(ℓ)`` and an answer's information that squared over ``p (1 − p)``."""
    design, offsets = partner_design(state, ITEM, biases)
    x = design[item_codes]
    logits = x @ mean + offsets[item_codes]
    if has_asymptotes(state.params):
        floor, ceiling = (state.params[name][item_codes].astype(np.float64) for name in (ITEM_FLOOR, ITEM_CEILING))
        _, slope, curvature = asymptotic_terms(logits, floor, ceiling)
    else:
        prob = sigmoid(logits)
        slope = curvature = prob * (1.0 - prob)
    counts = np.bincount(group_codes, minlength=n_groups).astype(np.float64)
    gradients = np.zeros((n_groups, x.shape[1]))
    np.add.at(gradients, group_codes, slope[:, None] * x)
    return x, curvature, gradients / np.maximum(counts, 1.0)[:, None]


def greedy_selection(cov: np.ndarray, gradients: np.ndarray, x: np.ndarray, weights: np.ndarray, k: int,
                     allowed: np.ndarray) -> tuple[list[int], list[float], np.ndarray]:
    """Pick ``k`` rows of ``x`` among ``allowed`` one at a time, each maximising the reduction of
    ``Σ_b g_bᵀ Σ g_b`` (``weights``: the curvature ``w_q`` of each row), updating ``Σ`` after each pick.

    Returns ``(picked rows, reduction at each pick, Σ after the picks)``.
    """
    cov = cov.copy()
    allowed = allowed.copy()
    picked, gains = [], []
    for _ in range(min(k, int(allowed.sum()))):
        spread = x @ cov  # (n, p): Σ x_q per row
        own = np.einsum("np,np->n", spread, x)
        shared = gradients @ spread.T  # (n_groups, n): g_bᵀ Σ x_q
        gain = weights * np.sum(shared**2, axis=0) / (1.0 + weights * own)
        gain[~allowed] = -np.inf
        best = int(np.argmax(gain))
        picked.append(best)
        gains.append(float(gain[best]))
        allowed[best] = False
        cov = cov - weights[best] * np.outer(spread[best], spread[best]) / (1.0 + weights[best] * own[best])
    return picked, gains, cov


def next_questions(
    model,
    llm: str,
    k: int,
    *,
    answered=(),
    item_groups=None,
    temperature: float = 1.0,
) -> pd.DataFrame:
    """The ``k`` questions to ask the folded-in LLM ``llm`` next (see the module docstring).

    Args:
        model: a fitted :class:`~bayes_simrmf.predict.SimRMF` holding ``llm`` as a folded-in entity
            (``model.fold_in("llm", [llm], answers=..., side=...)``).
        k: how many questions, >= 1.
        answered: ids of questions the LLM has already answered (never proposed again).
        item_groups: mapping item id → benchmark, added to the model's item groups (questions without
            a group form one group). Only the model's fitted questions are candidates and targets.
        temperature: the τ the answers will be folded in with (it scales their curvature).
    Returns:
        one row per proposed question, in the order picked: ``item``, ``benchmark``, ``prob`` (the
        predicted probability of a correct answer), ``variance_reduction`` (of the summed variance of
        the benchmark accuracies, at its pick) and ``sd_after`` (the square root of the summed
        variance left after the picks so far).
    """
    if not (isinstance(k, (int, np.integer)) and k >= 1):
        raise ConfigError(f"k must be a whole number >= 1, got {k!r}")
    if not (np.isfinite(temperature) and temperature > 0):
        raise ConfigError(f"temperature must be a finite number > 0, got {temperature!r}")
    state = model._state()
    mean, cov = llm_posterior(state, llm)
    items = state.items[: state.n_fitted_items]
    labels = state.item_groups.updated(item_groups, "item_groups").labels_of(items)
    group_codes, group_names = pd.factorize(pd.Series(labels, dtype=str), sort=True)
    x, curvature, gradients = accuracy_gradients(state, mean, bool(model.biases), np.arange(len(items)),
                                                 group_codes, len(group_names))
    allowed = ~pd.Index(items).isin(pd.Index(np.asarray(list(answered), dtype=str)))
    picked, gains, _ = greedy_selection(cov, gradients, x, curvature / temperature, int(k), allowed)
    total = float(np.einsum("bp,pq,bq->", gradients, cov, gradients))
    left = total - np.cumsum(gains)
    design, offsets = partner_design(state, ITEM, bool(model.biases))
    return pd.DataFrame({
        "item": items[picked],
        "benchmark": np.asarray(group_names)[group_codes[picked]],
        "prob": with_asymptotes(sigmoid(design[picked] @ mean + offsets[picked]), state.params, np.asarray(picked, int)),
        "variance_reduction": gains,
        "sd_after": np.sqrt(np.maximum(left, 0.0)),
    })
