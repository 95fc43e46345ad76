"""Posterior predictive intervals from the normal and low-rank guides."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayes_simrmf.errors import ConfigError
from bayes_simrmf.predict import SimRMF
from bayes_simrmf.evaluate import fit_on_split
from bayes_simrmf.splits import Protocol
from bayes_simrmf.synthetic import make_synthetic_dataset


@pytest.fixture(scope="module")
def split():
    dataset, _ = make_synthetic_dataset(120, 200, dim=3, seed_value=0)
    return Protocol(80, 130, T=40, seed=0, n_test_pairs=5000).split(dataset, log=None)


@pytest.mark.parametrize("guide", ["normal", "lowrank"])
def test_intervals_contain_the_posterior_mean_and_shrink_with_data(split, guide):
    model = fit_on_split(SimRMF(guide=guide, dim=3, progress=False, max_steps=800, learning_rate=0.02), split)
    pairs = split.pairs["A"]
    llm, item = split.llms[pairs.llm][:1500], split.items[pairs.item][:1500]
    result = model.predict_interval(llm, item, n_draws=60, level=0.9, batch_pairs=700)
    assert list(result.columns) == ["prob", "sd", "lower", "upper"] and len(result) == 1500
    assert ((result.lower <= result.prob) & (result.prob <= result.upper)).all()
    assert ((result.lower >= 0) & (result.upper <= 1)).all()
    assert (result.sd > 0).mean() > 0.99  # a posterior, not a point
    # The same seed gives the same draws; batching does not change the answer.
    again = model.predict_interval(llm, item, n_draws=60, level=0.9, batch_pairs=1500)
    np.testing.assert_allclose(again.to_numpy(), result.to_numpy(), atol=1e-12)


def test_intervals_contract_with_more_answers():
    dataset, _ = make_synthetic_dataset(120, 200, dim=3, seed_value=0)
    widths = {}
    for T in (10, 60):
        split = Protocol(80, 130, T=T, seed=0, n_test_pairs=2000).split(dataset, log=None)
        model = fit_on_split(SimRMF(guide="normal", dim=3, progress=False, max_steps=800, learning_rate=0.02), split)
        pairs = split.pairs["A"]
        result = model.predict_interval(split.llms[pairs.llm], split.items[pairs.item], n_draws=60)
        widths[T] = float((result.upper - result.lower).mean())
    # Six times the answers per LLM: the posterior must be clearly tighter.
    assert widths[60] < 0.8 * widths[10], widths


def test_interval_needs_a_posterior_guide(split):
    model = fit_on_split(SimRMF(guide="delta", dim=2, progress=False, max_steps=200), split)
    with pytest.raises(ConfigError, match="delta guide"):
        model.predict_interval(split.llms[:2], split.items[:2])


def test_group_intervals_cover_the_observed_means_of_planted_data():
    # Data drawn from the model: per-LLM observed accuracy on held-out pairs should fall inside the
    # 90% predictive interval for most LLMs (mean-field VI may be over-confident, so the bound is loose).
    dataset, _ = make_synthetic_dataset(120, 200, dim=3, seed_value=1)
    split = Protocol(80, 130, T=60, seed=0, n_test_pairs=20000).split(dataset, log=None)
    model = fit_on_split(SimRMF(guide="normal", dim=3, progress=False, max_steps=800, learning_rate=0.02), split)
    pairs = split.pairs["A"]
    llm, item = split.llms[pairs.llm], split.items[pairs.item]
    table = model.predict_group_interval(llm, item, by="llm", n_draws=100, level=0.9)
    observed = pd.Series(pairs.correct.astype(float)).groupby(llm).mean().reindex(table.index)
    inside = ((table.lower <= observed) & (observed <= table.upper)).mean()
    assert inside > 0.6, inside
    assert (table.n_pairs == pd.Series(llm).value_counts().reindex(table.index)).all()
    # Without answer noise the interval is that of the expected accuracy: narrower.
    expected = model.predict_group_interval(llm, item, by="llm", n_draws=100, level=0.9, observed=False)
    assert (expected.upper - expected.lower).mean() < (table.upper - table.lower).mean()
    # The delta guide gives the plug-in predictive: Bernoulli noise around the MAP only.
    delta = fit_on_split(SimRMF(guide="delta", dim=3, progress=False, max_steps=400), split)
    plug_in = delta.predict_group_interval(llm, item, by="llm", n_draws=100)
    assert (plug_in.upper > plug_in.lower).all()


def test_predict_is_the_posterior_predictive_mean_for_posterior_guides(split):
    model = fit_on_split(SimRMF(guide="normal", dim=3, progress=False, max_steps=800, learning_rate=0.02), split)
    pairs = split.pairs["A"]
    llm, item = split.llms[pairs.llm][:500], split.items[pairs.item][:500]
    mean = model.predict(llm, item, n_draws=60, seed=4)
    interval = model.predict_interval(llm, item, n_draws=60, seed=4)
    np.testing.assert_allclose(mean, interval.prob.to_numpy(), atol=1e-6)
    plug_in = model.predict(llm, item, n_draws=0)
    # Averaging σ over the posterior pulls probabilities towards 1/2 relative to σ at the median.
    far = np.abs(plug_in - 0.5) > 0.3
    assert far.sum() > 20
    shrunk = np.abs(mean[far] - 0.5) < np.abs(plug_in[far] - 0.5)
    assert shrunk.mean() > 0.8, shrunk.mean()  # Monte Carlo noise of 60 draws aside
    with pytest.raises(ConfigError, match="n_draws"):
        model.predict(llm, item, n_draws=-1)


def test_prediction_diagnostics_point_at_the_summaries_that_did_not_mix():
    """Two chains that agree everywhere except on one LLM's bias: its pairs and its mean are flagged, the
    questions' means only diluted, and the breakdown adds up to the totals."""
    from bayes_simrmf.inference.samples import SamplePosterior

    rng = np.random.default_rng(0)
    chains, draws, n_llms, n_items = 2, 300, 4, 5
    llm_bias = rng.normal(0.0, 0.3, (chains, draws, n_llms)).astype(np.float32)
    llm_bias[1, :, 2] += 3.0  # chain 1 sits elsewhere for LLM 2
    posterior = SamplePosterior({
        "llm_bias": llm_bias,
        "item_bias": rng.normal(0.0, 0.3, (chains, draws, n_items)).astype(np.float32),
    })
    llm, item = np.repeat(np.arange(n_llms), n_items), np.tile(np.arange(n_items), n_llms)
    report = posterior.prediction_diagnostics(llm, item)
    kinds = report["by_kind"]
    assert {kind: part["n"] for kind, part in kinds.items()} == {"pair": 20, "llm": 4, "item": 5}
    assert report["n_summaries"] == 29
    assert kinds["pair"]["n_above"] == n_items and kinds["llm"]["n_above"] == 1
    assert kinds["llm"]["max_rhat"] > 1.5 and kinds["llm"]["median_rhat"] < 1.01
    assert report["max_rhat"] == max(part["max_rhat"] for part in kinds.values())
    n_above = sum(part["n_above"] for part in kinds.values())
    assert report["share_above"] == pytest.approx(n_above / 29)


def test_quantile_standard_error_matches_the_normal_theory_value():
    from scipy.stats import norm

    from bayes_simrmf.predict.queries import quantile_standard_error

    rng = np.random.default_rng(0)
    n, q = 2000, 0.05
    estimates = quantile_standard_error(rng.standard_normal((n, 300)), q)
    theory = np.sqrt(q * (1 - q) / n) / norm.pdf(norm.ppf(q))  # asymptotic sd of a sample quantile
    assert 0.85 * theory < estimates.mean() < 1.15 * theory, (estimates.mean(), theory)
    # It is also the spread of the quantile over repeated sets of draws.
    spread = np.quantile(rng.standard_normal((n, 300)), q, axis=0).std()
    assert 0.75 * spread < estimates.mean() < 1.3 * spread
