"""Checks of the protocol's options and the random draws of known entities and dense blocks."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from bayes_simrmf.errors import ConfigError, DataError
from bayes_simrmf.log import Log

from bayes_simrmf.splits.common import _NO_GROUP


def _check_int(name: str, value: Any, *, minimum: int, allow_none: bool = False) -> None:
    """Raise ConfigError unless ``value`` is an int >= ``minimum`` (or None where allowed)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{name} must be an integer{' or None' if allow_none else ''}, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value!r}")


def _check_real(
    name: str, value: Any, *, minimum: float, inclusive: bool, maximum: float | None = None
) -> float:
    """``value`` as a float; ConfigError unless it is a finite number in the stated range."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    value = float(value)
    below = value < minimum if inclusive else value <= minimum
    if not math.isfinite(value) or below or (maximum is not None and value > maximum):
        low = "[" if inclusive else "("
        high = f"{maximum:g}]" if maximum is not None else "inf)"
        raise ConfigError(f"{name} must be in {low}{minimum:g}, {high}, got {value!r}")
    return value


def _share_threshold(share: float, n_total: int) -> int:
    """Fewest answers that reach ``share`` of ``n_total`` (at least 1)."""
    # The small slack keeps e.g. 0.25 * 40 = 10 from rounding up to 11 through float error.
    return max(1, math.ceil(share * n_total - 1e-9))


def _draw_known(eligible: np.ndarray, n_known: int, rng: np.random.Generator,
                rank: np.ndarray | None = None) -> np.ndarray:
    """bool ``(n,)``: ``n_known`` of the ``eligible`` (bool ``(n,)``) entries, a seeded permutation; with ``rank``
    (float ``(n,)``) the ``n_known`` lowest-ranked, ties in the permutation's order."""
    candidates = np.flatnonzero(eligible)
    known = np.zeros(len(eligible), dtype=bool)
    order = rng.permutation(len(candidates))
    if rank is not None:
        order = order[np.argsort(rank[candidates[order]], kind="stable")]
    known[candidates[order[:n_known]]] = True
    return known


def _group_codes(item_groups: Any, n_items: int) -> tuple[np.ndarray, list[str]]:
    """Benchmark code per item ``(n_items,)`` and the sorted benchmark names.

    ``None`` means one group; missing labels (None, NaN) form the group ``"(none)"``.
    """
    if item_groups is None:
        return np.zeros(n_items, dtype=np.int64), [_NO_GROUP]
    labels = np.asarray(item_groups, dtype=object).ravel()
    if len(labels) != n_items:
        raise DataError(f"item_groups must hold one label per item id ({n_items}), got {len(labels)} labels")
    missing = np.asarray(pd.isna(labels), dtype=bool)
    text = np.array([_NO_GROUP if gone else str(label) for label, gone in zip(labels, missing)], dtype=object)
    names, codes = np.unique(text, return_inverse=True)
    return codes.astype(np.int64).ravel(), [str(name) for name in names]


def _dataset_benchmarks(dataset: Any, item_ids: np.ndarray) -> np.ndarray | None:
    """The dataset's ``items["benchmark"]`` aligned to ``item_ids`` (missing -> ``"(none)"``).

    None where the dataset has no items table (the single group of :meth:`Protocol.split_arrays`).
    """
    items = getattr(dataset, "items", None)
    if not isinstance(items, pd.DataFrame) or "item" not in items.columns:
        return None
    if "benchmark" not in items.columns:
        return np.full(len(item_ids), _NO_GROUP, dtype=object)
    labels = pd.Series(items["benchmark"].to_numpy(dtype=object), index=items["item"].astype(str).to_numpy())
    return labels.reindex(pd.Index(item_ids, dtype=object)).to_numpy(dtype=object)


def _dense_block(
    llm_idx: np.ndarray,
    item_idx: np.ndarray,
    correct: np.ndarray,
    known_llms: np.ndarray,
    known_items: np.ndarray,
    shape: tuple[int, int],
) -> np.ndarray:
    """int8 ``(len(known_llms), len(known_items))`` scores of the known x known block, -1 unobserved.

    Args:
        llm_idx, item_idx, correct: ``(n_pairs,)`` observed pairs.
        known_llms, known_items: sorted indices of the known LLMs and items; row/column order.
        shape: ``(n_llms, n_items)`` of the whole data.
    """
    llm_position = np.full(shape[0], -1, dtype=np.int64)
    llm_position[known_llms] = np.arange(len(known_llms))
    item_position = np.full(shape[1], -1, dtype=np.int64)
    item_position[known_items] = np.arange(len(known_items))
    rows, columns = llm_position[llm_idx], item_position[item_idx]
    in_block = (rows >= 0) & (columns >= 0)
    block = np.full((len(known_llms), len(known_items)), -1, dtype=np.int8)
    block[rows[in_block], columns[in_block]] = correct[in_block]
    return block


def _known_with_pairs(selected: np.ndarray, emit: Log) -> tuple[np.ndarray, np.ndarray]:
    """Which known LLMs ``(n_L,)`` and items ``(n_I,)`` have a training pair; logs the others.

    A known entity without training pairs would be scored in A as if the model had seen it; it
    belongs to the new side instead.
    """
    keep_llms, keep_items = selected.any(axis=1), selected.any(axis=0)
    n_llms, n_items = int((~keep_llms).sum()), int((~keep_items).sum())
    if n_llms or n_items:
        emit(
            f"moved {n_llms} known LLMs and {n_items} known items without any training pair to the "
            "new side (they are scored in B/C/D, not A)"
        )
    return keep_llms, keep_items


def _log_short(n_short: int, n_total: int, what: str, t_used: int, emit: Log) -> None:
    """Log how many entities of the smaller known side cannot reach ``T_used`` for lack of answers."""
    if n_short:
        emit(f"{n_short} of {n_total} known {what} than T={t_used}; each is paired with all it can be")


