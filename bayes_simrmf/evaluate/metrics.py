"""Prediction metrics of the paper (PAPER.md, "Evaluation protocol"), plus log loss, Brier score and AUC.

All functions take probabilities ``prob`` in [0, 1] and 0/1 scores ``correct`` over the pairs of one
split, 1-D of equal length ``(n_pairs,)``. The error of a pair is ``prob - correct``.

* ``RMSE_p``: root mean square of the errors over all pairs.
* ``RMSE_m``: per LLM, the mean error over its pairs; then the root mean square over the LLMs present.
  Measures how well each LLM's average score is predicted.
* ``RMSE_x``: the same per item (question).

Empty input gives NaN rather than an error, so an empty split (e.g. A at T = 1000) still evaluates.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_simrmf.errors import ConfigError

__all__ = ["auc", "brier", "evaluate", "log_loss", "rmse_m", "rmse_p", "rmse_x"]


def _as_prob_and_correct(prob: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert to float64 ``(n_pairs,)`` arrays; raise ConfigError naming the bad array."""
    prob = np.asarray(prob, dtype=np.float64)
    correct_array = np.asarray(correct)
    if prob.ndim != 1 or correct_array.ndim != 1 or prob.shape != correct_array.shape:
        raise ConfigError(
            f"prob and correct must be 1-D of equal length; got shapes prob={prob.shape}, "
            f"correct={correct_array.shape}"
        )
    invalid_prob = ~np.isfinite(prob) | (prob < 0.0) | (prob > 1.0)
    if invalid_prob.any():
        first = int(np.flatnonzero(invalid_prob)[0])
        raise ConfigError(
            f"prob must be probabilities in [0, 1]; {int(invalid_prob.sum())} are not, "
            f"e.g. prob[{first}]={prob[first]!r}"
        )
    correct_float = correct_array.astype(np.float64)
    invalid_correct = (correct_float != 0.0) & (correct_float != 1.0)
    if invalid_correct.any():
        first = int(np.flatnonzero(invalid_correct)[0])
        raise ConfigError(f"correct must be 0 or 1; correct[{first}]={correct_array[first]!r}")
    return prob, correct_float


def _group_codes(groups: np.ndarray, n_pairs: int, name: str) -> tuple[np.ndarray, int]:
    """Dense codes ``(n_pairs,)`` in ``[0, n_groups)`` for any group labels (int codes or str ids)."""
    groups = np.asarray(groups)
    if groups.ndim != 1 or groups.shape[0] != n_pairs:
        raise ConfigError(f"{name} must be 1-D with one entry per pair ({n_pairs}); got shape {groups.shape}")
    if n_pairs == 0:
        return np.zeros(0, dtype=np.int64), 0
    if np.issubdtype(groups.dtype, np.integer) and 0 <= groups.min() and groups.max() < 4 * n_pairs + 2**20:
        # Fast path for compact codes: bincount over the raw codes, empty groups dropped later.
        return groups.astype(np.int64), int(groups.max()) + 1
    unique_groups, codes = np.unique(groups, return_inverse=True)
    return codes.ravel().astype(np.int64), len(unique_groups)


def _grouped_rmse(error: np.ndarray, codes: np.ndarray, n_codes: int) -> float:
    """RMS over groups of the mean error within each group; groups without pairs are ignored."""
    if error.size == 0:
        return float("nan")
    pair_counts = np.bincount(codes, minlength=n_codes)
    error_sums = np.bincount(codes, weights=error, minlength=n_codes)
    present = pair_counts > 0
    group_mean_error = error_sums[present] / pair_counts[present]
    return float(np.sqrt(np.mean(group_mean_error**2)))


def _rmse_per_group(prob: np.ndarray, correct: np.ndarray, groups: np.ndarray, name: str) -> float:
    """Checked inputs, then :func:`_grouped_rmse` of ``prob - correct`` over the labels ``groups`` (called ``name``)."""
    prob, correct = _as_prob_and_correct(prob, correct)
    codes, n_codes = _group_codes(groups, prob.size, name)
    return _grouped_rmse(prob - correct, codes, n_codes)


def rmse_p(prob: np.ndarray, correct: np.ndarray) -> float:
    """Root mean square of ``prob - correct`` over all pairs; NaN for no pairs."""
    prob, correct = _as_prob_and_correct(prob, correct)
    if prob.size == 0:
        return float("nan")
    return float(np.sqrt(np.mean((prob - correct) ** 2)))


def rmse_m(prob: np.ndarray, correct: np.ndarray, llm: np.ndarray) -> float:
    """Per LLM mean of ``prob - correct``, then root mean square over the LLMs present; NaN for no pairs.

    Args:
        prob: ``(n_pairs,)`` predicted probabilities.
        correct: ``(n_pairs,)`` 0/1 scores.
        llm: ``(n_pairs,)`` LLM of each pair, as int codes or ids.
    """
    return _rmse_per_group(prob, correct, llm, "llm")


def rmse_x(prob: np.ndarray, correct: np.ndarray, item: np.ndarray) -> float:
    """Per item mean of ``prob - correct``, then root mean square over the items present; NaN for no pairs.

    Args:
        prob: ``(n_pairs,)`` predicted probabilities.
        correct: ``(n_pairs,)`` 0/1 scores.
        item: ``(n_pairs,)`` item of each pair, as int codes or ids.
    """
    return _rmse_per_group(prob, correct, item, "item")


def log_loss(prob: np.ndarray, correct: np.ndarray, eps: float = 1e-7) -> float:
    """Mean negative log-likelihood in nats, ``prob`` clipped to ``[eps, 1 - eps]``; NaN for no pairs."""
    if not 0.0 < eps < 0.5:
        raise ConfigError(f"eps must be in (0, 0.5), got {eps!r}")
    prob, correct = _as_prob_and_correct(prob, correct)
    if prob.size == 0:
        return float("nan")
    prob = np.clip(prob, eps, 1.0 - eps)
    return float(-np.mean(correct * np.log(prob) + (1.0 - correct) * np.log1p(-prob)))


def brier(prob: np.ndarray, correct: np.ndarray) -> float:
    """Mean squared error ``mean((prob - correct)^2)`` (the square of RMSE_p); NaN for no pairs."""
    prob, correct = _as_prob_and_correct(prob, correct)
    if prob.size == 0:
        return float("nan")
    return float(np.mean((prob - correct) ** 2))


def reliability_table(prob: np.ndarray, correct: np.ndarray, n_bins: int = 15) -> pd.DataFrame:
    """Equal-width bins of predicted probability: pairs, mean prediction and observed rate per bin."""
    prob, correct = _as_prob_and_correct(prob, correct)
    if not (isinstance(n_bins, (int, np.integer)) and n_bins >= 1):
        raise ConfigError(f"n_bins must be a positive integer, got {n_bins!r}")
    bins = np.minimum((prob * n_bins).astype(int), n_bins - 1)
    counts = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_prob = np.bincount(bins, weights=prob, minlength=n_bins) / counts
        observed = np.bincount(bins, weights=correct, minlength=n_bins) / counts
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return pd.DataFrame({"lower": edges[:-1], "upper": edges[1:], "n_pairs": counts,
                         "mean_prob": mean_prob, "observed": observed})


def ece(prob: np.ndarray, correct: np.ndarray, n_bins: int = 15) -> float:
    """Expected calibration error: pair-weighted mean of ``|mean prob − observed rate|`` over equal-width bins."""
    table = reliability_table(prob, correct, n_bins)
    if table["n_pairs"].sum() == 0:
        return float("nan")
    used = table["n_pairs"] > 0
    gaps = (table["mean_prob"] - table["observed"]).abs()[used]
    return float(np.average(gaps, weights=table["n_pairs"][used]))


def randomised_pit(draws: np.ndarray, observed: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The randomised probability integral transform of each observed value under its predictive draws.

    ``draws`` is ``(n_draws, n_groups)``, ``observed`` ``(n_groups,)``. Returns ``F(y-) + V (F(y) - F(y-))`` per
    group, ``F`` the draws' empirical CDF and ``V`` uniform on [0, 1] (Czado, Gneiting and Held 2009): uniform on
    [0, 1] when the predictive is calibrated, also for a discrete quantity such as a mean of a few 0/1 answers, whose
    quantile intervals cover more than their level because they hold whole atoms at their ends.
    """
    draws, observed = np.asarray(draws, float), np.asarray(observed, float)
    if draws.ndim != 2 or observed.shape != draws.shape[1:]:
        raise ValueError(f"draws must be (n_draws, n_groups) and observed (n_groups,); got {draws.shape} and "
                         f"{observed.shape}")
    tie = 1e-9 * np.maximum(1.0, np.abs(observed))  # the draws of a mean of answers repeat its exact value
    below = (draws < observed - tie).mean(axis=0)
    at = (np.abs(draws - observed) <= tie).mean(axis=0)
    return below + rng.uniform(size=observed.shape) * at


def auc(prob: np.ndarray, correct: np.ndarray) -> float:
    """Area under the ROC curve from ranks (Mann-Whitney U), tied probabilities sharing their mean rank.

    Equals the probability that a random correct pair gets a higher ``prob`` than a random incorrect
    one, ties counting one half. NaN when there is no positive or no negative pair.
    """
    prob, correct = _as_prob_and_correct(prob, correct)
    positive = correct == 1.0
    n_positive = int(positive.sum())
    n_negative = prob.size - n_positive
    if n_positive == 0 or n_negative == 0:
        return float("nan")
    # Average 1-based rank of each distinct value: tied values get the middle of their rank range.
    unique_prob, inverse, tie_counts = np.unique(prob, return_inverse=True, return_counts=True)
    last_rank = np.cumsum(tie_counts)
    mean_rank = last_rank - (tie_counts - 1) / 2.0
    positive_rank_sum = mean_rank[inverse.ravel()][positive].sum()
    u_statistic = positive_rank_sum - n_positive * (n_positive + 1) / 2.0
    return float(u_statistic / (n_positive * n_negative))


def evaluate(
    prob: np.ndarray, correct: np.ndarray, llm: np.ndarray, item: np.ndarray
) -> dict[str, float]:
    """All metrics of one split.

    Args:
        prob: ``(n_pairs,)`` predicted probabilities in [0, 1].
        correct: ``(n_pairs,)`` 0/1 scores.
        llm: ``(n_pairs,)`` LLM of each pair (int codes or ids).
        item: ``(n_pairs,)`` item of each pair (int codes or ids).

    Returns:
        ``rmse_p``, ``rmse_m``, ``rmse_x``, ``log_loss``, ``auc`` (NaN when undefined, e.g. no pairs)
        and the counts ``n_pairs``, ``n_llms``, ``n_items`` (distinct LLMs and items in the split).
    """
    prob, correct = _as_prob_and_correct(prob, correct)
    llm_codes, n_llm_codes = _group_codes(llm, prob.size, "llm")
    item_codes, n_item_codes = _group_codes(item, prob.size, "item")
    error = prob - correct
    n_llms = int(np.count_nonzero(np.bincount(llm_codes, minlength=n_llm_codes)))
    n_items = int(np.count_nonzero(np.bincount(item_codes, minlength=n_item_codes)))
    return {
        "rmse_p": rmse_p(prob, correct),
        "rmse_m": _grouped_rmse(error, llm_codes, n_llm_codes),
        "rmse_x": _grouped_rmse(error, item_codes, n_item_codes),
        "log_loss": log_loss(prob, correct),
        "auc": auc(prob, correct),
        "n_pairs": int(prob.size),
        "n_llms": n_llms,
        "n_items": n_items,
    }
