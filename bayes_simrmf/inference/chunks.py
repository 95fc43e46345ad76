"""SVI steps compiled in chunks: one ``lax.scan`` of full-batch or minibatch steps per Python round trip."""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
from numpyro.infer import SVI

from bayes_simrmf.inference.config import InferenceConfig
from bayes_simrmf.inference.schedule import draw_minibatch

#: ``run(svi_state, chunk_index, length) -> (svi_state, (length,) losses)``, see :func:`make_chunk_runner`.
ChunkRunner = Callable[[Any, int, int], tuple[Any, jax.Array]]


def chunk_lengths(config: InferenceConfig) -> list[int]:
    """Whole chunks, then a shorter last one, so ``max_steps`` is an exact upper bound."""
    lengths = [config.chunk] * (config.max_steps // config.chunk)
    if config.max_steps % config.chunk:
        lengths.append(config.max_steps % config.chunk)
    return lengths


def make_chunk_runner(
    svi: SVI, model_args: tuple, model_kwargs: dict, batch_size: int | None, batch_root_key: jax.Array
) -> ChunkRunner:
    """A function running ``length`` SVI steps from a state, compiled once per chunk length.

    The arrays (layout, scores, similarity factors, item groups) and the model config's numbers enter the compiled
    step as arguments (see :class:`~bayes_simrmf.model.SimilarityInputs`, :class:`~bayes_simrmf.model.ModelConfig`);
    the sizes and the config's structure stay static, so a tuning grid's fits share one compiled program.

    Args:
        svi: the SVI object (model, guide, optimiser, ELBO).
        model_args, model_kwargs: the model's arguments with the full data, as in :class:`~bayes_simrmf.inference.SVIResult`.
        batch_size: pairs per minibatch step, drawn from the pairs layout's ``n_pairs`` pairs, with the
            likelihood scaled by ``n_pairs / batch_size``; or None for full-batch steps.
        batch_root_key: root of the minibatch draws (unused in full batch): chunk ``c`` draws its
            minibatches from ``fold_in(batch_root_key, c)``, a stream apart from the ELBO's draws.
    """
    n_llms, n_items, layout, model_config = model_args
    data = (layout, model_kwargs["correct"], model_kwargs["similarity"], model_kwargs["item_group"], model_config)
    n_pairs = None if batch_size is None else len(layout.llm)

    @functools.partial(jax.jit, static_argnums=3, donate_argnums=0)
    def run_chunk(svi_state, data, chunk_key, length):
        chunk_layout, chunk_observed, chunk_similarity, chunk_item_group, chunk_config = data

        def one_step(step_state, _):
            return svi.update(
                step_state, n_llms, n_items, chunk_layout, chunk_config,
                correct=chunk_observed, similarity=chunk_similarity, item_group=chunk_item_group,
            )

        def one_minibatch_step(step_state, step_key):
            batch_layout, batch_observed = draw_minibatch(step_key, chunk_layout, chunk_observed, batch_size)
            return svi.update(
                step_state, n_llms, n_items, batch_layout, chunk_config,
                correct=batch_observed, similarity=chunk_similarity, item_group=chunk_item_group,
                likelihood_scale=n_pairs / batch_size,
            )

        if batch_size is None:
            return jax.lax.scan(one_step, svi_state, None, length=length)
        return jax.lax.scan(one_minibatch_step, svi_state, jax.random.split(chunk_key, length))

    def run(svi_state, chunk_index: int, length: int) -> tuple[Any, jax.Array]:
        chunk_key = None if batch_size is None else jax.random.fold_in(batch_root_key, chunk_index)
        return run_chunk(svi_state, data, chunk_key, length)

    return run
