"""The square-root factor of the LLM similarity, without an n × n matrix above a few thousand LLMs.

``S_M = α·F Fᵀ + (1−α)·S_lineage`` (:func:`~bayes_simrmf.similarity.llm_similarity`). Up to :data:`DENSE_LIMIT`
LLMs it is built dense and decomposed exactly (:func:`sqrt_psd_factor_from_dense`, O(n²) memory, O(n³) time).
Above, it is used through its structure: ``F`` has a few dozen columns, and the lineage is a sum over the groups
of LLMs each relation links (:func:`~bayes_simrmf.similarity.llm_lineage.lineage_groups`: a family under one
root, the fine-tunes of one parent, the merges of one parent, a merge and its parent), each group ``g`` adding
``w_g 1_g 1_gᵀ``, plus a diagonal that sets every self-similarity to 1:

    S_M = α F Fᵀ + (1−α) Σ_g w_g 1_g 1_gᵀ + D.

A pair takes the largest weight of the relations that hold (PAPER.md). The groups nest (the fine-tunes of a
parent lie in one family) or are disjoint, so the largest weight is a sum: a family adds 0.6 and a fine-tune
group within it 0.8 − 0.6; merge groups and merge–parent pairs cross no other group. Where they do (a base_model
cycle, or one repository listed twice as two merges) a pair gets the sum of its weights instead of the largest.

Multiplying by ``S_M`` then costs O(n·(f + groups per LLM)); its leading eigenpairs come from a randomized
subspace iteration (:func:`leading_eigenpairs`), so the factor keeps at most :data:`RANK` columns: O(n·k)
memory and time linear in n. Its lineage part is nearly full rank (most LLMs relate to few others), so the dense
factor keeps ~0.86·n columns; the leading ``k`` hold the structure shared by families.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import scipy.sparse

from bayes_simrmf.errors import ConfigError
from bayes_simrmf.similarity.llm_features import _LINEAGE_COLUMNS_REQUIRED, _require_columns, llm_feature_matrix
from bayes_simrmf.similarity.llm_lineage import (
    LINEAGE_WEIGHTS,
    LineageReport,
    LLMSimilarityReport,
    _LineageGraph,
    _read_lineage_graph,
    _root_of,
    lineage_groups,
    lineage_report,
    llm_similarity,
)
from bayes_simrmf.similarity.sqrt_factor import (
    SqrtFactorReport,
    _check_energy,
    _n_components_for_energy,
    sqrt_psd_factor_from_dense,
)

#: Up to this many LLMs the similarity is built dense and decomposed exactly.
DENSE_LIMIT = 2000
#: Above :data:`DENSE_LIMIT`, the factor keeps at most this many leading components.
RANK = 512
_OVERSAMPLE = 16
_POWER_ITERATIONS = 4


@dataclasses.dataclass(frozen=True)
class LLMSimilarityOperator:
    """``S_M = F Fᵀ + M diag(w) Mᵀ + diag(d)`` as its parts (α and 1−α folded into ``F`` and ``w``).

    Attributes:
        features: ``(n, f)`` float64, ``√α`` times the unit-norm feature rows.
        membership: ``(n, m)`` sparse 0/1, LLM ``i`` in lineage group ``j``.
        weights: ``(m,)`` ``(1−α)`` times each group's weight increment.
        diagonal: ``(n,)`` what sets every diagonal entry of ``S_M`` to 1.
    """

    features: np.ndarray
    membership: scipy.sparse.csr_matrix
    weights: np.ndarray
    diagonal: np.ndarray

    @property
    def n(self) -> int:
        return self.features.shape[0]

    def matmat(self, block: np.ndarray) -> np.ndarray:
        """``S_M @ block`` for a ``(n, c)`` block, in O(n·c·(f + groups per LLM))."""
        lineage = self.membership @ (self.weights[:, None] * (self.membership.T @ block))
        return self.features @ (self.features.T @ block) + lineage + self.diagonal[:, None] * block

    def dense(self) -> np.ndarray:
        """The (n, n) matrix (tests and small n only)."""
        return self.matmat(np.eye(self.n))


def _group_increments(graph: _LineageGraph, groups: list[tuple[list[int], str]]) -> np.ndarray:
    """The weight each group adds: a fine-tune group inside one family adds what the family's weight lacks."""
    family = LINEAGE_WEIGHTS["same_base_model"]
    weights = np.empty(len(groups))
    for index, (rows, relation) in enumerate(groups):
        weight = LINEAGE_WEIGHTS[relation]
        if relation == "fine_tune" and len({_root_of(graph, row) for row in rows}) == 1:
            weight -= family
        weights[index] = weight
    return weights


def llm_similarity_operator(llms: pd.DataFrame, alpha: float = 0.5) -> tuple[LLMSimilarityOperator, LLMSimilarityReport]:
    """The structured ``S_M`` of :func:`llm_similarity` (see the module) and its report, in O(n) memory."""
    if not isinstance(alpha, (int, float)) or not 0.0 <= float(alpha) <= 1.0:
        raise ConfigError(f"alpha={alpha!r}: expected a weight in [0, 1]")
    _require_columns(llms, _LINEAGE_COLUMNS_REQUIRED, "LLM lineage")
    features, feature_names, feature_report = llm_feature_matrix(llms)
    graph = _read_lineage_graph(llms)
    groups = lineage_groups(graph)
    n_llms = len(graph.own_keys)
    rows = np.concatenate([np.asarray(members, dtype=np.int64) for members, _ in groups]) if groups else np.zeros(0, int)
    columns = np.repeat(np.arange(len(groups)), [len(members) for members, _ in groups])
    # Duplicate (row, group) entries (a row listed twice in a group) count once, as in the dense matrix.
    membership = scipy.sparse.csr_matrix((np.ones(len(rows)), (rows, columns)), shape=(n_llms, len(groups)))
    membership.data[:] = 1.0
    weights = (1.0 - float(alpha)) * _group_increments(graph, groups)
    scaled = np.sqrt(float(alpha)) * features.astype(np.float64)
    self_similarity = np.sum(scaled**2, axis=1) + membership @ weights
    operator = LLMSimilarityOperator(scaled, membership, weights, 1.0 - self_similarity)
    lineage = _structured_lineage_report(graph, groups, membership)
    return operator, LLMSimilarityReport(float(alpha), feature_report, lineage, feature_names)


def _structured_lineage_report(graph: _LineageGraph, groups, membership) -> LineageReport:
    """The :class:`LineageReport` from the groups (pair counts by the relation that sets them)."""
    pairs = {name: 0 for name in LINEAGE_WEIGHTS}
    for members, relation in groups:
        count = len(set(members))
        pairs[relation] += count * (count - 1) // 2
    pairs["same_base_model"] -= pairs["fine_tune"]  # fine-tune pairs lie in a family and take its stronger weight
    n_with_relation = int((np.asarray(membership.sum(axis=1)).ravel() > 0).sum())
    return lineage_report(graph, n_with_relation, {name: max(count, 0) for name, count in pairs.items()})


def leading_eigenpairs(operator: LLMSimilarityOperator, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest eigenvalues (descending) and their eigenvectors ``(n, k)`` of ``operator``.

    Randomized subspace iteration (Halko, Martinsson & Tropp 2011): ``k + 16`` seeded Gaussian columns, four
    multiplications by ``S_M`` with re-orthonormalisation, then the eigen-decomposition of the projected
    ``(k + 16)²`` matrix. O(n·(k + 16)²) time, O(n·(k + 16)) memory.
    """
    width = min(operator.n, k + _OVERSAMPLE)
    basis = np.random.default_rng(seed).standard_normal((operator.n, width))
    for _ in range(_POWER_ITERATIONS + 1):
        basis, _ = np.linalg.qr(operator.matmat(basis))
    projected = basis.T @ operator.matmat(basis)
    eigenvalues, vectors = np.linalg.eigh((projected + projected.T) / 2.0)
    order = np.argsort(eigenvalues)[::-1][:k]
    return eigenvalues[order], basis @ vectors[:, order]


def llm_similarity_factor(
    llms: pd.DataFrame, alpha: float = 0.5, *, energy: float | None = None, rank: int = RANK,
    dense_limit: int = DENSE_LIMIT, seed: int = 0,
) -> tuple[np.ndarray, SqrtFactorReport, LLMSimilarityReport]:
    """``W`` float32 ``(n, k)`` with ``W Wᵀ ≈ √S_M₊``, the report of what it keeps, and the similarity's report.

    Up to ``dense_limit`` LLMs: exact (:func:`sqrt_psd_factor_from_dense` of :func:`llm_similarity`). Above: the
    leading ``rank`` positive components (:func:`leading_eigenpairs` of :func:`llm_similarity_operator`), then
    ``energy`` applied within them; the report's trace share is then a lower bound (the remaining components'
    eigenvalues are bounded by what the kept ones leave of ``trace(S_M)``).
    """
    _check_energy(energy)
    if len(llms) <= dense_limit:
        similarity, similarity_report = llm_similarity(llms, alpha=alpha)
        factor, sqrt_report = sqrt_psd_factor_from_dense(similarity, energy=energy)
        return factor, sqrt_report, similarity_report
    if rank < 1:
        raise ConfigError(f"rank={rank!r}: expected at least 1 component")
    operator, similarity_report = llm_similarity_operator(llms, alpha=alpha)
    eigenvalues, vectors = leading_eigenpairs(operator, min(rank, operator.n), seed)
    positive = eigenvalues > 0
    sqrt_eigenvalues = np.sqrt(eigenvalues[positive])
    k = _n_components_for_energy(sqrt_eigenvalues, energy)
    factor = (vectors[:, positive][:, :k] * np.sqrt(sqrt_eigenvalues[:k])).astype(np.float32)  # V diag(λ^{1/4})
    return factor, _leading_report(operator.n, eigenvalues[positive], k, energy), similarity_report


def _leading_report(n: int, eigenvalues: np.ndarray, k: int, energy: float | None) -> SqrtFactorReport:
    """What the leading ``k`` components keep, bounded over the components not computed: their eigenvalues sum
    to at most ``trace(S_M) − Σ kept = n − Σ kept`` over ``n − k`` of them, so their square roots to at most
    ``√((n − k)(n − Σ kept))`` (Cauchy-Schwarz)."""
    kept = eigenvalues[:k]
    rest = max(float(n) - float(kept.sum()), 0.0)
    trace_bound = float(np.sqrt(kept).sum() + np.sqrt(max(n - k, 0) * rest))
    return SqrtFactorReport(
        n=n, n_components_total=n, n_components_kept=int(k), energy=energy,
        trace_share_kept=float(np.sqrt(kept).sum() / trace_bound) if trace_bound > 0 else 1.0,
        frobenius_share_kept=float(kept.sum() / n) if n else 1.0,
        route=f"leading {len(eigenvalues)} of {n} components (randomized, above {DENSE_LIMIT} LLMs)",
    )
