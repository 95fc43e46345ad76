"""The LLM similarity through its structure (issue 15): the same matrix as the dense one, and a factor of its
leading components built without an n × n matrix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayes_simrmf.similarity import (
    leading_eigenpairs,
    llm_similarity,
    llm_similarity_factor,
    llm_similarity_operator,
    sqrt_psd_factor_from_dense,
)

_ARCHITECTURES = ("LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM", "GPT2LMHeadModel")


def _leaderboard_like(n: int, seed: int) -> pd.DataFrame:
    """A random family tree: roots, fine-tunes and merges of roots or of earlier LLMs, parents outside the table,
    a repository listed twice (case), a base_model cycle left out on purpose (it has no single answer)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        name = f"org{i % 7}/model-{i}"
        if i < max(3, n // 8) or rng.random() < 0.05:
            rows.append(dict(llm=name, architecture=_ARCHITECTURES[i % 4], model_type="pretrained",
                             params_billions=float(rng.choice([1.5, 7.0, 8.0, 70.0])), is_merged=False, is_moe=False,
                             weight_type="Original", has_chat_template=False, base_model=name))
            continue
        parent = rows[int(rng.integers(0, i))]
        merge = bool(rng.random() < 0.3)
        outside = rng.random() < 0.1
        base = f"ext/foundation-{i % 3}" if outside else parent["llm"].upper() if rng.random() < 0.2 else parent["llm"]
        rows.append(dict(llm=name, architecture=parent["architecture"],
                         model_type="basemergesandmoerges" if merge else "chatmodels",
                         params_billions=parent["params_billions"], is_merged=merge, is_moe=False,
                         weight_type="Original", has_chat_template=bool(rng.random() < 0.5),
                         base_model=base + (" (Merge)" if rng.random() < 0.1 else "")))
    return pd.DataFrame(rows)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_structured_similarity_is_the_dense_one(seed):
    llms = _leaderboard_like(150, seed)
    dense, report = llm_similarity(llms, alpha=0.5)
    operator, structured_report = llm_similarity_operator(llms, alpha=0.5)
    np.testing.assert_allclose(operator.dense(), dense, atol=1e-6)
    assert structured_report.lineage == report.lineage
    assert operator.membership.shape[0] == len(llms) and operator.membership.nnz <= 4 * len(llms)


def test_leading_components_match_the_exact_decomposition():
    llms = _leaderboard_like(240, 3)
    operator, _ = llm_similarity_operator(llms)
    exact = np.sort(np.linalg.eigvalsh(operator.dense()))[::-1]
    values, vectors = leading_eigenpairs(operator, 20)
    np.testing.assert_allclose(values[:5], exact[:5], rtol=1e-6)  # the leading ones to round-off
    np.testing.assert_allclose(values[:10], exact[:10], rtol=1e-3)
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(20), atol=1e-8)
    # With every component computed, the factor is the exact √S₊.
    full, report, _ = llm_similarity_factor(llms, rank=len(llms), dense_limit=10)
    reference, _ = sqrt_psd_factor_from_dense(operator.dense())
    np.testing.assert_allclose(full.astype(np.float64) @ full.T, reference.astype(np.float64) @ reference.T, atol=1e-4)
    assert "randomized" in report.route


def test_above_the_dense_limit_the_factor_keeps_at_most_rank_columns_and_energy_applies_within():
    llms = _leaderboard_like(300, 4)
    factor, report, similarity_report = llm_similarity_factor(llms, rank=40, dense_limit=100)
    assert factor.shape == (300, 40) and factor.dtype == np.float32
    assert report.n_components_kept == 40 and 0 < report.trace_share_kept < 1
    assert similarity_report.lineage.n_llms == 300
    fewer, fewer_report, _ = llm_similarity_factor(llms, rank=40, dense_limit=100, energy=0.5)
    assert fewer.shape[1] < 40 and fewer_report.energy == 0.5
    np.testing.assert_allclose(fewer, factor[:, : fewer.shape[1]], atol=1e-6)
    # Up to the dense limit: the exact route, unchanged.
    exact, exact_report, _ = llm_similarity_factor(llms, dense_limit=1000)
    assert exact_report.route == "exact" and exact.shape[1] > 40
