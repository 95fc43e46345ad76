"""Stochastic variational inference for :func:`bayes_simrmf.model.simrmf_model` (:func:`run_svi`)."""

from __future__ import annotations

import functools
import time
import warnings
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from numpyro.infer import SVI, Trace_ELBO
from numpyro.infer.util import log_density
from tqdm.auto import tqdm

from bayes_simrmf.errors import ConfigError, FitError
from bayes_simrmf.model import (
    DenseLayout,
    ModelConfig,
    PairsLayout,
    SimilarityInputs,
    simrmf_model,
)
from bayes_simrmf.inference.config import InferenceConfig, SVIResult
from bayes_simrmf.inference.setup import choose_layout, initial_values
from bayes_simrmf.inference.schedule import draw_minibatch, learning_rate_schedule
from bayes_simrmf.inference.stopping import _stop_rule
from bayes_simrmf.inference.guides import make_guide


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
