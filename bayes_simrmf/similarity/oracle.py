"""The ideal similarity from the true score matrix (an upper bound for experiments; uses test data)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from bayes_simrmf.errors import ConfigError, DataError
from bayes_simrmf.similarity.common import _BLOCK, _RELATIVE_EIGENVALUE_TOLERANCE
from bayes_simrmf.similarity.sqrt_factor import _check_energy, _n_components_for_energy, _shares


@dataclasses.dataclass(frozen=True)
class OracleReport:
    """Report of :func:`oracle_factors`.

    Attributes:
        n_llms, n_items: shape of the score matrix ``Z``.
        n_observations: score records given (duplicates of a cell are averaged).
        n_observed_cells: distinct (llm, item) cells observed.
        filled_share: share of ``Z``'s cells filled in (not observed).
        n_llms_without_scores: LLMs with no observed cell (filled with the global mean).
        n_components_total, n_components_kept: positive singular values of ``Z``, and those kept.
        trace_share_kept: share of ``Σ σ`` (= ``trace √(ZᵀZ)``) kept.
        top_singular_values: the largest singular values of ``Z`` (up to 10).
    """

    n_llms: int
    n_items: int
    n_observations: int
    n_observed_cells: int
    filled_share: float
    n_llms_without_scores: int
    n_components_total: int
    n_components_kept: int
    trace_share_kept: float
    top_singular_values: list[float]


def _as_index(values: Any, size: int, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise DataError(f"{name}: expected a 1-D array, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise DataError(f"{name}: expected integer indices, got dtype {array.dtype}")
    out_of_range = np.flatnonzero((array < 0) | (array >= size))
    if len(out_of_range):
        raise DataError(
            f"{name}: {len(out_of_range)} indices outside [0, {size}) (e.g. {array[out_of_range[:5]].tolist()} at "
            f"positions {out_of_range[:5].tolist()})"
        )
    return array.astype(np.int64)


def oracle_factors(
    llm_idx: np.ndarray,
    item_idx: np.ndarray,
    correct: np.ndarray,
    n_llms: int,
    n_items: int,
    *,
    energy: float | None = None,
) -> tuple[np.ndarray, np.ndarray, OracleReport]:
    """Square-root factors of the oracle similarities ``S_M = Z Zᵀ`` and ``S_X = ZᵀZ`` (experiments only).

    ``Z`` (n_llms, n_items) is the full true score matrix from *all* observed cells (this uses test data: an upper
    bound, not a usable predictor). With the thin SVD ``Z = U Σ Vᵀ``: ``√(ZᵀZ) = V Σ Vᵀ`` and
    ``√(Z Zᵀ) = U Σ Uᵀ``, so ``W_items = V Σ^{1/2}`` and ``W_llms = U Σ^{1/2}``. No items × items matrix is built:
    the SVD comes from the Gram matrix of the smaller side in float64.

    Missing cells are filled with the LLM's mean observed score (the global mean for an LLM with none): a zero
    fill would read "unobserved" as "wrong" and make sparsely observed LLMs look weak, while the LLM mean keeps each
    LLM's overall ability, the dominant direction of ``Z``, and adds nothing item-specific that was not observed.

    Memory: ``Z`` is float32 plus an int32 count per cell, ~8 bytes × n_llms × n_items (2,000 × 20,000: ~320 MB),
    plus the (min side)² float64 Gram matrix.

    Args:
        llm_idx, item_idx: ``(n_obs,)`` integer row / column indices of the observed scores.
        correct: ``(n_obs,)`` scores in [0, 1] (0/1 correctness).
        n_llms, n_items: shape of ``Z``.
        energy: keep the fewest top components holding this share of ``Σ σ``; ``None`` keeps all.

    Returns:
        ``W_llms`` float32 ``(n_llms, k)``, ``W_items`` float32 ``(n_items, k)``, and a report.
    """
    _check_energy(energy)
    for name, size in (("n_llms", n_llms), ("n_items", n_items)):
        if not isinstance(size, (int, np.integer)) or size < 1:
            raise ConfigError(f"{name}={size!r}: expected a positive integer")
    llm_idx = _as_index(llm_idx, int(n_llms), "llm_idx")
    item_idx = _as_index(item_idx, int(n_items), "item_idx")
    scores = np.asarray(correct, dtype=np.float64)
    if not (llm_idx.shape == item_idx.shape == scores.shape):
        raise DataError(
            f"llm_idx, item_idx, correct: lengths differ ({llm_idx.shape}, {item_idx.shape}, {scores.shape})"
        )
    if scores.size == 0:
        raise DataError("correct: no observed scores; the oracle needs the true score matrix")
    bad = np.flatnonzero(~np.isfinite(scores) | (scores < 0) | (scores > 1))
    if len(bad):
        raise DataError(f"correct: {len(bad)} scores outside [0, 1] or not finite (e.g. positions {bad[:5].tolist()})")

    n_llms, n_items = int(n_llms), int(n_items)
    score_sum = np.zeros((n_llms, n_items), dtype=np.float32)
    cell_count = np.zeros((n_llms, n_items), dtype=np.int32)
    np.add.at(score_sum, (llm_idx, item_idx), scores.astype(np.float32))
    np.add.at(cell_count, (llm_idx, item_idx), 1)
    observed = cell_count > 0
    llm_totals = np.bincount(llm_idx, weights=scores, minlength=n_llms)
    llm_counts = np.bincount(llm_idx, minlength=n_llms)
    llm_means = np.where(llm_counts > 0, llm_totals / np.maximum(llm_counts, 1), scores.mean())
    score_matrix = np.where(observed, score_sum / np.maximum(cell_count, 1), llm_means[:, None].astype(np.float32))
    score_matrix = score_matrix.astype(np.float32)
    n_observed_cells = int(observed.sum())
    del score_sum, cell_count, observed

    # Thin SVD through the Gram matrix of the smaller side, accumulated in float64 over blocks of the larger side.
    llms_are_smaller = n_llms <= n_items
    small = n_llms if llms_are_smaller else n_items
    gram = np.zeros((small, small))
    large = n_items if llms_are_smaller else n_llms
    for start in range(0, large, _BLOCK):
        block = (score_matrix[:, start:start + _BLOCK] if llms_are_smaller else score_matrix[start:start + _BLOCK].T)
        block = block.astype(np.float64)
        gram += block @ block.T
    eigenvalues, eigenvectors = np.linalg.eigh(gram)
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues, eigenvectors = eigenvalues[order], eigenvectors[:, order]
    positive = eigenvalues > _RELATIVE_EIGENVALUE_TOLERANCE * max(eigenvalues[0], 0.0) * small
    singular = np.sqrt(eigenvalues[positive])
    k = _n_components_for_energy(singular, energy)
    small_vectors = eigenvectors[:, positive][:, :k]  # U (llms smaller) or V (items smaller)
    small_factor = small_vectors * np.sqrt(singular[:k])
    # The other side: V Σ^{1/2} = Zᵀ U Σ^{-1/2} (or U Σ^{1/2} = Z V Σ^{-1/2}), streamed over blocks.
    projection = small_vectors / np.sqrt(singular[:k])
    large_factor = np.empty((large, k))
    for start in range(0, large, _BLOCK):
        block = (score_matrix[:, start:start + _BLOCK].T if llms_are_smaller else score_matrix[start:start + _BLOCK])
        large_factor[start:start + _BLOCK] = block.astype(np.float64) @ projection
    llm_factor, item_factor = (small_factor, large_factor) if llms_are_smaller else (large_factor, small_factor)

    trace_share, _ = _shares(singular, k)
    report = OracleReport(
        n_llms=n_llms,
        n_items=n_items,
        n_observations=int(scores.size),
        n_observed_cells=n_observed_cells,
        filled_share=1.0 - n_observed_cells / (n_llms * n_items),
        n_llms_without_scores=int((llm_counts == 0).sum()),
        n_components_total=int(len(singular)),
        n_components_kept=int(k),
        trace_share_kept=trace_share,
        top_singular_values=[float(s) for s in singular[:10]],
    )
    return llm_factor.astype(np.float32), item_factor.astype(np.float32), report


