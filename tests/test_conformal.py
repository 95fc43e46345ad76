"""Split-conformal levels for group-mean intervals (bayes_simrmf.evaluate.conformal)."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_simrmf.errors import ConfigError
from bayes_simrmf.evaluate import fit_on_split
from bayes_simrmf.evaluate.conformal import (
    ConformalLevels, conformal_half_width, conformal_interval, conformity_scores, fit_conformal,
)
from bayes_simrmf.evaluate.split import COVERAGE_LEVELS, interval_coverage
from bayes_simrmf.predict import SimRMF
from bayes_simrmf.splits import Protocol
from bayes_simrmf.synthetic import make_synthetic_dataset


def test_the_half_width_is_the_conformal_order_statistic():
    scores = np.arange(1, 20, dtype=float)  # 19 scores: (19 + 1) * 0.9 = 18th smallest
    assert conformal_half_width(scores, 0.9) == 18.0
    assert conformal_half_width(scores[:5], 0.9) == np.inf  # too few scores for 90%
    draws = np.array([[0.1, 0.5], [0.3, 0.5]])  # centres 0.2 and 0.5, sds 0.1 and 0
    np.testing.assert_allclose(conformity_scores(np.array([0.4, 0.5]), draws), [2.0, 0.0])
    assert conformity_scores(np.array([0.4, 0.6]), draws)[1] == np.inf


@pytest.mark.parametrize("spread", [0.5, 2.0])
def test_a_learned_half_width_restores_coverage_of_too_narrow_or_too_wide_intervals(spread):
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.2, 0.8, size=(2, 3000))
    # Draws of each group's mean whose spread is `spread` times the real one.
    draws = truth[:, None, :] + spread * 0.05 * rng.standard_normal((2, 400, 3000))
    observed = truth + 0.05 * rng.standard_normal((2, 3000))
    nominal = np.quantile(draws[1], [0.05, 0.95], axis=0)
    plain = np.mean((nominal[0] <= observed[1]) & (observed[1] <= nominal[1]))
    assert (plain < 0.7) if spread < 1 else (plain > 0.99)
    half_width = conformal_half_width(conformity_scores(observed[0], draws[0]), 0.9)
    lower, upper = conformal_interval(draws[1], half_width)
    assert np.mean((lower <= observed[1]) & (observed[1] <= upper)) == pytest.approx(0.9, abs=0.02)


def test_fit_conformal_learns_a_level_per_carve_and_interval_coverage_applies_it():
    dataset, _ = make_synthetic_dataset(120, 200, dim=3, seed_value=1)
    split = Protocol(n_known_llms=100, n_known_items=160, T=60, n_test_pairs=3000, seed=0).split(dataset, log=None)

    def make():
        return SimRMF(dim=3, max_steps=100, progress=False)

    levels = fit_conformal(make, split, levels=COVERAGE_LEVELS, share=0.2, n_draws=30, max_pairs=5000, seed=0)
    assert {(holdout, by) for _, holdout, by in levels.learned} == {
        (holdout, by) for holdout in ("pairs", "items", "llms") for by in ("llm", "item")}
    assert all(value >= 0 for value in levels.learned.values())
    assert levels.for_split("D", "llm", 0.9) == max(levels.for_split("B", "llm", 0.9),
                                                    levels.for_split("C", "llm", 0.9))
    model = fit_on_split(make(), split)
    plain = interval_coverage(model, split, "C", "llm", 30, 5000, 0)
    calibrated = interval_coverage(model, split, "C", "llm", 30, 5000, 0, levels)
    assert calibrated["width_llm_mean"] != plain["width_llm_mean"]
    with pytest.raises(ConfigError):
        ConformalLevels().for_split("E", "llm", 0.9)
    with pytest.raises(ConfigError, match="no conformal half-width for level 0.7"):
        levels.for_split("A", "llm", 0.7)
