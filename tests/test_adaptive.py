"""Adaptive testing (bayes_simrmf.predict.adaptive): the greedy variance-reduction choice of questions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayes_simrmf.errors import ConfigError, UnknownEntityError
from bayes_simrmf.predict import SimRMF
from bayes_simrmf.predict.adaptive import accuracy_gradients, greedy_selection, llm_posterior, next_questions
from bayes_simrmf.synthetic import make_synthetic_dataset

NEW = "synthetic/llm-00003"


@pytest.fixture(scope="module")
def folded():
    dataset, _ = make_synthetic_dataset(80, 120, dim=3, seed_value=2)
    responses = dataset.responses
    groups = {item: f"bench-{index % 3}" for index, item in enumerate(np.unique(responses.item))}
    train = responses[responses.llm != NEW]
    model = SimRMF(dim=3, max_steps=1500, progress=False, seed=0).fit(
        train.llm, train.item, train.correct, item_groups=groups)
    answers = responses[responses.llm == NEW].head(5).assign(llm="new")
    model.fold_in("llm", ["new"], answers=answers)
    return model, groups, answers, responses[responses.llm == NEW]


def test_greedy_gain_is_the_exact_drop_of_the_summed_variance():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 4))
    cov = a @ a.T + np.eye(4)
    x = rng.normal(size=(30, 4))
    gradients = rng.normal(size=(3, 4))
    weights = rng.uniform(0.05, 0.25, size=30)
    picked, gains, after = greedy_selection(cov, gradients, x, weights, 4, np.ones(30, bool))
    precision = np.linalg.inv(cov)
    before = np.einsum("bp,pq,bq->", gradients, cov, gradients)
    for row, gain in zip(picked, gains):
        precision = precision + weights[row] * np.outer(x[row], x[row])
        now = np.einsum("bp,pq,bq->", gradients, np.linalg.inv(precision), gradients)
        assert gain == pytest.approx(before - now, rel=1e-9)
        before = now
    np.testing.assert_allclose(after, np.linalg.inv(precision), atol=1e-10)
    # Each pick is the best single question given the earlier ones.
    first = [greedy_selection(cov, gradients, x, weights, 1, np.arange(30) == row)[1][0] for row in range(30)]
    assert picked[0] == int(np.argmax(first)) and len(set(picked)) == 4


def test_next_questions_beat_random_questions_on_the_remaining_variance(folded):
    model, groups, answers, _ = folded
    chosen = next_questions(model, "new", 10, answered=answers["item"])
    assert len(chosen) == 10 and chosen["item"].is_unique
    assert not set(chosen["item"]) & set(answers["item"])
    assert set(chosen["benchmark"]) <= {"bench-0", "bench-1", "bench-2"}
    assert np.all(np.diff(chosen["sd_after"]) < 0) and np.all(chosen["prob"].between(0, 1))
    # The same criterion for random sets of 10 questions: the greedy choice leaves less variance.
    state = model.fitted_
    mean, cov = llm_posterior(state, "new")
    items = state.items[: state.n_fitted_items]
    codes, names = pd.factorize(pd.Series([groups[item] for item in items]), sort=True)
    x, curvature, gradients = accuracy_gradients(state, mean, True, np.arange(len(items)), codes, len(names))
    rng = np.random.default_rng(1)
    left = []
    for _ in range(20):
        rows = rng.choice(len(items), 10, replace=False)
        precision = np.linalg.inv(cov) + (x[rows] * curvature[rows, None]).T @ x[rows]
        left.append(np.einsum("bp,pq,bq->", gradients, np.linalg.inv(precision), gradients))
    assert chosen["sd_after"].iloc[-1] ** 2 < np.mean(left)


def test_folding_in_the_chosen_answers_shrinks_the_benchmark_intervals(folded):
    model, groups, answers, truth = folded
    chosen = next_questions(model, "new", 15, answered=answers["item"])
    more = truth[truth.item.isin(chosen["item"])].assign(llm="new-2")
    model.fold_in("llm", ["new-2"], answers=pd.concat([answers.assign(llm="new-2"), more]))
    items = model.items_[: model.n_fitted_items_]
    labels = [groups[item] for item in items]
    before = model.predict_group_interval(["new"] * len(items), items, by=labels, observed=False, n_draws=400)
    after = model.predict_group_interval(["new-2"] * len(items), items, by=labels, observed=False, n_draws=400)
    assert np.all((after["upper"] - after["lower"]) < (before["upper"] - before["lower"]))


def test_next_questions_refuses_what_it_cannot_answer(folded):
    model, _, _, _ = folded
    with pytest.raises(UnknownEntityError, match="not in the model"):
        next_questions(model, "nobody", 3)
    with pytest.raises(ConfigError, match="fitted with the model"):
        next_questions(model, model.llms_[0], 3)
    with pytest.raises(ConfigError, match="k must be"):
        next_questions(model, "new", 0)
