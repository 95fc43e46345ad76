"""Tests of bayes_simrmf.inference: SVI recovers a planted low-rank structure, layouts agree, the run is
reproducible, stops as documented and fails loudly.

Every fit here uses the same 120 LLMs x 200 items block so that JAX compiles each program shape once per
test session (a new shape costs seconds of compilation on a CPU).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from bayes_simrmf.errors import ConfigError, FitError
from bayes_simrmf.inference import InferenceConfig, choose_layout, initial_values, run_svi
from bayes_simrmf.model import (
    INTERCEPT,
    ITEM_BIAS,
    ITEM_FACTORS,
    LLM_BIAS,
    LLM_FACTORS,
    ModelConfig,
    pair_logits,
)
from bayes_simrmf.synthetic import simulate_scores

N_LLMS, N_ITEMS, DIM = 120, 200, 3
TRAIN_SHARE = 0.4


class Planted:
    """Scores drawn from the model with a strong rank-3 interaction, split 40 % train / 60 % held out.

    Biases are small (sd 0.5) and factor entries have sd 1, so the interaction ``m·x`` (sd ≈ 1.7 logits)
    dominates: a bias-only model cannot explain most of the structure, a rank-3 one can.
    """

    def __init__(self, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.truth = {
            INTERCEPT: np.float32(-0.3),
            LLM_BIAS: rng.normal(0.0, 0.5, N_LLMS).astype(np.float32),
            ITEM_BIAS: rng.normal(0.0, 0.5, N_ITEMS).astype(np.float32),
            LLM_FACTORS: rng.normal(0.0, 1.0, (N_LLMS, DIM)).astype(np.float32),
            ITEM_FACTORS: rng.normal(0.0, 1.0, (N_ITEMS, DIM)).astype(np.float32),
        }
        scores = simulate_scores(self.truth, DIM, seed)
        logits = (
            self.truth[LLM_FACTORS].astype(np.float64) @ self.truth[ITEM_FACTORS].T
            + self.truth[INTERCEPT]
            + self.truth[LLM_BIAS][:, None]
            + self.truth[ITEM_BIAS][None, :]
        )
        true_prob = 1.0 / (1.0 + np.exp(-logits))
        train = rng.random((N_LLMS, N_ITEMS)) < TRAIN_SHARE
        self.llm, self.item = (a.astype(np.int32) for a in np.nonzero(train))
        self.correct = scores[self.llm, self.item]
        self.test_llm, self.test_item = (a.astype(np.int32) for a in np.nonzero(~train))
        self.test_correct = scores[self.test_llm, self.test_item]
        self.test_true_prob = true_prob[self.test_llm, self.test_item]

    def fit_seeded(self, seed: int, model_config: ModelConfig | None = None, **inference_options):
        """run_svi on the training cells (rank-3 MF by default; keyword options go to InferenceConfig)."""
        options = {"max_steps": 300, "progress": False, **inference_options}
        return run_svi(
            N_LLMS,
            N_ITEMS,
            self.llm,
            self.item,
            self.correct,
            model_config or ModelConfig(dim=DIM),
            InferenceConfig(**options),
            seed=seed,
        )

    def test_prob(self, point: dict) -> np.ndarray:
        logits = pair_logits(point, jnp.asarray(self.test_llm), jnp.asarray(self.test_item), xp=jnp)
        return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(a, np.float64) - b) ** 2)))


def _log_loss(prob: np.ndarray, correct: np.ndarray) -> float:
    prob = np.clip(prob, 1e-7, 1 - 1e-7)
    return float(-np.mean(correct * np.log(prob) + (1 - correct) * np.log(1 - prob)))


@pytest.fixture(scope="module")
def planted() -> Planted:
    return Planted(seed=0)


@pytest.fixture(scope="module")
def rank3_fit(planted):
    return planted.fit_seeded(0, max_steps=400, tol=0.0, layout="dense")


# --------------------------------------------------------------------------------------------------
# (a) planted low-rank recovery
# --------------------------------------------------------------------------------------------------


def test_fit_recovers_planted_probabilities_on_held_out_cells(planted, rank3_fit):
    prob = planted.test_prob(rank3_fit.point)
    truth = planted.test_true_prob
    mean_rmse = _rmse(np.full_like(truth, planted.correct.mean()), truth)
    fit_rmse = _rmse(prob, truth)
    # Predicting the overall mean leaves RMSE ≈ 0.28 against the true probabilities; a bias-only model barely
    # improves on that (the planted structure is mostly interaction). Recovering the rank-3 interaction from
    # 9,600 Bernoulli draws (~48-80 per entity for 4 parameters each) leaves estimation noise of about 0.16.
    # So the fit must remove well over a third of the mean's error ...
    assert fit_rmse < 0.65 * mean_rmse, (fit_rmse, mean_rmse)
    # ... and its predictions must track the truth cell by cell.
    assert np.corrcoef(prob, truth)[0, 1] > 0.75


def test_rank3_fit_beats_bias_only_fit_on_held_out_log_loss(planted, rank3_fit):
    bias_only = planted.fit_seeded(0, ModelConfig(dim=0), max_steps=400, tol=0.0, layout="dense")
    assert LLM_FACTORS not in bias_only.point
    rank3_prob = planted.test_prob(rank3_fit.point)
    bias_prob = planted.test_prob(bias_only.point)
    truth = planted.test_true_prob
    oracle_loss = _log_loss(truth, planted.test_correct)
    rank3_loss = _log_loss(rank3_prob, planted.test_correct)
    bias_loss = _log_loss(bias_prob, planted.test_correct)
    # The interaction carries most of the signal, so the gap is large (≈ 0.1 nat per cell on 14,400 cells);
    # 0.03 leaves room for optimisation noise while failing a fit that ignores its factors.
    assert rank3_loss < bias_loss - 0.03, (rank3_loss, bias_loss)
    assert oracle_loss < rank3_loss  # sanity: no fit beats the true probabilities on fresh draws
    assert _rmse(rank3_prob, truth) < 0.75 * _rmse(bias_prob, truth)


# --------------------------------------------------------------------------------------------------
# (b) dense and pairs layouts reach the same optimum
# --------------------------------------------------------------------------------------------------


def test_dense_and_pairs_layouts_reach_the_same_optimum(planted, rank3_fit):
    pairs_fit = planted.fit_seeded(0, max_steps=400, tol=0.0, layout="pairs")
    assert rank3_fit.layout == "dense" and pairs_fit.layout == "pairs"
    # Same model, same start, same optimiser: the loss traces agree to float32 noise ...
    np.testing.assert_allclose(pairs_fit.losses, rank3_fit.losses, rtol=1e-3)
    # ... and so do the predictions (factors are only identified up to rotation, predictions are not).
    difference = np.abs(planted.test_prob(pairs_fit.point) - planted.test_prob(rank3_fit.point))
    assert difference.max() < 1e-2 and difference.mean() < 1e-3


def test_repeated_pairs_are_counted_or_rejected_the_same_way_in_both_layouts(planted):
    repeat = np.arange(0, len(planted.llm), 7)
    llm = np.concatenate([planted.llm, planted.llm[repeat]])
    item = np.concatenate([planted.item, planted.item[repeat]])
    correct = np.concatenate([planted.correct, 1 - planted.correct[repeat]])  # conflicting repeats
    results = {}
    for layout in ("pairs", "dense"):
        try:
            results[layout] = run_svi(
                N_LLMS, N_ITEMS, llm, item, correct, ModelConfig(dim=DIM),
                InferenceConfig(max_steps=1, chunk=1, layout=layout, progress=False),
            ).losses[0]
        except ConfigError as error:
            results[layout] = str(error)
    if isinstance(results["pairs"], str) or isinstance(results["dense"], str):
        assert isinstance(results["dense"], str), "dense must refuse repeated pairs as pairs does"
    else:
        # losses[0] is the negative log joint at the (seeded, identical) starting point.
        assert results["dense"] == pytest.approx(results["pairs"], rel=1e-5)


# --------------------------------------------------------------------------------------------------
# (c) layout choice
# --------------------------------------------------------------------------------------------------


def test_choose_layout_picks_dense_above_and_pairs_below_the_density_threshold():
    config = InferenceConfig(dense_min_density=0.1, progress=False)
    # 10 x 20 block = 200 cells: 20 pairs is density 0.1 (at the threshold), 19 pairs is below it.
    cells = np.arange(200)
    llm, item = np.divmod(cells, 20)
    llm[-1], item[-1] = 9, 19  # the block's extent is fixed by its last cell
    at_threshold = np.r_[cells[:19], 199]
    below = np.r_[cells[:18], 199]
    assert choose_layout(llm[at_threshold], item[at_threshold], config) == ("dense", 10, 20)
    assert choose_layout(llm[below], item[below], config) == ("pairs", 10, 20)
    assert choose_layout(llm, item, config) == ("dense", 10, 20)
    # Too many cells for a dense block: pairs, however dense.
    small_cap = InferenceConfig(dense_max_cells=199, progress=False)
    assert choose_layout(llm, item, small_cap)[0] == "pairs"


def test_choose_layout_honours_an_explicit_layout_and_refuses_an_oversized_dense_block():
    llm = np.array([0, 999])
    item = np.array([0, 1999])
    assert choose_layout(llm, item, InferenceConfig(layout="pairs", progress=False))[0] == "pairs"
    assert choose_layout(llm, item, InferenceConfig(layout="dense", progress=False))[0] == "dense"
    with pytest.raises(ConfigError, match="dense_max_cells") as error:
        choose_layout(llm, item, InferenceConfig(layout="dense", dense_max_cells=1_000_000, progress=False))
    message = str(error.value)
    assert "1000 x 2000" in message and "layout='pairs'" in message


# --------------------------------------------------------------------------------------------------
# (d) a diverging run raises FitError naming the step
# --------------------------------------------------------------------------------------------------


def test_diverging_loss_raises_fit_error_naming_the_step_and_a_smaller_learning_rate(planted):
    # Adam moves every parameter by about the learning rate per step, whatever the gradient's size; at 1e20
    # one step makes ‖M‖² overflow float32 (> 3.4e38), so the loss at step 2 is not finite. (A rate of 1e6
    # is not enough: the loss grows huge but stays finite.)
    with pytest.raises(FitError) as error:
        planted.fit_seeded(0, learning_rate=1e20, max_steps=100)
    message = str(error.value)
    assert "step 2 " in message
    assert "smaller learning rate" in message
    assert "--learning-rate 2e+19" in message  # a concrete, smaller suggestion
    # The step number is counted across chunks, not within one: one step per chunk reports the same step.
    with pytest.raises(FitError, match=r"at step 2 "):
        planted.fit_seeded(0, learning_rate=1e20, max_steps=100, chunk=1)


# --------------------------------------------------------------------------------------------------
# (e) seeds
# --------------------------------------------------------------------------------------------------


def test_same_seed_gives_identical_fit_and_different_seed_a_different_start(planted):
    first = planted.fit_seeded(3, max_steps=100, tol=0.0, layout="dense")
    again = planted.fit_seeded(3, max_steps=100, tol=0.0, layout="dense")
    other = planted.fit_seeded(4, max_steps=100, tol=0.0, layout="dense")
    np.testing.assert_array_equal(first.losses, again.losses)
    for name, value in first.point.items():
        np.testing.assert_array_equal(value, again.point[name], err_msg=name)
    # losses[0] is the loss at the starting point: different initial factors give a different value.
    assert first.losses[0] != other.losses[0]
    assert not np.allclose(first.point[LLM_FACTORS], other.point[LLM_FACTORS])

    def start_at(seed: int) -> dict:
        return initial_values(N_LLMS, N_ITEMS, ModelConfig(dim=DIM), planted.correct, 0.1, seed)

    start = {seed: start_at(seed) for seed in (3, 4)}
    assert not np.allclose(start[3][ITEM_FACTORS], start[4][ITEM_FACTORS])
    np.testing.assert_array_equal(start[3][ITEM_FACTORS], start_at(3)[ITEM_FACTORS])
    # The documented start: intercept at the logit of the mean score, zero biases, factors of sd init_scale.
    mean = planted.correct.mean()
    assert start[3][INTERCEPT] == pytest.approx(np.log(mean / (1 - mean)), rel=1e-5)
    assert not start[3][LLM_BIAS].any()
    assert start[3][LLM_FACTORS].std() == pytest.approx(0.1, rel=0.15)


# --------------------------------------------------------------------------------------------------
# (f) stopping rule
# --------------------------------------------------------------------------------------------------


def test_zero_tolerance_runs_exactly_max_steps(planted):
    result = planted.fit_seeded(0, max_steps=150, chunk=50, tol=0.0, layout="dense")
    assert len(result.losses) == 150
    assert not result.converged


def test_max_steps_is_an_upper_bound_when_not_a_multiple_of_chunk(planted):
    result = planted.fit_seeded(0, max_steps=120, chunk=50, tol=0.0, layout="dense")
    assert len(result.losses) <= 120


def test_loose_tolerance_stops_early_and_reports_convergence(planted):
    chunk, tol = 50, 1e-2
    result = planted.fit_seeded(0, max_steps=1000, chunk=chunk, tol=tol, layout="dense")
    assert result.converged
    assert len(result.losses) < 1000 and len(result.losses) % chunk == 0
    # The documented rule: stop at the first chunk whose mean loss changed by less than tol (relative).
    means = result.losses.reshape(-1, chunk).mean(axis=1)
    changes = np.abs(np.diff(means)) / np.abs(means[1:])
    assert changes[-1] < tol
    assert (changes[:-1] >= tol).all()
    # A tighter tolerance runs longer.
    tighter = planted.fit_seeded(0, max_steps=1000, chunk=chunk, tol=1e-4, layout="dense")
    assert len(tighter.losses) > len(result.losses)


def test_gaussian_guide_with_default_schedule_settles_and_reports_convergence(planted):
    """The normal guide's ELBO is a one-draw estimate: a constant rate keeps jittering and the plain
    relative-change test never passes; the default decaying rate and the noise-aware rule converge."""
    settled = planted.fit_seeded(0, guide="normal", max_steps=1500, layout="dense")
    constant = planted.fit_seeded(0, guide="normal", max_steps=1500, layout="dense", lr_decay=1.0)
    assert settled.converged
    last, constant_last = settled.losses[-200:], constant.losses[-200:]
    # The draw's own noise stays, the optimiser's jitter goes: a lower, steadier ELBO.
    assert last.std() < 0.8 * constant_last.std()
    standard_error = np.sqrt(last.var() / len(last) + constant_last.var() / len(constant_last))
    assert last.mean() < constant_last.mean() - 3 * standard_error


def test_noisy_loss_and_default_decay_follow_the_guide():
    assert not InferenceConfig(guide="delta").noisy_loss(minibatch=False)
    assert InferenceConfig(guide="delta").noisy_loss(minibatch=True)
    assert InferenceConfig(guide="normal").noisy_loss(minibatch=False)
    assert InferenceConfig(guide="delta").effective_lr_decay(minibatch=False) == 1.0
    assert InferenceConfig(guide="lowrank").effective_lr_decay(minibatch=False) == 0.01
    assert InferenceConfig(guide="normal", lr_decay=0.5).effective_lr_decay(minibatch=False) == 0.5


# --------------------------------------------------------------------------------------------------
# (g) validation names the argument
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"guide": "laplace"}, "guide"),
        ({"layout": "sparse"}, "layout"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": float("inf")}, "learning_rate"),
        ({"max_steps": 0}, "max_steps"),
        ({"chunk": 0}, "chunk"),
        ({"lowrank_rank": 0}, "lowrank_rank"),
        ({"num_particles": 0}, "num_particles"),
        ({"dense_max_cells": 0}, "dense_max_cells"),
        ({"tol": -1e-3}, "tol"),
        ({"init_scale": 0.0}, "init_scale"),
    ],
)
def test_inference_config_rejects_bad_values_naming_the_argument(kwargs, name):
    with pytest.raises(ConfigError, match=name):
        InferenceConfig(**kwargs)


def test_run_svi_rejects_mismatched_or_empty_pairs():
    config = InferenceConfig(progress=False)
    with pytest.raises(ConfigError, match="equal length"):
        run_svi(3, 3, np.array([0, 1]), np.array([0]), np.array([1, 0]), ModelConfig(dim=1), config)
    with pytest.raises(ConfigError, match="non-empty"):
        run_svi(3, 3, np.array([], int), np.array([], int), np.array([], int), ModelConfig(dim=1), config)


@pytest.mark.parametrize(("layout", "bad_index"), [("pairs", -1), ("dense", -1), ("pairs", N_LLMS)])
def test_run_svi_rejects_llm_indices_outside_the_model(planted, layout, bad_index):
    llm = planted.llm.copy()
    llm[5] = bad_index
    with pytest.raises(ConfigError, match="llm"):
        run_svi(
            N_LLMS, N_ITEMS, llm, planted.item, planted.correct, ModelConfig(dim=DIM),
            InferenceConfig(max_steps=1, chunk=1, layout=layout, progress=False),
        )
