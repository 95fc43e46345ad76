"""The ideal similarity from the true score matrix (an upper bound for experiments; uses test data)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from bayes_simrmf.errors import ConfigError, DataError
from bayes_simrmf.similarity.common import _BLOCK
from bayes_simrmf.similarity.sqrt_factor import (
    _check_energy,
    _eigh_descending,
    _n_components_for_energy,
    _numerically_positive,
    _shares,
)


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


def _checked_observations(
    llm_idx: np.ndarray, item_idx: np.ndarray, correct: np.ndarray, n_llms: int, n_items: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The observed cells as int64 row and column indices and float64 scores, checked (a named error otherwise)."""
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
    return llm_idx, item_idx, scores


def _filled_score_matrix(
    llm_idx: np.ndarray, item_idx: np.ndarray, scores: np.ndarray, n_llms: int, n_items: int
) -> tuple[np.ndarray, int, np.ndarray]:
    """``Z`` float32 (n_llms, n_items): the mean score of each observed cell, the LLM's mean score elsewhere (the
    global mean for an LLM with none); also the number of observed cells and the scores per LLM."""
    score_sum = np.zeros((n_llms, n_items), dtype=np.float32)
    cell_count = np.zeros((n_llms, n_items), dtype=np.int32)
    np.add.at(score_sum, (llm_idx, item_idx), scores.astype(np.float32))
    np.add.at(cell_count, (llm_idx, item_idx), 1)
    observed = cell_count > 0
    llm_totals = np.bincount(llm_idx, weights=scores, minlength=n_llms)
    llm_counts = np.bincount(llm_idx, minlength=n_llms)
    llm_means = np.where(llm_counts > 0, llm_totals / np.maximum(llm_counts, 1), scores.mean())
    score_matrix = np.where(observed, score_sum / np.maximum(cell_count, 1), llm_means[:, None].astype(np.float32))
    return score_matrix.astype(np.float32), int(observed.sum()), llm_counts


def _smaller_side_gram(score_matrix: np.ndarray, llms_are_smaller: bool) -> np.ndarray:
    """``Z Zᵀ`` (LLMs the smaller side) or ``ZᵀZ`` in float64, accumulated over blocks of the larger side."""
    n_llms, n_items = score_matrix.shape
    small = n_llms if llms_are_smaller else n_items
    large = n_items if llms_are_smaller else n_llms
    gram = np.zeros((small, small))
    for start in range(0, large, _BLOCK):
        block = (score_matrix[:, start:start + _BLOCK] if llms_are_smaller else score_matrix[start:start + _BLOCK].T)
        block = block.astype(np.float64)
        gram += block @ block.T
    return gram


def _larger_side_factor(score_matrix: np.ndarray, projection: np.ndarray, llms_are_smaller: bool) -> np.ndarray:
    """``Zᵀ·projection`` (LLMs the smaller side) or ``Z·projection`` in float64, streamed over blocks."""
    n_llms, n_items = score_matrix.shape
    large = n_items if llms_are_smaller else n_llms
    large_factor = np.empty((large, projection.shape[1]))
    for start in range(0, large, _BLOCK):
        block = (score_matrix[:, start:start + _BLOCK].T if llms_are_smaller else score_matrix[start:start + _BLOCK])
        large_factor[start:start + _BLOCK] = block.astype(np.float64) @ projection
    return large_factor


def _svd_factors(score_matrix: np.ndarray, energy: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``U Σ^{1/2}`` and ``V Σ^{1/2}`` (float64) of the thin SVD ``Z = U Σ Vᵀ`` through the Gram matrix of the
    smaller side, with the positive singular values and the number ``k`` of components kept."""
    n_llms, n_items = score_matrix.shape
    llms_are_smaller = n_llms <= n_items
    small = n_llms if llms_are_smaller else n_items
    eigenvalues, eigenvectors = _eigh_descending(_smaller_side_gram(score_matrix, llms_are_smaller))
    positive = _numerically_positive(eigenvalues, small)
    singular = np.sqrt(eigenvalues[positive])
    k = _n_components_for_energy(singular, energy)
    small_vectors = eigenvectors[:, positive][:, :k]  # U (llms smaller) or V (items smaller)
    small_factor = small_vectors * np.sqrt(singular[:k])
    # The other side: V Σ^{1/2} = Zᵀ U Σ^{-1/2} (or U Σ^{1/2} = Z V Σ^{-1/2}).
    large_factor = _larger_side_factor(score_matrix, small_vectors / np.sqrt(singular[:k]), llms_are_smaller)
    llm_factor, item_factor = (small_factor, large_factor) if llms_are_smaller else (large_factor, small_factor)
    return llm_factor, item_factor, singular, k


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
    llm_idx, item_idx, scores = _checked_observations(llm_idx, item_idx, correct, n_llms, n_items)
    n_llms, n_items = int(n_llms), int(n_items)
    score_matrix, n_observed_cells, llm_counts = _filled_score_matrix(llm_idx, item_idx, scores, n_llms, n_items)
    llm_factor, item_factor, singular, k = _svd_factors(score_matrix, energy)
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
