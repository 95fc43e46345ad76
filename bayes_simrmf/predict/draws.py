"""Posterior draws of a fitted state, and probabilities per draw in memory-bounded batches.

A draw is a :class:`~bayes_simrmf.predict.point.PointModel` at one joint draw of every parameter
(:func:`sample_posterior`): fitted entities from the variational posterior, folded-in entities from
their own Gaussians. An entity the model does not hold is, in each draw, one fitted member of its
group picked at random (:func:`draw_batches`), so the spread across draws includes how much
entities differ, not only the uncertainty of the population's average.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from bayes_simrmf.predict.gaussian_process import normal_blocks, psd_cholesky
from bayes_simrmf.predict.point import PointModel, PredictOptions
from bayes_simrmf.predict.sides import ITEM, LLM, Side
from bayes_simrmf.predict.state import FittedState


def sample_posterior(state: FittedState, n_draws: int, seed: int) -> dict[str, np.ndarray]:
    """Joint draws of every parameter, one row per entity in the model (site → ``(n_draws, *shape)``)."""
    draws = state.posterior.sample(n_draws, seed)
    for name, value in state.params.items():
        draws.setdefault(name, np.broadcast_to(value, (n_draws, *np.shape(value))).astype(np.float32))
    for kind, (mean, cov) in state.inductive.items():
        side = LLM if kind == LLM.kind else ITEM
        # A stream per side: a new LLM's draws do not depend on how many questions were folded in.
        rng = np.random.default_rng([int(seed), 13, int(side == LLM)])
        chol = psd_cholesky(cov)
        # A block of draws at a time (at openllm-v2's scale, draws x new questions x width float64 was gigabytes).
        latent = np.empty((n_draws, *mean.shape), dtype=np.float32)
        for block, noise in normal_blocks(rng, n_draws, mean.shape):
            latent[block] = mean + np.einsum("npq,snq->snp", chol, noise)
        for key, part in ((side.factors, latent[..., : state.dim]), (side.bias, latent[..., -1])):
            if key in draws:
                draws[key] = np.concatenate([draws[key], part], axis=1)
    return draws


def used_rows_only(state: FittedState, llm_codes: np.ndarray, item_codes: np.ndarray
                   ) -> tuple[FittedState, np.ndarray, np.ndarray]:
    """``(state, llm_codes, item_codes)`` without the folded-in entities (Gaussian posteriors) that no pair uses.

    Every posterior draw draws every row of the state; a model fitted with kernel fold-in holds all the dataset's
    new questions (openllm-v2: 17,873 of 19,873 rows), so one new LLM's scores on the fitted questions drew them all
    (4.4 s and ~1 GB at 500 draws). Fitted rows are kept whole; a side's folded-in rows are drawn from one stream
    in row order, so the rows kept get the whole state's draws where none of that side is dropped.
    """
    codes = {LLM.kind: llm_codes, ITEM.kind: item_codes}
    for side in (LLM, ITEM):
        if side.kind not in state.inductive:
            continue
        n_fitted = state.n_fitted(side)
        side_codes = codes[side.kind]
        folded = side_codes >= n_fitted
        used = np.unique(side_codes[folded])
        if len(used) == len(state.ids(side)) - n_fitted:
            continue
        state = state.keeping_folded_in(side, used)
        side_codes = side_codes.copy()
        side_codes[folded] = n_fitted + np.searchsorted(used, side_codes[folded])
        codes[side.kind] = side_codes
    return state, codes[LLM.kind], codes[ITEM.kind]


def draw_points(state: FittedState, options: PredictOptions, n_draws: int, seed: int) -> list[PointModel]:
    """One :class:`PointModel` per posterior draw (a point: folded-in entities are no longer integrated over)."""
    sampled = sample_posterior(state, n_draws, seed)
    return [PointModel(state.at({name: sampled[name][index] for name in state.params}), options)
            for index in range(n_draws)]


def population_picks(pool: np.ndarray, uniform: np.ndarray, rng: np.random.Generator, bootstrap: bool) -> np.ndarray:
    """Codes ``(n_draws, n_entities)`` of the fitted members standing in for unseen entities: per draw,
    each picks a member of ``pool`` at random, from a bootstrap resample of the pool if ``bootstrap``
    (``population_draws="bootstrap"``)."""
    slots = (uniform * len(pool)).astype(np.int64)
    if not bootstrap:
        return pool[slots]
    resample = rng.integers(0, len(pool), (uniform.shape[0], len(pool)))
    return pool[np.take_along_axis(resample, slots, axis=1)]


def _stand_ins(state, options, side: Side, ids, codes, n_draws: int, seed: int, pools) -> tuple | None:
    """``(unseen mask, inverse, picks (n_draws, n_unique))``: which fitted entity stands in for each
    unseen entity of ``side`` in each draw (one of its group's, or of all where its group is unknown)."""
    unseen = codes < 0
    if not unseen.any():
        return None
    unique_ids, first, inverse = np.unique(ids[unseen], return_index=True, return_inverse=True)
    rng = np.random.default_rng([seed, 7, side == LLM])
    uniform = rng.random((n_draws, len(unique_ids)))
    id_group = np.full(len(unique_ids), -1, dtype=np.int64)
    groups = [np.arange(state.n_warm(side))]
    if pools is not None and side.kind in pools:
        pair_group, groups = pools[side.kind][0], [np.arange(state.n_warm(side)), *pools[side.kind][1]]
        id_group = pair_group[np.flatnonzero(unseen)[first]]
    picks = np.empty((n_draws, len(unique_ids)), dtype=np.int64)
    for code, pool in enumerate(groups, start=-1):
        chosen = id_group == code
        if chosen.any():
            picks[:, chosen] = population_picks(pool, uniform[:, chosen], rng, options.population_draws == "bootstrap")
    return unseen, inverse, picks


def draw_batches(
    state: FittedState, options: PredictOptions, points: list[PointModel], llm, item, llm_codes, item_codes,
    batch_pairs: int, seed: int, pools=None,
) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield ``(slice, probabilities (n_draws, batch))`` over batches of ``batch_pairs`` pairs, one row per
    point of ``points``; unseen entities (code -1) are stood in for per draw (see the module)."""
    members = {}
    for side, ids, codes in ((LLM, llm, llm_codes), (ITEM, item, item_codes)):
        stand_ins = _stand_ins(state, options, side, ids, codes, len(points), seed, pools)
        if stand_ins is not None:
            members[side.kind] = stand_ins
    for start in range(0, len(llm_codes), batch_pairs):
        block = slice(start, start + batch_pairs)
        rows = []
        for index, point in enumerate(points):
            codes_in_draw = []
            for kind, codes in (("llm", llm_codes), ("item", item_codes)):
                codes = codes.copy()
                if kind in members:
                    unseen, inverse, picks = members[kind]
                    codes[unseen] = picks[index][inverse]
                codes_in_draw.append(codes[block])
            rows.append(point.probabilities(*codes_in_draw))
        yield block, np.stack(rows)
