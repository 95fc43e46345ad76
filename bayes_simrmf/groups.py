"""Groups of entities (an item's benchmark, an LLM's family): what is known about an LLM or a
question that was never evaluated, before any similarity.

A new question from a known benchmark is predicted from the fitted questions of that benchmark,
never from the average over all questions; the same for a new LLM of a group the user names.
:class:`GroupMap` holds the id → label mapping an estimator was given (it may cover entities
outside the fit, e.g. every question of a dataset) and answers "which group is this id in".
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from bayes_simrmf.errors import ConfigError

__all__ = ["NO_GROUP", "GroupMap"]

#: Label of an entity whose group is not known.
NO_GROUP = "(none)"


class GroupMap:
    """Immutable id → group label mapping (both str)."""

    def __init__(self, labels: pd.Series | None = None) -> None:
        self._labels = pd.Series(dtype=object) if labels is None else labels

    @classmethod
    def from_mapping(cls, mapping, name: str) -> GroupMap:
        """From a dict or Series id → label (None: an empty map). Missing labels become
        :data:`NO_GROUP`; an id given twice with two labels is refused."""
        if mapping is None:
            return cls()
        if isinstance(mapping, GroupMap):
            return mapping
        if not isinstance(mapping, (Mapping, pd.Series)):
            raise ConfigError(f"{name} must be a dict or pandas Series id -> group label, got {type(mapping).__name__}")
        series = pd.Series(mapping, dtype=object)
        series.index = series.index.astype(str)
        series = series.where(series.notna(), NO_GROUP).astype(str)
        duplicated = series.index.duplicated(keep=False)
        if duplicated.any():
            clash = series[duplicated].groupby(level=0).nunique()
            clash = clash[clash > 1]
            if len(clash):
                raise ConfigError(f"{name} gives {len(clash)} id(s) more than one group, e.g. {clash.index[:5].tolist()}")
            series = series[~series.index.duplicated()]
        return cls(series)

    def __len__(self) -> int:
        return len(self._labels)

    def __bool__(self) -> bool:
        return len(self._labels) > 0

    def updated(self, mapping, name: str) -> GroupMap:
        """This map with the labels of ``mapping`` added (they win where both name an id)."""
        extra = GroupMap.from_mapping(mapping, name)
        if not extra:
            return self
        if not self:
            return extra
        merged = pd.concat([self._labels[~self._labels.index.isin(extra._labels.index)], extra._labels])
        return GroupMap(merged)

    def labels_of(self, ids) -> np.ndarray:
        """str ``(n,)`` group label of each id (:data:`NO_GROUP` where unknown)."""
        ids = np.asarray(ids).astype(str)
        if not self:
            return np.full(len(ids), NO_GROUP, dtype=object)
        return self._labels.reindex(ids).fillna(NO_GROUP).to_numpy(dtype=object)

    def codes_against(self, ids, reference_ids) -> tuple[np.ndarray, np.ndarray]:
        """Group codes of ``ids`` into the groups that ``reference_ids`` hold.

        Returns:
            ``(codes (len(ids),), reference_codes (len(reference_ids),))``: a code indexes the
            labels of the reference ids' groups (sorted); ``-1`` for an id whose group is unknown
            or holds no reference id.
        """
        reference_labels = self.labels_of(reference_ids)
        known = reference_labels != NO_GROUP
        uniques = np.unique(reference_labels[known]) if known.any() else np.empty(0, dtype=object)
        index = pd.Index(uniques)
        reference_codes = np.where(known, index.get_indexer(reference_labels), -1)
        labels = self.labels_of(ids)
        codes = np.where(labels != NO_GROUP, index.get_indexer(labels), -1)
        return codes.astype(np.int64), reference_codes.astype(np.int64)

    def get_state(self, prefix: str) -> dict[str, np.ndarray]:
        """Arrays for saving (empty dict for an empty map)."""
        if not self:
            return {}
        return {f"{prefix}/ids": self._labels.index.to_numpy().astype(str),
                f"{prefix}/labels": self._labels.to_numpy().astype(str)}

    @classmethod
    def from_state(cls, state, prefix: str) -> GroupMap:
        if f"{prefix}/ids" not in state:
            return cls()
        ids = np.asarray(state[f"{prefix}/ids"]).astype(str)
        return cls(pd.Series(np.asarray(state[f"{prefix}/labels"]).astype(str), index=ids, dtype=object))
