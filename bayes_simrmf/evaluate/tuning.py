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
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Bound:
    """Where a hyper-parameter's grid may be extended: ``low``/``high`` are the natural or documented
    limits (inclusive), ``integer`` rounds extended values."""

    low: float
    high: float
    integer: bool = False


#: Limits for extending a grid past its edge (see :func:`grid_search`). ``0`` and ``1`` are natural
#: bounds (a shrinkage, a share); the other numbers are documented caps: a grid that reaches one is
#: reported as "at its cap", never silently treated as interior.
GRID_BOUNDS: dict[str, Bound] = {
    "dim": Bound(1, 128, integer=True),
    "num_latent": Bound(1, 128, integer=True),
    "k": Bound(1, 128, integer=True),
    "lambda_reg": Bound(1e-4, 1e4),
    "lambda_": Bound(1e-4, 1e4),
    "bias_scale": Bound(1e-3, 1e2),
    "llm_bias_scale": Bound(1e-3, 1e2),
    "fold_in_ridge_items": Bound(1e-5, 1e5),
    "fold_in_ridge_llms": Bound(1e-5, 1e5),
    "similarity_weight_items": Bound(1e-5, 1e5),
    "similarity_weight_llms": Bound(1e-5, 1e5),
    "w_item": Bound(1e-5, 1e5),
    "w_user": Bound(1e-5, 1e5),
    "shrinkage": Bound(0, 1e5),
    "alpha": Bound(0, 1),
    "similarity_energy": Bound(0, 1),
}
#: At most this many extension steps per hyper-parameter in one search (a cap, reported when hit).
MAX_EXTENSIONS = 6

EdgeStatus = Literal["interior", "bound", "edge", "single"]


@dataclass
class TuningResult:
    """Outcome of :func:`grid_search`.

    Attributes:
        best: the chosen hyper-parameters.
        table: one row per candidate: its hyper-parameters, validation metrics, fit seconds and
            ``extension`` (0 for the grid as given, k for the k-th value added past an edge).
        metric: the metric that chose.
        holdout, share, seed: how the validation pairs were carved.
        edges: per hyper-parameter, where the chosen value lies among the values tried beside it:
            ``"interior"``; ``"bound"`` (at the edge, but the edge is a natural bound or documented cap
            of :data:`GRID_BOUNDS`); ``"edge"`` (at an edge that could not be extended: no bound known
            for it, or :data:`MAX_EXTENSIONS` spent); ``"single"`` (one value, not tuned).
    """

    best: dict
    table: pd.DataFrame
    metric: str
    holdout: str
    share: float
    seed: int
    edges: dict = field(default_factory=dict)

    @property
    def at_edge(self) -> list[str]:
        """The hyper-parameters whose chosen value is still at an extendable edge of what was tried."""
        return [name for name, status in self.edges.items() if status == "edge"]


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


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def next_value(values: Sequence[float], side: Literal["lower", "upper"], bound: Bound) -> float | None:
    """The next value past ``side`` of the sorted tried ``values``, a geometric step of the ratio of
    the two outermost values (×10 where that ratio is undefined), clipped to ``bound``; None when the
    edge already is the bound (or a step would not move)."""
    values = sorted(float(v) for v in values)
    edge, inner = (values[0], values[1]) if side == "lower" else (values[-1], values[-2])
    limit = bound.low if side == "lower" else bound.high
    if (side == "lower" and edge <= limit) or (side == "upper" and edge >= limit):
        return None
    if edge > 0 and inner > 0:
        ratio = max(edge, inner) / min(edge, inner)
    else:
        ratio = 10.0
    if side == "lower":
        candidate = edge / ratio if edge > 0 else limit
        # A geometric walk never reaches 0: past the cap of positive values, 0 itself is the last try.
        candidate = max(candidate, limit)
    else:
        candidate = edge * ratio if edge > 0 else (inner if inner > 0 else 1.0)
        candidate = min(candidate, limit)
    if bound.integer:
        candidate = float(np.floor(candidate) if side == "lower" else np.ceil(candidate))
        candidate = min(max(candidate, bound.low), bound.high)
    if candidate == edge:
        return None
    return int(candidate) if bound.integer else float(f"{candidate:.6g}")


def _edge_side(name: str, best: dict, table: pd.DataFrame, names: list[str]) -> tuple[str | None, list]:
    """Which edge (``"lower"`` / ``"upper"`` / None) ``best[name]`` is at among the values tried with
    every other hyper-parameter at its chosen value, and those values."""
    others = [other for other in names if other != name]
    mask = np.ones(len(table), dtype=bool)
    for other in others:
        mask &= (table[other] == best[other]).to_numpy()
    tried = sorted({float(v) for v in table.loc[mask, name]})
    if len(tried) < 2:
        return None, tried
    value = float(best[name])
    if value <= tried[0]:
        return "lower", tried
    if value >= tried[-1]:
        return "upper", tried
    return None, tried


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
    extend: bool = True,
    bounds: dict[str, Bound] | None = None,
    log: Log | None = None,
) -> TuningResult:
    """Try every combination in ``grid`` and keep the best on validation pairs.

    When the best value of a numeric hyper-parameter lies at the edge of the values tried (with the
    others at their chosen values) and ``extend`` is on, the grid is extended geometrically past that
    edge, one value at a time with the others held at their best, until the choice is interior, a
    bound of ``bounds`` (default :data:`GRID_BOUNDS`) is reached, or :data:`MAX_EXTENSIONS` steps are
    spent; every added candidate is a row of the table (``extension`` > 0) and is said through ``log``.

    Args:
        make_estimator: builds an unfitted estimator from keyword hyper-parameters.
        grid: name -> candidate values; the product of all lists is tried.
        llm, item, correct: the training pairs (ids and 0/1 scores).
        metric: key of :func:`bayes_simrmf.evaluate.metrics.evaluate` to optimise.
        fit_kwargs: passed to every ``fit`` (e.g. side information).
        extend: extend a grid whose choice lies at an edge (see above).
        bounds: limits per hyper-parameter name; a numeric one not named here is not extended and
            its edge is reported as ``"edge"``.
    """
    if metric not in LOWER_IS_BETTER:
        raise ConfigError(f"metric must be one of {sorted(LOWER_IS_BETTER)}, got {metric!r}")
    if not grid or any(len(values) == 0 for values in grid.values()):
        raise ConfigError(f"grid must name at least one value per hyper-parameter, got {grid!r}")
    bounds = GRID_BOUNDS if bounds is None else bounds
    llm, item, correct = np.asarray(llm), np.asarray(item), np.asarray(correct)
    validation = carve_validation(llm, item, share=share, holdout=holdout, seed=seed)
    _warn_small_validation(validation, llm if holdout == "llms" else item, holdout, share, log)
    fit_part = ~validation
    llm_codes = pd.factorize(llm[validation])[0]
    item_codes = pd.factorize(item[validation])[0]
    names = list(grid)
    rows = []

    def score(candidate: dict, extension: int) -> None:
        start = time.perf_counter()
        estimator = make_estimator(**candidate)
        estimator.fit(llm[fit_part], item[fit_part], correct[fit_part], **(fit_kwargs or {}))
        prob = estimator.predict(llm[validation], item[validation], unknown="population")
        scores = evaluate(prob, correct[validation], llm_codes, item_codes)
        rows.append({**candidate, **{k: scores[k] for k in LOWER_IS_BETTER}, "seconds": time.perf_counter() - start,
                     "extension": extension})
        if log:
            log(f"  {candidate}: validation {metric} {scores[metric]:.5f}")

    def best_of(table: pd.DataFrame) -> dict:
        best_row = table[metric].idxmin() if LOWER_IS_BETTER[metric] else table[metric].idxmax()
        return {name: _plain(table.loc[best_row, name]) for name in names}

    for values in itertools.product(*(grid[name] for name in names)):
        score(dict(zip(names, values)), 0)
    table = pd.DataFrame(rows)
    best = best_of(table)
    steps = dict.fromkeys(names, 0)
    edges: dict[str, str] = {}
    while True:
        edges = {}
        moved = False
        for name in names:
            if len(grid[name]) < 2:
                edges[name] = "single"
                continue
            if not all(_is_number(v) for v in table[name]):
                edges[name] = "interior"  # a choice among labels has no edge
                continue
            side, tried = _edge_side(name, best, table, names)
            if side is None:
                edges[name] = "interior"
                continue
            bound = bounds.get(name)
            value = None if bound is None else next_value(tried, side, bound)
            if value is None:
                edges[name] = "bound" if bound is not None else "edge"
                continue
            if not extend or steps[name] >= MAX_EXTENSIONS:
                edges[name] = "edge"
                continue
            steps[name] += 1
            if log:
                log(f"  {name}={best[name]} is at the {side} edge of {tried}: trying {name}={value}")
            score({**best, name: value}, steps[name])
            table = pd.DataFrame(rows)
            best = best_of(table)
            moved = True
            break
        if not moved:
            break
    if log:
        log(f"chosen on {holdout} validation ({share:.0%}, {int(validation.sum())} pairs): {best}")
        still = [name for name, status in edges.items() if status == "edge"]
        if still:
            log(f"warning: {still} still at the edge of the values tried (extension off, no known bound, or "
                f"{MAX_EXTENSIONS} steps spent)")
    return TuningResult(best=best, table=table, metric=metric, holdout=holdout, share=share, seed=seed, edges=edges)


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
#: The guessing floor and ceiling per benchmark (``asymptotes``), on or off, chosen on validation pairs after the
#: other stages (``tune --try-asymptotes``): on the shared datasets they were neutral under MAP and hurt the normal
#: guide at d = 32 (``experiments/results/calibration_*_asymptotes.md``), so they are no default.
ASYMPTOTE_STAGE: dict = {"grid": {"asymptotes": [False, True]}, "holdout": "pairs"}
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
    extend: bool = True,
    log: Log | None = None,
) -> tuple[dict, list[TuningResult]]:
    """Run :func:`grid_search` stage by stage, fixing each stage's winner for the next.

    Args:
        make_estimator: builds an estimator from keyword options (the stage's ``"method"``, if
            given, is passed as ``method=``; a stage's ``"fixed"`` options hold only during it).
        stages: dicts with ``"grid"`` and optional ``"holdout"``, ``"metric"``, ``"method"``, ``"fixed"``.
        base: options fixed throughout (and returned updated with the winners).
        extend: extend each stage's grid past an edge choice (see :func:`grid_search`).
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
            extend=extend,
            log=log,
        )
        chosen.update(result.best)
        results.append(result)
    return chosen, results
