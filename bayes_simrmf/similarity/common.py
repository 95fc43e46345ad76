"""Numerical constants shared by the similarity modules."""

from __future__ import annotations

# Relative eigenvalue cut-off below which a component is numerical noise, not part of the spectrum.
_RELATIVE_EIGENVALUE_TOLERANCE = 1e-12
# Rows / columns per block when streaming large float32 matrices through float64 products.
_BLOCK = 8192
