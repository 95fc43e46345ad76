"""Asymptotes (``asymptotes=True``): a learned guessing floor and ceiling per question group, p = c + (d − c) σ(ℓ)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from numpyro import handlers
from scipy.optimize import minimize
from scipy.stats import beta

from bayes_simrmf.errors import ConfigError
from bayes_simrmf.model import ITEM_CEILING, ITEM_FLOOR, ITEM_GROUP_FLOOR, ITEM_GROUP_SLIP, ModelConfig, PairsLayout
from bayes_simrmf.model.predictor import effective_logits, item_asymptotes, pair_logits, sigmoid
from bayes_simrmf.model.program import simrmf_model
from bayes_simrmf.predict import SimRMF
from bayes_simrmf.predict.adaptive import next_questions
from bayes_simrmf.predict.fold_in import laplace_logistic
from bayes_simrmf.saving import load_model, save_model

FLOORS = {"A": 0.25, "B": 0.02}


@pytest.fixture(scope="module")
def planted():
    """80 LLMs x 120 questions of a 1PL with a planted floor per benchmark (A: 0.25, B: 0.02); half the pairs train."""
    rng = np.random.default_rng(0)
    n_llms, n_items = 80, 120
    ability, difficulty = rng.normal(0, 1.5, n_llms), rng.normal(0, 1.5, n_items)
    group = np.where(np.arange(n_items) < n_items // 2, "A", "B")
    floor = np.vectorize(FLOORS.get)(group)
    prob = floor + (1 - floor) / (1 + np.exp(-(ability[:, None] - difficulty[None, :])))
    correct = (rng.random(prob.shape) < prob).astype(np.int8)
    llm = np.repeat([f"l{i}" for i in range(n_llms)], n_items)
    item = np.tile([f"q{k}" for k in range(n_items)], n_llms)
    train = rng.random(len(llm)) < 0.5
    groups = pd.Series(group, index=[f"q{k}" for k in range(n_items)])
    return dict(llm=llm, item=item, correct=correct.ravel(), prob=prob.ravel(), train=train, groups=groups)


def _fit(data, **options):
    train = data["train"]
    estimator = SimRMF(**{"dim": 0, "max_steps": 3000, "progress": False, **options})
    return estimator.fit(data["llm"][train], data["item"][train], data["correct"][train], item_groups=data["groups"])


@pytest.fixture(scope="module")
def fitted(planted):
    return _fit(planted, asymptotes=True)


def test_effective_logits_are_the_log_odds_of_the_bounded_probability():
    logits = np.array([-60.0, -8.0, -1.0, 0.0, 2.5, 9.0, 60.0])
    floor, ceiling = np.full(7, 0.2), np.full(7, 0.9)
    expected = 0.2 + 0.7 * sigmoid(logits)
    assert np.allclose(sigmoid(effective_logits(logits, floor, ceiling)), expected, rtol=1e-12, atol=1e-15)
    assert np.allclose(effective_logits(logits, np.zeros(7), np.ones(7)), logits)
    in_jax = effective_logits(jnp.asarray(logits), jnp.asarray(floor), jnp.asarray(ceiling), xp=jnp)
    assert np.allclose(np.asarray(in_jax), effective_logits(logits, floor, ceiling), atol=1e-5)


def test_the_program_density_is_the_bounded_bernoulli_plus_beta_priors():
    config = ModelConfig(dim=0, biases=True, n_item_groups=2, asymptotes=True)
    llm, item = jnp.array([0, 0, 1, 1]), jnp.array([0, 1, 0, 1])
    correct = jnp.array([1, 0, 0, 1])
    values = {"intercept": jnp.array(0.3), "llm_bias": jnp.array([0.5, -1.0]), "item_bias": jnp.array([0.2, -0.4]),
              "item_group_mean": jnp.array([0.0, 0.1]), ITEM_GROUP_FLOOR: jnp.array([0.2, 0.05]),
              ITEM_GROUP_SLIP: jnp.array([0.1, 0.02])}
    group = jnp.array([0, 1])
    kwargs = dict(n_llms=2, n_items=2, layout=PairsLayout(llm, item), config=config, item_group=group)
    trace = handlers.trace(handlers.substitute(simrmf_model, values)).get_trace(**kwargs, correct=correct)
    site = trace["correct"]
    floor = np.array([0.2, 0.05])[np.asarray(item)]
    ceiling = 1 - (1 - floor) * np.array([0.1, 0.02])[np.asarray(item)]
    logits = 0.3 + np.array([0.5, 0.5, -1.0, -1.0]) + np.array([0.2, -0.4, 0.2, -0.4])
    prob = floor + (ceiling - floor) * sigmoid(logits)
    by_hand = np.sum(np.where(np.asarray(correct) == 1, np.log(prob), np.log(1 - prob)))
    assert float(site["fn"].log_prob(site["value"]).sum()) == pytest.approx(by_hand, rel=1e-5)
    floor_site = trace[ITEM_GROUP_FLOOR]
    assert float(floor_site["fn"].log_prob(floor_site["value"])) == pytest.approx(
        float(np.sum(beta.logpdf([0.2, 0.05], 2, config.floor_prior))), rel=1e-5)


def test_a_planted_floor_is_recovered_and_predictions_respect_it(planted, fitted):
    floors = fitted.fitted_.params[ITEM_GROUP_FLOOR]
    assert abs(floors[0] - FLOORS["A"]) < 0.06 and abs(floors[1] - FLOORS["B"]) < 0.04
    plain = _fit(planted, asymptotes=False)
    test = ~planted["train"]
    ours, theirs = (m.predict(planted["llm"][test], planted["item"][test]) for m in (fitted, plain))
    truth = planted["prob"][test]
    assert np.sqrt(np.mean((ours - truth) ** 2)) < np.sqrt(np.mean((theirs - truth) ** 2)) - 0.005
    params = fitted.fitted_.params
    # a known pair's prediction is floor + (ceiling - floor) * sigmoid(logit) of the fitted parameters
    codes = np.array([0, 5, 70]), np.array([3, 90, 110])
    by_hand = params[ITEM_FLOOR][codes[1]] + (params[ITEM_CEILING][codes[1]] - params[ITEM_FLOOR][codes[1]]) * sigmoid(
        pair_logits(params, *codes))
    got = fitted.predict(fitted.fitted_.llms[codes[0]], fitted.fitted_.items[codes[1]])
    assert np.allclose(got, by_hand, atol=1e-6)
    # an unseen LLM (population stand-in) on benchmark A is never predicted below A's floor
    new = fitted.predict(np.array(["never-seen"] * 60), np.array([f"q{k}" for k in range(60)]), unknown="population")
    assert new.min() >= floors[0] - 1e-6


def test_a_new_question_takes_its_benchmark_floor_and_a_new_llm_is_folded_in_on_the_bounded_likelihood(planted, fitted):
    params = fitted.fitted_.params
    codes = fitted.fitted_.asymptote_group_codes(np.array(["q0", "q100", "elsewhere"]))
    assert codes.tolist() == [0, 1, -1]
    rows = item_asymptotes(params, codes)
    assert rows[ITEM_FLOOR][0] == pytest.approx(params[ITEM_GROUP_FLOOR][0])
    assert rows[ITEM_FLOOR][2] == pytest.approx(params[ITEM_GROUP_FLOOR].mean())
    # a new LLM at chance on benchmark A: the floor explains its right answers, so it is not lifted towards them
    rng = np.random.default_rng(3)
    items = np.array([f"q{k}" for k in range(60)])
    answers = pd.DataFrame({"llm": "chance", "item": items, "correct": (rng.random(60) < 0.25).astype(int)})
    model = _fit(planted, asymptotes=True)  # its own: fold_in changes the model
    model.fold_in("llm", ["chance"], answers=answers)
    predicted = model.predict(np.array(["chance"] * 60), np.array([f"q{k}" for k in range(60, 120)]))
    assert predicted.mean() < 0.12  # benchmark B has no floor to speak of: an LLM at chance on A scores low there
    picks = next_questions(model, "chance", 3, answered=items)
    assert len(picks) == 3 and (picks.prob >= 0).all()


def test_laplace_with_asymptotes_is_the_logistic_one_at_zero_and_one_and_the_mode_of_the_bounded_posterior():
    rng = np.random.default_rng(1)
    design, offsets = rng.normal(size=(40, 2)), rng.normal(size=40)
    y = (rng.random(40) < 0.5).astype(float)
    mean, cov = np.zeros(2), np.eye(2)
    plain = laplace_logistic(mean, cov, design, offsets, y)
    bounded = laplace_logistic(mean, cov, design, offsets, y, asymptotes=(np.zeros(40), np.ones(40)))
    assert np.allclose(plain[0], bounded[0], atol=1e-8) and np.allclose(plain[1], bounded[1], atol=1e-8)
    floor, ceiling = np.full(40, 0.3), np.full(40, 0.95)
    z, _, converged = laplace_logistic(mean, cov, design, offsets, y, asymptotes=(floor, ceiling))

    def negative_log_posterior(value):
        prob = floor + (ceiling - floor) * sigmoid(design @ value + offsets)
        return -np.sum(y * np.log(prob) + (1 - y) * np.log(1 - prob)) + 0.5 * value @ value

    assert converged
    assert np.allclose(z, minimize(negative_log_posterior, np.zeros(2), method="BFGS").x, atol=1e-4)


def test_asymptotes_survive_saving_and_the_default_model_has_none(planted, fitted, tmp_path):
    folder = save_model(tmp_path / "bounded", fitted, data_fingerprint=None)
    loaded = load_model(folder).estimator
    pairs = planted["llm"][:50], planted["item"][:50]
    assert np.allclose(loaded.predict(*pairs), fitted.predict(*pairs))
    plain = _fit(planted, asymptotes=False, max_steps=200)
    assert not {ITEM_FLOOR, ITEM_GROUP_FLOOR} & set(plain.fitted_.params)


@pytest.mark.parametrize("options", [{"inference": "gibbs"}, {"prior": "learned", "guide": "normal"}])
def test_asymptotes_are_refused_where_the_likelihood_must_stay_logistic(planted, options):
    with pytest.raises(ConfigError, match="asymptotes=True needs inference='svi' with prior='fixed'"):
        _fit(planted, asymptotes=True, **options)


def test_map_with_factors_takes_the_floors_of_a_fit_without_factors(planted):
    """Under MAP the factors fit each wrong answer and learned floors fall to ~0; the delta guide takes them from a
    MAP fit without factors and holds them (the planted 0.25 / 0.02 came out at 0.006 / 0.005 before)."""
    model = _fit(planted, asymptotes=True, dim=2)
    floors = model.fitted_.params[ITEM_GROUP_FLOOR]
    assert abs(floors[0] - FLOORS["A"]) < 0.06 and abs(floors[1] - FLOORS["B"]) < 0.04
    assert model.fitted_.params[ITEM_FLOOR].shape == (120,)


def test_fixed_floors_are_checked():
    with pytest.raises(ConfigError, match="fixed_floor must hold one value in \\(0, 1\\) per item group"):
        ModelConfig(asymptotes=True, n_item_groups=2, fixed_floor=(0.1,))
    with pytest.raises(ConfigError, match="fixed_slip"):
        ModelConfig(asymptotes=False, fixed_slip=(0.1,))
    assert ModelConfig(asymptotes=True, n_item_groups=2, fixed_floor=(0.1, 0.2)).fixed_floor == (0.1, 0.2)


def test_posterior_draws_routing_draws_and_the_arviz_log_likelihood_use_the_bounds(planted):
    from bayes_simrmf.evaluate.inference_data import to_inference_data
    from bayes_simrmf.routing.draws import pair_probability_draws

    model = _fit(planted, asymptotes=True, guide="normal", max_steps=400, learning_rate=0.05)
    params = model.fitted_.params
    llm, item = planted["llm"][:300], planted["item"][:300]
    codes = model.fitted_.asymptote_group_codes(item)
    floor = params[ITEM_GROUP_FLOOR][codes]
    draws = pair_probability_draws(model, llm, item, n_draws=20, seed=1)
    assert (draws >= floor[None, :] - 1e-6).all()
    interval = model.predict_interval(llm, item, n_draws=20)
    assert (interval["lower"].to_numpy() >= floor - 1e-6).all()  # never below the floor
    data = to_inference_data(model, llm, item, planted["correct"][:300], n_draws=20, seed=1)
    log_lik = data.log_likelihood[list(data.log_likelihood.data_vars)[0]].to_numpy().reshape(20, -1)
    prob = draws.astype(np.float64)
    expected = np.where(planted["correct"][:300] == 1, np.log(prob), np.log1p(-prob))
    assert np.allclose(log_lik, expected, atol=2e-4)
