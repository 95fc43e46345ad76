"""Balanced training pairs: a T-regular block of known LLMs × known items where the data allow."""

from __future__ import annotations


import numpy as np


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


