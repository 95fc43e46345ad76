"""The population that stands in for an LLM or item the model does not hold.

An entity the fit never saw (code -1, ``unknown="population"``) is a draw from the fitted
(warm) entities of its group, or of all of them where its group is unknown or has no fitted
member: its prediction against a known partner is the partner's mean probability over that
population (:class:`UnknownFill`). Large populations are represented by a seeded sample of at
most ``MAX_POPULATION`` members.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayes_simrmf.groups import GroupMap
from bayes_simrmf.model.predictor import grid_logits, grid_probabilities
from bayes_simrmf.predict.sides import ITEM, LLM, SIDES, Side
from bayes_simrmf.predict.state import FittedState

#: An unseen entity is averaged over at most this many fitted ones, in chunks of this many.
MAX_POPULATION = 2000
POPULATION_CHUNK = 1024


def side_logits(params, side: Side, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Logits ``(len(rows), len(cols))`` of entities ``rows`` of ``side`` against ``cols`` of its partner."""
    return grid_logits(params, rows, cols) if side == LLM else grid_logits(params, cols, rows).T


def side_probabilities(params, side: Side, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Success probabilities ``(len(rows), len(cols))`` of entities ``rows`` of ``side`` against ``cols``."""
    return grid_probabilities(params, rows, cols) if side == LLM else grid_probabilities(params, cols, rows).T


def sample_members(members: np.ndarray, seed: int, salt: int, group: int | None = None) -> np.ndarray:
    """``members`` if at most :data:`MAX_POPULATION`, else a sorted sample of that many, seeded by
    ``(seed, salt[, group])``."""
    if len(members) <= MAX_POPULATION:
        return members
    rng = np.random.default_rng([int(seed), salt] if group is None else [int(seed), salt, group])
    return np.sort(rng.choice(members, MAX_POPULATION, replace=False))


def population(n: int, side: Side, seed: int) -> np.ndarray:
    """Codes of the first ``n`` (warm) entities of ``side`` standing in for its population."""
    if n <= MAX_POPULATION:
        return np.arange(n)
    rng = np.random.default_rng([int(seed), side.salt])
    return np.sort(rng.choice(n, MAX_POPULATION, replace=False))


def population_mean(params, side: Side, codes: np.ndarray, members: np.ndarray) -> np.ndarray:
    """Mean predicted probability of each entity ``codes`` of ``side`` against the partners ``members``
    (for an item: what a new LLM drawn from ``members`` is expected to score on it)."""
    means = np.empty(len(codes), dtype=np.float64)
    for start in range(0, len(codes), POPULATION_CHUNK):
        block = codes[start : start + POPULATION_CHUNK]
        prob = side_probabilities(params, side.partner, members, block)
        means[start : start + len(block)] = np.mean(prob, axis=0)
    return means


def unknown_pools(state: FittedState, llm, item, llm_codes, item_codes, llm_groups=None, item_groups=None) -> dict:
    """Where unknown entities come from: ``{kind: (pair_group (n_pairs,), pools)}``.

    ``pools[g]`` holds the codes of the fitted (warm) entities of group ``g``; ``pair_group`` is
    the group of each pair's unknown entity, ``-1`` where the entity is known, its group is not
    known, or no fitted entity shares it (the whole population stands in). Kinds without
    groups or without unknown entities are left out. ``llm_groups`` / ``item_groups`` add to the
    groups the model holds.
    """
    pools = {}
    for side, ids, codes, extra in ((LLM, llm, llm_codes, llm_groups), (ITEM, item, item_codes, item_groups)):
        groups = (state.groups(side) or GroupMap()).updated(extra, f"{side.kind}_groups")
        unknown = codes < 0
        if not groups or not unknown.any():
            continue
        warm_ids = state.ids(side)[: state.n_warm(side)]
        unknown_group, warm_group = groups.codes_against(ids[unknown], warm_ids)
        pair_group = np.full(len(ids), -1, dtype=np.int64)
        pair_group[unknown] = unknown_group
        if (pair_group >= 0).any():
            n_groups = int(warm_group.max()) + 1
            pools[side.kind] = (pair_group, [np.flatnonzero(warm_group == g) for g in range(n_groups)])
    return pools


def group_population(state: FittedState, seed: int, side: Side, pools: dict | None, group: int) -> np.ndarray:
    """Codes of the fitted entities of ``side`` standing in for an unknown one of ``group`` (-1: any)."""
    if group < 0 or not pools or side.kind not in pools:
        return population(state.n_warm(side), side, seed)
    return sample_members(pools[side.kind][1][group], seed, side.salt, group)


@dataclass(frozen=True)
class UnknownFill:
    """Which pairs have an unknown entity (code -1) and who stands in for it, worked out once per set of
    pairs so that each posterior draw only evaluates logits (:meth:`fill`).

    ``one_side`` holds ``(side, group, rows, partners, inverse)``: the pairs whose ``side`` entity is
    unknown, of ``group``, against a known partner, with the distinct partners and each row's index
    into them; ``neither`` the pairs with both unknown, ``combos`` their distinct (LLM group, item
    group) and ``combo_inverse`` each pair's index into ``combos``.
    """

    pools: dict
    one_side: tuple
    neither: np.ndarray
    combos: np.ndarray
    combo_inverse: np.ndarray

    @classmethod
    def of(cls, llm_codes: np.ndarray, item_codes: np.ndarray, pools: dict | None = None) -> UnknownFill:
        """The plan for coded pairs, unknown entities grouped by ``pools`` (see :func:`unknown_pools`)."""
        pools = pools or {}
        no_group = np.full(len(llm_codes), -1, dtype=np.int64)
        group_of = {side.kind: pools[side.kind][0] if side.kind in pools else no_group for side in SIDES}
        known = {LLM.kind: llm_codes >= 0, ITEM.kind: item_codes >= 0}
        codes = {LLM.kind: llm_codes, ITEM.kind: item_codes}
        one_side = []
        # An unknown entity of ``side`` against a known partner: its group's members stand in.
        for side in SIDES:
            mask = ~known[side.kind] & known[side.partner.kind]
            for group in np.unique(group_of[side.kind][mask]) if mask.any() else []:
                rows = np.flatnonzero(mask & (group_of[side.kind] == group))
                partners, inverse = np.unique(codes[side.partner.kind][rows], return_inverse=True)
                one_side.append((side, int(group), rows, partners, np.ravel(inverse)))
        neither = np.flatnonzero(~known[LLM.kind] & ~known[ITEM.kind])
        combos, combo_inverse = np.empty((0, 2), dtype=np.int64), np.empty(0, dtype=np.int64)
        if len(neither):
            combos, combo_inverse = np.unique(
                np.stack([group_of[LLM.kind][neither], group_of[ITEM.kind][neither]], axis=1), axis=0,
                return_inverse=True)
        return cls(pools, tuple(one_side), neither, combos, np.ravel(combo_inverse))

    def fill(self, state: FittedState, seed: int, prob: np.ndarray) -> None:
        """Fill ``prob`` for the planned pairs with the mean over the fitted population of each unknown
        entity's group, at the parameters of ``state``, in place."""
        for side, group, rows, partners, inverse in self.one_side:
            members = group_population(state, seed, side, self.pools, group)
            prob[rows] = population_mean(state.params, side.partner, partners, members)[inverse]
        if len(self.neither):
            values = np.empty(len(self.combos))
            for index, (group_l, group_i) in enumerate(self.combos):
                llm_members = group_population(state, seed, LLM, self.pools, int(group_l))
                item_members = group_population(state, seed, ITEM, self.pools, int(group_i))
                values[index] = float(np.mean(population_mean(state.params, ITEM, item_members, llm_members)))
            prob[self.neither] = values[self.combo_inverse]
