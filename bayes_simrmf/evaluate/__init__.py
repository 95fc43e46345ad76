"""Scoring fitted models: the protocol's splits, the metrics, hyper-parameter search, ArviZ export.

* ``split``: fit an estimator on a :class:`~bayes_simrmf.splits.Split` and score splits A–D.
* ``metrics``: RMSE_p / RMSE_m / RMSE_x, log loss, Brier, AUC, calibration (ECE, reliability).
* ``tuning``: validation pairs carved from training pairs; grid and staged searches on them.
* ``inference_data``: a fitted SimRMF as ArviZ ``InferenceData`` (imported on first use: it loads ArviZ).
"""

from bayes_simrmf.evaluate.metrics import auc, brier, ece, evaluate, log_loss, reliability_table, rmse_m, rmse_p, rmse_x
from bayes_simrmf.evaluate.split import (
    METRIC_COLUMNS,
    TEST_SPLITS,
    evaluate_on_split,
    fit_on_split,
    format_metrics,
    metrics_frame,
)
from bayes_simrmf.evaluate.tuning import TuningResult, carve_validation, grid_search, staged_search

__all__ = [
    "METRIC_COLUMNS",
    "TEST_SPLITS",
    "TuningResult",
    "auc",
    "brier",
    "carve_validation",
    "ece",
    "evaluate",
    "evaluate_on_split",
    "fit_on_split",
    "format_metrics",
    "grid_search",
    "log_loss",
    "metrics_frame",
    "reliability_table",
    "rmse_m",
    "rmse_p",
    "rmse_x",
    "staged_search",
    "to_inference_data",
]


def __getattr__(name: str):
    if name == "to_inference_data":
        from bayes_simrmf.evaluate.inference_data import to_inference_data

        return to_inference_data
    raise AttributeError(f"module 'bayes_simrmf.evaluate' has no attribute {name!r}")
