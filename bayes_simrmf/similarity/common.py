"""Numerical constants shared by the similarity modules."""

from __future__ import annotations

import numpy as np

# Relative eigenvalue cut-off below which a component is numerical noise, not part of the spectrum.
_RELATIVE_EIGENVALUE_TOLERANCE = 1e-12
# Rows / columns per block when streaming large float32 matrices through float64 products.
_BLOCK = 8192
# Byte alignment of factor buffers: JAX on a CPU takes an array this aligned without copying it (jax.device_put).
_ALIGNMENT = 64


def aligned_empty(shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
    """An uninitialised C-contiguous array whose data start on a :data:`_ALIGNMENT`-byte boundary, so that
    ``jax.device_put`` on a CPU shares its memory instead of copying it (a fit then holds one copy of a factor)."""
    size = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    buffer = np.empty(size + _ALIGNMENT, np.uint8)
    offset = (-buffer.ctypes.data) % _ALIGNMENT
    return buffer[offset:offset + size].view(dtype).reshape(shape)
