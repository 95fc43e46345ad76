"""Tests of bayes_simrmf.evaluate.metrics against hand-computed values and brute-force definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bayes_simrmf.errors import ConfigError
from bayes_simrmf.evaluate.metrics import auc, brier, evaluate, log_loss, rmse_m, rmse_p, rmse_x

# Four pairs: two LLMs x two items.
PROB = np.array([0.9, 0.2, 0.6, 0.4])
CORRECT = np.array([1, 0, 0, 1], dtype=np.int8)
LLM = np.array([0, 0, 1, 1])
ITEM = np.array([0, 1, 0, 1])
# errors prob - correct = [-0.1, 0.2, 0.6, -0.6]


def test_rmse_p_by_hand() -> None:
    # squares 0.01 + 0.04 + 0.36 + 0.36 = 0.77, mean 0.1925
    assert rmse_p(PROB, CORRECT) == pytest.approx(math.sqrt(0.1925))


def test_brier_by_hand() -> None:
    assert brier(PROB, CORRECT) == pytest.approx(0.1925)


def test_rmse_m_by_hand() -> None:
    # LLM 0: mean(-0.1, 0.2) = 0.05; LLM 1: mean(0.6, -0.6) = 0; RMS = sqrt((0.0025 + 0) / 2)
    assert rmse_m(PROB, CORRECT, LLM) == pytest.approx(math.sqrt(0.00125))


def test_rmse_x_by_hand() -> None:
    # item 0: mean(-0.1, 0.6) = 0.25; item 1: mean(0.2, -0.6) = -0.2; RMS = sqrt((0.0625 + 0.04) / 2)
    assert rmse_x(PROB, CORRECT, ITEM) == pytest.approx(math.sqrt(0.05125))


def test_rmse_m_unequal_group_sizes_and_any_labels() -> None:
    # LLM "a": mean(-0.1, 0.2, 0.6) = 0.7/3; LLM "b": -0.6; each LLM counts once, whatever its size.
    expected = math.sqrt(((0.7 / 3) ** 2 + 0.36) / 2)
    assert rmse_m(PROB, CORRECT, np.array(["a", "a", "a", "b"])) == pytest.approx(expected)
    # Sparse integer codes (groups 5 and 9, none in between) give the same answer.
    assert rmse_m(PROB, CORRECT, np.array([5, 5, 5, 9])) == pytest.approx(expected)
    assert rmse_m(PROB, CORRECT, np.array([10**12, 10**12, 10**12, 3])) == pytest.approx(expected)


def test_log_loss_by_hand_and_clipping() -> None:
    # likelihood of the observed score: 0.9, 1 - 0.2, 1 - 0.6, 0.4
    expected = -(math.log(0.9) + math.log(0.8) + math.log(0.4) + math.log(0.4)) / 4
    assert log_loss(PROB, CORRECT) == pytest.approx(expected)
    # A confident wrong prediction costs -log(eps), not infinity.
    assert log_loss(np.array([0.0]), np.array([1])) == pytest.approx(-math.log(1e-7))
    assert log_loss(np.array([1.0]), np.array([0]), eps=1e-3) == pytest.approx(-math.log(1e-3))
    with pytest.raises(ConfigError, match="eps"):
        log_loss(PROB, CORRECT, eps=0.0)


def test_auc_by_hand() -> None:
    # positives 0.9, 0.4 vs negatives 0.2, 0.6: 0.9>0.2, 0.9>0.6, 0.4>0.2, 0.4<0.6 -> 3/4
    assert auc(PROB, CORRECT) == pytest.approx(0.75)
    # ties count one half: positives 0.5, 0.2 vs negatives 0.5, 0.9 -> (0.5 + 0 + 0 + 0) / 4
    assert auc(np.array([0.5, 0.5, 0.2, 0.9]), np.array([1, 0, 1, 0])) == pytest.approx(0.125)
    # all equal probabilities -> 0.5
    assert auc(np.full(6, 0.3), np.array([1, 0, 1, 0, 0, 1])) == pytest.approx(0.5)


def test_auc_undefined_without_both_classes() -> None:
    assert math.isnan(auc(np.array([0.2, 0.7]), np.array([1, 1])))
    assert math.isnan(auc(np.array([0.2, 0.7]), np.array([0, 0])))


def _brute_force_auc(prob: np.ndarray, correct: np.ndarray) -> float:
    """Fraction of (positive, negative) pairs ranked correctly, ties one half."""
    positive, negative = prob[correct == 1], prob[correct == 0]
    n_wins = (positive[:, None] > negative[None, :]).sum()
    n_ties = (positive[:, None] == negative[None, :]).sum()
    wins = n_wins + 0.5 * n_ties
    return float(wins / (len(positive) * len(negative)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_matches_brute_force_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    prob = np.round(rng.random(400), 2)  # rounding creates many ties
    correct = (rng.random(400) < prob).astype(np.int8)
    assert auc(prob, correct) == pytest.approx(_brute_force_auc(prob, correct), abs=1e-12)


def test_auc_matches_sklearn() -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(7)
    prob = np.round(rng.random(2000), 3)
    correct = (rng.random(2000) < prob).astype(np.int8)
    assert auc(prob, correct) == pytest.approx(sklearn_metrics.roc_auc_score(correct, prob), abs=1e-12)


def test_grouped_metrics_match_a_plain_loop() -> None:
    rng = np.random.default_rng(3)
    n_pairs = 3000
    llm = rng.integers(0, 40, n_pairs)
    item = rng.integers(0, 70, n_pairs)
    prob = rng.random(n_pairs)
    correct = rng.integers(0, 2, n_pairs)
    error = prob - correct
    for groups, metric in ((llm, rmse_m), (item, rmse_x)):
        group_means = [error[groups == group].mean() for group in np.unique(groups)]
        assert metric(prob, correct, groups) == pytest.approx(math.sqrt(np.mean(np.square(group_means))))


def test_evaluate_keys_and_values() -> None:
    result = evaluate(PROB, CORRECT, LLM, ITEM)
    assert set(result) == {"rmse_p", "rmse_m", "rmse_x", "log_loss", "auc", "n_pairs", "n_llms", "n_items"}
    assert result["rmse_p"] == pytest.approx(math.sqrt(0.1925))
    assert result["rmse_m"] == pytest.approx(math.sqrt(0.00125))
    assert result["rmse_x"] == pytest.approx(math.sqrt(0.05125))
    assert result["auc"] == pytest.approx(0.75)
    assert (result["n_pairs"], result["n_llms"], result["n_items"]) == (4, 2, 2)
    # Counts are of distinct LLMs / items present, not of the largest code.
    assert evaluate(PROB, CORRECT, np.array([3, 3, 8, 8]), np.array(["x", "y", "x", "x"]))["n_llms"] == 2


def test_evaluate_empty_gives_nan_not_a_crash() -> None:
    empty = np.array([])
    result = evaluate(empty, empty.astype(np.int8), empty.astype(np.int32), empty.astype(np.int32))
    assert result["n_pairs"] == 0 and result["n_llms"] == 0 and result["n_items"] == 0
    for key in ("rmse_p", "rmse_m", "rmse_x", "log_loss", "auc"):
        assert math.isnan(result[key]), key
    assert math.isnan(rmse_p(empty, empty)) and math.isnan(brier(empty, empty))


def test_shape_mismatch_names_the_arrays() -> None:
    with pytest.raises(ConfigError, match="prob.*correct"):
        rmse_p(PROB, CORRECT[:3])
    with pytest.raises(ConfigError, match="llm"):
        rmse_m(PROB, CORRECT, LLM[:3])
    with pytest.raises(ConfigError, match="item"):
        evaluate(PROB, CORRECT, LLM, ITEM[:2])
    with pytest.raises(ConfigError, match="prob"):
        rmse_p(PROB.reshape(2, 2), CORRECT.reshape(2, 2))


def test_invalid_values_are_refused() -> None:
    with pytest.raises(ConfigError, match="prob"):
        rmse_p(np.array([0.5, 1.5]), np.array([0, 1]))
    with pytest.raises(ConfigError, match="prob"):
        rmse_p(np.array([0.5, np.nan]), np.array([0, 1]))
    with pytest.raises(ConfigError, match="correct"):
        rmse_p(np.array([0.5, 0.5]), np.array([0, 2]))


def test_evaluate_is_fast_on_a_million_pairs() -> None:
    import time

    rng = np.random.default_rng(0)
    n_pairs = 1_000_000
    prob = rng.random(n_pairs)
    correct = (rng.random(n_pairs) < prob).astype(np.int8)
    start = time.perf_counter()
    evaluate(prob, correct, rng.integers(0, 1000, n_pairs), rng.integers(0, 20000, n_pairs))
    assert time.perf_counter() - start < 5.0


def test_ece_by_hand():
    from bayes_simrmf.evaluate.metrics import ece, reliability_table

    # Bin [0.1, 0.2): predictions 0.1, 0.1 with outcomes 0, 1 -> gap |0.1 - 0.5| = 0.4 over 2 pairs;
    # bin [0.9, 1.0]: predictions 0.9, 0.95 with outcomes 1, 1 -> gap |0.925 - 1| = 0.075 over 2 pairs.
    prob = np.array([0.1, 0.1, 0.9, 0.95])
    correct = np.array([0, 1, 1, 1])
    assert ece(prob, correct, n_bins=10) == pytest.approx((2 * 0.4 + 2 * 0.075) / 4)
    table = reliability_table(prob, correct, n_bins=10)
    assert table["n_pairs"].tolist() == [0, 2, 0, 0, 0, 0, 0, 0, 0, 2]
    assert ece(np.array([0.3, 0.7]), np.array([0, 1]), n_bins=1) == pytest.approx(0.0)


# ----------------------------------------------------------------------------- randomised PIT


def test_randomised_pit_splits_an_atom_uniformly_and_refuses_bad_shapes():
    from bayes_simrmf.evaluate.metrics import randomised_pit

    draws = np.array([[0.0, 0.2], [0.2, 0.2], [0.4, 0.2], [0.6, 0.2]])
    pit = np.stack([randomised_pit(draws, np.array([0.2, 0.2]), np.random.default_rng(seed)) for seed in range(2000)])
    # One of four draws below 0.2 and one at it: uniform on [0.25, 0.5]; every draw at 0.2: uniform on [0, 1].
    assert pit[:, 0].min() >= 0.25 and pit[:, 0].max() <= 0.5 and abs(pit[:, 0].mean() - 0.375) < 0.01
    assert abs(pit[:, 1].mean() - 0.5) < 0.02 and pit[:, 1].min() < 0.05 and pit[:, 1].max() > 0.95
    with pytest.raises(ValueError, match="n_draws, n_groups"):
        randomised_pit(draws, np.zeros(3), np.random.default_rng(0))


class _Calibrated:
    """A model whose predictive of each question's mean over its answers is exactly the distribution the
    answers came from (Binomial(n, p) / n): calibrated, and discrete."""

    def __init__(self, prob: dict):
        self.prob = prob

    def group_draws(self, llm, item, *, by, n_draws, unknown, seed):
        import pandas as pd

        codes, groups = pd.factorize(pd.Series(item if by == "item" else llm))
        counts = np.bincount(codes)
        p = np.array([self.prob[name] for name in groups])
        draws = np.random.default_rng(seed + 7).binomial(counts, p, size=(n_draws, len(groups))) / counts
        return np.asarray(groups), draws, counts


def test_interval_coverage_of_a_calibrated_discrete_predictive_is_level_by_pit_and_more_by_interval():
    from types import SimpleNamespace

    from bayes_simrmf.evaluate.split import interval_coverage
    from bayes_simrmf.splits.pairs import Pairs

    rng = np.random.default_rng(0)
    n_items, answers = 3000, 5
    prob = rng.beta(0.7, 0.7, size=n_items)  # many questions near 0 or 1, as on the leaderboard
    item = np.repeat(np.arange(n_items), answers)
    llm = np.tile(np.arange(answers), n_items)
    correct = (rng.random(len(item)) < prob[item]).astype(np.int8)
    split = SimpleNamespace(pairs={"B": Pairs(llm.astype(np.int32), item.astype(np.int32), correct)},
                            llms=np.array([f"m{j}" for j in range(answers)]),
                            items=np.array([f"q{k}" for k in range(n_items)]))
    model = _Calibrated({f"q{k}": prob[k] for k in range(n_items)})
    result = interval_coverage(model, split, "B", "item", n_draws=400, max_pairs=len(item), seed=0)
    assert result["answers_item_median"] == answers
    for level in (50, 80, 90, 95):
        assert abs(result[f"pit{level}_item_mean"] - level / 100) < 0.025, (level, result)
    assert result["cover90_item_mean"] > 0.95 and result["cover50_item_mean"] > 0.6  # the atoms at the ends
