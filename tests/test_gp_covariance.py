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


def test_gp_conditional_draws_in_blocks_is_the_per_draw_conditional():
    """Each draw of the many-draw conditional (taken a block of draws at a time, from an array or from a function
    of the draws) equals the one-draw conditional of that draw's rows, with and without groups."""
    from bayes_simrmf.errors import ConfigError
    from bayes_simrmf.predict.gaussian_process import gp_conditional, gp_conditional_draws, nearest_psd

    rng = np.random.default_rng(1)
    latent = rng.standard_normal((7, 40, 3)).astype(np.float32)
    known_factor, new_factor = rng.standard_normal((40, 5)), rng.standard_normal((6, 5))
    groups = (rng.integers(-1, 3, 40), rng.integers(-1, 4, 6))
    for known_groups, new_groups in ((None, None), groups):
        whole = gp_conditional_draws(latent, known_factor, new_factor, 0.5, known_groups, new_groups)
        lazy = gp_conditional_draws(lambda draws: latent[draws], known_factor, new_factor, 0.5, known_groups,
                                    new_groups, n_draws=7, block=3)
        for first, second in zip(whole, lazy):
            assert np.allclose(first, second, rtol=0, atol=1e-12)
        for draw in range(7):
            mean, factor, cov = gp_conditional(latent[draw], known_factor, new_factor, 0.5, known_groups, new_groups)
            assert np.allclose(whole[0][draw], mean, atol=1e-10)
            assert np.allclose(whole[1], factor, atol=1e-12)
            assert np.allclose(whole[2][draw], nearest_psd(cov), atol=1e-10)
    with pytest.raises(ConfigError, match="n_draws is required"):
        gp_conditional_draws(lambda draws: latent[draws], known_factor, new_factor, 0.5)
    with pytest.raises(ConfigError, match="block must be"):
        gp_conditional_draws(latent, known_factor, new_factor, 0.5, block=0)


def test_sample_posterior_hands_out_every_draw_as_read_only_views_only_on_request():
    """``copy=False`` for every kept draw shares the kept arrays and refuses writes; the default and any subset
    are copies a caller may change without touching the posterior."""
    from bayes_simrmf.inference.samples import SamplePosterior

    draws = {"a": np.arange(24, dtype=np.float32).reshape(2, 3, 4), "b": np.ones((2, 3), np.float32)}
    posterior = SamplePosterior(draws)
    views = posterior.sample(6, copy=False)
    assert np.shares_memory(views["a"], draws["a"]) and np.array_equal(views["a"], draws["a"].reshape(6, 4))
    with pytest.raises(ValueError):
        views["a"][0, 0] = -1.0
    copied = posterior.sample(6)
    copied["a"][0, 0] = -1.0
    assert draws["a"][0, 0, 0] == 0.0 and not np.shares_memory(copied["a"], draws["a"])
    assert not np.shares_memory(posterior.sample(4, seed=3, copy=False)["a"], draws["a"])
