"""Side-information similarity for SimRMF, as low-rank square-root factors.

The model's similarity potential for a set of latent vectors ``X`` (n, d) is ``‖X Xᵀ − √S‖²_F``, with ``√S`` the
principal (PSD) square root of a similarity matrix ``S``. Items reach 10^5, so no code path here builds an
items × items matrix: ``√S`` is represented by a factor ``W`` (n, k) with ``√S = W Wᵀ``, and

    ‖X Xᵀ − W Wᵀ‖²_F = ‖XᵀX‖²_F − 2 ‖WᵀX‖²_F + ‖WᵀW‖²_F        (exact; O(n·d·k) time, O((d+k)²) memory)

is what :func:`gram_mismatch` evaluates.

Where the factors come from
---------------------------
- Items (``S_X``): cosine similarity of unit-norm text embeddings ``E`` (n, r), ``S = E Eᵀ``. With the thin SVD
  ``E = U s Vᵀ``, ``√S = U diag(s) Uᵀ``, so ``W = U diag(√s)`` (:func:`sqrt_psd_factor_from_embeddings`).
  ``E`` comes from :func:`embed_texts` (a sentence-transformers model named as in :func:`resolve_embedding_model`,
  every vector cached on disk) or from the precomputed files beside the data (:func:`load_precomputed_embeddings`).
- LLMs (``S_M``): ``α·S_feature + (1−α)·S_lineage`` from leaderboard metadata (:func:`llm_feature_matrix`,
  :func:`llm_lineage_matrix`, :func:`llm_similarity`). Up to 2,000 LLMs ``S_M`` is dense; it need not be PSD, so
  :func:`sqrt_psd_factor_from_dense` clips negative eigenvalues and reports how much was clipped. Above, its
  leading components come from its structure in O(n·k) memory (:func:`llm_similarity_factor`).
- Oracle (experiments only, uses test data): ``S_X = ZᵀZ`` and ``S_M = Z Zᵀ`` from the full true score matrix
  ``Z`` (:func:`oracle_factors`).
- Diagnostic: :func:`similarity_alignment` correlates ``√S`` with the similarity of observed scores.

Every factor builder returns ``(W, report)``; the report says what was kept, clipped, or could not be parsed.
:func:`build_side_information` (``side_information``) assembles the factors a fit of one split gets.
"""

from __future__ import annotations

from bayes_simrmf.similarity.embedding_models import (
    DEFAULT_EMBEDDING_MODEL,
    EMBEDDING_MODEL_PRESETS,
    E5_QUERY_PROMPT,
    EmbeddingModelSpec,
    resolve_embedding_model,
)
from bayes_simrmf.similarity.embedding_cache import default_cache_dir
from bayes_simrmf.similarity.embed import embed_texts
from bayes_simrmf.similarity.precomputed_embeddings import (
    load_precomputed_embeddings,
    text_sha256_16,
)
from bayes_simrmf.similarity.sqrt_factor import (
    SqrtFactorReport,
    sqrt_psd_factor_from_dense,
    sqrt_psd_factor_from_embeddings,
)
from bayes_simrmf.similarity.gram import (
    gram_fro2,
    gram_mismatch,
    gram_mismatch_dense,
    scaled_gram_mismatch,
)
from bayes_simrmf.similarity.llm_features import (
    ARCHITECTURE_FAMILIES,
    LLMFeatureReport,
    MODEL_TYPES,
    PURPOSES,
    llm_feature_matrix,
    unreadable_metadata,
)
from bayes_simrmf.similarity.llm_lineage import (
    LINEAGE_WEIGHTS,
    LLMSimilarityReport,
    LineageReport,
    llm_lineage_matrix,
    llm_similarity,
)
from bayes_simrmf.similarity.llm_factor import (
    LLMSimilarityOperator,
    leading_eigenpairs,
    llm_similarity_factor,
    llm_similarity_operator,
)
from bayes_simrmf.similarity.oracle import (
    OracleReport,
    oracle_factors,
)
from bayes_simrmf.similarity.diagnostics import (
    AlignmentReport,
    similarity_alignment,
)

# Last: it builds on the modules above (and on bayes_simrmf.data).
from bayes_simrmf.similarity.side_information import (
    SideInformation,
    build_side_information,
    centre_rows,
    item_embeddings,
    new_entity_side_information,
    precomputed_embeddings_file,
    report_summary,
    side_information_warnings,
)

__all__ = [
    "SideInformation",
    "build_side_information",
    "centre_rows",
    "item_embeddings",
    "new_entity_side_information",
    "precomputed_embeddings_file",
    "report_summary",
    "side_information_warnings",
    "ARCHITECTURE_FAMILIES",
    "AlignmentReport",
    "DEFAULT_EMBEDDING_MODEL",
    "E5_QUERY_PROMPT",
    "EMBEDDING_MODEL_PRESETS",
    "EmbeddingModelSpec",
    "LINEAGE_WEIGHTS",
    "LLMFeatureReport",
    "LLMSimilarityReport",
    "LineageReport",
    "MODEL_TYPES",
    "OracleReport",
    "PURPOSES",
    "SqrtFactorReport",
    "default_cache_dir",
    "embed_texts",
    "gram_fro2",
    "gram_mismatch",
    "gram_mismatch_dense",
    "llm_feature_matrix",
    "unreadable_metadata",
    "llm_lineage_matrix",
    "llm_similarity",
    "LLMSimilarityOperator",
    "leading_eigenpairs",
    "llm_similarity_factor",
    "llm_similarity_operator",
    "load_precomputed_embeddings",
    "oracle_factors",
    "resolve_embedding_model",
    "scaled_gram_mismatch",
    "similarity_alignment",
    "sqrt_psd_factor_from_dense",
    "sqrt_psd_factor_from_embeddings",
    "text_sha256_16",
]
