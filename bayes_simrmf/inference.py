"""Stochastic variational inference for :func:`bayes_simrmf.model.simrmf_model`.

* ``guide="delta"``: :class:`numpyro.infer.autoguide.AutoDelta`, i.e. MAP, the paper's point estimate;
* ``guide="normal"``: mean-field Gaussian (:class:`AutoNormal`);
* ``guide="lowrank"``: low-rank multivariate normal (:class:`AutoLowRankMultivariateNormal`).

Steps are jit-compiled and run in chunks through ``lax.scan`` (one Python round trip per
chunk, not per step); a progress bar shows the loss; the run stops at ``max_steps`` or once
the relative change of the chunk-mean loss falls below ``tol``. A NaN or infinite loss
stops the run with :class:`~bayes_simrmf.errors.FitError` naming the step.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax
from numpyro.infer import SVI, Trace_ELBO
from numpyro.infer.autoguide import AutoDelta, AutoLowRankMultivariateNormal, AutoNormal
from numpyro.infer.initialization import init_to_value
from tqdm.auto import tqdm

from bayes_simrmf.errors import ConfigError, FitError
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

GUIDES = ("delta", "normal", "lowrank")
LAYOUTS = ("auto", "dense", "pairs")


@dataclass(frozen=True)
class InferenceConfig:
    """Settings of SVI (not of the model).

    Attributes:
        guide: "delta" (MAP), "normal" (mean-field) or "lowrank".
        learning_rate: Adam step size.
        max_steps: upper bound on SVI steps.
        tol: stop when the relative change of the chunk-mean loss is below this.
        chunk: steps per jit-compiled chunk (and per convergence check).
        lowrank_rank: rank of the low-rank guide's covariance.
        num_particles: ELBO particles per step (ignored by the delta guide).
        layout: "dense" (masked block product), "pairs" (gather) or "auto" (by density).
        dense_min_density: with ``layout="auto"``, use dense when observed/block cells ≥ this.
        dense_max_cells: never build a dense block larger than this many cells.
        init_scale: sd of the random initial factor entries (must be > 0: zero is a saddle).
        progress: show a progress bar.
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
        seed: seeds the initial factors and the ELBO's random draws.
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
    if len(np.unique(keys)) != len(keys):
        _, first, counts = np.unique(keys, return_index=True, return_counts=True)
        repeated = first[counts > 1]
        raise ConfigError(
            f"{int((counts - 1).sum())} (llm, item) pairs are repeated, e.g. (llm, item) = "
            f"{[(int(llm[r]), int(item[r])) for r in repeated[:5]]}; each pair must be observed once"
        )
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
    optimizer = optax.adam(config.learning_rate)
    elbo = Trace_ELBO(num_particles=1 if config.guide == "delta" else config.num_particles)
    svi = SVI(simrmf_model, guide, optimizer, loss=elbo)
    model_args = (n_llms, n_items, layout, model_config)
    model_kwargs = {"correct": observed, "similarity": similarity, "item_group": item_group}
    # Arrays enter the compiled step as arguments (see SimilarityInputs); sizes and configs stay static.
    data = (layout, observed, similarity, item_group)

    start = time.perf_counter()
    rng_key = jax.random.PRNGKey(seed)
    state = svi.init(rng_key, *model_args, **model_kwargs)

    @functools.partial(jax.jit, static_argnums=2)
    def run_chunk(svi_state, data, length):
        chunk_layout, chunk_observed, chunk_similarity, chunk_item_group = data

        def one_step(step_state, _):
            return svi.update(
                step_state, n_llms, n_items, chunk_layout, model_config,
                correct=chunk_observed, similarity=chunk_similarity, item_group=chunk_item_group,
            )

        return jax.lax.scan(one_step, svi_state, None, length=length)

    losses: list[np.ndarray] = []
    converged = False
    previous_mean = None
    # Whole chunks, then a shorter last one, so max_steps is an exact upper bound.
    chunk_lengths = [config.chunk] * (config.max_steps // config.chunk)
    if config.max_steps % config.chunk:
        chunk_lengths.append(config.max_steps % config.chunk)
    bar = tqdm(total=config.max_steps, desc=description, disable=not config.progress, unit="step", leave=False)
    try:
        for chunk_index, length in enumerate(chunk_lengths):
            new_state, chunk_losses = run_chunk(state, data, length)
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
            chunk_mean = float(np.mean(chunk_losses))
            bar.update(length)
            bar.set_postfix(loss=f"{chunk_mean:.4g}")
            if previous_mean is not None:
                relative_change = abs(previous_mean - chunk_mean) / max(abs(chunk_mean), 1e-12)
                if relative_change < config.tol:
                    converged = True
                    break
            previous_mean = chunk_mean
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
    )
