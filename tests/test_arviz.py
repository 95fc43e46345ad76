"""ArviZ export of a fitted SimRMF (bayes_simrmf.evaluate.inference_data.to_inference_data)."""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest

from bayes_simrmf.evaluate.inference_data import to_inference_data
from bayes_simrmf.errors import BayesSimRMFError, ConfigError, NotFittedError
from bayes_simrmf.predict import MeanScore, SimRMF
from bayes_simrmf.evaluate import fit_on_split
from bayes_simrmf.model import INTERCEPT, ITEM_BIAS, ITEM_FACTORS, LLM_BIAS, LLM_FACTORS
from bayes_simrmf.splits import Protocol
from bayes_simrmf.synthetic import make_synthetic_dataset

N_DRAWS = 80
DIM = 2


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@pytest.fixture(scope="module")
def split():
    dataset, _ = make_synthetic_dataset(60, 100, dim=DIM, seed_value=0)
    return Protocol(40, 70, T=30, seed=0, n_test_pairs=2000).split(dataset, log=None)


@pytest.fixture(scope="module")
def train(split):
    pairs = split.pairs["train"]
    return split.llms[pairs.llm], split.items[pairs.item], pairs.correct


@pytest.fixture(scope="module")
def model(split):
    return fit_on_split(SimRMF(guide="normal", dim=DIM, progress=False, max_steps=300, learning_rate=0.02), split)


@pytest.fixture(scope="module")
def idata(model, train):
    # A batch size that does not divide the pairs, so batch edges are exercised.
    return to_inference_data(model, *train, n_draws=N_DRAWS, seed=3, batch_pairs=333)


def _by_hand_logits(idata, llm_id, item_id):
    """Logits (n_draws,) of one pair from the exported posterior draws."""
    post = idata.posterior.isel(chain=0)
    logit = post[INTERCEPT].values.astype(np.float64).copy()
    logit += post[LLM_BIAS].sel(llm=llm_id).values + post[ITEM_BIAS].sel(item=item_id).values
    logit += np.sum(post[LLM_FACTORS].sel(llm=llm_id).values * post[ITEM_FACTORS].sel(item=item_id).values, axis=-1)
    return logit


def test_groups_dims_and_coords(idata, model, train):
    llm, item, correct = train
    n_pairs, n_llms, n_items = len(llm), len(model.llms_), len(model.items_)
    assert {"posterior", "posterior_predictive", "log_likelihood", "observed_data", "fit"} <= set(idata.groups())
    post = idata.posterior
    expected = {
        LLM_FACTORS: (("chain", "draw", "llm", "latent"), (1, N_DRAWS, n_llms, DIM)),
        ITEM_FACTORS: (("chain", "draw", "item", "latent"), (1, N_DRAWS, n_items, DIM)),
        LLM_BIAS: (("chain", "draw", "llm"), (1, N_DRAWS, n_llms)),
        ITEM_BIAS: (("chain", "draw", "item"), (1, N_DRAWS, n_items)),
        INTERCEPT: (("chain", "draw"), (1, N_DRAWS)),
    }
    assert set(post.data_vars) == set(expected)
    for name, (dims, shape) in expected.items():
        assert post[name].dims == dims and post[name].shape == shape, name
    np.testing.assert_array_equal(post.llm.values, model.llms_)
    np.testing.assert_array_equal(post.item.values, model.items_)
    np.testing.assert_array_equal(post.latent.values, np.arange(DIM))
    # The posterior is the estimator's own draws, rows in llms_ / items_ order.
    draws = model.sample_posterior(N_DRAWS, 3)
    for name in expected:
        np.testing.assert_array_equal(post[name].values[0], draws[name])

    observed = idata.observed_data
    assert observed["correct"].dims == ("pair",)
    np.testing.assert_array_equal(observed["correct"].values, correct)
    np.testing.assert_array_equal(observed.pair.values, np.arange(n_pairs))
    np.testing.assert_array_equal(observed.pair_llm.values, llm)
    np.testing.assert_array_equal(observed.pair_item.values, item)
    for group in (idata.posterior_predictive, idata.log_likelihood):
        assert group["correct"].dims == ("chain", "draw", "pair")
        assert group["correct"].shape == (1, N_DRAWS, n_pairs)
        np.testing.assert_array_equal(group.pair_llm.values, llm)
    assert set(np.unique(idata.posterior_predictive["correct"].values)) == {0, 1}
    # Grouping by LLM works off the pair coordinates.
    per_llm = idata.observed_data["correct"].groupby("pair_llm").mean()
    np.testing.assert_allclose(per_llm.sel(pair_llm=llm[0]).item(), correct[llm == llm[0]].mean())

    np.testing.assert_allclose(idata.fit["loss"].values, model.losses_)
    assert idata.fit["loss"].dims == ("step",) and len(idata.fit.step) == len(model.losses_) == 300
    for attrs in (idata.attrs, idata.posterior.attrs):
        assert attrs["guide"] == "normal" and attrs["method"] == "mf" and attrs["dim"] == DIM
        assert attrs["n_draws"] == N_DRAWS and attrs["n_pairs"] == n_pairs


def test_log_likelihood_matches_a_hand_computed_bernoulli(idata, train):
    llm, item, correct = train
    log_lik = idata.log_likelihood["correct"].values[0]
    for row in (0, 17, 334, len(llm) - 1):  # 334: just past the first batch of 333
        prob = _sigmoid(_by_hand_logits(idata, llm[row], item[row]))
        expected = np.log(prob) if correct[row] == 1 else np.log1p(-prob)
        np.testing.assert_allclose(log_lik[:, row], expected, rtol=1e-5, atol=1e-6)
    assert np.all(log_lik < 0) and np.all(np.isfinite(log_lik))


def test_batching_and_seeds(idata, model, train):
    whole = to_inference_data(model, *train, n_draws=N_DRAWS, seed=3, batch_pairs=10**6)
    for group in ("log_likelihood", "posterior_predictive"):
        np.testing.assert_allclose(whole[group]["correct"].values, idata[group]["correct"].values, rtol=1e-12)
    other = to_inference_data(model, *train, n_draws=N_DRAWS, seed=4)
    assert not np.array_equal(other.posterior[LLM_BIAS].values, idata.posterior[LLM_BIAS].values)
    assert not np.array_equal(other.posterior_predictive["correct"].values, idata.posterior_predictive["correct"].values)


def test_posterior_predictive_agrees_with_the_predicted_probabilities(idata, model, train):
    llm, item, correct = train
    predicted = model.predict_interval(llm, item, n_draws=N_DRAWS, seed=3)["prob"].to_numpy()
    # The same draws through the package's own prediction: P(correct) per draw, averaged.
    log_lik = idata.log_likelihood["correct"].values[0]
    prob_of_one = np.where(correct == 1, np.exp(log_lik), 1.0 - np.exp(log_lik)).mean(axis=0)
    np.testing.assert_allclose(prob_of_one, predicted, atol=1e-5)
    # Bernoulli answers: their mean over draws estimates the probability (noisy per pair, tight overall).
    answers = idata.posterior_predictive["correct"].values[0]
    pp_mean = answers.mean(axis=0)
    assert abs(pp_mean.mean() - predicted.mean()) < 0.01
    assert np.corrcoef(pp_mean, predicted)[0, 1] > 0.9
    per_llm = pd.DataFrame({"llm": llm, "pp": pp_mean, "prob": predicted}).groupby("llm").mean()
    assert (per_llm.pp - per_llm.prob).abs().max() < 0.05


def test_arviz_summary_and_loo(idata, model):
    summary = az.summary(data=idata, var_names=[INTERCEPT, LLM_BIAS], kind="stats")
    assert len(summary) == 1 + len(model.llms_)
    np.testing.assert_allclose(summary["mean"].iloc[0], idata.posterior[INTERCEPT].values.mean(), atol=1e-3)
    assert (summary["sd"] > 0).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one chain and PSIS k-hat warnings are expected here
        loo = az.loo(data=idata)
    log_lik = idata.log_likelihood["correct"].values[0]
    lppd = float(np.sum(np.log(np.mean(np.exp(log_lik), axis=0))))
    assert np.isfinite(loo.elpd_loo) and np.isfinite(loo.p_loo)
    # Leaving a pair out can only lower its predictive density: elpd_loo sits below the in-sample lppd.
    assert loo.elpd_loo < lppd < 0
    assert loo.p_loo > 0


def test_max_pairs_takes_a_seeded_subset_in_order(model, train):
    llm, item, correct = train
    small = to_inference_data(model, llm, item, correct, n_draws=10, max_pairs=100, seed=1)
    rows = small.observed_data.pair.values
    assert len(rows) == 100 and np.all(np.diff(rows) > 0) and rows.max() < len(llm)
    np.testing.assert_array_equal(small.observed_data["correct"].values, correct[rows])
    np.testing.assert_array_equal(small.observed_data.pair_item.values, item[rows])
    assert small.log_likelihood["correct"].shape == (1, 10, 100)
    again = to_inference_data(model, llm, item, correct, n_draws=10, max_pairs=100, seed=1)
    np.testing.assert_array_equal(again.observed_data.pair.values, rows)
    other = to_inference_data(model, llm, item, correct, n_draws=10, max_pairs=100, seed=2)
    assert not np.array_equal(other.observed_data.pair.values, rows)
    everything = to_inference_data(model, llm, item, correct, n_draws=10, max_pairs=10**6)
    assert len(everything.observed_data.pair) == len(llm)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda l, i, c: (l[:-1], i, c), "equal length"),
        (lambda l, i, c: (l, i, c[:-1]), "one value per pair"),
        (lambda l, i, c: (np.r_[l[:-1], ["nobody/llm-x"]], i, c), r"1 llm id\(s\).*nobody/llm-x"),
        (lambda l, i, c: (l, np.r_[["q/none", "q/none2"], i[2:]], c), r"2 item id\(s\).*q/none"),
        (lambda l, i, c: (l, i, np.r_[[2], c[1:]]), r"0/1 values; 1 do not.*rows \[0\]"),
        (lambda l, i, c: (l, i, np.r_[[np.nan], c[1:].astype(float)]), "0/1 values"),
        (lambda l, i, c: (l[:0], i[:0], c[:0]), "no pairs"),
    ],
)
def test_bad_pairs_are_refused(model, train, change, message):
    with pytest.raises(BayesSimRMFError, match=message):
        to_inference_data(model, *change(*train), n_draws=5)


def test_bad_options_and_estimators_are_refused(model, train):
    with pytest.raises(NotFittedError, match="not fitted"):
        to_inference_data(SimRMF(), *train)
    with pytest.raises(ConfigError, match="MeanScore"):
        to_inference_data(MeanScore().fit(*train), *train)
    for options, name in (({"n_draws": 0}, "n_draws"), ({"max_pairs": 0}, "max_pairs"),
                          ({"batch_pairs": 2.5}, "batch_pairs")):
        with pytest.raises(ConfigError, match=name):
            to_inference_data(model, *train, **options)


def test_delta_guide_gives_identical_draws_and_the_plug_in_loo(split, train):
    delta = fit_on_split(SimRMF(guide="delta", dim=DIM, progress=False, max_steps=200), split)
    data = to_inference_data(delta, *train, n_draws=20)
    assert data.attrs["guide"] == "delta" and "plug-in" in data.attrs["note"]
    factors = data.posterior[LLM_FACTORS].values[0]
    np.testing.assert_array_equal(factors, np.broadcast_to(factors[0], factors.shape))
    log_lik = data.log_likelihood["correct"].values[0]
    np.testing.assert_array_equal(log_lik, np.broadcast_to(log_lik[0], log_lik.shape))
    llm, item, correct = train
    prob = delta.predict(llm, item)
    np.testing.assert_allclose(np.exp(log_lik[0]), np.where(correct == 1, prob, 1 - prob), rtol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loo = az.loo(data=data)
    np.testing.assert_allclose(loo.elpd_loo, log_lik[0].sum(), rtol=1e-6)


@pytest.mark.parametrize("options, sites", [
    ({"dim": 0}, {INTERCEPT, LLM_BIAS, ITEM_BIAS}),
    ({"dim": DIM, "biases": False}, {LLM_FACTORS, ITEM_FACTORS}),
])
def test_models_without_factors_or_biases(split, train, options, sites):
    model = fit_on_split(SimRMF(guide="normal", progress=False, max_steps=50, learning_rate=0.02, **options), split)
    data = to_inference_data(model, *train, n_draws=10)
    assert set(data.posterior.data_vars) == sites
    assert ("latent" in data.posterior.dims) == (LLM_FACTORS in sites)
    llm, item, correct = train
    draws = model.sample_posterior(10, 0)
    row = 5
    l, i = list(model.llms_).index(llm[row]), list(model.items_).index(item[row])
    logit = np.zeros(10)
    if INTERCEPT in sites:
        logit += draws[INTERCEPT] + draws[LLM_BIAS][:, l] + draws[ITEM_BIAS][:, i]
    if LLM_FACTORS in sites:
        logit += np.sum(draws[LLM_FACTORS][:, l] * draws[ITEM_FACTORS][:, i], axis=-1)
    prob = _sigmoid(logit)
    expected = np.log(prob) if correct[row] else np.log1p(-prob)
    np.testing.assert_allclose(data.log_likelihood["correct"].values[0, :, row], expected, rtol=1e-5, atol=1e-6)
