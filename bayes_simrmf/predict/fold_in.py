"""Fold LLMs or items the fit never saw into a fitted state, without refitting.

Each new entity's latent row ``[factors, bias]`` gets a Gaussian prior (:func:`fold_in_prior`:
the fitted population, its group, or the Gaussian-process conditional on a similarity) and is
updated by its observed answers against the fixed fitted partners (Bayesian logistic regression,
Laplace approximation at the mode: :func:`laplace_logistic`). The result is a new
:class:`~bayes_simrmf.predict.state.FittedState` holding the entity's posterior.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_simrmf.errors import ConfigError, UnknownEntityError
from bayes_simrmf.model import INTERCEPT, ITEM_CEILING, ITEM_FLOOR
from bayes_simrmf.model.predictor import asymptotic_terms, effective_logits, has_asymptotes, item_asymptotes, sigmoid
from bayes_simrmf.pairs import as_id_array, check_pairs
from bayes_simrmf.predict.gaussian_process import (
    gp_conditional, gp_conditional_draws, group_means, normal_blocks, psd_cholesky,
)
from bayes_simrmf.predict.sides import ITEM, Side
from bayes_simrmf.predict.state import FittedState


def laplace_logistic(
    prior_mean: np.ndarray, prior_cov: np.ndarray, design: np.ndarray, offsets: np.ndarray, y: np.ndarray,
    max_iter: int = 100, temperature: float = 1.0, asymptotes: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Laplace posterior of ``z`` in ``y ~ Bernoulli(σ(design z + offsets))``, ``z ~ N(prior_mean, prior_cov)``.

    Newton's method with step halving on the log posterior; returns the mode, the covariance and
    whether the step fell below 1e-8. The covariance is the inverse of ``H_prior + H_answers / τ``
    at the mode: ``temperature`` τ > 1 discounts the curvature the answers contribute (as a power
    posterior with likelihood^(1/τ) would) while keeping the mode, so the estimate is unchanged,
    a prior-only posterior is unchanged, and the spread stops shrinking as fast as a model held
    fixed and misspecified would claim.

    ``asymptotes``: ``(floor, ceiling)`` of each answer (a model with ``asymptotes``): the likelihood is then
    ``floor + (ceiling − floor) σ(ℓ)`` and the curvature its Fisher information (Fisher scoring; with floor 0
    and ceiling 1 it is the logistic Newton step).
    """
    precision = np.linalg.inv(prior_cov)
    if asymptotes is None:
        def log_odds(logits):
            return logits

        def terms(logits):  # score and curvature per answer, per unit logit
            prob = sigmoid(logits)
            return y - prob, prob * (1 - prob)
    else:
        floor, ceiling = asymptotes

        def log_odds(logits):
            return effective_logits(logits, floor, ceiling)

        def terms(logits):
            prob, slope, information = asymptotic_terms(logits, floor, ceiling)
            return (y - prob) * slope / np.maximum(prob * (1.0 - prob), 1e-300), information

    def objective(value):
        logits = log_odds(design @ value + offsets)
        return np.sum(y * logits - np.logaddexp(0.0, logits)) - 0.5 * (value - prior_mean) @ precision @ (value - prior_mean)

    z = prior_mean.copy()
    current = objective(z)
    converged = len(y) == 0
    for _ in range(max_iter if len(y) else 0):
        score, curvature = terms(design @ z + offsets)
        gradient = design.T @ score - precision @ (z - prior_mean)
        step = np.linalg.solve(design.T @ (design * curvature[:, None]) + precision, gradient)
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
    curvature = terms(design @ z + offsets)[1]
    cov = np.linalg.inv(design.T @ (design * curvature[:, None]) / temperature + precision)
    return z, (cov + cov.T) / 2, converged


def answer_asymptotes(state: FittedState, side: Side, ids: np.ndarray, own_codes: np.ndarray,
                      partner_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(floor, ceiling)`` of each answer of new entities ``ids`` of ``side`` (the partner question's, or the new
    question's by its group), or None for a model without asymptotes."""
    if not has_asymptotes(state.params):
        return None
    if side == ITEM:
        own = item_asymptotes(state.params, state.asymptote_group_codes(ids))
        return own[ITEM_FLOOR][own_codes].astype(np.float64), own[ITEM_CEILING][own_codes].astype(np.float64)
    return (state.params[ITEM_FLOOR][partner_codes].astype(np.float64),
            state.params[ITEM_CEILING][partner_codes].astype(np.float64))


def fold_in_state(
    state: FittedState,
    side: Side,
    ids: np.ndarray,
    *,
    answers: pd.DataFrame | None,
    side_info,
    prior: str,
    ridge: float,
    model_variances: np.ndarray,
    biases: bool,
    temperature: float,
    max_iter: int,
) -> tuple[FittedState, pd.DataFrame]:
    """The state with the entities ``ids`` of ``side`` folded in, and one report row per entity.

    Args:
        answers: observed answers (columns ``llm``, ``item``, ``correct``) or None.
        side_info: side information for a similarity prior, or None.
        prior: "population" or "model"; ``model_variances`` is the model's own prior variance of
            each coordinate of ``[factors, bias]`` (used by "model").
        ridge: the GP nugget of a similarity prior.
        biases: whether the model has biases (without, the bias coordinate stays at its prior).
        temperature, max_iter: see :func:`laplace_logistic`.
    """
    prior_mean, prior_cov = fold_in_prior(state, side, ids, side_info, prior, ridge, model_variances)
    own_codes, partner_codes, correct = answer_rows(state, side, ids, answers)
    design, offsets = partner_design(state, side.partner, biases)
    average_partner = design[: state.n_fitted(side.partner)].mean(axis=0)
    p = state.dim + 1
    means, covs = np.empty((len(ids), p)), np.empty((len(ids), p, p))
    report = []
    bounds = answer_asymptotes(state, side, ids, own_codes, partner_codes)
    for index in range(len(ids)):
        mine = own_codes == index
        rows = partner_codes[mine]
        y = correct[mine].astype(np.float64)
        means[index], covs[index], converged = laplace_logistic(
            prior_mean[index], prior_cov[index], design[rows], offsets[rows], y, max_iter, float(temperature),
            None if bounds is None else (bounds[0][mine], bounds[1][mine]),
        )
        report.append({
            side.kind: ids[index],
            "n_answers": len(rows),
            "prior_sd_logit": float(np.sqrt(average_partner @ prior_cov[index] @ average_partner)),
            "posterior_sd_logit": float(np.sqrt(average_partner @ covs[index] @ average_partner)),
            "converged": converged,
        })
    return state.appended(side, ids, means, covs), pd.DataFrame(report).set_index(side.kind)


def fold_in_prior(
    state: FittedState, side: Side, ids: np.ndarray, side_info, prior: str, ridge: float, model_variances: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian prior ``(mean (m, p), cov (m, p, p))`` of new entities' ``[factors, bias]``."""
    p = state.dim + 1
    if prior == "model":
        return np.zeros((len(ids), p)), np.broadcast_to(np.diag(model_variances), (len(ids), p, p)).copy()
    n_warm = state.n_warm(side)
    latent = state.latent(side)[:n_warm]
    known_ids = state.ids(side)[:n_warm]
    groups = state.groups(side)
    known_groups = new_groups = None
    if groups:
        new_groups, known_groups = groups.codes_against(ids, known_ids)
    # The spread of the fitted entities' point estimates only: adding their mean-field posterior
    # variances (law of total variance) over-disperses the population, because those variances are
    # mostly the factors' rotation and scale freedom, not uncertainty about logits; measured on
    # openllm-v2-mmlupro-math it pushed new questions' predictions towards 1/2 (B bias −0.043).
    if side_info is None:
        # The group's mean (if known) and the spread of the fitted rows around their group means.
        known_mean, new_mean = group_means(latent, known_groups, new_groups, len(ids))
        centred = latent - known_mean
        cov = (centred.T @ centred / len(centred)).reshape(p, p)
        return new_mean, np.broadcast_to(cov, (len(ids), p, p)).copy()
    known_factor = side_info.rows_for(side.kind, known_ids)
    new_factor = side_info.rows_for(side.kind, ids)
    if known_factor is None or new_factor is None:
        raise ConfigError(f"the side information has no {side.kind} similarity")
    cond_mean, factor, row_cov = gp_conditional(latent, known_factor, new_factor, ridge, known_groups, new_groups)
    return cond_mean, factor[:, None, None] * row_cov[None]


def answer_rows(
    state: FittedState, side: Side, ids: np.ndarray, answers: pd.DataFrame | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(own_codes, partner_codes, correct)`` of each answer: the row of its new entity in ``ids``,
    of its partner among the fitted partners, and its 0/1 score; refuses answers naming other
    new entities, unfitted partners, or the same pair twice."""
    partner = side.partner
    if answers is None:
        answers = pd.DataFrame({"llm": [], "item": [], "correct": []})
    missing = {"llm", "item", "correct"} - set(answers.columns)
    if missing:
        raise ConfigError(f"answers must have columns llm, item, correct; missing {sorted(missing)}")
    own = as_id_array(answers[side.kind].to_numpy(), f"answers.{side.kind}")
    partners = as_id_array(answers[partner.kind].to_numpy(), f"answers.{partner.kind}")
    correct = check_pairs(own, partners, answers["correct"].to_numpy())[2] if len(answers) else np.zeros(0, np.int8)
    strangers = np.setdiff1d(own, ids)
    if len(strangers):
        raise ConfigError(f"answers name {len(strangers)} {side.kind} id(s) not in ids, e.g. {strangers[:5].tolist()}")
    partner_codes = pd.Index(state.ids(partner)[: state.n_fitted(partner)]).get_indexer(partners)
    if (partner_codes < 0).any():
        unknown = pd.unique(partners[partner_codes < 0])[:5].tolist()
        raise UnknownEntityError(
            f"answers name {int((partner_codes < 0).sum())} pair(s) with a {partner.kind} the model was not fitted "
            f"on, e.g. {unknown}; fold in only against fitted {partner.kind}s"
        )
    duplicated = pd.Series(own).str.cat(pd.Series(partners), sep="\x00").duplicated()
    if duplicated.any():
        rows = np.flatnonzero(duplicated.to_numpy())[:5].tolist()
        raise ConfigError(
            f"answers repeat {int(duplicated.sum())} ({side.kind}, {partner.kind}) pair(s), e.g. rows {rows}"
        )
    return pd.Index(ids).get_indexer(own), partner_codes, correct


def partner_design(state: FittedState, partner: Side, biases: bool) -> tuple[np.ndarray, np.ndarray]:
    """Design rows ``[partner factors, 1]`` and offsets ``intercept + partner bias`` of every partner:
    a new entity's logit against partner ``j`` is ``design[j] · [factors, bias] + offsets[j]``."""
    design = state.latent(partner)
    design[:, -1] = 1.0
    offsets = float(state.params.get(INTERCEPT, 0.0)) + state.params.get(
        partner.bias, np.zeros(design.shape[0], np.float32)).astype(np.float64)
    if not biases:
        design[:, -1] = 0.0  # no bias term: the bias coordinate stays at its prior
    return design, offsets


def fold_in_draws(
    state: FittedState,
    side: Side,
    ids: np.ndarray,
    *,
    answers: pd.DataFrame | None,
    side_info,
    ridge: float,
    biases: bool,
    temperature: float,
    max_iter: int,
    seed: int,
) -> tuple[FittedState, pd.DataFrame]:
    """:func:`fold_in_state` for a posterior held as draws (the Gibbs sampler's): the new entities are folded
    into every kept draw and one value of their rows is drawn there, so their uncertainty includes that of the
    fitted entities and of the population.

    Per draw the prior of a new row is the learned population of that draw (its Normal–Wishart mean — the
    question's benchmark mean where the group is known, a random benchmark weighted by size where not — and
    covariance), or with ``side_info`` the Gaussian-process conditional on that draw's fitted rows; answers
    update it by the Laplace approximation, as in :func:`fold_in_state`.
    """
    posterior = state.posterior
    n_draws, width = posterior.n_draws, state.dim + 1
    sampled = posterior.sample(n_draws, seed, copy=False)
    n_warm = state.n_warm(side)

    def known_latent(draws: slice) -> np.ndarray:
        """The fitted rows ``[factors, bias]`` of some draws (built a block at a time, not for every draw)."""
        size = len(range(n_draws)[draws])
        factors = sampled[side.factors][draws, :n_warm] if side.factors in sampled else np.zeros((size, n_warm, 0))
        bias = sampled[side.bias][draws, :n_warm] if side.bias in sampled else np.zeros((size, n_warm))
        return np.concatenate([factors, bias[..., None]], axis=2)

    groups = state.groups(side)
    known_groups = new_groups = None
    if groups:
        new_groups, known_groups = groups.codes_against(ids, state.ids(side)[:n_warm])
    rng = np.random.default_rng([int(seed), 19, len(state.ids(side))])
    if side_info is not None:
        known_factor, new_factor = side_info.rows_for(side.kind, state.ids(side)[:n_warm]), side_info.rows_for(side.kind, ids)
        if known_factor is None or new_factor is None:
            raise ConfigError(f"the side information has no {side.kind} similarity")
        prior_mean, scale, base_cov = gp_conditional_draws(known_latent, known_factor, new_factor, ridge, known_groups,
                                                           new_groups, n_draws=n_draws)
    else:
        (prior_mean, base_cov), scale = _learned_population(state, side, sampled, ids, rng), np.ones(len(ids))
    own_codes, partner_codes, correct = answer_rows(state, side, ids, answers)
    # Entities without answers, every draw at once: row = mean + √scale · chol(Σ_draw) ε.
    chol = psd_cholesky(base_cov)
    answered = np.unique(own_codes)
    # In blocks of draws, drawing the same normal stream as one call would: the float64 temporaries stay one block
    # in size and the rows are kept in float32 (as the posterior keeps them), not draws x entities x width float64.
    latents = np.empty((n_draws, len(ids), width), dtype=np.float32)
    answered_noise = np.empty((n_draws, len(answered), width))
    root_scale = np.sqrt(scale)[None, :, None]
    for block, noise in normal_blocks(rng, n_draws, (len(ids), width)):
        latents[block] = prior_mean[block] + root_scale * np.einsum("spq,smq->smp", chol[block], noise)
        answered_noise[block] = noise[:, answered]
    partner = side.partner
    n_partners = state.n_fitted(partner)
    average_partner = np.concatenate(
        [sampled[partner.factors][:, :n_partners].mean(axis=1) if partner.factors in sampled
         else np.zeros((n_draws, 0)), np.full((n_draws, 1), 1.0 if biases else 0.0)], axis=1)
    prior_sd = np.sqrt(scale[None, :] * np.einsum("sp,spq,sq->s", average_partner, base_cov, average_partner)[:, None])
    posterior_sd = prior_sd.copy()
    converged_all = np.ones(len(ids), bool)
    for draw in range(n_draws if len(answered) else 0):
        design, offsets = partner_design(state.at({name: sampled[name][draw] for name in state.params}), partner, biases)
        for position, index in enumerate(answered):
            rows = partner_codes[own_codes == index]
            y = correct[own_codes == index].astype(np.float64)
            mean, cov, converged = laplace_logistic(prior_mean[draw, index], scale[index] * base_cov[draw],
                                                    design[rows], offsets[rows], y, max_iter, float(temperature))
            converged_all[index] &= converged
            posterior_sd[draw, index] = np.sqrt(average_partner[draw] @ cov @ average_partner[draw])
            latents[draw, index] = mean + psd_cholesky(cov) @ answered_noise[draw, position]
    prior_sd, posterior_sd = prior_sd.mean(axis=0), posterior_sd.mean(axis=0)
    report = pd.DataFrame({side.kind: ids, "n_answers": np.bincount(own_codes, minlength=len(ids)),
                           "prior_sd_logit": prior_sd, "posterior_sd_logit": posterior_sd,
                           "converged": converged_all}).set_index(side.kind)
    return state.appended(side, ids, latents.mean(axis=0, dtype=np.float64), None, draws=latents), report


def _learned_population(state: FittedState, side: Side, sampled: dict, ids: np.ndarray, rng: np.random.Generator
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Per draw, the population a new row of ``side`` comes from: ``(mean (n_draws, m, p), cov (n_draws, p, p))``,
    the sampler's Normal–Wishart population. A question of a benchmark the model has a mean for starts at that
    mean; one of no known benchmark at a benchmark drawn per draw in proportion to the fitted questions."""
    from bayes_simrmf.inference.gibbs import (
        ITEM_POPULATION_COV, ITEM_POPULATION_LOC, LLM_POPULATION_COV, LLM_POPULATION_LOC,
    )

    if side.kind == "llm":
        loc, cov = sampled[LLM_POPULATION_LOC], sampled[LLM_POPULATION_COV]
        mean = np.broadcast_to(loc[:, None, :], (len(loc), len(ids), loc.shape[-1]))
    else:
        loc, cov = sampled[ITEM_POPULATION_LOC], sampled[ITEM_POPULATION_COV]
        n_draws, n_groups = loc.shape[:2]
        codes, known_codes = np.full(len(ids), -1), np.zeros(state.n_warm(side), dtype=np.int64)
        if state.item_group_labels is not None and state.item_groups:
            labels = pd.Index(state.item_group_labels)
            codes = labels.get_indexer(pd.Series(state.item_groups.labels_of(ids)).astype(object))
            known_codes = np.clip(labels.get_indexer(pd.Series(
                state.item_groups.labels_of(state.ids(side)[: state.n_warm(side)])).astype(object)), 0, None)
        sizes = np.bincount(known_codes, minlength=n_groups).astype(float)
        random_group = rng.choice(n_groups, size=(n_draws, len(ids)), p=sizes / sizes.sum())
        chosen = np.where(codes[None, :] >= 0, codes[None, :], random_group)
        mean = np.take_along_axis(loc, chosen[..., None], axis=1)
    mean, cov = np.asarray(mean, np.float64), np.asarray(cov, np.float64)
    if mean.shape[-1] == state.dim:  # a model without biases: the bias coordinate is 0
        mean = np.concatenate([mean, np.zeros((*mean.shape[:2], 1))], axis=-1)
        cov = np.pad(cov, ((0, 0), (0, 1), (0, 1)))
    return mean, cov
