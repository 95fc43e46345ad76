"""Minibatches of training pairs and the learning-rate schedule."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import optax

from bayes_simrmf.model import (
    PairsLayout,
)
from bayes_simrmf.inference.config import InferenceConfig


def draw_minibatch(
    key: jax.Array, layout: PairsLayout, correct: jnp.ndarray, batch_size: int
) -> tuple[PairsLayout, jnp.ndarray]:
    """``batch_size`` observed pairs drawn uniformly at random, with replacement.

    With replacement because it costs O(batch_size) whatever the number of pairs (a subset without
    replacement needs a permutation of all of them each step); every draw is uniform, so
    ``n_pairs / batch_size`` times the minibatch log-likelihood is an unbiased estimate of the
    full one (duplicates are rare when ``batch_size`` is much smaller than ``n_pairs``).

    Args:
        key: JAX PRNG key.
        layout: all observed pairs, ``(n_pairs,)`` index arrays.
        correct: ``(n_pairs,)`` float32 0/1 scores.
        batch_size: pairs to draw.
    Returns:
        The minibatch's layout (``(batch_size,)`` arrays) and its ``(batch_size,)`` scores.
    """
    rows = jax.random.randint(key, (batch_size,), 0, correct.shape[0])
    return PairsLayout(llm=layout.llm[rows], item=layout.item[rows]), correct[rows]


def effective_batch_size(batch_size: int | None, n_pairs: int) -> int | None:
    """``batch_size``, or None (full batch, with a warning) when it is not smaller than ``n_pairs``.

    The warning points at the caller of :func:`~bayes_simrmf.inference.run_svi`.
    """
    if batch_size is not None and batch_size >= n_pairs:
        warnings.warn(
            f"batch_size={batch_size} is not smaller than the {n_pairs:,} observed pairs: fitting with the full batch",
            stacklevel=3,
        )
        return None
    return batch_size


def learning_rate_schedule(config: InferenceConfig, minibatch: bool):
    """Adam's step size: constant for a full-batch MAP; for a noisy loss it decays exponentially to
    ``learning_rate * lr_decay`` at ``max_steps`` (a constant rate keeps jittering around the optimum).

    A Gaussian guide (full batch) holds the rate for the first half of the run and decays over the
    second: its scales start small and must first travel to the posterior's spread; decaying from
    the first step froze them early (intervals of a short fit came out too narrow).
    """
    decay = config.effective_lr_decay(minibatch)
    if decay == 1.0:
        return config.learning_rate
    if minibatch or config.guide == "delta":
        return optax.exponential_decay(config.learning_rate, config.max_steps, decay)
    hold = config.max_steps // 2
    return optax.join_schedules(
        [optax.constant_schedule(config.learning_rate),
         optax.exponential_decay(config.learning_rate, max(config.max_steps - hold, 1), decay)],
        [hold],
    )


