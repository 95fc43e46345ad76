"""A benchmark's accuracy from a random sample of its questions, corrected by the model: the survey regression
estimator (:func:`assisted_accuracy`).

An LLM answered ``k`` of a benchmark's ``N`` questions, drawn at random without replacement; the model predicts a
probability ``p_j`` for every question, made *without* those answers (e.g. from the LLM's metadata, or from
answers to other questions). The target is the accuracy over all ``N`` questions, ``μ = mean_j y_j``.

    μ̂(b) = ȳ_s + b · (p̄ − p̄_s)

with ``ȳ_s``, ``p̄_s`` the means over the answered questions and ``p̄`` over all ``N``. ``b = 0`` is the sample
mean, ``b = 1`` the difference estimator (the model's mean, shifted by its mean error on the answered questions);
``b`` estimated as the slope of ``y`` on ``p`` over the answered questions is the regression estimator of survey
sampling (Cochran 1977, ch. 7), the form prediction-powered inference calls power tuning: the model's errors are
corrected by the answers, so a wrong model costs precision but not validity, and with the slope fitted the
estimator's large-sample variance is at most the sample mean's, ``(1 − k/N) · Var(y − b p) / k ≤ (1 − k/N) ·
Var(y) / k``. The interval is ``μ̂ ± t · se`` with that variance (finite-population corrected), clipped to [0, 1].

It is valid only for questions asked at random (uniformly, or within strata used as separate calls); adaptive
selection favours questions whose outcome is uncertain, and then this estimator's interval says nothing.
"""

from __future__ import annotations

import math

import numpy as np

from bayes_simrmf.errors import ConfigError, DataError

#: Fewer answers than this leave the slope and the residual variance undefined.
MIN_ANSWERS = 3


def assisted_accuracy(predicted, answered, correct, *, level: float = 0.9, slope: float | None = None) -> dict:
    """The regression estimate of a benchmark's accuracy, with its interval (module docstring).

    Args:
        predicted: ``(N,)`` the model's probability for every question of the benchmark, made without the answers.
        answered: ``(k,)`` distinct positions in ``predicted`` of the questions answered (a random sample).
        correct: ``(k,)`` 0/1 answers, in the order of ``answered``.
        level: the interval's coverage.
        slope: ``b``; None fits it on the answered questions (the regression estimator); 0 gives the sample mean,
            1 the difference estimator.

    Returns:
        ``{"estimate", "lower", "upper", "se", "slope", "sample_mean", "n_answered", "n_questions"}``. With every
        question answered the estimate is the observed accuracy and the interval has width 0.

    Raises:
        DataError: bad inputs, named (lengths, positions, answers, probabilities); ConfigError: a bad ``level``
            or ``slope``, or fewer than :data:`MIN_ANSWERS` answers.
    """
    predicted = np.asarray(predicted, dtype=float)
    answered = np.asarray(answered)
    correct = np.asarray(correct, dtype=float)
    if predicted.ndim != 1 or len(predicted) == 0:
        raise DataError(f"predicted must be a non-empty 1-d array of probabilities, got shape {predicted.shape}")
    bad = ~np.isfinite(predicted) | (predicted < 0) | (predicted > 1)
    if bad.any():
        raise DataError(f"predicted holds {int(bad.sum())} value(s) outside [0, 1] or not finite, first at position "
                        f"{int(np.flatnonzero(bad)[0])}")
    if answered.ndim != 1 or not np.issubdtype(answered.dtype, np.integer):
        raise DataError(f"answered must be a 1-d array of integer positions, got {answered.dtype} of shape {answered.shape}")
    if correct.shape != answered.shape:
        raise DataError(f"correct ({correct.shape}) must have one answer per answered position ({answered.shape})")
    outside = (answered < 0) | (answered >= len(predicted))
    if outside.any():
        raise DataError(f"answered position {int(answered[outside][0])} is outside the {len(predicted)} questions")
    if len(np.unique(answered)) != len(answered):
        raise DataError("answered holds a question twice; a sample without replacement has each at most once")
    if not np.isin(correct, (0.0, 1.0)).all():
        raise DataError("correct must hold 0/1 answers")
    if not (0 < level < 1):
        raise ConfigError(f"level must be in (0, 1), got {level!r}")
    if slope is not None and not math.isfinite(slope):
        raise ConfigError(f"slope must be a finite number or None, got {slope!r}")
    k, n = len(answered), len(predicted)
    if k < MIN_ANSWERS:
        raise ConfigError(f"the estimate needs at least {MIN_ANSWERS} answered questions, got {k}")
    y, p = correct, predicted[answered]
    if slope is None:
        spread = float(np.var(p, ddof=1))
        slope = float(np.cov(p, y, ddof=1)[0, 1] / spread) if spread > 1e-12 else 0.0
    sample_mean = float(y.mean())
    estimate = sample_mean + slope * (float(predicted.mean()) - float(p.mean()))
    residual = y - slope * p
    # One degree of freedom more is spent where the slope was fitted; with every question answered nothing is left.
    dof = k - 2 if k > 2 else 1
    se = math.sqrt(max(0.0, 1.0 - k / n) * float(np.sum((residual - residual.mean()) ** 2)) / dof / k)
    from scipy import stats

    half = float(stats.t.ppf(0.5 + level / 2, dof)) * se
    return {"estimate": float(np.clip(estimate, 0.0, 1.0)), "lower": float(np.clip(estimate - half, 0.0, 1.0)),
            "upper": float(np.clip(estimate + half, 0.0, 1.0)), "se": se, "slope": float(slope),
            "sample_mean": sample_mean, "n_answered": k, "n_questions": n}
