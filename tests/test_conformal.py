"""Split-conformal stretching of group-mean intervals (bayes_simrmf.evaluate.conformal)."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_simrmf.errors import ConfigError
from bayes_simrmf.evaluate import fit_on_split
from bayes_simrmf.evaluate.conformal import (
    ConformalFactors, centred_interval, conformal_factor, conformity_scores, fit_conformal, stretch,
)
from bayes_simrmf.evaluate.split import COVERAGE_LEVELS, interval_coverage
from bayes_simrmf.predict import SimRMF
from bayes_simrmf.splits import Protocol
from bayes_simrmf.synthetic import make_synthetic_dataset


def test_the_factor_is_the_conformal_order_statistic():
    scores = np.arange(1, 20, dtype=float)  # 19 scores: (19 + 1) * 0.9 = 18th smallest
    assert conformal_factor(scores, 0.9) == 18.0
    assert conformal_factor(scores[:5], 0.9) == np.inf  # too few scores for 90%
    observed, centre = np.array([0.5, 0.7, 0.2]), np.array([0.5, 0.5, 0.5])
    np.testing.assert_allclose(conformity_scores(observed, centre, np.full(3, 0.4), np.full(3, 0.6)), [0.0, 2.0, 3.0])


def test_a_learned_factor_restores_coverage_of_too_narrow_intervals():
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.2, 0.8, size=(2, 4000))
    # Draws of each group's mean whose spread is half the real one: 90% intervals cover far less than 90%.
    draws = truth[:, None, :] + 0.025 * rng.standard_normal((2, 400, 4000))
    observed = truth + 0.05 * rng.standard_normal((2, 4000))
    fitted = [centred_interval(draws[k], 0.9) for k in range(2)]
    assert np.mean(conformity_scores(observed[1], *fitted[1]) <= 1) < 0.7
    factor = conformal_factor(conformity_scores(observed[0], *fitted[0]), 0.9)
    assert factor == pytest.approx(2.0, rel=0.1)
    lower, upper = stretch(*fitted[1], factor)
    assert np.mean((lower <= observed[1]) & (observed[1] <= upper)) == pytest.approx(0.9, abs=0.02)


def test_fit_conformal_learns_a_factor_per_carve_and_interval_coverage_applies_it():
    dataset, _ = make_synthetic_dataset(120, 200, dim=3, seed_value=1)
    split = Protocol(n_known_llms=100, n_known_items=160, T=60, n_test_pairs=3000, seed=0).split(dataset, log=None)

    def make():
        return SimRMF(dim=3, max_steps=100, progress=False)

    factors = fit_conformal(make, split, levels=COVERAGE_LEVELS, share=0.2, n_draws=30, max_pairs=5000, seed=0)
    assert {(holdout, by) for _, holdout, by in factors.factors} == {
        (holdout, by) for holdout in ("pairs", "items", "llms") for by in ("llm", "item")}
    assert all(value >= 0 for value in factors.factors.values())
    assert factors.for_split("D", "llm", 0.9) == max(factors.for_split("B", "llm", 0.9),
                                                     factors.for_split("C", "llm", 0.9))
    model = fit_on_split(make(), split)
    plain = interval_coverage(model, split, "C", "llm", 30, 5000, 0)
    stretched = interval_coverage(model, split, "C", "llm", 30, 5000, 0, factors)
    wider = factors.for_split("C", "llm", 0.9) > 1
    assert (stretched["width_llm_mean"] > plain["width_llm_mean"]) == wider
    with pytest.raises(ConfigError):
        ConformalFactors().for_split("E", "llm", 0.9)
    with pytest.raises(ConfigError, match="no conformal factor for level 0.7"):
        factors.for_split("A", "llm", 0.7)
