"""Validation of observed (LLM, item, correct) pairs as estimators receive them: the one place
where ids and scores entering a fit or a prediction are checked."""

from __future__ import annotations

import numpy as np

from bayes_simrmf.errors import ConfigError

__all__ = ["as_id_array", "check_pairs"]


def as_id_array(values, name: str) -> np.ndarray:
    """``values`` as a 1-D str array; ConfigError naming ``name`` otherwise."""
    array = np.asarray(values, dtype=object)
    if array.ndim != 1:
        raise ConfigError(f"{name} must be a 1-D sequence of ids, got shape {array.shape}")
    return array.astype(str)


def check_pairs(llm, item, correct=None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Ids as str arrays and ``correct`` as int8 0/1 (None if not given); raises ConfigError naming
    the rows at fault."""
    llm = as_id_array(llm, "llm")
    item = as_id_array(item, "item")
    if len(llm) != len(item):
        raise ConfigError(f"llm and item must have equal length; got {len(llm)} and {len(item)}")
    if correct is None:
        return llm, item, None
    correct = np.asarray(correct)
    if len(correct) != len(llm):
        raise ConfigError(f"correct must have one value per pair; got {len(correct)} for {len(llm)} pairs")
    if len(correct) == 0:
        raise ConfigError("cannot fit on zero observed pairs")
    finite = np.isfinite(correct.astype(float))
    if not finite.all() or not np.isin(correct[finite], (0, 1)).all():
        bad = np.flatnonzero(~finite | ~np.isin(correct, (0, 1)))
        raise ConfigError(
            f"correct must hold 0/1 values; {len(bad)} do not, e.g. rows {bad[:5].tolist()} "
            f"with values {correct[bad[:5]].tolist()}"
        )
    return llm, item, correct.astype(np.int8)
