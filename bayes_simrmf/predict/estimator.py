"""SimRMF as an estimator with a scikit-learn shape: hyper-parameters are the constructor's
arguments (a dataclass: one list, from which ``get_config`` / ``from_config`` and validation are
derived), ``fit`` returns self, and the fitted state is one frozen
:class:`~bayes_simrmf.predict.state.FittedState` in ``fitted_``.

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
from dataclasses import dataclass
from typing import Literal

import jax
import numpy as np
import pandas as pd

from bayes_simrmf.errors import ConfigError
from bayes_simrmf.groups import GroupMap
from bayes_simrmf.inference import InferenceConfig, SVIResult, run_svi
from bayes_simrmf.inference.gibbs import GibbsConfig, Potential, run_gibbs
from bayes_simrmf.inference.learned import run_learned_svi
from bayes_simrmf.inference.samples import SamplePosterior
from bayes_simrmf.model.sites import (
    INTERCEPT, ITEM_BIAS, ITEM_FACTORS, ITEM_GROUP_FLOOR, ITEM_GROUP_SLIP, LLM_BIAS, LLM_FACTORS,
)
from bayes_simrmf.model import ModelConfig, SimilarityInputs
from bayes_simrmf.model.predictor import item_asymptotes
from bayes_simrmf.options import METHODS, SIMILARITY_METHODS
from bayes_simrmf.pairs import as_id_array, check_pairs
from bayes_simrmf.params import SimRMFParams
from bayes_simrmf.inference.posterior import GaussianPosterior
from bayes_simrmf.predict.baselines import GroupAccuracy, MeanScore
from bayes_simrmf.predict.fold_in import fold_in_draws, fold_in_state
from bayes_simrmf.predict.queries import PosteriorQueries
from bayes_simrmf.predict.sides import ITEM, LLM, Side, side_of
from bayes_simrmf.predict.state import FittedState


#: SimRMF as PAPER.md writes it: the Gram potentials on all entities (joint), matching ``F Fᵀ`` of
#: the factors alone to ``√S`` with the similarity's scale fixed at 1; side information is built
#: uncentred (:data:`PAPER_SIDE`). What the likelihood needs beyond the paper's loss stays: an
#: intercept and per-LLM / per-item biases outside the factors (a pure ``σ(m·x)`` gives a cold
#: entity p = 1/2), λ written as ``κ · n_pairs / n²`` (κ tuned), and a cold entity's logits moved
#: to the mean its partner shows against fitted entities, with a normal spread around it (see
#: ``bayes_simrmf.predict.point``; the paper has no spread, and the normal is the simplest).
PAPER_FORM = {"method": "simrmf", "similarity_mode": "joint", "similarity_on": "factors", "profile_scale": False,
              "fold_in_spread": "gaussian"}
#: Options of :func:`bayes_simrmf.similarity.build_side_information` for the paper's form.
PAPER_SIDE = {"centre": False}
#: A sampler's fit counts as converged when every prediction summary's R-hat is at most this.
RHAT_MAX = 1.01
#: The sites of the linear predictor (what a sampler's point estimate holds).
MODEL_SITES = (INTERCEPT, LLM_BIAS, ITEM_BIAS, LLM_FACTORS, ITEM_FACTORS)
def _fitted(name: str, doc: str) -> property:
    """A read-only attribute of the fitted state (``NotFittedError``, an AttributeError, before fit)."""
    return property(lambda self: getattr(self._state(), name), doc=doc)


@dataclass(eq=False, repr=False)
class SimRMF(SimRMFParams, PosteriorQueries):
    """Matrix factorisation of LLM × question correctness, fitted by SVI in NumPyro (or sampled by Gibbs).

    The hyper-parameters are the fields of :class:`~bayes_simrmf.params.SimRMFParams` (each with its help
    text; ``SimRMF(dim=16, guide="normal")``), with scikit-learn's ``get_params`` / ``set_params`` /
    ``clone``. Notes on some of them:

    - ``method``: "mf" (BCE + L2 + biases), "simrmf" (plus Gram potentials towards side-information
      similarity) or "oracle" (the same with the ideal similarity from the true scores).
    - ``similarity_weight_items``, ``similarity_weight_llms``: κ_X, κ_M. The paper's λ is ``κ · n_pairs /
      n²`` (n items or LLMs in the model): the likelihood grows with the number of observed pairs and
      the potential with n², so κ is comparable across data sizes.
    - ``similarity_mode``: how side information reaches LLMs and items without data: "kernel"
      (default) fits the entities with data, then folds the others in by the conditional mean of a
      Gaussian-process prior whose covariance is ``√S`` (kernel ridge regression of the fitted
      ``[factors, bias]`` on the similarity factor, nugget ``fold_in_ridge_*``); "cold": the Gram
      potential, moving only entities without data; "joint": the paper's Gram potential on all.
    - ``llm_bias_scale``: where each LLM has few training answers but each question many (e.g. 1,000
      LLMs × 167 questions at T=100), a smaller LLM scale stops per-LLM abilities from fitting answer
      noise without shrinking item difficulties; tuned on validation (``experiments/configs/table2.json``,
      rows ``+llmbias``).
    - ``population_draws``: "fixed" draws every unseen entity from the same fitted population, whose
      mean is then certain; "bootstrap" resamples the fitted members of each group per draw, so a mean
      over many unseen entities also carries the uncertainty of a population known from finitely many
      members. On validation questions and LLMs carved from training pairs the two gave the same
      coverage (``experiments/results/population_draws.md``), so the default stays "fixed".
    - ``fold_in_spread``: "empirical" spreads a folded-in entity's logits like the partner's own logits
      across the fitted entities of the new entity's group (standardised, scaled to the fold-in
      variance), so a strong LLM's mean over new questions keeps the skew its fitted questions show. On
      questions and LLMs held out of each seed's training pairs (``experiments/results/fold_in_spread.md``)
      it was slightly better for new questions on all four datasets and slightly worse for new LLMs on
      openllm-v2, every difference under 2% of the RMSE, so the default stays "gaussian".
    - ``batch_size``: minibatch SVI with the log-likelihood scaled by n_pairs / batch_size (see
      :mod:`bayes_simrmf.inference`).
    - ``inference="gibbs"`` (with ``chains``, ``warmup``, ``samples``, ``thin``, ``gibbs_init``): the posterior by
      blocked Gibbs sampling with learned Normal–Wishart populations (:mod:`bayes_simrmf.inference.gibbs`) instead
      of a guide; ``lambda_reg`` and the bias scales then only shape the MAP start. ``posterior_`` holds the kept
      draws (:class:`~bayes_simrmf.inference.samples.SamplePosterior`), ``sampler_diagnostics_`` their R-hat and ESS;
      fold-ins and entities the fit never saw are drawn into every draw (from the learned population, or the GP
      conditional on that draw's rows). The paper's Gram potential ("joint" on the factors, the scale fixed:
      ``--paper``) is sampled with the rows (an exact Metropolis step within Gibbs, see the module); its other forms
      are refused.
    - ``prior="learned"`` (with ``guide`` "normal" or "lowrank"): the same learned-prior model fitted by SVI
      (:mod:`bayes_simrmf.inference.learned`); ``posterior_`` holds 400 draws of the fitted guide in the sampler's
      layout, so unseen entities and fold-ins are handled as with the sampler.
    """

    # the fitted state, read-only ----------------------------------------------------------------
    params_ = _fitted("params", "site name → point estimate, one row per entity in the model")
    llms_ = _fitted("llms", "LLM ids of the parameter rows")
    items_ = _fitted("items", "item ids of the parameter rows")
    n_warm_llms_ = _fitted("n_warm_llms", "LLMs fitted with data (the leading rows)")
    n_warm_items_ = _fitted("n_warm_items", "items fitted with data (the leading rows)")
    n_fitted_llms_ = _fitted("n_fitted_llms", "LLMs fitted by SVI (with or without data)")
    n_fitted_items_ = _fitted("n_fitted_items", "items fitted by SVI (with or without data)")
    inductive_ = _fitted("inductive", "kind → (mean, cov) of the folded-in entities")
    posterior_ = _fitted("posterior", "the variational posterior (GaussianPosterior)")
    losses_ = _fitted("losses", "the loss per SVI step")
    converged_ = _fitted("converged", "whether SVI met its stopping rule")
    n_pairs_ = _fitted("n_pairs", "training pairs")
    item_group_labels_ = _fitted("item_group_labels", "labels of the item groups with a mean, or None")
    item_groups_ = _fitted("item_groups", "item id → group (GroupMap)")
    llm_groups_ = _fitted("llm_groups", "LLM id → group (GroupMap)")

    # configuration ------------------------------------------------------------------------------
    def model_config(self) -> ModelConfig:
        return ModelConfig(
            dim=int(self.dim), lambda_reg=float(self.lambda_reg), biases=bool(self.biases), bias_scale=float(self.bias_scale),
            llm_bias_scale=None if self.llm_bias_scale is None else float(self.llm_bias_scale),
            asymptotes=bool(self.asymptotes),
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

    def check_params(self) -> SimRMF:
        """Refuse a bad hyper-parameter now (what ``fit`` checks first), naming it; returns self."""
        self._validate()
        self.model_config()
        if self.inference == "gibbs":
            self.gibbs_config()
        else:
            self.inference_config()
        prior = self.resolved_prior()
        if prior == "learned" and self.inference == "svi":
            if self.guide == "delta":
                raise ConfigError(
                    "prior='learned' needs a guide with spread (guide='normal' or 'lowrank'): under the delta guide "
                    "(MAP) a learned population collapses with its rows; or use inference='gibbs'")
            if self.batch_size is not None:
                raise ConfigError("prior='learned' runs full-batch SVI; leave batch_size at None")
        return self

    def resolved_prior(self) -> str:
        """The prior the fit uses: ``prior``, or by default "fixed" under SVI and "learned" with the sampler;
        ConfigError for ``prior='fixed'`` with the sampler (it always learns its priors)."""
        if self.prior is None:
            return "learned" if self.inference == "gibbs" else "fixed"
        if self.prior == "fixed" and self.inference == "gibbs":
            raise ConfigError("inference='gibbs' always learns its priors (Normal-Wishart populations); "
                              "prior='fixed' needs inference='svi'")
        return self.prior

    # fitting ------------------------------------------------------------------------------------
    def fit(self, llm, item, correct, *, llms=None, items=None, side=None, item_groups=None, llm_groups=None) -> SimRMF:
        """Fit by SVI on the observed ``(llm, item, correct)`` triples and return self.

        Args:
            llm, item: ``(n_pairs,)`` ids; correct: ``(n_pairs,)`` 0/1 scores.
            llms, items: every id the model should hold, those without training pairs included (the
                similarity modes place them from ``side``).
            side: side information (:func:`bayes_simrmf.similarity.build_side_information`), needed by
                "simrmf" and "oracle".
            item_groups, llm_groups: id → group label (e.g. the benchmark; the LLM family).
        """
        self.check_params()
        llm, item, correct = check_pairs(llm, item, correct)
        uses_similarity = self.method in SIMILARITY_METHODS
        kernel = uses_similarity and self.similarity_mode == "kernel"
        learned = self.resolved_prior() == "learned"
        if learned and uses_similarity and not kernel:
            self._check_sampled_potential()
        if uses_similarity and side is None:
            raise ConfigError(
                f"method={self.method!r} needs side information: pass side=build_side_information(...) "
                "(bayes_simrmf.similarity)"
            )
        # Entities holding data come first, so the dense layout's block is the leading block;
        # the potential modes append the entities without data, which only the potentials inform.
        warm_llms, warm_items = np.unique(llm), np.unique(item)
        extra_llms, extra_items = _extra(llms, warm_llms), _extra(items, warm_items)
        model_llms, model_items = warm_llms, warm_items
        if uses_similarity and not kernel:
            model_llms, model_items = np.concatenate([warm_llms, extra_llms]), np.concatenate([warm_items, extra_items])
        group_codes, group_labels = _item_group_codes(item_groups, model_items)
        model_config = self.model_config()
        if group_labels is not None:
            model_config = dataclasses.replace(model_config, n_item_groups=len(group_labels))
        similarity, self.similarity_lambdas_ = None, {}
        if uses_similarity and not kernel:
            similarity = self._similarity_inputs(side, model_llms, model_items, len(correct), len(warm_llms), len(warm_items))
        llm_codes = np.searchsorted(warm_llms, llm).astype(np.int32)
        item_codes = np.searchsorted(warm_items, item).astype(np.int32)
        if self.asymptotes and (self.inference == "gibbs" or learned):
            raise ConfigError(
                "asymptotes=True needs inference='svi' with prior='fixed': the sampler's Polya-Gamma updates and the "
                "learned-prior SVI take the plain logistic likelihood; drop asymptotes or use the SVI guides")
        if self.inference == "gibbs":
            self._fit_gibbs(model_llms, model_items, llm_codes, item_codes, correct, group_codes, group_labels,
                            item_groups, llm_groups, similarity)
        elif learned:
            self._fit_learned(model_llms, model_items, llm_codes, item_codes, correct, group_codes, group_labels,
                              item_groups, llm_groups)
        else:
            self._fit_svi(model_llms, model_items, llm_codes, item_codes, correct, model_config, similarity,
                          group_codes, group_labels, item_groups, llm_groups, len(warm_llms), len(warm_items))
        if kernel:
            # Entities without data: the Gaussian-process conditional given the fitted ones (see fold_in).
            for which, extra in ((ITEM, extra_items), (LLM, extra_llms)):
                if len(extra) and side.rows_for(which.kind, self.fitted_.ids(which)) is not None:
                    self.fold_in(which.kind, extra, side=side)
        return self

    def _fit_svi(self, model_llms, model_items, llm_codes, item_codes, correct, model_config, similarity, group_codes,
                 group_labels, item_groups, llm_groups, n_warm_llms: int, n_warm_items: int) -> None:
        fixed = {}
        if model_config.asymptotes and self.guide == "delta" and model_config.dim and model_config.biases:
            # MAP with factors sends learned floors to 0 (the factors fit each wrong answer instead; a planted floor
            # of 0.25 came out at 0.006): take each group's floor and slip from a MAP fit without factors, then hold them.
            first = run_svi(
                len(model_llms), len(model_items), llm_codes, item_codes, correct,
                dataclasses.replace(model_config, dim=0), self.inference_config(), item_group=group_codes,
                seed=int(self.seed), description=f"fit {self.method} (asymptotes, no factors)",
            ).point
            fixed = {ITEM_GROUP_FLOOR: np.asarray(first[ITEM_GROUP_FLOOR], np.float32),
                     ITEM_GROUP_SLIP: np.asarray(first[ITEM_GROUP_SLIP], np.float32)}
            model_config = dataclasses.replace(model_config, fixed_floor=tuple(map(float, fixed[ITEM_GROUP_FLOOR])),
                                               fixed_slip=tuple(map(float, fixed[ITEM_GROUP_SLIP])))
        result = run_svi(
            len(model_llms), len(model_items), llm_codes, item_codes, correct, model_config, self.inference_config(),
            similarity=similarity, item_group=group_codes, seed=int(self.seed),
            description=f"fit {self.method} ({self.guide})",
        )
        self.svi_result_: SVIResult | None = result
        self.fit_seconds_, self.layout_ = result.seconds, result.layout
        params = {name: np.asarray(value, dtype=np.float32) for name, value in result.point.items()} | fixed
        posterior = GaussianPosterior.from_svi(self.guide, result.guide, result.guide_params, params)
        if model_config.asymptotes:
            # Per item row, at the point estimate (a group's floor rests on thousands of answers; its posterior
            # spread is not carried into predictions).
            codes = np.zeros(len(model_items), int) if group_codes is None else np.asarray(group_codes)
            params |= item_asymptotes(params, codes)
        self.fitted_ = FittedState(
            params=params, llms=model_llms, items=model_items, n_warm_llms=n_warm_llms,
            n_warm_items=n_warm_items, n_fitted_llms=len(model_llms), n_fitted_items=len(model_items),
            dim=int(self.dim), posterior=posterior,
            losses=result.losses, converged=result.converged, n_pairs=int(len(correct)), item_group_labels=group_labels,
            item_groups=GroupMap.from_mapping(item_groups, "item_groups"),
            llm_groups=GroupMap.from_mapping(llm_groups, "llm_groups"),
        )

    def _check_sampled_potential(self) -> None:
        """The sampler takes the paper's Gram potential (joint, on the factors, scale fixed at 1): raise ConfigError
        for the other potential forms, and for any potential with the learned-prior SVI."""
        what = "inference='gibbs'" if self.inference == "gibbs" else "prior='learned'"
        if self.inference == "gibbs" and self.similarity_mode == "joint" and self.similarity_on == "factors" \
                and not self.profile_scale:
            return
        form = (f"similarity_mode={self.similarity_mode!r}, similarity_on={self.similarity_on!r}, "
                f"profile_scale={bool(self.profile_scale)}")
        raise ConfigError(
            f"{what} takes no Gram potential of the form {form}: the sampler takes the paper's form "
            "(similarity_mode='joint', similarity_on='factors', profile_scale=False, inference='gibbs'); otherwise "
            f"use similarity_mode='kernel' with {what}, or inference='svi' with prior='fixed'"
        )

    def _fit_gibbs(self, model_llms, model_items, llm_codes, item_codes, correct, group_codes, group_labels,
                   item_groups, llm_groups, similarity: SimilarityInputs | None = None) -> None:
        """Blocked Gibbs sampling (:mod:`bayes_simrmf.inference.gibbs`): the point estimate is the posterior mean
        of each site (factors aligned across draws), the posterior the kept draws. ``similarity``: the paper's Gram
        potentials (joint mode), sampled with the rows (entities without data are rows the potential places)."""
        potentials = None
        if similarity is not None:
            potentials = {
                "llm": None if similarity.llms_factor is None else Potential(np.asarray(similarity.llms_factor),
                                                                             float(similarity.llms_weight)),
                "item": None if similarity.items_factor is None else Potential(np.asarray(similarity.items_factor),
                                                                               float(similarity.items_weight)),
            }
        start = None
        if self.gibbs_init == "map":
            start = self._map_rows(len(model_llms), len(model_items), llm_codes, item_codes, correct, group_codes,
                                   group_labels)
        result = run_gibbs(
            len(model_llms), len(model_items), llm_codes, item_codes, correct, dim=int(self.dim),
            biases=bool(self.biases), config=self.gibbs_config(), item_group=group_codes, seed=int(self.seed),
            description=f"fit {self.method} (gibbs)", initial_rows=start, potentials=potentials,
        )
        self.svi_result_, self.gibbs_result_ = None, result
        self.fit_seconds_, self.layout_ = result.seconds, "gibbs"
        posterior = SamplePosterior(result.draws)
        self.sampler_diagnostics_ = posterior.prediction_diagnostics(llm_codes, item_codes, seed=int(self.seed))
        params = {name: value.astype(np.float32) for name, value in posterior.loc.items() if name in MODEL_SITES}
        self.fitted_ = FittedState(
            params=params, llms=model_llms, items=model_items, n_warm_llms=len(model_llms),
            n_warm_items=len(model_items), n_fitted_llms=len(model_llms), n_fitted_items=len(model_items),
            dim=int(self.dim), posterior=posterior, losses=np.zeros(0, np.float32),
            converged=self.sampler_diagnostics_["max_rhat"] <= RHAT_MAX,
            n_pairs=int(len(correct)), item_group_labels=group_labels,
            item_groups=GroupMap.from_mapping(item_groups, "item_groups"),
            llm_groups=GroupMap.from_mapping(llm_groups, "llm_groups"),
        )

    def _fit_learned(self, model_llms, model_items, llm_codes, item_codes, correct, group_codes, group_labels,
                     item_groups, llm_groups) -> None:
        """SVI of the model with learned populations (:mod:`bayes_simrmf.inference.learned`), started at a MAP fit;
        the posterior is kept as draws from the fitted guide, the point estimate is their mean."""
        start = self._map_rows(len(model_llms), len(model_items), llm_codes, item_codes, correct, group_codes,
                               group_labels)
        result = run_learned_svi(
            len(model_llms), len(model_items), llm_codes, item_codes, correct, dim=int(self.dim),
            biases=bool(self.biases), config=self.inference_config(), initial_rows=start, item_group=group_codes,
            seed=int(self.seed), description=f"fit {self.method} ({self.guide}, learned priors)",
        )
        self.svi_result_, self.gibbs_result_, self.sampler_diagnostics_ = None, None, None
        self.fit_seconds_, self.layout_ = result.seconds, "pairs"
        posterior = SamplePosterior(result.draws, guide=f"{self.guide}+learned")
        params = {name: value.astype(np.float32) for name, value in posterior.loc.items() if name in MODEL_SITES}
        self.fitted_ = FittedState(
            params=params, llms=model_llms, items=model_items, n_warm_llms=len(model_llms),
            n_warm_items=len(model_items), n_fitted_llms=len(model_llms), n_fitted_items=len(model_items),
            dim=int(self.dim), posterior=posterior, losses=result.losses, converged=result.converged,
            n_pairs=int(len(correct)), item_group_labels=group_labels,
            item_groups=GroupMap.from_mapping(item_groups, "item_groups"),
            llm_groups=GroupMap.from_mapping(llm_groups, "llm_groups"),
        )

    def _map_rows(self, n_llms, n_items, llm_codes, item_codes, correct, group_codes, group_labels):
        """``(LLM rows, item rows)`` of a MAP fit (delta guide, at most 1,000 steps) in the sampler's layout, where the
        sampler and the learned-prior SVI start: the intercept and each question's group mean move into the
        question's bias."""
        model_config = self.model_config()
        if group_labels is not None:
            model_config = dataclasses.replace(model_config, n_item_groups=len(group_labels))
        inference = dataclasses.replace(self.inference_config(), guide="delta", max_steps=min(int(self.max_steps), 1000),
                                        batch_size=None)
        point = run_svi(n_llms, n_items, llm_codes, item_codes, correct, model_config, inference, item_group=group_codes,
                        seed=int(self.seed), description="MAP start").point
        sides = []
        for factors, bias, n in ((LLM_FACTORS, LLM_BIAS, n_llms), (ITEM_FACTORS, ITEM_BIAS, n_items)):
            parts = [np.asarray(point.get(factors, np.zeros((n, 0))), np.float32)]
            if self.biases:
                parts.append(np.asarray(point[bias], np.float32)[:, None])
            sides.append(np.concatenate(parts, axis=1))
        if self.biases:
            sides[1][:, -1] += float(point.get(INTERCEPT, 0.0))
        return sides[0], sides[1]

    def gibbs_config(self) -> GibbsConfig:
        return GibbsConfig(chains=int(self.chains), warmup=int(self.warmup), samples=int(self.samples),
                           thin=int(self.thin), scale_move=bool(self.gibbs_scale_move),
                           row_move=bool(self.gibbs_row_move), progress=bool(self.progress))

    def _similarity_inputs(self, side, llms, items, n_pairs: int, n_warm_llms: int, n_warm_items: int) -> SimilarityInputs:
        """The Gram potentials' inputs; λ = κ · n_pairs / n² per side (recorded in ``similarity_lambdas_``)."""
        item_factor = side.rows_for("item", items)
        llm_factor = side.rows_for("llm", llms)
        lambda_items = float(self.similarity_weight_items) * n_pairs / len(items) ** 2
        lambda_llms = float(self.similarity_weight_llms) * n_pairs / len(llms) ** 2
        self.similarity_lambdas_ = {"lambda_items": lambda_items, "lambda_llms": lambda_llms}
        # device_put, not jnp.asarray: on a CPU it shares an aligned factor's memory (see aligned_empty).
        return SimilarityInputs.build(
            items_factor=None if item_factor is None or lambda_items == 0 else _on_device(item_factor),
            llms_factor=None if llm_factor is None or lambda_llms == 0 else _on_device(llm_factor),
            items_weight=lambda_items,
            llms_weight=lambda_llms,
            augmented=self.similarity_on == "augmented",
            profile_scale=bool(self.profile_scale),
            cold_only=self.similarity_mode == "cold",
            n_warm_items=n_warm_items,
            n_warm_llms=n_warm_llms,
        )

    # inductive fold-in --------------------------------------------------------------------------
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
          :class:`~bayes_simrmf.similarity.SideInformation` holding rows for the fitted entities and the new ones: metadata or question text), it is
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
        state = self._state()
        which = side_of(kind)
        if prior not in ("population", "model"):
            raise ConfigError(f"prior must be 'population' or 'model', got {prior!r}")
        if not (np.isfinite(temperature) and temperature > 0):
            raise ConfigError(f"temperature must be a finite number > 0, got {temperature!r}")
        if side is not None and prior != "population":
            raise ConfigError("side information sets a population prior; pass prior='population' with side")
        ids = as_id_array(ids, "ids")
        if len(ids) == 0 or len(np.unique(ids)) != len(ids):
            raise ConfigError(f"ids must be non-empty and unique; got {len(ids)} ids, {len(np.unique(ids))} distinct")
        clash = np.intersect1d(ids, state.ids(which))
        if len(clash):
            raise ConfigError(f"{len(clash)} {kind} id(s) are already in the model, e.g. {clash[:5].tolist()}")
        if ridge is None:
            ridge = self.fold_in_ridge_items if which == ITEM else self.fold_in_ridge_llms
        if isinstance(state.posterior, SamplePosterior):
            self.fitted_, report = fold_in_draws(
                state, which, ids, answers=answers, side_info=side, ridge=float(ridge), biases=bool(self.biases),
                temperature=temperature, max_iter=max_iter, seed=int(self.seed))
            return report
        self.fitted_, report = fold_in_state(
            state, which, ids, answers=answers, side_info=side, prior=prior, ridge=float(ridge),
            model_variances=self._model_prior_variances(which), biases=bool(self.biases),
            temperature=temperature, max_iter=max_iter,
        )
        return report

    def _model_prior_variances(self, which: Side) -> np.ndarray:
        """The model's prior variance of each coordinate of an entity's ``[factors, bias]``."""
        variances = np.full(self.dim + 1, self.model_config().factor_prior_sd ** 2)
        scale = self.llm_bias_scale if which == LLM and self.llm_bias_scale is not None else self.bias_scale
        variances[-1] = float(scale) ** 2 if scale is not None else 1.0
        return variances

    # persistence --------------------------------------------------------------------------------
    def get_state(self) -> dict[str, np.ndarray]:
        """Fitted state as named arrays (for saving)."""
        return self._state().to_arrays()

    def set_state(self, state: dict[str, np.ndarray]) -> SimRMF:
        self.fitted_ = FittedState.from_arrays(state, dim=int(self.dim))
        self.svi_result_ = None
        return self


def _on_device(factor: np.ndarray):
    """A similarity factor as a float32 JAX array on the default device (without a copy where JAX can share it)."""
    return jax.device_put(np.asarray(factor, dtype=np.float32))


def _extra(ids, warm: np.ndarray) -> np.ndarray:
    """The ids of ``ids`` (or none) that are not among ``warm``."""
    return np.setdiff1d(np.asarray(ids if ids is not None else [], dtype=str), warm)


def _item_group_codes(item_groups, items: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(code of each item's group, group labels)``, or ``(None, None)`` without groups; refuses items
    without a group."""
    if item_groups is None:
        return None, None
    labels = pd.Series(item_groups).astype(str).reindex(items)
    missing = labels.isna().to_numpy()
    if missing.any():
        raise ConfigError(
            f"item_groups has no group for {int(missing.sum())} item(s) in the model, e.g. {items[missing][:5].tolist()}"
        )
    codes, uniques = pd.factorize(labels.to_numpy(), sort=True)
    return codes, np.asarray(uniques, dtype=str)


def make_estimator(method: str, **options):
    """Build the estimator for ``method`` (one of :data:`METHODS`) from keyword options."""
    if method == "meanscore":
        return MeanScore()
    if method == "counting":
        return GroupAccuracy(**{key: value for key, value in options.items() if key not in ("seed", "progress")})
    if method in ("mf", *SIMILARITY_METHODS):
        return SimRMF(method=method, **options)
    raise ConfigError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
