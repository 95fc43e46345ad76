"""The Gibbs sampler (inference="gibbs"): Pólya–Gamma draws against their closed forms, the sampler's posterior
against NUTS on the same model, and the estimator's sampler path (predictions, fold-in per draw, saving, ArviZ)."""

from __future__ import annotations

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from bayes_simrmf.errors import ConfigError
from bayes_simrmf.evaluate import to_inference_data
from bayes_simrmf.inference.gibbs import (GibbsConfig, Potential, _draw_rows_with_potential, _wishart,
                                          align_rotations, run_gibbs)
from bayes_simrmf.inference.polya_gamma import pg_mean, pg_variance, sample_pg1
from bayes_simrmf.inference.samples import SamplePosterior
from bayes_simrmf.predict import SimRMF
from bayes_simrmf.saving import load_model, save_model
from bayes_simrmf.similarity import SideInformation
from bayes_simrmf.synthetic import make_synthetic_dataset

SMALL = {"chains": 2, "warmup": 100, "samples": 200, "thin": 2, "progress": False}


# Pólya–Gamma draws ----------------------------------------------------------------------------------
def _series_moments(c: float, terms: int = 200_000) -> tuple[float, float]:
    """Mean and variance of PG(1, c) from its series (float64): Σ 1/(2π² d_k) and Σ 1/(4π⁴ d_k²)."""
    d = (np.arange(1, terms + 1) - 0.5) ** 2 + c**2 / (4 * np.pi**2)
    return float(np.sum(1 / d) / (2 * np.pi**2)), float(np.sum(1 / d**2) / (4 * np.pi**4))


@pytest.mark.parametrize("c", [0.0, 0.003, 0.9, 1.1, 6.0, 40.0])
def test_pg_closed_forms_match_the_series(c):
    mean, variance = _series_moments(c)
    assert float(pg_mean(jnp.float32(c))) == pytest.approx(mean, rel=1e-4)
    assert float(pg_variance(jnp.float32(c))) == pytest.approx(variance, rel=1e-3)


@pytest.mark.parametrize("c", [0.0, 0.7, 3.0, -12.0])
def test_pg_draws_have_the_pg_mean_and_variance(c):
    draws = np.asarray(sample_pg1(jax.random.PRNGKey(3), jnp.full(400_000, c)), np.float64)
    mean, variance = float(pg_mean(jnp.float32(c))), float(pg_variance(jnp.float32(c)))
    assert (draws >= 0).all()
    assert abs(draws.mean() - mean) < 4 * np.sqrt(variance / len(draws))
    assert draws.var() / variance == pytest.approx(1.0, abs=0.03)


def test_wishart_draws_have_the_wishart_mean():
    scale = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 0.5]])
    keys = jax.random.split(jax.random.PRNGKey(0), 20_000)
    draws = np.asarray(jax.vmap(lambda k: _wishart(k, 5.0, jnp.asarray(np.linalg.inv(scale), jnp.float32)))(keys))
    np.testing.assert_allclose(draws.mean(axis=0), 5.0 * scale, atol=0.12)


def test_aligning_rotations_keeps_every_logit():
    rng = np.random.default_rng(0)
    rows = {"llm_rows": rng.normal(size=(2, 3, 7, 4)), "item_rows": rng.normal(size=(2, 3, 5, 4)),
            "llm_population_loc": rng.normal(size=(2, 3, 4)), "item_population_loc": rng.normal(size=(2, 3, 1, 4)),
            "llm_population_cov": np.broadcast_to(np.eye(4), (2, 3, 4, 4)),
            "item_population_cov": np.broadcast_to(np.eye(4), (2, 3, 4, 4))}
    aligned = align_rotations(rows, dim=3)
    before = np.einsum("csnp,csmp->csnm", rows["llm_rows"][..., :3], rows["item_rows"][..., :3])
    after = np.einsum("csnp,csmp->csnm", aligned["llm_rows"][..., :3], aligned["item_rows"][..., :3])
    np.testing.assert_allclose(after, before, atol=1e-10)
    np.testing.assert_allclose(aligned["llm_rows"][..., 3], rows["llm_rows"][..., 3])  # biases do not turn
    spread_before = np.var(rows["llm_rows"][..., :3].reshape(6, -1), axis=0).mean()
    spread_after = np.var(aligned["llm_rows"][..., :3].reshape(6, -1), axis=0).mean()
    assert spread_after < spread_before


# the sampler against NUTS on the same model -----------------------------------------------------------
def test_gibbs_posterior_matches_nuts_on_a_small_problem():
    from numpyro.infer import MCMC, NUTS

    from bayes_simrmf.model.population import population_model

    rng = np.random.default_rng(5)
    n_llms, n_items, dim = 8, 7, 1
    llm, item = (grid.ravel().astype(np.int32) for grid in np.meshgrid(np.arange(n_llms), np.arange(n_items),
                                                                      indexing="ij"))
    keep = rng.random(len(llm)) < 0.8
    llm, item = llm[keep], item[keep]
    truth = rng.normal(size=(n_llms, 2))[llm] @ np.array([1.0, 1.0]) + rng.normal(size=n_items)[item]
    correct = (rng.random(len(llm)) < 1 / (1 + np.exp(-truth))).astype(np.float32)
    mcmc = MCMC(NUTS(population_model, target_accept_prob=0.9), num_warmup=300, num_samples=1000, num_chains=1,
                progress_bar=False)
    mcmc.run(jax.random.PRNGKey(0), n_llms, n_items, jnp.asarray(llm), jnp.asarray(item), dim=dim,
             correct=jnp.asarray(correct))
    nuts = 1 / (1 + np.exp(-np.asarray(mcmc.get_samples(group_by_chain=True)["logits"])))
    draws = run_gibbs(n_llms, n_items, llm, item, correct, dim=dim, biases=True, seed=1,
                      config=GibbsConfig(chains=4, warmup=300, samples=1500, thin=3, progress=False)).draws
    logits = (draws["llm_factors"][:, :, llm, 0] * draws["item_factors"][:, :, item, 0] + draws["llm_bias"][:, :, llm]
              + draws["item_bias"][:, :, item])
    gibbs = 1 / (1 + np.exp(-logits))
    ess = {name: az.ess(az.convert_to_dataset({"p": value}))["p"].to_numpy() for name, value in
           (("nuts", nuts), ("gibbs", gibbs))}
    mean_error = np.sqrt(nuts.var(axis=(0, 1)) / ess["nuts"] + gibbs.var(axis=(0, 1)) / ess["gibbs"])
    z = (nuts.mean(axis=(0, 1)) - gibbs.mean(axis=(0, 1))) / mean_error
    assert np.mean(np.abs(z)) < 1.2 and np.max(np.abs(z)) < 4.0, z
    ratio = gibbs.std(axis=(0, 1)) / nuts.std(axis=(0, 1))
    assert 0.85 < np.median(ratio) < 1.15 and ratio.min() > 0.6, ratio
    assert float(az.rhat(az.convert_to_dataset({"p": gibbs}))["p"].max()) < 1.02


# the estimator ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data():
    dataset, _ = make_synthetic_dataset(70, 90, dim=2, seed_value=2)
    responses = dataset.responses
    new_llm = "synthetic/llm-00069"
    train = responses[(responses.llm != new_llm) & (responses.item < "synthetic/item-000080")]
    return responses, train, new_llm


@pytest.fixture(scope="module")
def sampled(data):
    _, train, _ = data
    model = SimRMF(dim=2, inference="gibbs", gibbs_init="random", seed=0, **SMALL)
    return model.fit(train.llm, train.item, train.correct, item_groups=_parity_groups(train.item.unique()))


def _parity_groups(items) -> dict[str, str]:
    """Two item groups (by the parity of the id's last digit; new ids join "odd"), the shape every fit here shares."""
    return {item: ("even" if item[-1].isdigit() and int(item[-1]) % 2 == 0 else "odd") for item in items}


def test_gibbs_fit_predicts_better_than_the_mean_with_draws_kept(data, sampled):
    responses, train, new_llm = data
    posterior = sampled.posterior_
    assert isinstance(posterior, SamplePosterior) and (posterior.chains, posterior.draws_per_chain) == (2, 100)
    held_out = responses[(responses.llm != new_llm) & (responses.item < "synthetic/item-000080")].sample(
        2000, random_state=0)
    prob = sampled.predict(held_out.llm, held_out.item)
    assert ((prob > 0) & (prob < 1)).all()
    log_loss = -np.mean(held_out.correct * np.log(prob) + (1 - held_out.correct) * np.log(1 - prob))
    mean = train.correct.mean()
    baseline = -np.mean(held_out.correct * np.log(mean) + (1 - held_out.correct) * np.log(1 - mean))
    assert log_loss < 0.9 * baseline
    interval = sampled.predict_interval(held_out.llm[:50], held_out.item[:50], n_draws=150, seed=1)
    assert ((interval.lower <= interval.prob) & (interval.prob <= interval.upper)).all()
    assert (interval.upper - interval.lower).mean() > 0.01
    assert sampled.sampler_diagnostics_["n_summaries"] > 0 and sampled.sampler_diagnostics_["max_rhat"] >= 1.0


def test_gibbs_draws_reload_to_identical_intervals(tmp_path, data, sampled):
    responses, _, _ = data
    llm, item = responses.llm.to_numpy()[:40], responses.item.to_numpy()[:40]
    known = np.isin(llm, sampled.llms_) & np.isin(item, sampled.items_)
    llm, item = llm[known], item[known]
    before = sampled.predict_interval(llm, item, n_draws=120, seed=4)
    loaded = load_model(save_model(tmp_path / "gibbs", sampled, data_fingerprint="x"), data_fingerprint="x").estimator
    assert isinstance(loaded.posterior_, SamplePosterior) and loaded.posterior_.n_draws == sampled.posterior_.n_draws
    np.testing.assert_array_equal(loaded.predict_interval(llm, item, n_draws=120, seed=4).to_numpy(), before.to_numpy())
    np.testing.assert_array_equal(loaded.predict(llm, item), sampled.predict(llm, item))


def test_new_llm_is_folded_into_every_draw(data, sampled):
    responses, _, new_llm = data
    model = SimRMF.from_config(sampled.get_config())
    model.fitted_ = sampled.fitted_
    report = model.fold_in("llm", [new_llm])
    assert report.loc[new_llm, "n_answers"] == 0
    draws = model.posterior_.draws["llm_bias"]
    assert draws.shape[2] == len(sampled.llms_) + 1
    # A new LLM without answers is a draw from the learned population: its bias spreads like the population's.
    population_sd = np.sqrt(model.posterior_.draws["llm_population_cov"][..., -1, -1]).mean()
    assert 0.5 * population_sd < draws[..., -1].std() < 2.0 * population_sd
    answers = responses[(responses.llm == new_llm) & (responses.item < "synthetic/item-000080")].iloc[:40]
    model_k = SimRMF.from_config(sampled.get_config())
    model_k.fitted_ = sampled.fitted_
    report_k = model_k.fold_in("llm", [new_llm], answers=answers)
    assert report_k.loc[new_llm, "n_answers"] == 40
    assert report_k.loc[new_llm, "posterior_sd_logit"] < report.loc[new_llm, "posterior_sd_logit"]
    item = answers.item.to_numpy()
    shot = model_k.predict(np.full(len(item), new_llm), item)
    zero = model.predict(np.full(len(item), new_llm), item)
    assert np.mean(np.abs(shot - answers.correct.to_numpy())) < np.mean(np.abs(zero - answers.correct.to_numpy()))


def test_kernel_mode_folds_unfitted_items_in_per_draw(data):
    _, train, _ = data
    items = np.sort(np.concatenate([train.item.unique(), ["new-a", "new-b"]]))
    factor = np.random.default_rng(0).normal(size=(len(items), 5))
    side = SideInformation(None, None, items, factor)
    model = SimRMF(method="simrmf", dim=2, inference="gibbs", gibbs_init="random", seed=0, **SMALL)
    model.fit(train.llm, train.item, train.correct, items=items, side=side, item_groups=_parity_groups(items))
    assert list(model.items_[-2:]) == ["new-a", "new-b"] and not model.inductive_
    spread = model.posterior_.draws["item_bias"][..., -2:].std(axis=(0, 1))
    assert (spread > 0.05).all()
    prob = model.predict(np.array([train.llm.iloc[0]] * 2), np.array(["new-a", "new-b"]))
    assert ((prob > 0) & (prob < 1)).all()


def test_inference_data_keeps_the_sampler_chains(data, sampled):
    _, train, _ = data
    idata = to_inference_data(sampled, train.llm, train.item, train.correct, max_pairs=200)
    assert idata.posterior.sizes["chain"] == 2 and idata.posterior.sizes["draw"] == 100
    assert idata.attrs["guide"] == "gibbs"
    rhat = az.rhat(idata.posterior_predictive)
    assert np.isfinite(rhat["correct"].to_numpy()).any()


def test_gibbs_refuses_what_it_cannot_sample():
    side = SideInformation(None, None, np.array(["x", "y"]), np.eye(2))
    for options in ({"similarity_mode": "cold"}, {"similarity_mode": "joint", "similarity_on": "augmented"},
                    {"similarity_mode": "joint", "profile_scale": True}):
        with pytest.raises(ConfigError, match="takes no Gram potential of the form"):
            SimRMF(method="simrmf", inference="gibbs", **options).fit(["a", "b"], ["x", "y"], [1, 0], side=side)
    with pytest.raises(ConfigError, match="scale and row moves"):
        SimRMF(method="simrmf", similarity_mode="joint", similarity_on="factors", profile_scale=False,
               inference="gibbs", gibbs_row_move=True).fit(["a", "b"], ["x", "y"], [1, 0], side=side)
    with pytest.raises(ConfigError, match="takes no Gram potential"):
        SimRMF(method="simrmf", similarity_mode="joint", profile_scale=False, prior="learned", guide="normal").fit(
            ["a", "b"], ["x", "y"], [1, 0], side=side)
    with pytest.raises(ConfigError, match="samples"):
        SimRMF(inference="gibbs", samples=2, thin=4).check_params()
    with pytest.raises(ConfigError, match="chains"):
        SimRMF(inference="gibbs", chains=0).check_params()


def test_population_predictions_for_unseen_entities_use_the_draws(data, sampled):
    prob = sampled.predict(["never-seen"], [sampled.items_[0]], unknown="population")
    assert 0 < prob[0] < 1
    group = sampled.predict_group_interval(["never-seen"] * 5, sampled.items_[:5], unknown="population", n_draws=50)
    assert (group["upper"] > group["lower"]).all()
    frame = pd.DataFrame({"mean": group["mean"]})
    assert frame["mean"].between(0, 1).all()


def test_cli_fit_with_the_sampler_reports_draws_and_r_hat(tmp_path):
    from click.testing import CliRunner

    from bayes_simrmf.cli import main

    folder = tmp_path / "gibbs"
    result = CliRunner().invoke(main, [
        "fit", "--method", "mf", "--T", "50", "--dim", "2", "--n-known-llms", "120", "--n-known-items", "200",
        "--n-test-pairs", "5000", "--quiet", "--inference", "gibbs", "--chains", "2", "--warmup", "20",
        "--samples", "40", "--thin", "2", "--gibbs-init", "random", "--out", str(folder)])
    assert result.exit_code == 0, result.output
    assert "sampled mf (gibbs)" in result.output and "2 chains x 20 kept draws" in result.output
    assert "R-hat" in result.output and "MiB" in result.output
    loaded = load_model(folder).estimator
    assert loaded.inference == "gibbs" and loaded.posterior_.n_draws == 40


def test_scale_move_leaves_the_logits_and_samples_its_own_target():
    """The scale move changes no pair's logit, and iterated on fixed rows its cumulative log-scale has the mean and
    sd of the density it targets (rows' marginal with the populations integrated out, times the Jacobian),
    computed here by quadrature on a grid."""
    from bayes_simrmf.inference.gibbs import _population_scatter, _scale_move

    rng = np.random.default_rng(3)
    n_llms, n_items, n_groups, nu0, beta0 = 12, 20, 2, 2.0, 2.0
    llm_rows = rng.normal(0.0, 1.0, (n_llms, 2)).astype(np.float32)  # one factor and the bias
    item_rows = rng.normal(0.0, 0.7, (n_items, 2)).astype(np.float32)
    group = np.repeat(np.arange(n_groups), n_items // n_groups).astype(np.int32)
    moved_llm, moved_item = _scale_move(jax.random.PRNGKey(0), llm_rows, item_rows, group, n_groups, 1, beta0, nu0, 0.5)
    assert np.allclose(np.asarray(moved_llm[:, 0] * moved_item[0, 0]), llm_rows[:, 0] * item_rows[0, 0], rtol=1e-5)
    assert np.array_equal(np.asarray(moved_llm[:, 1]), llm_rows[:, 1])

    step = jax.jit(lambda key, rows_l, rows_i: _scale_move(key, rows_l, rows_i, group, n_groups, 1, beta0, nu0, 0.5))
    keys = jax.random.split(jax.random.PRNGKey(1), 6000)
    rows_l, rows_i, path = jnp.asarray(llm_rows), jnp.asarray(item_rows), []
    for key in keys:
        rows_l, rows_i = step(key, rows_l, rows_i)
        path.append(float(jnp.log(rows_l[0, 0] / llm_rows[0, 0])))
    path = np.asarray(path[500:])

    llm_s = np.asarray(_population_scatter(jnp.asarray(llm_rows), jnp.zeros(n_llms, jnp.int32), 1, beta0), np.float64)
    item_s = np.asarray(_population_scatter(jnp.asarray(item_rows), jnp.asarray(group), n_groups, beta0), np.float64)
    grid = np.linspace(-4.0, 4.0, 4001)
    log_density = []
    for t in grid:
        scale = np.array([np.exp(t), 1.0])
        log_density.append(-0.5 * (nu0 + n_llms) * np.linalg.slogdet(np.eye(2) + np.outer(scale, scale) * llm_s)[1]
                           - 0.5 * (nu0 + n_items) * np.linalg.slogdet(np.eye(2) + item_s / np.outer(scale, scale))[1]
                           + (n_llms - n_items) * t)
    weights = np.exp(np.asarray(log_density) - np.max(log_density))
    weights /= weights.sum()
    mean = float(np.sum(weights * grid))
    sd = float(np.sqrt(np.sum(weights * (grid - mean) ** 2)))
    assert 0.05 < sd < 2.0
    # Monte Carlo error with autocorrelated steps: allow 0.15 sd on the mean, 15% on the sd.
    assert abs(path.mean() - mean) < 0.15 * sd, (path.mean(), mean, sd)
    assert abs(path.std() / sd - 1.0) < 0.15, (path.std(), sd)


def test_row_move_samples_a_rows_exact_conditional():
    """Iterated alone on one question's row [factor, bias] with the LLM rows and the population fixed, the row move's
    path has the mean and sd of that row's exact conditional (Bernoulli likelihood of its answers times the
    population prior), computed by quadrature on a 2-d grid; it leaves the other side's rows alone."""
    from bayes_simrmf.inference.gibbs import _Data, _row_metropolis

    rng = np.random.default_rng(5)
    n_llms = 12
    llm_rows = rng.normal(0.0, 1.0, (n_llms, 2)).astype(np.float32)  # one factor and the bias
    # Two questions: one that every LLM got wrong (the case the move is for), one with mixed answers.
    llm = np.tile(np.arange(n_llms, dtype=np.int32), 2)
    item = np.repeat(np.arange(2, dtype=np.int32), n_llms)
    correct = np.concatenate([np.zeros(n_llms), rng.integers(0, 2, n_llms)]).astype(np.float32)
    data = _Data(jnp.asarray(llm), jnp.asarray(item), jnp.asarray(correct - 0.5), jnp.zeros(2, jnp.int32), None)
    prior_loc = np.array([0.2, -0.5], np.float32)
    prior_prec = np.array([[1.5, 0.3], [0.3, 0.8]], np.float32)

    def step(rows, key):
        moved_llm, rows = _row_metropolis(key, jnp.asarray(llm_rows), rows, data, "item",
                                          jnp.broadcast_to(prior_loc, (2, 2)), jnp.asarray(prior_prec), 1, True, 1.0)
        return rows, (rows, jnp.max(jnp.abs(moved_llm - llm_rows)))

    _, (path, llm_change) = jax.jit(lambda keys: jax.lax.scan(step, jnp.zeros((2, 2), jnp.float32), keys))(
        jax.random.split(jax.random.PRNGKey(2), 12000))
    assert float(jnp.max(llm_change)) == 0.0
    path = np.asarray(path[1000:])

    grid = np.linspace(-7.0, 5.0, 301)
    factor, bias = np.meshgrid(grid, grid, indexing="ij")
    for question in range(2):
        y = correct[item == question]
        logits = factor[..., None] * llm_rows[:, 0] + bias[..., None] + llm_rows[:, 1]
        log_lik = np.sum(y * logits - np.logaddexp(0.0, logits), axis=-1)
        centred = np.stack([factor - prior_loc[0], bias - prior_loc[1]], axis=-1)
        log_prior = -0.5 * np.einsum("...p,pq,...q->...", centred, prior_prec.astype(np.float64), centred)
        weights = np.exp(log_lik + log_prior - np.max(log_lik + log_prior))
        weights /= weights.sum()
        for coordinate, values in ((0, factor), (1, bias)):
            mean = float(np.sum(weights * values))
            sd = float(np.sqrt(np.sum(weights * (values - mean) ** 2)))
            drawn = path[:, question, coordinate]
            # Monte Carlo error with autocorrelated steps: 0.15 sd on the mean, 15% on the sd.
            assert abs(drawn.mean() - mean) < 0.15 * sd, (question, coordinate, drawn.mean(), mean, sd)
            assert abs(drawn.std() / sd - 1.0) < 0.15, (question, coordinate, drawn.std(), sd)


def test_potential_step_samples_the_rows_conditional_under_the_gram_potential():
    """Two one-dimensional rows with Gaussian data terms and the Gram potential: sweeps of the row-by-row step
    (Gaussian proposal, quartic diagonal accepted) against 2-d quadrature of the target. Leaving out the quartic
    term moves E[x1] by 0.06 and halving the off-diagonal term moves E[x1 x2] by 0.08, past the tolerance."""
    factor = jnp.array([[1.0, 0.3], [0.8, -0.5]])
    weight, precision, linear = 0.5, jnp.array([1.0, 2.0])[:, None, None], jnp.array([[0.3], [-0.2]])

    def step(rows, key):
        rows = _draw_rows_with_potential(key, precision, linear, rows, factor, weight, 1)
        return rows, rows[:, 0]

    keys = jax.random.split(jax.random.PRNGKey(0), 40_000)
    draws = np.asarray(jax.jit(lambda k: jax.lax.scan(step, jnp.zeros((2, 1)), k))(keys)[1], np.float64)
    grid = np.linspace(-4, 4, 801)
    x1, x2 = np.meshgrid(grid, grid, indexing="ij")
    c = np.asarray(factor @ factor.T, np.float64)
    log_target = (-0.5 * x1**2 + 0.3 * x1 - x2**2 - 0.2 * x2
                  - weight * ((x1**2 - c[0, 0]) ** 2 + 2 * (x1 * x2 - c[0, 1]) ** 2 + (x2**2 - c[1, 1]) ** 2))
    density = np.exp(log_target - log_target.max())
    density /= density.sum()
    for exact, sampled in ((x1, draws[:, 0]), (x2, draws[:, 1]), (x1 * x1, draws[:, 0] ** 2),
                           (x1 * x2, draws[:, 0] * draws[:, 1])):
        assert float(sampled.mean()) == pytest.approx(float((density * exact).sum()), abs=0.02)


def test_paper_form_is_sampled_and_places_questions_without_data():
    """SimRMF as the paper writes it (joint Gram potential on the item factors) under the sampler: questions with no
    training answer are rows of the model placed by the potential, so their factors' Gram with every question
    matches √S far better than with no potential (κ = 0), where they are draws from the population."""
    rng = np.random.default_rng(0)
    n_llms, n_items, n_cold = 30, 40, 5
    latent_llms, latent_items = rng.normal(size=(n_llms, 2)), rng.normal(size=(n_items, 2))
    llms, items = np.array([f"l{i}" for i in range(n_llms)]), np.array([f"q{j}" for j in range(n_items)])
    llm, item = (grid.ravel() for grid in np.meshgrid(np.arange(n_llms), np.arange(n_items - n_cold), indexing="ij"))
    keep = rng.random(len(llm)) < 0.5
    llm, item = llm[keep], item[keep]
    correct = (rng.random(len(llm)) < 1 / (1 + np.exp(-np.sum(latent_llms[llm] * latent_items[item], 1)))).astype(int)
    side = SideInformation(None, None, items, latent_items + 0.1 * rng.normal(size=latent_items.shape))
    mismatch = {}
    for weight in (0.0, 1.0):
        model = SimRMF(method="simrmf", similarity_mode="joint", similarity_on="factors", profile_scale=False,
                       inference="gibbs", gibbs_init="random", dim=2, similarity_weight_items=weight, seed=0, **SMALL)
        model.fit(llms[llm], items[item], correct, llms=llms, items=items, side=side)
        assert list(model.items_[-n_cold:]) == list(items[-n_cold:])
        assert model.posterior_.draws["item_factors"].shape[:3] == (2, 100, n_items)
        factors = model.posterior_.draws["item_factors"].reshape(-1, n_items, 2).astype(np.float64)
        sqrt_similarity = side.rows_for("item", model.items_) @ side.rows_for("item", model.items_).T
        gram = np.einsum("snd,smd->snm", factors[:, -n_cold:], factors)
        mismatch[weight] = float(np.mean((gram - sqrt_similarity[-n_cold:]) ** 2))
        prob = model.predict(llms[:3], items[-3:])
        assert ((prob > 0) & (prob < 1)).all()
    assert mismatch[1.0] < 0.1 * mismatch[0.0]


def test_run_gibbs_checks_its_potentials():
    llm, item, correct = np.array([0, 1]), np.array([0, 1]), np.array([1, 0])
    config = GibbsConfig(chains=1, warmup=0, samples=1, thin=1, progress=False)
    cases = (
        ({"item": Potential(np.ones((3, 2)), 1.0)}, "one row per item \\(2\\)"),
        ({"llm": Potential(np.ones((2, 2)), -1.0)}, "finite number >= 0"),
        ({"item": Potential(np.full((2, 2), np.nan), 1.0)}, "non-finite"),
        ({"questions": Potential(np.ones((2, 2)), 1.0)}, "sides 'llm' and 'item'"),
    )
    for potentials, message in cases:
        with pytest.raises(ConfigError, match=message):
            run_gibbs(2, 2, llm, item, correct, dim=1, biases=True, config=config, potentials=potentials)
    with pytest.raises(ConfigError, match="dim >= 1"):
        run_gibbs(2, 2, llm, item, correct, dim=0, biases=True, config=config,
                  potentials={"item": Potential(np.ones((2, 2)), 1.0)})
