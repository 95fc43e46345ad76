"""Where the answers go (pairs or a dense block) and where SVI starts (initial values)."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from bayes_simrmf.errors import ConfigError
from bayes_simrmf.model import (
    DenseLayout,
    INTERCEPT,
    ITEM_BIAS,
    ITEM_BIAS_SCALE,
    ITEM_FACTORS,
    ITEM_GROUP_FLOOR,
    ITEM_GROUP_MEAN,
    ITEM_GROUP_SLIP,
    LLM_BIAS,
    LLM_BIAS_SCALE,
    LLM_FACTORS,
    ModelConfig,
    PairsLayout,
)
from bayes_simrmf.inference.config import InferenceConfig


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


def observed_layout(
    llm: np.ndarray, item: np.ndarray, correct: np.ndarray, config: InferenceConfig, minibatch: bool
) -> tuple[str, PairsLayout | DenseLayout, jnp.ndarray]:
    """The layout's name, the layout and the observed scores in its shape, for the model.

    Minibatches are gathered from the pair indices, so a minibatch run always gets the pairs layout
    (never a dense block); otherwise :func:`choose_layout` decides.

    Returns:
        ``("dense", DenseLayout, (n_block_llms, n_block_items) float32 scores)`` (0 where unobserved) or
        ``("pairs", PairsLayout, (n_pairs,) float32 scores)``.
    """
    if minibatch:
        layout_name, n_block_llms, n_block_items = "pairs", 0, 0
    else:
        layout_name, n_block_llms, n_block_items = choose_layout(llm, item, config)
    if layout_name == "dense":
        mask = np.zeros((n_block_llms, n_block_items), dtype=bool)
        mask[llm, item] = True
        dense_correct = np.zeros((n_block_llms, n_block_items), dtype=np.float32)
        dense_correct[llm, item] = correct
        return layout_name, DenseLayout(mask=jnp.asarray(mask)), jnp.asarray(dense_correct)
    return layout_name, PairsLayout(llm=jnp.asarray(llm), item=jnp.asarray(item)), jnp.asarray(correct, dtype=jnp.float32)


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
    if model_config.asymptotes:
        # Start near the logistic model (floor 0.02, ceiling 0.99): the floors rise where the answers ask for it.
        n_groups = model_config.n_item_groups or 1
        if model_config.fixed_floor is None:
            values[ITEM_GROUP_FLOOR] = np.full(n_groups, 0.02, np.float32)
        if model_config.fixed_slip is None:
            values[ITEM_GROUP_SLIP] = np.full(n_groups, 0.01, np.float32)
    return values


