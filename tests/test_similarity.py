"""Tests of bayes_simrmf.similarity: the low-rank Gram identity, square-root factors (embeddings, dense, oracle),
LLM metadata features and lineage on hand-made messy tables, and LLM similarity on the real 755-LLM table."""

from __future__ import annotations

import math
import os
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest

from bayes_simrmf.errors import ConfigError, DataError
from bayes_simrmf.similarity import (
    LINEAGE_WEIGHTS,
    gram_fro2,
    gram_mismatch,
    gram_mismatch_dense,
    llm_feature_matrix,
    llm_lineage_matrix,
    llm_similarity,
    oracle_factors,
    similarity_alignment,
    sqrt_psd_factor_from_dense,
    sqrt_psd_factor_from_embeddings,
)


def _reference_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Principal square root of the PSD part of a symmetric matrix, in float64 (eigh-based)."""
    eigenvalues, eigenvectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ eigenvectors.T


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


# ------------------------------------------------------------------------------------------------ the potential
@pytest.mark.parametrize("n_rows, dim, rank", [(60, 5, 7), (200, 8, 3), (9, 12, 20)])
def test_gram_mismatch_low_rank_identity_equals_dense(n_rows: int, dim: int, rank: int) -> None:
    rng = np.random.default_rng(n_rows)
    latent = rng.normal(size=(n_rows, dim)).astype(np.float32)
    factor = rng.normal(size=(n_rows, rank)).astype(np.float32)
    sqrt_sim = factor.astype(np.float64) @ factor.T.astype(np.float64)
    expected = np.sum((latent.astype(np.float64) @ latent.T.astype(np.float64) - sqrt_sim) ** 2)

    low_rank = float(gram_mismatch(latent, factor))
    assert low_rank == pytest.approx(expected, rel=1e-5)
    assert float(jax.jit(gram_mismatch)(latent, factor)) == pytest.approx(expected, rel=1e-5)
    assert float(gram_mismatch(latent, factor, gram_fro2(factor))) == pytest.approx(expected, rel=1e-5)
    assert float(gram_mismatch_dense(latent, sqrt_sim)) == pytest.approx(expected, rel=1e-5)
    assert gram_fro2(factor) == pytest.approx(np.sum(sqrt_sim**2), rel=1e-10)


def test_gram_mismatch_gradient_matches_dense() -> None:
    rng = np.random.default_rng(3)
    latent = rng.normal(size=(30, 4)).astype(np.float32)
    factor = rng.normal(size=(30, 6)).astype(np.float32)
    sqrt_sim = factor @ factor.T
    gradient = np.asarray(jax.grad(gram_mismatch)(latent, factor))
    gradient_dense = np.asarray(jax.grad(gram_mismatch_dense)(latent, sqrt_sim))
    np.testing.assert_allclose(gradient, gradient_dense, rtol=1e-4, atol=1e-3)


# ----------------------------------------------------------------------------------------- factors of embeddings
@pytest.mark.parametrize("n_rows, dim", [(40, 16), (10, 16)])  # tall (r x r Gram) and wide (n x n Gram) paths
def test_embedding_factor_reproduces_sqrt_of_cosine_similarity(n_rows: int, dim: int) -> None:
    rng = np.random.default_rng(dim + n_rows)
    raw = rng.normal(size=(n_rows, dim)) * rng.uniform(0.5, 3.0, size=(n_rows, 1))  # rows not unit: normalised
    factor, report = sqrt_psd_factor_from_embeddings(raw.astype(np.float32))
    unit = _unit_rows(raw)
    expected = _reference_sqrt(unit @ unit.T)
    assert factor.dtype == np.float32 and factor.shape == (n_rows, min(n_rows, dim))
    np.testing.assert_allclose(factor.astype(np.float64) @ factor.T, expected, atol=2e-5)
    assert report.n_components_total == report.n_components_kept == min(n_rows, dim)
    assert report.trace_share_kept == pytest.approx(1.0) and report.clipped_negative_share == 0.0


def test_embedding_factor_truncation_keeps_the_requested_trace_share() -> None:
    rng = np.random.default_rng(0)
    # A decaying spectrum so that truncation has something to drop.
    raw = rng.normal(size=(80, 12)) * (0.6 ** np.arange(12))
    full, full_report = sqrt_psd_factor_from_embeddings(raw)
    truncated, report = sqrt_psd_factor_from_embeddings(raw, energy=0.8)
    singular = np.linalg.svd(_unit_rows(raw), compute_uv=False)
    shares = np.cumsum(singular) / singular.sum()
    expected_k = int(np.argmax(shares >= 0.8) + 1)
    assert report.n_components_kept == expected_k < full_report.n_components_total == 12
    assert report.trace_share_kept == pytest.approx(shares[expected_k - 1], rel=1e-6)
    assert report.trace_share_kept >= 0.8 and shares[expected_k - 2] < 0.8
    assert 0.8 <= report.frobenius_share_kept <= 1.0
    assert truncated.shape == (80, expected_k)
    np.testing.assert_allclose(np.abs(truncated), np.abs(full[:, :expected_k]), atol=1e-5)  # top columns
    assert "kept" in str(report)


def test_embedding_factor_on_real_item_embeddings() -> None:
    folder = Path(os.environ.get("BAYES_SIMRMF_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
    path = folder / "openllm-v2-mmlupro-math" / "item_embeddings.all-MiniLM-L6-v2.parquet"
    if not path.is_file():
        pytest.skip(f"{path} not available")
    embeddings = np.stack(pd.read_parquet(path)["embedding"].to_list())[:300]
    factor, report = sqrt_psd_factor_from_embeddings(embeddings, energy=0.9)
    assert report.n == 300 and report.n_components_kept < report.n_components_total <= 300
    full, _ = sqrt_psd_factor_from_embeddings(embeddings)
    sqrt_sim = _reference_sqrt(embeddings.astype(np.float64) @ embeddings.T)
    np.testing.assert_allclose(full.astype(np.float64) @ full.T, sqrt_sim, atol=1e-4)


def test_factor_argument_errors() -> None:
    with pytest.raises(DataError, match="all zeros"):
        sqrt_psd_factor_from_embeddings(np.array([[1.0, 0.0], [0.0, 0.0]]))
    with pytest.raises(DataError, match="NaN or inf"):
        sqrt_psd_factor_from_embeddings(np.array([[1.0, np.nan]]))
    with pytest.raises(DataError, match="2-D"):
        sqrt_psd_factor_from_embeddings(np.ones(3))
    with pytest.raises(ConfigError, match="energy"):
        sqrt_psd_factor_from_embeddings(np.eye(3), energy=1.5)
    with pytest.raises(DataError, match="square"):
        sqrt_psd_factor_from_dense(np.ones((2, 3)))
    with pytest.raises(ConfigError, match="energy"):
        sqrt_psd_factor_from_dense(np.eye(3), energy=0.0)


# ------------------------------------------------------------------------------------------ factors of dense S
def test_dense_factor_reproduces_sqrt_of_psd_matrix() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(size=(25, 25))
    similarity = base @ base.T / 25
    factor, report = sqrt_psd_factor_from_dense(similarity)
    np.testing.assert_allclose(factor.astype(np.float64) @ factor.T, _reference_sqrt(similarity), atol=1e-5)
    # Against scipy's general algorithm too.
    scipy_linalg = pytest.importorskip("scipy.linalg")
    np.testing.assert_allclose(factor.astype(np.float64) @ factor.T, np.real(scipy_linalg.sqrtm(similarity)), atol=1e-4)
    assert report.clipped_negative_share == 0.0 and report.min_eigenvalue > 0


def test_dense_factor_clips_and_reports_negative_spectrum() -> None:
    rng = np.random.default_rng(2)
    orthogonal, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    eigenvalues = np.array([3.0, 1.0, -0.5, -0.5])
    similarity = (orthogonal * eigenvalues) @ orthogonal.T
    similarity[0, 1] += 1e-3  # slightly asymmetric input: symmetrised and reported
    factor, report = sqrt_psd_factor_from_dense(similarity)
    assert report.clipped_negative_share == pytest.approx(1.0 / 5.0, abs=1e-3)  # |−0.5−0.5| / (3+1+0.5+0.5)
    assert report.min_eigenvalue == pytest.approx(-0.5, abs=1e-3)
    assert report.max_asymmetry == pytest.approx(1e-3)
    assert report.n_components_total == 2 and factor.shape == (4, 2)
    expected = (orthogonal[:, :2] * np.sqrt([3.0, 1.0])) @ orthogonal[:, :2].T
    np.testing.assert_allclose(factor.astype(np.float64) @ factor.T, expected, atol=1e-3)

    truncated, truncated_report = sqrt_psd_factor_from_dense(similarity, energy=0.5)
    assert truncated_report.n_components_kept == 1  # √3 / (√3 + 1) = 0.63 ≥ 0.5
    assert truncated_report.trace_share_kept == pytest.approx(math.sqrt(3) / (math.sqrt(3) + 1), abs=1e-3)
    assert truncated.shape == (4, 1)


# ------------------------------------------------------------------------------------------------ LLM features
def _messy_llm_table() -> pd.DataFrame:
    rows = [
        # llm, architecture, model_type, params_billions, is_merged, is_moe, weight_type, has_chat_template
        ("q/moe", "Qwen2MoeForCausalLM", "chatmodels", 14.3, False, True, "Original", True),
        ("m/mix", "MixtralForCausalLM", "basemergesandmoerges", 46.7, True, True, "Original", False),
        ("x/unknown-arch", "?", "❓other", -1.0, False, False, "Original", False),
        ("x/nothing", np.nan, np.nan, np.nan, False, False, "Original", False),
        ("g/gpt2", "GPT2LMHeadModel", "pretrained", 0.124, "False", "false", "Original", "False"),
        ("t/t5", "T5ForConditionalGeneration", "continuouslypretrained", 0.77, 0, 0, "Original", 0),
        ("l/vision", "MllamaForConditionalGeneration", "multimodal", 10.6, False, False, "Original", True),
        ("l/rm", "LlamaForSequenceClassification", "fine-tunedondomain-specificdatasets", 8.03, False, False,
         "Adapter", "True"),
        ("g/gemma", "Gemma2ForCausalLM", "a brand new type", 9.24, False, False, "Delta", "maybe"),
        ("u/unknown", "Unknown", "chatmodels", 7.0, False, False, "Original", True),
    ]
    columns = ["llm", "architecture", "model_type", "params_billions", "is_merged", "is_moe", "weight_type",
               "has_chat_template"]
    return pd.DataFrame(rows, columns=columns)


def test_llm_feature_parsing_of_messy_values() -> None:
    llms = _messy_llm_table()
    features, names, report = llm_feature_matrix(llms)
    assert features.shape == (len(llms), len(names)) and features.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, atol=1e-6)
    active = {
        llm: {name for name, value in zip(names, row) if value != 0} for llm, row in zip(llms["llm"], features)
    }
    assert active["q/moe"] == {"log10_params_over_12", "family=qwen", "purpose=causal_lm", "model_type=chat",
                               "is_moe", "has_chat_template"}
    assert active["m/mix"] >= {"family=mistral", "model_type=merge", "is_merged", "is_moe"}
    assert active["x/unknown-arch"] == {"family=other", "purpose=other", "model_type=other"}  # params -1: missing
    assert active["x/nothing"] == {"metadata_unknown"}
    assert active["g/gpt2"] == {"log10_params_over_12", "family=gpt2", "purpose=causal_lm", "model_type=pretrained"}
    assert active["t/t5"] >= {"family=t5", "purpose=seq2seq", "model_type=continuously_pretrained"}
    assert active["l/vision"] >= {"family=llama", "purpose=vision_language", "model_type=multimodal"}
    assert active["l/rm"] >= {"family=llama", "purpose=classifier_or_reward", "model_type=fine_tuned",
                              "adapter_or_delta", "has_chat_template"}
    assert active["g/gemma"] >= {"family=gemma", "model_type=other", "adapter_or_delta"}
    assert "has_chat_template" not in active["g/gemma"]  # "maybe": unreadable -> 0, counted
    assert active["u/unknown"] >= {"family=other", "purpose=other", "model_type=chat"}

    # Parameter feature: log10(params) / 12 before the row normalisation.
    gpt2_row = features[4].astype(np.float64)
    unnormalised_params = math.log10(0.124e9) / 12
    assert gpt2_row[names.index("log10_params_over_12")] / gpt2_row[names.index("family=gpt2")] == pytest.approx(
        unnormalised_params, rel=1e-5
    )
    # The fallback row is orthogonal to every row with metadata.
    cosine = features @ features.T
    assert np.allclose(np.delete(cosine[3], 3), 0.0)

    assert report.n_llms == 10 and report.n_fallback == 1 and report.n_usable == 9
    assert report.n_params_missing == 2
    assert report.n_architecture_unparsed == 3 and set(report.unparsed_architectures) == {"?", "nan", "Unknown"}
    assert report.n_model_type_unparsed == 2 and "a brand new type" in report.unparsed_model_types
    assert report.n_flags_unparsed == 1
    assert report.n_complete == 6
    assert "usable" in str(report)


def test_llm_feature_errors_name_the_column() -> None:
    with pytest.raises(DataError, match="params_billions"):
        llm_feature_matrix(_messy_llm_table().drop(columns="params_billions"))
    duplicated = pd.concat([_messy_llm_table().head(2), _messy_llm_table().head(1)])
    with pytest.raises(DataError, match="q/moe"):
        llm_feature_matrix(duplicated)


# ------------------------------------------------------------------------------------------------- LLM lineage
def _family_table() -> pd.DataFrame:
    rows = [
        # llm, base_model, model_type, is_merged
        ("org/base", "org/base", "pretrained", False),
        ("org/ft1", "org/base", "fine-tunedondomain-specificdatasets", False),
        ("org/ft2", "org/base", "chatmodels", False),
        ("org/ft1a", "org/ft1", "fine-tunedondomain-specificdatasets", False),  # grandchild of base
        ("org/m1", "org/base", "basemergesandmoerges", False),  # merged from base (model_type says merge)
        ("org/m2", "org/base", "fine-tunedondomain-specificdatasets", True),  # merged from base (is_merged)
        ("org/self-merge", "org/self-merge (Merge)", "basemergesandmoerges", True),  # sources unknown
        ("org/removed", "Removed", "chatmodels", False),
        ("ext/s1", "ext/Foundation", "chatmodels", False),  # parent not in the table
        ("ext/s2", "EXT/foundation", "fine-tunedondomain-specificdatasets", False),  # same parent, other case
        ("org/c", "org/m1 (Merge)", "fine-tunedondomain-specificdatasets", False),  # fine-tune of a merge
        ("b/t", "meta-llama/Meta-Llama-3.1-8B", "chatmodels", False),  # old repo name
        ("b/u", "meta-llama/Llama-3.1-8B", "chatmodels", False),  # new repo name
        ("z/loner", np.nan, "pretrained", False),
    ]
    return pd.DataFrame(rows, columns=["llm", "base_model", "model_type", "is_merged"])


def test_llm_lineage_weights_on_a_hand_made_family() -> None:
    llms = _family_table()
    lineage, report = llm_lineage_matrix(llms)
    row = {llm: i for i, llm in enumerate(llms["llm"])}

    def weight(a: str, b: str) -> float:
        assert lineage[row[a], row[b]] == lineage[row[b], row[a]]
        return float(lineage[row[a], row[b]])

    assert lineage.dtype == np.float32 and np.allclose(lineage, lineage.T)
    np.testing.assert_array_equal(np.diag(lineage), 1.0)
    assert weight("org/base", "org/ft1") == pytest.approx(LINEAGE_WEIGHTS["fine_tune"])  # parent / child
    assert weight("org/ft1", "org/ft2") == pytest.approx(0.8)  # same fine-tuning source
    assert weight("org/ft1a", "org/ft1") == pytest.approx(0.8)
    assert weight("org/ft1a", "org/ft2") == pytest.approx(LINEAGE_WEIGHTS["same_base_model"])  # cousins: 0.6
    assert weight("org/ft1a", "org/base") == pytest.approx(0.6)  # grandparent, same root
    assert weight("org/m1", "org/base") == pytest.approx(LINEAGE_WEIGHTS["merge_source"])  # 0.7
    assert weight("org/m2", "org/base") == pytest.approx(0.7)
    assert weight("org/m1", "org/m2") == pytest.approx(LINEAGE_WEIGHTS["same_merge_source"])  # co-merge 0.5
    assert weight("org/m1", "org/ft1") == 0.0  # merges do not propagate a base model
    assert weight("org/c", "org/m1") == pytest.approx(0.8)  # "(Merge)" marks the parent; the hop is a fine-tune
    assert weight("org/c", "org/base") == 0.0
    assert weight("ext/s1", "ext/s2") == pytest.approx(0.8)  # hub ids compare case-insensitively
    assert weight("b/t", "b/u") == pytest.approx(0.8)  # Meta-Llama-3.1 rename followed
    for unrelated in ("org/self-merge", "org/removed", "z/loner"):
        assert np.count_nonzero(lineage[row[unrelated]]) == 1  # only the diagonal
    assert weight("ext/s1", "org/base") == 0.0

    assert report.n_llms == 14
    assert report.n_with_parent == 10 and report.n_parent_in_table == 6
    assert report.n_merge_edges == 2 and report.n_fine_tune_edges == 8
    assert report.n_no_parent_self == 1 and report.n_self_merge == 1 and report.n_removed == 2
    assert report.n_parent_marked_merge == 1
    assert report.n_with_relation == 11
    assert report.pair_counts["same_merge_source"] == 1 and report.pair_counts["merge_source"] == 2
    assert report.pair_counts["same_base_model"] == 2  # (ft1a, ft2), (ft1a, base)


def test_llm_lineage_treats_case_duplicates_as_one_repository() -> None:
    llms = pd.DataFrame(
        {"llm": ["a/Model", "a/model", "b/child"], "base_model": ["a/Model", "a/model", "A/MODEL"],
         "model_type": ["pretrained"] * 3, "is_merged": [False] * 3}
    )
    lineage, report = llm_lineage_matrix(llms)
    assert report.n_id_case_duplicates == 1 and report.n_no_parent_self == 2
    assert lineage[2, 0] == pytest.approx(0.8)


# ------------------------------------------------------------------------------------- LLM similarity, real data
@pytest.mark.slow
def test_llm_similarity_on_real_leaderboard_table() -> None:
    folder = Path(os.environ.get("BAYES_SIMRMF_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
    path = folder / "openllm-v2-mmlupro-math" / "llms.parquet"
    if not path.is_file():
        pytest.skip(f"{path} not available")
    llms = pd.read_parquet(path)
    similarity, report = llm_similarity(llms, alpha=0.5)
    n_llms = len(llms)
    assert n_llms == 755 and similarity.shape == (755, 755) and similarity.dtype == np.float32
    assert np.isfinite(similarity).all() and np.array_equal(similarity, similarity.T)
    np.testing.assert_array_equal(np.diag(similarity), 1.0)
    assert similarity.min() >= 0.0 and similarity.max() <= 1.0 + 1e-6

    # Figures of this snapshot (see the report): metadata is nearly complete, lineage is sparse.
    assert report.features.n_usable == 755 and report.features.n_fallback == 0
    assert report.features.n_architecture_unparsed == 10  # "?" x8, "Unknown", missing
    assert report.features.n_params_missing == 1
    assert report.lineage.n_with_parent == 89 and report.lineage.n_with_relation == 91
    assert report.lineage.n_self_merge == 346 and report.lineage.n_removed == 153

    factor, factor_report = sqrt_psd_factor_from_dense(similarity)
    assert factor.shape[0] == 755 and 0.0 <= factor_report.clipped_negative_share < 0.01
    np.testing.assert_allclose(
        factor.astype(np.float64) @ factor.T, _reference_sqrt(similarity.astype(np.float64)), atol=1e-4
    )


def test_llm_similarity_mixes_features_and_lineage() -> None:
    llms = _family_table().assign(
        architecture="LlamaForCausalLM", params_billions=8.0, is_moe=False, weight_type="Original",
        has_chat_template=True,
    )
    similarity, report = llm_similarity(llms, alpha=0.25)
    features, _, _ = llm_feature_matrix(llms)
    lineage, _ = llm_lineage_matrix(llms)
    expected = 0.25 * features.astype(np.float64) @ features.T + 0.75 * lineage
    np.fill_diagonal(expected, 1.0)
    np.testing.assert_allclose(similarity, expected, atol=1e-6)
    assert report.alpha == 0.25 and "alpha" in str(report)
    with pytest.raises(ConfigError, match="alpha"):
        llm_similarity(llms, alpha=1.5)


# ------------------------------------------------------------------------------------------------------ oracle
@pytest.mark.parametrize("n_llms, n_items", [(7, 11), (11, 7)])  # both Gram sides
def test_oracle_factors_reproduce_sqrt_of_score_gram_matrices(n_llms: int, n_items: int) -> None:
    rng = np.random.default_rng(n_llms)
    scores = (rng.uniform(size=(n_llms, n_items)) < 0.4).astype(float)
    llm_idx, item_idx = np.nonzero(np.ones_like(scores))
    order = rng.permutation(len(llm_idx))
    llm_factor, item_factor, report = oracle_factors(
        llm_idx[order], item_idx[order], scores[llm_idx, item_idx][order], n_llms, n_items
    )
    np.testing.assert_allclose(item_factor.astype(np.float64) @ item_factor.T, _reference_sqrt(scores.T @ scores),
                               atol=1e-5)
    np.testing.assert_allclose(llm_factor.astype(np.float64) @ llm_factor.T, _reference_sqrt(scores @ scores.T),
                               atol=1e-5)
    # Z = U Σ Vᵀ is recoverable from the factors: W_llms W_itemsᵀ = U Σ Vᵀ.
    np.testing.assert_allclose(llm_factor.astype(np.float64) @ item_factor.T, scores, atol=1e-5)
    assert report.filled_share == 0.0 and report.n_observed_cells == n_llms * n_items


def test_oracle_fills_missing_cells_with_the_llm_mean_and_averages_duplicates() -> None:
    llm_idx = np.array([0, 0, 0, 1, 1, 0])
    item_idx = np.array([0, 1, 1, 0, 2, 2])
    correct = np.array([1.0, 0.0, 1.0, 0.0, 0.0, 1.0])  # cell (0, 1) seen twice: averaged to 0.5
    llm_factor, item_factor, report = oracle_factors(llm_idx, item_idx, correct, n_llms=3, n_items=3)
    overall_mean = correct.mean()
    expected = np.array([[1.0, 0.5, 1.0], [0.0, 0.0, 0.0], [overall_mean] * 3])  # LLM 1: mean 0 fills (1, 1)
    np.testing.assert_allclose(llm_factor.astype(np.float64) @ item_factor.T, expected, atol=1e-5)
    assert report.n_observations == 6 and report.n_observed_cells == 5
    assert report.filled_share == pytest.approx(4 / 9) and report.n_llms_without_scores == 1

    with pytest.raises(DataError, match="item_idx"):
        oracle_factors(llm_idx, item_idx + 5, correct, 3, 3)
    with pytest.raises(DataError, match="correct"):
        oracle_factors(llm_idx, item_idx, correct * 2, 3, 3)
    with pytest.raises(DataError, match="lengths"):
        oracle_factors(llm_idx, item_idx[:-1], correct, 3, 3)
    with pytest.raises(ConfigError, match="n_items"):
        oracle_factors(llm_idx, item_idx, correct, 3, 0)


def test_oracle_truncation() -> None:
    rng = np.random.default_rng(5)
    scores = (rng.uniform(size=(20, 30)) < rng.uniform(size=(20, 1))).astype(float)
    llm_idx, item_idx = np.nonzero(np.ones_like(scores))
    llm_factor, item_factor, report = oracle_factors(llm_idx, item_idx, scores[llm_idx, item_idx], 20, 30, energy=0.5)
    assert llm_factor.shape[1] == item_factor.shape[1] == report.n_components_kept < report.n_components_total
    assert report.trace_share_kept >= 0.5


# -------------------------------------------------------------------------------------------------- diagnostics
def test_similarity_alignment_separates_informative_from_random_similarity() -> None:
    rng = np.random.default_rng(7)
    ability = rng.normal(size=(60, 2))
    scores = (ability @ rng.normal(size=(2, 200)) + rng.normal(scale=0.5, size=(60, 200)) > 0).astype(float)
    informative = _unit_rows(ability)  # similarity of the latent abilities that generated the scores
    factor, _ = sqrt_psd_factor_from_embeddings(informative)
    aligned = similarity_alignment(factor, scores)
    assert aligned.n_pairs == 60 * 59 // 2 and aligned.pearson > 0.5 and aligned.spearman > 0.5
    dense = similarity_alignment(factor.astype(np.float64) @ factor.T, scores, dense=True)
    assert dense.pearson == pytest.approx(aligned.pearson, abs=1e-5)

    random_factor, _ = sqrt_psd_factor_from_embeddings(rng.normal(size=(60, 8)))
    assert abs(similarity_alignment(random_factor, scores).pearson) < 0.2
    sampled = similarity_alignment(factor, scores, n_pairs=500, seed=1)
    assert sampled.n_pairs == 500 and sampled.pearson > 0.5
    with pytest.raises(DataError, match="row counts"):
        similarity_alignment(factor, scores[:10])
