"""Inductive fold-in of new LLMs and items (SimRMF.fold_in) and the stored Gaussian posterior."""

from __future__ import annotations

import jax
import numpy as np
import pandas as pd
import pytest

from bayes_simrmf.errors import ConfigError, UnknownEntityError
from bayes_simrmf.predict import SimRMF, laplace_logistic, kernel_fold_in
from bayes_simrmf.inference.posterior import GaussianPosterior
from bayes_simrmf.saving import load_model, save_model
from bayes_simrmf.similarity import SideInformation
from bayes_simrmf.synthetic import make_synthetic_dataset

DIM = 3


@pytest.fixture(scope="module")
def data():
    dataset, params = make_synthetic_dataset(90, 160, dim=DIM, seed_value=4)
    return dataset.responses.copy(), params


def _fit(responses, guide="delta", **options):
    options = {"dim": DIM, "lambda_reg": 1.0, "max_steps": 1500, "progress": False, "seed": 0, **options}
    return SimRMF(guide=guide, **options).fit(responses.llm, responses.item, responses.correct)


def test_laplace_matches_the_closed_form_gaussian_limit():
    # With no answers the posterior is the prior; with answers the mode solves the penalised score equation.
    rng = np.random.default_rng(0)
    mean, cov = rng.normal(size=3), np.diag([0.5, 1.0, 2.0])
    z, post, converged = laplace_logistic(mean, cov, np.zeros((0, 3)), np.zeros(0), np.zeros(0))
    np.testing.assert_allclose(z, mean)
    np.testing.assert_allclose(post, cov, atol=1e-12)
    assert converged
    design = rng.normal(size=(200, 3))
    y = (rng.random(200) < 1 / (1 + np.exp(-design @ np.array([1.0, -1.0, 0.5])))).astype(float)
    z, post, converged = laplace_logistic(mean, cov, design, np.zeros(200), y)
    prob = 1 / (1 + np.exp(-design @ z))
    gradient = design.T @ (y - prob) - np.linalg.solve(cov, z - mean)
    assert converged and np.max(np.abs(gradient)) < 1e-6
    assert np.all(np.linalg.eigvalsh(post) > 0) and np.trace(post) < np.trace(cov)


@pytest.mark.parametrize("kind, new", [("llm", "synthetic/llm-00007"), ("item", "synthetic/item-000011")])
def test_fold_in_agrees_with_a_refit_that_included_it(data, kind, new):
    responses, _ = data
    answers = responses[responses[kind] == new]
    without = _fit(responses[responses[kind] != new])
    with_it = _fit(responses)
    report = without.fold_in(kind, [new], answers=answers, prior="model")
    assert report.loc[new, "n_answers"] == len(answers) and report.loc[new, "converged"]
    partner = "item" if kind == "llm" else "llm"
    partners = np.unique(responses[partner])
    pairs = {kind: np.full(len(partners), new), partner: partners}
    folded = without.predict(pairs["llm"], pairs["item"])
    refit = with_it.predict(pairs["llm"], pairs["item"])
    # The refit also moves the other entities a little; the new entity's predictions must agree closely.
    assert np.corrcoef(folded, refit)[0, 1] > 0.97
    assert np.mean(np.abs(folded - refit)) < 0.04
    # And much better than knowing nothing about it.
    unknown = {kind: np.full(len(partners), "nobody"), partner: partners}
    population = without.predict(unknown["llm"], unknown["item"], unknown="population")
    assert np.mean(np.abs(population - refit)) > 2 * np.mean(np.abs(folded - refit))


def test_zero_shot_population_fold_in_matches_the_population_prediction(data):
    responses, _ = data
    model = _fit(responses[~responses.llm.isin(["synthetic/llm-00001", "synthetic/llm-00002"])])
    model.fold_in("llm", ["synthetic/llm-00001"])
    items = np.unique(responses.item)
    folded = model.predict(np.full(len(items), "synthetic/llm-00001"), items)
    population = model.predict(np.full(len(items), "synthetic/llm-00002"), items, unknown="population")
    # Gaussian population prior vs the empirical population: the same average up to its shape.
    assert np.mean(np.abs(folded - population)) < 0.03


def test_posterior_uncertainty_shrinks_with_more_answers(data):
    responses, params = data
    llms = [f"synthetic/llm-000{k}" for k in range(10, 16)]
    model = _fit(responses[~responses.llm.isin(llms)], guide="normal", max_steps=800, learning_rate=0.02)
    rng = np.random.default_rng(1)
    widths = {}
    for k, llm in zip((0, 5, 20, 80, 150), llms):
        answers = responses[responses.llm == llm]
        answers = answers.iloc[rng.permutation(len(answers))[:k]]
        report = model.fold_in("llm", [llm], answers=answers)
        widths[k] = report.loc[llm, "posterior_sd_logit"]
        assert report.loc[llm, "posterior_sd_logit"] <= report.loc[llm, "prior_sd_logit"] + 1e-9
    assert widths[0] > widths[20] > widths[150], widths
    # Intervals for a folded-in LLM: wider at k=0 than at k=150.
    items = np.unique(responses.item)
    interval = {k: model.predict_group_interval(np.full(len(items), llm), items, by="llm", n_draws=200, observed=False)
                for k, llm in ((0, llms[0]), (150, llms[4]))}
    width = {k: float((t.upper - t.lower).iloc[0]) for k, t in interval.items()}
    assert width[0] > 2 * width[150], width
    # The 150-shot interval covers the LLM's actual accuracy on all items.
    actual = responses[responses.llm == llms[4]].correct.mean()
    assert interval[150].lower.iloc[0] - 0.02 <= actual <= interval[150].upper.iloc[0] + 0.02


def test_similarity_prior_is_the_kernel_fold_in_mean(data):
    responses, _ = data
    model = _fit(responses[responses.item < "synthetic/item-000150"])
    n = model.n_warm_items_
    rng = np.random.default_rng(2)
    factor = rng.normal(size=(n + 3, 4))
    new_ids = np.array([f"new-{k}" for k in range(3)])
    side = SideInformation(None, None, np.concatenate([model.items_, new_ids]), factor)
    model.fold_in("item", new_ids, side=side, ridge=0.5)
    latent = np.concatenate([model.params_["item_factors"][:n], model.params_["item_bias"][:n, None]], axis=1)
    expected = kernel_fold_in(latent.astype(np.float64), factor[:n], factor[n:], 0.5)
    got = np.concatenate([model.params_["item_factors"][n:], model.params_["item_bias"][n:, None]], axis=1)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    # An entity identical to a fitted one gets a smaller prior variance than one like none of them
    # (same kernel norm, orthogonal to every fitted row).
    identity = np.eye(n + 1)
    side = SideInformation(None, None, np.concatenate([model.items_[:n], ["near", "far"]]),
                           np.concatenate([identity[:n], identity[[0, n]]]))
    report = model.fold_in("item", ["near", "far"], side=side, ridge=0.5)
    assert report.loc["near", "prior_sd_logit"] < 0.95 * report.loc["far", "prior_sd_logit"]
    mean, cov = model.inductive_["item"]
    np.testing.assert_allclose(mean[-2], latent[0] + (latent[0] - latent.mean(0)) * (1 / 1.5 - 1), atol=1e-4)


def test_fold_in_refuses_bad_requests(data):
    responses, _ = data
    model = _fit(responses[responses.llm != "synthetic/llm-00003"], max_steps=200)
    with pytest.raises(ConfigError, match="already in the model"):
        model.fold_in("llm", ["synthetic/llm-00004"])
    with pytest.raises(ConfigError, match="kind"):
        model.fold_in("model", ["x"])
    with pytest.raises(ConfigError, match="missing"):
        model.fold_in("llm", ["x"], answers=pd.DataFrame({"llm": ["x"], "item": ["synthetic/item-000001"]}))
    with pytest.raises(UnknownEntityError, match="not fitted"):
        model.fold_in("llm", ["x"], answers=pd.DataFrame({"llm": ["x"], "item": ["nope"], "correct": [1]}))
    with pytest.raises(ConfigError, match="not in ids"):
        model.fold_in("llm", ["x"], answers=pd.DataFrame({"llm": ["y"], "item": ["synthetic/item-000001"], "correct": [1]}))
    with pytest.raises(ConfigError, match="0/1"):
        model.fold_in("llm", ["x"], answers=pd.DataFrame({"llm": ["x"], "item": ["synthetic/item-000001"], "correct": [3]}))
    with pytest.raises(ConfigError, match="repeat"):
        model.fold_in("llm", ["x"], answers=pd.DataFrame(
            {"llm": ["x", "x"], "item": ["synthetic/item-000001"] * 2, "correct": [1, 0]}))
    # Nothing was added by the refused calls; unknown ids stay refused by predict.
    with pytest.raises(UnknownEntityError):
        model.predict(["x"], ["synthetic/item-000001"])


def test_lowrank_posterior_arrays_match_numpyro_draws(data):
    responses, _ = data
    model = _fit(responses, guide="lowrank", max_steps=300, learning_rate=0.02)
    result = model.svi_result_
    reference = result.guide.sample_posterior(jax.random.PRNGKey(0), result.guide_params, *result.model_args,
                                              sample_shape=(4000,), **result.model_kwargs)
    ours = model.posterior_.sample(4000, seed=0)
    assert model.posterior_.rank == 8
    for name in ("llm_factors", "item_bias", "intercept"):
        reference_values = np.asarray(reference[name]).reshape(4000, -1)
        our_values = ours[name].reshape(4000, -1)
        np.testing.assert_allclose(our_values.mean(0), reference_values.mean(0), atol=0.05)
        np.testing.assert_allclose(our_values.std(0), reference_values.std(0), rtol=0.15, atol=0.01)
    # Correlations across sites come from the shared low-rank part.
    pair = (ours["llm_bias"][:, 0], ours["item_bias"][:, 0])
    reference_pair = (np.asarray(reference["llm_bias"])[:, 0], np.asarray(reference["item_bias"])[:, 0])
    assert abs(np.corrcoef(*pair)[0, 1] - np.corrcoef(*reference_pair)[0, 1]) < 0.1


def test_saved_model_keeps_its_posterior_and_fold_ins(tmp_path, data):
    responses, _ = data
    model = _fit(responses[responses.llm != "synthetic/llm-00005"], guide="normal", max_steps=300)
    answers = responses[responses.llm == "synthetic/llm-00005"].iloc[:30]
    model.fold_in("llm", ["synthetic/llm-00005"], answers=answers)
    llm = np.array(["synthetic/llm-00005", "synthetic/llm-00006", "synthetic/llm-00005"])
    item = np.array(["synthetic/item-000001", "synthetic/item-000002", "synthetic/item-000100"])
    before = model.predict_interval(llm, item, n_draws=50, seed=3)
    folder = save_model(tmp_path / "m", model, data_fingerprint="x")
    loaded = load_model(folder, data_fingerprint="x").estimator
    assert isinstance(loaded.posterior_, GaussianPosterior) and loaded.posterior_.guide == "normal"
    after = loaded.predict_interval(llm, item, n_draws=50, seed=3)
    np.testing.assert_allclose(after.to_numpy(), before.to_numpy(), atol=1e-6)
    np.testing.assert_allclose(loaded.predict(llm, item), model.predict(llm, item), atol=1e-7)


def test_tempering_widens_the_k_shot_posterior_but_not_the_prior():
    rng = np.random.default_rng(5)
    mean, cov = np.zeros(3), np.eye(3)
    design = rng.normal(size=(300, 3))
    y = (rng.random(300) < 1 / (1 + np.exp(-design @ np.array([0.5, -0.5, 1.0])))).astype(float)
    mode, plain, _ = laplace_logistic(mean, cov, design, np.zeros(300), y)
    tempered_mode, tempered, _ = laplace_logistic(mean, cov, design, np.zeros(300), y, temperature=4.0)
    np.testing.assert_allclose(tempered_mode, mode)  # the estimate does not move
    # Likelihood-dominated: a quarter of the answers' curvature roughly doubles the posterior sd.
    ratio = np.sqrt(np.diag(tempered) / np.diag(plain))
    assert np.all((ratio > 1.7) & (ratio < 2.1)), ratio
    _, prior_only, _ = laplace_logistic(mean, cov, np.zeros((0, 3)), np.zeros(0), np.zeros(0), temperature=4.0)
    np.testing.assert_allclose(prior_only, cov)
    with pytest.raises(ConfigError, match="temperature"):
        _fit_tiny().fold_in("llm", ["x"], temperature=0.0)


def _fit_tiny():
    dataset, _ = make_synthetic_dataset(20, 30, dim=2, seed_value=0)
    responses = dataset.responses
    return SimRMF(dim=2, max_steps=50, progress=False).fit(responses.llm, responses.item, responses.correct)


def test_fold_in_spread_changes_only_pairs_with_an_entity_without_data(data):
    responses, _ = data
    new_item = "synthetic/item-000007"
    model = _fit(responses[responses.item != new_item], max_steps=600)
    model.fold_in("item", [new_item])
    llms = np.unique(responses.llm)
    known_item = np.full(len(llms), "synthetic/item-000001")
    gaussian = {"new": model.predict(llms, np.full(len(llms), new_item)), "known": model.predict(llms, known_item)}
    model.fold_in_spread = "empirical"
    empirical = {"new": model.predict(llms, np.full(len(llms), new_item)), "known": model.predict(llms, known_item)}
    np.testing.assert_array_equal(empirical["known"], gaussian["known"])
    assert np.all((empirical["new"] > 0) & (empirical["new"] < 1))
    # Synthetic logits are close to normal, so the two spreads agree closely but not exactly.
    difference = np.abs(empirical["new"] - gaussian["new"])
    assert difference.max() > 1e-6 and difference.mean() < 0.02, (difference.max(), difference.mean())
    assert model.get_config()["fold_in_spread"] == "empirical"
    with pytest.raises(ConfigError, match="fold_in_spread"):
        SimRMF(fold_in_spread="uniform").fit(["a"], ["x"], [1])


def test_folded_in_draws_do_not_depend_on_the_draw_block(data, monkeypatch):
    """Entities folded in with a Gaussian are drawn a block of draws at a time (memory); the block size must not
    change a single value, as the blocks take consecutive parts of one normal stream."""
    from bayes_simrmf.predict import gaussian_process

    model = _fit(data[0], guide="normal", max_steps=50)  # any fitted posterior will do
    model.fold_in("llm", ["new-a", "new-b"])
    model.fold_in("item", ["new-item-1", "new-item-2", "new-item-3"])
    monkeypatch.setattr(gaussian_process, "DRAW_BLOCK", 1)
    one = model.sample_posterior(7, seed=2)
    monkeypatch.setattr(gaussian_process, "DRAW_BLOCK", 1000)
    whole = model.sample_posterior(7, seed=2)
    assert sorted(one) == sorted(whole)
    for name in one:
        assert one[name].dtype == whole[name].dtype and np.array_equal(one[name], whole[name]), name
    assert one["llm_factors"].shape[1] == data[0].llm.nunique() + 2


def test_draws_cover_only_the_folded_in_entities_a_query_uses(data, monkeypatch):
    """A query draws the folded-in rows it uses, not every row the model holds; a new LLM's draws do not depend on
    how many questions were folded in beside it (each side has its own stream)."""
    from bayes_simrmf.predict import draws

    model = _fit(data[0], guide="normal", max_steps=50)
    model.fold_in("llm", ["new-a", "new-b"])
    items = np.unique(data[0].item)[:40]
    pairs = (np.full(len(items), "new-b"), items)
    before = model.predict_group_interval(*pairs, by="llm", n_draws=30, seed=3)
    drawn_rows = []
    sample = draws.sample_posterior
    monkeypatch.setattr(draws, "sample_posterior",
                        lambda state, *args: drawn_rows.append(len(state.items)) or sample(state, *args))
    model.fold_in("item", [f"new-item-{k}" for k in range(50)])
    after = model.predict_group_interval(*pairs, by="llm", n_draws=30, seed=3)
    pd.testing.assert_frame_equal(before, after)
    assert drawn_rows == [data[0].item.nunique()]  # the 50 folded-in questions are not drawn
    # A query that uses two of them draws those two, and gives what the whole state gives for them.
    with_new = (np.array(["new-b", "new-a"]), np.array(["new-item-3", "new-item-7"]))
    restricted = model.predict(*with_new, n_draws=20, seed=1)
    assert drawn_rows[-1] == data[0].item.nunique() + 2
    state = model._state()
    llm_codes, item_codes = (pd.Index(state.ids(side)).get_indexer(ids) for side, ids in
                             ((draws.LLM, with_new[0]), (draws.ITEM, with_new[1])))
    kept, llm_kept, item_kept = draws.used_rows_only(state, llm_codes, item_codes)
    assert list(kept.items[item_kept]) == ["new-item-3", "new-item-7"] and list(kept.llms[llm_kept]) == ["new-b", "new-a"]
    assert np.all((restricted > 0) & (restricted < 1))
