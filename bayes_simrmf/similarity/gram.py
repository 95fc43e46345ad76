"""The Gram-vs-√S potential ‖F Fᵀ − s·√S‖², computed through the factors (and its dense reference)."""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np

from bayes_simrmf.errors import DataError
from bayes_simrmf.similarity.common import _BLOCK


# On GPUs JAX multiplies float32 matrices in TF32 (~1e-3 relative error) by default; the identity below subtracts
# large terms, so full float32 precision is requested explicitly.
_FULL_PRECISION = jax.lax.Precision.HIGHEST


def gram_fro2(sqrt_sim_factor: np.ndarray) -> float:
    """``‖WᵀW‖²_F = ‖W Wᵀ‖²_F = ‖√S‖²_F`` for a factor ``W`` (n, k): the constant of the potential.

    Accumulated in float64 over row blocks, so the only float64 temporaries are one block and the (k, k) Gram
    matrix, never a float64 copy of the whole factor.
    """
    factor = np.asarray(sqrt_sim_factor)
    if factor.ndim != 2:
        raise DataError(f"sqrt_sim_factor: expected a 2-D array, got shape {factor.shape}")
    gram = np.zeros((factor.shape[1], factor.shape[1]))
    for start in range(0, factor.shape[0], _BLOCK):
        block = np.asarray(factor[start:start + _BLOCK], dtype=np.float64)
        gram += block.T @ block
    return float(np.sum(gram**2))


def gram_mismatch(
    latent: jax.Array, sqrt_sim_factor: jax.Array, WtW_fro2: float | jax.Array | None = None
) -> jax.Array:
    """``‖X Xᵀ − W Wᵀ‖²_F`` through the low-rank identity, never forming an n × n matrix.

    ``‖XᵀX‖²_F − 2‖WᵀX‖²_F + ‖WᵀW‖²_F``: O(n·d·k) time, O((d+k)²) memory, float32, jit- and grad-able.

    Args:
        latent: ``X`` of shape ``(n, d)``.
        sqrt_sim_factor: ``W`` of shape ``(n, k)`` with ``W Wᵀ = √S``.
        WtW_fro2: the constant ``‖WᵀW‖²_F`` if precomputed (see :func:`gram_fro2`; saves the O(n·k²) term when
            the potential is evaluated many times), else computed here.

    Returns:
        A float32 scalar. Note: it is a difference of large terms, so its absolute float32 error scales with
        ``‖XᵀX‖²_F``, not with the (possibly small) mismatch itself.
    """
    latent_fro2, cross_fro2, factor_fro2 = _gram_terms(latent, sqrt_sim_factor, WtW_fro2)
    return latent_fro2 - 2.0 * cross_fro2 + factor_fro2


def _gram_terms(latent, sqrt_sim_factor, WtW_fro2=None) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(‖XᵀX‖²_F, ‖WᵀX‖²_F, ‖WᵀW‖²_F)`` in float32 at full matmul precision."""
    latent = jnp.asarray(latent, dtype=jnp.float32)
    sqrt_sim_factor = jnp.asarray(sqrt_sim_factor, dtype=jnp.float32)
    latent_gram = jnp.matmul(latent.T, latent, precision=_FULL_PRECISION)  # (d, d)
    cross = jnp.matmul(sqrt_sim_factor.T, latent, precision=_FULL_PRECISION)  # (k, d)
    if WtW_fro2 is None:
        factor_gram = jnp.matmul(sqrt_sim_factor.T, sqrt_sim_factor, precision=_FULL_PRECISION)  # (k, k)
        WtW_fro2 = jnp.sum(factor_gram**2)
    return jnp.sum(latent_gram**2), jnp.sum(cross**2), jnp.asarray(WtW_fro2, dtype=jnp.float32)


def scaled_gram_mismatch(latent: jax.Array, sqrt_sim_factor: jax.Array, WtW_fro2: float | jax.Array | None = None) -> jax.Array:
    """``min_{s ≥ 0} ‖X Xᵀ − s·W Wᵀ‖²_F = ‖XᵀX‖²_F − ‖WᵀX‖⁴_F / ‖WᵀW‖²_F`` (low-rank, exact).

    The scale ``s`` of the similarity is profiled out: its optimum ``‖WᵀX‖²/‖WᵀW‖²`` is closed
    form (the MAP of a scale with a flat prior), so only the *shape* of ``√S`` is matched, not
    its units, which are arbitrary (a cosine's square root has nothing to do with logits).
    """
    latent_fro2, cross_fro2, factor_fro2 = _gram_terms(latent, sqrt_sim_factor, WtW_fro2)
    return latent_fro2 - cross_fro2**2 / factor_fro2


def gram_mismatch_dense(latent: jax.Array, sqrt_sim: jax.Array) -> jax.Array:
    """Reference ``‖X Xᵀ − √S‖²_F`` with the dense ``√S`` (n, n): O(n²) memory, for tests and small n only."""
    latent = jnp.asarray(latent, dtype=jnp.float32)
    residual = jnp.matmul(latent, latent.T, precision=_FULL_PRECISION) - jnp.asarray(sqrt_sim, dtype=jnp.float32)
    return jnp.sum(residual**2)


