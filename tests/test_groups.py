"""New entities use what is known about them: group-aware population predictions, group-mean
fold-in priors, the counting baseline (GroupAccuracy), and group maps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayes_simrmf.predict import GroupAccuracy
from bayes_simrmf.errors import ConfigError
from bayes_simrmf.predict import SimRMF, gp_conditional, make_estimator
from bayes_simrmf.groups import NO_GROUP, GroupMap
from bayes_simrmf.saving import load_model, save_model
from bayes_simrmf.similarity import SideInformation


def two_benchmarks(seed: int = 0, n_llms: int = 40, n_items: int = 60):
    """Responses where benchmark "easy" is much easier than "hard"; every 10th item is held out."""
    rng = np.random.default_rng(seed)
    group = np.array(["easy"] * (n_items // 2) + ["hard"] * (n_items - n_items // 2))
    ability = rng.normal(0, 1, n_llms)
    difficulty = np.where(group == "easy", -1.5, 1.5) + rng.normal(0, 0.3, n_items)
    prob = 1 / (1 + np.exp(-(ability[:, None] - difficulty[None, :])))
    correct = (rng.random(prob.shape) < prob).astype(int)
    llms = np.array([f"llm{i}" for i in range(n_llms)])
    items = np.array([f"item{k}" for k in range(n_items)])
    llm_code, item_code = (codes.ravel() for codes in np.meshgrid(np.arange(n_llms), np.arange(n_items), indexing="ij"))
    train = item_code % 10 != 0
    return {
        "groups": dict(zip(items, group)), "group": group, "prob": prob, "llms": llms, "items": items,
        "llm": llms[llm_code], "item": items[item_code], "correct": correct.ravel(), "train": train,
        "item_code": item_code,
    }


@pytest.fixture(scope="module")
def data():
    return two_benchmarks()


@pytest.fixture(scope="module")
def mf_with_groups(data):
    train = data["train"]
    return SimRMF(dim=2, max_steps=400, progress=False).fit(
        data["llm"][train], data["item"][train], data["correct"][train], item_groups=data["groups"])


def mean_by_group(data, prediction, mask):
    return pd.Series(prediction).groupby(data["group"][data["item_code"][mask]]).mean()


def test_new_item_is_predicted_from_its_group_not_the_overall_average(data, mf_with_groups):
    new = ~data["train"]
    grouped = mean_by_group(data, mf_with_groups.predict(data["llm"][new], data["item"][new], unknown="population"), new)
    truth = mean_by_group(data, data["prob"].ravel()[new], new)
    assert abs(grouped["easy"] - truth["easy"]) < 0.06 and abs(grouped["hard"] - truth["hard"]) < 0.06
    assert grouped["easy"] - grouped["hard"] > 0.4


def test_without_groups_new_items_get_one_average(data):
    train, new = data["train"], ~data["train"]
    plain = SimRMF(dim=2, max_steps=400, progress=False).fit(data["llm"][train], data["item"][train], data["correct"][train])
    grouped = mean_by_group(data, plain.predict(data["llm"][new], data["item"][new], unknown="population"), new)
    assert abs(grouped["easy"] - grouped["hard"]) < 1e-9


def test_groups_given_at_prediction_time(data):
    train, new = data["train"], ~data["train"]
    trained_items = np.unique(data["item"][train])
    known_groups = {item: data["groups"][item] for item in trained_items}
    model = SimRMF(dim=2, max_steps=400, progress=False).fit(
        data["llm"][train], data["item"][train], data["correct"][train], item_groups=known_groups)
    new_groups = {item: data["groups"][item] for item in np.unique(data["item"][new])}
    without = model.predict(data["llm"][new], data["item"][new], unknown="population")
    with_groups = model.predict(data["llm"][new], data["item"][new], unknown="population", item_groups=new_groups)
    assert np.ptp(mean_by_group(data, without, new).to_numpy()) < 1e-9
    assert np.ptp(mean_by_group(data, with_groups, new).to_numpy()) > 0.4


def test_unknown_group_falls_back_to_the_whole_population(data, mf_with_groups):
    llm = data["llms"][:3]
    unlabelled = mf_with_groups.predict(llm, ["brand-new"] * 3, unknown="population")
    plain = mf_with_groups.predict(llm, ["brand-new"] * 3, unknown="population", item_groups={"brand-new": "other"})
    np.testing.assert_allclose(unlabelled, plain)
    easy = mf_with_groups.predict(llm, ["brand-new"] * 3, unknown="population", item_groups={"brand-new": "easy"})
    assert (easy > unlabelled).all()


def test_new_llm_of_a_named_group(data):
    train = data["train"]
    strong = {llm: ("strong" if i % 2 else "weak") for i, llm in enumerate(data["llms"])}
    model = SimRMF(dim=2, max_steps=400, progress=False).fit(
        data["llm"][train], data["item"][train], data["correct"][train])
    abilities = pd.Series(model.predict(data["llm"][train], data["item"][train])).groupby(data["llm"][train]).mean()
    top = set(abilities.sort_values().index[-20:])
    groups = {llm: ("top" if llm in top else "rest") for llm in data["llms"]}
    items = data["items"][:5]
    top_new = model.predict(["new-llm"] * 5, items, unknown="population", llm_groups={**groups, "new-llm": "top"})
    rest_new = model.predict(["new-llm"] * 5, items, unknown="population", llm_groups={**groups, "new-llm": "rest"})
    assert (top_new > rest_new).all()
    assert strong  # the map above is unused on purpose: groups that do not match abilities must not be needed


def test_interval_draws_pick_population_members_of_the_group(data):
    train, new = data["train"], ~data["train"]
    model = SimRMF(dim=2, max_steps=300, guide="normal", progress=False).fit(
        data["llm"][train], data["item"][train], data["correct"][train], item_groups=data["groups"])
    frame = model.predict_interval(data["llm"][new], data["item"][new], unknown="population", n_draws=50)
    by_group = frame["prob"].groupby(data["group"][data["item_code"][new]]).mean()
    assert by_group["easy"] - by_group["hard"] > 0.3


def test_group_labels_survive_save_and_load(tmp_path, data, mf_with_groups):
    new = ~data["train"]
    save_model(tmp_path / "model", mf_with_groups, data_fingerprint=None)
    loaded = load_model(tmp_path / "model").estimator
    np.testing.assert_allclose(
        loaded.predict(data["llm"][new], data["item"][new], unknown="population"),
        mf_with_groups.predict(data["llm"][new], data["item"][new], unknown="population"))


def test_gp_conditional_starts_new_rows_at_their_group_mean():
    rng = np.random.default_rng(1)
    latent = np.concatenate([rng.normal(-2, 0.1, (20, 3)), rng.normal(2, 0.1, (20, 3))])
    groups = np.repeat([0, 1], 20)
    zero_factor = np.zeros((40, 2))
    mean, _, _ = gp_conditional(latent, zero_factor, np.zeros((2, 2)), 1.0, groups, np.array([1, -1]))
    np.testing.assert_allclose(mean[0], latent[20:].mean(axis=0))
    np.testing.assert_allclose(mean[1], latent.mean(axis=0))


def test_kernel_fold_in_recovers_the_group_when_text_reveals_it(data):
    """Similarity that only says "same benchmark" must give at least what the label gives."""
    train, new = data["train"], ~data["train"]
    onehot = (data["group"][:, None] == np.array(["easy", "hard"])[None, :]).astype(np.float32)
    side = SideInformation(data["llms"], None, data["items"], onehot - onehot.mean(axis=0))
    kernel = SimRMF(method="simrmf", dim=2, max_steps=400, progress=False, fold_in_ridge_items=0.1).fit(
        data["llm"][train], data["item"][train], data["correct"][train], items=data["items"], side=side)
    grouped = mean_by_group(data, kernel.predict(data["llm"][new], data["item"][new]), new)
    truth = mean_by_group(data, data["prob"].ravel()[new], new)
    assert abs(grouped["easy"] - truth["easy"]) < 0.08 and abs(grouped["hard"] - truth["hard"]) < 0.08


def test_counting_baseline_formula():
    model = GroupAccuracy(shrinkage=5).fit(["a", "a", "b", "b"], ["x", "y", "x", "y"], [1, 0, 1, 1],
                                           item_groups={"x": "g1", "y": "g2"})
    mean = 0.75
    g1 = (2 + 5 * mean) / 7
    expected = [g1, (1 + 5 * mean) / 7, (1 + 5 * g1) / 6]
    np.testing.assert_allclose(model.predict(["new", "a", "a"], ["x", "unlabelled", "x"]), expected)


def test_counting_baseline_uses_groups_of_new_items(data):
    train, new = data["train"], ~data["train"]
    model = make_estimator("counting", shrinkage=10).fit(
        data["llm"][train], data["item"][train], data["correct"][train], item_groups=data["groups"])
    grouped = mean_by_group(data, model.predict(data["llm"][new], data["item"][new]), new)
    assert grouped["easy"] - grouped["hard"] > 0.4


def test_counting_baseline_saves_and_loads(tmp_path, data):
    train = data["train"]
    model = GroupAccuracy(shrinkage=3).fit(data["llm"][train], data["item"][train], data["correct"][train],
                                           item_groups=data["groups"])
    save_model(tmp_path / "counting", model, data_fingerprint=None)
    loaded = load_model(tmp_path / "counting").estimator
    np.testing.assert_allclose(loaded.predict(data["llm"], data["item"]), model.predict(data["llm"], data["item"]))


@pytest.mark.parametrize("bad", [-1, float("nan"), "ten", True])
def test_counting_baseline_refuses_bad_shrinkage(bad):
    with pytest.raises(ConfigError, match="shrinkage"):
        GroupAccuracy(shrinkage=bad).fit(["a"], ["x"], [1])


def test_group_map_refuses_conflicting_labels_and_fills_missing():
    with pytest.raises(ConfigError, match="more than one group"):
        GroupMap.from_mapping(pd.Series(["g1", "g2"], index=["x", "x"]), "item_groups")
    groups = GroupMap.from_mapping({"x": "g1", "y": None}, "item_groups")
    assert list(groups.labels_of(["x", "y", "z"])) == ["g1", NO_GROUP, NO_GROUP]
    with pytest.raises(ConfigError, match="item_groups must be a dict"):
        GroupMap.from_mapping(["g1"], "item_groups")


def test_bootstrap_population_widens_means_over_many_unseen_entities(data):
    train = data["train"]
    widths = {}
    for draws in ("fixed", "bootstrap"):
        model = SimRMF(dim=2, max_steps=300, guide="normal", progress=False, population_draws=draws).fit(
            data["llm"][train], data["item"][train], data["correct"][train])
        unseen = [f"unseen-{k}" for k in range(300)]
        frame = model.predict_group_interval(["llm0"] * 300, unseen, by="llm", n_draws=80, observed=False,
                                             unknown="population")
        widths[draws] = float(frame["upper"].iloc[0] - frame["lower"].iloc[0])
    assert widths["bootstrap"] > 1.2 * widths["fixed"], widths
    with pytest.raises(ConfigError, match="population_draws"):
        SimRMF(population_draws="resample").fit(["a"], ["x"], [1])
