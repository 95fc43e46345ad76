"""Index pairs (llm, item, correct) of one split, as arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayes_simrmf.errors import SplitError


@dataclass(frozen=True, eq=False)
class Pairs:
    """One set of observed (LLM, item, correct) pairs, as codes into a :class:`Split`'s id arrays.

    Attributes:
        llm: int32 ``(n,)`` index into ``Split.llms``.
        item: int32 ``(n,)`` index into ``Split.items``.
        correct: int8 ``(n,)`` score, 1 if the LLM answered the item correctly, else 0.

    The arrays are made read-only, as the dataclass is frozen.
    """

    llm: np.ndarray
    item: np.ndarray
    correct: np.ndarray

    def __post_init__(self) -> None:
        llm = np.ascontiguousarray(self.llm, dtype=np.int32)
        item = np.ascontiguousarray(self.item, dtype=np.int32)
        correct = np.ascontiguousarray(self.correct, dtype=np.int8)
        if not (llm.ndim == item.ndim == correct.ndim == 1 and len(llm) == len(item) == len(correct)):
            raise SplitError(
                "Pairs arrays must be 1-D and of equal length; got shapes "
                f"llm={llm.shape}, item={item.shape}, correct={correct.shape}"
            )
        for array in (llm, item, correct):
            array.flags.writeable = False
        object.__setattr__(self, "llm", llm)
        object.__setattr__(self, "item", item)
        object.__setattr__(self, "correct", correct)

    def __len__(self) -> int:
        return int(self.llm.shape[0])

    @classmethod
    def empty(cls) -> Pairs:
        """A set of zero pairs."""
        return cls(np.empty(0, np.int32), np.empty(0, np.int32), np.empty(0, np.int8))

    def equals(self, other: Pairs) -> bool:
        """True if both hold the same pairs in the same order."""
        return (
            np.array_equal(self.llm, other.llm)
            and np.array_equal(self.item, other.item)
            and np.array_equal(self.correct, other.correct)
        )


