"""Learned population priors under SVI (prior="learned"): the population is learned from the data, the fit is kept
as draws in the sampler's layout (so unseen entities come from that population per draw), and it reloads
identically; what it cannot fit is refused up front."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.handlers import condition, seed, trace

from bayes_simrmf.errors import ConfigError
from bayes_simrmf.inference.samples import SamplePosterior
from bayes_simrmf.model.population import ITEM_POPULATION_PREC, LLM_POPULATION_PREC, population_model
from bayes_simrmf.predict import SimRMF
from bayes_simrmf.saving import load_model, save_model
from bayes_simrmf.similarity import SideInformation

LLM_SD, ITEM_SD, DIM = 1.6, 0.8, 1


@pytest.fixture(scope="module")
def planted():
    """Answers of 100 LLMs × 120 questions simulated from the learned-prior model with known populations: LLM rows
    ``[m, b]`` with sds (0.6, LLM_SD), question rows with sds (0.6, ITEM_SD) around a mean bias of 0.5."""
    n_llms, n_items = 100, 120
    llm, item = (np.asarray(a.ravel(), np.int32) for a in np.meshgrid(np.arange(n_llms), np.arange(n_items),
                                                                       indexing="ij"))
    values = {
        LLM_POPULATION_PREC: jnp.diag(1 / jnp.array([0.6, LLM_SD]) ** 2),
        ITEM_POPULATION_PREC: jnp.diag(1 / jnp.array([0.6, ITEM_SD]) ** 2),
        "llm_population_loc": jnp.zeros(2), "item_population_loc": jnp.array([[0.0, 0.5]]),
    }
    model = seed(condition(population_model, values), jax.random.PRNGKey(0))
    sites = trace(model).get_trace(n_llms, n_items, jnp.asarray(llm), jnp.asarray(item), dim=DIM)
    correct = np.asarray(sites["correct"]["value"], np.float32)
    keep = np.random.default_rng(0).random(len(llm)) < 0.5
    return (np.array([f"l{i:03d}" for i in llm[keep]]), np.array([f"q{k:03d}" for k in item[keep]]), correct[keep])


@pytest.fixture(scope="module")
def learned(planted):
    llm, item, correct = planted
    model = SimRMF(dim=DIM, guide="normal", prior="learned", learning_rate=0.02, max_steps=1500, seed=0,
                   progress=False)
    return model.fit(llm, item, correct)


def test_the_learned_population_recovers_the_planted_spread(learned):
    posterior = learned.posterior_
    assert isinstance(posterior, SamplePosterior) and posterior.guide == "normal+learned"
    assert (posterior.chains, posterior.draws_per_chain) == (1, 400)
    llm_sd = np.sqrt(posterior.draws["llm_population_cov"][..., -1, -1]).mean()
    item_sd = np.sqrt(posterior.draws["item_population_cov"][..., -1, -1]).mean()
    # The bias spreads are learned, not the fixed prior's (bias_scale 2.0): each within 25% of the planted sd.
    assert llm_sd == pytest.approx(LLM_SD, rel=0.25) and item_sd == pytest.approx(ITEM_SD, rel=0.25)
    assert posterior.draws["llm_population_cov"][..., -1, -1].std() > 0  # uncertain, one value per draw


def test_unseen_llms_are_drawn_from_the_learned_population(learned):
    items = learned.items_[:30]
    group = learned.predict_group_interval(["never-seen"] * len(items), items, unknown="population", n_draws=200,
                                           observed=False).iloc[0]
    known = learned.predict_group_interval([learned.llms_[0]] * len(items), items, n_draws=200,
                                           observed=False).iloc[0]
    # An unseen LLM's mean accuracy spans the population (LLM bias sd 1.6 in logits): far wider than a fitted one's.
    assert float(group["upper"] - group["lower"]) > 2 * float(known["upper"] - known["lower"])
    assert 0.1 < float(group["lower"]) < float(group["upper"]) < 0.99


def test_learned_fit_reloads_to_identical_intervals(tmp_path, planted, learned):
    llm, item, _ = planted
    before = learned.predict_interval(llm[:30], item[:30], n_draws=100, seed=3)
    loaded = load_model(save_model(tmp_path / "learned", learned, data_fingerprint="x"), data_fingerprint="x").estimator
    assert loaded.prior == "learned" and loaded.posterior_.guide == "normal+learned"
    np.testing.assert_array_equal(loaded.predict_interval(llm[:30], item[:30], n_draws=100, seed=3).to_numpy(),
                                  before.to_numpy())


def test_learned_prior_refuses_what_it_cannot_fit():
    with pytest.raises(ConfigError, match="collapses"):
        SimRMF(prior="learned").check_params()  # the default guide is delta
    with pytest.raises(ConfigError, match="full-batch"):
        SimRMF(prior="learned", guide="normal", batch_size=100).check_params()
    with pytest.raises(ConfigError, match="always learns"):
        SimRMF(prior="fixed", inference="gibbs").check_params()
    with pytest.raises(ConfigError, match="prior='learned'"):
        SimRMF(method="simrmf", similarity_mode="joint", prior="learned", guide="normal").fit(
            ["a", "b"], ["x", "y"], [1, 0], side=SideInformation(None, None, np.array(["x", "y"]), np.eye(2)))
    assert SimRMF().resolved_prior() == "fixed" and SimRMF(inference="gibbs").resolved_prior() == "learned"
