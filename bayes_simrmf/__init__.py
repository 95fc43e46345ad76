"""bayes-simrmf: similarity-regularised matrix factorisation (SimRMF) as a NumPyro model.

Predicts whether an LLM answers a question correctly, including LLMs and questions
never evaluated, with uncertainty. Data flow (imports point down this list only)::

    data -> splits -> similarity -> model -> inference -> predict -> metrics -> cli
"""

from bayes_simrmf.errors import (
    BayesSimRMFError,
    ConfigError,
    DataError,
    FitError,
    ModelFormatError,
    NotFittedError,
    SplitError,
    UnknownEntityError,
)

__version__ = "0.1.0"

__all__ = [
    "BayesSimRMFError",
    "ConfigError",
    "DataError",
    "FitError",
    "ModelFormatError",
    "NotFittedError",
    "SplitError",
    "UnknownEntityError",
    "__version__",
]
