"""Numerical safety of the Gaussian-process fold-in's covariances."""

from __future__ import annotations

import numpy as np
import pytest


def test_psd_cholesky_mends_a_covariance_left_indefinite_by_rounding():
    """A batch of covariances, one of them with an eigenvalue a little below zero (as a difference of two Gram
    matrices can leave it): plain Cholesky refuses the batch; psd_cholesky factors it, leaves the positive definite
    ones as they were and raises only the negative eigenvalue."""
    from bayes_simrmf.predict.gaussian_process import nearest_psd, psd_cholesky

    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.standard_normal((4, 4)))[0]
    good = basis @ np.diag([2.0, 1.0, 0.5, 0.1]) @ basis.T
    bad = basis @ np.diag([2.0, 1.0, 0.5, -1e-6]) @ basis.T
    batch = np.stack([good, bad])
    with pytest.raises(np.linalg.LinAlgError):
        np.linalg.cholesky(batch + 1e-9 * np.eye(4))
    chol = psd_cholesky(batch)
    assert np.allclose(chol[0] @ chol[0].T, good, atol=1e-8)
    mended = chol[1] @ chol[1].T
    assert np.linalg.eigvalsh(mended).min() > 0
    assert np.allclose(mended, bad, atol=1e-5)
    assert nearest_psd(good) is not None and np.array_equal(nearest_psd(good), good)
