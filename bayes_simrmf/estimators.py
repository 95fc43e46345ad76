"""Estimators with a scikit-learn shape: hyper-parameters in ``__init__``, ``fit`` returns
self, fitted state ends in ``_``.

* :class:`MeanScore`: the mean of all observed scores, for every pair (the paper's baseline).
* :class:`SimRMF`: MF (``method="mf"``) fitted by SVI on :func:`~bayes_simrmf.model.simrmf_model`.

Entities are addressed by their string ids. Predicting for an LLM or item the fit never
saw is refused (:class:`~bayes_simrmf.errors.UnknownEntityError`) unless the caller chooses
``unknown="population"``: the entity is then treated as a random draw from the fitted
population (the empirical distribution of the fitted entities' parameters), and its
prediction is the average over that population. Without side information nothing else
distinguishes one unseen LLM from another, so this is the best it can do; the prior
``Normal(0, ·)`` is not a usable population under MAP, because MAP shrinks fitted
biases and factors and a cold entity at its prior mode is not an average entity.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import jax.numpy as jnp
import numpy as np
import pandas as pd
from scipy.special import ndtri

from bayes_simrmf.errors import ConfigError, NotFittedError, UnknownEntityError
from bayes_simrmf.groups import GroupMap
from bayes_simrmf.inference import InferenceConfig, SVIResult, run_svi
from bayes_simrmf.pairs import as_id_array as _as_id_array
from bayes_simrmf.pairs import check_pairs as _check_pairs
from bayes_simrmf.model import INTERCEPT, ITEM_BIAS, ITEM_FACTORS, LLM_BIAS, LLM_FACTORS, ModelConfig, SimilarityInputs
from bayes_simrmf.options import METHODS, SIMILARITY_METHODS, SIMILARITY_MODES, UNKNOWN_POLICIES  # noqa: F401 (re-exported)
from bayes_simrmf.model.predictor import expected_sigmoid, grid_logits, pair_logits, sigmoid
from bayes_simrmf.posterior import GaussianPosterior


#: SimRMF as PAPER.md writes it: the Gram potentials on all entities (joint), matching ``F Fᵀ`` of
#: the factors alone to ``√S`` with the similarity's scale fixed at 1; side information is built
#: uncentred (:data:`PAPER_SIDE`). What the likelihood needs beyond the paper's loss stays: an
#: intercept and per-LLM / per-item biases outside the factors (a pure ``σ(m·x)`` gives a cold
#: entity p = 1/2), λ written as ``κ · n_pairs / n²`` (κ tuned), and a cold entity's logits moved
#: to the mean its partner shows against fitted entities, with a normal spread around it (see
#: ``SimRMF._predict_codes``; the paper has no spread, and the normal is the simplest).
PAPER_FORM = {"method": "simrmf", "similarity_mode": "joint", "similarity_on": "factors", "profile_scale": False,
              "fold_in_spread": "gaussian"}
#: Options of :func:`bayes_simrmf.sideinfo.build_side_information` for the paper's form.
PAPER_SIDE = {"centre": False}

# An unseen entity is averaged over at most this many fitted ones, in chunks of this many.
_MAX_POPULATION = 2000
_POPULATION_CHUNK = 1024
# Quantile levels of the empirical logit spread (``fold_in_spread="empirical"``), and the normal's.
_SPREAD_LEVELS = (np.arange(32) + 0.5) / 32
_NORMAL_QUANTILES = ndtri(_SPREAD_LEVELS)


def _augmented(params: dict, factors_key: str, bias_key: str, n: int) -> np.ndarray:
    """``[factors, bias]`` rows ``(n, dim + 1)`` (zeros for a part the model lacks)."""
    factors = params.get(factors_key, np.zeros((n, 0), np.float32))
    bias = params.get(bias_key, np.zeros(n, np.float32))
    return np.concatenate([factors, bias[:, None]], axis=1).astype(np.float64)


def group_means(
    latent: np.ndarray, known_groups: np.ndarray | None, new_groups: np.ndarray | None, n_new: int
) -> tuple[np.ndarray, np.ndarray]:
    """Prior means of fitted rows ``(n_known, p)`` and new rows ``(n_new, p)``: the mean of the
    fitted rows of the row's group, or of all fitted rows where the group is unknown (code -1) or
    not given (None)."""
    overall = latent.mean(axis=0)
    known_mean = np.broadcast_to(overall, latent.shape).copy()
    new_mean = np.broadcast_to(overall, (n_new, latent.shape[1])).copy()
    if known_groups is None or not (known_groups >= 0).any():
        return known_mean, new_mean
    for group in np.unique(known_groups[known_groups >= 0]):
        members = known_groups == group
        mean = latent[members].mean(axis=0)
        known_mean[members] = mean
        if new_groups is not None:
            new_mean[new_groups == group] = mean
    return known_mean, new_mean


def gp_conditional(
    known_latent: np.ndarray,
    known_factor: np.ndarray,
    new_factor: np.ndarray,
    ridge: float,
    known_groups: np.ndarray | None = None,
    new_groups: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian-process conditional of new entities' latent rows given the fitted ones.

    The rows ``F`` (``[factors, bias]``) are matrix-normal: ``F − μ ~ MN(0, K + ridge·I, Σ)`` with
    row covariance the similarity ``K = √S = W Wᵀ`` plus a nugget and column covariance ``Σ``.
    Given the fitted rows, a new row is Gaussian with

    * mean ``μ + W_new (WᵀW + ridge·I)⁻¹ Wᵀ (F − μ)`` (push-through identity: an ``r × r`` solve),
    * covariance ``c · Σ``, ``c = k(new, new) + ridge − k(new, K)(K + ridge·I)⁻¹k(K, new)``,

    with ``Σ = (F − μ)ᵀ (K + ridge·I)⁻¹ (F − μ) / n`` (its maximum-likelihood estimate; Woodbury,
    ``r × r`` again). Without similarity (``W = 0``) this is the fitted rows' mean and covariance.
    With group codes (e.g. each question's benchmark), ``μ`` is each row's group mean
    (:func:`group_means`): the GP models the deviations from the group, so a new entity starts at
    its group's mean and the similarity only has to explain what the group does not.

    Args:
        known_latent: ``(n_known, p)`` fitted rows.
        known_factor, new_factor: ``(n_known, r)``, ``(n_new, r)`` rows of the similarity factor W.
        ridge: the nugget, > 0.
    Returns:
        ``(mean (n_new, p), c (n_new,), Σ (p, p))``.
    """
    if not ridge > 0:
        raise ConfigError(f"the fold-in ridge must be > 0, got {ridge!r}")
    known_latent = np.asarray(known_latent, dtype=np.float64)
    known_factor = np.asarray(known_factor, dtype=np.float64)
    new_factor = np.asarray(new_factor, dtype=np.float64)
    known_mean, new_mean = group_means(known_latent, known_groups, new_groups, len(new_factor))
    centred = known_latent - known_mean
    gram = known_factor.T @ known_factor
    inverse = np.linalg.inv(gram + ridge * np.eye(gram.shape[0]))
    projected = known_factor.T @ centred
    row_cov = (centred.T @ centred - projected.T @ inverse @ projected) / (ridge * len(known_latent))
    # (W M) ⊙ W summed over columns: the three-operand einsum without a contraction order is ~30× slower.
    explained = np.sum((new_factor @ (gram - gram @ inverse @ gram)) * new_factor, axis=1) / ridge
    factor = np.maximum(np.sum(new_factor**2, axis=1) + ridge - explained, 1e-6)
    return new_mean + new_factor @ inverse @ projected, factor, row_cov


def encode_ids(ids: np.ndarray, known: np.ndarray, kind: str, also: str = "") -> np.ndarray:
    """Row of each id in ``known``; :class:`UnknownEntityError` naming the ids the model does not hold
    (with how to fold them in, and ``also`` appended to the message)."""
    codes = pd.Index(known).get_indexer(ids)
    missing = codes < 0
    if missing.any():
        unknown = pd.unique(np.asarray(ids)[missing])
        raise UnknownEntityError(
            f"{len(unknown)} {kind} id(s) are not in the fitted model, e.g. {unknown[:5].tolist()}; fold them in "
            f"first with fold_in('{kind.lower()}', ids, answers=..., side=...) (metadata, text or a few answers)"
            + also
        )
    return codes


def kernel_fold_in(
    known_latent: np.ndarray, known_factor: np.ndarray, new_factor: np.ndarray, ridge: float
) -> np.ndarray:
    """The conditional mean of :func:`gp_conditional`: new rows as kernel ridge regression of the
    fitted rows on the similarity factor (the average fitted row for uninformative similarity)."""
    return gp_conditional(known_latent, known_factor, new_factor, ridge)[0]


def _laplace_logistic(
    prior_mean: np.ndarray, prior_cov: np.ndarray, design: np.ndarray, offsets: np.ndarray, y: np.ndarray,
    max_iter: int = 100, temperature: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Laplace posterior of ``z`` in ``y ~ Bernoulli(σ(design z + offsets))``, ``z ~ N(prior_mean, prior_cov)``.

    Newton's method with step halving on the log posterior; returns the mode, the covariance and
    whether the step fell below 1e-8. The covariance is the inverse of ``H_prior + H_answers / τ``
    at the mode: ``temperature`` τ > 1 discounts the curvature the answers contribute (as a power
    posterior with likelihood^(1/τ) would) while keeping the mode, so the estimate is unchanged,
    a prior-only posterior is unchanged, and the spread stops shrinking as fast as a model held
    fixed and misspecified would claim.
    """
    weight = 1.0
    precision = np.linalg.inv(prior_cov)
    z = prior_mean.copy()

    def objective(value):
        logits = design @ value + offsets
        likelihood = weight * np.sum(y * logits - np.logaddexp(0.0, logits))
        return likelihood - 0.5 * (value - prior_mean) @ precision @ (value - prior_mean)

    current = objective(z)
    converged = len(y) == 0
    for _ in range(max_iter if len(y) else 0):
        prob = sigmoid(design @ z + offsets)
        gradient = weight * design.T @ (y - prob) - precision @ (z - prior_mean)
        hessian = weight * design.T @ (design * (prob * (1 - prob))[:, None]) + precision
        step = np.linalg.solve(hessian, gradient)
        size = 1.0
        while size > 1e-6:
            candidate = z + size * step
            value = objective(candidate)
            if value >= current - 1e-12:
                break
            size /= 2
        z, current = candidate, value
        if np.max(np.abs(size * step)) < 1e-8:
            converged = True
            break
    prob = sigmoid(design @ z + offsets)
    hessian = design.T @ (design * (prob * (1 - prob))[:, None]) / temperature + precision
    cov = np.linalg.inv(hessian)
    return z, (cov + cov.T) / 2, converged


class MeanScore:
    """Predict the mean of all observed training scores for every pair."""

    method = "meanscore"

    def fit(self, llm, item, correct, **_ignored) -> MeanScore:
        _, _, correct = _check_pairs(llm, item, correct)
        self.mean_ = float(np.mean(correct))
        self.n_pairs_ = int(len(correct))
        return self

    def predict(self, llm, item, *, unknown: str = "population") -> np.ndarray:
        """Probability ``(n_pairs,)``: the training mean everywhere (every entity is 'known')."""
        if not hasattr(self, "mean_"):
            raise NotFittedError("this MeanScore is not fitted yet: call fit(...) or load a saved model first")
        llm, item, _ = _check_pairs(llm, item)
        return np.full(len(llm), self.mean_, dtype=np.float64)

    def get_config(self) -> dict:
        return {"method": self.method}

    def get_state(self) -> dict[str, np.ndarray]:
        return {"mean": np.asarray(self.mean_), "n_pairs": np.asarray(self.n_pairs_)}

    def set_state(self, state: dict[str, np.ndarray]) -> MeanScore:
        self.mean_ = float(state["mean"])
        self.n_pairs_ = int(state["n_pairs"])
        return self


class SimRMF:
    """Matrix factorisation of LLM × question correctness, fitted by SVI in NumPyro.

    Args:
        method: "mf" (BCE + L2 + biases), "simrmf" (plus Gram potentials towards side-information
            similarity) or "oracle" (the same with the ideal similarity from the true scores).
        dim: latent dimension d.
        lambda_reg: L2 weight (prior sd of factor entries is 1/√(2 λ_reg)).
        biases: intercept plus per-LLM and per-item biases (see :mod:`bayes_simrmf.model`).
        bias_scale: prior sd of every bias (logit units); smaller shrinks LLM abilities and item
            difficulties estimated from few answers harder towards the average.
        llm_bias_scale: prior sd of the LLM biases alone, or None (default) for ``bias_scale``.
            Where each LLM has few training answers but each question many (e.g. 1,000 LLMs ×
            167 questions at T=100), a smaller LLM scale stops per-LLM abilities from fitting
            answer noise without shrinking item difficulties; tune it on validation
            (``experiments/configs/table2.json``, rows ``+llmbias``).
        guide: "delta" (MAP, the paper), "normal" or "lowrank".
        learning_rate, max_steps, tol, layout, progress: inference settings (:class:`InferenceConfig`).
        seed: seeds initial values and SVI draws; the same seed gives the same fit.
        similarity_weight_items, similarity_weight_llms: κ_X, κ_M. The paper's λ is
            ``κ · n_pairs / n²`` (n items or LLMs in the model): the likelihood grows with the
            number of observed pairs and the potential with n², so κ is comparable across
            data sizes. 0 switches a side off.
        similarity_on: "augmented" matches the Gram of ``[factors, bias]`` to the similarity (it
            then predicts a new item's difficulty); "factors" matches the factors only.
        profile_scale: fit the similarity's scale (closed form) instead of fixing it to 1.
        similarity_mode: how side information reaches LLMs and items without data:
            "kernel" (default): fit the entities with data, then fold the others in by the
            conditional mean of a Gaussian-process prior whose covariance is ``√S`` (kernel
            ridge regression of the fitted ``[factors, bias]`` on the similarity factor; see
            :func:`kernel_fold_in`); "cold": the Gram potential, moving only entities without
            data; "joint": the paper's Gram potential on all entities.
        fold_in_ridge_items, fold_in_ridge_llms: the GP nugget (noise variance relative to
            ``√S``) of the kernel fold-in: larger shrinks folded-in entities towards the average.
        lowrank_rank: rank of the low-rank guide's covariance (``guide="lowrank"``).
        population_draws: how a posterior draw treats the population that stands in for entities
            the fit never saw (``unknown="population"``): "fixed" (default) draws every unseen entity
            from the same fitted population, whose mean is then certain; "bootstrap" resamples the
            fitted members of each group per draw, so a mean over many unseen entities also carries
            the uncertainty of a population known from finitely many members. On validation
            questions and LLMs carved from training pairs the two gave the same coverage
            (``experiments/results/population_draws.md``), so the default stays as it was.
        fold_in_spread: the shape of the logit uncertainty integrated over when an entity without
            data (folded in by similarity or by :meth:`fold_in`) meets a fitted partner:
            "gaussian" (default) integrates a normal; "empirical" spreads it like the partner's own
            logits across the fitted entities of the new entity's group (standardised, scaled to
            the fold-in variance), so a strong LLM's mean over new questions keeps the skew its
            fitted questions show. On questions and LLMs held out of each seed's training pairs
            (``experiments/results/fold_in_spread.md``) "empirical" was slightly better for new
            questions on all four datasets and slightly worse for new LLMs on openllm-v2, with
            every difference under 2% of the RMSE, so the default stays the normal.
        batch_size: observed pairs per SVI step (minibatch SVI with the log-likelihood scaled by
            n_pairs / batch_size; see :mod:`bayes_simrmf.inference`), or None for the full batch.
    """

    def __init__(
        self,
        method: Literal["mf"] = "mf",
        dim: int = 8,
        lambda_reg: float = 1.0,
        biases: bool = True,
        bias_scale: float = 2.0,
        llm_bias_scale: float | None = None,
        guide: Literal["delta", "normal", "lowrank"] = "delta",
        learning_rate: float = 0.05,
        max_steps: int = 3000,
        tol: float = 1e-5,
        layout: Literal["auto", "dense", "pairs"] = "auto",
        seed: int = 0,
        progress: bool = True,
        similarity_weight_items: float = 1.0,
        similarity_weight_llms: float = 1.0,
        similarity_on: Literal["augmented", "factors"] = "augmented",
        profile_scale: bool = True,
        similarity_mode: Literal["kernel", "cold", "joint"] = "kernel",
        fold_in_ridge_items: float = 1.0,
        fold_in_ridge_llms: float = 1.0,
        lowrank_rank: int = 8,
        population_draws: Literal["fixed", "bootstrap"] = "fixed",
        fold_in_spread: Literal["gaussian", "empirical"] = "gaussian",
        batch_size: int | None = None,
    ) -> None:
        self.method = method
        self.dim = dim
        self.lambda_reg = lambda_reg
        self.biases = biases
        self.bias_scale = bias_scale
        self.llm_bias_scale = llm_bias_scale
        self.guide = guide
        self.learning_rate = learning_rate
        self.max_steps = max_steps
        self.tol = tol
        self.layout = layout
        self.seed = seed
        self.progress = progress
        self.similarity_weight_items = similarity_weight_items
        self.similarity_weight_llms = similarity_weight_llms
        self.similarity_on = similarity_on
        self.profile_scale = profile_scale
        self.similarity_mode = similarity_mode
        self.fold_in_ridge_items = fold_in_ridge_items
        self.fold_in_ridge_llms = fold_in_ridge_llms
        self.lowrank_rank = lowrank_rank
        self.population_draws = population_draws
        self.fold_in_spread = fold_in_spread
        self.batch_size = batch_size

    # configuration ---------------------------------------------------------------------------
    def model_config(self) -> ModelConfig:
        return ModelConfig(
            dim=int(self.dim), lambda_reg=float(self.lambda_reg), biases=bool(self.biases), bias_scale=float(self.bias_scale),
            llm_bias_scale=None if getattr(self, "llm_bias_scale", None) is None else float(self.llm_bias_scale),
        )

    def inference_config(self) -> InferenceConfig:
        return InferenceConfig(
            guide=self.guide,
            learning_rate=float(self.learning_rate),
            max_steps=int(self.max_steps),
            tol=float(self.tol),
            layout=self.layout,
            progress=bool(self.progress),
            lowrank_rank=int(self.lowrank_rank),
            batch_size=self.batch_size,  # validated there, not cast here: 2.5 must fail, not become 2
        )

    def get_config(self) -> dict:
        """Every constructor argument, JSON-ready."""
        return {
            "method": self.method,
            "dim": int(self.dim),
            "lambda_reg": float(self.lambda_reg),
            "biases": bool(self.biases),
            "bias_scale": float(self.bias_scale),
            "llm_bias_scale": None if getattr(self, "llm_bias_scale", None) is None else float(self.llm_bias_scale),
            "guide": self.guide,
            "learning_rate": float(self.learning_rate),
            "max_steps": int(self.max_steps),
            "tol": float(self.tol),
            "layout": self.layout,
            "seed": int(self.seed),
            "similarity_weight_items": float(self.similarity_weight_items),
            "similarity_weight_llms": float(self.similarity_weight_llms),
            "similarity_on": self.similarity_on,
            "profile_scale": bool(self.profile_scale),
            "similarity_mode": self.similarity_mode,
            "fold_in_ridge_items": float(self.fold_in_ridge_items),
            "fold_in_ridge_llms": float(self.fold_in_ridge_llms),
            "lowrank_rank": int(self.lowrank_rank),
            "population_draws": self.population_draws,
            "fold_in_spread": self.fold_in_spread,
            "batch_size": None if self.batch_size is None else int(self.batch_size),
        }

    # fitting ---------------------------------------------------------------------------------
    def fit(self, llm, item, correct, *, llms=None, items=None, side=None, item_groups=None, llm_groups=None) -> SimRMF:
        """Fit to observed pairs.

        Args:
            llm, item: ``(n_pairs,)`` ids of each observed pair's LLM and item.
            correct: ``(n_pairs,)`` 0/1 scores.
            llms, items: further entities to hold in the model without data (transductive).
                MF ignores them (they would sit at their prior; predictions for them come
                from the population). SimRMF fits them through the similarity potentials.
            side: :class:`~bayes_simrmf.sideinfo.SideInformation` with rows for every entity
                in the model; required by "simrmf" and "oracle".
            item_groups: optional mapping (dict or Series) item id → group label, e.g. the
                benchmark: items of a group then share a mean difficulty (see
                :mod:`bayes_simrmf.model`). It must cover every item in the model; it may
                cover more (e.g. every question of the dataset): a new question of a known
                group is then predicted from the fitted questions of its group.
            llm_groups: optional mapping LLM id → group label (e.g. a family); no parameter of
                the model, but a new LLM of a known group is predicted from the fitted LLMs of
                its group (and folded in with that group's mean as its prior mean).
        """
        if self.method not in ("mf", *SIMILARITY_METHODS):
            raise ConfigError(f"method must be one of mf, simrmf, oracle; got {self.method!r}")
        if self.similarity_on not in ("augmented", "factors"):
            raise ConfigError(f"similarity_on must be 'augmented' or 'factors', got {self.similarity_on!r}")
        if self.population_draws not in ("bootstrap", "fixed"):
            raise ConfigError(f"population_draws must be 'bootstrap' or 'fixed', got {self.population_draws!r}")
        if self.fold_in_spread not in ("empirical", "gaussian"):
            raise ConfigError(f"fold_in_spread must be 'empirical' or 'gaussian', got {self.fold_in_spread!r}")
        if self.similarity_mode not in SIMILARITY_MODES:
            raise ConfigError(f"similarity_mode must be 'kernel', 'cold' or 'joint', got {self.similarity_mode!r}")
        for name in ("similarity_weight_items", "similarity_weight_llms", "fold_in_ridge_items", "fold_in_ridge_llms"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
        llm, item, correct = _check_pairs(llm, item, correct)
        uses_similarity = self.method in SIMILARITY_METHODS
        kernel = uses_similarity and self.similarity_mode == "kernel"
        uses_potential = uses_similarity and not kernel
        if uses_similarity and side is None:
            raise ConfigError(
                f"method={self.method!r} needs side information: pass side=build_side_information(...) "
                "(bayes_simrmf.sideinfo)"
            )
        model_config = self.model_config()
        inference_config = self.inference_config()
        # Entities holding data come first, so the dense layout's block is the leading block;
        # SimRMF appends the entities without data, which only the potentials inform.
        warm_llms = np.unique(llm)
        warm_items = np.unique(item)
        self.llms_, self.items_ = warm_llms, warm_items
        extra_llms = np.setdiff1d(np.asarray(llms if llms is not None else [], dtype=str), warm_llms)
        extra_items = np.setdiff1d(np.asarray(items if items is not None else [], dtype=str), warm_items)
        if uses_potential:
            extra_llms = np.setdiff1d(np.asarray(llms if llms is not None else [], dtype=str), warm_llms)
            extra_items = np.setdiff1d(np.asarray(items if items is not None else [], dtype=str), warm_items)
            self.llms_ = np.concatenate([warm_llms, extra_llms])
            self.items_ = np.concatenate([warm_items, extra_items])
        llm_codes = np.searchsorted(warm_llms, llm).astype(np.int32)
        item_codes = np.searchsorted(warm_items, item).astype(np.int32)
        item_group_codes = None
        self.item_group_labels_ = None
        self.item_groups_ = GroupMap.from_mapping(item_groups, "item_groups")
        self.llm_groups_ = GroupMap.from_mapping(llm_groups, "llm_groups")
        if item_groups is not None:
            groups = pd.Series(item_groups).astype(str)
            labels = groups.reindex(self.items_)
            missing = labels.isna().to_numpy()
            if missing.any():
                raise ConfigError(
                    f"item_groups has no group for {int(missing.sum())} item(s) in the model, e.g. "
                    f"{self.items_[missing][:5].tolist()}"
                )
            item_group_codes, uniques = pd.factorize(labels.to_numpy(), sort=True)
            self.item_group_labels_ = np.asarray(uniques, dtype=str)
            model_config = dataclasses.replace(model_config, n_item_groups=len(uniques))
        similarity = None
        self.similarity_lambdas_ = {}
        if uses_potential:
            item_factor = side.rows_for("item", self.items_)
            llm_factor = side.rows_for("llm", self.llms_)
            lambda_items = float(self.similarity_weight_items) * len(correct) / len(self.items_) ** 2
            lambda_llms = float(self.similarity_weight_llms) * len(correct) / len(self.llms_) ** 2
            self.similarity_lambdas_ = {"lambda_items": lambda_items, "lambda_llms": lambda_llms}
            similarity = SimilarityInputs.build(
                items_factor=None if item_factor is None or lambda_items == 0 else jnp.asarray(item_factor),
                llms_factor=None if llm_factor is None or lambda_llms == 0 else jnp.asarray(llm_factor),
                items_weight=lambda_items,
                llms_weight=lambda_llms,
                augmented=self.similarity_on == "augmented",
                profile_scale=bool(self.profile_scale),
                cold_only=self.similarity_mode == "cold",
                n_warm_items=len(warm_items),
                n_warm_llms=len(warm_llms),
            )
        result = run_svi(
            len(self.llms_),
            len(self.items_),
            llm_codes,
            item_codes,
            correct,
            model_config,
            inference_config,
            similarity=similarity,
            item_group=item_group_codes,
            seed=int(self.seed),
            description=f"fit {self.method} ({self.guide})",
        )
        self.svi_result_: SVIResult | None = result
        self.params_ = {name: np.asarray(value, dtype=np.float32) for name, value in result.point.items()}
        self.posterior_ = GaussianPosterior.from_svi(self.guide, result.guide, result.guide_params, self.params_)
        self.losses_ = result.losses
        self.converged_ = result.converged
        self.fit_seconds_ = result.seconds
        self.layout_ = result.layout
        self.n_pairs_ = int(len(correct))
        self.n_warm_llms_ = len(warm_llms)
        self.n_warm_items_ = len(warm_items)
        self._fold_in_cache = self._spread_cache = None
        self.n_fitted_llms_, self.n_fitted_items_ = len(self.llms_), len(self.items_)
        self.inductive_ = {}
        if kernel:
            # Entities without data: the Gaussian-process conditional given the fitted ones (see fold_in).
            for kind, extra in (("item", extra_items), ("llm", extra_llms)):
                known = self.items_ if kind == "item" else self.llms_
                if len(extra) and side.rows_for(kind, known) is not None:
                    self.fold_in(kind, extra, side=side)
        return self

    def _append_entities(self, kind: str, ids: np.ndarray, latent: np.ndarray, factors_key: str, bias_key: str) -> None:
        """Add folded-in entities (rows ``[factors, bias]`` of ``latent``) after the fitted ones."""
        if factors_key in self.params_:
            self.params_[factors_key] = np.concatenate([self.params_[factors_key], latent[:, : self.dim]]).astype(np.float32)
        if bias_key in self.params_:
            self.params_[bias_key] = np.concatenate([self.params_[bias_key], latent[:, -1]]).astype(np.float32)
        if kind == "item":
            self.items_ = np.concatenate([self.items_, ids])
        else:
            self.llms_ = np.concatenate([self.llms_, ids])

    # inductive fold-in -----------------------------------------------------------------------
    def fold_in(
        self,
        kind: Literal["llm", "item"],
        ids,
        *,
        answers: pd.DataFrame | None = None,
        side=None,
        prior: Literal["population", "model"] = "population",
        ridge: float | None = None,
        temperature: float = 1.0,
        max_iter: int = 100,
    ) -> pd.DataFrame:
        """Add LLMs or items the fit never saw, without refitting: infer each one's latent
        ``[factors, bias]`` with every fitted parameter held at its point estimate.

        The new entity's prior is Gaussian:

        * ``prior="population"`` (default): the distribution of the fitted entities. Without
          ``side`` it is the mean and covariance of their point estimates. With ``side`` (a
          :class:`~bayes_simrmf.sideinfo.SideInformation` holding rows for the fitted entities and the new ones: metadata or question text), it is
          the conditional of the matrix-normal Gaussian process whose row covariance is the
          similarity ``√S = W Wᵀ`` plus ``ridge·I`` (the same prior as the kernel fold-in of
          :meth:`fit`), so a new entity starts near the fitted entities it resembles, with a
          variance that shrinks the more it resembles them.
        * ``prior="model"``: the model's own prior ``N(0, ·)``, the prior a refit including the
          entity would give it (MAP fold-in then matches such a refit when the rest barely moves).

        Observed answers (k-shot) update it by Bayesian logistic regression against the fixed
        fitted partners; the posterior is the Laplace approximation at the mode (Newton's method).
        Predictions for a folded-in entity average the sigmoid over that Gaussian (so they carry
        its uncertainty even under the delta guide), and :meth:`predict_interval` draws from it.

        Args:
            kind: "llm" or "item".
            ids: new ids (refused if already in the model).
            answers: observed answers of the new entities, a DataFrame with columns ``llm``,
                ``item``, ``correct``; the ``kind`` column names new ids, the other fitted ones.
            side: side information for a similarity prior (``prior="population"`` only).
            prior: "population" or "model".
            ridge: the GP nugget; defaults to ``fold_in_ridge_items`` / ``fold_in_ridge_llms``.
            temperature: τ ≥ 1 divides the curvature the answers add to the posterior precision
                (the mode is unchanged). With everything else held fixed and the model
                misspecified, the untempered posterior is too sure once there are many answers;
                choose τ on validation entities carved from the training data
                (``experiments/kshot.py`` shows how), never on test ones.
            max_iter: Newton iterations at most.
        Returns:
            one row per new id: ``n_answers``, ``prior_sd_logit`` and ``posterior_sd_logit`` (sd of
            the latent's contribution to a logit against an average partner), ``converged``.
        """
        self._check_fitted()
        if kind not in ("llm", "item"):
            raise ConfigError(f"kind must be 'llm' or 'item', got {kind!r}")
        if prior not in ("population", "model"):
            raise ConfigError(f"prior must be 'population' or 'model', got {prior!r}")
        if not (np.isfinite(temperature) and temperature > 0):
            raise ConfigError(f"temperature must be a finite number > 0, got {temperature!r}")
        if side is not None and prior != "population":
            raise ConfigError("side information sets a population prior; pass prior='population' with side")
        ids = _as_id_array(ids, "ids")
        if len(ids) == 0 or len(np.unique(ids)) != len(ids):
            raise ConfigError(f"ids must be non-empty and unique; got {len(ids)} ids, {len(np.unique(ids))} distinct")
        known_ids = self.llms_ if kind == "llm" else self.items_
        clash = np.intersect1d(ids, known_ids)
        if len(clash):
            raise ConfigError(f"{len(clash)} {kind} id(s) are already in the model, e.g. {clash[:5].tolist()}")
        factors_key, bias_key = (ITEM_FACTORS, ITEM_BIAS) if kind == "item" else (LLM_FACTORS, LLM_BIAS)
        partner_factors_key, partner_bias_key = (LLM_FACTORS, LLM_BIAS) if kind == "item" else (ITEM_FACTORS, ITEM_BIAS)
        n_warm = self.n_warm_items_ if kind == "item" else self.n_warm_llms_
        p = self.dim + 1
        prior_mean, prior_cov = self._fold_in_prior(kind, ids, n_warm, factors_key, bias_key, side, prior, ridge)

        # Answers → per-entity design rows [partner factors, 1] and offsets intercept + partner bias.
        partner_kind = "item" if kind == "llm" else "llm"
        if answers is None:
            answers = pd.DataFrame({"llm": [], "item": [], "correct": []})
        missing = {"llm", "item", "correct"} - set(answers.columns)
        if missing:
            raise ConfigError(f"answers must have columns llm, item, correct; missing {sorted(missing)}")
        own = _as_id_array(answers[kind].to_numpy(), f"answers.{kind}")
        partners = _as_id_array(answers[partner_kind].to_numpy(), f"answers.{partner_kind}")
        _, _, correct = _check_pairs(own, partners, answers["correct"].to_numpy()) if len(answers) else (None, None, np.zeros(0, np.int8))
        strangers = np.setdiff1d(own, ids)
        if len(strangers):
            raise ConfigError(f"answers name {len(strangers)} {kind} id(s) not in ids, e.g. {strangers[:5].tolist()}")
        n_fitted_partners = self.n_fitted_items_ if kind == "llm" else self.n_fitted_llms_
        partner_codes = pd.Index((self.items_ if kind == "llm" else self.llms_)[:n_fitted_partners]).get_indexer(partners)
        if (partner_codes < 0).any():
            unknown = pd.unique(partners[partner_codes < 0])[:5].tolist()
            raise UnknownEntityError(
                f"answers name {int((partner_codes < 0).sum())} pair(s) with a {partner_kind} the model was not fitted "
                f"on, e.g. {unknown}; fold in only against fitted {partner_kind}s"
            )
        duplicated = pd.Series(own).str.cat(pd.Series(partners), sep="\x00").duplicated()
        if duplicated.any():
            rows = np.flatnonzero(duplicated.to_numpy())[:5].tolist()
            raise ConfigError(f"answers repeat {int(duplicated.sum())} ({kind}, {partner_kind}) pair(s), e.g. rows {rows}")
        design = _augmented(self.params_, partner_factors_key, partner_bias_key, len(self.items_ if kind == "llm" else self.llms_))
        design[:, -1] = 1.0
        offsets = float(self.params_.get(INTERCEPT, 0.0)) + self.params_.get(
            partner_bias_key, np.zeros(design.shape[0], np.float32)).astype(np.float64)
        if not self.biases:
            design[:, -1] = 0.0  # no bias term: the bias coordinate stays at its prior
        own_codes = pd.Index(ids).get_indexer(own)

        means = np.empty((len(ids), p))
        covs = np.empty((len(ids), p, p))
        report = []
        average_partner = design[: n_fitted_partners].mean(axis=0)
        for index in range(len(ids)):
            rows = partner_codes[own_codes == index]
            y = correct[own_codes == index].astype(np.float64)
            mean, cov, converged = _laplace_logistic(
                prior_mean[index], prior_cov[index], design[rows], offsets[rows], y, max_iter, float(temperature)
            )
            means[index], covs[index] = mean, cov
            report.append({
                kind: ids[index],
                "n_answers": len(rows),
                "prior_sd_logit": float(np.sqrt(average_partner @ prior_cov[index] @ average_partner)),
                "posterior_sd_logit": float(np.sqrt(average_partner @ cov @ average_partner)),
                "converged": converged,
            })
        self._append_entities(kind, ids, means, factors_key, bias_key)
        if kind in self.inductive_:
            old_mean, old_cov = self.inductive_[kind]
            means, covs = np.concatenate([old_mean, means]), np.concatenate([old_cov, covs])
        self.inductive_[kind] = (means, covs)
        self._fold_in_cache = self._spread_cache = None
        return pd.DataFrame(report).set_index(kind)

    def _fold_in_prior(self, kind, ids, n_warm, factors_key, bias_key, side, prior, ridge):
        """Gaussian prior ``(mean (m, p), cov (m, p, p))`` of new entities' ``[factors, bias]``."""
        p = self.dim + 1
        if prior == "model":
            variances = np.full(p, self.model_config().factor_prior_sd ** 2)
            scale = self.bias_scale
            if kind == "llm" and getattr(self, "llm_bias_scale", None) is not None:
                scale = self.llm_bias_scale
            variances[-1] = float(scale) ** 2 if scale is not None else 1.0
            return np.zeros((len(ids), p)), np.broadcast_to(np.diag(variances), (len(ids), p, p)).copy()
        latent = _augmented(self.params_, factors_key, bias_key, len(self.items_ if kind == "item" else self.llms_))[:n_warm]
        known_ids = (self.items_ if kind == "item" else self.llms_)[:n_warm]
        groups = getattr(self, f"{kind}_groups_", None) or GroupMap()
        known_groups = new_groups = None
        if groups:
            new_groups, known_groups = groups.codes_against(ids, known_ids)
        # The spread of the fitted entities' point estimates only: adding their mean-field posterior
        # variances (law of total variance) over-disperses the population, because those variances are
        # mostly the factors' rotation and scale freedom, not uncertainty about logits; measured on
        # openllm-v2-mmlupro-math it pushed new questions' predictions towards 1/2 (B bias −0.043).
        if side is None:
            # The group's mean (if known) and the spread of the fitted rows around their group means.
            known_mean, new_mean = group_means(latent, known_groups, new_groups, len(ids))
            centred = latent - known_mean
            cov = (centred.T @ centred / len(centred)).reshape(p, p)
            return new_mean, np.broadcast_to(cov, (len(ids), p, p)).copy()
        ridge = float(ridge if ridge is not None else (self.fold_in_ridge_items if kind == "item" else self.fold_in_ridge_llms))
        known_factor = side.rows_for(kind, known_ids)
        new_factor = side.rows_for(kind, ids)
        if known_factor is None or new_factor is None:
            raise ConfigError(f"the side information has no {kind} similarity")
        cond_mean, factor, row_cov = gp_conditional(latent, known_factor, new_factor, ridge, known_groups, new_groups)
        return cond_mean, factor[:, None, None] * row_cov[None]

    # prediction ------------------------------------------------------------------------------
    def _encode(self, ids: np.ndarray, known: np.ndarray, kind: str, unknown: str) -> np.ndarray:
        if unknown not in UNKNOWN_POLICIES:
            raise ConfigError(f"unknown must be one of {UNKNOWN_POLICIES}, got {unknown!r}")
        if unknown == "error":
            return encode_ids(ids, known, kind, also=f", or pass unknown='population' to predict them as an average "
                                                   f"fitted {kind}")
        return pd.Index(known).get_indexer(ids)

    def predict(
        self,
        llm,
        item,
        *,
        unknown: Literal["error", "population"] = "error",
        n_draws: int | None = None,
        seed: int = 0,
        item_groups=None,
        llm_groups=None,
    ) -> np.ndarray:
        """Predicted probability of a correct answer, ``(n_pairs,)`` in [0, 1].

        Under the delta guide, known pairs use the MAP. Under a guide with posterior spread
        (normal, lowrank) the probability is the posterior predictive mean ``E[σ(logit)]`` over
        ``n_draws`` posterior draws (default 100; ``n_draws=0`` gives the plug-in ``σ`` at the
        posterior median). An unknown LLM or item (``unknown="population"``) is averaged over
        the fitted population of its group (``item_groups`` / ``llm_groups`` given here or to
        :meth:`fit`; all fitted entities where its group is unknown or has none fitted); an entity
        added by :meth:`fold_in` is averaged over its posterior.
        """
        self._check_fitted()
        if unknown not in UNKNOWN_POLICIES:
            raise ConfigError(f"unknown must be one of {UNKNOWN_POLICIES}, got {unknown!r}")
        llm, item, _ = _check_pairs(llm, item)
        llm_codes = self._encode(llm, self.llms_, "LLM", unknown)
        item_codes = self._encode(item, self.items_, "item", unknown)
        if n_draws is None:
            n_draws = 0 if self.posterior_.is_point else 100
        if n_draws < 0:
            raise ConfigError(f"n_draws must be >= 0, got {n_draws}")
        pools = self._unknown_pools(llm, item, llm_codes, item_codes, llm_groups, item_groups)
        if n_draws == 0 or self.posterior_.is_point:
            return self._predict_codes(llm_codes, item_codes, pools)
        total = np.zeros(len(llm_codes))
        for draw in self._posterior_draws(n_draws, seed):
            total += draw._predict_codes(llm_codes, item_codes, pools)
        return total / n_draws

    def predict_interval(
        self,
        llm,
        item,
        *,
        n_draws: int = 200,
        level: float = 0.9,
        unknown: Literal["error", "population"] = "error",
        batch_pairs: int = 50_000,
        seed: int = 0,
        item_groups=None,
        llm_groups=None,
    ) -> pd.DataFrame:
        """Posterior predictive probability with sd and a central credible interval, per pair.

        Draws parameters from the fitted variational posterior (``guide="normal"`` or
        ``"lowrank"``) and repeats :meth:`predict`'s computation for each draw (folded-in and
        unseen entities included), in batches of ``batch_pairs`` pairs so that at most
        ``n_draws × batch_pairs`` probabilities are held at once.

        An entity the fit never saw (``unknown="population"``) is, in each draw, a random fitted
        entity, so its interval covers the spread of the population. Entities folded in from
        similarity use their folded-in vectors per draw; the part of their logit the similarity
        did not explain is integrated over, not sampled, so their intervals are too narrow.

        Returns:
            DataFrame with columns ``prob`` (posterior mean), ``sd``, ``lower``, ``upper``
            (the ``level`` central interval), one row per pair, probabilities in [0, 1].
        """
        self._check_fitted()
        if self.guide == "delta":
            raise ConfigError(
                "the delta guide is a point estimate (MAP) with no posterior spread; fit with "
                "guide='normal' or 'lowrank' for intervals"
            )
        if not 0 < level < 1:
            raise ConfigError(f"level must be in (0, 1), got {level!r}")
        if n_draws < 2 or batch_pairs < 1:
            raise ConfigError(f"need n_draws >= 2 and batch_pairs >= 1, got {n_draws}, {batch_pairs}")
        llm, item, _ = _check_pairs(llm, item)
        llm_codes = self._encode(llm, self.llms_, "LLM", unknown)
        item_codes = self._encode(item, self.items_, "item", unknown)
        draws = self._posterior_draws(n_draws, seed)
        tail = (1.0 - level) / 2.0
        columns = {name: np.empty(len(llm_codes)) for name in ("prob", "sd", "lower", "upper")}
        pools = self._unknown_pools(llm, item, llm_codes, item_codes, llm_groups, item_groups)
        for block, probs in self._draw_batches(draws, llm, item, llm_codes, item_codes, batch_pairs, seed, pools):
            columns["prob"][block] = probs.mean(axis=0)
            columns["sd"][block] = probs.std(axis=0, ddof=1)
            columns["lower"][block], columns["upper"][block] = np.quantile(probs, [tail, 1.0 - tail], axis=0)
        return pd.DataFrame(columns)

    def predict_group_interval(
        self,
        llm,
        item,
        *,
        by="llm",
        n_draws: int = 200,
        level: float = 0.9,
        observed: bool = True,
        unknown: Literal["error", "population"] = "error",
        batch_pairs: int = 50_000,
        seed: int = 0,
        item_groups=None,
        llm_groups=None,
    ) -> pd.DataFrame:
        """Mean accuracy of each LLM (``by="llm"``), item (``by="item"``) or any grouping of the
        pairs (``by`` = one label per pair, e.g. LLM and benchmark) over the given pairs, with an
        interval.

        Per posterior draw the pairs' probabilities are averaged per group; with ``observed=True``
        answers are also drawn (Bernoulli), so the interval is for the *observed* mean accuracy
        on these pairs (what a user would measure by running them), not only its expectation.
        The delta guide gives the plug-in predictive (Bernoulli noise around the MAP only), plus
        the posterior of entities added by :meth:`fold_in`.

        Returns:
            DataFrame indexed by group with columns ``mean``, ``lower``, ``upper``, ``n_pairs``.
        """
        self._check_fitted()
        if not 0 < level < 1:
            raise ConfigError(f"level must be in (0, 1), got {level!r}")
        group_ids, means, counts = self.group_draws(llm, item, by=by, n_draws=n_draws, observed=observed,
                                                    unknown=unknown, batch_pairs=batch_pairs, seed=seed,
                                                    item_groups=item_groups, llm_groups=llm_groups)
        tail = (1.0 - level) / 2.0
        lower, upper = np.quantile(means, [tail, 1.0 - tail], axis=0)
        name = by if isinstance(by, str) else "group"
        return pd.DataFrame(
            {"mean": means.mean(axis=0), "lower": lower, "upper": upper, "n_pairs": counts},
            index=pd.Index(group_ids, name=name),
        )

    def group_draws(
        self,
        llm,
        item,
        *,
        by="llm",
        n_draws: int = 200,
        observed: bool = True,
        unknown: Literal["error", "population"] = "error",
        batch_pairs: int = 50_000,
        seed: int = 0,
        item_groups=None,
        llm_groups=None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Posterior predictive draws of each group's mean accuracy (see :meth:`predict_group_interval`).

        Returns:
            ``(group_ids (n_groups,), means (n_draws, n_groups), n_pairs (n_groups,))``.
        """
        self._check_fitted()
        llm, item, _ = _check_pairs(llm, item)
        if isinstance(by, str):
            if by not in ("llm", "item"):
                raise ConfigError(f"by must be 'llm', 'item' or one group label per pair, got {by!r}")
            labels = llm if by == "llm" else item
        else:
            labels = _as_id_array(by, "by")
            if len(labels) != len(llm):
                raise ConfigError(f"by must give one group label per pair; got {len(labels)} for {len(llm)} pairs")
        if n_draws < 2 or batch_pairs < 1:
            raise ConfigError(f"need n_draws >= 2 and batch_pairs >= 1, got {n_draws}, {batch_pairs}")
        llm_codes = self._encode(llm, self.llms_, "LLM", unknown)
        item_codes = self._encode(item, self.items_, "item", unknown)
        group_codes, group_ids = pd.factorize(pd.Series(labels))
        n_groups = len(group_ids)
        point = self.posterior_.is_point and not self.inductive_
        draws = [self] * n_draws if point else self._posterior_draws(n_draws, seed)
        rng = np.random.default_rng(seed)
        sums = np.zeros((n_draws, n_groups))
        pools = self._unknown_pools(llm, item, llm_codes, item_codes, llm_groups, item_groups)
        for block, probs in self._draw_batches(draws, llm, item, llm_codes, item_codes, batch_pairs, seed, pools):
            values = (rng.random(probs.shape) < probs).astype(float) if observed else probs
            for index in range(n_draws):
                sums[index] += np.bincount(group_codes[block], weights=values[index], minlength=n_groups)
        counts = np.bincount(group_codes, minlength=n_groups)
        return np.asarray(group_ids, dtype=str), sums / counts, counts

    def _draw_batches(self, draws, llm, item, llm_codes, item_codes, batch_pairs, seed, pools=None):
        """Yield ``(slice, probabilities (n_draws, batch))`` over batches of pairs.

        An entity the fit never saw (code -1) is, in each draw, one fitted entity of its group
        (of all fitted ones where its group is unknown; see :meth:`_unknown_pools`) picked at
        random, the same for all its pairs in that draw: a random member of the population, so
        the spread across draws includes how much entities differ, not only the uncertainty of
        the population's average.
        """
        members = {}
        for kind, ids, codes, n_warm in (("llm", llm, llm_codes, self.n_warm_llms_),
                                         ("item", item, item_codes, self.n_warm_items_)):
            unseen = codes < 0
            if unseen.any():
                unique_ids, first, inverse = np.unique(ids[unseen], return_index=True, return_inverse=True)
                rng = np.random.default_rng([seed, 7, kind == "llm"])
                uniform = rng.random((len(draws), len(unique_ids)))
                id_group = np.full(len(unique_ids), -1, dtype=np.int64)
                groups = [np.arange(n_warm)]
                if pools is not None and kind in pools:
                    pair_group, groups = pools[kind][0], [np.arange(n_warm), *pools[kind][1]]
                    id_group = pair_group[np.flatnonzero(unseen)[first]]
                picks = np.empty((len(draws), len(unique_ids)), dtype=np.int64)
                for code, pool in enumerate(groups, start=-1):
                    chosen = id_group == code
                    if chosen.any():
                        picks[:, chosen] = self._population_picks(pool, uniform[:, chosen], rng)
                members[kind] = (unseen, inverse, picks)
        for start in range(0, len(llm_codes), batch_pairs):
            block = slice(start, start + batch_pairs)
            rows = []
            for index, draw in enumerate(draws):
                codes_in_draw = []
                for kind, codes in (("llm", llm_codes), ("item", item_codes)):
                    codes = codes.copy()
                    if kind in members:
                        unseen, inverse, picks = members[kind]
                        codes[unseen] = picks[index][inverse]
                    codes_in_draw.append(codes[block])
                rows.append(draw._predict_codes(*codes_in_draw))
            yield block, np.stack(rows)

    def _population_picks(self, pool: np.ndarray, uniform: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Codes ``(n_draws, n_entities)`` of the fitted members standing in for unseen entities: per
        draw, each picks a member of ``pool`` at random, from a bootstrap resample of the pool under
        ``population_draws="bootstrap"`` (see the constructor)."""
        slots = (uniform * len(pool)).astype(np.int64)
        if getattr(self, "population_draws", "fixed") != "bootstrap":
            return pool[slots]
        resample = rng.integers(0, len(pool), (uniform.shape[0], len(pool)))
        return pool[np.take_along_axis(resample, slots, axis=1)]

    def sample_posterior(self, n_draws: int = 200, seed: int = 0) -> dict[str, np.ndarray]:
        """Joint draws of every parameter from the fitted posterior, one row per entity in the model.

        Rows follow :attr:`llms_` / :attr:`items_`: fitted entities are drawn from the guide's
        Gaussian; entities folded in (by the kernel mode of :meth:`fit` or by :meth:`fold_in`) from
        their own Gaussian, independently of the fitted ones. The delta guide gives ``n_draws``
        copies of the MAP for the fitted entities.

        Returns:
            site name (``bayes_simrmf.model`` constants) → ``(n_draws, *shape)`` float32.
        """
        self._check_fitted()
        draws = self.posterior_.sample(n_draws, seed)
        for name, value in self.params_.items():
            draws.setdefault(name, np.broadcast_to(value, (n_draws, *np.shape(value))).astype(np.float32))
        rng = np.random.default_rng([int(seed), 13])
        for kind, (mean, cov) in self.inductive_.items():
            factors_key, bias_key = (ITEM_FACTORS, ITEM_BIAS) if kind == "item" else (LLM_FACTORS, LLM_BIAS)
            chol = np.linalg.cholesky(cov + 1e-9 * np.eye(cov.shape[-1]))
            noise = rng.standard_normal((n_draws, *mean.shape))
            latent = mean + np.einsum("npq,snq->snp", chol, noise)
            for key, part in ((factors_key, latent[..., : self.dim]), (bias_key, latent[..., -1])):
                if key in draws:
                    draws[key] = np.concatenate([draws[key], part.astype(np.float32)], axis=1)
        return draws

    def _posterior_draws(self, n_draws: int, seed: int) -> list["SimRMF"]:
        """Shallow copies of this estimator, each holding one posterior draw of the parameters."""
        import copy

        sampled = self.sample_posterior(n_draws, seed)
        copies = []
        for index in range(n_draws):
            draw = copy.copy(self)
            draw.params_ = {name: sampled[name][index] for name in self.params_}
            draw.inductive_ = {}  # a draw is a point: no further integration over folded-in entities
            draw._fold_in_cache = draw._spread_cache = None
            copies.append(draw)
        return copies

    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise NotFittedError("this SimRMF is not fitted yet: call fit(...) or load a saved model first")

    def _logits(self, llm_codes: np.ndarray, item_codes: np.ndarray) -> np.ndarray:
        """Logits of the outer product ``(len(llm_codes), len(item_codes))`` from the point estimate."""
        return grid_logits(self.params_, llm_codes, item_codes)

    def _population_mean(self, axis: str, codes: np.ndarray, population: np.ndarray) -> np.ndarray:
        """Mean predicted probability of each entity in ``codes`` against a population of the other side.

        ``axis="item"``: for each item code, the mean over ``population`` LLMs (what a new LLM is
        expected to score on it); ``axis="llm"``: for each LLM code, the mean over population items.
        """
        means = np.empty(len(codes), dtype=np.float64)
        for start in range(0, len(codes), _POPULATION_CHUNK):
            block = codes[start : start + _POPULATION_CHUNK]
            logits = self._logits(population, block) if axis == "item" else self._logits(block, population).T
            means[start : start + len(block)] = np.mean(sigmoid(logits), axis=0)
        return means

    def _population(self, n: int, salt: int) -> np.ndarray:
        """Codes of the fitted entities standing in for the population (a seeded sample if large)."""
        if n <= _MAX_POPULATION:
            return np.arange(n)
        rng = np.random.default_rng([int(self.seed), salt])
        return np.sort(rng.choice(n, _MAX_POPULATION, replace=False))

    def _logit_moments(self, rows: np.ndarray, cols: np.ndarray, axis: str) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of the logits of each entity in ``rows`` across the entities ``cols``.

        ``axis="llm"``: rows are LLM codes, cols item codes; ``axis="item"``: the reverse.
        """
        means = np.empty(len(rows))
        variances = np.empty(len(rows))
        for start in range(0, len(rows), _POPULATION_CHUNK):
            block = rows[start : start + _POPULATION_CHUNK]
            logits = self._logits(block, cols) if axis == "llm" else self._logits(cols, block).T
            means[start : start + len(block)] = logits.mean(axis=1)
            variances[start : start + len(block)] = logits.var(axis=1)
        return means, variances

    def _fold_in_moments(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Logit moments against fitted and against folded-in partners (cached; see :meth:`_predict_codes`)."""
        cached = getattr(self, "_fold_in_cache", None)
        if cached is not None:
            return cached
        warm_llms = self._population(self.n_warm_llms_, 1)
        warm_items = self._population(self.n_warm_items_, 2)
        folded_llms = np.arange(self.n_warm_llms_, self.n_fitted_llms_)
        folded_items = np.arange(self.n_warm_items_, self.n_fitted_items_)
        all_warm_llms = np.arange(self.n_warm_llms_)
        all_warm_items = np.arange(self.n_warm_items_)
        moments: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if len(folded_items):
            moments["llm_vs_warm"] = self._logit_moments(all_warm_llms, warm_items, "llm")
            moments["llm_vs_folded"] = self._logit_moments(all_warm_llms, folded_items, "llm")
        if len(folded_llms):
            moments["item_vs_warm"] = self._logit_moments(all_warm_items, warm_llms, "item")
            moments["item_vs_folded"] = self._logit_moments(all_warm_items, folded_llms, "item")
        if len(folded_llms) and len(folded_items):
            block = self._logits(warm_llms, warm_items)
            folded = self._logits(folded_llms[: _MAX_POPULATION], folded_items[: _MAX_POPULATION])
            moments["warm_block"] = (np.array([block.mean()]), np.array([block.var()]))
            moments["folded_block"] = (np.array([folded.mean()]), np.array([folded.var()]))
        self._fold_in_cache = moments
        return moments

    def _warm_group_codes(self, kind: str) -> tuple[np.ndarray, np.ndarray] | None:
        """Group codes of every entity of ``kind`` held in the model and of its fitted (warm) ones,
        coded into the warm entities' groups (-1: no group, or a group no warm entity has); None
        without groups."""
        groups = getattr(self, f"{kind}_groups_", None) or GroupMap()
        if not groups:
            return None
        ids = self.llms_ if kind == "llm" else self.items_
        n_warm = self.n_warm_llms_ if kind == "llm" else self.n_warm_items_
        return groups.codes_against(ids, ids[:n_warm])

    def _spread_table(self, partner_kind: str, group: int) -> np.ndarray:
        """``(n_warm partners, Q)`` quantiles of each fitted partner's standardised logits across the
        fitted entities of the other side in ``group`` (-1: all of them); a partner whose logits do
        not vary there gets the normal's quantiles. Cached until the model changes."""
        cache = self._spread_cache = getattr(self, "_spread_cache", None) or {}
        if (partner_kind, group) in cache:
            return cache[partner_kind, group]
        other_kind = "item" if partner_kind == "llm" else "llm"
        n_warm_partner = self.n_warm_llms_ if partner_kind == "llm" else self.n_warm_items_
        n_warm_other, salt = (self.n_warm_items_, 2) if other_kind == "item" else (self.n_warm_llms_, 1)
        coded = self._warm_group_codes(other_kind)
        if group < 0 or coded is None:
            members = self._population(n_warm_other, salt)
        else:
            members = np.flatnonzero(coded[1] == group)
            if len(members) > _MAX_POPULATION:
                rng = np.random.default_rng([int(self.seed), salt, group])
                members = np.sort(rng.choice(members, _MAX_POPULATION, replace=False))
        table = np.empty((n_warm_partner, len(_SPREAD_LEVELS)))
        for start in range(0, n_warm_partner, _POPULATION_CHUNK):
            block = np.arange(start, min(start + _POPULATION_CHUNK, n_warm_partner))
            logits = self._logits(block, members) if partner_kind == "llm" else self._logits(members, block).T
            sd = logits.std(axis=1, keepdims=True)
            varies = sd[:, 0] > 1e-9
            standard = (logits - logits.mean(axis=1, keepdims=True)) / np.where(varies[:, None], sd, 1.0)
            table[block] = np.where(varies[:, None], np.quantile(standard, _SPREAD_LEVELS, axis=1).T,
                                    _NORMAL_QUANTILES[None, :])
        cache[partner_kind, group] = table
        return table

    def _empirical_expected_sigmoid(self, partner_kind, partner, other, logits, variance) -> np.ndarray:
        """``E[σ(ℓ + √v · r)]`` per pair, ``r`` from the fitted partner's standardised logit quantiles
        across the fitted entities of the other entity's group (see ``fold_in_spread``)."""
        other_kind = "item" if partner_kind == "llm" else "llm"
        coded = self._warm_group_codes(other_kind)
        group_of = coded[0][other] if coded is not None else np.full(len(other), -1)
        out = np.empty(len(partner))
        for group in np.unique(group_of):
            rows = np.flatnonzero(group_of == group)
            table = self._spread_table(partner_kind, int(group))
            for start in range(0, len(rows), 65_536):
                chunk = rows[start : start + 65_536]
                spread = np.sqrt(variance[chunk])[:, None] * table[partner[chunk]]
                out[chunk] = sigmoid(logits[chunk, None] + spread).mean(axis=1)
        return out

    def _inductive_logit_variance(self, llm: np.ndarray, item: np.ndarray) -> np.ndarray:
        """Logit variance of pairs from the Gaussian posteriors of entities added by :meth:`fold_in`."""
        variance = np.zeros(len(llm))
        covs = {}
        for kind, codes, offset in (("llm", llm, self.n_fitted_llms_), ("item", item, self.n_fitted_items_)):
            if kind not in self.inductive_:
                continue
            mask = codes >= offset
            if not mask.any():
                continue
            partner_codes = (item if kind == "llm" else llm)[mask]
            factors_key, bias_key = (ITEM_FACTORS, ITEM_BIAS) if kind == "llm" else (LLM_FACTORS, LLM_BIAS)
            partner = _augmented(self.params_, factors_key, bias_key, len(self.items_ if kind == "llm" else self.llms_))
            partner[:, -1] = 1.0 if self.biases else 0.0
            cov = self.inductive_[kind][1][codes[mask] - offset]
            covs[kind] = (mask, cov)
            variance[mask] += np.einsum("np,npq,nq->n", partner[partner_codes], cov, partner[partner_codes])
        if len(covs) == 2 and self.dim:
            (llm_mask, llm_cov), (item_mask, item_cov) = covs["llm"], covs["item"]
            both = llm_mask & item_mask
            if both.any():
                d = self.dim
                llm_block = np.zeros((len(llm), d, d))
                item_block = np.zeros((len(llm), d, d))
                llm_block[llm_mask] = llm_cov[:, :d, :d]
                item_block[item_mask] = item_cov[:, :d, :d]
                variance[both] += np.einsum("npq,nqp->n", llm_block[both], item_block[both])
        return variance

    def _unknown_pools(self, llm, item, llm_codes, item_codes, llm_groups=None, item_groups=None):
        """Where unknown entities come from: ``{kind: (pair_group (n_pairs,), pools)}``.

        ``pools[g]`` holds the codes of the fitted (warm) entities of group ``g``; ``pair_group`` is
        the group of each pair's unknown entity, ``-1`` where the entity is known, its group is not
        known, or no fitted entity shares it (the whole population stands in). Kinds without
        groups or without unknown entities are left out.
        """
        pools = {}
        for kind, ids, codes, extra, n_warm in (
            ("llm", llm, llm_codes, llm_groups, self.n_warm_llms_),
            ("item", item, item_codes, item_groups, self.n_warm_items_),
        ):
            stored = getattr(self, f"{kind}_groups_", None) or GroupMap()
            groups = stored.updated(extra, f"{kind}_groups")
            unknown = codes < 0
            if not groups or not unknown.any():
                continue
            warm_ids = (self.llms_ if kind == "llm" else self.items_)[:n_warm]
            unknown_group, warm_group = groups.codes_against(ids[unknown], warm_ids)
            pair_group = np.full(len(ids), -1, dtype=np.int64)
            pair_group[unknown] = unknown_group
            if (pair_group >= 0).any():
                n_groups = int(warm_group.max()) + 1
                pools[kind] = (pair_group, [np.flatnonzero(warm_group == g) for g in range(n_groups)])
        return pools

    def _group_population(self, kind: str, pools: dict | None, group: int) -> np.ndarray:
        """Codes of the fitted entities standing in for an unknown one of ``group`` (-1: any group)."""
        n_warm, salt = (self.n_warm_llms_, 1) if kind == "llm" else (self.n_warm_items_, 2)
        if group < 0 or not pools or kind not in pools:
            return self._population(n_warm, salt)
        members = pools[kind][1][group]
        if len(members) <= _MAX_POPULATION:
            return members
        rng = np.random.default_rng([int(self.seed), salt, group])
        return np.sort(rng.choice(members, _MAX_POPULATION, replace=False))

    def _predict_codes(self, llm_codes: np.ndarray, item_codes: np.ndarray, pools: dict | None = None) -> np.ndarray:
        """Probabilities for coded pairs; code -1 marks an entity the fit did not see.

        * Two fitted entities with data: the point estimate, ``σ(logit)``.
        * An unseen entity (code -1) is a draw from the population of fitted ones (the
          empirical distribution of their parameters), so its prediction is the average
          over that population: an unseen LLM on a fitted item scores the item's mean over
          the fitted LLMs, and so on.
        * An entity held in the model without data (SimRMF folds it in through the
          similarity potential): its point vector is a shrunk regression on similarity, so
          its logits are too concentrated and centred on the prior mode, not on an average
          entity. Its logit is therefore moved to the mean its partner shows against fitted
          entities, and the variance the similarity did not explain is integrated over:
          ``E[σ(ℓ̂ − m̂ + m + ε)], ε ~ N(0, max(v − v̂, 0))`` where ``m, v`` are the partner's
          logit mean and variance across fitted entities and ``m̂, v̂`` across folded-in ones.
        """
        prob = np.empty(len(llm_codes), dtype=np.float64)
        known_llm = llm_codes >= 0
        known_item = item_codes >= 0
        both = known_llm & known_item
        if both.any():
            llm, item = llm_codes[both], item_codes[both]
            logits = pair_logits(self.params_, llm, item)
            folded_llm = (llm >= self.n_warm_llms_) & (llm < self.n_fitted_llms_)
            folded_item = (item >= self.n_warm_items_) & (item < self.n_fitted_items_)
            shift = np.zeros(len(llm))
            extra_var = np.zeros(len(llm))
            if (folded_llm | folded_item).any():
                moments = self._fold_in_moments()
                for mask, warm_key, folded_key, partner in (
                    (~folded_llm & folded_item, "llm_vs_warm", "llm_vs_folded", llm),
                    (folded_llm & ~folded_item, "item_vs_warm", "item_vs_folded", item),
                    (folded_llm & folded_item, "warm_block", "folded_block", np.zeros(len(llm), dtype=int)),
                ):
                    if mask.any():
                        (warm_mean, warm_var), (folded_mean, folded_var) = moments[warm_key], moments[folded_key]
                        shift[mask] = warm_mean[partner[mask]] - folded_mean[partner[mask]]
                        extra_var[mask] = np.maximum(warm_var[partner[mask]] - folded_var[partner[mask]], 0.0)
            logits += shift
            extra_var += self._inductive_logit_variance(llm, item)
            result = np.empty(len(llm))
            plain = extra_var == 0
            result[plain] = sigmoid(logits[plain])
            spread = ~plain
            if getattr(self, "fold_in_spread", "gaussian") == "empirical":
                # A fitted partner meeting an entity without data: the partner's own logit shape.
                for partner_kind, partner, other, n_warm_partner, n_warm_other in (
                    ("llm", llm, item, self.n_warm_llms_, self.n_warm_items_),
                    ("item", item, llm, self.n_warm_items_, self.n_warm_llms_),
                ):
                    rows = spread & (partner < n_warm_partner) & (other >= n_warm_other)
                    if rows.any():
                        result[rows] = self._empirical_expected_sigmoid(
                            partner_kind, partner[rows], other[rows], logits[rows], extra_var[rows])
                        spread &= ~rows
            if spread.any():
                result[spread] = expected_sigmoid(logits[spread], extra_var[spread])
            prob[both] = result
        self._predict_unknown(prob, llm_codes, item_codes, pools or {})
        return prob

    def _predict_unknown(self, prob: np.ndarray, llm_codes: np.ndarray, item_codes: np.ndarray, pools: dict) -> None:
        """Fill ``prob`` for pairs with an unknown entity: the mean over the fitted population of
        the entity's group (see :meth:`_unknown_pools`), in place."""
        no_group = np.full(len(llm_codes), -1, dtype=np.int64)
        llm_group = pools["llm"][0] if "llm" in pools else no_group
        item_group = pools["item"][0] if "item" in pools else no_group
        known_llm, known_item = llm_codes >= 0, item_codes >= 0
        # axis "item": a new LLM against known items (its group's LLMs stand in); "llm": the reverse.
        for mask, group_codes, axis in ((~known_llm & known_item, llm_group, "item"),
                                        (known_llm & ~known_item, item_group, "llm")):
            partner_codes = item_codes if axis == "item" else llm_codes
            for group in np.unique(group_codes[mask]) if mask.any() else []:
                rows = mask & (group_codes == group)
                partners, inverse = np.unique(partner_codes[rows], return_inverse=True)
                population = self._group_population("llm" if axis == "item" else "item", pools, int(group))
                prob[rows] = self._population_mean(axis, partners, population)[inverse]
        neither = ~known_llm & ~known_item
        if neither.any():
            combos, inverse = np.unique(np.stack([llm_group[neither], item_group[neither]], axis=1), axis=0,
                                        return_inverse=True)
            values = np.empty(len(combos))
            for index, (group_l, group_i) in enumerate(combos):
                llm_population = self._group_population("llm", pools, int(group_l))
                item_population = self._group_population("item", pools, int(group_i))
                values[index] = float(np.mean(self._population_mean("item", item_population, llm_population)))
            prob[neither] = values[np.ravel(inverse)]

    # persistence -----------------------------------------------------------------------------
    def get_state(self) -> dict[str, np.ndarray]:
        """Fitted state as named arrays (for saving)."""
        self._check_fitted()
        state = {f"param/{name}": value for name, value in self.params_.items()}
        state["llms"] = self.llms_.astype(str)
        state["items"] = self.items_.astype(str)
        state["losses"] = np.asarray(self.losses_, dtype=np.float32)
        state["converged"] = np.asarray(self.converged_)
        state["n_pairs"] = np.asarray(self.n_pairs_)
        state["n_warm"] = np.asarray([self.n_warm_llms_, self.n_warm_items_])
        state["n_fitted"] = np.asarray([self.n_fitted_llms_, self.n_fitted_items_])
        if getattr(self, "item_group_labels_", None) is not None:
            state["item_group_labels"] = self.item_group_labels_.astype(str)
        state.update(self.posterior_.get_state())
        for kind in ("llm", "item"):
            state.update((getattr(self, f"{kind}_groups_", None) or GroupMap()).get_state(f"{kind}_groups"))
        for kind, (mean, cov) in self.inductive_.items():
            state[f"inductive/{kind}/mean"] = mean
            state[f"inductive/{kind}/cov"] = cov
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> SimRMF:
        self.params_ = {key.split("/", 1)[1]: np.asarray(v) for key, v in state.items() if key.startswith("param/")}
        self.llms_ = np.asarray(state["llms"]).astype(str)
        self.items_ = np.asarray(state["items"]).astype(str)
        self.losses_ = np.asarray(state["losses"])
        self.converged_ = bool(state["converged"])
        self.n_pairs_ = int(state["n_pairs"])
        self.n_warm_llms_, self.n_warm_items_ = (int(v) for v in state["n_warm"])
        fitted = state.get("n_fitted", [len(self.llms_), len(self.items_)])
        self.n_fitted_llms_, self.n_fitted_items_ = (int(v) for v in fitted)
        self.posterior_ = GaussianPosterior.from_state(state) or GaussianPosterior.point(self.params_)
        labels = state.get("item_group_labels")
        self.item_group_labels_ = None if labels is None else np.asarray(labels).astype(str)
        self.item_groups_ = GroupMap.from_state(state, "item_groups")
        self.llm_groups_ = GroupMap.from_state(state, "llm_groups")
        self.inductive_ = {
            kind: (np.asarray(state[f"inductive/{kind}/mean"]), np.asarray(state[f"inductive/{kind}/cov"]))
            for kind in ("llm", "item") if f"inductive/{kind}/mean" in state
        }
        self._fold_in_cache = self._spread_cache = None
        self.svi_result_ = None
        return self

    @classmethod
    def from_config(cls, config: dict) -> SimRMF:
        names = {f.name for f in dataclasses.fields(ModelConfig)} | set(cls.__init__.__code__.co_varnames)
        unknown = sorted(set(config) - names)
        if unknown:
            raise ConfigError(f"unknown SimRMF option(s) {unknown}")
        return cls(**config)


def make_estimator(method: str, **options):
    """Build the estimator for ``method`` (one of :data:`METHODS`) from keyword options."""
    if method == "meanscore":
        return MeanScore()
    if method == "counting":
        from bayes_simrmf.baselines import GroupAccuracy  # baselines imports pairs/groups only; no cycle

        return GroupAccuracy(**{key: value for key, value in options.items() if key not in ("seed", "progress")})
    if method in ("mf", *SIMILARITY_METHODS):
        return SimRMF(method=method, **options)
    raise ConfigError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
