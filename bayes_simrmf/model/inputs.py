"""What the program is conditioned on besides the answers: where the observed pairs are
(:class:`PairsLayout` for any sparsity, :class:`DenseLayout` for a masked block) and the
similarity factors of the Gram potentials (:class:`SimilarityInputs`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp

from bayes_simrmf.similarity import gram_fro2


class PairsLayout(NamedTuple):
    """Observed pairs as index arrays (any sparsity).

    Attributes:
        llm: ``(n_pairs,)`` int32 index into the model's LLMs.
        item: ``(n_pairs,)`` int32 index into the model's items.
    """

    llm: jnp.ndarray
    item: jnp.ndarray


class DenseLayout(NamedTuple):
    """Observed pairs as a mask over the leading ``(n_block_llms, n_block_items)`` block.

    The model orders LLMs and items with those holding data first, so the block is
    ``[:n_block_llms, :n_block_items]`` of ``M Xᵀ``.

    Attributes:
        mask: ``(n_block_llms, n_block_items)`` bool, True where a pair is observed.
    """

    mask: jnp.ndarray


@dataclass(frozen=True)
class SimilarityInputs:
    """Low-rank square-root similarity factors for the Gram potentials (SimRMF).

    ``√S_items = items_factor @ items_factorᵀ`` (rows in the model's item order); the item
    potential is ``-items_weight * ‖F Fᵀ − s·√S_items‖²_F``, computed without an items × items
    matrix. Either side may be None (no potential on that side; weights are traced values,
    so a side is switched off by its factor being None, not by a zero weight).

    Attributes:
        items_factor, llms_factor: ``(n_items, r)`` / ``(n_llms, k)`` factors, or None.
        items_weight, llms_weight: the paper's λ_X and λ_M (potential precisions / 2).
        augmented: F is ``[factors, bias]`` (the similarity also informs difficulty and
            ability, so a new item's bias is predicted from similar items); else the factors only.
        profile_scale: profile out the similarity's scale ``s`` (see
            :func:`bayes_simrmf.similarity.scaled_gram_mismatch`); False fixes ``s = 1`` (the paper).
        cold_only: the potential moves only entities without data (index ≥ ``n_warm_*``): the
            rows of entities with data enter it as constants (a "cut": their vectors are learnt
            from their answers alone, and cold vectors are folded in from the similarity to
            them). False is the paper's joint potential.
        n_warm_items, n_warm_llms: entities with data (the leading rows).
    """

    items_factor: jnp.ndarray | None = None
    llms_factor: jnp.ndarray | None = None
    items_weight: float = 0.0
    llms_weight: float = 0.0
    augmented: bool = True
    profile_scale: bool = True
    cold_only: bool = False
    n_warm_items: int = 0
    n_warm_llms: int = 0
    items_factor_fro2: jnp.ndarray | None = None
    llms_factor_fro2: jnp.ndarray | None = None

    @classmethod
    def build(cls, items_factor=None, llms_factor=None, **options) -> "SimilarityInputs":
        """Like the constructor, with the constants ``‖WᵀW‖²_F`` precomputed (about 2/3 of the
        potential's cost per step when recomputed)."""
        return cls(
            items_factor=items_factor,
            llms_factor=llms_factor,
            items_factor_fro2=None if items_factor is None else jnp.asarray(gram_fro2(items_factor), jnp.float32),
            llms_factor_fro2=None if llms_factor is None else jnp.asarray(gram_fro2(llms_factor), jnp.float32),
            **options,
        )


# A pytree, so the factors travel into jit-compiled steps as arguments: closed over as
# constants, XLA would try to constant-fold products of them and compile for minutes.
jax.tree_util.register_dataclass(
    SimilarityInputs,
    data_fields=["items_factor", "llms_factor", "items_weight", "llms_weight", "items_factor_fro2", "llms_factor_fro2"],
    meta_fields=["augmented", "profile_scale", "cold_only", "n_warm_items", "n_warm_llms"],
)
