"""The two sides of the answer matrix, LLMs and items, as records instead of string switches.

Everything that differs between "an LLM" and "an item" in the fitted state (the sample sites of
its factors and bias, how messages name it, the salt of its population sample) lives in one
:class:`Side`; code that works on either side takes a ``Side`` and asks it, and ``side.partner``
is the other one.
"""

from __future__ import annotations

from dataclasses import dataclass

from bayes_simrmf.errors import ConfigError
from bayes_simrmf.model import ITEM_BIAS, ITEM_FACTORS, LLM_BIAS, LLM_FACTORS


@dataclass(frozen=True)
class Side:
    """One side of the answer matrix.

    Attributes:
        kind: "llm" or "item" (the column of the answers and the key of per-side state).
        label: how messages name one entity ("LLM", "item").
        factors, bias: the sample sites of its latent factors and biases.
        salt: seeds the sample of fitted entities standing in for its population.
    """

    kind: str
    label: str
    factors: str
    bias: str
    salt: int

    @property
    def partner(self) -> Side:
        """The other side: the entities this side's entities answer (or are answered by)."""
        return ITEM if self.kind == "llm" else LLM


LLM = Side("llm", "LLM", LLM_FACTORS, LLM_BIAS, 1)
ITEM = Side("item", "item", ITEM_FACTORS, ITEM_BIAS, 2)
SIDES = (LLM, ITEM)


def side_of(kind: str) -> Side:
    """The :class:`Side` named ``kind`` ("llm" or "item"); :class:`ConfigError` otherwise."""
    if kind == "llm":
        return LLM
    if kind == "item":
        return ITEM
    raise ConfigError(f"kind must be 'llm' or 'item', got {kind!r}")
