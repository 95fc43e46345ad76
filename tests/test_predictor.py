"""The one linear predictor: pairs and grids, numpy and JAX, point values and draws agree with the
formula written out by hand."""

from __future__ import annotations

import warnings

import jax.numpy as jnp
import numpy as np
import pytest

from bayes_simrmf.model import (
    INTERCEPT,
    ITEM_BIAS,
    ITEM_FACTORS,
    LLM_BIAS,
    LLM_FACTORS,
    grid_logits,
    pair_logits,
    sigmoid,
)
from bayes_simrmf.model.predictor import expected_sigmoid

N_LLMS, N_ITEMS, DIM = 7, 11, 3


def make_params(rng, lead=()):
    return {
        INTERCEPT: rng.normal(size=lead),
        LLM_BIAS: rng.normal(size=lead + (N_LLMS,)),
        ITEM_BIAS: rng.normal(size=lead + (N_ITEMS,)),
        LLM_FACTORS: rng.normal(size=lead + (N_LLMS, DIM)),
        ITEM_FACTORS: rng.normal(size=lead + (N_ITEMS, DIM)),
    }


def by_hand(params, i, k):
    return (params[INTERCEPT] + params[LLM_BIAS][..., i] + params[ITEM_BIAS][..., k]
            + np.sum(params[LLM_FACTORS][..., i, :] * params[ITEM_FACTORS][..., k, :], axis=-1))


def test_pairs_and_grid_match_the_formula_for_a_point_estimate():
    rng = np.random.default_rng(0)
    params = make_params(rng)
    llm, item = rng.integers(0, N_LLMS, 20), rng.integers(0, N_ITEMS, 20)
    np.testing.assert_allclose(pair_logits(params, llm, item), by_hand(params, llm, item), rtol=1e-12)
    grid = grid_logits(params, np.arange(N_LLMS), np.arange(N_ITEMS))
    assert grid.shape == (N_LLMS, N_ITEMS)
    np.testing.assert_allclose(grid[llm, item], by_hand(params, llm, item), rtol=1e-12)
    np.testing.assert_allclose(grid_logits(params, slice(2, 5), slice(0, 4)), grid[2:5, :4], rtol=1e-12)


def test_draws_keep_their_leading_axis_and_an_intercept_of_shape_n_by_1_is_accepted():
    rng = np.random.default_rng(1)
    params = make_params(rng, lead=(5,))
    llm, item = rng.integers(0, N_LLMS, 9), rng.integers(0, N_ITEMS, 9)
    expected = np.stack([by_hand({k: v[s] for k, v in params.items()}, llm, item) for s in range(5)])
    np.testing.assert_allclose(pair_logits(params, llm, item), expected, rtol=1e-12)
    column = {**params, INTERCEPT: params[INTERCEPT][:, None]}
    np.testing.assert_allclose(pair_logits(column, llm, item), expected, rtol=1e-12)
    grid = grid_logits(column, llm, item)
    assert grid.shape == (5, 9, 9)
    np.testing.assert_allclose(np.diagonal(grid, axis1=1, axis2=2), expected, rtol=1e-12)


def test_jax_and_numpy_agree_and_absent_sites_add_nothing():
    rng = np.random.default_rng(2)
    params = make_params(rng)
    llm, item = rng.integers(0, N_LLMS, 15), rng.integers(0, N_ITEMS, 15)
    as_jax = {k: jnp.asarray(v, jnp.float32) for k, v in params.items()}
    np.testing.assert_allclose(np.asarray(pair_logits(as_jax, jnp.asarray(llm), jnp.asarray(item), xp=jnp)),
                               pair_logits(params, llm, item), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(grid_logits(as_jax, slice(0, 4), slice(0, 6), xp=jnp)),
                               grid_logits(params, slice(0, 4), slice(0, 6)), rtol=1e-5, atol=1e-5)
    biases_only = {k: params[k] for k in (INTERCEPT, LLM_BIAS, ITEM_BIAS)}
    np.testing.assert_allclose(pair_logits(biases_only, llm, item),
                               params[INTERCEPT] + params[LLM_BIAS][llm] + params[ITEM_BIAS][item], rtol=1e-12)
    assert grid_logits(biases_only, slice(0, 4), slice(1, 3)).shape == (4, 2)
    factors_only = {k: params[k] for k in (LLM_FACTORS, ITEM_FACTORS)}
    np.testing.assert_allclose(pair_logits(factors_only, llm, item),
                               np.sum(params[LLM_FACTORS][llm] * params[ITEM_FACTORS][item], axis=1), rtol=1e-12)
    with pytest.raises(ValueError, match="none of the linear predictor's sites"):
        pair_logits({}, llm, item)


def test_sigmoid_is_stable_and_its_gaussian_expectation_matches_monte_carlo():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values = sigmoid(np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0]))
    np.testing.assert_allclose(values, [0.0, 1 / (1 + np.exp(30.0)), 0.5, 1 / (1 + np.exp(-30.0)), 1.0])
    rng = np.random.default_rng(3)
    mean, var = np.array([-2.0, 0.0, 1.5]), np.array([0.5, 4.0, 0.0])
    draws = rng.normal(mean, np.sqrt(var), size=(400_000, 3))
    np.testing.assert_allclose(expected_sigmoid(mean, var), sigmoid(draws).mean(axis=0), atol=2e-3)
