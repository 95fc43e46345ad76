"""The Gaussian-process prior of an entity the fit never saw, given the fitted ones.

The fitted rows ``[factors, bias]`` of one side are treated as a matrix-normal draw whose row
covariance is the side's similarity ``√S = W Wᵀ`` (plus a nugget): a new entity's row is then
Gaussian given the fitted rows (:func:`gp_conditional`), centred on its group's mean where groups
are known (:func:`group_means`).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from bayes_simrmf.errors import ConfigError

_ROWS = 8192  # new rows per block in gp_conditional
#: Posterior draws per block when rows are drawn for many draws (:func:`normal_blocks`; memory only: the values do
#: not depend on it).
DRAW_BLOCK = 32


def normal_blocks(rng: np.random.Generator, n_draws: int, shape: tuple) -> Iterator[tuple[slice, np.ndarray]]:
    """Standard normals ``(n_draws, *shape)`` a block of :data:`DRAW_BLOCK` draws at a time, as ``(draws, noise)``:
    the blocks are consecutive parts of one stream, so the values are those of a single call for every draw,
    without ``n_draws × …`` float64 temporaries."""
    for start in range(0, n_draws, DRAW_BLOCK):
        draws = slice(start, min(start + DRAW_BLOCK, n_draws))
        yield draws, rng.standard_normal((draws.stop - draws.start, *shape))


def group_means(
    latent: np.ndarray, known_groups: np.ndarray | None, new_groups: np.ndarray | None, n_new: int
) -> tuple[np.ndarray, np.ndarray]:
    """Prior means of fitted rows ``(n_known, p)`` and new rows ``(n_new, p)``: the mean of the
    fitted rows of the row's group, or of all fitted rows where the group is unknown (code -1) or
    not given (None)."""
    overall = latent.mean(axis=0)
    known_mean = np.broadcast_to(overall, latent.shape).copy()
    new_mean = np.broadcast_to(overall, (n_new, latent.shape[1])).copy()
    if known_groups is None or not (known_groups >= 0).any():
        return known_mean, new_mean
    for group in np.unique(known_groups[known_groups >= 0]):
        members = known_groups == group
        mean = latent[members].mean(axis=0)
        known_mean[members] = mean
        if new_groups is not None:
            new_mean[new_groups == group] = mean
    return known_mean, new_mean


def gp_conditional(
    known_latent: np.ndarray,
    known_factor: np.ndarray,
    new_factor: np.ndarray,
    ridge: float,
    known_groups: np.ndarray | None = None,
    new_groups: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian-process conditional of new entities' latent rows given the fitted ones.

    The rows ``F`` (``[factors, bias]``) are matrix-normal: ``F − μ ~ MN(0, K + ridge·I, Σ)`` with
    row covariance the similarity ``K = √S = W Wᵀ`` plus a nugget and column covariance ``Σ``.
    Given the fitted rows, a new row is Gaussian with

    * mean ``μ + W_new (WᵀW + ridge·I)⁻¹ Wᵀ (F − μ)`` (push-through identity: an ``r × r`` solve),
    * covariance ``c · Σ``, ``c = k(new, new) + ridge − k(new, K)(K + ridge·I)⁻¹k(K, new)``,

    with ``Σ = (F − μ)ᵀ (K + ridge·I)⁻¹ (F − μ) / n`` (its maximum-likelihood estimate; Woodbury,
    ``r × r`` again). Without similarity (``W = 0``) this is the fitted rows' mean and covariance.
    With group codes (e.g. each question's benchmark), ``μ`` is each row's group mean
    (:func:`group_means`): the GP models the deviations from the group, so a new entity starts at
    its group's mean and the similarity only has to explain what the group does not.

    Args:
        known_latent: ``(n_known, p)`` fitted rows.
        known_factor, new_factor: ``(n_known, r)``, ``(n_new, r)`` rows of the similarity factor W.
        ridge: the nugget, > 0.
    Returns:
        ``(mean (n_new, p), c (n_new,), Σ (p, p))``.
    """
    inverse, factor = _solve_parts(known_factor, new_factor, ridge)
    new_mean, centred, projected = _conditional_mean(known_latent, known_factor, new_factor, inverse, known_groups,
                                                     new_groups)
    row_cov = (centred.T @ centred - projected.T @ inverse @ projected) / (ridge * len(centred))
    return new_mean, factor, row_cov


def _solve_parts(known_factor, new_factor, ridge):
    """``(inverse (WᵀW + ridge·I)⁻¹, c (n_new,))``: the parts of :func:`gp_conditional` that depend on the
    similarity only, not on the fitted rows."""
    if not ridge > 0:
        raise ConfigError(f"the fold-in ridge must be > 0, got {ridge!r}")
    known_factor = np.asarray(known_factor, dtype=np.float64)
    gram = known_factor.T @ known_factor
    inverse = np.linalg.inv(gram + ridge * np.eye(gram.shape[0]))
    middle = gram - gram @ inverse @ gram
    factor = np.empty(len(new_factor))
    # A block of new rows at a time (in float64), so the temporaries do not grow with the new entities.
    for start in range(0, len(new_factor), _ROWS):
        rows = slice(start, start + _ROWS)
        block = np.asarray(new_factor[rows], dtype=np.float64)
        # (W M) ⊙ W summed over columns: the three-operand einsum without a contraction order is ~30× slower.
        explained = np.sum((block @ middle) * block, axis=1) / ridge
        factor[rows] = np.maximum(np.sum(block**2, axis=1) + ridge - explained, 1e-6)
    return inverse, factor


def _conditional_mean(known_latent, known_factor, new_factor, inverse, known_groups, new_groups):
    """``(mean (n_new, p), centred fitted rows, Wᵀ · centred)`` for fitted rows ``(n_known, p)``."""
    known_latent = np.asarray(known_latent, dtype=np.float64)
    known_mean, new_mean = group_means(known_latent, known_groups, new_groups, len(new_factor))
    centred = known_latent - known_mean
    del known_mean
    projected = np.asarray(known_factor, dtype=np.float64).T @ centred
    for start in range(0, len(new_factor), _ROWS):
        rows = slice(start, start + _ROWS)
        new_mean[rows] += np.asarray(new_factor[rows], dtype=np.float64) @ inverse @ projected
    return new_mean, centred, projected


def kernel_fold_in(
    known_latent: np.ndarray, known_factor: np.ndarray, new_factor: np.ndarray, ridge: float
) -> np.ndarray:
    """The conditional mean of :func:`gp_conditional`: new rows as kernel ridge regression of the
    fitted rows on the similarity factor (the average fitted row for uninformative similarity)."""
    return gp_conditional(known_latent, known_factor, new_factor, ridge)[0]



def nearest_psd(cov: np.ndarray, relative_floor: float = 1e-9) -> np.ndarray:
    """``cov`` (``(..., p, p)``) with every eigenvalue raised to at least ``relative_floor`` times the matrix's
    mean absolute diagonal (symmetrised first): a covariance that rounding (a difference of two Gram matrices,
    float32 draws) left slightly indefinite, made usable for a Cholesky factor. One whose eigenvalues are all
    above the floor comes back as it was."""
    cov = np.asarray(cov, dtype=np.float64)
    symmetric = (cov + np.swapaxes(cov, -1, -2)) / 2.0
    values, vectors = np.linalg.eigh(symmetric)
    scale = np.abs(np.diagonal(symmetric, axis1=-2, axis2=-1)).mean(axis=-1)
    floor = relative_floor * np.maximum(scale, 1e-12)
    if (values >= floor[..., None]).all():
        return cov
    values = np.maximum(values, floor[..., None])
    return (vectors * values[..., None, :]) @ np.swapaxes(vectors, -1, -2)


def psd_cholesky(cov: np.ndarray, jitter: float = 1e-9) -> np.ndarray:
    """Lower Cholesky factor of ``cov + jitter·I`` (batched over leading axes); where that fails, of
    :func:`nearest_psd` of ``cov`` instead."""
    cov = np.asarray(cov, dtype=np.float64)
    eye = np.eye(cov.shape[-1])
    try:
        return np.linalg.cholesky(cov + jitter * eye)
    except np.linalg.LinAlgError:
        return np.linalg.cholesky(nearest_psd(cov) + jitter * eye)

def gp_conditional_draws(
    known_latent,
    known_factor: np.ndarray,
    new_factor: np.ndarray,
    ridge: float,
    known_groups: np.ndarray | None = None,
    new_groups: np.ndarray | None = None,
    *,
    n_draws: int | None = None,
    block: int = 16,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`gp_conditional` for many posterior draws of the fitted rows.

    The similarity's solve is shared by every draw; each draw has its own conditional mean and column
    covariance ``Σ``. Draws are taken ``block`` at a time (the conditional mean is linear in the fitted rows,
    so a block rides along as extra columns of one product), so the float64 temporaries are
    ``n_known × block × p``, not ``n_known × n_draws × p``.

    Args:
        known_latent: ``(n_draws, n_known, p)`` fitted rows, one set per draw; or a function of a ``slice`` of
            draws returning those draws' rows (``n_draws`` then required), so the caller need not hold all of
            them at once.
    Returns:
        ``(mean (n_draws, n_new, p) float64, c (n_new,), Σ (n_draws, p, p))``.
    """
    rows_of = known_latent
    if not callable(known_latent):
        rows_of, n_draws = np.asarray(known_latent).__getitem__, len(known_latent)
    elif n_draws is None:
        raise ConfigError("gp_conditional_draws: n_draws is required when known_latent is a function")
    if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or block < 1:
        raise ConfigError(f"block must be an integer >= 1, got {block!r}")
    inverse, factor = _solve_parts(known_factor, new_factor, ridge)
    mean = row_cov = None
    for start in range(0, n_draws, block):
        draws = slice(start, min(start + block, n_draws))
        latent = np.asarray(rows_of(draws), dtype=np.float64)
        size, n_known, width = latent.shape
        wide = latent.transpose(1, 0, 2).reshape(n_known, size * width)
        del latent
        part_mean, centred, projected = _conditional_mean(wide, known_factor, new_factor, inverse, known_groups,
                                                          new_groups)
        del wide
        if mean is None:
            mean = np.empty((n_draws, len(new_factor), width))
            row_cov = np.empty((n_draws, width, width))
        mean[draws] = part_mean.reshape(len(new_factor), size, width).transpose(1, 0, 2)
        centred = centred.reshape(n_known, size, width)
        projected = projected.reshape(-1, size, width)
        solved = np.einsum("rt,tsp->rsp", inverse, projected)
        row_cov[draws] = (np.einsum("nsp,nsq->spq", centred, centred)
                          - np.einsum("rsp,rsq->spq", projected, solved)) / (ridge * n_known)
    # A difference of two Gram matrices: rounding can leave a draw's Σ slightly indefinite (seen on openllm-v2).
    return mean, factor, nearest_psd(row_cov)
