"""Evaluation protocol: known/new LLMs and items, balanced training pairs, test splits A-D.

The paper's protocol (see PAPER.md, "Evaluation protocol"):

* draw ``n_known_llms`` known LLMs and ``n_known_items`` known items at random (seeded);
* training pairs come only from observed cells of the known x known block, balanced so that every
  known LLM and every known item gets ``T`` training pairs;
* four test splits, each a uniform random sample of at most ``n_test_pairs`` observed cells:
  ``A`` known LLM x known item (the rest of the block), ``B`` known LLM x new item,
  ``C`` new LLM x known item, ``D`` new LLM x new item.

With unequal known counts "exactly T on both sides" is impossible (the degree sums of the two
sides must match), so the smaller side gets ``T`` each and the larger side ``T * n_small / n_large``
each, spread as evenly as possible (the two values differ by at most one). Where missing cells make
the targets unreachable the split gets as close as a maximum flow allows and reports the achieved
degrees in :attr:`Split.degree_report`.

Balancing algorithm (:func:`balanced_block_selection`):

1. *Greedy*: LLMs in random order; each takes its target number of items among the items it has an
   observed cell with, preferring the items whose remaining need is largest relative to the LLMs
   still to come that could serve them (random tie-break). On a complete block this is the
   Gale-Ryser construction and meets every target exactly.
2. *Repair*: while some LLM and some item are both below target, find an augmenting path in the
   residual bipartite graph (breadth first, vectorised over the dense known x known block) and flip
   it; each flip adds one training pair without changing any other degree. When no path exists the
   number of training pairs is maximal for these targets.

Only the known x known block is ever held as a dense matrix; everything else uses the pair arrays.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayes_simrmf.errors import ConfigError, DataError, SplitError

if TYPE_CHECKING:  # data.py is written alongside; only its duck-typed API is used here
    from bayes_simrmf.data import Dataset

__all__ = [
    "PAPER_N_KNOWN",
    "SPLIT_NAMES",
    "TEST_SPLIT_NAMES",
    "Pairs",
    "Protocol",
    "Split",
    "balanced_block_selection",
]

#: The paper's number of known LLMs and known items.
PAPER_N_KNOWN = 1000
#: The paper's default is used only where at least this many entities exist (so >= 1/3 stay new).
_PAPER_DEFAULT_MIN_ENTITIES = 1500
#: Fraction of an axis made known when the data are too small for the paper's 1,000.
_FALLBACK_KNOWN_FRACTION = 2.0 / 3.0

TEST_SPLIT_NAMES: tuple[str, ...] = ("A", "B", "C", "D")
SPLIT_NAMES: tuple[str, ...] = ("train", *TEST_SPLIT_NAMES)

_FORMAT_VERSION = 1
_SPLIT_JSON = "split.json"
_PAIRS_PARQUET = "pairs.parquet"

# Independent random streams per purpose, so that e.g. changing T leaves the known sets unchanged
# and changing n_test_pairs leaves the training pairs unchanged.
(
    _STREAM_KNOWN_LLMS,
    _STREAM_KNOWN_ITEMS,
    _STREAM_TRAIN,
    _STREAM_A,
    _STREAM_B,
    _STREAM_C,
    _STREAM_D,
    _STREAM_DEGREE_TARGETS,
) = range(8)
_TEST_STREAMS = {"A": _STREAM_A, "B": _STREAM_B, "C": _STREAM_C, "D": _STREAM_D}

LogFn = Callable[[str], None]


def _stream(seed: int, purpose: int) -> np.random.Generator:
    """Random generator for one purpose, derived from the protocol seed."""
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(purpose + 1)[purpose])


# --------------------------------------------------------------------------------------------------
# Pairs
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Pairs:
    """One set of observed (LLM, item, correct) pairs, as codes into a :class:`Split`'s id arrays.

    Attributes:
        llm: int32 ``(n,)`` index into ``Split.llms``.
        item: int32 ``(n,)`` index into ``Split.items``.
        correct: int8 ``(n,)`` score, 1 if the LLM answered the item correctly, else 0.

    The arrays are made read-only, as the dataclass is frozen.
    """

    llm: np.ndarray
    item: np.ndarray
    correct: np.ndarray

    def __post_init__(self) -> None:
        llm = np.ascontiguousarray(self.llm, dtype=np.int32)
        item = np.ascontiguousarray(self.item, dtype=np.int32)
        correct = np.ascontiguousarray(self.correct, dtype=np.int8)
        if not (llm.ndim == item.ndim == correct.ndim == 1 and len(llm) == len(item) == len(correct)):
            raise SplitError(
                "Pairs arrays must be 1-D and of equal length; got shapes "
                f"llm={llm.shape}, item={item.shape}, correct={correct.shape}"
            )
        for array in (llm, item, correct):
            array.flags.writeable = False
        object.__setattr__(self, "llm", llm)
        object.__setattr__(self, "item", item)
        object.__setattr__(self, "correct", correct)

    def __len__(self) -> int:
        return int(self.llm.shape[0])

    @classmethod
    def empty(cls) -> Pairs:
        """A set of zero pairs."""
        return cls(np.empty(0, np.int32), np.empty(0, np.int32), np.empty(0, np.int8))

    def equals(self, other: Pairs) -> bool:
        """True if both hold the same pairs in the same order."""
        return (
            np.array_equal(self.llm, other.llm)
            and np.array_equal(self.item, other.item)
            and np.array_equal(self.correct, other.correct)
        )


# --------------------------------------------------------------------------------------------------
# Balanced training pairs
# --------------------------------------------------------------------------------------------------


def _spread_evenly(total: int, n_nodes: int, rng: np.random.Generator) -> np.ndarray:
    """Integer targets ``(n_nodes,)`` summing to ``total``, each floor or ceil of total/n_nodes.

    Which nodes get the extra one is random.
    """
    base, n_extra = divmod(total, n_nodes)
    targets = np.full(n_nodes, base, dtype=np.int64)
    targets[rng.permutation(n_nodes)[:n_extra]] += 1
    return targets


def _augment_once(
    observed: np.ndarray, selected: np.ndarray, row_below: np.ndarray, col_below: np.ndarray
) -> bool:
    """Find one augmenting path from a row below target to a column below target and flip it.

    The path alternates unselected observed cells (added) and selected cells (removed), so the
    start row and end column each gain one pair and every other degree is unchanged.

    Args:
        observed: bool ``(n_rows, n_cols)``, cell observed.
        selected: bool ``(n_rows, n_cols)``, cell chosen as a training pair; modified in place.
        row_below: bool ``(n_rows,)``, row degree below its target.
        col_below: bool ``(n_cols,)``, column degree below its target.

    Returns:
        True if a path was found and flipped, False if none exists (the selection is maximal).
    """
    n_rows, n_cols = observed.shape
    row_parent_col = np.full(n_rows, -1, dtype=np.int64)  # -1: a start row
    col_parent_row = np.full(n_cols, -1, dtype=np.int64)
    row_seen = row_below.copy()
    col_seen = np.zeros(n_cols, dtype=bool)
    frontier_rows = np.flatnonzero(row_below)
    while frontier_rows.size:
        # Forward along cells that could be added.
        addable = observed[frontier_rows] & ~selected[frontier_rows] & ~col_seen
        new_cols = np.flatnonzero(addable.any(axis=0))
        if new_cols.size == 0:
            return False
        col_parent_row[new_cols] = frontier_rows[addable[:, new_cols].argmax(axis=0)]
        col_seen[new_cols] = True
        end_cols = new_cols[col_below[new_cols]]
        if end_cols.size:
            col = int(end_cols[0])
            while True:
                row = int(col_parent_row[col])
                selected[row, col] = True
                previous_col = int(row_parent_col[row])
                if previous_col < 0:
                    return True
                selected[row, previous_col] = False
                col = previous_col
        # Backward along selected cells (they could be given up to another row).
        removable = selected[:, new_cols] & ~row_seen[:, None]
        new_rows = np.flatnonzero(removable.any(axis=1))
        row_parent_col[new_rows] = new_cols[removable[new_rows].argmax(axis=1)]
        row_seen[new_rows] = True
        frontier_rows = new_rows
    return False


def balanced_block_selection(
    observed: np.ndarray,
    row_targets: np.ndarray,
    col_targets: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Choose observed cells so that row and column degrees meet their targets (as near as possible).

    Greedy pass then augmenting-path repair (see the module docstring). Runs in
    ``O(n_rows * n_cols)`` for the greedy pass plus ``O(n_rows * n_cols)`` per repaired pair.

    Args:
        observed: bool ``(n_rows, n_cols)``, which cells may be chosen.
        row_targets: int ``(n_rows,)`` wanted number of chosen cells per row.
        col_targets: int ``(n_cols,)`` wanted number per column; ``sum(col_targets)`` should equal
            ``sum(row_targets)``.
        rng: random generator for the row order and tie-breaks.

    Returns:
        bool ``(n_rows, n_cols)``, the chosen cells; no row or column exceeds its target.
    """
    n_rows, n_cols = observed.shape
    selected = np.zeros((n_rows, n_cols), dtype=bool)
    col_need = np.asarray(col_targets, dtype=np.int64).copy()
    row_need = np.asarray(row_targets, dtype=np.int64).copy()
    # Rows still to be processed that could serve each column: a column's need relative to this
    # supply says how urgent it is, which matters once missing cells make supply uneven.
    col_supply = observed.sum(axis=0).astype(np.float64)
    # Distinct need/supply ratios differ by at least 1/n_rows^2; the tie-break stays below that.
    tie_break_scale = 0.5 / max(n_rows, 1) ** 2
    for row in rng.permutation(n_rows):
        row_observed = observed[row]
        want = int(row_need[row])
        if want > 0:
            available = row_observed & (col_need > 0)
            n_available = int(available.sum())
            n_take = min(want, n_available)
            if n_take > 0:
                urgency = col_need / np.maximum(col_supply, 1.0)
                score = np.where(available, urgency + tie_break_scale * rng.random(n_cols), -1.0)
                if n_take < n_cols:
                    chosen = np.argpartition(-score, n_take - 1)[:n_take]
                else:
                    chosen = np.arange(n_cols)
                selected[row, chosen] = True
                col_need[chosen] -= 1
                row_need[row] -= n_take
        col_supply -= row_observed

    # Repair: each augmenting path adds one pair; stop when none is left (maximum for these targets).
    while (row_need > 0).any() and (col_need > 0).any():
        if not _augment_once(observed, selected, row_need > 0, col_need > 0):
            break
        row_need = np.asarray(row_targets, dtype=np.int64) - selected.sum(axis=1)
        col_need = np.asarray(col_targets, dtype=np.int64) - selected.sum(axis=0)
    return selected


# --------------------------------------------------------------------------------------------------
# Protocol
# --------------------------------------------------------------------------------------------------


def _check_int(name: str, value: Any, *, minimum: int, allow_none: bool = False) -> None:
    """Raise ConfigError unless ``value`` is an int >= ``minimum`` (or None where allowed)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{name} must be an integer{' or None' if allow_none else ''}, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value!r}")


@dataclass(frozen=True)
class Protocol:
    """The paper's evaluation protocol, with its seed.

    Attributes:
        n_known_llms: number of known LLMs; None -> 1,000 where the data have at least 1,500 LLMs,
            else ``round(2/3 * n_llms)``.
        n_known_items: number of known items; same default rule.
        T: training pairs per known LLM and per known item (the smaller known side gets exactly T,
            the larger side ``T * n_small / n_large``); capped at the larger known count.
        n_test_pairs: at most this many pairs per test split (uniform random sample).
        seed: seed of every random choice; the same seed and data give the same split.
    """

    n_known_llms: int | None = None
    n_known_items: int | None = None
    T: int = 300
    n_test_pairs: int = 1_000_000
    seed: int = 0

    def __post_init__(self) -> None:
        _check_int("n_known_llms", self.n_known_llms, minimum=1, allow_none=True)
        _check_int("n_known_items", self.n_known_items, minimum=1, allow_none=True)
        _check_int("T", self.T, minimum=1)
        _check_int("n_test_pairs", self.n_test_pairs, minimum=0)
        _check_int("seed", self.seed, minimum=0)
        # Plain ints keep the protocol hashable, comparable and JSON-serialisable.
        for name in ("n_known_llms", "n_known_items", "T", "n_test_pairs", "seed"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, int(value))

    def resolve(self, n_llms: int, n_items: int, *, log: LogFn | None = print) -> tuple[int, int]:
        """Known counts actually used for data with ``n_llms`` LLMs and ``n_items`` items.

        Returns:
            ``(n_known_llms, n_known_items)``.

        Raises:
            SplitError: the data have no LLM or no item.
            ConfigError: an explicit known count exceeds the number available.
        """
        emit = log or (lambda message: None)
        resolved = []
        for axis, requested, n_available in (
            ("llms", self.n_known_llms, n_llms),
            ("items", self.n_known_items, n_items),
        ):
            argument = f"n_known_{axis}"
            if n_available < 1:
                raise SplitError(f"the data have {n_available} {axis}; a split needs at least one")
            if requested is None:
                if n_available >= _PAPER_DEFAULT_MIN_ENTITIES:
                    n_known = PAPER_N_KNOWN
                    emit(f"{argument}: using the paper's {PAPER_N_KNOWN} of {n_available} {axis}")
                else:
                    n_known = max(1, round(_FALLBACK_KNOWN_FRACTION * n_available))
                    emit(
                        f"{argument}: using {n_known} = round(2/3 * {n_available}) {axis}, because "
                        f"fewer than {_PAPER_DEFAULT_MIN_ENTITIES} {axis} leave too few new ones "
                        f"for the paper's {PAPER_N_KNOWN}"
                    )
            else:
                n_known = requested
                if n_known > n_available:
                    raise ConfigError(
                        f"{argument}={n_known} exceeds the {n_available} {axis} in the data"
                    )
            if n_known == n_available:
                empty = "C and D" if axis == "llms" else "B and D"
                emit(
                    f"warning: {argument}={n_known} makes every {axis[:-1]} known; "
                    f"splits {empty} will be empty"
                )
            resolved.append(int(n_known))
        return resolved[0], resolved[1]

    def split(self, dataset: Dataset, *, log: LogFn | None = print) -> Split:
        """Apply the protocol to a :class:`bayes_simrmf.data.Dataset`."""
        llm_idx, item_idx, correct = dataset.codes()
        return self.split_arrays(
            dataset.llm_ids(),
            dataset.item_ids(),
            llm_idx,
            item_idx,
            correct,
            data_fingerprint=dataset.fingerprint(),
            log=log,
        )

    def split_arrays(
        self,
        llm_ids: np.ndarray,
        item_ids: np.ndarray,
        llm_idx: np.ndarray,
        item_idx: np.ndarray,
        correct: np.ndarray,
        *,
        data_fingerprint: str | None = None,
        log: LogFn | None = print,
    ) -> Split:
        """Apply the protocol to observed pairs given as codes.

        Args:
            llm_ids: str ``(n_llms,)`` unique LLM ids.
            item_ids: str ``(n_items,)`` unique item ids.
            llm_idx: int ``(n_pairs,)`` index into ``llm_ids`` of each observed pair.
            item_idx: int ``(n_pairs,)`` index into ``item_ids``.
            correct: int ``(n_pairs,)`` 0/1 scores; each (llm, item) cell at most once.
            data_fingerprint: stored in the split to tie it to its data.
            log: receives one line per decision (defaults, caps, achieved balance); None silences.

        Returns:
            The :class:`Split`. Depends only on the ids, the set of observed cells and the protocol,
            not on the order of the pairs.
        """
        emit = log or (lambda message: None)
        llm_ids, item_ids, llm_idx, item_idx, correct = _validate_arrays(
            llm_ids, item_ids, llm_idx, item_idx, correct
        )
        n_llms, n_items = len(llm_ids), len(item_ids)
        n_known_llms, n_known_items = self.resolve(n_llms, n_items, log=emit)

        # Known sets drawn at random; within known and within new, ids keep their given order.
        known_llm_mask = np.zeros(n_llms, dtype=bool)
        known_llm_mask[_stream(self.seed, _STREAM_KNOWN_LLMS).permutation(n_llms)[:n_known_llms]] = True
        known_item_mask = np.zeros(n_items, dtype=bool)
        known_item_mask[_stream(self.seed, _STREAM_KNOWN_ITEMS).permutation(n_items)[:n_known_items]] = True
        llm_order = np.concatenate([np.flatnonzero(known_llm_mask), np.flatnonzero(~known_llm_mask)])
        item_order = np.concatenate([np.flatnonzero(known_item_mask), np.flatnonzero(~known_item_mask)])
        old_to_new_llm = np.empty(n_llms, dtype=np.int64)
        old_to_new_llm[llm_order] = np.arange(n_llms)
        old_to_new_item = np.empty(n_items, dtype=np.int64)
        old_to_new_item[item_order] = np.arange(n_items)
        pair_llm = old_to_new_llm[llm_idx]
        pair_item = old_to_new_item[item_idx]
        pair_llm_known = pair_llm < n_known_llms
        pair_item_known = pair_item < n_known_items

        # Dense known x known block only: -1 marks an unobserved cell.
        in_block = pair_llm_known & pair_item_known
        block_correct = np.full((n_known_llms, n_known_items), -1, dtype=np.int8)
        block_correct[pair_llm[in_block], pair_item[in_block]] = correct[in_block]
        block_observed = block_correct >= 0

        row_targets, col_targets, t_used = self._degree_targets(n_known_llms, n_known_items, emit)
        selected = balanced_block_selection(
            block_observed, row_targets, col_targets, _stream(self.seed, _STREAM_TRAIN)
        )
        degree_report = _degree_report(selected, row_targets, col_targets, self.T, t_used)
        _log_degrees(degree_report, emit)

        train_llm, train_item = np.nonzero(selected)
        pairs: dict[str, Pairs] = {
            "train": Pairs(train_llm, train_item, block_correct[train_llm, train_item])
        }
        rest_llm, rest_item = np.nonzero(block_observed & ~selected)
        pairs["A"] = self._sample(
            rest_llm, rest_item, block_correct[rest_llm, rest_item], "A", n_items, emit
        )
        for name, llm_known, item_known in (("B", True, False), ("C", False, True), ("D", False, False)):
            in_split = (pair_llm_known == llm_known) & (pair_item_known == item_known)
            pairs[name] = self._sample(
                pair_llm[in_split], pair_item[in_split], correct[in_split], name, n_items, emit
            )

        return Split(
            protocol=self,
            llms=llm_ids[llm_order],
            items=item_ids[item_order],
            n_known_llms=n_known_llms,
            n_known_items=n_known_items,
            pairs=pairs,
            degree_report=degree_report,
            data_fingerprint=data_fingerprint,
        )

    def _degree_targets(
        self, n_known_llms: int, n_known_items: int, emit: LogFn
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """Training degree targets per known LLM ``(n_known_llms,)`` and item ``(n_known_items,)``.

        Returns:
            ``(llm_targets, item_targets, T_used)``; the smaller side gets ``T_used`` each.
        """
        n_small, n_large = min(n_known_llms, n_known_items), max(n_known_llms, n_known_items)
        t_used = min(self.T, n_large)
        if t_used < self.T:
            emit(
                f"T={self.T} exceeds the {n_large} known entities a node can be paired with; "
                f"using T={t_used}"
            )
        rng = _stream(self.seed, _STREAM_DEGREE_TARGETS)
        small_targets = np.full(n_small, t_used, dtype=np.int64)
        large_targets = _spread_evenly(t_used * n_small, n_large, rng)
        if n_known_llms != n_known_items:
            smaller = "llms" if n_known_llms < n_known_items else "items"
            larger = "items" if smaller == "llms" else "llms"
            emit(
                f"unequal known counts: each known {smaller[:-1]} gets T={t_used} training pairs, "
                f"each known {larger[:-1]} {large_targets.min()}-{large_targets.max()} "
                f"(T*{n_small}/{n_large} = {t_used * n_small / n_large:.2f})"
            )
        if n_known_llms <= n_known_items:
            return small_targets, large_targets, t_used
        return large_targets, small_targets, t_used

    def _sample(
        self,
        llm: np.ndarray,
        item: np.ndarray,
        correct: np.ndarray,
        name: str,
        n_items: int,
        emit: LogFn,
    ) -> Pairs:
        """Uniform random sample of at most ``n_test_pairs`` pairs, in (llm, item) order."""
        # Sorting first makes the sample independent of the order the pairs came in.
        order = np.argsort(llm.astype(np.int64) * n_items + item, kind="stable")
        n_candidates = len(order)
        if n_candidates > self.n_test_pairs:
            rng = _stream(self.seed, _TEST_STREAMS[name])
            order = order[np.sort(rng.choice(n_candidates, size=self.n_test_pairs, replace=False))]
            emit(f"split {name}: sampled {self.n_test_pairs} of {n_candidates} observed pairs")
        return Pairs(llm[order], item[order], correct[order])


def _validate_arrays(
    llm_ids: np.ndarray,
    item_ids: np.ndarray,
    llm_idx: np.ndarray,
    item_idx: np.ndarray,
    correct: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Check and normalise the inputs of :meth:`Protocol.split_arrays` (raises DataError)."""
    llm_ids = np.asarray([str(llm) for llm in np.asarray(llm_ids).ravel()], dtype=object)
    item_ids = np.asarray([str(item) for item in np.asarray(item_ids).ravel()], dtype=object)
    for name, ids in (("llm_ids", llm_ids), ("item_ids", item_ids)):
        unique, counts = np.unique(ids, return_counts=True)
        if (counts > 1).any():
            raise DataError(f"{name} must be unique; repeated: {list(unique[counts > 1][:5])}")
    llm_idx, item_idx, correct = (np.asarray(a) for a in (llm_idx, item_idx, correct))
    one_dimensional = llm_idx.ndim == item_idx.ndim == correct.ndim == 1
    if not (one_dimensional and len(llm_idx) == len(item_idx) == len(correct)):
        raise DataError(
            "llm_idx, item_idx and correct must be 1-D of equal length; got shapes "
            f"{llm_idx.shape}, {item_idx.shape}, {correct.shape}"
        )
    for name, codes, n_ids in (("llm_idx", llm_idx, len(llm_ids)), ("item_idx", item_idx, len(item_ids))):
        if codes.size and not np.issubdtype(codes.dtype, np.integer):
            raise DataError(f"{name} must hold integer codes, got dtype {codes.dtype}")
        bad = (codes < 0) | (codes >= n_ids)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise DataError(f"{name} has codes outside [0, {n_ids}), e.g. {codes[first]!r} at row {first}")
    bad = (correct != 0) & (correct != 1)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(f"correct must be 0 or 1, got {correct[first]!r} at row {first}")
    llm_idx = llm_idx.astype(np.int64)
    item_idx = item_idx.astype(np.int64)
    cell_keys = llm_idx * len(item_ids) + item_idx
    sorted_keys = np.sort(cell_keys)
    repeated = sorted_keys[1:][sorted_keys[1:] == sorted_keys[:-1]]
    if repeated.size:
        llm, item = divmod(int(repeated[0]), len(item_ids))
        raise DataError(
            f"{repeated.size} (llm, item) cells are observed more than once, e.g. "
            f"llm={llm_ids[llm]!r}, item={item_ids[item]!r}"
        )
    return llm_ids, item_ids, llm_idx, item_idx, correct.astype(np.int8)


def _stats(values: np.ndarray) -> dict[str, float]:
    """min / max / mean of an integer array as JSON-ready numbers (NaN-free for empty input)."""
    if values.size == 0:
        return {"min": 0, "max": 0, "mean": 0.0}
    return {"min": int(values.min()), "max": int(values.max()), "mean": float(values.mean())}


def _degree_report(
    selected: np.ndarray, llm_targets: np.ndarray, item_targets: np.ndarray, t_requested: int, t_used: int
) -> dict[str, Any]:
    """Achieved versus wanted training degrees (JSON-serialisable)."""
    llm_degree = selected.sum(axis=1)
    item_degree = selected.sum(axis=0)
    n_target_pairs = int(llm_targets.sum())
    n_train_pairs = int(selected.sum())
    return {
        "T_requested": int(t_requested),
        "T_used": int(t_used),
        "target_llm_degree": _stats(llm_targets),
        "target_item_degree": _stats(item_targets),
        "llm_degree": _stats(llm_degree),
        "item_degree": _stats(item_degree),
        "n_target_pairs": n_target_pairs,
        "n_train_pairs": n_train_pairs,
        "shortfall_pairs": n_target_pairs - n_train_pairs,
        "n_llms_below_target": int((llm_degree < llm_targets).sum()),
        "n_items_below_target": int((item_degree < item_targets).sum()),
    }


def _log_degrees(report: dict[str, Any], emit: LogFn) -> None:
    """One line on the achieved balance; says so plainly when targets were missed."""
    llm, item = report["llm_degree"], report["item_degree"]
    line = (
        f"training pairs: {report['n_train_pairs']}; degree per known LLM {llm['min']}-{llm['max']} "
        f"(mean {llm['mean']:.2f}), per known item {item['min']}-{item['max']} (mean {item['mean']:.2f})"
    )
    if report["shortfall_pairs"]:
        line += (
            f"; missing cells left {report['shortfall_pairs']} of {report['n_target_pairs']} wanted pairs "
            f"unfilled ({report['n_llms_below_target']} LLMs and {report['n_items_below_target']} "
            "items below target; no better balance exists for these targets)"
        )
    emit(line)


# --------------------------------------------------------------------------------------------------
# Split
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Split:
    """The outcome of a :class:`Protocol` on one dataset.

    Attributes:
        protocol: the protocol as requested (its ``None`` known counts are resolved below).
        llms: str ``(n_llms,)`` LLM ids, the ``n_known_llms`` known ones first, then the new ones.
        items: str ``(n_items,)`` item ids, known first, then new.
        n_known_llms: number of known LLMs actually used.
        n_known_items: number of known items actually used.
        pairs: ``"train"``, ``"A"``, ``"B"``, ``"C"``, ``"D"`` -> :class:`Pairs` coded into
            ``llms`` / ``items``; the five sets are disjoint.
        degree_report: achieved training degrees per known LLM and item versus their targets.
        data_fingerprint: fingerprint of the dataset the split was drawn from, if known.
    """

    protocol: Protocol
    llms: np.ndarray
    items: np.ndarray
    n_known_llms: int
    n_known_items: int
    pairs: dict[str, Pairs]
    degree_report: dict[str, Any] = field(default_factory=dict)
    data_fingerprint: str | None = None

    def __post_init__(self) -> None:
        llms = np.asarray([str(llm) for llm in np.asarray(self.llms).ravel()], dtype=object)
        items = np.asarray([str(item) for item in np.asarray(self.items).ravel()], dtype=object)
        llms.flags.writeable = False
        items.flags.writeable = False
        object.__setattr__(self, "llms", llms)
        object.__setattr__(self, "items", items)
        if set(self.pairs) != set(SPLIT_NAMES):
            raise SplitError(f"pairs must have keys {list(SPLIT_NAMES)}, got {sorted(self.pairs)}")
        object.__setattr__(self, "pairs", {name: self.pairs[name] for name in SPLIT_NAMES})
        if not (0 <= self.n_known_llms <= len(llms) and 0 <= self.n_known_items <= len(items)):
            raise SplitError(
                f"n_known_llms={self.n_known_llms} / n_known_items={self.n_known_items} out of range "
                f"for {len(llms)} llms and {len(items)} items"
            )
        for name, split_pairs in self.pairs.items():
            for axis, codes, n_ids in (
                ("llm", split_pairs.llm, len(llms)),
                ("item", split_pairs.item, len(items)),
            ):
                if len(codes) and (codes.min() < 0 or codes.max() >= n_ids):
                    raise SplitError(f"pairs[{name!r}].{axis} has codes outside [0, {n_ids})")

    @property
    def known_llms(self) -> np.ndarray:
        """str ``(n_known_llms,)`` ids of the known LLMs."""
        return self.llms[: self.n_known_llms]

    @property
    def new_llms(self) -> np.ndarray:
        """str ``(n_llms - n_known_llms,)`` ids of the new LLMs."""
        return self.llms[self.n_known_llms :]

    @property
    def known_items(self) -> np.ndarray:
        """str ``(n_known_items,)`` ids of the known items."""
        return self.items[: self.n_known_items]

    @property
    def new_items(self) -> np.ndarray:
        """str ``(n_items - n_known_items,)`` ids of the new items."""
        return self.items[self.n_known_items :]

    def summary(self) -> str:
        """Plain-text table: pairs, LLMs, items and mean score per split, then the training degrees."""
        lines = [
            f"LLMs: {len(self.llms)} ({self.n_known_llms} known, {len(self.new_llms)} new); "
            f"items: {len(self.items)} ({self.n_known_items} known, {len(self.new_items)} new); "
            f"T={self.protocol.T}, seed={self.protocol.seed}",
            f"{'split':<6}{'pairs':>10}{'llms':>8}{'items':>8}{'mean correct':>14}",
        ]
        for name, split_pairs in self.pairs.items():
            mean_correct = f"{split_pairs.correct.mean():.3f}" if len(split_pairs) else "-"
            lines.append(
                f"{name:<6}{len(split_pairs):>10}{len(np.unique(split_pairs.llm)):>8}"
                f"{len(np.unique(split_pairs.item)):>8}{mean_correct:>14}"
            )
        report = self.degree_report
        if report:
            llm, item = report["llm_degree"], report["item_degree"]
            lines.append(
                f"train degree per known LLM {llm['min']}-{llm['max']} (mean {llm['mean']:.2f}), "
                f"per known item {item['min']}-{item['max']} (mean {item['mean']:.2f}); "
                f"shortfall {report['shortfall_pairs']} pairs"
            )
        return "\n".join(lines)

    # ---------------------------------------------------------------------------------------------
    # Persistence
    # ---------------------------------------------------------------------------------------------

    def save(self, folder: str | os.PathLike[str]) -> None:
        """Write ``split.json`` and ``pairs.parquet`` into ``folder`` (created if needed).

        Each file is written to a temporary name and moved into place, so a reader never sees a
        half-written file; ``split.json`` is written last and so marks a complete split.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        split_names = np.repeat(np.array(SPLIT_NAMES, dtype=object), [len(p) for p in self.pairs.values()])
        llm_codes = np.concatenate([p.llm for p in self.pairs.values()])
        item_codes = np.concatenate([p.item for p in self.pairs.values()])
        pairs_frame = pd.DataFrame(
            {
                "split": pd.Categorical(split_names, categories=list(SPLIT_NAMES)),
                # Dictionary-encoded strings: the file stores each id once.
                "llm": pd.Categorical.from_codes(llm_codes, categories=pd.Index(self.llms, dtype=object)),
                "item": pd.Categorical.from_codes(item_codes, categories=pd.Index(self.items, dtype=object)),
                "correct": np.concatenate([p.correct for p in self.pairs.values()]).astype(np.int8),
            }
        )
        meta = {
            "format_version": _FORMAT_VERSION,
            "protocol": asdict(self.protocol),
            "n_known_llms": int(self.n_known_llms),
            "n_known_items": int(self.n_known_items),
            "llms": [str(llm) for llm in self.llms],
            "items": [str(item) for item in self.items],
            "counts": {name: len(p) for name, p in self.pairs.items()},
            "degree_report": self.degree_report,
            "data_fingerprint": self.data_fingerprint,
        }
        _atomic_write(folder / _PAIRS_PARQUET, lambda path: pairs_frame.to_parquet(path, index=False))
        _atomic_write(
            folder / _SPLIT_JSON,
            lambda path: Path(path).write_text(json.dumps(meta, indent=1), encoding="utf-8"),
        )

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> Split:
        """Read a split written by :meth:`save`.

        Raises:
            SplitError: a file is missing, unreadable, of another format version, or inconsistent.
        """
        folder = Path(folder)
        json_path, parquet_path = folder / _SPLIT_JSON, folder / _PAIRS_PARQUET
        for path in (json_path, parquet_path):
            if not path.is_file():
                raise SplitError(f"{path} is missing; is {folder} a folder written by Split.save?")
        try:
            meta = json.loads(json_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise SplitError(f"{json_path} is not readable JSON: {error}") from error
        if not isinstance(meta, dict) or meta.get("format_version") != _FORMAT_VERSION:
            found = meta.get("format_version") if isinstance(meta, dict) else None
            raise SplitError(
                f"{json_path} has format_version {found!r}; this version reads {_FORMAT_VERSION}"
            )
        try:
            protocol = Protocol(**meta["protocol"])
            llms = np.asarray(meta["llms"], dtype=object)
            items = np.asarray(meta["items"], dtype=object)
            n_known_llms, n_known_items = int(meta["n_known_llms"]), int(meta["n_known_items"])
            counts = {name: int(meta["counts"][name]) for name in SPLIT_NAMES}
            degree_report, data_fingerprint = meta["degree_report"], meta["data_fingerprint"]
        except (KeyError, TypeError, ValueError, ConfigError) as error:
            raise SplitError(f"{json_path} is incomplete or malformed: {error!r}") from error

        try:
            frame = pd.read_parquet(parquet_path)
        except Exception as error:  # pyarrow raises several unrelated types on corrupt files
            raise SplitError(f"{parquet_path} is not a readable parquet file: {error}") from error
        missing = {"split", "llm", "item", "correct"} - set(frame.columns)
        if missing:
            raise SplitError(f"{parquet_path} lacks columns {sorted(missing)}")
        llm_codes = _codes_of(frame["llm"], llms, parquet_path, "llm")
        item_codes = _codes_of(frame["item"], items, parquet_path, "item")
        split_column = frame["split"].astype(str).to_numpy()
        correct = frame["correct"].to_numpy()

        pairs = {}
        for name in SPLIT_NAMES:
            rows = np.flatnonzero(split_column == name)
            if len(rows) != counts[name]:
                raise SplitError(
                    f"{parquet_path} has {len(rows)} rows of split {name!r}, {json_path} says {counts[name]}"
                )
            pairs[name] = Pairs(llm_codes[rows], item_codes[rows], correct[rows])
        return cls(
            protocol=protocol,
            llms=llms,
            items=items,
            n_known_llms=n_known_llms,
            n_known_items=n_known_items,
            pairs=pairs,
            degree_report=degree_report,
            data_fingerprint=data_fingerprint,
        )


def _codes_of(column: pd.Series, ids: np.ndarray, path: Path, name: str) -> np.ndarray:
    """int32 codes of a string (or categorical) column into ``ids``; SplitError on unknown ids."""
    index = pd.Index(ids, dtype=object)
    if isinstance(column.dtype, pd.CategoricalDtype):
        category_codes = index.get_indexer(column.cat.categories.astype(str))
        codes = np.where(column.cat.codes.to_numpy() >= 0, category_codes[column.cat.codes.to_numpy()], -1)
    else:
        codes = index.get_indexer(column.astype(str))
    if (codes < 0).any():
        example = column[codes < 0].iloc[0]
        raise SplitError(f"{path} column {name!r} has ids not listed in {_SPLIT_JSON}, e.g. {example!r}")
    return codes.astype(np.int32)


def _atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Call ``write(temporary_path)`` then move the result onto ``path`` in one step."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
