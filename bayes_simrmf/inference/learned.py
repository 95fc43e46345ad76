"""Learned population priors under SVI (:func:`run_learned_svi`).

The sampler (:mod:`bayes_simrmf.inference.gibbs`) learns a Normal–Wishart population for the LLM rows and one for
the question rows (a mean per benchmark); this module fits the same model, written as the NumPyro program
:func:`bayes_simrmf.model.population.population_model`, with a variational guide instead: mean-field normal or
low-rank normal over the rows, the population means and the (unconstrained Cholesky of the) population
precisions. A delta guide is refused: the joint density grows without bound as a population's covariance and
the spread of its rows shrink together, so MAP of a learned prior collapses it.

The fitted guide is stored as draws from it (site layout of the sampler's :class:`~.samples.SamplePosterior`, one
"chain"), so everything the sampler's posterior does — a fresh draw from the learned population for an unseen
entity in each posterior draw, fold-ins per draw, saving — works unchanged.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from numpyro import handlers
from numpyro.infer import SVI
from numpyro.infer.autoguide import AutoLowRankMultivariateNormal, AutoNormal
from numpyro.infer.initialization import init_to_value

from bayes_simrmf.errors import ConfigError
from bayes_simrmf.inference.elbo import OrderedTraceELBO
from bayes_simrmf.inference.config import InferenceConfig
from bayes_simrmf.inference.gibbs import (
    ITEM_POPULATION_COV, ITEM_POPULATION_LOC, LLM_POPULATION_COV, LLM_POPULATION_LOC, _as_sites,
)
from bayes_simrmf.inference.guides import _INITIAL_VALUES
from bayes_simrmf.inference.schedule import learning_rate_schedule
from bayes_simrmf.inference.svi import _optimise
from bayes_simrmf.model.population import (
    ITEM_POPULATION_PREC, ITEM_ROWS, LLM_POPULATION_PREC, LLM_ROWS, population_model,
)

#: Draws of the fitted guide kept as the posterior (as many as the sampler keeps by default: 4 chains × 100).
LEARNED_DRAWS = 400


class LearnedSVIResult(NamedTuple):
    """What :func:`run_learned_svi` returns.

    Attributes:
        draws: site name → ``(1, LEARNED_DRAWS, *shape)`` float32, the sampler's site layout.
        losses: ``(n_steps,)`` negative ELBO per step.
        converged: whether the stopping rule held before ``max_steps``.
        seconds: wall time (set-up, compilation and drawing included).
    """

    draws: dict[str, np.ndarray]
    losses: np.ndarray
    converged: bool
    seconds: float


def run_learned_svi(
    n_llms: int,
    n_items: int,
    llm: np.ndarray,
    item: np.ndarray,
    correct: np.ndarray,
    *,
    dim: int,
    biases: bool,
    config: InferenceConfig,
    initial_rows: tuple[np.ndarray, np.ndarray],
    item_group: np.ndarray | None = None,
    seed: int = 0,
    description: str = "fit (learned priors)",
    n_draws: int = LEARNED_DRAWS,
) -> LearnedSVIResult:
    """Fit :func:`~bayes_simrmf.model.population.population_model` by SVI and draw its posterior.

    Args:
        n_llms, n_items: rows of each side; llm, item: ``(n_pairs,)`` int rows; correct: ``(n_pairs,)`` 0/1.
        dim, biases: latent dimension and whether rows end in a bias.
        config: the guide ("normal" or "lowrank"), learning rate, steps, tolerance; minibatches are refused.
        initial_rows: ``(LLM rows (n_llms, p), question rows (n_items, p))`` to start at (e.g. a MAP fit); the
            populations start at these rows' means and (ridged) covariances.
        item_group: ``(n_items,)`` benchmark code of each question, or None for one group.
        seed: seeds the ELBO's draws and the kept draws.
    """
    if config.guide not in ("normal", "lowrank"):
        raise ConfigError(
            f"learned priors need a guide with spread (normal or lowrank), got guide={config.guide!r}: under a "
            "delta guide (MAP) a learned population collapses with its rows; use guide='normal', or "
            "inference='gibbs'")
    if config.batch_size is not None:
        raise ConfigError("learned priors run full-batch SVI; leave batch_size at None")
    width = dim + int(biases)
    groups = np.zeros(n_items, np.int32) if item_group is None else np.asarray(item_group, np.int32)
    n_groups = int(groups.max()) + 1 if len(groups) else 1
    llm_rows, item_rows = (np.asarray(rows, np.float32) for rows in initial_rows)
    if llm_rows.shape != (n_llms, width) or item_rows.shape != (n_items, width):
        raise ConfigError(f"initial_rows must have shapes ({n_llms}, {width}) and ({n_items}, {width}); got "
                          f"{llm_rows.shape} and {item_rows.shape}")
    init = _initial_values(llm_rows, item_rows, groups, n_groups)
    if config.guide == "normal":
        guide = AutoNormal(population_model, init_loc_fn=init_to_value(values=init), init_scale=0.01)
    else:
        guide = AutoLowRankMultivariateNormal(population_model, init_loc_fn=init_to_value(values=init),
                                              rank=config.lowrank_rank, init_scale=0.01)
    svi = SVI(population_model, guide, optax.adam(learning_rate_schedule(config, minibatch=False)),
              loss=OrderedTraceELBO(num_particles=config.num_particles))
    static = {"dim": int(dim), "biases": bool(biases), "n_item_groups": n_groups}
    data = (jnp.asarray(llm, jnp.int32), jnp.asarray(item, jnp.int32), jnp.asarray(correct, jnp.float32),
            jnp.asarray(groups))

    start = time.perf_counter()
    key = jax.random.PRNGKey(seed)
    _prepare(guide, n_llms, n_items, data[3], static, key)
    state = jax.jit(lambda k, d: svi.init(k, n_llms, n_items, d[0], d[1], correct=d[2], item_group=d[3], **static))(
        key, data)

    @jax.jit
    def _chunk(svi_state, data, steps):
        def step(s, _):
            return svi.update(s, n_llms, n_items, data[0], data[1], correct=data[2], item_group=data[3], **static)

        return jax.lax.scan(step, svi_state, steps)

    def run_chunk(svi_state, chunk_index: int, length: int):
        return _chunk(svi_state, data, jnp.zeros(length))

    state, losses, converged = _optimise(run_chunk, state, config, False, description, None)
    params = svi.get_params(state)
    sampled = guide.sample_posterior(jax.random.fold_in(key, 7), params, sample_shape=(n_draws,))
    draws = _as_draws(sampled, dim, biases)
    return LearnedSVIResult(draws=draws, losses=losses, converged=converged, seconds=time.perf_counter() - start)


def _prepare(guide, n_llms: int, n_items: int, item_group, static: dict, key) -> None:
    """Set up ``guide``'s prototype inside one compiled call on one stand-in pair, as
    :func:`~bayes_simrmf.inference.guides.prepare_guide` does for the fixed-prior model (eagerly it compiles
    hundreds of small programs: 17 s on 70 × 90 answers); its initial values come back as the call's outputs."""
    stand_in = jnp.zeros(1, jnp.int32)

    def set_up():
        with handlers.block(), handlers.seed(rng_seed=jax.random.fold_in(key, 2)):
            guide(n_llms, n_items, stand_in, stand_in, correct=jnp.zeros(1, jnp.float32), item_group=item_group,
                  **static)
        return {name: getattr(guide, name) for name in _INITIAL_VALUES if hasattr(guide, name)}

    for name, value in jax.jit(set_up)().items():
        setattr(guide, name, value)


def _initial_values(llm_rows: np.ndarray, item_rows: np.ndarray, groups: np.ndarray, n_groups: int) -> dict:
    """Rows as given; each population at its rows' mean and the inverse of their covariance (ridged by 0.1 I)."""
    width = llm_rows.shape[1]
    ridge = 0.1 * np.eye(width)
    llm_loc = llm_rows.mean(axis=0)
    item_loc = np.stack([item_rows[groups == g].mean(axis=0) if np.any(groups == g) else item_rows.mean(axis=0)
                         for g in range(n_groups)])
    llm_cov = np.cov(llm_rows, rowvar=False).reshape(width, width) + ridge
    centred = item_rows - item_loc[groups]
    item_cov = centred.T @ centred / max(len(item_rows) - 1, 1) + ridge
    return {
        LLM_ROWS: jnp.asarray(llm_rows), ITEM_ROWS: jnp.asarray(item_rows),
        "llm_population_loc": jnp.asarray(llm_loc, jnp.float32),
        "item_population_loc": jnp.asarray(item_loc, jnp.float32),
        LLM_POPULATION_PREC: jnp.asarray(np.linalg.inv(llm_cov), jnp.float32),
        ITEM_POPULATION_PREC: jnp.asarray(np.linalg.inv(item_cov), jnp.float32),
    }


def _as_draws(sampled: dict, dim: int, biases: bool) -> dict[str, np.ndarray]:
    """The guide's draws in the sampler's site layout, as one chain of ``(1, n_draws, …)`` arrays."""
    def cov(precision):
        inverse = np.linalg.inv(np.asarray(precision, np.float64))
        return (inverse + np.swapaxes(inverse, -1, -2)) / 2.0

    rows = {
        "llm_rows": np.asarray(sampled[LLM_ROWS])[None], "item_rows": np.asarray(sampled[ITEM_ROWS])[None],
        LLM_POPULATION_LOC: np.asarray(sampled["llm_population_loc"])[None],
        ITEM_POPULATION_LOC: np.asarray(sampled["item_population_loc"])[None],
        LLM_POPULATION_COV: cov(sampled[LLM_POPULATION_PREC])[None],
        ITEM_POPULATION_COV: cov(sampled[ITEM_POPULATION_PREC])[None],
    }
    return _as_sites(rows, dim, biases)
