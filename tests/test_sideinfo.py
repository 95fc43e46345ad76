"""SimRMF side information, the profiled Gram potential, and fitting with similarity."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from bayes_simrmf.data.locations import default_data_dir

from bayes_simrmf.data import Dataset, from_frames, load_dataset
from bayes_simrmf.errors import ConfigError, DataError
from bayes_simrmf.predict import SimRMF
from bayes_simrmf.evaluate import evaluate_on_split, fit_on_split
from bayes_simrmf.similarity import SideInformation, build_side_information, centre_rows
from bayes_simrmf.similarity import gram_mismatch_dense, scaled_gram_mismatch
from bayes_simrmf.splits import Protocol
from bayes_simrmf.synthetic import make_synthetic_dataset


def test_scaled_gram_mismatch_is_the_minimum_over_the_scale():
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(30, 4)).astype(np.float32)
    factor = rng.normal(size=(30, 6)).astype(np.float32)
    sqrt_sim = factor @ factor.T
    profiled = float(scaled_gram_mismatch(jnp.asarray(latent), jnp.asarray(factor)))
    scales = np.linspace(0.0, 2.0, 2001)
    brute = min(float(gram_mismatch_dense(jnp.asarray(latent), jnp.asarray(s * sqrt_sim))) for s in scales)
    # The grid contains a scale within 1e-3 of the optimum, so the brute minimum is slightly above.
    assert profiled <= brute + 1e-3 * abs(brute)
    assert profiled == pytest.approx(brute, rel=1e-3)


def test_centre_rows_double_centres_the_square_root():
    rng = np.random.default_rng(1)
    factor = rng.normal(size=(12, 3))
    centred = centre_rows(factor)
    centring = np.eye(12) - np.ones((12, 12)) / 12
    np.testing.assert_allclose(centred @ centred.T, centring @ factor @ factor.T @ centring, atol=1e-5)


def test_side_information_rows_follow_ids_and_name_missing_ones():
    side = SideInformation(
        llms=np.array(["a", "b"]), llm_factor=np.array([[1.0], [2.0]]),
        items=np.array(["x"]), item_factor=np.array([[3.0, 4.0]]),
    )
    np.testing.assert_array_equal(side.rows_for("llm", np.array(["b", "a"])), [[2.0], [1.0]])
    with pytest.raises(DataError, match="no item row .*'y'"):
        side.rows_for("item", np.array(["x", "y"]))


def _similar_items_dataset(seed: int = 0):
    """Items in 4 groups of equal difficulty whose texts name the group; LLMs of 3 families."""
    rng = np.random.default_rng(seed)
    n_llms, n_items = 90, 160
    group = np.arange(n_items) % 4
    group_difficulty = np.array([-2.0, -0.5, 0.5, 2.0])
    ability = rng.normal(0, 1, n_llms)
    logits = ability[:, None] + group_difficulty[group][None, :]
    scores = (rng.random((n_llms, n_items)) < 1 / (1 + np.exp(-logits))).astype(int)
    llm_ids = [f"org/llm-{i:03d}" for i in range(n_llms)]
    item_ids = [f"item-{k:04d}" for k in range(n_items)]
    li, ki = np.meshgrid(np.arange(n_llms), np.arange(n_items), indexing="ij")
    responses = pd.DataFrame({"llm": np.array(llm_ids)[li.ravel()], "item": np.array(item_ids)[ki.ravel()],
                              "correct": scores.ravel()})
    items = pd.DataFrame({"item": item_ids, "text": [f"group {g}" for g in group]})
    llms = pd.DataFrame({"llm": llm_ids, "architecture": "LlamaForCausalLM", "params_billions": 7.0})
    return from_frames(responses, items, llms, name="groups", log=None), group


def test_simrmf_folds_in_new_item_difficulty_from_similarity():
    dataset, group = _similar_items_dataset()
    split = Protocol(n_known_llms=60, n_known_items=100, T=40, seed=0, n_test_pairs=50_000).split(dataset, log=None)
    # One-hot "embeddings" of each item's group: a perfect text similarity.
    embeddings = np.eye(4, dtype=np.float32)[[int(t.split()[-1]) for t in dataset.items.set_index("item").loc[split.items, "text"]]]
    from bayes_simrmf.similarity import sqrt_psd_factor_from_embeddings

    item_factor, _ = sqrt_psd_factor_from_embeddings(embeddings)
    side = SideInformation(split.llms, None, split.items, centre_rows(item_factor))
    common = dict(dim=2, lambda_reg=1.0, max_steps=1500, progress=False, seed=0)
    mf = fit_on_split(SimRMF(method="mf", **common), split)
    simrmf = fit_on_split(
        SimRMF(method="simrmf", similarity_weight_items=1.0, similarity_weight_llms=0.0,
               similarity_mode="cold", **common), split, side=side)
    mf_b = evaluate_on_split(mf, split, splits=["B"])["B"]
    sim_b = evaluate_on_split(simrmf, split, splits=["B"])["B"]
    # New items' difficulty is fully determined by their group, which only the similarity reveals:
    # MF predicts the population mean for every new item, SimRMF must do better per item and per pair.
    assert sim_b["rmse_x"] < 0.95 * mf_b["rmse_x"]
    assert sim_b["rmse_p"] < mf_b["rmse_p"]
    # The folded-in difficulty follows the groups' true order (the regression on similarity shrinks
    # it, but must not scramble it).
    new_items = split.items[simrmf.n_warm_items_:]
    new_groups = np.array([int(t.split()[-1]) for t in dataset.items.set_index("item").loc[new_items, "text"]])
    new_bias = simrmf.params_["item_bias"][simrmf.n_warm_items_:]
    group_means = [new_bias[new_groups == g].mean() for g in range(4)]
    assert np.all(np.diff(group_means) > 0), group_means
    # Items with data are learnt from their answers alone under the cut potential.
    np.testing.assert_allclose(
        simrmf.predict(split.llms[:5], split.items[:5]), mf.predict(split.llms[:5], split.items[:5]), atol=0.02
    )


def test_similarity_methods_need_side_information():
    dataset, _ = make_synthetic_dataset(20, 30, seed_value=0)
    llm, item, correct = dataset.codes()
    with pytest.raises(ConfigError, match="needs side information"):
        SimRMF(method="simrmf", progress=False).fit(dataset.llm_ids()[llm], dataset.item_ids()[item], correct)
    with pytest.raises(ConfigError, match="similarity_weight_items"):
        SimRMF(method="simrmf", similarity_weight_items=-1.0, progress=False).fit(
            dataset.llm_ids()[llm], dataset.item_ids()[item], correct)


@pytest.mark.slow
def test_side_information_from_real_data_has_rows_for_every_entity():
    path = default_data_dir() / "openllm-v2-mmlupro-math"  # shared_dataset_path raises when absent
    if not path.is_dir():
        pytest.skip(f"{path} is absent (set BAYES_SIMRMF_DATA or place ../shared beside the repo)")
    dataset = load_dataset(path, log=None)
    llms, items = dataset.llm_ids()[:40], dataset.item_ids()[:60]
    side = build_side_information(dataset, llms, items, kind="similarity", log=None)
    assert side.item_factor.shape[0] == 60 and side.llm_factor.shape[0] == 40
    np.testing.assert_allclose(side.item_factor.mean(axis=0), 0.0, atol=1e-5)  # centred
    oracle = build_side_information(dataset, llms, items, kind="oracle", log=None)
    assert np.all(np.isfinite(oracle.item_factor)) and oracle.llm_factor.shape[0] == 40


def test_kernel_fold_in_is_the_gaussian_process_conditional_mean():
    from bayes_simrmf.predict import kernel_fold_in

    rng = np.random.default_rng(3)
    factor = rng.normal(size=(25, 5))
    latent = rng.normal(size=(20, 3))
    ridge = 0.7
    folded = kernel_fold_in(latent, factor[:20], factor[20:], ridge)
    # Dense GP reading: covariance K = W Wᵀ, nugget ridge on the fitted rows.
    kernel = factor @ factor.T
    mean = latent.mean(axis=0)
    expected = mean + kernel[20:, :20] @ np.linalg.solve(kernel[:20, :20] + ridge * np.eye(20), latent - mean)
    np.testing.assert_allclose(folded, expected, atol=1e-8)
    # Uninformative similarity (zero factor rows) folds in the average fitted row.
    np.testing.assert_allclose(kernel_fold_in(latent, factor[:20], np.zeros((2, 5)), ridge), [mean, mean])
    with pytest.raises(ConfigError, match="ridge"):
        kernel_fold_in(latent, factor[:20], factor[20:], 0.0)


def test_kernel_fold_in_recovers_new_item_difficulty_from_similarity():
    dataset, _ = _similar_items_dataset()
    split = Protocol(n_known_llms=60, n_known_items=100, T=40, seed=0, n_test_pairs=50_000).split(dataset, log=None)
    texts = dataset.items.set_index("item").loc[split.items, "text"]
    embeddings = np.eye(4, dtype=np.float32)[[int(t.split()[-1]) for t in texts]]
    from bayes_simrmf.similarity import sqrt_psd_factor_from_embeddings

    item_factor, _ = sqrt_psd_factor_from_embeddings(embeddings)
    side = SideInformation(split.llms, None, split.items, centre_rows(item_factor))
    common = dict(dim=2, lambda_reg=1.0, max_steps=1500, progress=False, seed=0)
    mf = fit_on_split(SimRMF(method="mf", **common), split)
    kernel = fit_on_split(SimRMF(method="simrmf", similarity_mode="kernel", fold_in_ridge_items=0.1, **common),
                          split, side=side)
    mf_b = evaluate_on_split(mf, split, splits=["B"])["B"]
    kernel_b = evaluate_on_split(kernel, split, splits=["B"])["B"]
    # A new item's difficulty is its group's, which the similarity reveals exactly: per-item errors must
    # fall to a fraction of MF's (which can only predict the population mean for new items).
    assert kernel_b["rmse_x"] < 0.5 * mf_b["rmse_x"]
    # Fitted entities are untouched by the fold-in: same predictions as MF.
    np.testing.assert_allclose(kernel.predict(split.llms[:5], split.items[:5]),
                               mf.predict(split.llms[:5], split.items[:5]), atol=1e-6)


def _group_embedding(texts, model=None):
    """A stand-in text embedding: one-hot of the group number a text names (tests need no model download)."""
    return np.eye(4, dtype=np.float32)[[int(text.split()[-1]) for text in texts]]


def test_item_embeddings_embed_what_the_precomputed_file_lacks(tmp_path, monkeypatch):
    from bayes_simrmf.similarity import side_information as sideinfo
    from bayes_simrmf.similarity import text_sha256_16

    dataset, _ = _similar_items_dataset()
    extended = dataset.with_entities(items=pd.DataFrame({"item": ["new-a", "new-b"], "text": ["group 3", "group 0"]}))
    stored_ids = dataset.item_ids()[:10]
    texts = dataset.items.set_index("item")["text"]
    stored = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    stored /= np.linalg.norm(stored, axis=1, keepdims=True)
    path = tmp_path / "embeddings.parquet"
    pd.DataFrame({"item": stored_ids, "text_sha256_16": [text_sha256_16(texts[i]) for i in stored_ids],
                  "embedding": list(stored)}).to_parquet(path)
    embedded = []
    monkeypatch.setattr(sideinfo, "embed_texts", lambda batch, model, **_: embedded.append(list(batch)) or _group_embedding(batch))
    wanted = np.array(["new-a", stored_ids[3], "new-b", stored_ids[0]])
    vectors = sideinfo.item_embeddings(extended, wanted, embeddings=path, log=None)
    np.testing.assert_allclose(vectors[[1, 3]], stored[[3, 0]], atol=1e-6)  # from the file
    np.testing.assert_allclose(vectors[[0, 2]], _group_embedding(["group 3", "group 0"]))  # embedded
    assert embedded == [["group 3", "group 0"]]  # only what the file lacks
    # A file from another model (other dimension) is refused, naming the file.
    monkeypatch.setattr(sideinfo, "embed_texts", lambda batch, model, **_: np.ones((len(batch), 7), np.float32))
    with pytest.raises(DataError, match="embeddings.parquet.*dimension 4"):
        sideinfo.item_embeddings(extended, wanted, embeddings=path, log=None)


def test_dataset_with_entities_adds_rows_and_refuses_clashes():
    dataset, _ = _similar_items_dataset()
    extended = dataset.with_entities(items=pd.DataFrame({"item": ["zz-new"], "text": ["group 1"]}),
                                     llms=pd.DataFrame({"llm": ["new/llm"], "params_billions": [3.0]}))
    assert extended.n_items == dataset.n_items + 1 and extended.n_llms == dataset.n_llms + 1
    assert extended.items.set_index("item").loc["zz-new", "text"] == "group 1"
    assert extended.fingerprint() == dataset.fingerprint() or extended.n_responses == dataset.n_responses
    assert extended.source == dataset.source
    with pytest.raises(DataError, match="already in the dataset.*item-0001"):
        dataset.with_entities(items=pd.DataFrame({"item": ["item-0001"], "text": ["x"]}))
    with pytest.raises(DataError, match="repeat.*'a'"):
        dataset.with_entities(llms=pd.DataFrame({"llm": ["a", "a"]}))
    with pytest.raises(DataError, match="lack the 'item' column"):
        dataset.with_entities(items=pd.DataFrame({"text": ["x"]}))


def test_fold_in_new_entities_places_new_questions_by_their_text(monkeypatch):
    from bayes_simrmf.similarity import side_information as sideinfo
    from bayes_simrmf.predict import fold_in_new_entities

    monkeypatch.setattr(sideinfo, "embed_texts", lambda texts, model, **_: _group_embedding(texts))
    dataset, _ = _similar_items_dataset()
    metadata = dict(model_type="fine-tuned", is_merged=False, is_moe=False, weight_type="Original",
                    has_chat_template=True, architecture="LlamaForCausalLM", params_billions=7.0,
                    base_model="org/base")
    dataset = Dataset(dataset.responses, dataset.items, dataset.llms.assign(**metadata), name="groups")
    llm, item, correct = dataset.codes()
    model = SimRMF(dim=2, lambda_reg=1.0, max_steps=1500, progress=False, seed=0, fold_in_ridge_items=0.1).fit(
        dataset.llm_ids()[llm], dataset.item_ids()[item], correct)
    new_items = pd.DataFrame({"item": [f"new-{g}" for g in range(4)], "text": [f"group {g}" for g in range(4)]})
    new_llms = pd.DataFrame({"llm": ["org/new-llm"], **{key: [value] for key, value in metadata.items()}})
    reports = fold_in_new_entities(model, dataset, items=new_items, llms=new_llms, log=None)
    assert set(reports) == {"item", "llm"} and list(reports["item"].index) == new_items["item"].tolist()
    llms = dataset.llm_ids()
    # Each new question behaves like the fitted questions of its group (difficulties −2, −0.5, 0.5, 2).
    new_accuracy = [model.predict(llms, np.full(len(llms), f"new-{g}")).mean() for g in range(4)]
    group = np.arange(dataset.n_items) % 4
    fitted_accuracy = [model.predict(np.repeat(llms, 40), np.tile(dataset.item_ids()[group == g][:40], len(llms))).mean()
                       for g in range(4)]
    np.testing.assert_allclose(new_accuracy, fitted_accuracy, atol=0.05)
    assert np.all(np.diff(new_accuracy) > 0.1)
    assert 0 < model.predict(["org/new-llm"], ["new-2"])[0] < 1
    with pytest.raises(DataError, match="need a text"):
        fold_in_new_entities(model, dataset, items=pd.DataFrame({"item": ["other"]}), log=None)


def test_unreadable_metadata_is_named_by_row_column_and_value():
    from bayes_simrmf.similarity import unreadable_metadata

    frame = pd.DataFrame([
        {"llm": "a", "params_billions": "seven billion", "architecture": 42, "is_merged": "maybe",
         "weight_type": "Original", "is_moe": False},
        {"llm": "b", "params_billions": -1, "architecture": "?", "is_merged": "true", "weight_type": "Delta",
         "is_moe": None},
    ])
    assert unreadable_metadata(frame) == [(0, "params_billions", "seven billion"), (0, "architecture", 42),
                                          (0, "is_merged", "maybe")]


def test_questions_without_text_say_what_to_do():
    from bayes_simrmf.synthetic import make_synthetic_dataset

    dataset, _ = make_synthetic_dataset(20, 30, seed_value=0)
    dataset.items.loc[dataset.items.index[0], "text"] = None
    with pytest.raises(DataError, match="1 item\\(s\\) have no text.*unknown_entities='drop'.*method='mf'"):
        build_side_information(dataset, dataset.llm_ids(), dataset.item_ids(), embeddings=None)
