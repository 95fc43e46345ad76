"""The SimRMF probabilistic program: one pure NumPyro function, no I/O.

The paper's loss (PAPER.md, "Model")::

    L = Σ_Ω BCE(z_ik, σ(m_i·x_k)) + λ_reg (‖M‖² + ‖X‖²) + λ_X ‖X Xᵀ − √S_X‖² + λ_M ‖M Mᵀ − √S_M‖²

is, up to a constant, the negative log joint density of

* ``llm_factors``  M ~ Normal(0, 1/√(2 λ_reg)) entry-wise, shape ``(n_llms, dim)``;
* ``item_factors`` X ~ Normal(0, 1/√(2 λ_reg)) entry-wise, shape ``(n_items, dim)``;
* ``correct`` z_ik ~ Bernoulli(logits = m_i·x_k + offsets), the BCE term;
* Gaussian potentials ``-λ ‖Gram − √S‖²`` (``numpyro.factor``), the similarity terms
  (added by :mod:`bayes_simrmf.similarity` inputs; absent for MF).

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

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from bayes_simrmf.errors import ConfigError
from bayes_simrmf.similarity import gram_fro2, gram_mismatch, scaled_gram_mismatch

#: Sites of the model, by role; used by inference, prediction and the ArviZ export.
LLM_FACTORS = "llm_factors"
ITEM_FACTORS = "item_factors"
LLM_BIAS = "llm_bias"
ITEM_BIAS = "item_bias"
INTERCEPT = "intercept"
LLM_BIAS_SCALE = "llm_bias_scale"
ITEM_BIAS_SCALE = "item_bias_scale"
ITEM_GROUP_MEAN = "item_group_mean"
OBSERVED = "correct"


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of the probabilistic model (not of inference).

    Attributes:
        dim: latent dimension d of ``m_i`` and ``x_k``.
        lambda_reg: the paper's L2 weight; prior sd of each factor entry is ``1/√(2 λ_reg)``.
        biases: include the intercept and hierarchical per-LLM / per-item biases.
        bias_scale: sd of the Normal prior on every bias (logit units), or None to learn one
            scale per side (hierarchical, HalfNormal(``bias_scale_prior``) hyper-prior). Learnt
            scales suit posterior guides; under MAP (delta guide) they collapse towards 0,
            since the joint density grows without bound as a scale and its biases shrink
            together, so the delta guide uses a fixed scale.
        llm_bias_scale: sd of the LLM biases' prior where it should differ from the items' (LLMs
            with few answers each need more shrinkage than items with many), or None for
            ``bias_scale`` on both sides; needs a fixed ``bias_scale``.
        bias_scale_prior: sd of the HalfNormal hyper-prior of a learnt bias scale (logit units).
        intercept_prior: sd of the Normal prior on the intercept (logit units).
        n_item_groups: number of item groups (benchmarks) with their own mean item bias; 0 for none.
    """

    dim: int = 8
    lambda_reg: float = 1.0
    biases: bool = True
    bias_scale: float | None = 2.0
    bias_scale_prior: float = 2.0
    llm_bias_scale: float | None = None
    intercept_prior: float = 3.0
    n_item_groups: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.dim, (int, np.integer)) or self.dim < 0:
            raise ConfigError(f"dim must be a non-negative integer, got {self.dim!r}")
        for name in ("lambda_reg", "bias_scale_prior", "intercept_prior"):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise ConfigError(f"{name} must be a positive finite number, got {value!r}")
        if self.bias_scale is not None and not (np.isfinite(self.bias_scale) and self.bias_scale > 0):
            raise ConfigError(f"bias_scale must be a positive finite number or None, got {self.bias_scale!r}")
        if self.llm_bias_scale is not None:
            if self.bias_scale is None:
                raise ConfigError("llm_bias_scale sets the LLM side of a fixed bias_scale; with bias_scale=None "
                                  "both scales are learnt, so leave llm_bias_scale at None")
            if not (np.isfinite(self.llm_bias_scale) and self.llm_bias_scale > 0):
                raise ConfigError(f"llm_bias_scale must be a positive finite number or None, got {self.llm_bias_scale!r}")
        if not isinstance(self.n_item_groups, (int, np.integer)) or self.n_item_groups < 0:
            raise ConfigError(f"n_item_groups must be a non-negative integer, got {self.n_item_groups!r}")
        if self.n_item_groups and not self.biases:
            raise ConfigError("item groups set the mean of the item biases; they need biases=True")
        if self.dim == 0 and not self.biases:
            raise ConfigError("dim=0 with biases=False leaves the model with no parameters")

    @property
    def factor_prior_sd(self) -> float:
        """Prior sd of one factor entry, ``1/√(2 λ_reg)``: the Bayesian reading of the L2 term."""
        return float(1.0 / np.sqrt(2.0 * self.lambda_reg))


class PairsLayout(NamedTuple):
    """Observed pairs as index arrays (any sparsity).

    Attributes:
        llm: ``(n_pairs,)`` int32 index into the model's LLMs.
        item: ``(n_pairs,)`` int32 index into the model's items.
    """

    llm: jnp.ndarray
    item: jnp.ndarray


class DenseLayout(NamedTuple):
    """Observed pairs as a mask over the leading ``(n_block_llms, n_block_items)`` block.

    The model orders LLMs and items with those holding data first, so the block is
    ``[:n_block_llms, :n_block_items]`` of ``M Xᵀ``.

    Attributes:
        mask: ``(n_block_llms, n_block_items)`` bool, True where a pair is observed.
    """

    mask: jnp.ndarray


@dataclass(frozen=True)
class SimilarityInputs:
    """Low-rank square-root similarity factors for the Gram potentials (SimRMF).

    ``√S_items = items_factor @ items_factorᵀ`` (rows in the model's item order); the item
    potential is ``-items_weight * ‖F Fᵀ − s·√S_items‖²_F``, computed without an items × items
    matrix. Either side may be None (no potential on that side; weights are traced values,
    so a side is switched off by its factor being None, not by a zero weight).

    Attributes:
        items_factor, llms_factor: ``(n_items, r)`` / ``(n_llms, k)`` factors, or None.
        items_weight, llms_weight: the paper's λ_X and λ_M (potential precisions / 2).
        augmented: F is ``[factors, bias]`` (the similarity also informs difficulty and
            ability, so a new item's bias is predicted from similar items); else the factors only.
        profile_scale: profile out the similarity's scale ``s`` (see
            :func:`bayes_simrmf.similarity.scaled_gram_mismatch`); False fixes ``s = 1`` (the paper).
        cold_only: the potential moves only entities without data (index ≥ ``n_warm_*``): the
            rows of entities with data enter it as constants (a "cut": their vectors are learnt
            from their answers alone, and cold vectors are folded in from the similarity to
            them). False is the paper's joint potential.
        n_warm_items, n_warm_llms: entities with data (the leading rows).
    """

    items_factor: jnp.ndarray | None = None
    llms_factor: jnp.ndarray | None = None
    items_weight: float = 0.0
    llms_weight: float = 0.0
    augmented: bool = True
    profile_scale: bool = True
    cold_only: bool = False
    n_warm_items: int = 0
    n_warm_llms: int = 0
    items_factor_fro2: jnp.ndarray | None = None
    llms_factor_fro2: jnp.ndarray | None = None

    @classmethod
    def build(cls, items_factor=None, llms_factor=None, **options) -> "SimilarityInputs":
        """Like the constructor, with the constants ``‖WᵀW‖²_F`` precomputed (about 2/3 of the
        potential's cost per step when recomputed)."""
        return cls(
            items_factor=items_factor,
            llms_factor=llms_factor,
            items_factor_fro2=None if items_factor is None else jnp.asarray(gram_fro2(items_factor), jnp.float32),
            llms_factor_fro2=None if llms_factor is None else jnp.asarray(gram_fro2(llms_factor), jnp.float32),
            **options,
        )


# A pytree, so the factors travel into jit-compiled steps as arguments: closed over as
# constants, XLA would try to constant-fold products of them and compile for minutes.
jax.tree_util.register_dataclass(
    SimilarityInputs,
    data_fields=["items_factor", "llms_factor", "items_weight", "llms_weight", "items_factor_fro2", "llms_factor_fro2"],
    meta_fields=["augmented", "profile_scale", "cold_only", "n_warm_items", "n_warm_llms"],
)


def _similarity_potential(factors, biases, sqrt_sim_factor, factor_fro2, weight, similarity: SimilarityInputs, n_warm: int):
    latent = factors if factors is not None else jnp.zeros((sqrt_sim_factor.shape[0], 0), jnp.float32)
    if similarity.augmented and biases is not None:
        latent = jnp.concatenate([latent, biases[:, None]], axis=1)
    if similarity.cold_only:
        latent = jnp.concatenate([jax.lax.stop_gradient(latent[:n_warm]), latent[n_warm:]], axis=0)
    mismatch = scaled_gram_mismatch if similarity.profile_scale else gram_mismatch
    return -weight * mismatch(latent, sqrt_sim_factor, factor_fro2)


def logits_for_pairs(params: dict, llm: jnp.ndarray, item: jnp.ndarray, biases: bool) -> jnp.ndarray:
    """Logits ``(n_pairs,)`` of given pairs from a dict of (point) parameter values."""
    logits = jnp.zeros(llm.shape, dtype=jnp.float32)
    if LLM_FACTORS in params:
        logits = logits + jnp.sum(params[LLM_FACTORS][llm] * params[ITEM_FACTORS][item], axis=-1)
    if biases:
        logits = logits + params[INTERCEPT] + params[LLM_BIAS][llm] + params[ITEM_BIAS][item]
    return logits


def pair_logits_draws(draws: dict, llm: np.ndarray, item: np.ndarray) -> np.ndarray:
    """:func:`logits_for_pairs` for parameter draws with a leading draw axis (numpy).

    Args:
        draws: site name → ``(n_draws, *shape)``; sites the model lacks are absent.
        llm, item: ``(n_pairs,)`` int rows of each pair.
    Returns:
        ``(n_draws, n_pairs)`` float64 logits, summed one latent coordinate at a time (no
        ``(n_draws, n_pairs, d)`` array).
    """
    n_draws = len(next(iter(draws.values())))
    logits = np.zeros((n_draws, len(llm)), dtype=np.float64)
    if INTERCEPT in draws:
        logits += np.asarray(draws[INTERCEPT], dtype=np.float64).reshape(n_draws, 1)
    if LLM_BIAS in draws:
        logits += draws[LLM_BIAS][:, llm]
    if ITEM_BIAS in draws:
        logits += draws[ITEM_BIAS][:, item]
    if LLM_FACTORS in draws and ITEM_FACTORS in draws:
        for k in range(draws[LLM_FACTORS].shape[-1]):
            logits += draws[LLM_FACTORS][:, llm, k] * draws[ITEM_FACTORS][:, item, k]
    return logits


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
    factor_sd = config.factor_prior_sd
    params: dict[str, jnp.ndarray] = {}
    if config.biases:
        params[INTERCEPT] = numpyro.sample(INTERCEPT, dist.Normal(0.0, config.intercept_prior))
        if config.bias_scale is None:
            llm_bias_scale = numpyro.sample(LLM_BIAS_SCALE, dist.HalfNormal(config.bias_scale_prior))
            item_bias_scale = numpyro.sample(ITEM_BIAS_SCALE, dist.HalfNormal(config.bias_scale_prior))
        else:
            item_bias_scale = config.bias_scale
            llm_bias_scale = config.bias_scale if config.llm_bias_scale is None else config.llm_bias_scale
    with numpyro.plate("llms", n_llms, dim=-1):
        if config.biases:
            params[LLM_BIAS] = numpyro.sample(LLM_BIAS, dist.Normal(0.0, llm_bias_scale))
        if config.dim:
            params[LLM_FACTORS] = numpyro.sample(
                LLM_FACTORS, dist.Normal(jnp.zeros(config.dim), factor_sd).to_event(1)
            )
    item_bias_loc = 0.0
    if config.biases and config.n_item_groups:
        if item_group is None:
            raise ConfigError(f"config.n_item_groups={config.n_item_groups} needs item_group codes")
        group_mean = numpyro.sample(
            ITEM_GROUP_MEAN, dist.Normal(jnp.zeros(config.n_item_groups), config.intercept_prior).to_event(1)
        )
        item_bias_loc = group_mean[item_group]
    with numpyro.plate("items", n_items, dim=-1):
        if config.biases:
            params[ITEM_BIAS] = numpyro.sample(ITEM_BIAS, dist.Normal(item_bias_loc, item_bias_scale))
        if config.dim:
            params[ITEM_FACTORS] = numpyro.sample(
                ITEM_FACTORS, dist.Normal(jnp.zeros(config.dim), factor_sd).to_event(1)
            )

    if similarity is not None:
        if similarity.items_factor is not None:
            numpyro.factor(
                "item_similarity",
                _similarity_potential(params.get(ITEM_FACTORS), params.get(ITEM_BIAS), similarity.items_factor,
                                      similarity.items_factor_fro2,
                                      similarity.items_weight, similarity, similarity.n_warm_items),
            )
        if similarity.llms_factor is not None:
            numpyro.factor(
                "llm_similarity",
                _similarity_potential(params.get(LLM_FACTORS), params.get(LLM_BIAS), similarity.llms_factor,
                                      similarity.llms_factor_fro2,
                                      similarity.llms_weight, similarity, similarity.n_warm_llms),
            )

    if isinstance(layout, DenseLayout):
        if likelihood_scale is not None:
            raise ConfigError("likelihood_scale (minibatches) needs a PairsLayout; got a DenseLayout")
        n_block_llms, n_block_items = layout.mask.shape
        logits = jnp.zeros((n_block_llms, n_block_items), dtype=jnp.float32)
        if config.dim:
            logits = logits + params[LLM_FACTORS][:n_block_llms] @ params[ITEM_FACTORS][:n_block_items].T
        if config.biases:
            logits = (
                logits
                + params[INTERCEPT]
                + params[LLM_BIAS][:n_block_llms, None]
                + params[ITEM_BIAS][None, :n_block_items]
            )
        with numpyro.plate("block_llms", n_block_llms, dim=-2), numpyro.plate("block_items", n_block_items, dim=-1):
            numpyro.sample(OBSERVED, dist.Bernoulli(logits=logits).mask(layout.mask), obs=correct)
    else:
        logits = logits_for_pairs(params, layout.llm, layout.item, config.biases)
        with numpyro.plate("pairs", logits.shape[0], dim=-1):
            if likelihood_scale is None:
                numpyro.sample(OBSERVED, dist.Bernoulli(logits=logits), obs=correct)
            else:
                with numpyro.handlers.scale(scale=likelihood_scale):
                    numpyro.sample(OBSERVED, dist.Bernoulli(logits=logits), obs=correct)
