"""The SimRMF probabilistic program: one pure NumPyro function, no I/O.

The paper's loss (PAPER.md, "Model")::

    L = Σ_Ω BCE(z_ik, σ(m_i·x_k)) + λ_reg (‖M‖² + ‖X‖²) + λ_X ‖X Xᵀ − √S_X‖² + λ_M ‖M Mᵀ − √S_M‖²

is, up to a constant, the negative log joint density of

* ``llm_factors``  M ~ Normal(0, 1/√(2 λ_reg)) entry-wise, shape ``(n_llms, dim)``;
* ``item_factors`` X ~ Normal(0, 1/√(2 λ_reg)) entry-wise, shape ``(n_items, dim)``;
* ``correct`` z_ik ~ Bernoulli(logits = m_i·x_k + offsets), the BCE term;
* Gaussian potentials ``-λ ‖Gram − √S‖²`` (``numpyro.factor``), the similarity terms
  (added by :mod:`bayes_simrmf.similarity` inputs; absent for MF);
* with ``config.asymptotes``, the likelihood is ``floor + (ceiling − floor) σ(logit)`` with a learned floor and
  ceiling per item group (:func:`_asymptotes`), no longer the paper's BCE.

So MAP (SVI with a delta guide) is the paper's point estimate, and any other guide
gives a posterior.

Offsets. A pure dot product gives an LLM or item with no data a zero vector and so
p = 0.5, worse than predicting the mean (PAPER.md, notes). The paper's MF beats the
mean on new LLMs, which implies a global offset and per-LLM / per-item biases. We
model them explicitly and hierarchically (a learnt population location and scale),
so that an LLM or item never seen is predicted as a draw from the population rather
than as "bias 0"::

    logit_ik = intercept + llm_bias_i + item_bias_k + m_i · x_k
    llm_bias_i  ~ Normal(0, llm_bias_scale),  item_bias_k ~ Normal(μ_g(k), item_bias_scale)

where ``g(k)`` is the item's group (its benchmark) when groups are given (``μ_g`` ~ Normal(0,
``intercept_prior``), one per group), else ``μ = 0``: questions of a benchmark share a typical
difficulty, so an item with few answers is shrunk towards its benchmark, not towards all items.

Two layouts of the observed pairs give the same log density:

* :class:`PairsLayout` gathers the factors of each observed pair (sparse data);
* :class:`DenseLayout` computes the full ``M Xᵀ`` block of the LLMs and items that
  hold data and masks the unobserved cells. On a CPU a masked dense product is
  several times faster than a per-pair gather/scatter once the block is dense
  enough, which the paper's balanced protocol makes it (T/n_items of the block).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from bayes_simrmf.errors import ConfigError
from bayes_simrmf.model.config import ModelConfig
from bayes_simrmf.model.inputs import DenseLayout, PairsLayout, SimilarityInputs
from bayes_simrmf.model.predictor import ceiling_of, effective_logits, grid_logits, pair_logits
from bayes_simrmf.model.sites import (
    INTERCEPT,
    ITEM_BIAS,
    ITEM_BIAS_SCALE,
    ITEM_CEILING,
    ITEM_FACTORS,
    ITEM_FLOOR,
    ITEM_GROUP_FLOOR,
    ITEM_GROUP_MEAN,
    ITEM_GROUP_SLIP,
    LLM_BIAS,
    LLM_BIAS_SCALE,
    LLM_FACTORS,
    OBSERVED,
)
from bayes_simrmf.similarity import gram_mismatch, scaled_gram_mismatch


class _Side(NamedTuple):
    """The plate and site names of one side (LLMs or items)."""

    plate: str
    bias: str
    factors: str
    similarity: str


_LLMS = _Side("llms", LLM_BIAS, LLM_FACTORS, "llm_similarity")
_ITEMS = _Side("items", ITEM_BIAS, ITEM_FACTORS, "item_similarity")


def _similarity_potential(factors, biases, sqrt_sim_factor, factor_fro2, weight, similarity: SimilarityInputs, n_warm: int):
    latent = factors if factors is not None else jnp.zeros((sqrt_sim_factor.shape[0], 0), jnp.float32)
    if similarity.augmented and biases is not None:
        latent = jnp.concatenate([latent, biases[:, None]], axis=1)
    if similarity.cold_only:
        latent = jnp.concatenate([jax.lax.stop_gradient(latent[:n_warm]), latent[n_warm:]], axis=0)
    mismatch = scaled_gram_mismatch if similarity.profile_scale else gram_mismatch
    return -weight * mismatch(latent, sqrt_sim_factor, factor_fro2)


def simrmf_model(
    n_llms: int,
    n_items: int,
    layout: PairsLayout | DenseLayout,
    config: ModelConfig,
    correct: jnp.ndarray | None = None,
    similarity: SimilarityInputs | None = None,
    item_group: jnp.ndarray | None = None,
    likelihood_scale: float | None = None,
) -> None:
    """The SimRMF joint density (MF when ``similarity`` is None).

    Args:
        n_llms: number of LLMs in the model (rows of M).
        n_items: number of items in the model (rows of X).
        layout: where the observed pairs are (see :class:`PairsLayout`, :class:`DenseLayout`).
        config: the model's hyper-parameters.
        correct: observed 0/1 scores, ``(n_pairs,)`` for pairs or the block's shape for
            dense (values under a False mask are ignored). None simulates them.
        similarity: Gram-potential inputs (SimRMF); None for MF.
        item_group: ``(n_items,)`` group code of each item in ``[0, config.n_item_groups)``; required
            when ``config.n_item_groups > 0``.
        likelihood_scale: multiplies the log-likelihood of the observed pairs only: a minibatch of
            ``b`` of ``n`` pairs passes ``n / b`` so that its expectation is the full log-likelihood
            (see :mod:`bayes_simrmf.inference`). Priors and similarity potentials are global terms
            and never scaled. None (the default) leaves the density exactly as above.
    """
    params: dict[str, jnp.ndarray] = {}
    if config.biases:
        params[INTERCEPT] = numpyro.sample(INTERCEPT, dist.Normal(0.0, config.intercept_prior))
    llm_bias_scale, item_bias_scale = _bias_scales(config)
    params |= _entity_latents(_LLMS, n_llms, config, 0.0, llm_bias_scale)
    params |= _entity_latents(_ITEMS, n_items, config, _item_bias_loc(config, item_group), item_bias_scale)
    if similarity is not None:
        _similarity_potentials(params, similarity)
    if config.asymptotes:
        params |= _asymptotes(config, n_items, item_group)
    _likelihood(layout, params, correct, likelihood_scale)


def _bias_scales(config: ModelConfig) -> tuple:
    """The prior sd of the LLM and of the item biases: fixed by the config, or sampled (in that order)
    from their HalfNormal hyper-prior when ``config.bias_scale`` is None; ``(None, None)`` without biases."""
    if not config.biases:
        return None, None
    if config.bias_scale is None:
        llm_bias_scale = numpyro.sample(LLM_BIAS_SCALE, dist.HalfNormal(config.bias_scale_prior))
        item_bias_scale = numpyro.sample(ITEM_BIAS_SCALE, dist.HalfNormal(config.bias_scale_prior))
        return llm_bias_scale, item_bias_scale
    llm_bias_scale = config.bias_scale if config.llm_bias_scale is None else config.llm_bias_scale
    return llm_bias_scale, config.bias_scale


def _item_bias_loc(config: ModelConfig, item_group: jnp.ndarray | None):
    """The prior mean of each item's bias: its group's mean (sampled here) with item groups, else 0."""
    if not (config.biases and config.n_item_groups):
        return 0.0
    if item_group is None:
        raise ConfigError(f"config.n_item_groups={config.n_item_groups} needs item_group codes")
    group_mean = numpyro.sample(
        ITEM_GROUP_MEAN, dist.Normal(jnp.zeros(config.n_item_groups), config.intercept_prior).to_event(1)
    )
    return group_mean[item_group]


def _asymptotes(config: ModelConfig, n_items: int, item_group: jnp.ndarray | None) -> dict[str, jnp.ndarray]:
    """Each item group's guessing floor ~ Beta(2, floor_prior) and slip ~ Beta(2, slip_prior) (one group for all
    items without groups), as every item's floor and ``ceiling = 1 − (1 − floor)·slip``."""
    n_groups = config.n_item_groups or 1
    codes = item_group if config.n_item_groups else jnp.zeros(n_items, jnp.int32)
    if codes is None:
        raise ConfigError(f"config.n_item_groups={config.n_item_groups} needs item_group codes")
    floor, slip = (
        jnp.asarray(numpyro.sample(site, dist.Beta(jnp.full(n_groups, 2.0), prior).to_event(1)) if fixed is None
                    else fixed, jnp.float32)  # asarray: a site given an initial value may hand back numpy
        for site, prior, fixed in ((ITEM_GROUP_FLOOR, config.floor_prior, config.fixed_floor),
                                   (ITEM_GROUP_SLIP, config.slip_prior, config.fixed_slip))
    )
    return {ITEM_FLOOR: floor[codes], ITEM_CEILING: ceiling_of(floor[codes], slip[codes])}


def _entity_latents(side: _Side, size: int, config: ModelConfig, bias_loc, bias_scale) -> dict[str, jnp.ndarray]:
    """One side's biases ~ Normal(``bias_loc``, ``bias_scale``) and factor rows, sampled in its plate."""
    latents: dict[str, jnp.ndarray] = {}
    with numpyro.plate(side.plate, size, dim=-1):
        if config.biases:
            latents[side.bias] = numpyro.sample(side.bias, dist.Normal(bias_loc, bias_scale))
        if config.dim:
            latents[side.factors] = numpyro.sample(
                side.factors, dist.Normal(jnp.zeros(config.dim), config.factor_prior_sd).to_event(1)
            )
    return latents


def _similarity_potentials(params: dict[str, jnp.ndarray], similarity: SimilarityInputs) -> None:
    """The Gram potentials ``item_similarity`` and ``llm_similarity``, each where its factor is given."""
    sides = (
        (_ITEMS, similarity.items_factor, similarity.items_factor_fro2, similarity.items_weight, similarity.n_warm_items),
        (_LLMS, similarity.llms_factor, similarity.llms_factor_fro2, similarity.llms_weight, similarity.n_warm_llms),
    )
    for side, sqrt_sim_factor, factor_fro2, weight, n_warm in sides:
        if sqrt_sim_factor is not None:
            potential = _similarity_potential(params.get(side.factors), params.get(side.bias), sqrt_sim_factor,
                                              factor_fro2, weight, similarity, n_warm)
            numpyro.factor(side.similarity, potential)


def _likelihood(
    layout: PairsLayout | DenseLayout, params: dict[str, jnp.ndarray], correct: jnp.ndarray | None,
    likelihood_scale: float | None,
) -> None:
    """The Bernoulli site of the observed scores, on the masked dense block or on the pairs."""
    if isinstance(layout, DenseLayout):
        if likelihood_scale is not None:
            raise ConfigError("likelihood_scale (minibatches) needs a PairsLayout; got a DenseLayout")
        n_block_llms, n_block_items = layout.mask.shape
        logits = grid_logits(params, slice(0, n_block_llms), slice(0, n_block_items), xp=jnp)
        if ITEM_FLOOR in params:
            block = slice(0, n_block_items)
            logits = effective_logits(logits, params[ITEM_FLOOR][block], params[ITEM_CEILING][block], xp=jnp)
        with numpyro.plate("block_llms", n_block_llms, dim=-2), numpyro.plate("block_items", n_block_items, dim=-1):
            numpyro.sample(OBSERVED, dist.Bernoulli(logits=logits).mask(layout.mask), obs=correct)
    else:
        logits = pair_logits(params, layout.llm, layout.item, xp=jnp)
        if ITEM_FLOOR in params:
            logits = effective_logits(logits, params[ITEM_FLOOR][layout.item], params[ITEM_CEILING][layout.item], xp=jnp)
        with numpyro.plate("pairs", logits.shape[0], dim=-1):
            if likelihood_scale is None:
                numpyro.sample(OBSERVED, dist.Bernoulli(logits=logits), obs=correct)
            else:
                with numpyro.handlers.scale(scale=likelihood_scale):
                    numpyro.sample(OBSERVED, dist.Bernoulli(logits=logits), obs=correct)
