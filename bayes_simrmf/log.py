"""Where the library's messages go.

Every function that reports progress or what it did takes ``log: Log | None = None``: a callable
that receives one line of text per call. The library is silent by default; the CLI passes
``click.echo`` (or a writer to stderr), a notebook may pass ``print``.
"""

from __future__ import annotations

from collections.abc import Callable

#: A sink for one line of text.
Log = Callable[[str], None]


def silent(message: str) -> None:
    """Discard a line (what ``log=None`` means)."""


def sink(log: Log | None) -> Log:
    """``log`` itself, or :func:`silent` for None."""
    return silent if log is None else log
