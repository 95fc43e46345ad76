"""How a side-information similarity agrees with the similarity of scores."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from bayes_simrmf.errors import ConfigError, DataError
from bayes_simrmf.similarity.sqrt_factor import _as_finite_matrix


@dataclasses.dataclass(frozen=True)
class AlignmentReport:
    """How well a similarity agrees with the similarity of observed scores, over sampled off-diagonal pairs.

    Attributes:
        n_pairs: distinct pairs ``(i, j), i < j`` compared.
        pearson: Pearson correlation between ``√S_ij`` and the score-row cosine ``cos(z_i, z_j)``.
        spearman: Spearman (rank) correlation of the same two quantities.
    """

    n_pairs: int
    pearson: float
    spearman: float


def _paired_dots(rows: np.ndarray, first: np.ndarray, second: np.ndarray, block_bytes: int = 256 << 20) -> np.ndarray:
    """``rows[first[p]] · rows[second[p]]`` for every pair p, gathering a block of pairs at a time
    (a whole gather of wide rows for 10^5 pairs would take gigabytes)."""
    per_block = max(1, block_bytes // max(1, 2 * rows.shape[1] * rows.itemsize))
    values = np.empty(len(first))
    for start in range(0, len(first), per_block):
        block = slice(start, start + per_block)
        values[block] = np.einsum("pj,pj->p", rows[first[block]], rows[second[block]])
    return values


def similarity_alignment(
    sqrt_sim: np.ndarray,
    scores: np.ndarray,
    *,
    dense: bool = False,
    n_pairs: int = 100_000,
    seed: int = 0,
) -> AlignmentReport:
    """Correlation between ``√S`` and the cosine similarity of the entities' score vectors (a diagnostic).

    The potential matches ``√S`` to the latent Gram matrix, which should track score similarity, so a side
    information whose ``√S`` correlates with ``cos(z_i, z_j)`` can help cold starts; one that does not cannot.
    Pairs are sampled, so it works for 10^5 items without an n × n matrix.

    Args:
        sqrt_sim: a factor ``W`` (n, k) with ``√S = W Wᵀ`` or, with ``dense=True``, ``√S`` itself (n, n).
        scores: ``(n, m)`` scores of the same n entities on rows (LLMs × items for LLMs, items × LLMs for items),
            fully observed or filled (e.g. with means) by the caller; rows are centred before the cosine.
        dense: whether ``sqrt_sim`` is the dense ``√S``.
        n_pairs: pairs to sample (all pairs when there are fewer).
        seed: seed of the pair sample.
    """
    matrix = _as_finite_matrix(sqrt_sim, "sqrt_sim").astype(np.float64)
    score_matrix = _as_finite_matrix(scores, "scores").astype(np.float64)
    n_rows = matrix.shape[0]
    if score_matrix.shape[0] != n_rows or (dense and matrix.shape[1] != n_rows):
        raise DataError(f"sqrt_sim {matrix.shape} and scores {score_matrix.shape}: row counts must match")
    if n_rows < 3:
        raise DataError(f"sqrt_sim: need at least 3 rows to correlate pairs, got {n_rows}")
    if not isinstance(n_pairs, int) or n_pairs < 2:
        raise ConfigError(f"n_pairs={n_pairs!r}: expected an integer ≥ 2")
    n_all_pairs = n_rows * (n_rows - 1) // 2
    rng = np.random.default_rng(seed)
    if n_all_pairs <= n_pairs:
        first, second = np.triu_indices(n_rows, k=1)
    else:
        # Distinct pairs: sample linear indices of the strict upper triangle without replacement, then unrank them.
        linear = rng.choice(n_all_pairs, size=n_pairs, replace=False).astype(np.int64)
        first = n_rows - 2 - np.floor(np.sqrt(4.0 * n_rows * (n_rows - 1) - 8.0 * linear - 7.0) / 2.0 - 0.5)
        first = first.astype(np.int64)
        second = linear + first + 1 - n_all_pairs + (n_rows - first) * (n_rows - first - 1) // 2
    centred = score_matrix - score_matrix.mean(axis=1, keepdims=True)
    centred /= np.linalg.norm(centred, axis=1, keepdims=True).clip(min=1e-12)  # constant rows: cosine 0
    score_cosine = _paired_dots(centred, first, second)
    sim_values = matrix[first, second] if dense else _paired_dots(matrix, first, second)
    pearson = float(np.corrcoef(sim_values, score_cosine)[0, 1])
    spearman = float(
        np.corrcoef(pd.Series(sim_values).rank().to_numpy(), pd.Series(score_cosine).rank().to_numpy())[0, 1]
    )
    return AlignmentReport(n_pairs=int(len(first)), pearson=pearson, spearman=spearman)
