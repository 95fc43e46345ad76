"""Stochastic variational inference for :func:`bayes_simrmf.model.simrmf_model` (:func:`run_svi`)."""

from __future__ import annotations

import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from numpyro.infer import SVI
from numpyro.infer.svi import SVIState
from numpyro.infer.util import log_density
from tqdm.auto import tqdm

from bayes_simrmf.errors import FitError
from bayes_simrmf.model import (
    ModelConfig,
    PairsLayout,
    SimilarityInputs,
    simrmf_model,
)
from bayes_simrmf.inference.checks import check_index_pairs, item_group_codes
from bayes_simrmf.inference.chunks import ChunkRunner, chunk_lengths, make_chunk_runner
from bayes_simrmf.inference.elbo import OrderedTraceELBO
from bayes_simrmf.inference.config import InferenceConfig, SVIResult
from bayes_simrmf.inference.setup import initial_values, observed_layout
from bayes_simrmf.inference.schedule import effective_batch_size, learning_rate_schedule
from bayes_simrmf.inference.stopping import _stop_rule
from bayes_simrmf.inference.guides import make_guide, prepare_guide


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
    llm, item, correct = check_index_pairs(n_llms, n_items, llm, item, correct)
    item_group = item_group_codes(item_group, n_items, model_config)
    batch_size = effective_batch_size(config.batch_size, len(llm))
    layout_name, layout, observed = observed_layout(llm, item, correct, config, minibatch=batch_size is not None)
    guide = make_guide(config, initial_values(n_llms, n_items, model_config, correct, config.init_scale, seed))
    svi = _make_svi(guide, config, batch_size)
    model_args = (n_llms, n_items, layout, model_config)
    model_kwargs = {"correct": observed, "similarity": similarity, "item_group": item_group}

    start = time.perf_counter()
    rng_key = jax.random.PRNGKey(seed)
    prepare_guide(guide, model_args, model_kwargs, rng_key)
    state = _init_state(svi, rng_key, model_args, model_kwargs, batch_size)
    # Minibatch draws have their own key stream, so the ELBO's draws follow svi.update as in full batch.
    run_chunk = make_chunk_runner(svi, model_args, model_kwargs, batch_size, jax.random.fold_in(rng_key, 1))
    state, losses, converged = _optimise(run_chunk, state, config, batch_size is not None, description, on_chunk)
    params = svi.get_params(state)
    point = {name: np.asarray(value) for name, value in guide.median(params).items()}
    seconds = time.perf_counter() - start
    return SVIResult(
        guide=guide,
        guide_params=params,
        point=point,
        losses=losses,
        converged=converged,
        layout=layout_name,
        seconds=seconds,
        model_args=model_args,
        model_kwargs=model_kwargs,
        batch_size=batch_size,
    )


def _make_svi(guide, config: InferenceConfig, batch_size: int | None) -> SVI:
    """SVI of :func:`simrmf_model` with ``guide``: Adam on the learning-rate schedule, a Trace ELBO."""
    optimizer = optax.adam(learning_rate_schedule(config, minibatch=batch_size is not None))
    elbo = OrderedTraceELBO(num_particles=1 if config.guide == "delta" else config.num_particles)
    return SVI(simrmf_model, guide, optimizer, loss=elbo)


def _init_state(
    svi: SVI, rng_key: jax.Array, model_args: tuple, model_kwargs: dict, batch_size: int | None
) -> SVIState:
    """SVI's initial state, compiled: on the full data, or on the first minibatch of pairs.

    NumPyro's ``svi.init`` runs the model and guide op by op; run eagerly at paper scale it compiled hundreds
    of small XLA programs (20-30 s, ~0.5 GiB). The guide's prototype is set up beforehand on stand-in data
    (:func:`prepare_guide`), so nothing traced here is kept by the guide, and the rest is one jitted call.
    A minibatch run initialises on one minibatch: the start is the initial values anyway, and peak memory
    stays O(batch_size).
    """
    n_llms, n_items, layout, model_config = model_args
    observed, similarity, item_group = model_kwargs["correct"], model_kwargs["similarity"], model_kwargs["item_group"]
    scale = None
    if batch_size is not None:
        layout = PairsLayout(llm=layout.llm[:batch_size], item=layout.item[:batch_size])
        observed, scale = observed[:batch_size], len(model_args[2].llm) / batch_size
    extra = {} if scale is None else {"likelihood_scale": scale}

    @jax.jit
    def init(key, layout, observed, similarity, item_group, model_config):
        return svi.init(key, n_llms, n_items, layout, model_config, correct=observed, similarity=similarity,
                        item_group=item_group, **extra)

    return init(rng_key, layout, observed, similarity, item_group, model_config)


def _optimise(
    run_chunk: ChunkRunner,
    state: SVIState,
    config: InferenceConfig,
    minibatch: bool,
    description: str,
    on_chunk: Callable[[int, np.ndarray], None] | None,
) -> tuple[SVIState, np.ndarray, bool]:
    """Run chunks of steps from ``state`` until the stopping rule holds or ``max_steps`` are done.

    Shows the progress bar (steps, chunk-mean loss) when ``config.progress``.

    Returns:
        The last state, the ``(n_steps,)`` step losses, and whether the run converged.

    Raises:
        FitError: a step's loss is NaN or infinite (that chunk's state is dropped).
    """
    losses: list[np.ndarray] = []
    lengths = chunk_lengths(config)
    bar = tqdm(total=config.max_steps, desc=description, disable=not config.progress, unit="step", leave=False)
    try:
        for chunk_index, length in enumerate(lengths):
            new_state, chunk_losses = run_chunk(state, chunk_index, length)
            chunk_losses = np.asarray(chunk_losses)
            _check_finite(chunk_losses, chunk_index, config)
            state = new_state
            losses.append(chunk_losses)
            if on_chunk is not None:
                on_chunk(sum(len(chunk) for chunk in losses), chunk_losses)
            bar.update(length)
            bar.set_postfix(loss=f"{float(np.mean(chunk_losses)):.4g}")
            if len(losses) > 1 and _stop_rule(losses[-2], chunk_losses, config.tol, noisy=config.noisy_loss(minibatch),
                                              final=chunk_index == len(lengths) - 1):
                return state, np.concatenate(losses), True
    finally:
        bar.close()
    return state, np.concatenate(losses), False


def _check_finite(chunk_losses: np.ndarray, chunk_index: int, config: InferenceConfig) -> None:
    """FitError naming the first step of the chunk whose loss is NaN or infinite, and what to try."""
    bad = np.flatnonzero(~np.isfinite(chunk_losses))
    if bad.size:
        step = chunk_index * config.chunk + int(bad[0]) + 1
        raise FitError(
            f"the loss became {chunk_losses[bad[0]]} at step {step} (guide={config.guide}, "
            f"learning_rate={config.learning_rate}); try a smaller learning rate "
            f"(e.g. --learning-rate {config.learning_rate / 5:g}) or a larger lambda_reg"
        )
