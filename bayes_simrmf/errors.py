"""One exception hierarchy for the package.

Every error raised on bad input is a :class:`BayesSimRMFError`, raised at the
boundary where the input enters, and its message names the file, column, row
or id at fault so that a person can act on it.
"""

from __future__ import annotations


class BayesSimRMFError(Exception):
    """Base class of every error this package raises on purpose."""


class DataError(BayesSimRMFError, ValueError):
    """A dataset (responses, items, LLMs) is missing, malformed or inconsistent."""


class SplitError(BayesSimRMFError, ValueError):
    """An evaluation protocol cannot be applied to a dataset as asked."""


class ConfigError(BayesSimRMFError, ValueError):
    """A hyper-parameter or option has a value outside its valid range."""


class NotFittedError(BayesSimRMFError, ValueError, AttributeError):
    """A model was asked to predict, draw or save before it was fitted (or loaded)."""


class FitError(BayesSimRMFError, RuntimeError):
    """Inference failed (for example the loss became NaN or infinite)."""


class UnknownEntityError(BayesSimRMFError, KeyError):
    """A prediction asked for an LLM or item the fitted model does not contain."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class ModelFormatError(BayesSimRMFError, ValueError):
    """A saved model folder is incomplete, of another format version, or does not match its hash."""
