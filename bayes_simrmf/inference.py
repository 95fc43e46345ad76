"""Stochastic variational inference for :func:`bayes_simrmf.model.simrmf_model`.

* ``guide="delta"``: :class:`numpyro.infer.autoguide.AutoDelta`, i.e. MAP, the paper's point estimate;
* ``guide="normal"``: mean-field Gaussian (:class:`AutoNormal`);
* ``guide="lowrank"``: low-rank multivariate normal (:class:`AutoLowRankMultivariateNormal`).

Steps are jit-compiled and run in chunks through ``lax.scan`` (one Python round trip per
chunk, not per step); a progress bar shows the loss; the run stops at ``max_steps`` or once
the relative change of the chunk-mean loss falls below ``tol``. A NaN or infinite loss
stops the run with :class:`~bayes_simrmf.errors.FitError` naming the step.

Noisy losses. The Gaussian guides (``normal``, ``lowrank``) estimate the ELBO from a draw per step,
and minibatches estimate the likelihood from a sample of pairs; either way the step loss is noisy,
a constant-rate run jitters around the optimum, and a plain relative-change test never passes
(the calibration runs of the Gaussian guides ended unconverged at the step cap). Both rules below
therefore apply to every noisy run, not only to minibatches.

Minibatches (``InferenceConfig.batch_size``). For observed sets too large for a full-batch step
(10^7 pairs), each step draws ``batch_size`` of the ``n_pairs`` observed pairs uniformly at random
(with replacement, inside the compiled scan, from a key derived from the seed) and scales their
Bernoulli log-likelihood by ``n_pairs / batch_size``, so the step's loss and gradient are unbiased
estimates of the full-batch ones; priors and similarity potentials are global terms, computed once
per step and never scaled. Two rules change because the loss is noisy (minibatch or Gaussian guide):

* learning rate: the gradient's noise keeps a constant-rate run jittering around the optimum (2-3 %
  above the full-batch loss in experiments/results/bench_minibatch.md), so by default
  (``lr_decay=None``) the rate decays exponentially to 1 % of ``learning_rate`` at ``max_steps``
  (``optax.exponential_decay``; a Gaussian guide in full batch holds the rate for the first half of
  the run, see :func:`learning_rate_schedule`); a full-batch MAP (delta guide) keeps a constant rate
  unless ``lr_decay`` is set.
* stopping: the smoothed loss is the mean over each chunk of steps, with standard error
  ``sd / sqrt(chunk)``. The run stops early only when the change between two chunk means plus
  twice its standard error is below ``tol`` times the loss (so noise cannot stop it by chance);
  usually it runs to ``max_steps``, where the schedule has brought the rate down, and counts as
  converged when the last change is within twice its standard error plus ``tol`` (the smoothed
  loss no longer moves measurably).

:func:`select_device` picks the JAX device (CPU or GPU) a fit runs on.
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax
from numpyro.infer import SVI, Trace_ELBO
from numpyro.infer.autoguide import AutoDelta, AutoLowRankMultivariateNormal, AutoNormal
from numpyro.infer.initialization import init_to_value
from numpyro.infer.util import log_density
from tqdm.auto import tqdm

from bayes_simrmf.errors import ConfigError, FitError
from bayes_simrmf.options import DEVICES, GUIDES, LAYOUTS  # noqa: F401 (re-exported)
from bayes_simrmf.model import (
    INTERCEPT,
    ITEM_BIAS,
    ITEM_BIAS_SCALE,
    ITEM_FACTORS,
    ITEM_GROUP_MEAN,
    LLM_BIAS,
    LLM_BIAS_SCALE,
    LLM_FACTORS,
    DenseLayout,
    ModelConfig,
    PairsLayout,
    SimilarityInputs,
    simrmf_model,
)

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


def choose_layout(
    llm: np.ndarray, item: np.ndarray, config: InferenceConfig
) -> tuple[str, int, int]:
    """Pick "dense" or "pairs" for observed pairs ``(llm, item)`` (int arrays).

    Returns the layout and the block shape (LLMs and items with index below these hold
    all pairs; the model orders entities holding data first).
    """
    n_block_llms = int(llm.max()) + 1 if len(llm) else 0
    n_block_items = int(item.max()) + 1 if len(item) else 0
    cells = n_block_llms * n_block_items
    if config.layout != "auto":
        if config.layout == "dense" and cells > config.dense_max_cells:
            raise ConfigError(
                f"layout='dense' needs a {n_block_llms} x {n_block_items} block ({cells:,} cells), "
                f"more than dense_max_cells={config.dense_max_cells:,}; use layout='pairs'"
            )
        return config.layout, n_block_llms, n_block_items
    density = len(llm) / cells if cells else 0.0
    dense = density >= config.dense_min_density and cells <= config.dense_max_cells
    return ("dense" if dense else "pairs"), n_block_llms, n_block_items


def initial_values(
    n_llms: int, n_items: int, model_config: ModelConfig, correct: np.ndarray, scale: float, seed: int
) -> dict[str, np.ndarray]:
    """Starting point: intercept at the logit of the mean score, zero biases, small random factors."""
    rng = np.random.default_rng(seed)
    values: dict[str, np.ndarray] = {}
    if model_config.dim:
        values[LLM_FACTORS] = (scale * rng.standard_normal((n_llms, model_config.dim))).astype(np.float32)
        values[ITEM_FACTORS] = (scale * rng.standard_normal((n_items, model_config.dim))).astype(np.float32)
    if model_config.biases:
        mean = float(np.clip(np.mean(correct), 1e-3, 1 - 1e-3))
        values[INTERCEPT] = np.float32(math.log(mean / (1 - mean)))
        values[LLM_BIAS] = np.zeros(n_llms, np.float32)
        values[ITEM_BIAS] = np.zeros(n_items, np.float32)
        if model_config.n_item_groups:
            values[ITEM_GROUP_MEAN] = np.zeros(model_config.n_item_groups, np.float32)
        if model_config.bias_scale is None:
            values[LLM_BIAS_SCALE] = np.float32(1.0)
            values[ITEM_BIAS_SCALE] = np.float32(1.0)
    return values


def select_device(name: str = "auto") -> jax.Device:
    """The JAX device a fit runs on: ``"auto"`` (JAX's default backend), ``"cpu"`` or ``"gpu"``.

    Use it as ``with jax.default_device(select_device("gpu")): ...``: arrays the fit creates and
    its compiled steps then live on that device.

    Raises:
        ConfigError: ``name`` is not one of :data:`DEVICES`, or JAX has no device of that platform
            (the message names what JAX sees and how to install a CUDA build).
    """
    if name not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICES)}; got {name!r}")
    if name == "auto":
        return jax.devices()[0]
    try:
        return jax.devices(name)[0]
    except RuntimeError:
        seen = ", ".join(sorted({f"{d.platform}:{d.id}" for d in jax.devices()}))
        raise ConfigError(
            f"device {name!r} requested but JAX (jax {jax.__version__}, default backend "
            f"{jax.default_backend()!r}) sees only {seen}; for an NVIDIA GPU install a CUDA build of JAX, "
            "pip install -U 'jax[cuda12]' (or 'jax[cuda13]' with a CUDA 13 driver), or use device 'cpu' or 'auto'"
        ) from None


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


def negative_log_joint(result: SVIResult, point: dict | None = None) -> float:
    """The full-data negative log joint density at ``point`` (default: ``result.point``).

    This is the delta guide's full-batch loss (the paper's objective up to a constant), evaluated on
    every observed pair whatever ``batch_size`` the run used, so minibatch and full-batch solutions
    compare on one scale.

    Args:
        result: a finished run (its model arguments hold the full data).
        point: site name → value, e.g. another run's ``point``; None uses ``result.point``.
    """
    values = {name: jnp.asarray(value) for name, value in (result.point if point is None else point).items()}
    log_joint, _ = log_density(simrmf_model, result.model_args, result.model_kwargs, values)
    return -float(log_joint)


def make_guide(config: InferenceConfig, init_values: dict):
    """The autoguide named by ``config.guide``, started at ``init_values``."""
    init_loc_fn = init_to_value(values=init_values)
    if config.guide == "delta":
        return AutoDelta(simrmf_model, init_loc_fn=init_loc_fn)
    if config.guide == "normal":
        return AutoNormal(simrmf_model, init_loc_fn=init_loc_fn, init_scale=0.01)
    return AutoLowRankMultivariateNormal(
        simrmf_model, init_loc_fn=init_loc_fn, rank=config.lowrank_rank, init_scale=0.01
    )


def run_svi(
    n_llms: int,
    n_items: int,
    llm: np.ndarray,
    item: np.ndarray,
    correct: np.ndarray,
    model_config: ModelConfig,
    config: InferenceConfig,
    *,
    similarity: SimilarityInputs | None = None,
    item_group: np.ndarray | None = None,
    seed: int = 0,
    description: str = "fit",
    on_chunk: Callable[[int, np.ndarray], None] | None = None,
) -> SVIResult:
    """Fit the model to observed pairs by SVI.

    Args:
        n_llms, n_items: entities in the model; those with data must have the lowest indices
            when the dense layout is to be used (see :class:`~bayes_simrmf.model.DenseLayout`).
        llm, item: ``(n_pairs,)`` int indices of the observed pairs.
        correct: ``(n_pairs,)`` 0/1 scores.
        model_config, config: model and inference settings.
        similarity: Gram-potential inputs (SimRMF), or None (MF).
        item_group: ``(n_items,)`` group codes when ``model_config.n_item_groups > 0``.
        seed: seeds the initial factors, the ELBO's random draws and the minibatches.
        on_chunk: called after each chunk with the number of steps done so far and that chunk's
            ``(chunk,)`` losses (the chunk has finished computing), e.g. to log or time progress.
    """
    llm = np.asarray(llm, dtype=np.int32)
    item = np.asarray(item, dtype=np.int32)
    correct = np.asarray(correct)
    if not (len(llm) == len(item) == len(correct)) or len(llm) == 0:
        raise ConfigError(
            f"llm, item and correct must be non-empty and of equal length; got {len(llm)}, {len(item)}, {len(correct)}"
        )
    for name, codes, size in (("llm", llm, n_llms), ("item", item, n_items)):
        outside = (codes < 0) | (codes >= size)
        if outside.any():
            rows = np.flatnonzero(outside)
            raise ConfigError(
                f"{name} indices must lie in [0, {size}); {len(rows)} do not, e.g. rows {rows[:5].tolist()} "
                f"with values {codes[rows[:5]].tolist()}"
            )
    keys = llm.astype(np.int64) * n_items + item
    # A sort finds repeats in ~1 s at 10^7 pairs; np.unique (hash-based in numpy 2) took ~15 s there.
    sorted_keys = np.sort(keys)
    if np.any(sorted_keys[1:] == sorted_keys[:-1]):
        _, first, counts = np.unique(keys, return_index=True, return_counts=True)
        repeated = first[counts > 1]
        raise ConfigError(
            f"{int((counts - 1).sum())} (llm, item) pairs are repeated, e.g. (llm, item) = "
            f"{[(int(llm[r]), int(item[r])) for r in repeated[:5]]}; each pair must be observed once"
        )
    del keys, sorted_keys  # 16 bytes per pair, not needed during the fit
    if model_config.n_item_groups:
        if item_group is None or len(item_group) != n_items:
            raise ConfigError(
                f"n_item_groups={model_config.n_item_groups} needs one group code per item ({n_items}); got "
                f"{None if item_group is None else len(item_group)}"
            )
        item_group = np.asarray(item_group, dtype=np.int32)
        if item_group.min() < 0 or item_group.max() >= model_config.n_item_groups:
            raise ConfigError(f"item group codes must lie in [0, {model_config.n_item_groups})")
        item_group = jnp.asarray(item_group)
    else:
        item_group = None
    n_pairs = len(llm)
    batch_size = config.batch_size
    if batch_size is not None and batch_size >= n_pairs:
        warnings.warn(
            f"batch_size={batch_size} is not smaller than the {n_pairs:,} observed pairs: fitting with the full batch",
            stacklevel=2,
        )
        batch_size = None
    if batch_size is not None:
        # Minibatches are gathered from the pair indices: never a dense block.
        layout_name, n_block_llms, n_block_items = "pairs", 0, 0
    else:
        layout_name, n_block_llms, n_block_items = choose_layout(llm, item, config)
    if layout_name == "dense":
        mask = np.zeros((n_block_llms, n_block_items), dtype=bool)
        mask[llm, item] = True
        dense_correct = np.zeros((n_block_llms, n_block_items), dtype=np.float32)
        dense_correct[llm, item] = correct
        layout = DenseLayout(mask=jnp.asarray(mask))
        observed = jnp.asarray(dense_correct)
    else:
        layout = PairsLayout(llm=jnp.asarray(llm), item=jnp.asarray(item))
        observed = jnp.asarray(correct, dtype=jnp.float32)

    init = initial_values(n_llms, n_items, model_config, correct, config.init_scale, seed)
    guide = make_guide(config, init)
    optimizer = optax.adam(learning_rate_schedule(config, minibatch=batch_size is not None))
    elbo = Trace_ELBO(num_particles=1 if config.guide == "delta" else config.num_particles)
    svi = SVI(simrmf_model, guide, optimizer, loss=elbo)
    model_args = (n_llms, n_items, layout, model_config)
    model_kwargs = {"correct": observed, "similarity": similarity, "item_group": item_group}
    # Arrays enter the compiled step as arguments (see SimilarityInputs); sizes and configs stay static.
    data = (layout, observed, similarity, item_group)

    start = time.perf_counter()
    rng_key = jax.random.PRNGKey(seed)
    if batch_size is None:
        state = svi.init(rng_key, *model_args, **model_kwargs)
    else:
        # Initialise on one minibatch: the start is init_values anyway, and peak memory stays O(batch_size).
        init_layout = PairsLayout(llm=layout.llm[:batch_size], item=layout.item[:batch_size])
        state = svi.init(
            rng_key, n_llms, n_items, init_layout, model_config, correct=observed[:batch_size],
            similarity=similarity, item_group=item_group, likelihood_scale=n_pairs / batch_size,
        )
    # Minibatch draws have their own key stream, so the ELBO's draws follow svi.update as in full batch.
    batch_root_key = jax.random.fold_in(rng_key, 1)

    @functools.partial(jax.jit, static_argnums=3)
    def run_chunk(svi_state, data, chunk_key, length):
        chunk_layout, chunk_observed, chunk_similarity, chunk_item_group = data

        def one_step(step_state, _):
            return svi.update(
                step_state, n_llms, n_items, chunk_layout, model_config,
                correct=chunk_observed, similarity=chunk_similarity, item_group=chunk_item_group,
            )

        def one_minibatch_step(step_state, step_key):
            batch_layout, batch_observed = draw_minibatch(step_key, chunk_layout, chunk_observed, batch_size)
            return svi.update(
                step_state, n_llms, n_items, batch_layout, model_config,
                correct=batch_observed, similarity=chunk_similarity, item_group=chunk_item_group,
                likelihood_scale=n_pairs / batch_size,
            )

        if batch_size is None:
            return jax.lax.scan(one_step, svi_state, None, length=length)
        return jax.lax.scan(one_minibatch_step, svi_state, jax.random.split(chunk_key, length))

    losses: list[np.ndarray] = []
    converged = False
    # Whole chunks, then a shorter last one, so max_steps is an exact upper bound.
    chunk_lengths = [config.chunk] * (config.max_steps // config.chunk)
    if config.max_steps % config.chunk:
        chunk_lengths.append(config.max_steps % config.chunk)
    bar = tqdm(total=config.max_steps, desc=description, disable=not config.progress, unit="step", leave=False)
    try:
        for chunk_index, length in enumerate(chunk_lengths):
            new_state, chunk_losses = run_chunk(
                state, data, None if batch_size is None else jax.random.fold_in(batch_root_key, chunk_index), length
            )
            chunk_losses = np.asarray(chunk_losses)
            bad = np.flatnonzero(~np.isfinite(chunk_losses))
            if bad.size:
                step = chunk_index * config.chunk + int(bad[0]) + 1
                raise FitError(
                    f"the loss became {chunk_losses[bad[0]]} at step {step} (guide={config.guide}, "
                    f"learning_rate={config.learning_rate}); try a smaller learning rate "
                    f"(e.g. --learning-rate {config.learning_rate / 5:g}) or a larger lambda_reg"
                )
            state = new_state
            losses.append(chunk_losses)
            if on_chunk is not None:
                on_chunk(sum(len(chunk) for chunk in losses), chunk_losses)
            bar.update(length)
            bar.set_postfix(loss=f"{float(np.mean(chunk_losses)):.4g}")
            if len(losses) > 1:
                final = chunk_index == len(chunk_lengths) - 1
                if _stop_rule(losses[-2], chunk_losses, config.tol, noisy=config.noisy_loss(batch_size is not None),
                              final=final):
                    converged = True
                    break
    finally:
        bar.close()
    params = svi.get_params(state)
    point = {
        name: np.asarray(value)
        for name, value in guide.median(params).items()
    }
    seconds = time.perf_counter() - start
    return SVIResult(
        guide=guide,
        guide_params=params,
        point=point,
        losses=np.concatenate(losses),
        converged=converged,
        layout=layout_name,
        seconds=seconds,
        model_args=model_args,
        model_kwargs=model_kwargs,
        batch_size=batch_size,
    )
