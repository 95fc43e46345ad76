"""Posterior predictive intervals from the normal and low-rank guides."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_simrmf.errors import ConfigError
from bayes_simrmf.estimators import SimRMF
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
