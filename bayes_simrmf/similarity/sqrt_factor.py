"""Low-rank square-root factors W of a similarity, with √S = W Wᵀ, never an n × n matrix where the input is low-rank."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from bayes_simrmf.errors import ConfigError, DataError
from bayes_simrmf.similarity.common import _BLOCK, _RELATIVE_EIGENVALUE_TOLERANCE, aligned_empty


@dataclasses.dataclass(frozen=True)
class SqrtFactorReport:
    """What a square-root factor ``W`` (n, k) of a similarity ``S`` (n, n) keeps of ``√S``.

    Attributes:
        n: number of rows (items or LLMs).
        n_components_total: positive components of ``√S`` (its numerical rank).
        n_components_kept: columns ``k`` of ``W`` after the optional ``energy`` truncation.
        energy: the requested share of ``trace(√S)`` to keep, or ``None`` for all components.
        trace_share_kept: share of ``trace(√S)`` that ``W Wᵀ`` keeps, in [0, 1].
        frobenius_share_kept: share of ``‖√S‖²_F`` that ``W Wᵀ`` keeps (the scale the potential works on).
        clipped_negative_share: ``Σ|λ_neg| / Σ|λ|`` over the eigenvalues ``λ`` of the symmetrised ``S``: the
            spectral mass removed to make ``S`` PSD (0 for embeddings, whose ``S`` is PSD by construction).
        min_eigenvalue: smallest eigenvalue of the symmetrised ``S`` (0 when ``S`` is PSD by construction).
        max_asymmetry: ``max |S − Sᵀ|`` before symmetrising (0 for embeddings).
        route: "exact" (every component computed), or how the leading ones were (then the shares are bounds).
    """

    n: int
    n_components_total: int
    n_components_kept: int
    energy: float | None
    trace_share_kept: float
    frobenius_share_kept: float
    clipped_negative_share: float = 0.0
    min_eigenvalue: float = 0.0
    max_asymmetry: float = 0.0
    route: str = "exact"

    def __str__(self) -> str:
        return (
            f"sqrt-similarity factor: n={self.n}, kept {self.n_components_kept}/{self.n_components_total} "
            f"components ({self.trace_share_kept:.1%} of trace, {self.frobenius_share_kept:.1%} of ‖√S‖²_F); "
            f"clipped negative spectral share {self.clipped_negative_share:.2%}"
            + ("" if self.route == "exact" else f"; {self.route}")
        )


def _check_energy(energy: float | None) -> None:
    if energy is not None and not (isinstance(energy, (int, float)) and 0.0 < float(energy) <= 1.0):
        raise ConfigError(f"energy={energy!r}: expected None or a share in (0, 1]")


def _n_components_for_energy(sqrt_eigenvalues_desc: np.ndarray, energy: float | None) -> int:
    """Smallest k whose top-k sqrt-eigenvalues hold ``energy`` of their sum (all of them when ``energy`` is None)."""
    if energy is None or len(sqrt_eigenvalues_desc) == 0:
        return len(sqrt_eigenvalues_desc)
    cumulative_share = np.cumsum(sqrt_eigenvalues_desc) / sqrt_eigenvalues_desc.sum()
    # The tolerance stops round-off from adding a component when the share is reached exactly.
    return int(min(np.searchsorted(cumulative_share, float(energy) - 1e-12) + 1, len(sqrt_eigenvalues_desc)))


def _shares(sqrt_eigenvalues_desc: np.ndarray, k: int) -> tuple[float, float]:
    if len(sqrt_eigenvalues_desc) == 0:
        return 1.0, 1.0
    trace_share = float(sqrt_eigenvalues_desc[:k].sum() / sqrt_eigenvalues_desc.sum())
    frobenius_share = float((sqrt_eigenvalues_desc[:k] ** 2).sum() / (sqrt_eigenvalues_desc**2).sum())
    return trace_share, frobenius_share


def _eigh_descending(symmetric: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues and eigenvector columns of a symmetric matrix, by decreasing eigenvalue."""
    eigenvalues, eigenvectors = np.linalg.eigh(symmetric)
    order = np.argsort(eigenvalues)[::-1]
    return eigenvalues[order], eigenvectors[:, order]


def _numerically_positive(eigenvalues_desc: np.ndarray, size: int) -> np.ndarray:
    """bool mask of the eigenvalues above the round-off level of a ``size`` × ``size`` decomposition."""
    return eigenvalues_desc > _RELATIVE_EIGENVALUE_TOLERANCE * max(eigenvalues_desc[0], 0.0) * size


def _report(n_rows: int, sqrt_eigenvalues_desc: np.ndarray, k: int, energy: float | None,
            **spectrum: float) -> SqrtFactorReport:
    """The report of a factor keeping the top ``k`` of ``sqrt_eigenvalues_desc``; ``spectrum``: the
    dense input's clipped share, smallest eigenvalue and asymmetry."""
    trace_share, frobenius_share = _shares(sqrt_eigenvalues_desc, k)
    return SqrtFactorReport(
        n=n_rows,
        n_components_total=int(len(sqrt_eigenvalues_desc)),
        n_components_kept=int(k),
        energy=energy,
        trace_share_kept=trace_share,
        frobenius_share_kept=frobenius_share,
        **spectrum,
    )


def _as_finite_matrix(matrix: Any, name: str) -> np.ndarray:
    array = np.asarray(matrix)
    if array.ndim != 2:
        raise DataError(f"{name}: expected a 2-D array, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number):
        raise DataError(f"{name}: expected numbers, got dtype {array.dtype}")
    finite_rows = np.concatenate([np.isfinite(array[start:start + _BLOCK]).all(axis=1)
                                  for start in range(0, max(len(array), 1), _BLOCK)]) if len(array) else np.ones(0, bool)
    bad_rows = np.flatnonzero(~finite_rows)
    if len(bad_rows):
        raise DataError(f"{name}: {len(bad_rows)} rows contain NaN or inf (e.g. rows {bad_rows[:5].tolist()})")
    return array


def sqrt_psd_factor_from_embeddings(
    embeddings: np.ndarray, *, energy: float | None = None
) -> tuple[np.ndarray, SqrtFactorReport]:
    """Factor ``W`` with ``W Wᵀ = √S`` for the cosine similarity ``S = E Eᵀ`` of embeddings, without forming ``S``.

    Rows of ``E`` are normalised to unit norm first (cosine similarity). With the thin SVD ``E = U s Vᵀ``,
    ``√S = U diag(s) Uᵀ`` and ``W = U diag(√s)``. ``U`` comes from the eigen-decomposition of the small Gram matrix
    ``EᵀE`` (r, r) in float64, streamed over row blocks, so memory stays ``O(n·r)`` in float32.

    Args:
        embeddings: ``(n, r)`` text embeddings (any finite, non-zero rows).
        energy: keep the fewest top components holding this share of ``trace(√S) = Σ s``; ``None`` keeps all.

    Returns:
        ``W`` float32 ``(n, k)`` with ``k ≤ min(n, r)``, columns by decreasing singular value, and its report.
    """
    _check_energy(energy)
    embedding_matrix = _as_finite_matrix(embeddings, "embeddings")
    n_rows, dim = embedding_matrix.shape
    norms = _row_norms(embedding_matrix)
    zero_rows = np.flatnonzero(norms == 0)
    if len(zero_rows):
        raise DataError(f"embeddings: {len(zero_rows)} rows are all zeros (e.g. rows {zero_rows[:5].tolist()})")
    if n_rows == 0:
        return np.zeros((0, 0), np.float32), SqrtFactorReport(0, 0, 0, energy, 1.0, 1.0)

    def unit_block(start: int, stop: int | None = None) -> np.ndarray:
        stop = start + _BLOCK if stop is None else stop
        block = embedding_matrix[start:stop].astype(np.float64)
        return block / norms[start:stop, None]

    if n_rows <= dim:
        # Few rows: the n × n Gram matrix is the small one.
        unit = unit_block(0, n_rows)
        squared_singular, left_vectors = _eigh_descending(unit @ unit.T)
        positive = _numerically_positive(squared_singular, n_rows)
        singular = np.sqrt(squared_singular[positive])
        k = _n_components_for_energy(singular, energy)
        factor = (left_vectors[:, positive][:, :k] * np.sqrt(singular[:k])).astype(np.float32)
    else:
        gram = np.zeros((dim, dim))
        for start in range(0, n_rows, _BLOCK):
            block = unit_block(start)
            gram += block.T @ block
        squared_singular, right_vectors = _eigh_descending(gram)
        positive = _numerically_positive(squared_singular, dim)
        singular = np.sqrt(squared_singular[positive])
        k = _n_components_for_energy(singular, energy)
        # U diag(√s) = E V diag(s) s^{-1} diag(√s) = E V diag(s^{-1/2}); float64 per block, stored as float32.
        projection = right_vectors[:, positive][:, :k] / np.sqrt(singular[:k])
        factor = aligned_empty((n_rows, k), np.float32)
        for start in range(0, n_rows, _BLOCK):
            factor[start:start + _BLOCK] = unit_block(start) @ projection
    return factor, _report(n_rows, singular, k, energy)


def _row_norms(matrix: np.ndarray) -> np.ndarray:
    """Euclidean norm of each row, in float64, a block of rows at a time (no float64 copy of ``matrix``)."""
    norms = np.empty(matrix.shape[0])
    for start in range(0, matrix.shape[0], _BLOCK):
        norms[start:start + _BLOCK] = np.linalg.norm(matrix[start:start + _BLOCK].astype(np.float64), axis=1)
    return norms


def sqrt_psd_factor_from_dense(
    similarity: np.ndarray, *, energy: float | None = None
) -> tuple[np.ndarray, SqrtFactorReport]:
    """Factor ``W`` with ``W Wᵀ = √S₊`` for a dense similarity ``S`` (n, n) that may not be PSD.

    ``S`` is symmetrised, ``S = V diag(λ) Vᵀ`` (float64 ``eigh``), negative eigenvalues are clipped to 0 (the
    nearest PSD matrix in Frobenius norm), and ``√S₊ = V diag(√λ₊) Vᵀ = W Wᵀ`` with ``W = V diag(λ₊^{1/4})``.
    Dense ``O(n²)`` memory and ``O(n³)`` time: meant for LLMs (n ≤ ~5·10^3), never for items.

    Args:
        similarity: ``(n, n)`` finite similarity matrix.
        energy: keep the fewest top components holding this share of ``trace(√S₊) = Σ √λ₊``; ``None`` keeps all.

    Returns:
        ``W`` float32 ``(n, k)`` (columns by decreasing eigenvalue) and a report with the clipped spectral share.
    """
    _check_energy(energy)
    matrix = _as_finite_matrix(similarity, "similarity").astype(np.float64)
    if matrix.shape[0] != matrix.shape[1]:
        raise DataError(f"similarity: expected a square matrix, got shape {matrix.shape}")
    n_rows = matrix.shape[0]
    if n_rows == 0:
        return np.zeros((0, 0), np.float32), SqrtFactorReport(0, 0, 0, energy, 1.0, 1.0)
    max_asymmetry = float(np.max(np.abs(matrix - matrix.T)))
    eigenvalues, eigenvectors = _eigh_descending((matrix + matrix.T) / 2.0)
    total_mass = float(np.abs(eigenvalues).sum())
    clipped_share = float(np.abs(eigenvalues[eigenvalues < 0]).sum() / total_mass) if total_mass > 0 else 0.0
    positive = _numerically_positive(eigenvalues, n_rows)
    sqrt_eigenvalues = np.sqrt(eigenvalues[positive])
    k = _n_components_for_energy(sqrt_eigenvalues, energy)
    factor = eigenvectors[:, positive][:, :k] * np.sqrt(sqrt_eigenvalues[:k])  # V diag(λ^{1/4})
    report = _report(n_rows, sqrt_eigenvalues, k, energy, clipped_negative_share=clipped_share,
                     min_eigenvalue=float(eigenvalues[-1]), max_asymmetry=max_asymmetry)
    return factor.astype(np.float32), report


