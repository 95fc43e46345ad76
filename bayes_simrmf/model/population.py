"""The model with learned population priors, as a NumPyro program (:func:`population_model`).

It is the joint density the Gibbs sampler (:mod:`bayes_simrmf.inference.gibbs`) draws from, written out so that
any NumPyro inference can run on it: NUTS checks the sampler on small problems
(``experiments/gibbs_vs_nuts.py``, ``tests/test_gibbs.py``)::

    Λ_L ~ Wishart(ν₀, I),  μ_L | Λ_L ~ N(0, (β₀ Λ_L)⁻¹),  u_l ~ N(μ_L, Λ_L⁻¹)        (LLM rows [m_l, b_l])
    Λ_I ~ Wishart(ν₀, I),  μ_g | Λ_I ~ N(0, (β₀ Λ_I)⁻¹),  v_k ~ N(μ_g(k), Λ_I⁻¹)    (question rows [x_k, b_k])
    z_lk ~ Bernoulli(logits = m_l · x_k + b_l + b_k)
"""

from __future__ import annotations

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from bayes_simrmf.model.sites import OBSERVED

#: Site names of the population hyper-parameters and the rows in :func:`population_model`.
LLM_POPULATION_PREC, ITEM_POPULATION_PREC = "llm_population_prec", "item_population_prec"
LLM_ROWS, ITEM_ROWS = "llm_rows", "item_rows"


def population_model(
    n_llms: int,
    n_items: int,
    llm: jnp.ndarray,
    item: jnp.ndarray,
    *,
    dim: int,
    biases: bool = True,
    item_group: jnp.ndarray | None = None,
    n_item_groups: int = 1,
    correct: jnp.ndarray | None = None,
    beta0: float = 2.0,
    nu0: float | None = None,
) -> None:
    """The joint density above; ``correct=None`` simulates the answers of the pairs ``(llm, item)``.

    Args:
        llm, item: ``(n_pairs,)`` int rows of the pairs.
        dim: latent dimension; ``biases``: whether rows end in a bias.
        item_group: ``(n_items,)`` group code of each question (default: one group).
        beta0, nu0: the Normal–Wishart's mean precision and degrees of freedom (``nu0`` None: the row length).
    """
    width = dim + int(biases)
    nu0 = float(width) if nu0 is None else float(nu0)
    eye, zeros = jnp.eye(width), jnp.zeros(width)
    group = jnp.zeros(n_items, jnp.int32) if item_group is None else jnp.asarray(item_group)
    llm_prec = numpyro.sample(LLM_POPULATION_PREC, dist.Wishart(nu0, scale_matrix=eye))
    llm_loc = numpyro.sample("llm_population_loc", dist.MultivariateNormal(zeros, precision_matrix=beta0 * llm_prec))
    item_prec = numpyro.sample(ITEM_POPULATION_PREC, dist.Wishart(nu0, scale_matrix=eye))
    with numpyro.plate("item_groups", n_item_groups):
        item_loc = numpyro.sample("item_population_loc",
                                  dist.MultivariateNormal(zeros, precision_matrix=beta0 * item_prec))
    with numpyro.plate("llms", n_llms):
        llm_rows = numpyro.sample(LLM_ROWS, dist.MultivariateNormal(llm_loc, precision_matrix=llm_prec))
    with numpyro.plate("items", n_items):
        item_rows = numpyro.sample(ITEM_ROWS, dist.MultivariateNormal(item_loc[group], precision_matrix=item_prec))
    left, right = llm_rows[llm], item_rows[item]
    logits = jnp.sum(left[:, :dim] * right[:, :dim], axis=1)
    if biases:
        logits = logits + left[:, dim] + right[:, dim]
    numpyro.deterministic("logits", logits)
    with numpyro.plate("pairs", len(llm)):
        numpyro.sample(OBSERVED, dist.Bernoulli(logits=logits), obs=correct)
