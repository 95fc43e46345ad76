"""Tests of uncertainty-aware routing (bayes_simrmf.routing) and the `route` command.

Policies are checked on hand-made posterior draws where the right choice is known; route() on one small fitted
model (60 LLMs x 80 questions, normal guide) against predict_interval; evaluation metrics and baselines on tiny
truth tables computed by hand.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from bayes_simrmf.data.locations import default_data_dir
from click.testing import CliRunner

from bayes_simrmf import routing
from bayes_simrmf.cli import main
from bayes_simrmf.errors import BayesSimRMFError, ConfigError, UnknownEntityError
from bayes_simrmf.predict import SimRMF
from bayes_simrmf.routing import (
    Abstain,
    Candidates,
    CostAware,
    Greedy,
    PosteriorScores,
    RiskAverse,
    Thompson,
    Threshold,
)
from bayes_simrmf.saving import load_model, save_model
from bayes_simrmf.synthetic import make_synthetic_dataset

N_DRAWS = 200


# --------------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted():
    """(model, truth): a normal-guide fit on all pairs of a 60 x 80 synthetic dataset, and those pairs."""
    dataset, _ = make_synthetic_dataset(60, 80, dim=2, seed_value=0)
    responses = dataset.responses
    model = SimRMF(guide="normal", dim=2, max_steps=300, progress=False).fit(
        responses["llm"], responses["item"], responses["correct"]
    )
    truth = pd.DataFrame({"item": responses["item"].astype(str), "llm": responses["llm"].astype(str),
                          "correct": responses["correct"].astype(int)})
    return model, truth


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory):
    """The fitted model saved to a folder (reloading it gives an independent copy)."""
    return save_model(tmp_path_factory.mktemp("routing") / "model", fitted[0], data_fingerprint=None)


@pytest.fixture(scope="module")
def candidates(fitted):
    model, _ = fitted
    return Candidates(model.llms_[[0, 5, 10, 20]], np.array([1.0, 2.0, 4.0, 8.0]))


def scores_of(columns: list[np.ndarray], costs, *, n_questions: int = 1, seed: int = 0) -> PosteriorScores:
    """Scores where every question has the same draws: ``columns[c]`` are candidate c's draws."""
    draws = np.stack(columns, axis=-1)[:, None, :].repeat(n_questions, axis=1)
    llms = [f"llm-{c}" for c in range(len(columns))]
    return PosteriorScores.from_draws(draws, Candidates(llms, np.asarray(costs, dtype=float)), seed=seed)


def spread(low: float, high: float, seed: int = 0) -> np.ndarray:
    """N_DRAWS evenly spaced draws in [low, high], in a shuffled order."""
    return np.random.default_rng(seed).permutation(np.linspace(low, high, N_DRAWS))


# --------------------------------------------------------------------------------------------------
# policies on hand-made posteriors
# --------------------------------------------------------------------------------------------------


def test_a_wide_posterior_wins_greedy_and_loses_risk_averse():
    wide, narrow = spread(0.3, 1.0), spread(0.58, 0.62, seed=1)  # means 0.65 and 0.60
    scores = scores_of([wide, narrow], [1.0, 1.0])
    assert Greedy().choose(scores).tolist() == [0]
    assert RiskAverse(level=0.9).choose(scores).tolist() == [1]
    # at a low level the bound is near the median, where the wide candidate is ahead again
    assert RiskAverse(level=0.05).choose(scores).tolist() == [0]


def test_cost_aware_switches_to_the_cheap_candidate_exactly_where_lam_outweighs_the_gain():
    strong_dear, weak_cheap = np.full(N_DRAWS, 0.8), np.full(N_DRAWS, 0.7)
    scores = scores_of([strong_dear, weak_cheap], [10.0, 1.0])
    switch = 0.1 / 9.0  # 0.8 - 10 lam = 0.7 - lam
    assert CostAware(lam=0.0).choose(scores).tolist() == [0]
    assert CostAware(lam=switch * 0.99).choose(scores).tolist() == [0]
    assert CostAware(lam=switch * 1.01).choose(scores).tolist() == [1]
    assert CostAware(lam=1.0).choose(scores).tolist() == [1]


def test_ties_go_to_the_cheaper_candidate_then_the_first_listed():
    same = np.full(N_DRAWS, 0.6)
    assert Greedy().choose(scores_of([same, same, same], [3.0, 1.0, 1.0])).tolist() == [1]
    assert Greedy().choose(scores_of([same, same], [2.0, 2.0])).tolist() == [0]


def test_threshold_picks_the_cheapest_confident_candidate_or_abstains():
    t = 0.6
    draws = np.stack([
        # question 0: all three clear 0.6 surely -> the cheapest
        np.stack([spread(0.7, 0.9), spread(0.8, 0.95), spread(0.9, 0.99)], axis=-1),
        # question 1: candidate 0 has mean 0.65 > t but P(p >= t) = 0.5 < 0.9; candidate 2 clears it
        np.stack([spread(0.3, 1.0), spread(0.1, 0.5), spread(0.75, 0.85)], axis=-1),
        # question 2: nobody clears
        np.stack([spread(0.1, 0.5), spread(0.2, 0.55), spread(0.4, 0.7)], axis=-1),
    ], axis=1)
    candidates = Candidates(["cheap", "mid", "dear"], np.array([1.0, 2.0, 3.0]))
    scores = PosteriorScores.from_draws(draws, candidates)
    assert scores.mean[1, 0] > t
    assert Threshold(threshold=t, confidence=0.9).choose(scores).tolist() == [0, 2, -1]
    assert Threshold(threshold=t, confidence=0.9, fallback="dear").choose(scores).tolist() == [0, 2, 2]
    # with confidence 0.4, candidate 0 (P = 0.5) clears question 1 too, and it is cheaper
    assert Threshold(threshold=t, confidence=0.4).choose(scores).tolist()[:2] == [0, 0]


def test_abstain_escalates_when_the_chosen_candidate_is_not_confident_enough():
    draws = np.stack([
        np.stack([spread(0.5, 0.6), spread(0.8, 0.9)], axis=-1),    # greedy -> 1 (mean 0.85), confident
        np.stack([spread(0.5, 0.6), spread(0.3, 0.5)], axis=-1),    # greedy -> 0 (mean 0.55), not >= 0.7
        np.stack([spread(0.4, 1.0), spread(0.1, 0.3)], axis=-1),    # greedy -> 0 (mean 0.7), P(p >= 0.7) = 0.5
    ], axis=1)
    scores = PosteriorScores.from_draws(draws, Candidates(["a", "b"], np.array([1.0, 5.0])))
    assert Abstain(Greedy(), threshold=0.7).choose(scores).tolist() == [1, -1, 0]
    assert Abstain(Greedy(), threshold=0.7, confidence=0.9).choose(scores).tolist() == [1, -1, -1]
    assert Abstain(Greedy(), threshold=0.7, confidence=0.9, fallback="b").choose(scores).tolist() == [1, 1, 1]


def test_thompson_is_seeded_and_chooses_each_candidate_as_often_as_it_is_best():
    rng = np.random.default_rng(3)
    columns = [rng.beta(6, 4, 400), rng.beta(2, 2, 400), rng.beta(5, 5, 400)]  # means 0.6, 0.5, 0.5
    p_best = np.bincount(np.argmax(np.stack(columns, axis=-1), axis=1), minlength=3) / 400
    scores = scores_of(columns, [1.0, 1.0, 1.0], n_questions=4000, seed=11)
    choice = Thompson().choose(scores)
    frequency = np.bincount(choice, minlength=3) / len(choice)
    np.testing.assert_allclose(frequency, p_best, atol=0.03)
    assert (frequency > 0.1).all()  # the uncertain candidates get tried; greedy never tries them
    assert set(Greedy().choose(scores).tolist()) == {0}
    assert np.array_equal(choice, Thompson().choose(scores_of(columns, [1.0] * 3, n_questions=4000, seed=11)))
    assert not np.array_equal(choice, Thompson().choose(scores_of(columns, [1.0] * 3, n_questions=4000, seed=12)))


def test_policy_parameters_and_names_are_checked():
    with pytest.raises(ConfigError, match="level must be in"):
        RiskAverse(level=1.5)
    with pytest.raises(ConfigError, match="lam must be"):
        CostAware(lam=-1.0)
    with pytest.raises(ConfigError, match="threshold must be in"):
        Threshold(threshold=1.2)
    with pytest.raises(ConfigError, match="confidence must be in"):
        Threshold(threshold=0.5, confidence=1.0)
    with pytest.raises(ConfigError, match="policy must be one of"):
        routing.make_policy("cheapest")
    with pytest.raises(ConfigError, match="needs a threshold"):
        routing.make_policy("threshold")
    assert isinstance(routing.make_policy("greedy", threshold=0.5), Abstain)
    assert routing.make_policy("risk-averse", level=0.8).label == "risk-averse(level=0.8)"


# --------------------------------------------------------------------------------------------------
# candidates
# --------------------------------------------------------------------------------------------------


def test_candidates_refuse_bad_tables_naming_the_rows_and_ids(fitted):
    model, _ = fitted
    known = list(model.llms_[:3])
    with pytest.raises(ConfigError, match=r"appear more than once.*rows \[0, 2\]"):
        Candidates.from_frame(pd.DataFrame({"llm": [known[0], known[1], known[0]], "cost": [1, 2, 3]}))
    with pytest.raises(ConfigError, match=r"row 1 \(.*: -2.0\)"):
        Candidates.from_frame(pd.DataFrame({"llm": known[:2], "cost": [1, -2]}))
    with pytest.raises(ConfigError, match="row 0"):
        Candidates.from_frame(pd.DataFrame({"llm": known[:2], "cost": [np.nan, 1]}))
    with pytest.raises(ConfigError, match=r"must be numeric; rows \[1\]"):
        Candidates.from_frame(pd.DataFrame({"llm": known[:2], "cost": ["1", "cheap"]}))
    with pytest.raises(ConfigError, match=r"missing \['cost'\]"):
        Candidates.from_frame(pd.DataFrame({"llm": known}))
    with pytest.raises(UnknownEntityError, match="no/such-llm"):
        Candidates.from_frame(pd.DataFrame({"llm": [known[0], "no/such-llm"], "cost": [1, 1]}), model=model)


# --------------------------------------------------------------------------------------------------
# route on a fitted model
# --------------------------------------------------------------------------------------------------


def test_route_reports_the_posterior_of_the_chosen_pair_as_predict_interval_does(fitted, candidates):
    model, _ = fitted
    items = model.items_  # all 80: enough for the two policies to disagree somewhere
    results = routing.route_many(model, items, candidates, [Greedy(), RiskAverse(0.8)], level=0.8, seed=4)
    for result in results.values():
        decisions = result.decisions
        assert list(decisions.columns) == ["item", "llm", "prob", "sd", "lower", "upper", "cost"]
        assert decisions["item"].tolist() == list(items)
        expected = model.predict_interval(decisions["llm"], decisions["item"], n_draws=N_DRAWS, level=0.8, seed=4)
        np.testing.assert_allclose(decisions[["prob", "sd", "lower", "upper"]].to_numpy(), expected.to_numpy(),
                                   atol=1e-5)
        np.testing.assert_array_equal(decisions["cost"], candidates.costs[pd.Index(candidates.llms).get_indexer(
            decisions["llm"])])
    # every candidate's interval: greedy takes the highest mean, risk-averse the highest lower bound
    grid = model.predict_interval(np.tile(candidates.llms, len(items)), np.repeat(items, len(candidates)),
                                  n_draws=N_DRAWS, level=0.8, seed=4)
    best_mean = grid["prob"].to_numpy().reshape(len(items), -1).max(axis=1)
    best_lower = grid["lower"].to_numpy().reshape(len(items), -1).max(axis=1)
    np.testing.assert_allclose(results["greedy"].decisions["prob"], best_mean, atol=1e-5)
    np.testing.assert_allclose(results["risk-averse(level=0.8)"].decisions["lower"], best_lower, atol=1e-5)
    assert (results["greedy"].decisions["llm"] != results["risk-averse(level=0.8)"].decisions["llm"]).any()


def test_route_does_not_depend_on_the_batch_size(fitted, candidates):
    model, _ = fitted
    policies = [Greedy(), Thompson(lam=0.01), Threshold(0.6, 0.8)]
    whole = routing.route_many(model, model.items_, candidates, policies, seed=2, batch_items=1000)
    batched = routing.route_many(model, model.items_, candidates, policies, seed=2, batch_items=7)
    for name in whole:
        pd.testing.assert_frame_equal(whole[name].decisions, batched[name].decisions)
        np.testing.assert_allclose(whole[name].accuracy_draws, batched[name].accuracy_draws, rtol=1e-9)


def test_route_summary_adds_up(fitted, candidates):
    model, _ = fitted
    result = routing.route(model, model.items_, candidates, Threshold(0.6, 0.8), seed=1)
    decisions, summary = result.decisions, result.summary()
    routed = decisions["llm"].notna()
    assert 0 < summary["n_routed"] == routed.sum() < len(decisions)
    assert decisions.loc[~routed, "cost"].eq(0).all() and decisions.loc[~routed, "prob"].isna().all()
    assert summary["total_cost"] == pytest.approx(decisions["cost"].sum())
    assert summary["expected_accuracy"] == pytest.approx(decisions.loc[routed, "prob"].mean())
    assert summary["expected_accuracy"] == pytest.approx(result.accuracy_draws.mean())
    assert summary["expected_accuracy_lower"] < summary["expected_accuracy"] < summary["expected_accuracy_upper"]
    # the realised accuracy's interval adds answer noise to the expected accuracy's: wider, same centre
    assert summary["realised_accuracy_lower"] < summary["expected_accuracy_lower"]
    assert summary["realised_accuracy_upper"] > summary["expected_accuracy_upper"]
    noise = result.realised_draws - result.accuracy_draws
    chosen = decisions.loc[routed, "prob"].to_numpy()
    # per draw the noise is N(0, Σp(1-p)/n²); its spread is close to the one from the posterior means
    assert noise.std() == pytest.approx(np.sqrt((chosen * (1 - chosen)).sum()) / routed.sum(), rel=0.3)
    assert summary["abstain_rate"] == pytest.approx(1 - routed.mean())
    assert result.share_by_llm()["(abstain)"] == (~routed).sum()


def test_pair_draws_are_the_draws_predict_interval_summarises(fitted):
    model, _ = fitted
    llm, item = model.llms_[[1, 2, 3, 1]], model.items_[[4, 4, 9, 50]]
    draws = routing.pair_probability_draws(model, llm, item, n_draws=N_DRAWS, seed=8, batch_pairs=3)
    assert draws.shape == (N_DRAWS, 4)
    expected = model.predict_interval(llm, item, n_draws=N_DRAWS, seed=8)
    np.testing.assert_allclose(draws.mean(axis=0), expected["prob"], atol=1e-6)
    np.testing.assert_allclose(np.quantile(draws, 0.95, axis=0), expected["upper"], atol=1e-5)


def test_route_handles_folded_in_questions_and_refuses_unknown_ones(saved, candidates):
    model = load_model(saved).estimator
    answers = pd.DataFrame({"llm": model.llms_[:30], "item": "new/question", "correct": [1, 0] * 15})
    model.fold_in("item", ["new/question"], answers=answers)
    result = routing.route(model, ["new/question", model.items_[0]], candidates, Greedy(), seed=5)
    row = result.decisions.iloc[0]
    expected = model.predict_interval([row["llm"]], ["new/question"], n_draws=N_DRAWS, seed=5)
    assert row["prob"] == pytest.approx(expected["prob"][0], abs=1e-5)
    with pytest.raises(UnknownEntityError, match="never/seen"):
        routing.route(model, ["never/seen"], candidates, Greedy())
    # entities held without data by the cold/joint similarity modes are refused (a moment correction applies)
    model.fitted_ = dataclasses.replace(model.fitted_, n_warm_items=model.n_fitted_items_ - 5)
    with pytest.raises(ConfigError, match="held in the fit without data"):
        routing.route(model, model.items_[-6:-4], candidates, Greedy())


def test_route_refuses_bad_arguments(fitted, candidates):
    model, _ = fitted
    with pytest.raises(ConfigError, match="unique"):
        routing.route(model, [model.items_[0], model.items_[0]], candidates, Greedy())
    with pytest.raises(ConfigError, match="fallback LLM 'absent'"):
        routing.route(model, model.items_[:3], candidates, Threshold(0.5, fallback="absent"))
    with pytest.raises(ConfigError, match="n_draws"):
        routing.route(model, model.items_[:3], candidates, Greedy(), n_draws=1)
    with pytest.raises(ConfigError, match="policy must be a Policy"):
        routing.route(model, model.items_[:3], candidates, "greedy")


# --------------------------------------------------------------------------------------------------
# evaluation and baselines
# --------------------------------------------------------------------------------------------------

TINY_TRUTH = pd.DataFrame({
    "item": ["q1", "q1", "q2", "q2", "q3", "q3"],
    "llm": ["a", "b", "a", "b", "a", "b"],
    "correct": [1, 1, 0, 1, 0, 0],
})
TINY_CANDIDATES = Candidates(["b", "a"], np.array([3.0, 1.0]))  # a is the cheap one


def test_evaluate_routing_by_hand():
    decisions = pd.DataFrame({"item": ["q1", "q2", "q3"], "llm": ["a", "a", None], "cost": [1.0, 1.0, 0.0]})
    metrics = routing.evaluate_routing(decisions, TINY_TRUTH)
    assert metrics["accuracy"] == pytest.approx(1 / 2)       # q1 right, q2 wrong; q3 abstained
    assert metrics["accuracy_all"] == pytest.approx(1 / 3)
    assert metrics["abstain_rate"] == pytest.approx(1 / 3)
    assert metrics["mean_cost"] == pytest.approx(2 / 3)
    assert metrics["total_cost"] == pytest.approx(2.0)
    unknown = pd.DataFrame({"item": ["q1", "q9"], "llm": ["b", "a"], "cost": [3.0, 1.0]})
    with pytest.raises(ConfigError, match=r"no answer for 1 routed .*'q9', 'a'"):
        routing.evaluate_routing(unknown, TINY_TRUTH)
    skipped = routing.evaluate_routing(unknown, TINY_TRUTH, missing="skip")
    assert (skipped["n_unscored"], skipped["n_questions"], skipped["accuracy"]) == (1, 1, 1.0)
    with pytest.raises(ConfigError, match="appears twice"):
        routing.evaluate_routing(decisions, pd.concat([TINY_TRUTH, TINY_TRUTH.iloc[:1]]))
    with pytest.raises(ConfigError, match="0/1"):
        routing.evaluate_routing(decisions, TINY_TRUTH.assign(correct=[1, 2, 0, 1, 0, 0]))


def test_oracle_takes_the_cheapest_correct_candidate():
    oracle = routing.oracle_routing(["q1", "q2", "q3"], TINY_CANDIDATES, TINY_TRUTH)
    assert oracle["llm"].tolist() == ["a", "b", "a"]   # q1 both right -> cheap a; q3 nobody -> cheapest
    metrics = routing.evaluate_routing(oracle, TINY_TRUTH)
    assert metrics["accuracy"] == pytest.approx(2 / 3) and metrics["mean_cost"] == pytest.approx(5 / 3)
    with pytest.raises(ConfigError, match="q7"):
        routing.oracle_routing(["q1", "q7"], TINY_CANDIDATES, TINY_TRUTH)


def test_best_single_llm_and_random_baselines():
    train = pd.DataFrame({"llm": ["a", "a", "a", "b", "b"], "item": ["t1", "t2", "t3", "t1", "t2"],
                          "correct": [1, 0, 0, 1, 1]})
    assert routing.best_single_llm_from_training(train, TINY_CANDIDATES) == "b"
    single = routing.single_llm_routing(["q1", "q2"], TINY_CANDIDATES, "b")
    assert single["llm"].tolist() == ["b", "b"] and single["cost"].tolist() == [3.0, 3.0]
    with pytest.raises(ConfigError, match="no training answers"):
        routing.best_single_llm_from_training(train[train["llm"] == "a"], TINY_CANDIDATES)
    first = routing.random_routing([f"q{i}" for i in range(200)], TINY_CANDIDATES, seed=1)
    assert first.equals(routing.random_routing([f"q{i}" for i in range(200)], TINY_CANDIDATES, seed=1))
    assert 0.35 < (first["llm"] == "a").mean() < 0.65


def test_best_llm_per_benchmark_by_hand():
    # "a" is best on benchmark x, "b" on y; z has no training answers and falls back
    train = pd.DataFrame({"llm": ["a", "a", "b", "b", "a", "b"], "item": ["x1", "x2", "x1", "x2", "y1", "y1"],
                          "correct": [1, 1, 0, 1, 0, 1]})
    groups = pd.Series(["x", "x", "y", "x", "y", "z"], index=["x1", "x2", "y1", "q1", "q2", "q3"])
    choice = routing.best_llm_per_group_from_training(train, TINY_CANDIDATES, groups)
    assert choice == {"x": "a", "y": "b"}
    routed = routing.group_llm_routing(["q1", "q2", "q3"], TINY_CANDIDATES, groups, choice, fallback="a")
    assert routed["llm"].tolist() == ["a", "b", "a"]
    assert routed["cost"].tolist() == [1.0, 3.0, 1.0]
    # a tie goes to the cheaper candidate
    tied = train.assign(correct=1)
    assert routing.best_llm_per_group_from_training(tied, TINY_CANDIDATES, groups)["y"] == "a"
    with pytest.raises(ConfigError, match="have no group, e.g. \\['q9'\\]"):
        routing.group_llm_routing(["q9"], TINY_CANDIDATES, groups, choice, fallback="a")
    with pytest.raises(ConfigError, match="Series"):
        routing.best_llm_per_group_from_training(train, TINY_CANDIDATES, {"x1": "x"})


def test_knn_routes_by_the_answers_of_similar_training_questions():
    # training questions in two clusters: "a" solves the x-axis ones, "b" the y-axis ones
    train_items = [f"x{i}" for i in range(5)] + [f"y{i}" for i in range(5)]
    train = pd.DataFrame({
        "item": np.repeat(train_items, 2), "llm": ["a", "b"] * 10,
        "correct": [1, 0] * 5 + [0, 1] * 5,
    })
    angles = np.concatenate([np.linspace(-0.2, 0.2, 5), np.pi / 2 + np.linspace(-0.2, 0.2, 5), [0.1, 1.4]])
    vectors = pd.DataFrame({"u": np.cos(angles), "v": np.sin(angles)}, index=train_items + ["new-x", "new-y"])
    knn = routing.knn_routing(["new-x", "new-y"], TINY_CANDIDATES, train, vectors, k=3)
    assert knn["llm"].tolist() == ["a", "b"]
    # k covering every training question: both are right half the time; the tie goes to the cheaper "a"
    assert routing.knn_routing(["new-x", "new-y"], TINY_CANDIDATES, train, vectors, k=10)["llm"].tolist() == ["a", "a"]
    with pytest.raises(ConfigError, match="no row for 1 questions to route"):
        routing.knn_routing(["new-z"], TINY_CANDIDATES, train, vectors)


def test_the_oracle_beats_every_router_and_the_model_picks_its_best_single_llm(fitted, candidates):
    model, truth = fitted
    items = model.items_
    results = routing.route_many(model, items, candidates, [Greedy(), RiskAverse(0.9), Thompson(), CostAware(0.02)])
    routers = dict(results)
    routers["random"] = routing.random_routing(items, candidates, seed=0)
    best = routing.best_single_llm_from_training(truth, candidates)
    routers["single"] = routing.single_llm_routing(items, candidates, best)
    vectors = pd.DataFrame(model.params_["item_factors"], index=model.items_)
    routers["knn"] = routing.knn_routing(items, candidates, truth, vectors, k=5, metric="dot")
    table = routing.routing_table(routers, truth)
    oracle = routing.evaluate_routing(routing.oracle_routing(items, candidates, truth), truth)
    assert (table["accuracy"] <= oracle["accuracy"]).all()
    assert oracle["accuracy"] > table["accuracy"].max() + 0.05
    assert table.loc["greedy", "accuracy"] > table.loc["random", "accuracy"]
    mean = routing.expected_success(model, items, candidates)
    assert routing.best_single_llm_from_model(model, items, candidates) == mean.mean(axis=0).idxmax()


# --------------------------------------------------------------------------------------------------
# curves and budgets
# --------------------------------------------------------------------------------------------------


def test_accuracy_cost_curve_trades_accuracy_for_cost(fitted, candidates):
    model, truth = fitted
    curve = routing.accuracy_cost_curve(model, model.items_, candidates, truth=truth)
    assert list(curve["lam"]) == sorted(curve["lam"]) and curve["lam"].iloc[0] == 0
    assert (np.diff(curve["expected_mean_cost"]) <= 1e-12).all()
    assert (np.diff(curve["expected_accuracy"]) <= 1e-12).all()
    assert curve["expected_mean_cost"].iloc[-1] == pytest.approx(candidates.costs.min())
    greedy = routing.route(model, model.items_, candidates, Greedy())
    assert curve["accuracy"].iloc[0] == pytest.approx(routing.evaluate_routing(greedy, truth)["accuracy"])
    thresholds = routing.accuracy_cost_curve(
        model, model.items_, candidates, [Threshold(t, 0.8) for t in (0.2, 0.5, 0.8)])
    assert (np.diff(thresholds["abstain_rate"]) > 0).all()


def test_selective_curve_by_hand():
    decisions = pd.DataFrame({"item": ["q1", "q2", "q3"], "llm": ["a", "b", "a"],
                              "prob": [0.9, 0.8, 0.3], "cost": [1.0, 3.0, 1.0]})
    curve = routing.selective_curve(decisions, TINY_TRUTH, coverages=[1 / 3, 2 / 3, 1.0])
    assert curve["n_routed"].tolist() == [1, 2, 3]
    np.testing.assert_allclose(curve["accuracy"], [1.0, 1.0, 2 / 3])
    np.testing.assert_allclose(curve["expected_accuracy"], [0.9, 0.85, 2.0 / 3])
    np.testing.assert_allclose(curve["coverage"], [1 / 3, 2 / 3, 1.0])


def test_the_budget_lam_is_the_smallest_that_fits(fitted, candidates):
    model, _ = fitted
    mean = routing.expected_success(model, model.items_, candidates).to_numpy()
    greedy_cost = routing.route(model, model.items_, candidates, Greedy()).summary()["total_cost"]
    budget = 120.0  # between the cheapest routing (80 questions x 1) and greedy's cost
    assert candidates.costs.min() * len(model.items_) < budget < greedy_cost
    lam = routing.lam_for_budget(mean, candidates.costs, budget)
    assert lam > 0
    spend = lambda value: routing.route(model, model.items_, candidates, CostAware(value)).summary()["total_cost"]
    assert spend(lam) <= budget < spend(lam * 0.98)
    assert routing.cost_aware_for_budget(model, model.items_, candidates, budget).lam == pytest.approx(lam)
    assert routing.lam_for_budget(mean, candidates.costs, 1e9) == 0.0
    with pytest.raises(ConfigError, match="below the cheapest possible routing"):
        routing.lam_for_budget(mean, candidates.costs, 10.0)


# --------------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------------


def test_cli_route_writes_the_decisions_and_prints_the_cost(saved, candidates, tmp_path):
    model = load_model(saved).estimator
    items_file, llms_file, out = tmp_path / "items.csv", tmp_path / "llms.parquet", tmp_path / "routes.csv"
    pd.DataFrame({"item": model.items_[:15]}).to_csv(items_file, index=False)
    candidates.to_frame().to_parquet(llms_file)
    result = CliRunner().invoke(main, ["route", "--model", str(saved), "--items", str(items_file), "--llms",
                                       str(llms_file), "--policy", "threshold", "--threshold", "0.6",
                                       "--fallback", candidates.llms[-1], "--out", str(out), "--show", "5"])
    assert result.exit_code == 0, result.output
    written = pd.read_csv(out)
    assert len(written) == 15 and written["llm"].notna().all()  # the fallback takes what nobody clears
    assert set(written["llm"]) <= set(candidates.llms)
    assert f"expected total cost {written['cost'].sum():g}" in result.output
    assert "10 more rows" in result.output

    budget = CliRunner().invoke(main, ["route", "--model", str(saved), "--items", str(items_file), "--llms",
                                       str(llms_file), "--policy", "cost-aware", "--budget", "40"])
    assert budget.exit_code == 0, budget.output
    total = float(budget.output.split("expected total cost ")[1].split()[0])
    assert total <= 40


def test_cli_route_errors_are_one_line_naming_the_problem(saved, tmp_path):
    model = load_model(saved).estimator
    items_file, llms_file = tmp_path / "items.csv", tmp_path / "llms.csv"
    pd.DataFrame({"item": model.items_[:3]}).to_csv(items_file, index=False)
    pd.DataFrame({"llm": [model.llms_[0], "ghost/llm"], "cost": [1, 2]}).to_csv(llms_file, index=False)
    base = ["route", "--model", str(saved), "--items", str(items_file), "--llms", str(llms_file)]
    runner = CliRunner()
    unknown_llm = runner.invoke(main, base)
    assert unknown_llm.exit_code == 1 and "ghost/llm" in unknown_llm.output
    assert len(unknown_llm.output.strip().splitlines()) == 1

    texts = tmp_path / "new.csv"
    pd.DataFrame({"item": ["brand/new"], "text": ["What is 2 + 2?"]}).to_csv(texts, index=False)
    pd.DataFrame({"llm": [model.llms_[0]], "cost": [1]}).to_csv(llms_file, index=False)
    new_text = runner.invoke(main, [*base[:4], str(texts), *base[5:]])
    # The model was saved without its data folder: folding the new question in needs the fitted questions' texts.
    assert new_text.exit_code == 1 and "--data DIR" in new_text.output, new_text.output
    no_text = tmp_path / "no_text.csv"
    pd.DataFrame({"item": ["brand/new"]}).to_csv(no_text, index=False)
    unknown_item = runner.invoke(main, [*base[:4], str(no_text), *base[5:]])
    assert unknown_item.exit_code == 1 and "brand/new" in unknown_item.output and "text column" in unknown_item.output

    for extra, message in ((["--out", str(tmp_path / "x.txt")], "must end in .csv or .parquet"),
                           (["--budget", "3"], "use it with --policy cost-aware"),
                           (["--policy", "risk-averse", "--lam", "0.1"], "--lam applies to")):
        failed = runner.invoke(main, [*base, *extra])
        assert failed.exit_code == 1 and message in failed.output, failed.output
    assert issubclass(UnknownEntityError, BayesSimRMFError)


@pytest.mark.slow
def test_cli_route_folds_in_new_questions_from_text_and_new_llms_from_metadata(tmp_path):
    from bayes_simrmf.data import load_dataset

    path = default_data_dir() / "openllm-v2-mmlupro-math"  # shared_dataset_path raises when absent
    if not path.is_dir():
        pytest.skip(f"{path} is absent (set BAYES_SIMRMF_DATA or place ../shared beside the repo)")
    model_dir = tmp_path / "model"
    fitted = CliRunner().invoke(main, [
        "fit", "--data", str(path), "--method", "mf", "--guide", "normal", "--T", "30", "--n-known-llms", "60",
        "--n-known-items", "120", "--dim", "3", "--max-steps", "300", "--no-baseline", "--quiet",
        "--out", str(model_dir)])
    assert fitted.exit_code == 0, fitted.output
    model = load_model(model_dir).estimator
    dataset = load_dataset(path, log=None)
    texts = dataset.items.set_index("item")["text"]
    # New questions: copies of two fitted questions' texts under new ids, beside one fitted question.
    fitted_items = model.items_[:2]
    items_file = tmp_path / "items.csv"
    pd.DataFrame({"item": ["new/q1", "new/q2", model.items_[5]],
                  "text": [texts[fitted_items[0]], texts[fitted_items[1]], None]}).to_csv(items_file, index=False)
    # Candidates: two fitted LLMs and one the model never saw, whose metadata the data folder holds.
    unseen = np.setdiff1d(dataset.llm_ids(), model.llms_)[0]
    llms_file = tmp_path / "llms.csv"
    pd.DataFrame({"llm": [model.llms_[0], model.llms_[1], unseen], "cost": [1.0, 2.0, 3.0]}).to_csv(llms_file, index=False)
    out = tmp_path / "routes.csv"
    routed = CliRunner().invoke(main, ["route", "--model", str(model_dir), "--items", str(items_file), "--llms",
                                       str(llms_file), "--policy", "risk-averse", "--out", str(out)])
    assert routed.exit_code == 0, routed.output
    assert "folded in 2 new item(s) from their text" in routed.output
    assert "folded in 1 new llm(s) from their metadata" in routed.output
    decisions = pd.read_csv(out)
    assert decisions["item"].tolist() == ["new/q1", "new/q2", model.items_[5]]
    assert decisions["llm"].isin([model.llms_[0], model.llms_[1], unseen]).all()
    assert ((decisions["lower"] < decisions["prob"]) & (decisions["prob"] < decisions["upper"])).all()
    # A new question with a fitted question's text is uncertain, but less so than the population prior.
    interval = decisions.set_index("item")
    assert (interval.loc[["new/q1", "new/q2"], "upper"] - interval.loc[["new/q1", "new/q2"], "lower"]).min() > 0
