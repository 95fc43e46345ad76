"""Settings of inference (:class:`InferenceConfig`) and what a fit returns (:class:`SVIResult`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from bayes_simrmf.errors import ConfigError
from bayes_simrmf.options import GUIDES, LAYOUTS


#: Default final learning rate (relative) of minibatch runs: of exponential decay to 0.1, 0.01 and 0.001,
#: cosine and linear decay, it came closest to the full-batch optimum (300 x 600 synthetic problem, batch n/10,
#: 3,000 steps); experiments/results/bench_minibatch.md shows a constant rate stopping short.
MINIBATCH_LR_DECAY = 0.01


@dataclass(frozen=True)
class InferenceConfig:
    """Settings of SVI (not of the model).

    Attributes:
        guide: "delta" (MAP), "normal" (mean-field) or "lowrank".
        learning_rate: Adam step size.
        max_steps: upper bound on SVI steps.
        tol: stop when the relative change of the chunk-mean loss is below this (with minibatches,
            the change plus its noise; see the module docstring).
        chunk: steps per jit-compiled chunk (and per convergence check).
        lowrank_rank: rank of the low-rank guide's covariance.
        num_particles: ELBO particles per step (ignored by the delta guide).
        layout: "dense" (masked block product), "pairs" (gather) or "auto" (by density).
        dense_min_density: with ``layout="auto"``, use dense when observed/block cells ≥ this.
        dense_max_cells: never build a dense block larger than this many cells.
        init_scale: sd of the random initial factor entries (must be > 0: zero is a saddle).
        progress: show a progress bar.
        batch_size: observed pairs per step (minibatch SVI, pairs layout), or None for the full
            batch. Not smaller than the number of pairs: full batch, with a warning.
        lr_decay: the learning rate decays exponentially to ``learning_rate * lr_decay`` at
            ``max_steps``; None means 0.01 for a noisy loss (minibatches, Gaussian guides) and a
            constant rate for a full-batch MAP.
    """

    guide: Literal["delta", "normal", "lowrank"] = "delta"
    learning_rate: float = 0.05
    max_steps: int = 3000
    tol: float = 1e-5
    chunk: int = 50
    lowrank_rank: int = 8
    num_particles: int = 1
    layout: Literal["auto", "dense", "pairs"] = "auto"
    dense_min_density: float = 0.1
    dense_max_cells: int = 50_000_000
    init_scale: float = 0.1
    progress: bool = True
    batch_size: int | None = None
    lr_decay: float | None = None

    def __post_init__(self) -> None:
        if self.guide not in GUIDES:
            raise ConfigError(f"guide must be one of {', '.join(GUIDES)}; got {self.guide!r}")
        if self.layout not in LAYOUTS:
            raise ConfigError(f"layout must be one of {', '.join(LAYOUTS)}; got {self.layout!r}")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ConfigError(f"learning_rate must be positive, got {self.learning_rate!r}")
        for name in ("max_steps", "chunk", "lowrank_rank", "num_particles", "dense_max_cells"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.tol < 0:
            raise ConfigError(f"tol must be >= 0, got {self.tol!r}")
        if not self.init_scale > 0:
            raise ConfigError(f"init_scale must be > 0 (zero factors are a saddle point), got {self.init_scale!r}")
        if self.batch_size is not None:
            if isinstance(self.batch_size, (bool, np.bool_)) or not isinstance(self.batch_size, (int, np.integer)) \
                    or self.batch_size < 1:
                raise ConfigError(
                    f"batch_size must be a positive integer or None (full batch), got {self.batch_size!r}"
                )
            if self.layout == "dense":
                raise ConfigError(
                    f"batch_size={self.batch_size} draws minibatches of pairs, which needs layout='pairs' or 'auto'; "
                    "got layout='dense'"
                )
        if self.lr_decay is not None and not (0 < self.lr_decay <= 1):
            raise ConfigError(f"lr_decay must be in (0, 1] or None, got {self.lr_decay!r}")

    def noisy_loss(self, minibatch: bool) -> bool:
        """Whether the step losses are stochastic estimates: minibatches or a Gaussian guide's draws."""
        return minibatch or self.guide != "delta"

    def effective_lr_decay(self, minibatch: bool) -> float:
        """The decay factor used: ``lr_decay``, or its default (0.01 for a noisy loss, else 1: constant)."""
        if self.lr_decay is not None:
            return float(self.lr_decay)
        return MINIBATCH_LR_DECAY if self.noisy_loss(minibatch) else 1.0


@dataclass
class SVIResult:
    """What a run of SVI leaves: guide parameters, point values, the loss trace.

    Attributes:
        guide: the NumPyro autoguide (bound to the model and its data).
        guide_params: the optimised variational parameters.
        point: posterior median of every latent site (for delta: the MAP), numpy arrays.
        losses: ``(n_steps,)`` loss per step (negative ELBO; for delta the negative log joint).
        converged: whether the tolerance was met before ``max_steps``.
        layout: "dense" or "pairs", the layout used.
        seconds: wall time of the optimisation, compile included.
        model_args, model_kwargs: the model's arguments with the full data (never a minibatch).
        batch_size: pairs per step, or None for full batch (then ``losses`` are exact; with
            minibatches each is an unbiased estimate of the full-batch loss at that step).
    """

    guide: Any
    guide_params: dict
    point: dict[str, np.ndarray]
    losses: np.ndarray
    converged: bool
    layout: str
    seconds: float
    model_args: tuple
    model_kwargs: dict
    batch_size: int | None = None


