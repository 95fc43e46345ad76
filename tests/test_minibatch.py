"""Tests of minibatch SVI (``InferenceConfig.batch_size``) and device selection.

One mid-size problem throughout: 200 LLMs x 300 items drawn from the model, 30 % of the cells observed at
random (about 18,000 pairs: a sparse set of pairs, fitted in the pairs layout by both full batch and
minibatches). Sparser sets (e.g. 8 % of 300 x 500, 24 answers per item) leave MAP predictions of unobserved
cells unidentified: two full-batch fits from different seeds then disagree (correlation 0.93), so there is
no single optimum to compare with; at 30 % two seeds agree to 4 decimals.

The claims: the scaled minibatch loss is an unbiased estimate of the full-batch loss (priors and potentials
unscaled); minibatch MAP reaches the full-batch optimum; batch_size = n_pairs is the full batch; bad values
fail naming the value; the normal guide runs; the estimator and the CLI pass the option through; asking for
a GPU that JAX does not see fails with a clear error.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from click.testing import CliRunner
from numpyro.infer.util import log_density

from bayes_simrmf.cli import main
from bayes_simrmf.errors import ConfigError
from bayes_simrmf.predict import SimRMF
from bayes_simrmf.inference import (
    InferenceConfig,
    draw_minibatch,
    negative_log_joint,
    run_svi,
    select_device,
)
from bayes_simrmf.inference.stopping import _stop_rule
from bayes_simrmf.model import ModelConfig, PairsLayout, pair_logits, simrmf_model
from bayes_simrmf.synthetic import make_synthetic_dataset

N_LLMS, N_ITEMS, DIM = 200, 300, 4
MODEL = ModelConfig(dim=DIM)


class Problem:
    """Observed pairs as integer codes, plus every cell of the matrix for comparing predictions."""

    def __init__(self, seed: int = 0) -> None:
        dataset, _ = make_synthetic_dataset(
            n_llms=N_LLMS, n_items=N_ITEMS, dim=DIM, observed_share=0.3, seed_value=seed
        )
        responses = dataset.responses
        self.llm = np.searchsorted(np.unique(responses["llm"]), responses["llm"]).astype(np.int32)
        self.item = np.searchsorted(np.unique(responses["item"]), responses["item"]).astype(np.int32)
        self.correct = responses["correct"].to_numpy()
        self.n_pairs = len(self.correct)
        self.all_llm = jnp.asarray(np.repeat(np.arange(N_LLMS), N_ITEMS), jnp.int32)
        self.all_item = jnp.asarray(np.tile(np.arange(N_ITEMS), N_LLMS), jnp.int32)

    def fit(self, seed: int = 0, **options):
        return run_svi(N_LLMS, N_ITEMS, self.llm, self.item, self.correct, MODEL,
                       InferenceConfig(progress=False, **options), seed=seed)

    def probabilities(self, point: dict) -> np.ndarray:
        """``(n_llms * n_items,)`` predicted probabilities of every cell, observed or not."""
        return np.asarray(jax.nn.sigmoid(pair_logits(point, self.all_llm, self.all_item, xp=jnp)), np.float64)


@pytest.fixture(scope="module")
def problem() -> Problem:
    return Problem(seed=0)


@pytest.fixture(scope="module")
def full_fit(problem):
    # A tight tolerance, so this is the full-batch optimum the minibatch runs are measured against.
    result = problem.fit(max_steps=3000, tol=1e-7, layout="pairs")
    assert result.converged and result.layout == "pairs" and result.batch_size is None
    return result


@pytest.fixture(scope="module")
def batch_size(problem) -> int:
    return problem.n_pairs // 8


# --------------------------------------------------------------------------------------------------
# scaling
# --------------------------------------------------------------------------------------------------


def test_scaled_minibatch_loss_is_an_unbiased_estimate_of_the_full_loss(problem, full_fit):
    """Average the minibatch negative log joint (likelihood x n/b, priors once) over many keys."""
    point = {name: jnp.asarray(value) for name, value in full_fit.point.items()}
    layout = PairsLayout(llm=jnp.asarray(problem.llm), item=jnp.asarray(problem.item))
    observed = jnp.asarray(problem.correct, jnp.float32)
    batch = 500  # small, so a wrongly scaled prior (x n/b = 36) or likelihood would be far off
    scale = problem.n_pairs / batch

    def minibatch_loss(key):
        batch_layout, batch_observed = draw_minibatch(key, layout, observed, batch)
        args = (N_LLMS, N_ITEMS, batch_layout, MODEL)
        kwargs = {"correct": batch_observed, "likelihood_scale": scale}
        return -log_density(simrmf_model, args, kwargs, point)[0]

    keys = jax.random.split(jax.random.PRNGKey(3), 10_000)
    losses = np.asarray(jax.jit(jax.vmap(minibatch_loss))(keys), np.float64)
    full = negative_log_joint(full_fit)
    standard_error = losses.std(ddof=1) / np.sqrt(len(losses))
    assert abs(losses.mean() - full) < 4 * standard_error, (losses.mean(), full, standard_error)
    # The check has teeth: the tolerance is under 0.2 % of the loss, whereas a prior scaled by n/b too (x 36),
    # or a likelihood scaled by anything but n/b, would miss by a large multiple of the loss.
    assert 4 * standard_error < 2e-3 * abs(full)


def test_likelihood_scale_multiplies_only_the_likelihood(problem, full_fit):
    point = {name: jnp.asarray(value) for name, value in full_fit.point.items()}
    layout = PairsLayout(llm=jnp.asarray(problem.llm[:100]), item=jnp.asarray(problem.item[:100]))
    args = (N_LLMS, N_ITEMS, layout, MODEL)
    observed = jnp.asarray(problem.correct[:100], jnp.float32)
    unscaled = float(log_density(simrmf_model, args, {"correct": observed}, point)[0])
    scaled = float(log_density(simrmf_model, args, {"correct": observed, "likelihood_scale": 7.0}, point)[0])
    logits = pair_logits(point, layout.llm, layout.item, xp=jnp)
    log_likelihood = float(
        jnp.sum(observed * jax.nn.log_sigmoid(logits) + (1 - observed) * jax.nn.log_sigmoid(-logits))
    )
    assert scaled - unscaled == pytest.approx(6.0 * log_likelihood, rel=1e-4)


def test_batch_size_of_all_pairs_is_exactly_the_full_batch(problem, full_fit):
    with pytest.warns(UserWarning, match=f"batch_size={problem.n_pairs} is not smaller"):
        fallback = problem.fit(max_steps=100, tol=0.0, layout="pairs", batch_size=problem.n_pairs)
    assert fallback.batch_size is None
    np.testing.assert_array_equal(fallback.losses, full_fit.losses[:100])


# --------------------------------------------------------------------------------------------------
# minibatch MAP reaches the full-batch optimum
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def minibatch_fit(problem, batch_size):
    return problem.fit(max_steps=3000, batch_size=batch_size)


def test_minibatch_map_reaches_the_full_batch_optimum(problem, full_fit, minibatch_fit, batch_size):
    assert minibatch_fit.batch_size == batch_size and minibatch_fit.layout == "pairs"
    full_prob = problem.probabilities(full_fit.point)
    minibatch_prob = problem.probabilities(minibatch_fit.point)
    # Predictions of every cell agree: the posterior sd of a cell's probability is about 0.1 here, so a
    # mean difference under 0.02 is well inside the fit's own uncertainty.
    assert np.corrcoef(full_prob, minibatch_prob)[0, 1] > 0.99
    assert np.mean(np.abs(full_prob - minibatch_prob)) < 0.02
    # The full-batch objective at the minibatch solution is within 0.2 % of its optimum (about 0.01 nat
    # per observed pair), and not below it (the full-batch run did find the optimum).
    optimum = negative_log_joint(full_fit)
    at_minibatch = negative_log_joint(full_fit, minibatch_fit.point)
    assert optimum - 1e-4 * abs(optimum) <= at_minibatch < optimum + 2e-3 * abs(optimum), (at_minibatch, optimum)


def test_minibatch_runs_are_reproducible_from_the_seed(problem, batch_size):
    first, again = (problem.fit(seed=0, max_steps=60, tol=0.0, batch_size=batch_size) for _ in range(2))
    np.testing.assert_array_equal(first.losses, again.losses)
    # Each step drew another minibatch (the loss estimates are not one batch's, repeated).
    assert len(np.unique(first.losses)) == len(first.losses)


def test_normal_guide_runs_with_minibatches(problem, full_fit, batch_size):
    result = problem.fit(guide="normal", max_steps=400, batch_size=batch_size)
    assert result.batch_size == batch_size and np.all(np.isfinite(result.losses))
    assert result.point["llm_factors"].shape == (N_LLMS, DIM)
    scales = {name: np.asarray(value) for name, value in result.guide_params.items() if name.endswith("_auto_scale")}
    assert scales and all(np.all(value > 0) for value in scales.values())
    # It learns: the smoothed negative ELBO falls far below its start ...
    assert np.mean(result.losses[-50:]) < 0.8 * np.mean(result.losses[:50])
    # ... and the posterior median predicts much like the MAP (not identically: the median of a mean-field
    # posterior shrinks weakly identified factors, and 400 steps are a short run).
    correlation = np.corrcoef(problem.probabilities(result.point), problem.probabilities(full_fit.point))[0, 1]
    assert correlation > 0.8, correlation


# --------------------------------------------------------------------------------------------------
# stopping rule and validation
# --------------------------------------------------------------------------------------------------


def test_stop_rule_does_not_mistake_minibatch_noise_for_convergence():
    rng = np.random.default_rng(0)
    flat = [10_000 + rng.normal(0, 50, 50) for _ in range(2)]  # a plateau seen through minibatch noise
    falling = [10_000 + rng.normal(0, 50, 50), 9_000 + rng.normal(0, 50, 50)]
    for previous, current in (flat, falling):
        # Relative change ~1e-3 or more: never below tol = 1e-5 plus the noise, however lucky the draw.
        assert not _stop_rule(previous, current, 1e-5, noisy=True, final=False)
    # At max_steps: a plateau within its noise counts as converged, a still-falling loss does not.
    assert _stop_rule(*flat, 1e-5, noisy=True, final=True)
    assert not _stop_rule(*falling, 1e-5, noisy=True, final=True)
    # A chunk mean that is steady to well below tol (large batches) may stop early.
    steady = [10_000 + rng.normal(0, 1e-3, 50) for _ in range(2)]
    assert _stop_rule(*steady, 1e-5, noisy=True, final=False)
    # Full batch keeps the plain relative-change rule.
    assert _stop_rule(np.full(5, 100.0), np.full(5, 100.0005), 1e-5, noisy=False, final=False)


@pytest.mark.parametrize("value", [0, -5, 2.5, True, "100"])
def test_bad_batch_size_raises_config_error_naming_the_value(value):
    with pytest.raises(ConfigError, match="batch_size") as error:
        InferenceConfig(batch_size=value)
    assert repr(value) in str(error.value)


def test_batch_size_with_the_dense_layout_is_refused():
    with pytest.raises(ConfigError, match="layout='dense'"):
        InferenceConfig(batch_size=100, layout="dense")
    with pytest.raises(ConfigError, match="lr_decay"):
        InferenceConfig(batch_size=100, lr_decay=0.0)


# --------------------------------------------------------------------------------------------------
# estimator, CLI, devices
# --------------------------------------------------------------------------------------------------


def test_estimator_passes_batch_size_through_and_records_it(problem):
    llm_ids = np.char.add("llm-", problem.llm.astype(str))
    item_ids = np.char.add("item-", problem.item.astype(str))
    model = SimRMF(dim=DIM, max_steps=50, batch_size=1000, progress=False).fit(llm_ids, item_ids, problem.correct)
    assert model.svi_result_.batch_size == 1000 and model.layout_ == "pairs"
    assert model.get_config()["batch_size"] == 1000
    assert SimRMF.from_config(model.get_config()).batch_size == 1000
    assert SimRMF().get_config()["batch_size"] is None
    with pytest.raises(ConfigError, match="batch_size must be a positive integer or None.*got 0"):
        SimRMF(batch_size=0).fit(llm_ids, item_ids, problem.correct)


def test_select_device_finds_the_cpu_and_explains_a_missing_gpu():
    assert select_device("cpu").platform == "cpu"
    assert select_device("auto") == jax.devices()[0]
    with pytest.raises(ConfigError, match="device must be one of auto, cpu, gpu; got 'tpu'"):
        select_device("tpu")
    if any(device.platform == "gpu" for device in jax.devices()):
        pytest.skip("JAX sees a GPU here")
    with pytest.raises(ConfigError) as error:
        select_device("gpu")
    message = str(error.value)
    assert "'gpu' requested" in message and "cpu:0" in message and "jax[cuda12]" in message


def test_cli_fit_options(monkeypatch):
    runner = CliRunner()
    help_text = runner.invoke(main, ["fit", "--help"]).output
    assert "--batch-size" in help_text and "--device [auto|cpu|gpu]" in help_text
    assert runner.invoke(main, ["fit", "--batch-size", "0"]).exit_code == 2  # a usage error, before any work
    if not any(device.platform == "gpu" for device in jax.devices()):
        result = runner.invoke(main, ["fit", "--device", "gpu"])
        assert result.exit_code == 1
        assert result.output.startswith("error: device 'gpu' requested") and "jax[cuda12]" in result.output

    # --batch-size reaches the estimator, and the fit runs under the chosen device: stop right there.
    import bayes_simrmf.evaluate

    seen = {}

    class Reached(Exception):
        pass

    def capture(estimator, split, **_):
        seen["batch_size"] = estimator.batch_size
        seen["device"] = jnp.zeros(1).devices()
        raise Reached

    monkeypatch.setattr(bayes_simrmf.evaluate, "fit_on_split", capture)
    result = runner.invoke(main, ["fit", "--method", "mf", "--batch-size", "512", "--device", "cpu", "--quiet",
                                  "--n-known-llms", "100",
                                  "--n-known-items", "100", "--T", "20", "--no-baseline"])
    assert isinstance(result.exception, Reached), result.output
    assert seen["batch_size"] == 512 and seen["device"] == {jax.devices("cpu")[0]}
