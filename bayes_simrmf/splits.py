"""Evaluation protocol: known/new LLMs and items, balanced training pairs, test splits A-D.

The paper's protocol (see PAPER.md, "Evaluation protocol"):

* draw ``n_known_llms`` known LLMs and ``n_known_items`` known items at random (seeded);
* training pairs come only from observed cells of the known x known block, balanced so that every
  known LLM and every known item gets ``T`` training pairs;
* four test splits, each a uniform random sample of at most ``n_test_pairs`` observed cells:
  ``A`` known LLM x known item (the rest of the block), ``B`` known LLM x new item,
  ``C`` new LLM x known item, ``D`` new LLM x new item.

Real response matrices are not complete: whole benchmarks are answered by only some LLMs (on
``openllm-v2`` MMLU-Pro by 37 of 78). Uniform targets with a repair that does not care which rows
starve leave some known LLMs without any training pair and others trained on one benchmark only.
This module therefore adds four steps to the paper's recipe.

1. *Eligibility.* Only an LLM that answered at least ``min_answer_share`` of all items, and only an
   item answered by at least that share of all LLMs, can be drawn as known; the others are always
   new (they are still scored in B, C and D). The known sets are a seeded permutation of the
   eligible ids, drawn from their own random streams, so changing ``T`` never changes them.
2. *Known counts.* Explicit counts are used as given (a ConfigError if they exceed the eligible
   count). The default is the paper's 1,000 where at least 1,500 entities are eligible, else 2/3 of
   the eligible ones; the larger side's default is then capped at ``max_known_ratio`` times the
   smaller side's count, because the larger side's degree ``T * n_small / n_large`` would
   otherwise leave each of its entities only one or two training pairs.
3. *Per-benchmark proportional targets* (``item_groups``: the items' benchmark). ``T_used`` is
   ``T`` capped at the larger known count; the smaller known side (LLMs on a tie) is the one that
   should get ``T_used`` per entity, the larger side its share ``T_used * n_small / n_large``.

   *LLMs the smaller side (or equal).* Known LLM ``i`` gets ``T_i = min(T_used, its answered known
   items)``, split over the benchmarks it answered in proportion to its answered known items in
   each: ``q_ib``. The demand ``D_b = sum_i q_ib`` of benchmark ``b`` is spread over its known items
   as evenly as possible (floor/ceil), each item capped at the number of known LLMs that answered it
   (and at ``T_used``), the excess water-filled onto the other items of ``b``; so item degrees
   follow where the LLMs' answers are and may differ between benchmarks.

   *Items the smaller side.* Known item ``j`` wants ``min(T_used, known LLMs that answered it)``;
   ``D_b`` is the sum over the items of ``b``. The LLM totals are ``sum_b D_b`` spread as evenly as
   possible (each capped at its answered known items and at ``T_used``), and ``q_ib`` starts
   proportional to the answers as above and is then fitted to both margins (iterative
   proportional fitting, each ``q_ib`` capped at the answers), so that every item can get its
   ``T_used``. No known entity ever gets more than ``T_used`` training pairs.

   Rounding: largest remainder per LLM; the extra units go to the benchmarks whose running total
   over the LLMs handled so far (random order) lags its exact share most, so that each benchmark's
   total stays within about one pair of exact.
4. *No empty known entity.* After selection a known LLM or item with no training pair is moved to
   the new side (it is scored in B/C/D, not A) and counted in the degree report.

Selection (:func:`balanced_block_selection`, run once per benchmark sub-block with the row targets
``q_ib`` and the item targets, then a repair over the whole known x known block). Where a
benchmark's LLM quotas exceed what its items can take, the largest quotas are trimmed first
(max-min fair), so that no LLM is starved by the order of the greedy pass:

1. *Greedy*: LLMs in random order; each takes its target number of items among the items it has an
   observed cell with, preferring the items whose remaining need is largest relative to the LLMs
   still to come that could serve them (random tie-break). On a complete block this is the
   Gale-Ryser construction and meets every target exactly.
2. *Repair*: while some LLM and some item are both below target, find an augmenting path in the
   residual bipartite graph (breadth first, vectorised over the dense block) and flip it; each flip
   adds one training pair without changing any other degree. When no path exists the number of
   training pairs is maximal for these targets. The whole-block repair may give an LLM that is
   short in one benchmark a pair in another benchmark whose items are short.

The degree report (:attr:`Split.degree_report`) states the achieved degrees, whether the training
graph is *T-regular* (every known LLM got its nominal degree and every known item its nominal
``T_used`` or ``T_used * n_llms / n_items``) and one row per benchmark (:meth:`Split.degree_table`).
Only the known x known block is ever held as a dense matrix; everything else uses the pair arrays.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from bayes_simrmf.errors import ConfigError, DataError, SplitError
from bayes_simrmf.log import Log, sink

if TYPE_CHECKING:  # data.py is written alongside; only its duck-typed API is used here
    from bayes_simrmf.data import Dataset

__all__ = [
    "DEGREE_TABLE_COLUMNS",
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
#: Group name of items without a benchmark (or of every item when no groups are given).
_NO_GROUP = "(none)"

TEST_SPLIT_NAMES: tuple[str, ...] = ("A", "B", "C", "D")
SPLIT_NAMES: tuple[str, ...] = ("train", *TEST_SPLIT_NAMES)
#: Columns of :meth:`Split.degree_table` (and keys of each ``degree_report["per_benchmark"]`` row).
DEGREE_TABLE_COLUMNS: tuple[str, ...] = (
    "benchmark",
    "n_known_items",
    "n_known_llms_answering",
    "llm_degree_min",
    "llm_degree_max",
    "llm_degree_mean",
    "item_degree_min",
    "item_degree_max",
    "item_degree_mean",
    "target_pairs",
    "achieved_pairs",
)

# Version 1 still: the new degree-report keys are optional on load, so old files stay readable.
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

    _repair(observed, selected, row_targets, col_targets)
    return selected


def _repair(
    observed: np.ndarray, selected: np.ndarray, row_targets: np.ndarray, col_targets: np.ndarray
) -> None:
    """Add pairs along augmenting paths until no row and column below target can both gain one.

    Args:
        observed: bool ``(n_rows, n_cols)``, cell observed.
        selected: bool ``(n_rows, n_cols)``, chosen cells, none over target; modified in place.
        row_targets: int ``(n_rows,)``; col_targets: int ``(n_cols,)``.

    On return the number of chosen cells is maximal for these targets (a maximum flow).
    """
    row_targets = np.asarray(row_targets, dtype=np.int64)
    col_targets = np.asarray(col_targets, dtype=np.int64)
    row_need = row_targets - selected.sum(axis=1)
    col_need = col_targets - selected.sum(axis=0)
    while (row_need > 0).any() and (col_need > 0).any():
        if not _augment_once(observed, selected, row_need > 0, col_need > 0):
            break
        row_need = row_targets - selected.sum(axis=1)
        col_need = col_targets - selected.sum(axis=0)


# --------------------------------------------------------------------------------------------------
# Per-benchmark degree targets
# --------------------------------------------------------------------------------------------------


class _Targets(NamedTuple):
    """Training degree targets of the known x known block (``n_L`` known LLMs, ``n_I`` items)."""

    t_used: int  # T capped at the larger known count
    llm_nominal: tuple[int, int]  # (min, max) LLM degree on a complete block
    llm: np.ndarray  # int (n_L,): wanted training pairs per known LLM
    quotas: np.ndarray  # int (n_L, n_groups): llm split over the benchmarks it answered
    item: np.ndarray  # int (n_I,): per-benchmark demand spread over the benchmark's items
    item_nominal: tuple[int, int]  # (min, max) item degree on a complete block


def _group_answers(observed: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """int64 ``(n_rows, n_groups)``: observed cells of each row within each column group."""
    counts = np.zeros((observed.shape[0], n_groups), dtype=np.int64)
    for group in range(n_groups):
        counts[:, group] = observed[:, groups == group].sum(axis=1)
    return counts


def _capped_scale(weights: np.ndarray, caps: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """Per row ``r`` the values ``min(caps, s_r * weights)``, ``s_r`` chosen so the row sums to ``totals[r]``.

    Args:
        weights: float ``(n, k)`` >= 0; caps: ``(n, k)`` >= 0; totals: ``(n,)``.

    Returns:
        float ``(n, k)``; a row whose total exceeds what its caps allow gets its caps.
    """
    caps = caps.astype(np.float64)
    positive = weights > 0
    ratio = np.where(positive, caps / np.where(positive, weights, 1.0), 0.0)
    low, high = np.zeros(len(weights)), ratio.max(axis=1, initial=0.0)
    # Bisection on the scale, vectorised over rows; 60 halvings reach float precision.
    for _ in range(60):
        middle = (low + high) / 2
        too_small = np.minimum(caps, middle[:, None] * weights).sum(axis=1) < totals
        low, high = np.where(too_small, middle, low), np.where(too_small, high, middle)
    return np.minimum(caps, high[:, None] * weights)


def _rake(
    answered: np.ndarray, row_totals: np.ndarray, col_totals: np.ndarray, n_rounds: int = 200
) -> np.ndarray:
    """Fractional quotas with given margins, each at most its answered count (capped IPF).

    Starts from each row's total spread in proportion to its answered counts and alternately
    rescales columns and rows (iterative proportional fitting, every entry capped at ``answered``).

    Args:
        answered: int ``(n_rows, n_groups)``; row_totals: ``(n_rows,)``; col_totals: ``(n_groups,)``
            with the same sum.

    Returns:
        float ``(n_rows, n_groups)``: rows sum to ``row_totals``; columns to ``col_totals`` where the
        margins can be met, else as near as the fitting gets.
    """
    answered = answered.astype(np.float64)
    row_totals = np.asarray(row_totals, dtype=np.float64)
    col_totals = np.asarray(col_totals, dtype=np.float64)
    fitted = answered * (row_totals / np.maximum(answered.sum(axis=1), 1.0))[:, None]
    for _ in range(n_rounds):
        fitted = _capped_scale(fitted.T, answered.T, col_totals).T
        fitted = _capped_scale(fitted, answered, row_totals)
        if np.abs(fitted.sum(axis=0) - col_totals).max() < 1e-6:
            break
    return fitted


def _round_quotas(
    exact: np.ndarray, totals: np.ndarray, answered: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Round fractional quotas to integers, each row keeping its total.

    Largest-remainder rounding per row; which groups get a row's extra units depends also on how
    far each group's running total (over the rows handled so far, in random order) lags its exact
    total, so that each group's total stays within about one unit of exact.

    Args:
        exact: float ``(n_rows, n_groups)`` quotas, ``<= answered``, rows summing to ``totals``.
        totals: int ``(n_rows,)`` units per row.
        answered: int ``(n_rows, n_groups)`` answered known items per row and group.
        rng: random generator for the row order and ties.

    Returns:
        int64 ``(n_rows, n_groups)``: each within one of exact and ``<= answered``.
    """
    n_rows, n_groups = exact.shape
    # The slack absorbs float error, e.g. 2.9999999 from the fitting counts as 3.
    quotas = np.minimum(np.floor(exact + 1e-7), answered).astype(np.int64)
    remainders = np.clip(exact - quotas, 0.0, None)
    extras = np.asarray(totals, dtype=np.int64) - quotas.sum(axis=1)
    lag = np.zeros(n_groups)  # sum over handled rows of (exact - quota)
    for row in rng.permutation(n_rows):
        n_extra = int(extras[row])
        if n_extra > 0:
            # Only groups with a fractional part may round up, so no quota exceeds its answers.
            can_round_up = (remainders[row] > 1e-7) & (quotas[row] < answered[row])
            priority = np.where(can_round_up, remainders[row] + lag + 1e-9 * rng.random(n_groups), -np.inf)
            chosen = np.argsort(-priority, kind="stable")[: min(n_extra, int(can_round_up.sum()))]
            quotas[row, chosen] += 1
        lag += exact[row] - quotas[row]
    return quotas


def _water_fill(total: int, caps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Spread ``total`` over ``(n,)`` slots as evenly as possible, slot ``k`` at most ``caps[k]``.

    Returns:
        int64 ``(n,)``: ``min(caps, L)`` or ``L + 1`` for one level ``L`` (the +1 on random slots);
        all of ``caps`` when ``total`` exceeds their sum.
    """
    caps = np.asarray(caps, dtype=np.int64)
    if total >= caps.sum():
        return caps.copy()
    low, high = 0, int(caps.max())  # largest level whose capped sum does not exceed the total
    while low < high:
        middle = (low + high + 1) // 2
        if np.minimum(caps, middle).sum() <= total:
            low = middle
        else:
            high = middle - 1
    targets = np.minimum(caps, low)
    open_slots = np.flatnonzero(caps > low)
    targets[rng.permutation(open_slots)[: total - int(targets.sum())]] += 1
    return targets


def _item_targets(
    demand: np.ndarray, groups: np.ndarray, caps: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Per-item targets ``(n_items,)``: each group's ``demand[g]`` water-filled over its items.

    Args:
        demand: int ``(n_groups,)`` pairs wanted in each group.
        groups: int ``(n_items,)`` group code of each item.
        caps: int ``(n_items,)`` most pairs an item may get (its known LLMs that answered it, at
            most ``T_used``).
    """
    targets = np.zeros(len(groups), dtype=np.int64)
    for group, wanted in enumerate(demand):
        columns = np.flatnonzero(groups == group)
        if columns.size:
            targets[columns] = _water_fill(int(wanted), caps[columns], rng)
    return targets


def _select_by_group(
    observed: np.ndarray, targets: _Targets, groups: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Training pairs: :func:`balanced_block_selection` per benchmark, then a whole-block repair.

    Args:
        observed: bool ``(n_L, n_I)`` observed known x known cells.
        targets: the block's degree targets.
        groups: int ``(n_I,)`` benchmark code of each known item.
        rng: random generator of the selection.

    Returns:
        bool ``(n_L, n_I)`` chosen cells; no LLM or item exceeds its target.
    """
    selected = np.zeros(observed.shape, dtype=bool)
    n_groups = targets.quotas.shape[1]
    for group in range(n_groups):
        rows = np.flatnonzero(targets.quotas[:, group] > 0)
        columns = np.flatnonzero(groups == group)
        if rows.size and columns.size:
            row_targets = targets.quotas[rows, group]
            capacity = int(targets.item[columns].sum())
            if row_targets.sum() > capacity:
                # Over-demanded benchmark: trim the largest quotas first (max-min fair) rather than
                # let the greedy's last rows starve; the whole-block repair may place the rest.
                row_targets = _water_fill(capacity, row_targets, rng)
            cells = np.ix_(rows, columns)
            selected[cells] = balanced_block_selection(
                observed[cells], row_targets, targets.item[columns], rng
            )
    if n_groups > 1:
        # A pair lost to a full benchmark may still fit in another benchmark the LLM answered.
        _repair(observed, selected, targets.llm, targets.item)
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


def _draw_known(eligible: np.ndarray, n_known: int, rng: np.random.Generator) -> np.ndarray:
    """bool ``(n,)``: ``n_known`` of the ``eligible`` (bool ``(n,)``) entries, a seeded permutation."""
    candidates = np.flatnonzero(eligible)
    known = np.zeros(len(eligible), dtype=bool)
    known[candidates[rng.permutation(len(candidates))[:n_known]]] = True
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


@dataclass(frozen=True)
class Protocol:
    """The paper's evaluation protocol, with its seed.

    Attributes:
        n_known_llms: number of known LLMs; None -> 1,000 where at least 1,500 LLMs are eligible,
            else ``round(2/3 * n_eligible_llms)``, then the ``max_known_ratio`` cap.
        n_known_items: number of known items; same default rule.
        T: training pairs per known LLM and per known item (the smaller known side gets T, the
            larger side ``T * n_small / n_large``); capped at the larger known count, and per LLM at
            the known items it answered (see the module docstring).
        n_test_pairs: at most this many pairs per test split (uniform random sample).
        seed: seed of every random choice; the same seed and data give the same split.
        min_answer_share: in (0, 1]; only an LLM that answered at least this share of all items,
            and only an item answered by at least this share of all LLMs, can be known.
        max_known_ratio: >= 1; a default known count is capped at this many times the other
            side's known count (explicit counts are never changed).
    """

    n_known_llms: int | None = None
    n_known_items: int | None = None
    T: int = 300
    n_test_pairs: int = 1_000_000
    seed: int = 0
    min_answer_share: float = 0.25
    max_known_ratio: float = 10.0

    def __post_init__(self) -> None:
        _check_int("n_known_llms", self.n_known_llms, minimum=1, allow_none=True)
        _check_int("n_known_items", self.n_known_items, minimum=1, allow_none=True)
        _check_int("T", self.T, minimum=1)
        _check_int("n_test_pairs", self.n_test_pairs, minimum=0)
        _check_int("seed", self.seed, minimum=0)
        share = _check_real(
            "min_answer_share", self.min_answer_share, minimum=0.0, inclusive=False, maximum=1.0
        )
        ratio = _check_real("max_known_ratio", self.max_known_ratio, minimum=1.0, inclusive=True)
        # Plain ints and floats keep the protocol hashable, comparable and JSON-serialisable.
        for name in ("n_known_llms", "n_known_items", "T", "n_test_pairs", "seed"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, int(value))
        object.__setattr__(self, "min_answer_share", share)
        object.__setattr__(self, "max_known_ratio", ratio)

    def resolve(
        self,
        n_llms: int,
        n_items: int,
        *,
        log: Log | None = None,
        n_eligible_llms: int | None = None,
        n_eligible_items: int | None = None,
    ) -> tuple[int, int]:
        """Known counts actually drawn for data with ``n_llms`` LLMs and ``n_items`` items.

        Args:
            n_llms, n_items: sizes of the data.
            log: receives one line per decision; None silences.
            n_eligible_llms, n_eligible_items: how many may be known (``min_answer_share``);
                None -> all.

        Returns:
            ``(n_known_llms, n_known_items)`` before any known entity without training pairs is
            moved to the new side.

        Raises:
            SplitError: the data have no LLM or no item.
            ConfigError: an explicit known count exceeds the number available or eligible, or
                nothing is eligible.
        """
        emit = sink(log)
        counts = {}
        for axis, requested, n_available, n_eligible in (
            ("llms", self.n_known_llms, n_llms, n_llms if n_eligible_llms is None else n_eligible_llms),
            ("items", self.n_known_items, n_items, n_items if n_eligible_items is None else n_eligible_items),
        ):
            counts[axis] = self._resolve_axis(axis, requested, n_available, n_eligible, emit)
        self._cap_default_ratio(counts, emit)
        for axis, n_available in (("llms", n_llms), ("items", n_items)):
            if counts[axis] == n_available:
                empty = "C and D" if axis == "llms" else "B and D"
                emit(
                    f"warning: n_known_{axis}={counts[axis]} makes every {axis[:-1]} known; "
                    f"splits {empty} will be empty"
                )
        return counts["llms"], counts["items"]

    def _resolve_axis(
        self, axis: str, requested: int | None, n_available: int, n_eligible: int, emit: Log
    ) -> int:
        """Known count of one axis (``"llms"`` / ``"items"``) by the default rule or as requested."""
        argument, other = f"n_known_{axis}", ("items" if axis == "llms" else "llms")
        if n_available < 1:
            raise SplitError(f"the data have {n_available} {axis}; a split needs at least one")
        eligible = (
            f"{axis} with answers on at least min_answer_share={self.min_answer_share:g} of the {other}"
        )
        if n_eligible < 1:
            raise ConfigError(f"there are no {eligible}; lower min_answer_share")
        if requested is not None:
            if requested > n_available:
                raise ConfigError(f"{argument}={requested} exceeds the {n_available} {axis} in the data")
            if requested > n_eligible:
                raise ConfigError(
                    f"{argument}={requested} exceeds the {n_eligible} eligible {axis} ({eligible}); "
                    f"lower {argument} or min_answer_share"
                )
            return int(requested)
        which = "eligible " if n_eligible < n_available else ""
        if n_eligible >= _PAPER_DEFAULT_MIN_ENTITIES:
            emit(f"{argument}: using the paper's {PAPER_N_KNOWN} of {n_eligible} {which}{axis}")
            return PAPER_N_KNOWN
        n_known = max(1, round(_FALLBACK_KNOWN_FRACTION * n_eligible))
        emit(
            f"{argument}: using {n_known} = round(2/3 * {n_eligible}) {which}{axis}, because "
            f"fewer than {_PAPER_DEFAULT_MIN_ENTITIES} {axis} leave too few new ones "
            f"for the paper's {PAPER_N_KNOWN}"
        )
        return n_known

    def _cap_default_ratio(self, counts: dict[str, int], emit: Log) -> None:
        """Cap the larger side's *default* count at ``max_known_ratio`` x the smaller side's count.

        Otherwise e.g. 52 known LLMs x 1,000 known items leave each known item only T*52/1000
        training pairs (1-2 at T=30). Modifies ``counts`` in place.
        """
        requested = {"llms": self.n_known_llms, "items": self.n_known_items}
        larger = "items" if counts["items"] > counts["llms"] else "llms"
        smaller = "llms" if larger == "items" else "items"
        if requested[larger] is not None:
            return
        cap = max(1, math.floor(self.max_known_ratio * counts[smaller] + 1e-9))
        if counts[larger] > cap:
            emit(
                f"n_known_{larger}: capping the default {counts[larger]} at max_known_ratio="
                f"{self.max_known_ratio:g} x {counts[smaller]} known {smaller} = {cap}, so that each "
                f"known {larger[:-1]} still gets about T*{counts[smaller]}/{cap} training pairs"
            )
            counts[larger] = cap

    def split(self, dataset: Dataset, *, log: Log | None = None) -> Split:
        """Apply the protocol to a :class:`bayes_simrmf.data.Dataset`.

        The items' ``benchmark`` column (if the items table has one) gives the benchmark groups of
        :meth:`split_arrays`; items without one form the group ``"(none)"``.
        """
        llm_idx, item_idx, correct = dataset.codes()
        item_ids = dataset.item_ids()
        return self.split_arrays(
            dataset.llm_ids(),
            item_ids,
            llm_idx,
            item_idx,
            correct,
            item_groups=_dataset_benchmarks(dataset, item_ids),
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
        item_groups: np.ndarray | None = None,
        data_fingerprint: str | None = None,
        log: Log | None = None,
    ) -> Split:
        """Apply the protocol to observed pairs given as codes.

        Args:
            llm_ids: str ``(n_llms,)`` unique LLM ids.
            item_ids: str ``(n_items,)`` unique item ids.
            llm_idx: int ``(n_pairs,)`` index into ``llm_ids`` of each observed pair.
            item_idx: int ``(n_pairs,)`` index into ``item_ids``.
            correct: int ``(n_pairs,)`` 0/1 scores; each (llm, item) cell at most once.
            item_groups: ``(n_items,)`` benchmark label of each item id (training degrees are
                spread over benchmarks in proportion); None -> one group.
            data_fingerprint: stored in the split to tie it to its data.
            log: receives one line per decision (defaults, caps, achieved balance); None silences.

        Returns:
            The :class:`Split`. Depends only on the ids, the groups, the set of observed cells and
            the protocol, not on the order of the pairs.
        """
        emit = sink(log)
        llm_ids, item_ids, llm_idx, item_idx, correct = _validate_arrays(
            llm_ids, item_ids, llm_idx, item_idx, correct
        )
        shape = (len(llm_ids), len(item_ids))
        groups, group_names = _group_codes(item_groups, shape[1])
        known_llm_mask, known_item_mask, n_eligible = self._draw_known_sets(llm_idx, item_idx, shape, emit)
        known_llms, known_items = np.flatnonzero(known_llm_mask), np.flatnonzero(known_item_mask)
        block_correct = _dense_block(llm_idx, item_idx, correct, known_llms, known_items, shape)
        observed, known_groups = block_correct >= 0, groups[known_items]

        targets = self._degree_targets(observed, known_groups, len(group_names), emit)
        selected = _select_by_group(observed, targets, known_groups, _stream(self.seed, _STREAM_TRAIN))
        keep_llms, keep_items = _known_with_pairs(selected, emit)
        degree_report = _degree_report(
            selected,
            observed,
            targets,
            (keep_llms, keep_items),
            (known_groups, group_names),
            self.T,
            n_eligible,
        )
        _log_degrees(degree_report, emit)

        known_llm_mask[known_llms[~keep_llms]] = False
        known_item_mask[known_items[~keep_items]] = False
        kept = np.ix_(keep_llms, keep_items)
        pairs, llm_order, item_order = self._assemble_pairs(
            block_correct[kept],
            selected[kept],
            known_llm_mask,
            known_item_mask,
            (llm_idx, item_idx, correct),
            emit,
        )
        return Split(
            protocol=self,
            llms=llm_ids[llm_order],
            items=item_ids[item_order],
            n_known_llms=int(known_llm_mask.sum()),
            n_known_items=int(known_item_mask.sum()),
            pairs=pairs,
            degree_report=degree_report,
            data_fingerprint=data_fingerprint,
        )

    def _draw_known_sets(
        self, llm_idx: np.ndarray, item_idx: np.ndarray, shape: tuple[int, int], emit: Log
    ) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
        """Known LLMs and items, drawn among the eligible ones.

        Returns:
            bool ``(n_llms,)`` and ``(n_items,)`` known masks, and ``(n_eligible_llms,
            n_eligible_items)``.
        """
        n_llms, n_items = shape
        llm_threshold = _share_threshold(self.min_answer_share, n_items)
        item_threshold = _share_threshold(self.min_answer_share, n_llms)
        eligible_llms = np.bincount(llm_idx, minlength=n_llms) >= llm_threshold
        eligible_items = np.bincount(item_idx, minlength=n_items) >= item_threshold
        n_eligible = (int(eligible_llms.sum()), int(eligible_items.sum()))
        if n_eligible != shape:
            emit(
                f"eligible to be known (min_answer_share={self.min_answer_share:g}): {n_eligible[0]} of "
                f"{n_llms} LLMs answered >= {llm_threshold} of the {n_items} items, {n_eligible[1]} of "
                f"{n_items} items were answered by >= {item_threshold} of the {n_llms} LLMs; "
                "the others are always new"
            )
        n_known_llms, n_known_items = self.resolve(
            n_llms, n_items, log=emit, n_eligible_llms=n_eligible[0], n_eligible_items=n_eligible[1]
        )
        # Own streams per axis: T, the groups and the other axis never change who is known.
        known_llms = _draw_known(eligible_llms, n_known_llms, _stream(self.seed, _STREAM_KNOWN_LLMS))
        known_items = _draw_known(eligible_items, n_known_items, _stream(self.seed, _STREAM_KNOWN_ITEMS))
        return known_llms, known_items, n_eligible

    def _degree_targets(
        self, observed: np.ndarray, groups: np.ndarray, n_groups: int, emit: Log
    ) -> _Targets:
        """Training degree targets of the known block (see the module docstring).

        The smaller known side (LLMs on a tie) gets ``T_used`` per entity, capped at its answers;
        the larger side's targets follow from them.

        Args:
            observed: bool ``(n_L, n_I)`` observed known x known cells.
            groups: int ``(n_I,)`` benchmark code of each known item, in ``[0, n_groups)``.
        """
        rng = _stream(self.seed, _STREAM_DEGREE_TARGETS)
        n_known_llms, n_known_items = observed.shape
        t_used, llm_nominal, item_nominal = self._nominal_degrees(n_known_llms, n_known_items, emit)
        answered = _group_answers(observed, groups, n_groups)
        item_answers = observed.sum(axis=0).astype(np.int64)
        if n_known_llms <= n_known_items:
            llm = np.minimum(t_used, answered.sum(axis=1))
            n_short = int((llm < t_used).sum())
            _log_short(n_short, n_known_llms, "LLMs answered fewer known items", t_used, emit)
            # Each LLM's pairs go to the benchmarks it answered, in proportion to its answers there.
            exact = answered * (llm / np.maximum(answered.sum(axis=1), 1))[:, None]
        else:
            item_wanted = np.minimum(t_used, item_answers)
            _log_short(
                int((item_wanted < t_used).sum()), n_known_items, "items were answered by fewer known LLMs",
                t_used, emit,
            )
            demand = np.bincount(groups, weights=item_wanted, minlength=n_groups).astype(np.int64)
            llm = _water_fill(int(demand.sum()), np.minimum(answered.sum(axis=1), t_used), rng)
            # Proportional to the answers, adjusted (IPF) so each benchmark's items get their T.
            exact = _rake(answered, llm, demand)
        quotas = _round_quotas(exact, llm, answered, rng)
        # No known entity gets more than T_used pairs, even where others' missing answers push it.
        item = _item_targets(quotas.sum(axis=0), groups, np.minimum(item_answers, t_used), rng)
        return _Targets(t_used, llm_nominal, llm, quotas, item, item_nominal)

    def _nominal_degrees(
        self, n_known_llms: int, n_known_items: int, emit: Log
    ) -> tuple[int, tuple[int, int], tuple[int, int]]:
        """Degrees on a complete block: the smaller side T_used each, the larger T_used*n_small/n_large.

        Returns:
            ``(T_used, (llm_min, llm_max), (item_min, item_max))``; the larger side's range is the
            floor and ceil of its share.
        """
        n_small, n_large = min(n_known_llms, n_known_items), max(n_known_llms, n_known_items)
        t_used = min(self.T, n_large)
        if t_used < self.T:
            emit(
                f"T={self.T} exceeds the {n_large} known entities a node can be paired with; "
                f"using T={t_used}"
            )
        share = ((t_used * n_small) // n_large, -(-(t_used * n_small) // n_large))
        if n_known_llms != n_known_items:
            smaller = "llm" if n_known_llms < n_known_items else "item"
            larger = "item" if smaller == "llm" else "llm"
            emit(
                f"unequal known counts: each known {smaller} gets T={t_used} training pairs, "
                f"each known {larger} {share[0] if share[0] == share[1] else f'{share[0]}-{share[1]}'} "
                f"(T*{n_small}/{n_large} = {t_used * n_small / n_large:.2f})"
            )
        if n_known_llms <= n_known_items:
            return t_used, (t_used, t_used), share
        return t_used, share, (t_used, t_used)

    def _assemble_pairs(
        self,
        block_correct: np.ndarray,
        selected: np.ndarray,
        known_llm_mask: np.ndarray,
        known_item_mask: np.ndarray,
        observed_pairs: tuple[np.ndarray, np.ndarray, np.ndarray],
        emit: Log,
    ) -> tuple[dict[str, Pairs], np.ndarray, np.ndarray]:
        """The five pair sets, coded into the reordered ids (known first, then new).

        Args:
            block_correct: int8 ``(n_known_llms, n_known_items)`` final known block, -1 unobserved.
            selected: bool, same shape, the training pairs.
            known_llm_mask, known_item_mask: bool ``(n_llms,)`` / ``(n_items,)`` final known sets.
            observed_pairs: ``(llm_idx, item_idx, correct)``, each ``(n_pairs,)``.

        Returns:
            ``(pairs, llm_order, item_order)``: the orders are ``(n_llms,)`` / ``(n_items,)`` indices
            into the given ids; within known and within new, ids keep their given order.
        """
        llm_idx, item_idx, correct = observed_pairs
        n_items = len(known_item_mask)
        llm_order = np.concatenate([np.flatnonzero(known_llm_mask), np.flatnonzero(~known_llm_mask)])
        item_order = np.concatenate([np.flatnonzero(known_item_mask), np.flatnonzero(~known_item_mask)])
        old_to_new_llm = np.empty(len(llm_order), dtype=np.int64)
        old_to_new_llm[llm_order] = np.arange(len(llm_order))
        old_to_new_item = np.empty(n_items, dtype=np.int64)
        old_to_new_item[item_order] = np.arange(n_items)
        pair_llm, pair_item = old_to_new_llm[llm_idx], old_to_new_item[item_idx]
        pair_llm_known = known_llm_mask[llm_idx]
        pair_item_known = known_item_mask[item_idx]

        train_llm, train_item = np.nonzero(selected)
        pairs = {"train": Pairs(train_llm, train_item, block_correct[train_llm, train_item])}
        rest_llm, rest_item = np.nonzero((block_correct >= 0) & ~selected)
        pairs["A"] = self._sample(rest_llm, rest_item, block_correct[rest_llm, rest_item], "A", n_items, emit)
        for name, llm_known, item_known in (("B", True, False), ("C", False, True), ("D", False, False)):
            in_split = (pair_llm_known == llm_known) & (pair_item_known == item_known)
            pairs[name] = self._sample(
                pair_llm[in_split], pair_item[in_split], correct[in_split], name, n_items, emit
            )
        return pairs, llm_order, item_order

    def _sample(
        self,
        llm: np.ndarray,
        item: np.ndarray,
        correct: np.ndarray,
        name: str,
        n_items: int,
        emit: Log,
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


def _per_benchmark_rows(
    selected: np.ndarray, observed: np.ndarray, groups: np.ndarray, names: list[str], quotas: np.ndarray
) -> list[dict[str, Any]]:
    """One row per benchmark (keys :data:`DEGREE_TABLE_COLUMNS`), JSON-ready.

    Args:
        selected, observed: bool ``(n_L, n_I)`` training pairs and observed cells of the final block.
        groups: int ``(n_I,)`` benchmark code of each final known item.
        names: benchmark name of each code.
        quotas: int ``(n_L0, n_groups)`` wanted pairs per drawn known LLM (demoted ones included).
    """
    rows = []
    for code, name in enumerate(names):
        columns = groups == code
        answering = observed[:, columns].any(axis=1)
        chosen = selected[:, columns]
        llm, item = _stats(chosen[answering].sum(axis=1)), _stats(chosen.sum(axis=0))
        rows.append(
            {
                "benchmark": name,
                "n_known_items": int(columns.sum()),
                "n_known_llms_answering": int(answering.sum()),
                **{f"llm_degree_{key}": value for key, value in llm.items()},
                **{f"item_degree_{key}": value for key, value in item.items()},
                "target_pairs": int(quotas[:, code].sum()),
                "achieved_pairs": int(chosen.sum()),
            }
        )
    return rows


def _degree_report(
    selected: np.ndarray,
    observed: np.ndarray,
    targets: _Targets,
    keep: tuple[np.ndarray, np.ndarray],
    benchmarks: tuple[np.ndarray, list[str]],
    t_requested: int,
    n_eligible: tuple[int, int],
) -> dict[str, Any]:
    """Achieved versus wanted training degrees (JSON-serialisable).

    Args:
        selected, observed: bool ``(n_L0, n_I0)`` over the drawn known block (before demotion).
        targets: the block's degree targets.
        keep: bool ``(n_L0,)`` and ``(n_I0,)``, the known LLMs and items that got a training pair.
        benchmarks: int ``(n_I0,)`` benchmark code per drawn known item, and the names.
        t_requested: the protocol's T.
        n_eligible: ``(n_eligible_llms, n_eligible_items)``.
    """
    keep_llms, keep_items = keep
    kept = np.ix_(keep_llms, keep_items)
    chosen = selected[kept]
    llm_degree, item_degree = chosen.sum(axis=1), chosen.sum(axis=0)
    llm_targets, item_targets = targets.llm[keep_llms], targets.item[keep_items]
    # Wanted pairs of every drawn known LLM: a demoted one's target counts as shortfall.
    n_target_pairs, n_train_pairs = int(targets.llm.sum()), int(chosen.sum())
    item_low, item_high = targets.item_nominal
    llm_low, llm_high = targets.llm_nominal
    n_llms_off = int(((llm_degree < llm_low) | (llm_degree > llm_high)).sum())
    n_items_off = int(((item_degree < item_low) | (item_degree > item_high)).sum())
    n_demoted = (int((~keep_llms).sum()), int((~keep_items).sum()))
    return {
        "T_requested": int(t_requested),
        "T_used": int(targets.t_used),
        "target_llm_degree": _stats(llm_targets),
        "target_item_degree": _stats(item_targets),
        "llm_degree": _stats(llm_degree),
        "item_degree": _stats(item_degree),
        "n_target_pairs": n_target_pairs,
        "n_train_pairs": n_train_pairs,
        "shortfall_pairs": n_target_pairs - n_train_pairs,
        "n_llms_below_target": int((llm_degree < llm_targets).sum()),
        "n_items_below_target": int((item_degree < item_targets).sum()),
        "nominal_llm_degree": {"min": int(llm_low), "max": int(llm_high)},
        "nominal_item_degree": {"min": int(item_low), "max": int(item_high)},
        "n_llms_off_nominal": n_llms_off,
        "n_items_off_nominal": n_items_off,
        "t_regular": bool(n_llms_off == 0 and n_items_off == 0 and n_demoted == (0, 0)),
        "n_demoted_llms": n_demoted[0],
        "n_demoted_items": n_demoted[1],
        "n_eligible_llms": int(n_eligible[0]),
        "n_eligible_items": int(n_eligible[1]),
        "per_benchmark": _per_benchmark_rows(
            chosen, observed[kept], benchmarks[0][keep_items], benchmarks[1], targets.quotas
        ),
    }


def _benchmark_line(row: dict[str, Any]) -> str:
    """One log line of a ``per_benchmark`` row."""
    return (
        f"  {row['benchmark']}: {row['n_known_items']} known items, {row['n_known_llms_answering']} "
        f"known LLMs answering; LLM degree {row['llm_degree_min']}-{row['llm_degree_max']} "
        f"(mean {row['llm_degree_mean']:.2f}), item degree {row['item_degree_min']}-"
        f"{row['item_degree_max']} (mean {row['item_degree_mean']:.2f}); "
        f"{row['achieved_pairs']} of {row['target_pairs']} wanted pairs"
    )


def _log_degrees(report: dict[str, Any], emit: Log) -> None:
    """One line on the achieved balance; when not T-regular one more line and one per benchmark."""
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
    if report["t_regular"]:
        emit(line + "; T-regular")
        return
    emit(line)
    llm_range, item_range = (
        f"{nominal['min']}" if nominal["min"] == nominal["max"] else f"{nominal['min']}-{nominal['max']}"
        for nominal in (report["nominal_llm_degree"], report["nominal_item_degree"])
    )
    emit(
        f"training degrees are not T-regular (T_used={report['T_used']}): {report['n_llms_off_nominal']} "
        f"known LLMs are off {llm_range} and {report['n_items_off_nominal']} known items off {item_range}; "
        f"{report['n_demoted_llms']} LLMs and {report['n_demoted_items']} items were moved to the new side; "
        "per benchmark:"
    )
    for row in report["per_benchmark"]:
        emit(_benchmark_line(row))


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
        n_known_llms: number of known LLMs actually used (after known LLMs without a training pair
            were moved to the new side).
        n_known_items: number of known items actually used (same).
        pairs: ``"train"``, ``"A"``, ``"B"``, ``"C"``, ``"D"`` -> :class:`Pairs` coded into
            ``llms`` / ``items``; the five sets are disjoint.
        degree_report: achieved training degrees per known LLM and item versus their targets,
            whether they are T-regular, the eligible and demoted counts, and one row per benchmark
            (``"per_benchmark"``, see :meth:`degree_table`).
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
        """Plain-text table: pairs, LLMs, items and mean score per split, then the training degrees
        (overall, then per benchmark as in :meth:`degree_table`)."""
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
            line = (
                f"train degree per known LLM {llm['min']}-{llm['max']} (mean {llm['mean']:.2f}), "
                f"per known item {item['min']}-{item['max']} (mean {item['mean']:.2f}); "
                f"shortfall {report['shortfall_pairs']} pairs"
            )
            if "t_regular" in report:  # splits saved before the per-benchmark report lack these
                line += (
                    f"; {'T-regular' if report['t_regular'] else 'not T-regular'}; moved to new: "
                    f"{report['n_demoted_llms']} LLMs, {report['n_demoted_items']} items"
                )
            lines.append(line)
        table = self.degree_table()
        if len(table):
            lines.append("training degrees per benchmark:")
            lines.append(table.to_string(index=False, float_format=lambda value: f"{value:.2f}"))
        return "\n".join(lines)

    def degree_table(self) -> pd.DataFrame:
        """Training degrees per benchmark, one row each, columns :data:`DEGREE_TABLE_COLUMNS`.

        ``llm_degree_*`` are over the known LLMs that answered a known item of the benchmark,
        ``item_degree_*`` over its known items; ``target_pairs`` / ``achieved_pairs`` are wanted and
        chosen training pairs in it. Empty for splits saved before the report had these rows.
        """
        rows = self.degree_report.get("per_benchmark", []) if self.degree_report else []
        return pd.DataFrame(rows, columns=list(DEGREE_TABLE_COLUMNS))

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
