"""Tests of bayes_simrmf.model: the NumPyro program is the paper's loss read as a log joint density.

The paper's MF/SimRMF loss is ``Σ BCE + λ_reg(‖M‖² + ‖X‖²) + λ_X‖XXᵀ − √S_X‖² + λ_M‖MMᵀ − √S_M‖²``. The model
adds an intercept and per-LLM / per-item biases with Normal priors. These tests recompute the joint density
by hand in float64 numpy and compare it with ``numpyro.infer.util.log_density`` of ``simrmf_model``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.handlers import condition, seed, trace
from numpyro.infer.util import log_density

from bayes_simrmf.errors import ConfigError
from bayes_simrmf.model import (
    INTERCEPT,
    ITEM_BIAS,
    ITEM_BIAS_SCALE,
    ITEM_FACTORS,
    LLM_BIAS,
    LLM_BIAS_SCALE,
    LLM_FACTORS,
    OBSERVED,
    DenseLayout,
    ModelConfig,
    PairsLayout,
    SimilarityInputs,
    simrmf_model,
)
from bayes_simrmf.similarity import gram_mismatch

N_LLMS, N_ITEMS, DIM = 7, 9, 3


def _random_params(rng: np.random.Generator, n_llms: int = N_LLMS, n_items: int = N_ITEMS, dim: int = DIM) -> dict:
    return {
        INTERCEPT: np.float32(rng.normal(0.0, 1.0)),
        LLM_BIAS: rng.normal(0.0, 1.0, n_llms).astype(np.float32),
        ITEM_BIAS: rng.normal(0.0, 1.0, n_items).astype(np.float32),
        LLM_FACTORS: rng.normal(0.0, 0.7, (n_llms, dim)).astype(np.float32),
        ITEM_FACTORS: rng.normal(0.0, 0.7, (n_items, dim)).astype(np.float32),
    }


def _observed_pairs(rng: np.random.Generator, n_pairs: int = 30) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct random (llm, item) cells of the full N_LLMS x N_ITEMS block with random 0/1 scores."""
    cells = rng.choice(N_LLMS * N_ITEMS, n_pairs, replace=False)
    llm, item = np.divmod(cells, N_ITEMS)
    return llm.astype(np.int32), item.astype(np.int32), rng.integers(0, 2, n_pairs).astype(np.float32)


def _log_joint(config: ModelConfig, params: dict, layout, correct, similarity=None) -> float:
    """``log_density`` of the model at ``params`` (jit-compiled as one program: faster than eager ops)."""

    def joint(values, layout, correct):
        model_kwargs = {"correct": correct, "similarity": similarity}
        return log_density(simrmf_model, (N_LLMS, N_ITEMS, layout, config), model_kwargs, values)[0]

    values = {name: jnp.asarray(v) for name, v in params.items()}
    return float(jax.jit(joint)(values, layout, jnp.asarray(correct)))


def _paper_objective(config: ModelConfig, params: dict, llm, item, correct) -> float:
    """−[Σ BCE + λ_reg(‖M‖² + ‖X‖²)] plus the bias / intercept Normal log kernels, in float64 (no constants)."""
    p = {name: np.asarray(v, dtype=np.float64) for name, v in params.items()}
    logits = (
        np.sum(p[LLM_FACTORS][llm] * p[ITEM_FACTORS][item], axis=1)
        + p[INTERCEPT]
        + p[LLM_BIAS][llm]
        + p[ITEM_BIAS][item]
    )
    # BCE with logits, written the stable way: log(1 + e^l) - z l.
    bce = np.sum(np.logaddexp(0.0, logits) - correct * logits)
    l2 = config.lambda_reg * (np.sum(p[LLM_FACTORS] ** 2) + np.sum(p[ITEM_FACTORS] ** 2))
    bias_scale = config.bias_scale
    bias_terms = -(np.sum(p[LLM_BIAS] ** 2) + np.sum(p[ITEM_BIAS] ** 2)) / (2 * bias_scale**2)
    intercept_term = -p[INTERCEPT] ** 2 / (2 * config.intercept_prior**2)
    return float(-(bce + l2) + bias_terms + intercept_term)


def _normal_log_constants(config: ModelConfig) -> float:
    """Sum of the Normal normalising constants −log(sd √(2π)) of every latent entry (fixed bias scale)."""
    half_log_2pi = 0.5 * math.log(2 * math.pi)
    n_factor_entries = (N_LLMS + N_ITEMS) * config.dim
    return (
        -n_factor_entries * (math.log(config.factor_prior_sd) + half_log_2pi)
        - (N_LLMS + N_ITEMS) * (math.log(config.bias_scale) + half_log_2pi)
        - (math.log(config.intercept_prior) + half_log_2pi)
    )


# --------------------------------------------------------------------------------------------------
# (a) the log joint is the paper's negative loss up to a constant
# --------------------------------------------------------------------------------------------------


def test_log_density_differences_equal_paper_negative_loss_differences():
    rng = np.random.default_rng(0)
    config = ModelConfig(dim=DIM, lambda_reg=0.7, bias_scale=1.3, intercept_prior=2.5)
    llm, item, correct = _observed_pairs(rng)
    layout = PairsLayout(llm=jnp.asarray(llm), item=jnp.asarray(item))
    settings = [_random_params(rng) for _ in range(3)]
    model_values = [_log_joint(config, params, layout, correct) for params in settings]
    hand_values = [_paper_objective(config, params, llm, item, correct) for params in settings]
    # The settings differ by nats, far above the tolerance, so equal differences are a real check.
    assert min(abs(hand_values[0] - hand_values[1]), abs(hand_values[0] - hand_values[2])) > 1.0
    for first, second in ((0, 1), (0, 2), (1, 2)):
        np.testing.assert_allclose(
            model_values[first] - model_values[second],
            hand_values[first] - hand_values[second],
            rtol=1e-5,
            atol=2e-3,
        )


def test_log_density_constant_is_the_gaussian_normalisers():
    """The constant that cancels above is exactly the priors' normalisers: L2 weight ↔ sd = 1/√(2 λ_reg)."""
    rng = np.random.default_rng(1)
    config = ModelConfig(dim=DIM, lambda_reg=2.0, bias_scale=0.8, intercept_prior=3.0)
    llm, item, correct = _observed_pairs(rng)
    layout = PairsLayout(llm=jnp.asarray(llm), item=jnp.asarray(item))
    params = _random_params(rng)
    expected = _paper_objective(config, params, llm, item, correct) + _normal_log_constants(config)
    np.testing.assert_allclose(_log_joint(config, params, layout, correct), expected, rtol=1e-5, atol=2e-3)


def test_learnt_bias_scales_add_half_normal_hyperprior_and_scale_the_bias_prior():
    rng = np.random.default_rng(2)
    config = ModelConfig(dim=DIM, lambda_reg=1.0, bias_scale=None, bias_scale_prior=1.5)
    llm, item, correct = _observed_pairs(rng)
    layout = PairsLayout(llm=jnp.asarray(llm), item=jnp.asarray(item))
    params = _random_params(rng)

    def hand(llm_scale: float, item_scale: float) -> float:
        # Only the terms that depend on the scales: Normal(0, s) of each bias and HalfNormal(1.5) of s.
        biases = np.asarray(params[LLM_BIAS], np.float64), np.asarray(params[ITEM_BIAS], np.float64)
        total = 0.0
        for values, scale in zip(biases, (llm_scale, item_scale)):
            total += -len(values) * math.log(scale) - np.sum(values**2) / (2 * scale**2)
            total += -(scale**2) / (2 * config.bias_scale_prior**2)
        return total

    values = {}
    for scales in ((0.5, 2.0), (1.7, 0.9)):
        full = {**params, LLM_BIAS_SCALE: np.float32(scales[0]), ITEM_BIAS_SCALE: np.float32(scales[1])}
        values[scales] = _log_joint(config, full, layout, correct)
    np.testing.assert_allclose(
        values[(0.5, 2.0)] - values[(1.7, 0.9)], hand(0.5, 2.0) - hand(1.7, 0.9), rtol=1e-5, atol=2e-3
    )


# --------------------------------------------------------------------------------------------------
# (b) dense (mask) and pairs (indices) layouts are the same density
# --------------------------------------------------------------------------------------------------


def test_dense_and_pairs_layouts_give_the_same_log_density():
    rng = np.random.default_rng(3)
    config = ModelConfig(dim=DIM, lambda_reg=0.5)
    # Data only in the leading 5 x 6 block; LLMs 5-6 and items 6-8 carry no data (as run_svi orders them).
    block_llms, block_items = 5, 6
    cells = rng.choice(block_llms * block_items, 17, replace=False)
    llm, item = (a.astype(np.int32) for a in np.divmod(cells, block_items))
    correct = rng.integers(0, 2, len(llm)).astype(np.float32)
    mask = np.zeros((block_llms, block_items), bool)
    mask[llm, item] = True
    dense_correct = rng.integers(0, 2, (block_llms, block_items)).astype(np.float32)  # noise under ~mask
    dense_correct[llm, item] = correct
    params = _random_params(rng)

    order = rng.permutation(len(llm))  # the order of the pairs must not matter either
    pairs_value = _log_joint(
        config, params, PairsLayout(jnp.asarray(llm[order]), jnp.asarray(item[order])), correct[order]
    )
    dense_value = _log_joint(config, params, DenseLayout(mask=jnp.asarray(mask)), dense_correct)
    np.testing.assert_allclose(dense_value, pairs_value, rtol=1e-5, atol=1e-3)

    # Values under a False mask are ignored ...
    flipped = np.where(mask, dense_correct, 1.0 - dense_correct).astype(np.float32)
    np.testing.assert_allclose(
        _log_joint(config, params, DenseLayout(mask=jnp.asarray(mask)), flipped), dense_value, rtol=1e-6, atol=1e-4
    )
    # ... while an observed value is not (guards against a mask that drops everything).
    changed = dense_correct.copy()
    changed[llm[0], item[0]] = 1.0 - changed[llm[0], item[0]]
    assert abs(_log_joint(config, params, DenseLayout(mask=jnp.asarray(mask)), changed) - dense_value) > 1e-3


# --------------------------------------------------------------------------------------------------
# (c) Gram potential through low-rank factors
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "d", "r"), [(13, 3, 5), (40, 8, 2), (6, 4, 4)])
def test_gram_mismatch_equals_dense_frobenius_norm(n, d, r):
    rng = np.random.default_rng(n * 100 + d * 10 + r)
    factors = rng.normal(0.0, 1.0, (n, d)).astype(np.float32)
    sqrt_sim_factor = rng.normal(0.0, 0.5, (n, r)).astype(np.float32)
    f64, w64 = factors.astype(np.float64), sqrt_sim_factor.astype(np.float64)
    dense = np.sum((f64 @ f64.T - w64 @ w64.T) ** 2)
    value = float(gram_mismatch(jnp.asarray(factors), jnp.asarray(sqrt_sim_factor)))
    # float32 precision relative to the size of the terms that the low-rank formula adds and subtracts.
    scale = np.sum((f64.T @ f64) ** 2) + 2 * np.sum((w64.T @ f64) ** 2) + np.sum((w64.T @ w64) ** 2)
    assert abs(value - dense) <= 1e-5 * scale
    assert dense > 1e-2 * scale  # not a trivially tiny target


def test_gram_mismatch_is_zero_for_equal_grams_up_to_rotation():
    rng = np.random.default_rng(5)
    w = rng.normal(0.0, 1.0, (20, 4))
    rotation, _ = np.linalg.qr(rng.normal(0.0, 1.0, (4, 4)))
    value = float(gram_mismatch(jnp.asarray(w @ rotation, jnp.float32), jnp.asarray(w, jnp.float32)))
    scale = 4 * np.sum((w.T @ w) ** 2)
    assert abs(value) <= 1e-5 * scale


def _dense_mismatch(latent, sqrt_sim_factor, profile_scale: bool) -> float:
    """‖G − s·√S‖²_F with G = FFᵀ, √S = WWᵀ, in float64 with dense n × n matrices (s = 1, or its optimum)."""
    latent, w = np.asarray(latent, np.float64), np.asarray(sqrt_sim_factor, np.float64)
    gram, sqrt_sim = latent @ latent.T, w @ w.T
    scale = np.sum(gram * sqrt_sim) / np.sum(sqrt_sim**2) if profile_scale else 1.0
    return float(np.sum((gram - scale * sqrt_sim) ** 2))


@pytest.mark.parametrize("augmented", [False, True])
@pytest.mark.parametrize("profile_scale", [False, True])
def test_similarity_inputs_change_log_density_by_exactly_minus_weight_times_mismatch(augmented, profile_scale):
    """augmented=False, profile_scale=False is the paper's −λ‖XXᵀ − √S‖²; augmented matches the Gram of
    ``[factors, bias]``; profile_scale matches ``s·√S`` at its best scale s."""
    rng = np.random.default_rng(6)
    config = ModelConfig(dim=DIM, lambda_reg=1.0)
    llm, item, correct = _observed_pairs(rng)
    layout = PairsLayout(llm=jnp.asarray(llm), item=jnp.asarray(item))
    params = _random_params(rng)
    items_factor = rng.normal(0.0, 0.6, (N_ITEMS, 4)).astype(np.float32)
    llms_factor = rng.normal(0.0, 0.6, (N_LLMS, 2)).astype(np.float32)
    options = {"augmented": augmented, "profile_scale": profile_scale}

    def latent(factors, bias):
        return np.column_stack([factors, bias]) if augmented else factors

    item_term = 0.3 * _dense_mismatch(latent(params[ITEM_FACTORS], params[ITEM_BIAS]), items_factor, profile_scale)
    llm_term = 0.05 * _dense_mismatch(latent(params[LLM_FACTORS], params[LLM_BIAS]), llms_factor, profile_scale)
    assert item_term > 0.5 and llm_term > 0.05  # large against the tolerance

    base = _log_joint(config, params, layout, correct)
    item_only = SimilarityInputs(items_factor=jnp.asarray(items_factor), items_weight=0.3, **options)
    both = SimilarityInputs(
        items_factor=jnp.asarray(items_factor),
        llms_factor=jnp.asarray(llms_factor),
        items_weight=0.3,
        llms_weight=0.05,
        **options,
    )
    np.testing.assert_allclose(
        _log_joint(config, params, layout, correct, item_only) - base, -item_term, rtol=1e-4, atol=2e-3
    )
    np.testing.assert_allclose(
        _log_joint(config, params, layout, correct, both) - base, -(item_term + llm_term), rtol=1e-4, atol=2e-3
    )
    # A zero weight means no potential on that side.
    zero = SimilarityInputs(items_factor=jnp.asarray(items_factor), items_weight=0.0, **options)
    np.testing.assert_allclose(_log_joint(config, params, layout, correct, zero), base, rtol=1e-6, atol=1e-4)


# --------------------------------------------------------------------------------------------------
# (d) configuration validation names the argument
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"dim": -1}, "dim"),
        ({"dim": 2.5}, "dim"),
        ({"lambda_reg": 0.0}, "lambda_reg"),
        ({"lambda_reg": -1.0}, "lambda_reg"),
        ({"lambda_reg": float("nan")}, "lambda_reg"),
        ({"bias_scale": 0.0}, "bias_scale"),
        ({"bias_scale": -2.0}, "bias_scale"),
        ({"bias_scale": float("inf")}, "bias_scale"),
        ({"intercept_prior": 0.0}, "intercept_prior"),
        ({"bias_scale_prior": -1.0}, "bias_scale_prior"),
    ],
)
def test_model_config_rejects_bad_values_naming_the_argument(kwargs, name):
    with pytest.raises(ConfigError, match=name) as error:
        ModelConfig(**kwargs)
    assert repr(next(iter(kwargs.values())))[:3] in str(error.value)  # the offending value is shown


def test_model_config_rejects_a_model_without_parameters():
    with pytest.raises(ConfigError, match="dim=0"):
        ModelConfig(dim=0, biases=False)


def test_model_config_accepts_valid_values_and_maps_lambda_to_prior_sd():
    assert ModelConfig(dim=0).dim == 0
    assert ModelConfig(bias_scale=None).bias_scale is None
    assert ModelConfig(lambda_reg=2.0).factor_prior_sd == pytest.approx(0.5)
    assert ModelConfig(lambda_reg=0.5).factor_prior_sd == pytest.approx(1.0)


# --------------------------------------------------------------------------------------------------
# (e) the same function simulates when correct=None
# --------------------------------------------------------------------------------------------------


def _simulate(model, key: int, *args) -> dict[str, np.ndarray]:
    """Values of every sample site of one seeded run of ``model(*args)`` (jit-compiled as one program)."""

    def run(rng_key):
        model_trace = trace(seed(model, rng_key)).get_trace(*args)
        return {name: site["value"] for name, site in model_trace.items() if site["type"] == "sample"}

    return {name: np.asarray(value) for name, value in jax.jit(run)(jax.random.PRNGKey(key)).items()}


def test_model_simulates_binary_scores_of_the_layout_shape():
    config = ModelConfig(dim=2)
    llm = jnp.asarray([0, 1, 2, 2, 4], jnp.int32)
    item = jnp.asarray([0, 0, 3, 1, 5], jnp.int32)
    pairs_values = _simulate(simrmf_model, 0, 5, 6, PairsLayout(llm, item), config)
    assert pairs_values[OBSERVED].shape == (5,)
    assert set(np.unique(pairs_values[OBSERVED])) <= {0, 1}

    dense_values = _simulate(simrmf_model, 1, 5, 6, DenseLayout(jnp.ones((4, 6), bool)), config)
    assert dense_values[OBSERVED].shape == (4, 6)
    assert set(np.unique(dense_values[OBSERVED])) <= {0, 1}
    # Latent sites are drawn with the model's shapes.
    assert dense_values[LLM_FACTORS].shape == (5, 2)
    assert dense_values[ITEM_BIAS].shape == (6,)


def test_simulated_scores_follow_the_conditioned_probabilities():
    """Conditioned on parameters, the simulated frequency matches sigmoid(logit) within sampling error."""
    rng = np.random.default_rng(7)
    n_llms, n_items, dim = 60, 80, 2
    params = _random_params(rng, n_llms, n_items, dim)
    conditioned = condition(simrmf_model, data={k: jnp.asarray(v) for k, v in params.items()})
    mask = jnp.ones((n_llms, n_items), bool)
    values = _simulate(conditioned, 3, n_llms, n_items, DenseLayout(mask), ModelConfig(dim=dim))
    np.testing.assert_array_equal(values[ITEM_FACTORS], params[ITEM_FACTORS])  # conditioning took hold
    sample = values[OBSERVED].astype(np.float64)
    logits = (
        params[LLM_FACTORS].astype(np.float64) @ params[ITEM_FACTORS].T
        + params[INTERCEPT]
        + params[LLM_BIAS][:, None]
        + params[ITEM_BIAS][None, :]
    )
    prob = 1.0 / (1.0 + np.exp(-logits))
    residual = sample - prob
    # Sum of residuals over 4,800 independent cells: |z| < 5 standard errors.
    assert abs(residual.sum()) < 5 * np.sqrt(np.sum(prob * (1 - prob)))
    # The simulation uses each cell's own probability, not a constant one.
    assert np.corrcoef(sample.ravel(), prob.ravel())[0, 1] > 0.3
