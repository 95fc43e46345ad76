"""Names shared by the routing modules."""

from __future__ import annotations

from typing import Any, Iterable


ABSTAIN = None  # the llm of a question nobody was confident enough for


def _examples(values: Iterable[Any], limit: int = 5) -> list:
    return list(values)[:limit]


