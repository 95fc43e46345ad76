"""When SVI stops: a relative change of the smoothed loss, robust to a noisy ELBO."""

from __future__ import annotations

import math

import numpy as np


def _stop_rule(previous: np.ndarray, current: np.ndarray, tol: float, noisy: bool, final: bool) -> bool:
    """Whether two consecutive chunks of step losses show convergence (see the module docstring).

    Args:
        previous, current: ``(chunk,)`` losses of two consecutive chunks.
        tol: relative tolerance on the change of the chunk-mean loss.
        noisy: the losses are stochastic estimates (minibatch or Gaussian guide): add their noise to the test.
        final: the run reached ``max_steps`` (minibatch: converged if the change is within its noise).
    """
    change = abs(float(np.mean(previous)) - float(np.mean(current)))
    scale = max(abs(float(np.mean(current))), 1e-12)
    if not noisy:
        return change / scale < tol
    if len(previous) < 2 or len(current) < 2:
        return False  # no estimate of the noise: never claim convergence
    noise = 2.0 * math.sqrt(np.var(previous, ddof=1) / len(previous) + np.var(current, ddof=1) / len(current))
    if final:
        return change <= noise + tol * scale
    return change + noise < tol * scale




def divergence(losses: np.ndarray, window: int = 50) -> str | None:
    """How the loss diverged, or None: a non-finite loss, or a final loss (the mean of the last ``window`` steps,
    at most half the trace, which smooths minibatch noise) more than twice as far above zero as the first step's, i.e. optimisation made
    the objective far worse than where it started (a learning rate too large, typically)."""
    losses = np.asarray(losses, dtype=np.float64).ravel()
    if losses.size == 0:
        return None
    if not np.isfinite(losses).all():
        return f"the loss became {losses[~np.isfinite(losses)][0]}"
    start, final = float(losses[0]), float(np.mean(losses[-min(window, max(1, losses.size // 2)):]))
    if final > start + max(abs(start), 1.0):
        return f"the loss rose from {start:.6g} at the first step to {final:.6g} at the end"
    return None
