"""The model-assisted (survey regression) estimate of a benchmark's accuracy from a random sample of answers."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_simrmf.errors import ConfigError, DataError
from bayes_simrmf.predict.assisted import assisted_accuracy


def _population(seed: int = 0, n: int = 500):
    rng = np.random.default_rng(seed)
    logit = rng.normal(0.0, 1.5, n)
    answers = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    return rng, logit, answers


def _repeat(predicted, answers, rng, k=30, reps=1500, **options):
    estimates, means, covered = [], [], 0
    truth = answers.mean()
    for _ in range(reps):
        sample = rng.choice(len(answers), k, replace=False)
        result = assisted_accuracy(predicted, sample, answers[sample], **options)
        estimates.append(result["estimate"])
        means.append(result["sample_mean"])
        covered += result["lower"] <= truth <= result["upper"]
    estimates, means = np.asarray(estimates), np.asarray(means)
    return estimates, means, covered / reps


def test_a_biased_model_is_corrected_and_beats_the_sample_mean():
    """Predictions off by +0.7 on the logit scale: the estimate stays unbiased, its 90% interval covers, and it is
    more precise than the sample mean of the same answers."""
    rng, logit, answers = _population()
    predicted = 1 / (1 + np.exp(-(logit + 0.7)))
    estimates, means, coverage = _repeat(predicted, answers, rng)
    truth = answers.mean()
    assert abs(estimates.mean() - truth) < 3 * estimates.std() / np.sqrt(len(estimates))
    assert 0.86 <= coverage <= 0.94
    assert np.mean((estimates - truth) ** 2) < 0.8 * np.mean((means - truth) ** 2)
    # The model's own mean is far off: the correction is doing the work.
    assert abs(predicted.mean() - truth) > 0.08


def test_useless_predictions_cost_little_against_the_sample_mean():
    rng, _, answers = _population(1)
    estimates, means, coverage = _repeat(rng.random(len(answers)), answers, rng)
    truth = answers.mean()
    assert np.mean((estimates - truth) ** 2) < 1.15 * np.mean((means - truth) ** 2)
    assert 0.85 <= coverage <= 0.95


def test_fixed_slopes_give_the_sample_mean_and_the_difference_estimator():
    predicted = np.array([0.2, 0.4, 0.6, 0.8, 0.5, 0.3])
    answered, correct = np.array([0, 2, 3]), np.array([0.0, 1.0, 1.0])
    assert assisted_accuracy(predicted, answered, correct, slope=0.0)["estimate"] == pytest.approx(2 / 3)
    difference = correct.mean() + predicted.mean() - predicted[answered].mean()
    assert assisted_accuracy(predicted, answered, correct, slope=1.0)["estimate"] == pytest.approx(difference)
    everything = assisted_accuracy(predicted, np.arange(6), np.array([0, 0, 1, 1, 1, 0.0]))
    assert everything["estimate"] == pytest.approx(0.5) and everything["lower"] == everything["upper"]


@pytest.mark.parametrize("predicted, answered, correct, error, message", [
    ([0.5, 1.2, 0.3, 0.4], [0, 1, 2], [1, 0, 1], DataError, "outside \\[0, 1\\].*position 1"),
    ([0.5, 0.2, 0.3, 0.4], [0, 1, 9], [1, 0, 1], DataError, "position 9 is outside the 4"),
    ([0.5, 0.2, 0.3, 0.4], [0, 1, 1], [1, 0, 1], DataError, "twice"),
    ([0.5, 0.2, 0.3, 0.4], [0, 1, 2], [1, 0], DataError, "one answer per answered"),
    ([0.5, 0.2, 0.3, 0.4], [0, 1, 2], [1, 0, 2], DataError, "0/1"),
    ([0.5, 0.2, 0.3, 0.4], [0.0, 1.0, 2.0], [1, 0, 1], DataError, "integer positions"),
    ([0.5, 0.2, 0.3, 0.4], [0, 1], [1, 0], ConfigError, "at least 3"),
])
def test_bad_inputs_are_named(predicted, answered, correct, error, message):
    with pytest.raises(error, match=message):
        assisted_accuracy(np.asarray(predicted), np.asarray(answered), np.asarray(correct))
