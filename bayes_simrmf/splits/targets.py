"""Per-benchmark degree targets: each known LLM's T pairs spread over the benchmarks it answered."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


from bayes_simrmf.splits.balance import _repair, balanced_block_selection


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


