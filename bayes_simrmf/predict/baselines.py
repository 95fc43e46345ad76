"""Counting baselines: what an evaluation team gets by tallying answers, without any model.

:class:`GroupAccuracy` ("LLM × benchmark training accuracy, shrunk to the benchmark mean") is the
strongest cheap competitor of a factor model on leaderboard data: question text mostly reveals
the benchmark, and an LLM's accuracy on a benchmark says much about its accuracy on a new
question of that benchmark. A factor model that cannot beat it on a split adds nothing there.

The prediction for LLM ``i`` on an item of group (benchmark) ``b`` is

    p_ib = (c_ib + s · m_b) / (n_ib + s),    m_b = (c_b + s · m) / (n_b + s)

with ``c_ib`` / ``n_ib`` the LLM's correct answers / answers on training items of ``b``, ``c_b`` /
``n_b`` the same over every LLM, ``m`` the overall training mean and ``s`` the shrinkage strength
(a pseudo-count, chosen on validation pairs). A new LLM gets ``m_b``; an item whose group is not
known gets the LLM's overall accuracy shrunk to ``m``. Item identity is not used, so a known and a
new item of the same benchmark get the same prediction.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dataclasses import dataclass

from bayes_simrmf.groups import NO_GROUP, GroupMap
from bayes_simrmf.pairs import check_pairs
from bayes_simrmf.params import CountingParams, Estimator

__all__ = ["GroupAccuracy", "MeanScore"]


@dataclass(eq=False, repr=False)
class GroupAccuracy(CountingParams):
    """Each LLM's training accuracy per item group (benchmark), shrunk towards the group mean.

    Args:
        shrinkage: pseudo-count ``s >= 0`` of the shrinkage towards the group mean (0: raw
            per-group accuracy, where the LLM has answers in the group).
    """

    def fit(self, llm, item, correct, *, item_groups=None, **_ignored) -> GroupAccuracy:
        """Tally the training pairs.

        Args:
            llm, item: ``(n_pairs,)`` ids; correct: ``(n_pairs,)`` 0/1 scores.
            item_groups: mapping item id → group label (e.g. the benchmark); items it lacks form
                one group of their own. Without it every item is in one group.
        """
        self._validate()
        llm, item, correct = check_pairs(llm, item, correct)
        self.item_groups_ = GroupMap.from_mapping(item_groups, "item_groups")
        group = self.item_groups_.labels_of(item)
        frame = pd.DataFrame({"llm": llm, "group": group, "correct": correct.astype(np.float64)})
        self.mean_ = float(frame["correct"].mean())
        s = float(self.shrinkage)
        by_group = frame.groupby("group")["correct"].agg(["sum", "count"])
        group_mean = (by_group["sum"] + s * self.mean_) / (by_group["count"] + s)
        self.group_mean_ = group_mean.to_dict()
        by_cell = frame.groupby(["llm", "group"])["correct"].agg(["sum", "count"])
        prior = group_mean.reindex(by_cell.index.get_level_values("group")).to_numpy()
        self.cell_mean_ = ((by_cell["sum"].to_numpy() + s * prior) / (by_cell["count"].to_numpy() + s))
        self.cell_index_ = by_cell.index
        by_llm = frame.groupby("llm")["correct"].agg(["sum", "count"])
        self.llm_mean_ = ((by_llm["sum"] + s * self.mean_) / (by_llm["count"] + s)).to_dict()
        self.n_pairs_ = int(len(correct))
        return self

    def predict(self, llm, item, *, unknown: str = "population", item_groups=None) -> np.ndarray:
        """Probability ``(n_pairs,)`` in [0, 1] (see the module docstring).

        Args:
            item_groups: extra item → group labels for items the fit was not told about.
        """
        self._require_fitted("mean_")
        llm, item, _ = check_pairs(llm, item)
        groups = self.item_groups_.updated(item_groups, "item_groups")
        group = groups.labels_of(item)
        cells = pd.MultiIndex.from_arrays([llm, group])
        position = self.cell_index_.get_indexer(cells)
        prob = np.where(position >= 0, self.cell_mean_[np.maximum(position, 0)], np.nan)
        # An LLM without answers in the group: the group mean; an item without a group: the LLM's mean.
        fallback = pd.Series(group).map(self.group_mean_).to_numpy(dtype=np.float64, copy=True)
        no_group = group == NO_GROUP
        if no_group.any():
            fallback[no_group] = pd.Series(llm[no_group]).map(self.llm_mean_).fillna(self.mean_).to_numpy()
        fallback = np.where(np.isnan(fallback), self.mean_, fallback)
        return np.where(np.isnan(prob), fallback, prob)

    def get_state(self) -> dict[str, np.ndarray]:
        state = {
            "mean": np.asarray(self.mean_),
            "n_pairs": np.asarray(self.n_pairs_),
            "cell/llm": self.cell_index_.get_level_values(0).to_numpy().astype(str),
            "cell/group": self.cell_index_.get_level_values(1).to_numpy().astype(str),
            "cell/mean": np.asarray(self.cell_mean_, dtype=np.float64),
            "group/label": np.asarray(list(self.group_mean_), dtype=str),
            "group/mean": np.asarray(list(self.group_mean_.values()), dtype=np.float64),
            "llm/id": np.asarray(list(self.llm_mean_), dtype=str),
            "llm/mean": np.asarray(list(self.llm_mean_.values()), dtype=np.float64),
        }
        state.update(self.item_groups_.get_state("item_groups"))
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> GroupAccuracy:
        self.mean_ = float(state["mean"])
        self.n_pairs_ = int(state["n_pairs"])
        self.cell_index_ = pd.MultiIndex.from_arrays([np.asarray(state["cell/llm"]).astype(str),
                                                      np.asarray(state["cell/group"]).astype(str)])
        self.cell_mean_ = np.asarray(state["cell/mean"], dtype=np.float64)
        self.group_mean_ = dict(zip(np.asarray(state["group/label"]).astype(str), np.asarray(state["group/mean"])))
        self.llm_mean_ = dict(zip(np.asarray(state["llm/id"]).astype(str), np.asarray(state["llm/mean"])))
        self.item_groups_ = GroupMap.from_state(state, "item_groups")
        return self


@dataclass(eq=False, repr=False)
class MeanScore(Estimator):
    """Predict the mean of all observed training scores for every pair (no hyper-parameters)."""

    method = "meanscore"

    def fit(self, llm, item, correct, **_ignored) -> MeanScore:
        _, _, correct = check_pairs(llm, item, correct)
        self.mean_ = float(np.mean(correct))
        self.n_pairs_ = int(len(correct))
        return self

    def predict(self, llm, item, *, unknown: str = "population") -> np.ndarray:
        """Probability ``(n_pairs,)``: the training mean everywhere (every entity is 'known')."""
        self._require_fitted("mean_")
        llm, item, _ = check_pairs(llm, item)
        return np.full(len(llm), self.mean_, dtype=np.float64)

    def get_state(self) -> dict[str, np.ndarray]:
        return {"mean": np.asarray(self.mean_), "n_pairs": np.asarray(self.n_pairs_)}

    def set_state(self, state: dict[str, np.ndarray]) -> MeanScore:
        self.mean_ = float(state["mean"])
        self.n_pairs_ = int(state["n_pairs"])
        return self
