"""Export a fitted :class:`~bayes_simrmf.predict.SimRMF` to ArviZ, for diagnostics.

:func:`to_inference_data` turns draws of the fitted posterior and a set of observed pairs into an
``arviz.InferenceData`` with the groups ArviZ's functions expect:

* ``posterior``: the model's sites, one chain: ``llm_factors (chain, draw, llm, latent)``,
  ``item_factors (chain, draw, item, latent)``, ``llm_bias (chain, draw, llm)``,
  ``item_bias (chain, draw, item)``, ``intercept (chain, draw)`` (sites the model lacks, with
  ``dim=0`` or ``biases=False``, are left out; learnt bias scales are scalars like the intercept);
* ``observed_data``: ``correct (pair)``, with coordinates ``pair_llm`` and ``pair_item`` naming each
  pair's LLM and item, and ``pair`` its row in the arrays passed in;
* ``posterior_predictive``: ``correct (chain, draw, pair)``, one Bernoulli answer per draw and pair;
* ``log_likelihood``: ``correct (chain, draw, pair)``, the Bernoulli log-likelihood, so ``az.loo`` and
  ``az.waic`` work;
* ``fit`` (an extra group): ``loss (step)``, the negative ELBO per SVI step, for ELBO traces.

Attributes (on the ``InferenceData`` and on the ``posterior`` group) record the guide, method, latent
dimension, number of draws and seed.

The logit of a pair in a draw is ``intercept + llm_bias[l] + item_bias[i] + llm_factors[l] ·
item_factors[i]``: the model's likelihood, for pairs between entities held in the model (the
training pairs, or held-out pairs between fitted LLMs and items). Entities folded in
(``SimRMF.fold_in``, or SimRMF's kernel mode) are drawn from their own Gaussian, as in
``SimRMF.sample_posterior``; entities the "cold"/"joint" similarity modes hold without data get their
raw logit here, not the re-centred one ``SimRMF.predict`` uses for them. It is computed in batches of pairs,
so apart from the outputs at most about ``n_draws × batch_pairs`` values are held at once.

The delta guide (MAP) gives ``n_draws`` identical draws: the export still works, but every
posterior sd is 0, R-hat and ESS are undefined, and ``az.loo`` is then the plug-in log predictive
density at the MAP (no effective-parameter correction worth the name). Use ``guide="normal"`` or
``"lowrank"`` for a posterior.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import arviz as az
import numpy as np
import xarray as xr

from bayes_simrmf.errors import ConfigError, NotFittedError
from bayes_simrmf.inference.samples import SamplePosterior
from bayes_simrmf.predict import encode_ids
from bayes_simrmf.pairs import check_pairs as _check_pairs
from bayes_simrmf.model import (
    INTERCEPT,
    ITEM_BIAS,
    ITEM_FACTORS,
    LLM_BIAS,
    LLM_FACTORS,
    OBSERVED,
    sigmoid,
)
from bayes_simrmf.model.predictor import pair_effective_logits

__all__ = ["to_inference_data"]

#: Extra group holding the SVI loss trace.
FIT_GROUP = "fit"
_DEFAULT_BATCH_PAIRS = 50_000


class _Pairs(NamedTuple):
    """The exported pairs: rows in the arrays passed in, ids, model codes and 0/1 answers, ``(n_pairs,)`` each."""

    rows: np.ndarray
    llm: np.ndarray
    item: np.ndarray
    llm_codes: np.ndarray
    item_codes: np.ndarray
    correct: np.ndarray


def _check_estimator(estimator) -> None:
    if not callable(getattr(estimator, "sample_posterior", None)):
        raise ConfigError(
            f"to_inference_data needs a SimRMF estimator with posterior draws; got {type(estimator).__name__}"
        )
    if getattr(estimator, "llms_", None) is None or getattr(estimator, "items_", None) is None:
        raise NotFittedError(f"this {type(estimator).__name__} is not fitted yet: call fit(...) before to_inference_data")


def _check_counts(n_draws, max_pairs, batch_pairs) -> None:
    """Raise unless ``n_draws`` and ``batch_pairs`` are positive integers and ``max_pairs`` one or None."""
    for name, value, allow_none in (("n_draws", n_draws, False), ("max_pairs", max_pairs, True),
                                    ("batch_pairs", batch_pairs, False)):
        if value is None and allow_none:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"{name} must be a positive integer{' or None' if allow_none else ''}, got {value!r}")


def _select_pairs(estimator, llm, item, correct, *, max_pairs: int | None, seed: int) -> tuple[_Pairs, int]:
    """The checked, encoded pairs to export (at most ``max_pairs``, a seeded subset in their original order),
    and how many pairs were given."""
    if len(np.asarray(llm)) == 0:
        raise ConfigError("no pairs to export: llm, item and correct are empty")
    llm, item, correct = _check_pairs(llm, item, correct)
    llm_codes = encode_ids(llm, np.asarray(estimator.llms_).astype(str), "llm")
    item_codes = encode_ids(item, np.asarray(estimator.items_).astype(str), "item")
    rows = np.arange(len(llm))
    if max_pairs is not None and len(rows) > max_pairs:
        rows = np.sort(np.random.default_rng([int(seed), 1]).choice(len(rows), int(max_pairs), replace=False))
    pairs = _Pairs(rows, llm[rows], item[rows], llm_codes[rows], item_codes[rows], correct[rows])
    return pairs, len(llm)


def _check_draw_shapes(draws: dict[str, np.ndarray], n_llms: int, n_items: int, dim: int) -> None:
    """Raise if a factor or bias site's draws do not have one row per LLM / item of the estimator."""
    for name, expected in ((LLM_FACTORS, (n_llms, dim)), (ITEM_FACTORS, (n_items, dim)),
                           (LLM_BIAS, (n_llms,)), (ITEM_BIAS, (n_items,))):
        if name in draws and draws[name].shape[1:] != expected:
            raise ConfigError(
                f"posterior site {name!r} has shape {draws[name].shape[1:]} per draw, expected {expected} "
                "(rows of estimator.llms_ / items_)"
            )


def _by_chain(values: np.ndarray, chains: int) -> np.ndarray:
    """``(n_draws, …)`` → ``(chains, n_draws / chains, …)`` (draws are stored chain after chain)."""
    values = np.asarray(values)
    return values.reshape(chains, values.shape[0] // chains, *values.shape[1:])


def _posterior_group(draws: dict[str, np.ndarray], estimator, n_draws: int, dim: int, chains: int = 1) -> xr.Dataset:
    """The model's sites with named dims, and any further scalar site (learnt bias scales); non-scalar sites
    this export does not know how to label are left out."""
    site_dims = {LLM_FACTORS: ("llm", "latent"), ITEM_FACTORS: ("item", "latent"), LLM_BIAS: ("llm",),
                 ITEM_BIAS: ("item",), INTERCEPT: ()}
    posterior_vars = {}
    for name, values in sorted(draws.items()):
        dims = site_dims.get(name, () if values.ndim == 1 else None)
        if dims is None:
            continue
        posterior_vars[name] = (("chain", "draw", *dims), _by_chain(values, chains))
    coords = {"chain": np.arange(chains), "draw": np.arange(n_draws // chains),
              "llm": np.asarray(estimator.llms_).astype(str),
              "item": np.asarray(estimator.items_).astype(str)}
    if dim:
        coords["latent"] = np.arange(dim)
    return xr.Dataset(posterior_vars, coords={k: v for k, v in coords.items()
                                              if any(k in dims for dims, _ in posterior_vars.values())})


def _pair_draws(
    draws: dict[str, np.ndarray], pairs: _Pairs, n_draws: int, seed: int, batch_pairs: int
) -> tuple[np.ndarray, np.ndarray]:
    """Log-likelihood (float64) and predictive answers (int8), ``(n_draws, n_pairs)`` each, batch by batch.

    The log-likelihood is log σ(ℓ) for a 1 and log σ(−ℓ) for a 0, without overflow. The uniforms behind the
    answers are drawn pair by pair (transposed), so the answers do not depend on ``batch_pairs``.
    """
    n_pairs = len(pairs.rows)
    log_lik = np.empty((n_draws, n_pairs), dtype=np.float64)
    predictive = np.empty((n_draws, n_pairs), dtype=np.int8)
    rng = np.random.default_rng([int(seed), 2])
    for start in range(0, n_pairs, batch_pairs):
        block = slice(start, start + batch_pairs)
        logits = pair_effective_logits(draws, pairs.llm_codes[block], pairs.item_codes[block])
        log_lik[:, block] = -np.logaddexp(0.0, np.where(pairs.correct[block] == 1, -logits, logits))
        uniform = rng.random((logits.shape[1], n_draws)).T
        predictive[:, block] = uniform < sigmoid(logits)
    return log_lik, predictive


def _pair_groups(
    pairs: _Pairs, log_lik: np.ndarray, predictive: np.ndarray, n_draws: int, chains: int = 1
) -> tuple[xr.Dataset, xr.Dataset, xr.Dataset]:
    """The ``observed_data``, ``posterior_predictive`` and ``log_likelihood`` groups."""
    pair_coords = {
        "pair": pairs.rows,
        "pair_llm": ("pair", pairs.llm),
        "pair_item": ("pair", pairs.item),
        "chain": np.arange(chains),
        "draw": np.arange(n_draws // chains),
    }
    observed = xr.Dataset({OBSERVED: (("pair",), pairs.correct)},
                          coords={k: v for k, v in pair_coords.items() if k not in ("chain", "draw")})
    posterior_predictive = xr.Dataset({OBSERVED: (("chain", "draw", "pair"), _by_chain(predictive, chains))},
                                      coords=pair_coords)
    log_likelihood = xr.Dataset({OBSERVED: (("chain", "draw", "pair"), _by_chain(log_lik, chains))}, coords=pair_coords)
    return observed, posterior_predictive, log_likelihood


def _fit_group(estimator) -> xr.Dataset:
    """The SVI loss trace, ``loss (step)``."""
    losses = np.asarray(getattr(estimator, "losses_", np.zeros(0)), dtype=np.float64).ravel()
    fit = xr.Dataset({"loss": (("step",), losses)}, coords={"step": np.arange(1, len(losses) + 1)})
    fit["loss"].attrs["long_name"] = "negative ELBO (SVI loss) per step"
    return fit


def _export_attrs(estimator, *, dim: int, n_draws: int, seed: int, n_pairs_given: int, n_pairs: int) -> dict[str, Any]:
    """What the export records about the estimator and itself (with a note for the delta guide)."""
    attrs = {
        "inference_library": "numpyro",
        "estimator": type(estimator).__name__,
        "method": str(getattr(estimator, "method", "")),
        "guide": "gibbs" if getattr(estimator, "inference", "svi") == "gibbs" else str(getattr(estimator, "guide", "")),
        "dim": dim,
        "biases": int(bool(getattr(estimator, "biases", True))),
        "n_draws": int(n_draws),
        "seed": int(seed),
        "n_pairs_given": int(n_pairs_given),
        "n_pairs": int(n_pairs),
        "converged": int(bool(getattr(estimator, "converged_", False))),
    }
    if attrs["guide"] == "delta":
        attrs["note"] = "delta guide: all draws are the MAP; az.loo is the plug-in log predictive density"
    return attrs


def _assemble(groups: dict[str, xr.Dataset], attrs: dict[str, Any]):
    if hasattr(az, "InferenceData"):
        return az.InferenceData(attrs=attrs, **groups)
    tree = xr.DataTree.from_dict(groups)  # arviz >= 1.0 works on xarray DataTrees
    tree.attrs.update(attrs)
    return tree


def to_inference_data(
    estimator,
    llm,
    item,
    correct,
    *,
    n_draws: int | None = None,
    seed: int = 0,
    max_pairs: int | None = None,
    batch_pairs: int = _DEFAULT_BATCH_PAIRS,
):
    """Posterior draws, observed pairs, posterior predictive and log-likelihood as ``arviz.InferenceData``.

    Args:
        estimator: a fitted :class:`~bayes_simrmf.predict.SimRMF` (any guide; see the module
            docstring for the delta guide).
        llm, item: ``(n_pairs,)`` ids of the observed pairs' LLMs and items; every id must be in
            ``estimator.llms_`` / ``estimator.items_``.
        correct: ``(n_pairs,)`` 0/1 scores (bools and 0.0/1.0 accepted).
        n_draws: posterior draws. None (default): every kept draw of a sampler (``inference="gibbs"``), with its
            chains as ArviZ chains (so R-hat and rank plots compare them), or 200 draws of a guide as one chain.
            A number other than a sampler's kept draws gives a seeded choice of them as one chain.
        seed: seeds the posterior draws, the pair subsample and the predictive answers.
        max_pairs: keep at most this many pairs, a seeded random subset in their original order
            (the outputs hold ``n_draws × n_pairs`` values per pair group: subsample big sets).
        batch_pairs: pairs per batch when computing logits.

    Returns:
        ``arviz.InferenceData`` with groups ``posterior``, ``observed_data``, ``posterior_predictive``,
        ``log_likelihood`` and ``fit`` (see the module docstring); an ``xarray.DataTree`` with the
        same groups on ArviZ >= 1.0.

    Raises:
        ConfigError: unfitted estimator, arrays of different lengths, ids not in the model (named),
            ``correct`` not 0/1, or invalid ``n_draws`` / ``max_pairs`` / ``batch_pairs``.
    """
    _check_estimator(estimator)
    posterior_draws = estimator.posterior_.n_draws if isinstance(estimator.posterior_, SamplePosterior) else None
    if n_draws is None:
        n_draws = posterior_draws or 200
    _check_counts(n_draws, max_pairs, batch_pairs)
    chains = estimator.posterior_.chains if n_draws == posterior_draws else 1
    pairs, n_pairs_given = _select_pairs(estimator, llm, item, correct, max_pairs=max_pairs, seed=seed)
    draws = estimator.sample_posterior(int(n_draws), int(seed))
    dim = int(estimator.dim)
    _check_draw_shapes(draws, len(estimator.llms_), len(estimator.items_), dim)
    posterior = _posterior_group(draws, estimator, n_draws, dim, chains)
    log_lik, predictive = _pair_draws(draws, pairs, n_draws, seed, batch_pairs)
    observed, posterior_predictive, log_likelihood = _pair_groups(pairs, log_lik, predictive, n_draws, chains)
    fit = _fit_group(estimator)
    attrs = _export_attrs(estimator, dim=dim, n_draws=n_draws, seed=seed, n_pairs_given=n_pairs_given,
                          n_pairs=len(pairs.rows))
    for dataset in (posterior, observed, posterior_predictive, log_likelihood, fit):
        dataset.attrs.update(attrs)
    return _assemble(
        {"posterior": posterior, "posterior_predictive": posterior_predictive, "log_likelihood": log_likelihood,
         "observed_data": observed, FIT_GROUP: fit},
        attrs,
    )
