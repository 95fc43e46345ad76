"""The fitted state of a SimRMF model, as one frozen record.

:class:`FittedState` holds what prediction, fold-in and posterior draws need and what a saved
model stores: the point estimate of every site, the ids of the entities in the model (in the
order of the parameter rows), how many of them were fitted with data ("warm") and how many were
held without data, the Gaussian posteriors of entities folded in, the group maps, and the variational posterior. It never changes: a fold-in returns
a new state (:meth:`FittedState.appended`), a posterior draw is a state with other parameters
(:meth:`FittedState.at`).

Rows of each side are ordered ``[warm | fitted without data | folded in]``: codes below ``n_warm``
have data; codes in ``[n_warm, n_fitted)`` were fitted without data through the similarity
potential (``similarity_mode`` "cold" or "joint"); codes from ``n_fitted`` on were folded in (by the
kernel mode of ``fit`` or by ``fold_in``) and carry a Gaussian posterior in
:attr:`FittedState.inductive`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd

from bayes_simrmf.errors import UnknownEntityError
from bayes_simrmf.groups import GroupMap
from bayes_simrmf.inference.posterior import GaussianPosterior
from bayes_simrmf.inference.samples import SamplePosterior
from bayes_simrmf.model.predictor import item_asymptotes
from bayes_simrmf.model.sites import ITEM_CEILING, ITEM_FLOOR
from bayes_simrmf.predict.sides import ITEM, LLM, SIDES, Side


def encode_ids(ids: np.ndarray, known: np.ndarray, kind: str, also: str = "") -> np.ndarray:
    """Row of each id in ``known``; :class:`UnknownEntityError` naming the ids the model does not hold
    (with how to fold them in, and ``also`` appended to the message)."""
    codes = pd.Index(known).get_indexer(ids)
    missing = codes < 0
    if missing.any():
        unknown = pd.unique(np.asarray(ids)[missing])
        raise UnknownEntityError(
            f"{len(unknown)} {kind} id(s) are not in the fitted model, e.g. {unknown[:5].tolist()}; fold them in "
            f"first with fold_in('{kind.lower()}', ids, answers=..., side=...) (metadata, text or a few answers)"
            + also
        )
    return codes


@dataclass(frozen=True, eq=False)
class FittedState:
    """Everything a fitted SimRMF knows (see the module docstring for the row order).

    Attributes:
        params: site name → point estimate (float32), one row per entity for per-entity sites.
        llms, items: ids of the rows.
        n_warm_llms, n_warm_items: entities fitted with data.
        n_fitted_llms, n_fitted_items: entities fitted by SVI (warm plus those without data).
        dim: latent dimension.
        posterior: the variational posterior of the fitted sites.
        losses, converged, n_pairs: the fit's loss trace, whether it converged, its training pairs.
        inductive: kind → ``(mean (m, dim + 1), cov (m, dim + 1, dim + 1))`` of the entities added
            by ``fold_in`` (rows from ``n_fitted`` on), in row order.
        item_group_labels: labels of the item groups the model has a mean for, or None.
        item_groups, llm_groups: id → group label of every entity the model knows a group for.
    """

    params: Mapping[str, np.ndarray]
    llms: np.ndarray
    items: np.ndarray
    n_warm_llms: int
    n_warm_items: int
    n_fitted_llms: int
    n_fitted_items: int
    dim: int
    posterior: GaussianPosterior | SamplePosterior
    losses: np.ndarray
    converged: bool
    n_pairs: int
    inductive: Mapping[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    item_group_labels: np.ndarray | None = None
    item_groups: GroupMap = field(default_factory=GroupMap)
    llm_groups: GroupMap = field(default_factory=GroupMap)

    # per side ----------------------------------------------------------------------------------
    def ids(self, side: Side) -> np.ndarray:
        return self.llms if side == LLM else self.items

    def n_warm(self, side: Side) -> int:
        return self.n_warm_llms if side == LLM else self.n_warm_items

    def n_fitted(self, side: Side) -> int:
        return self.n_fitted_llms if side == LLM else self.n_fitted_items

    def groups(self, side: Side) -> GroupMap:
        return self.llm_groups if side == LLM else self.item_groups

    def latent(self, side: Side) -> np.ndarray:
        """``[factors, bias]`` rows ``(n, dim + 1)`` float64 of every entity of ``side`` (zeros for
        a part the model lacks)."""
        n = len(self.ids(side))
        factors = self.params.get(side.factors, np.zeros((n, 0), np.float32))
        bias = self.params.get(side.bias, np.zeros(n, np.float32))
        return np.concatenate([factors, bias[:, None]], axis=1).astype(np.float64)

    def warm_group_codes(self, side: Side) -> tuple[np.ndarray, np.ndarray] | None:
        """Group codes of every entity of ``side`` in the model and of its warm ones, coded into the
        warm entities' groups (-1: no group, or a group no warm entity has); None without groups."""
        groups = self.groups(side)
        if not groups:
            return None
        ids = self.ids(side)
        return groups.codes_against(ids, ids[: self.n_warm(side)])

    def asymptote_group_codes(self, ids) -> np.ndarray:
        """Codes of the groups of item ``ids`` among the groups with a floor (``item_group_labels``; all items share
        one without groups), −1 where unknown."""
        if self.item_group_labels is None:
            return np.zeros(len(ids), int)
        labels = self.item_groups.labels_of(ids)
        return pd.Index(self.item_group_labels).get_indexer(labels.astype(str))

    # new states ----------------------------------------------------------------------------------
    def at(self, params: Mapping[str, np.ndarray]) -> FittedState:
        """This state with other parameter values (one posterior draw): a point, so entities added
        by ``fold_in`` are no longer integrated over."""
        return dataclasses.replace(self, params=dict(params), inductive={})

    def appended(self, side: Side, ids: np.ndarray, mean: np.ndarray, cov: np.ndarray | None,
                 draws: np.ndarray | None = None) -> FittedState:
        """This state with entities of ``side`` added after the others: their rows of the point
        estimate are the posterior means ``mean (m, dim + 1)``, their posteriors ``(mean, cov)``; or, for a
        posterior held as draws, ``draws (n_draws, m, dim + 1)`` appended to every draw (``cov`` None)."""
        params = dict(self.params)
        if side.factors in params:
            params[side.factors] = np.concatenate([params[side.factors], mean[:, : self.dim]]).astype(np.float32)
        if side.bias in params:
            params[side.bias] = np.concatenate([params[side.bias], mean[:, -1]]).astype(np.float32)
        if side == ITEM and ITEM_FLOOR in params:
            extra = item_asymptotes(params, self.asymptote_group_codes(ids))
            for name, value in extra.items():
                params[name] = np.concatenate([params[name], value]).astype(np.float32)
        rows = np.concatenate([self.ids(side), ids])
        rows_of_side = {"llms": rows} if side == LLM else {"items": rows}
        if draws is not None:
            parts = {side.factors: draws[..., : self.dim], side.bias: draws[..., -1]}
            posterior = self.posterior.appended({name: part for name, part in parts.items() if name in params})
            return dataclasses.replace(self, params=params, posterior=posterior, **rows_of_side)
        inductive = dict(self.inductive)
        if side.kind in inductive:
            old_mean, old_cov = inductive[side.kind]
            mean, cov = np.concatenate([old_mean, mean]), np.concatenate([old_cov, cov])
        inductive[side.kind] = (mean, cov)
        return dataclasses.replace(self, params=params, inductive=inductive, **rows_of_side)

    def keeping_folded_in(self, side: Side, used: np.ndarray) -> FittedState:
        """This state with only the folded-in rows ``used`` of ``side`` (sorted unique codes from ``n_fitted`` on,
        each with its Gaussian in :attr:`inductive`) after its fitted rows: the rows a query needs to be drawn."""
        n_fitted = self.n_fitted(side)
        keep = np.concatenate([np.arange(n_fitted), used])
        params = dict(self.params)
        for name in (side.factors, side.bias, *((ITEM_FLOOR, ITEM_CEILING) if side == ITEM else ())):
            if name in params:
                params[name] = params[name][keep]
        inductive = dict(self.inductive)
        mean, cov = inductive[side.kind]
        inductive[side.kind] = (mean[used - n_fitted], cov[used - n_fitted])
        rows = self.ids(side)[keep]
        return dataclasses.replace(self, params=params, inductive=inductive,
                                   **({"llms": rows} if side == LLM else {"items": rows}))

    # persistence ---------------------------------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        """Named arrays (the ``state.npz`` of a saved model)."""
        state = {f"param/{name}": value for name, value in self.params.items()}
        state["llms"] = self.llms.astype(str)
        state["items"] = self.items.astype(str)
        state["losses"] = np.asarray(self.losses, dtype=np.float32)
        state["converged"] = np.asarray(self.converged)
        state["n_pairs"] = np.asarray(self.n_pairs)
        state["n_warm"] = np.asarray([self.n_warm_llms, self.n_warm_items])
        state["n_fitted"] = np.asarray([self.n_fitted_llms, self.n_fitted_items])
        if self.item_group_labels is not None:
            state["item_group_labels"] = self.item_group_labels.astype(str)
        state.update(self.posterior.get_state())
        for side in SIDES:
            state.update(self.groups(side).get_state(f"{side.kind}_groups"))
        for kind, (mean, cov) in self.inductive.items():
            state[f"inductive/{kind}/mean"] = mean
            state[f"inductive/{kind}/cov"] = cov
        return state

    @classmethod
    def from_arrays(cls, state: Mapping[str, np.ndarray], dim: int) -> FittedState:
        """The state :meth:`to_arrays` wrote (``dim`` from the model's configuration)."""
        params = {key.split("/", 1)[1]: np.asarray(v) for key, v in state.items() if key.startswith("param/")}
        llms = np.asarray(state["llms"]).astype(str)
        items = np.asarray(state["items"]).astype(str)
        n_warm_llms, n_warm_items = (int(v) for v in state["n_warm"])
        n_fitted_llms, n_fitted_items = (int(v) for v in state.get("n_fitted", [len(llms), len(items)]))
        labels = state.get("item_group_labels")
        return cls(
            params=params, llms=llms, items=items, n_warm_llms=n_warm_llms, n_warm_items=n_warm_items,
            n_fitted_llms=n_fitted_llms, n_fitted_items=n_fitted_items, dim=int(dim),
            posterior=(SamplePosterior.from_state(state) or GaussianPosterior.from_state(state)
                       or GaussianPosterior.point(params)),
            losses=np.asarray(state["losses"]), converged=bool(state["converged"]), n_pairs=int(state["n_pairs"]),
            inductive={kind: (np.asarray(state[f"inductive/{kind}/mean"]), np.asarray(state[f"inductive/{kind}/cov"]))
                       for kind in ("llm", "item") if f"inductive/{kind}/mean" in state},
            item_group_labels=None if labels is None else np.asarray(labels).astype(str),
            item_groups=GroupMap.from_state(state, "item_groups"),
            llm_groups=GroupMap.from_state(state, "llm_groups"),
        )
