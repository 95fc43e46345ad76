"""Checks of what a fit is given: the observed pairs as model indices, and the item group codes."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from bayes_simrmf.errors import ConfigError
from bayes_simrmf.model import ModelConfig


def check_index_pairs(
    n_llms: int, n_items: int, llm: np.ndarray, item: np.ndarray, correct: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pairs as int32 ``llm``, ``item`` and an array ``correct``, once checked.

    Raises:
        ConfigError: the arrays are empty or of unequal lengths, an index lies outside
            ``[0, n_llms)`` / ``[0, n_items)``, or an ``(llm, item)`` pair occurs more than once.
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
    _check_unique_pairs(n_items, llm, item)
    return llm, item, correct


def _check_unique_pairs(n_items: int, llm: np.ndarray, item: np.ndarray) -> None:
    """ConfigError naming repeated ``(llm, item)`` pairs, if any.

    A sort finds repeats in ~1 s at 10^7 pairs; np.unique (hash-based in numpy 2) took ~15 s there,
    so it runs only to name the repeats. The keys (16 bytes per pair) are freed on return.
    """
    keys = llm.astype(np.int64) * n_items + item
    sorted_keys = np.sort(keys)
    if np.any(sorted_keys[1:] == sorted_keys[:-1]):
        _, first, counts = np.unique(keys, return_index=True, return_counts=True)
        repeated = first[counts > 1]
        raise ConfigError(
            f"{int((counts - 1).sum())} (llm, item) pairs are repeated, e.g. (llm, item) = "
            f"{[(int(llm[r]), int(item[r])) for r in repeated[:5]]}; each pair must be observed once"
        )


def item_group_codes(item_group: np.ndarray | None, n_items: int, model_config: ModelConfig) -> jnp.ndarray | None:
    """The ``(n_items,)`` group codes as a JAX int32 array when the model has item groups, else None.

    Raises:
        ConfigError: the model has groups and ``item_group`` is missing, not one code per item, or
            holds a code outside ``[0, model_config.n_item_groups)``.
    """
    if not model_config.n_item_groups:
        return None
    if item_group is None or len(item_group) != n_items:
        raise ConfigError(
            f"n_item_groups={model_config.n_item_groups} needs one group code per item ({n_items}); got "
            f"{None if item_group is None else len(item_group)}"
        )
    item_group = np.asarray(item_group, dtype=np.int32)
    if item_group.min() < 0 or item_group.max() >= model_config.n_item_groups:
        raise ConfigError(f"item group codes must lie in [0, {model_config.n_item_groups})")
    return jnp.asarray(item_group)
