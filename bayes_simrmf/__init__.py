"""bayes-simrmf: similarity-regularised matrix factorisation (SimRMF) as a NumPyro model.

Predicts whether an LLM answers a question correctly, including LLMs and questions
never evaluated, with uncertainty. Data flow (imports point down this list only)::

    data -> splits -> similarity -> model -> inference -> predict -> evaluate / routing -> cli
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

from bayes_simrmf.runtime import avoid_lapack_deadlock

__version__ = "0.1.0"

# Before JAX creates its backend: batched LAPACK calls run side by side can freeze a small machine (runtime.py).
avoid_lapack_deadlock()

# The API the README uses, importable from the package itself; loaded on first use, so that
# ``import bayes_simrmf`` (and the CLI's --help) does not import JAX.
_LAZY = {
    "load_dataset": "bayes_simrmf.data",
    "Protocol": "bayes_simrmf.splits",
    "build_side_information": "bayes_simrmf.similarity",
    "SimRMF": "bayes_simrmf.predict",
    "MeanScore": "bayes_simrmf.predict",
    "GroupAccuracy": "bayes_simrmf.predict",
    "make_estimator": "bayes_simrmf.predict",
    "fold_in_new_entities": "bayes_simrmf.predict",
    "fit_on_split": "bayes_simrmf.evaluate",
    "evaluate_on_split": "bayes_simrmf.evaluate",
    "save_model": "bayes_simrmf.saving",
    "load_model": "bayes_simrmf.saving",
    "to_inference_data": "bayes_simrmf.evaluate",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bayes_simrmf' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

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
    *_LAZY,
]
