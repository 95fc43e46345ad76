"""Tests of bayes_simrmf.predict: MeanScore and SimRMF (MF) with the scikit-learn shape, and the
population rule for LLMs and items the fit never saw; plus fit/evaluate on a protocol split.

Fits use a 120 LLMs x 200 items training block, the shape test_inference.py compiles too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayes_simrmf.errors import ConfigError, NotFittedError, UnknownEntityError
from bayes_simrmf.predict import MeanScore, SimRMF, make_estimator
from bayes_simrmf.evaluate import TEST_SPLITS, evaluate_on_split, fit_on_split
from bayes_simrmf.model import INTERCEPT, ITEM_BIAS, ITEM_FACTORS, LLM_BIAS, LLM_FACTORS
from bayes_simrmf.splits import Protocol
from bayes_simrmf.synthetic import make_synthetic_dataset

N_LLMS, N_ITEMS, DIM = 120, 200, 3


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


class Synthetic:
    """make_synthetic_dataset's 120 x 200 matrix, 40 % of cells for training, the rest held out."""

    def __init__(self) -> None:
        dataset, truth = make_synthetic_dataset(N_LLMS, N_ITEMS, dim=DIM, seed_value=0)
        llm_idx, item_idx, correct = dataset.codes()
        llm_ids, item_ids = dataset.llm_ids(), dataset.item_ids()
        # make_synthetic_dataset names rows in order, so sorted ids index the true parameters.
        assert llm_ids[7] == "synthetic/llm-00007" and item_ids[11] == "synthetic/item-000011"
        train = np.random.default_rng(1).random(len(correct)) < 0.4
        self.train = (llm_ids[llm_idx[train]], item_ids[item_idx[train]], correct[train])
        self.test = (llm_ids[llm_idx[~train]], item_ids[item_idx[~train]], correct[~train])
        logits = (
            np.sum(truth[LLM_FACTORS][llm_idx] * truth[ITEM_FACTORS][item_idx], axis=1)
            + truth[INTERCEPT]
            + truth[LLM_BIAS][llm_idx]
            + truth[ITEM_BIAS][item_idx]
        )
        self.test_true_prob = _sigmoid(logits[~train])
        self.llm_ids, self.item_ids = llm_ids, item_ids


@pytest.fixture(scope="module")
def data() -> Synthetic:
    return Synthetic()


@pytest.fixture(scope="module")
def fitted(data) -> SimRMF:
    return SimRMF(dim=DIM, max_steps=300, progress=False, seed=0).fit(*data.train)


def _hand_logits(params: dict, llm_codes: np.ndarray, item_codes: np.ndarray) -> np.ndarray:
    """Outer-product logits ``(len(llm_codes), len(item_codes))`` from fitted parameters, in float64."""
    p = {name: np.asarray(value, dtype=np.float64) for name, value in params.items()}
    return (
        p[LLM_FACTORS][llm_codes] @ p[ITEM_FACTORS][item_codes].T
        + p[INTERCEPT]
        + p[LLM_BIAS][llm_codes, None]
        + p[ITEM_BIAS][None, item_codes]
    )


# --------------------------------------------------------------------------------------------------
# MeanScore
# --------------------------------------------------------------------------------------------------


def test_mean_score_predicts_the_training_mean_everywhere():
    llm = ["a", "a", "b", "c"]
    item = ["x", "y", "x", "z"]
    estimator = MeanScore()
    assert estimator.fit(llm, item, [1, 0, 1, 1]) is estimator
    assert estimator.mean_ == pytest.approx(0.75)
    prob = estimator.predict(["a", "never-seen"], ["z", "never-seen"])
    np.testing.assert_array_equal(prob, [0.75, 0.75])
    restored = MeanScore().set_state(estimator.get_state())
    np.testing.assert_array_equal(restored.predict(["q"], ["r"]), [0.75])


def test_an_unfitted_model_refuses_every_prediction_with_one_clear_error():
    model = SimRMF(dim=2)
    calls = {
        "predict": lambda: model.predict(["a"], ["x"]),
        "predict_interval": lambda: model.predict_interval(["a"], ["x"]),
        "predict_group_interval": lambda: model.predict_group_interval(["a"], ["x"], by="llm"),
        "group_draws": lambda: model.group_draws(["a"], ["x"], by="llm"),
        "sample_posterior": lambda: model.sample_posterior(3),
        "get_state": model.get_state,
        "MeanScore.predict": lambda: MeanScore().predict(["a"], ["x"]),
    }
    for name, call in calls.items():
        with pytest.raises(NotFittedError, match="not fitted yet: call fit"):
            call()
        assert issubclass(NotFittedError, ValueError), name


def test_make_estimator_builds_the_named_method():
    assert isinstance(make_estimator("meanscore"), MeanScore)
    estimator = make_estimator("mf", dim=2, seed=5)
    assert isinstance(estimator, SimRMF) and estimator.dim == 2 and estimator.seed == 5
    with pytest.raises(ConfigError, match="method"):
        make_estimator("svd")


# --------------------------------------------------------------------------------------------------
# SimRMF fit / predict
# --------------------------------------------------------------------------------------------------


def test_simrmf_fit_predicts_held_out_cells_better_than_the_mean(data, fitted):
    assert set(fitted.params_) >= {LLM_FACTORS, ITEM_FACTORS, LLM_BIAS, ITEM_BIAS, INTERCEPT}
    assert fitted.params_[LLM_FACTORS].shape == (N_LLMS, DIM)
    assert fitted.params_[ITEM_FACTORS].shape == (N_ITEMS, DIM)
    assert sorted(fitted.llms_) == sorted(data.llm_ids) and len(fitted.items_) == N_ITEMS
    assert fitted.losses_[-1] < fitted.losses_[0]
    prob = fitted.predict(*data.test[:2])
    assert prob.shape == (len(data.test[2]),)
    assert ((prob >= 0) & (prob <= 1)).all()
    truth = data.test_true_prob
    mean_rmse = np.sqrt(np.mean((data.train[2].mean() - truth) ** 2))
    fit_rmse = np.sqrt(np.mean((prob - truth) ** 2))
    # Per-LLM and per-item biases (sd 1 and 1.5 logits) explain most of the planted variation, and each
    # LLM/item has 48-80 training cells: the fit must remove at least 30 % of the mean's error (it removes ~45 %).
    assert fit_rmse < 0.7 * mean_rmse, (fit_rmse, mean_rmse)


def test_known_pairs_use_the_point_estimate(data, fitted):
    llm, item = data.test[0][:50], data.test[1][:50]
    llm_codes = np.searchsorted(fitted.llms_, llm)
    item_codes = np.searchsorted(fitted.items_, item)
    assert (fitted.llms_[llm_codes] == llm).all() and (fitted.items_[item_codes] == item).all()
    expected = _sigmoid(np.diag(_hand_logits(fitted.params_, llm_codes, item_codes)))
    np.testing.assert_allclose(fitted.predict(llm, item), expected, rtol=1e-5, atol=1e-6)
    # A known pair is predicted the same whatever the policy for unknown entities.
    np.testing.assert_array_equal(fitted.predict(llm, item, unknown="population"), fitted.predict(llm, item))


@pytest.mark.parametrize("side", ["llm", "item"])
def test_unknown_entity_is_refused_naming_it_and_the_population_option(data, fitted, side):
    llm = [data.llm_ids[0], data.llm_ids[1], data.llm_ids[2]]
    item = [data.item_ids[0], data.item_ids[1], data.item_ids[2]]
    if side == "llm":
        llm[1] = "org/brand-new-llm"
    else:
        item[2] = "bench/never-asked"
    with pytest.raises(UnknownEntityError) as error:
        fitted.predict(llm, item)
    message = str(error.value)
    assert ("org/brand-new-llm" if side == "llm" else "bench/never-asked") in message
    assert "unknown='population'" in message
    assert isinstance(error.value, KeyError)  # also catchable as a lookup error


def test_unknown_policy_must_be_valid(data, fitted):
    with pytest.raises(ConfigError, match="unknown"):
        fitted.predict([data.llm_ids[0]], [data.item_ids[0]], unknown="zero")


def test_population_prediction_for_new_llms_and_items_matches_a_hand_computation(data, fitted):
    known_llm_code, known_item_code = 4, 9
    known_llm, known_item = fitted.llms_[known_llm_code], fitted.items_[known_item_code]
    all_logits = _hand_logits(fitted.params_, np.arange(N_LLMS), np.arange(N_ITEMS))
    all_prob = _sigmoid(all_logits)
    prob = fitted.predict(
        ["new/llm-a", known_llm, "new/llm-b", "new/llm-a"],
        [known_item, "new/item", "new/item-2", data.item_ids[0]],
        unknown="population",
    )
    # A new LLM on a known item: the mean over fitted LLMs of their predicted probability on that item.
    assert prob[0] == pytest.approx(all_prob[:, known_item_code].mean(), abs=1e-6)
    # A known LLM on a new item: the mean over fitted items for that LLM.
    assert prob[1] == pytest.approx(all_prob[known_llm_code, :].mean(), abs=1e-6)
    # New x new: the grand mean of all fitted LLM x item probabilities.
    assert prob[2] == pytest.approx(all_prob.mean(), abs=1e-6)
    item0_code = int(np.searchsorted(fitted.items_, data.item_ids[0]))
    assert prob[3] == pytest.approx(all_prob[:, item0_code].mean(), abs=1e-6)
    # Averaging probabilities is not the probability of the average logit (guards against that shortcut).
    assert abs(all_prob.mean() - _sigmoid(all_logits.mean())) > 1e-3


@pytest.mark.parametrize(
    ("correct", "pattern"),
    [
        ([0, 1, 2], "0/1"),
        ([0, 1, 0.5], "0/1"),
        ([0, 1, float("nan")], "0/1"),
        ([0, 1], "one value per pair"),
    ],
)
@pytest.mark.parametrize("estimator_class", [SimRMF, MeanScore])
def test_fit_rejects_bad_scores(estimator_class, correct, pattern):
    with pytest.raises(ConfigError, match=pattern):
        estimator_class().fit(["a", "b", "c"], ["x", "y", "z"], correct)


def test_fit_rejects_mismatched_pair_lengths_and_zero_pairs():
    with pytest.raises(ConfigError, match="equal length"):
        SimRMF().fit(["a", "b"], ["x"], [1, 0])
    with pytest.raises(ConfigError, match="zero"):
        SimRMF().fit([], [], [])


def test_same_seed_gives_the_same_predictions(data, fitted):
    again = SimRMF(dim=DIM, max_steps=300, progress=False, seed=0).fit(*data.train)
    np.testing.assert_array_equal(again.predict(*data.test[:2]), fitted.predict(*data.test[:2]))


# --------------------------------------------------------------------------------------------------
# fit_on_split / evaluate_on_split
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def split():
    dataset, _ = make_synthetic_dataset(180, 300, dim=DIM, seed_value=1)
    protocol = Protocol(n_known_llms=N_LLMS, n_known_items=N_ITEMS, T=60, n_test_pairs=8000, seed=0)
    return protocol.split(dataset, log=None)


def test_mf_beats_mean_score_on_splits_a_and_c(split):
    mf = fit_on_split(SimRMF(dim=DIM, max_steps=300, progress=False), split)
    assert isinstance(mf, SimRMF)
    mean = fit_on_split(MeanScore(), split)
    assert mean.mean_ == pytest.approx(split.pairs["train"].correct.mean())
    mf_metrics = evaluate_on_split(mf, split)
    mean_metrics = evaluate_on_split(mean, split)
    for metrics in (mf_metrics, mean_metrics):
        assert list(metrics) == list(TEST_SPLITS)
        for name in TEST_SPLITS:
            assert {"rmse_p", "rmse_m", "rmse_x", "log_loss", "auc", "n_pairs"} <= set(metrics[name])
            assert metrics[name]["n_pairs"] == len(split.pairs[name]) > 0
            assert 0 < metrics[name]["rmse_p"] < 1
    # Known LLM x known item (A) and new LLM x known item (C, through the item's population mean): the item
    # difficulties (sd 1.5 logits) are learnt, so MF must clearly beat the constant (by > 0.01 RMSE_p).
    for name in ("A", "C"):
        assert mf_metrics[name]["rmse_p"] < mean_metrics[name]["rmse_p"] - 0.01, name
    # New x new (D) carries no information about either side: MF is the grand mean, close to MeanScore.
    assert mf_metrics["D"]["rmse_p"] == pytest.approx(mean_metrics["D"]["rmse_p"], abs=0.01)


def test_llm_bias_scale_shrinks_llm_biases_only():
    # 60 LLMs with 8 answers each, 40 items with 12 answers each: LLM abilities come from few answers.
    rng = np.random.default_rng(3)
    llm = np.repeat([f"l{i}" for i in range(60)], 8)
    item = np.array([f"q{k}" for k in rng.integers(0, 40, size=len(llm))])
    keep = ~pd.DataFrame({"l": llm, "q": item}).duplicated().to_numpy()
    llm, item = llm[keep], item[keep]
    correct = (rng.random(len(llm)) < 0.5).astype(int)
    options = {"method": "mf", "dim": 0, "max_steps": 600, "progress": False, "seed": 0}
    wide = SimRMF(**options).fit(llm, item, correct)
    narrow = SimRMF(**options, llm_bias_scale=0.1).fit(llm, item, correct)
    assert np.std(narrow.params_[LLM_BIAS]) < 0.2 * np.std(wide.params_[LLM_BIAS])
    assert np.std(narrow.params_[ITEM_BIAS]) > 0.5 * np.std(wide.params_[ITEM_BIAS])
    assert narrow.get_config()["llm_bias_scale"] == 0.1 and wide.get_config()["llm_bias_scale"] is None
    assert SimRMF.from_config(narrow.get_config()).llm_bias_scale == 0.1
    with pytest.raises(ConfigError, match="llm_bias_scale"):
        SimRMF(**options, llm_bias_scale=-1.0).fit(llm, item, correct)
