"""Hyper-parameter selection on validation pairs carved from the training pairs.

Test splits are never looked at. The training pairs of a split are divided into a part
to fit and a validation part, in one of three ways that mirror the test splits:

* ``"pairs"``: a random share of the pairs (like split A: known LLM, known item);
* ``"items"``: every pair of a random share of the items (like split B: new items);
* ``"llms"``: every pair of a random share of the LLMs (like split C: new LLMs).

Each candidate is fitted on the rest and scored on the validation part (log loss by
default, or any key of :func:`bayes_simrmf.evaluate.metrics.evaluate`); the best is returned with
the whole table, so the choice can be recorded beside the results.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Callable, Literal, Sequence

import numpy as np
import pandas as pd

from bayes_simrmf.errors import ConfigError
from bayes_simrmf.log import Log
from bayes_simrmf.evaluate.metrics import evaluate

HOLDOUTS = ("pairs", "items", "llms")
LOWER_IS_BETTER = {"rmse_p": True, "rmse_m": True, "rmse_x": True, "log_loss": True, "auc": False}


def carve_validation(
    llm: np.ndarray,
    item: np.ndarray,
    *,
    share: float = 0.1,
    holdout: Literal["pairs", "items", "llms"] = "pairs",
    seed: int = 0,
) -> np.ndarray:
    """Boolean mask ``(n_pairs,)``: True for the validation pairs.

    Args:
        llm, item: ids (or codes) of the training pairs.
        share: share of pairs (``"pairs"``) or of entities (``"items"``, ``"llms"``) held out.
        holdout: what is held out; see the module docstring.
        seed: seeds the choice.
    """
    if not 0 < share < 1:
        raise ConfigError(f"share must be in (0, 1), got {share!r}")
    if holdout not in HOLDOUTS:
        raise ConfigError(f"holdout must be one of {HOLDOUTS}, got {holdout!r}")
    rng = np.random.default_rng([seed, HOLDOUTS.index(holdout)])
    if holdout == "pairs":
        return rng.random(len(llm)) < share
    ids = np.asarray(item if holdout == "items" else llm)
    unique = np.unique(ids)
    n_held = max(1, int(round(share * len(unique))))
    if n_held >= len(unique):
        raise ConfigError(f"share={share} holds out all {len(unique)} {holdout}; use a smaller share")
    held = rng.choice(unique, n_held, replace=False)
    return np.isin(ids, held)


@dataclass
class TuningResult:
    """Outcome of :func:`grid_search`.

    Attributes:
        best: the chosen hyper-parameters.
        table: one row per candidate: its hyper-parameters, validation metrics, fit seconds.
        metric: the metric that chose.
        holdout, share, seed: how the validation pairs were carved.
    """

    best: dict
    table: pd.DataFrame
    metric: str
    holdout: str
    share: float
    seed: int


#: Fewer validation pairs (or held-out items / LLMs) than these make the choice among candidates noise.
MIN_VALIDATION_PAIRS, MIN_VALIDATION_ENTITIES = 200, 10


def _warn_small_validation(validation: np.ndarray, ids: np.ndarray, holdout: str, share: float,
                           log: Log | None) -> None:
    """Warn through ``log`` when the validation set is too small to tell candidates apart."""
    n_pairs = int(validation.sum())
    n_entities = len(pd.unique(ids[validation])) if holdout in ("items", "llms") else None
    if log and (n_pairs < MIN_VALIDATION_PAIRS or (n_entities is not None and n_entities < MIN_VALIDATION_ENTITIES)):
        held = f" of {n_entities} held-out {holdout}" if n_entities is not None else ""
        log(f"warning: {holdout} validation has only {n_pairs} pairs{held} (share='{share}'): the candidates' scores "
            f"differ mostly by chance; use more data or a larger share")


def grid_search(
    make_estimator: Callable[..., object],
    grid: dict[str, Sequence],
    llm: np.ndarray,
    item: np.ndarray,
    correct: np.ndarray,
    *,
    metric: str = "log_loss",
    holdout: Literal["pairs", "items", "llms"] = "pairs",
    share: float = 0.1,
    seed: int = 0,
    fit_kwargs: dict | None = None,
    log: Log | None = None,
) -> TuningResult:
    """Try every combination in ``grid`` and keep the best on validation pairs.

    Args:
        make_estimator: builds an unfitted estimator from keyword hyper-parameters.
        grid: name -> candidate values; the product of all lists is tried.
        llm, item, correct: the training pairs (ids and 0/1 scores).
        metric: key of :func:`bayes_simrmf.evaluate.metrics.evaluate` to optimise.
        fit_kwargs: passed to every ``fit`` (e.g. side information).
    """
    if metric not in LOWER_IS_BETTER:
        raise ConfigError(f"metric must be one of {sorted(LOWER_IS_BETTER)}, got {metric!r}")
    if not grid or any(len(values) == 0 for values in grid.values()):
        raise ConfigError(f"grid must name at least one value per hyper-parameter, got {grid!r}")
    llm, item, correct = np.asarray(llm), np.asarray(item), np.asarray(correct)
    validation = carve_validation(llm, item, share=share, holdout=holdout, seed=seed)
    _warn_small_validation(validation, llm if holdout == "llms" else item, holdout, share, log)
    fit_part = ~validation
    llm_codes = pd.factorize(llm[validation])[0]
    item_codes = pd.factorize(item[validation])[0]
    names = list(grid)
    rows = []
    for values in itertools.product(*(grid[name] for name in names)):
        candidate = dict(zip(names, values))
        start = time.perf_counter()
        estimator = make_estimator(**candidate)
        estimator.fit(llm[fit_part], item[fit_part], correct[fit_part], **(fit_kwargs or {}))
        prob = estimator.predict(llm[validation], item[validation], unknown="population")
        scores = evaluate(prob, correct[validation], llm_codes, item_codes)
        rows.append({**candidate, **{k: scores[k] for k in LOWER_IS_BETTER}, "seconds": time.perf_counter() - start})
        if log:
            log(f"  {candidate}: validation {metric} {scores[metric]:.5f}")
    table = pd.DataFrame(rows)
    best_row = table[metric].idxmin() if LOWER_IS_BETTER[metric] else table[metric].idxmax()
    best = {name: _plain(table.loc[best_row, name]) for name in names}
    if log:
        log(f"chosen on {holdout} validation ({share:.0%}, {int(validation.sum())} pairs): {best}")
    return TuningResult(best=best, table=table, metric=metric, holdout=holdout, share=share, seed=seed)


def _plain(value):
    """numpy scalars to Python scalars (JSON-ready)."""
    return value.item() if hasattr(value, "item") else value


#: The biases' prior sds, LLM side first, then the item side (``bias_scale`` once ``llm_bias_scale``
#: is set). Tuned after d and λ_reg: on each seed's validation pairs of the four shared datasets at
#: T=100 the separate scales gave a lower log loss than one tuned shared scale in 18 of 20 seeds and
#: the same in 2 (``experiments/results/bias_scale_validation.md``); the chosen LLM scale is often
#: 0.1-0.5, far below the items' 1-2 (the LLM factors carry most of an LLM's ability).
BIAS_STAGES: list[dict] = [
    {"grid": {"llm_bias_scale": [0.1, 0.25, 0.5, 1.0, 2.0]}, "holdout": "pairs"},
    {"grid": {"bias_scale": [0.5, 1.0, 2.0]}, "holdout": "pairs"},
]
#: Default search for each method: stages run in order, each one's winner fixed for the next.
DEFAULT_STAGES: dict[str, list[dict]] = {
    "mf": [{"grid": {"dim": [4, 8, 16], "lambda_reg": [0.5, 1.0, 2.0]}, "holdout": "pairs"}, *BIAS_STAGES],
    "simrmf": [
        {"grid": {"dim": [4, 8, 16], "lambda_reg": [0.5, 1.0, 2.0]}, "holdout": "pairs", "method": "mf"},
        *({**stage, "method": "mf"} for stage in BIAS_STAGES),
        {"grid": {"fold_in_ridge_items": [0.1, 1.0, 10.0]}, "holdout": "items"},
        {"grid": {"fold_in_ridge_llms": [0.1, 1.0, 10.0]}, "holdout": "llms"},
    ],
}
DEFAULT_STAGES["oracle"] = DEFAULT_STAGES["simrmf"]
#: The paper's form (``predict.PAPER_FORM``): d and λ_reg as for MF, then the potentials' weights
#: κ_X with whole questions held out and κ_M with whole LLMs held out (λ = κ · n_pairs / n²).
PAPER_STAGES: list[dict] = [
    DEFAULT_STAGES["simrmf"][0],
    {"grid": {"similarity_weight_items": [0.1, 1.0, 10.0, 100.0]}, "holdout": "items"},
    {"grid": {"similarity_weight_llms": [0.01, 0.1, 1.0, 10.0]}, "holdout": "llms"},
]


def _without_side(fit_kwargs: dict | None) -> dict | None:
    """``fit_kwargs`` less the side information and the extra entities that only SimRMF uses."""
    if not fit_kwargs:
        return None
    kept = {key: value for key, value in fit_kwargs.items() if key not in ("side", "llms", "items")}
    return kept or None


def staged_search(
    make_estimator: Callable[..., object],
    stages: Sequence[dict],
    llm: np.ndarray,
    item: np.ndarray,
    correct: np.ndarray,
    *,
    base: dict | None = None,
    metric: str = "log_loss",
    share: float = 0.1,
    seed: int = 0,
    fit_kwargs: dict | None = None,
    log: Log | None = None,
) -> tuple[dict, list[TuningResult]]:
    """Run :func:`grid_search` stage by stage, fixing each stage's winner for the next.

    Args:
        make_estimator: builds an estimator from keyword options (the stage's ``"method"``, if
            given, is passed as ``method=``; a stage's ``"fixed"`` options hold only during it).
        stages: dicts with ``"grid"`` and optional ``"holdout"``, ``"metric"``, ``"method"``, ``"fixed"``.
        base: options fixed throughout (and returned updated with the winners).
    Returns:
        The chosen options and one :class:`TuningResult` per stage.
    """
    chosen = dict(base or {})
    results = []
    for stage in stages:
        stage_fixed = {**chosen, **stage.get("fixed", {})}
        if "method" in stage:
            stage_fixed["method"] = stage["method"]
        holdout = stage.get("holdout", "pairs")
        if log:
            log(f"tuning {sorted(stage['grid'])} with {holdout} held out")
        result = grid_search(
            lambda **candidate: make_estimator(**{**stage_fixed, **candidate}),
            stage["grid"],
            llm,
            item,
            correct,
            metric=stage.get("metric", metric),
            holdout=holdout,
            share=share,
            seed=seed,
            # A stage that swaps the method (e.g. MF first) gets no side information, but keeps
            # what every method takes (item groups).
            fit_kwargs=fit_kwargs if "method" not in stage else _without_side(fit_kwargs),
            log=log,
        )
        chosen.update(result.best)
        results.append(result)
    return chosen, results
