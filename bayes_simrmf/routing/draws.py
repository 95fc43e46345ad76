"""Joint posterior draws of the candidates' success probabilities, in memory-bounded batches."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_simrmf.errors import ConfigError, NotFittedError
from bayes_simrmf.predict import encode_ids
from bayes_simrmf.predict.draws import sample_posterior, used_rows_only
from bayes_simrmf.predict.sides import side_of
from bayes_simrmf.pairs import check_pairs as _check_pairs
from bayes_simrmf.model import (
    INTERCEPT,
    ITEM_BIAS,
    ITEM_CEILING,
    ITEM_FACTORS,
    ITEM_FLOOR,
    LLM_BIAS,
    LLM_FACTORS,
)
from bayes_simrmf.model.predictor import grid_probabilities, pair_probabilities
from bayes_simrmf.routing.common import _examples
from bayes_simrmf.routing.candidates import _as_candidates, _item_ids


def _check_model(model) -> None:
    if not hasattr(model, "sample_posterior"):
        raise ConfigError(
            f"routing needs a fitted SimRMF (posterior draws of each LLM and question); got {type(model).__name__}"
        )
    if not hasattr(model, "llms_"):
        raise NotFittedError("this SimRMF is not fitted yet: call fit(...) or load a saved model first")


def _entity_codes(model, kind: str, ids: np.ndarray) -> np.ndarray:
    """Row of each id in the model; refuses ids it does not hold and rows draws cannot reproduce."""
    side, state = side_of(kind), model.fitted_
    codes = encode_ids(ids, np.asarray(state.ids(side), dtype=str), kind)
    held = (codes >= state.n_warm(side)) & (codes < state.n_fitted(side))
    if held.any():
        raise ConfigError(
            f"{int(held.sum())} {kind} id(s), e.g. {_examples(ids[held].tolist())}, were held in the fit without data "
            f"(similarity_mode={getattr(model, 'similarity_mode', '?')!r}); their predictions carry a moment "
            "correction that per-pair posterior draws do not reproduce. Fit with similarity_mode='kernel' (the "
            "default), which folds such entities in, or fold them in with model.fold_in"
        )
    return codes


def _sample_rows(model, n_draws: int, seed: int, item_codes: np.ndarray, llm_codes: np.ndarray):
    """Posterior draws restricted to the rows needed: ``(draws, item_rows, llm_rows)`` with the codes re-mapped (the
    folded-in rows no pair uses are not drawn at all, as in ``predict_interval``)."""
    state, llm_codes, item_codes = used_rows_only(model.fitted_, llm_codes, item_codes)
    sampled = sample_posterior(state, n_draws, seed)
    items, item_rows = np.unique(item_codes, return_inverse=True)
    llms, llm_rows = np.unique(llm_codes, return_inverse=True)
    kept = {INTERCEPT: sampled[INTERCEPT]} if INTERCEPT in sampled else {}
    for name, rows in ((ITEM_FACTORS, items), (ITEM_BIAS, items), (ITEM_FLOOR, items), (ITEM_CEILING, items),
                       (LLM_FACTORS, llms), (LLM_BIAS, llms)):
        if name in sampled:
            kept[name] = np.ascontiguousarray(sampled[name][:, rows])
    del sampled
    return kept, item_rows, llm_rows


def _probability_grid(sampled: dict, item_rows: np.ndarray, llm_rows: np.ndarray) -> np.ndarray:
    """Success-probability draws ``(n_draws, n_items, n_llms)`` float32 for every item × LLM."""
    return np.swapaxes(grid_probabilities(sampled, llm_rows, item_rows), -1, -2).astype(np.float32)


def _check_draw_options(n_draws: int, batch: int, batch_name: str) -> None:
    if not isinstance(n_draws, (int, np.integer)) or n_draws < 2:
        raise ConfigError(f"n_draws must be an integer >= 2, got {n_draws!r}")
    if not isinstance(batch, (int, np.integer)) or batch < 1:
        raise ConfigError(f"{batch_name} must be an integer >= 1, got {batch!r}")


def pair_probability_draws(
    model, llm, item, *, n_draws: int = 200, seed: int = 0, batch_pairs: int = 50_000
) -> np.ndarray:
    """Posterior draws of each pair's success probability, joint across pairs: ``(n_draws, n_pairs)`` float32.

    Draw ``s`` of every pair comes from the same parameter draw, so comparisons across pairs (which LLM is
    better on a question) are taken within a draw. With the same seed these are the draws
    ``model.predict_interval`` summarises. LLMs and items must be in the model (fitted with data, or added
    by ``fold_in``).
    """
    _check_model(model)
    _check_draw_options(n_draws, batch_pairs, "batch_pairs")
    llm, item, _ = _check_pairs(llm, item)
    llm_codes = _entity_codes(model, "llm", llm)
    item_codes = _entity_codes(model, "item", item)
    sampled, item_rows, llm_rows = _sample_rows(model, n_draws, seed, item_codes, llm_codes)
    result = np.empty((n_draws, len(llm)), dtype=np.float32)
    for start in range(0, len(llm), batch_pairs):
        block = slice(start, start + batch_pairs)
        result[:, block] = pair_probabilities(sampled, llm_rows[block], item_rows[block])
    return result


def expected_success(
    model, items, candidates, *, n_draws: int = 200, seed: int = 0, batch_items: int = 1000
) -> pd.DataFrame:
    """Posterior mean success probability of every candidate on every question: ``(n_items, n_candidates)``,
    indexed by item, one column per candidate LLM."""
    _check_model(model)
    _check_draw_options(n_draws, batch_items, "batch_items")
    candidates = _as_candidates(candidates, model)
    item_ids = _item_ids(items)
    sampled, item_rows, llm_rows = _sample_rows(
        model, n_draws, seed, _entity_codes(model, "item", item_ids), _entity_codes(model, "llm", candidates.llms)
    )
    mean = np.empty((len(item_ids), len(candidates)))
    for start in range(0, len(item_ids), batch_items):
        block = slice(start, start + batch_items)
        # the same reduction as PosteriorScores.mean, so a lam solved on these means routes identically
        mean[block] = _probability_grid(sampled, item_rows[block], llm_rows).mean(axis=0, dtype=np.float64)
    return pd.DataFrame(mean, index=pd.Index(item_ids, name="item"), columns=pd.Index(candidates.llms, name="llm"))


