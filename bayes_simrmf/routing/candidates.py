"""The LLMs a router may choose from, each with a cost per call (:class:`Candidates`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from bayes_simrmf.errors import ConfigError, UnknownEntityError
from bayes_simrmf.routing.common import _examples


@dataclass(frozen=True, eq=False)
class Candidates:
    """The LLMs a router may choose from, each with a cost per call.

    Attributes:
        llms: str ``(n_candidates,)`` unique ids.
        costs: float64 ``(n_candidates,)`` finite, ≥ 0, in the caller's unit (dollars, parameter count, ...).
    """

    llms: np.ndarray
    costs: np.ndarray

    def __post_init__(self) -> None:
        llms = np.asarray(self.llms, dtype=object)
        if llms.ndim != 1 or len(llms) == 0:
            raise ConfigError(f"candidates need a non-empty 1-D list of LLM ids, got shape {llms.shape}")
        blank = np.flatnonzero(pd.isna(llms) | (llms.astype(str) == ""))
        if len(blank):
            raise ConfigError(
                f"candidates: {len(blank)} LLM id(s) are missing or empty, rows {_examples(blank.tolist())}")
        llms = llms.astype(str)
        try:
            costs = np.asarray(self.costs, dtype=np.float64)
        except (TypeError, ValueError):
            raise ConfigError(
                f"candidates: cost must be numeric, got {_examples(np.asarray(self.costs).tolist())}") from None
        if costs.shape != llms.shape:
            raise ConfigError(
                f"candidates: need one cost per LLM; got {costs.shape[0] if costs.ndim else 1} for {len(llms)}")
        duplicated = pd.Series(llms).duplicated(keep=False).to_numpy()
        if duplicated.any():
            raise ConfigError(
                f"candidates: LLM ids must be unique; {sorted(set(llms[duplicated]))[:5]} appear more than once "
                f"(rows {_examples(np.flatnonzero(duplicated).tolist())})"
            )
        bad = ~np.isfinite(costs) | (costs < 0)
        if bad.any():
            rows = np.flatnonzero(bad)
            raise ConfigError(
                f"candidates: cost must be finite and >= 0; {len(rows)} are not, e.g. "
                + ", ".join(f"row {row} ({llms[row]}: {costs[row]})" for row in rows[:5])
            )
        object.__setattr__(self, "llms", llms)
        object.__setattr__(self, "costs", costs)

    def __len__(self) -> int:
        return len(self.llms)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, *, model=None, source: str = "candidates") -> Candidates:
        """Candidates from a table with columns ``llm`` and ``cost`` (other columns are ignored).

        Args:
            model: if given, every id must be in it (:class:`UnknownEntityError` naming those that are not).
            source: how errors name the table (e.g. its file).
        """
        missing = {"llm", "cost"} - set(frame.columns)
        if missing:
            raise ConfigError(
                f"{source}: needs columns llm and cost; missing {sorted(missing)} (has {list(frame.columns)})")
        costs = pd.to_numeric(frame["cost"], errors="coerce").to_numpy(dtype=np.float64)
        unparsed = np.flatnonzero(np.isnan(costs) & frame["cost"].notna().to_numpy())
        if len(unparsed):
            raise ConfigError(
                f"{source}: column cost must be numeric; rows {_examples(unparsed.tolist())} hold "
                f"{_examples(frame['cost'].iloc[unparsed].tolist())}"
            )
        try:
            candidates = cls(frame["llm"].to_numpy(dtype=object), costs)
        except ConfigError as error:
            raise ConfigError(f"{source}: {str(error).removeprefix('candidates: ')}") from None
        if model is not None:
            candidates.check_known(model, source=source)
        return candidates

    @classmethod
    def uniform(cls, llms: Sequence[str], cost: float = 1.0) -> Candidates:
        """Every LLM at the same cost."""
        return cls(np.asarray(llms, dtype=object), np.full(len(llms), float(cost)))

    def check_known(self, model, *, source: str = "candidates") -> None:
        """Raise :class:`UnknownEntityError` naming the ids the model does not hold."""
        unknown = np.setdiff1d(self.llms, np.asarray(model.llms_, dtype=str))
        if len(unknown):
            raise UnknownEntityError(
                f"{source}: {len(unknown)} LLM id(s) are not in the model, e.g. {_examples(unknown.tolist())}; "
                "fold them in first with model.fold_in('llm', ids, answers=..., side=...)"
            )

    def index(self, llm: str, what: str = "fallback") -> int:
        """Position of ``llm`` among the candidates (ConfigError if absent)."""
        positions = np.flatnonzero(self.llms == str(llm))
        if not len(positions):
            raise ConfigError(f"{what} LLM {llm!r} is not among the candidates {_examples(self.llms.tolist(), 10)}")
        return int(positions[0])

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"llm": self.llms, "cost": self.costs})


def _as_candidates(candidates, model=None) -> Candidates:
    if isinstance(candidates, pd.DataFrame):
        return Candidates.from_frame(candidates, model=model)
    if not isinstance(candidates, Candidates):
        raise ConfigError(
            f"candidates must be a Candidates or a DataFrame with llm, cost; got {type(candidates).__name__}")
    if model is not None:
        candidates.check_known(model)
    return candidates


def _item_ids(items, what: str = "items") -> np.ndarray:
    """Unique question ids ``(n_questions,)`` from a sequence or a DataFrame with an ``item`` column."""
    if isinstance(items, pd.DataFrame):
        if "item" not in items.columns:
            raise ConfigError(f"{what}: needs an item column, has {list(items.columns)}")
        items = items["item"]
    ids = np.asarray(items, dtype=object)
    if ids.ndim != 1 or len(ids) == 0:
        raise ConfigError(f"{what}: need a non-empty 1-D list of item ids, got shape {ids.shape}")
    blank = np.flatnonzero(pd.isna(ids))
    if len(blank):
        raise ConfigError(f"{what}: {len(blank)} item id(s) are missing, rows {_examples(blank.tolist())}")
    ids = ids.astype(str)
    duplicated = pd.Series(ids).duplicated().to_numpy()
    if duplicated.any():
        raise ConfigError(
            f"{what}: item ids must be unique; {int(duplicated.sum())} repeat, "
            f"e.g. {_examples(ids[duplicated].tolist())} "
            f"(rows {_examples(np.flatnonzero(duplicated).tolist())})"
        )
    return ids


