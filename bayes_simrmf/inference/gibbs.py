"""Blocked Gibbs sampling of the SimRMF likelihood with learned priors (:func:`run_gibbs`).

The model. Each LLM ``l`` has a row ``u_l = [m_l, b_l]`` (factors, then its bias when ``biases``) and each
question ``k`` a row ``v_k = [x_k, b_k]``; the logit of a pair is ``m_l · x_k + b_l + b_k`` and the answer is
Bernoulli on it, as in :func:`bayes_simrmf.model.simrmf_model`. The priors are learned, not fixed:

    u_l ~ N(μ_L, Λ_L⁻¹),          (μ_L, Λ_L) ~ Normal–Wishart(0, β₀, I, ν₀)
    v_k ~ N(μ_{g(k)}, Λ_I⁻¹),     (μ_g, Λ_I) ~ Normal–Wishart(0, β₀, I, ν₀) with one mean per group g

(``g(k)`` the question's benchmark when item groups are given, else one group), with β₀ = 2 and ν₀ the row
length, the defaults of BPMF (Salakhutdinov & Mnih 2008) that SMURFF also uses. The population means carry
the overall intercept (the model's ``intercept`` site is 0 in every draw) and each benchmark's typical
difficulty; the full covariances carry how factors and biases co-vary across LLMs and questions, so an
unseen entity is a draw from a population fitted to the data rather than a fixed ``N(0, 1/√(2λ))``.

One sweep, every block from its full conditional:

1. ``ω_p ~ PG(1, ψ_p)`` for every observed pair ``p`` (ψ its logit; :mod:`.polya_gamma`). Given ω the
   likelihood is ``exp(κ_p ψ_p − ω_p ψ_p² / 2)``, κ = z − ½, Gaussian in each row.
2. Every LLM row at once: precision ``Λ_L + Σ_p ω_p a_p a_pᵀ`` with ``a_p = [x_k, 1]``, linear term
   ``Λ_L μ_L + Σ_p a_p (κ_p − ω_p b_k)``; drawn through its Cholesky factor.
3. Every question row the same way against the new LLM rows, with its group's mean.
4. ``(μ_L, Λ_L)`` and ``({μ_g}, Λ_I)`` from their Normal–Wishart conditionals.

The paper's Gram potential (``potentials``): ``exp(−λ ‖F Fᵀ − W Wᵀ‖²_F)`` on one side's factor columns ``F``
(``W Wᵀ = √S``, :mod:`bayes_simrmf.similarity`) couples that side's rows, so its rows are drawn one after another
(``lax.fori_loop``) instead of all at once. Row ``i``'s share of the potential is
``2 Σ_{j≠i} (f_i·f_j − c_ij)² + (f_i·f_i − c_ii)²`` (``c = W Wᵀ``): the first part is quadratic in ``f_i`` and
joins the Gaussian conditional (precision ``4λ Σ_{j≠i} f_j f_jᵀ``, linear term ``4λ Σ_{j≠i} c_ij f_j``); the
second is quartic, so the Gaussian draw is a proposal, accepted with probability
``min(1, exp(−λ[(f'·f' − c_ii)² − (f·f − c_ii)²]))`` (an independence Metropolis step within Gibbs, exact for the
row's conditional).

Chains run side by side (``jax.vmap``), sweeps inside ``jax.lax.scan`` / ``fori_loop`` in chunks (one
Python round trip per chunk, for the progress bar and Ctrl-C); the same code runs on CPU and GPU. After
``warmup`` sweeps every ``thin``-th of ``samples`` sweeps is kept.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular
from tqdm.auto import tqdm

from bayes_simrmf.errors import ConfigError, FitError
from bayes_simrmf.inference.polya_gamma import sample_pg1
from bayes_simrmf.model.sites import INTERCEPT, ITEM_BIAS, ITEM_FACTORS, LLM_BIAS, LLM_FACTORS

#: Sites of the population hyper-parameters kept with the draws: means (``(p,)`` for the LLMs, ``(n_groups,
#: p)`` for the questions) and the ``(p, p)`` covariance of a row ``[factors, bias]`` around its mean.
LLM_POPULATION_LOC = "llm_population_loc"
LLM_POPULATION_COV = "llm_population_cov"
ITEM_POPULATION_LOC = "item_population_loc"
ITEM_POPULATION_COV = "item_population_cov"
POPULATION_SITES = (LLM_POPULATION_LOC, LLM_POPULATION_COV, ITEM_POPULATION_LOC, ITEM_POPULATION_COV)
#: The per-row sums go through a dense ``(n_llms, n_items)`` block of weights when it has at most this many
#: cells and at most this many cells per observed pair; else through scatter-adds over the pairs.
DENSE_MAX_CELLS = 8_000_000
DENSE_MAX_RATIO = 20


@dataclass(frozen=True)
class GibbsConfig:
    """Settings of :func:`run_gibbs`.

    Attributes:
        chains: independent chains, run side by side.
        warmup: sweeps per chain discarded before keeping any (rounded up to whole chunks).
        samples: sweeps per chain after warm-up; every ``thin``-th is kept (``samples // thin`` draws).
        thin: keep one sweep in ``thin``.
        chunk: sweeps per call of the compiled program (rounded down to a multiple of ``thin``; one progress-bar
            update and Ctrl-C check per chunk).
        beta0, nu0: the Normal–Wishart's mean precision and degrees of freedom (``nu0`` None: the row length).
        scale_move: after the rows, one Metropolis step per latent dimension on the scale ``c`` of that factor
            column (LLM column × c, question column ÷ c: the likelihood does not change), on the rows' marginal
            with the Normal–Wishart populations integrated out; the populations are then drawn given the moved
            rows. The chains otherwise drift slowly along this scale (``experiments/results/gibbs_chains.md``).
        scale_step: sd of the proposal of ``log c``.
        row_move: after the rows (and the bias steps), one random-walk Metropolis step on every whole row of each
            side, proposed from the row's population covariance times ``row_step²``, on the exact Bernoulli
            conditional. Why: a question every training LLM got wrong (or right) has a likelihood that is flat over
            a half-space, and the augmented Gibbs update moves it in small steps there; those questions hold the
            sampler's worst R-hat (``experiments/results/gibbs_rhat_where.md``).
        row_step: scale of the row move's proposal, relative to the population's spread.
        progress: show a progress bar.
    """

    chains: int = 4
    warmup: int = 300
    samples: int = 400
    thin: int = 4
    chunk: int = 50
    beta0: float = 2.0
    nu0: float | None = None
    scale_move: bool = False
    scale_step: float = 0.3
    row_move: bool = False
    row_step: float = 0.5
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("chains", "samples", "thin", "chunk"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
        if isinstance(self.warmup, bool) or not isinstance(self.warmup, (int, np.integer)) or self.warmup < 0:
            raise ConfigError(f"warmup must be an integer >= 0, got {self.warmup!r}")
        if self.samples < self.thin:
            raise ConfigError(f"samples ({self.samples}) must be at least thin ({self.thin}) to keep a draw")
        if not (np.isfinite(self.beta0) and self.beta0 > 0):
            raise ConfigError(f"beta0 must be a finite number > 0, got {self.beta0!r}")
        if not (np.isfinite(self.scale_step) and self.scale_step > 0):
            raise ConfigError(f"scale_step must be a finite number > 0, got {self.scale_step!r}")
        if not (np.isfinite(self.row_step) and self.row_step > 0):
            raise ConfigError(f"row_step must be a finite number > 0, got {self.row_step!r}")

    @property
    def kept_per_chain(self) -> int:
        return self.samples // self.thin


class GibbsResult(NamedTuple):
    """What :func:`run_gibbs` returns.

    Attributes:
        draws: site name → ``(chains, kept, *shape)`` float32: the model's sites (``llm_factors``,
            ``item_factors``, ``llm_bias``, ``item_bias``, ``intercept``, those the model has) and the
            population sites (:data:`POPULATION_SITES`).
        seconds: wall time of the sampling (compilation included).
        sweeps: sweeps run per chain.
    """

    draws: dict[str, np.ndarray]
    seconds: float
    sweeps: int


class Potential(NamedTuple):
    """The paper's Gram potential ``−weight · ‖F Fᵀ − W Wᵀ‖²_F`` on one side's factor columns ``F``.

    Attributes:
        factor: ``W``, ``(n_rows, k)``: one row per row of that side (``W Wᵀ = √S``).
        weight: λ > 0.
    """

    factor: np.ndarray
    weight: float


class _Data(NamedTuple):
    """The observed pairs: rows, κ = z − ½ per pair, each question's group, and κ as a dense block (or None)."""

    llm: jnp.ndarray
    item: jnp.ndarray
    kappa: jnp.ndarray
    item_group: jnp.ndarray
    kappa_block: jnp.ndarray | None
    llm_similarity: jnp.ndarray | None = None  # the potential's W per side, or None
    item_similarity: jnp.ndarray | None = None


class _Chain(NamedTuple):
    llm_rows: jnp.ndarray  # (n_llms, p)
    item_rows: jnp.ndarray  # (n_items, p)
    llm_loc: jnp.ndarray  # (p,)
    llm_prec: jnp.ndarray  # (p, p)
    item_loc: jnp.ndarray  # (n_groups, p)
    item_prec: jnp.ndarray  # (p, p)


def run_gibbs(
    n_llms: int,
    n_items: int,
    llm: np.ndarray,
    item: np.ndarray,
    correct: np.ndarray,
    *,
    dim: int,
    biases: bool,
    config: GibbsConfig,
    item_group: np.ndarray | None = None,
    seed: int = 0,
    description: str = "gibbs",
    initial_rows: tuple[np.ndarray, np.ndarray] | None = None,
    potentials: dict[str, Potential] | None = None,
) -> GibbsResult:
    """Sample the posterior of the model in the module docstring given observed pairs.

    Args:
        n_llms, n_items: rows of each side; every one should hold at least one pair (a row without data
            is drawn from its population each sweep, which is valid but wasteful).
        llm, item: ``(n_pairs,)`` int rows of the observed pairs; correct: ``(n_pairs,)`` 0/1 answers.
        dim: latent dimension (0: biases only); biases: whether rows carry a bias.
        item_group: ``(n_items,)`` group code of each question (its own population mean), or None.
        seed: seeds the initial values and every draw; the same seed gives the same draws.
        initial_rows: ``(llm rows (n_llms, p), item rows (n_items, p))`` to start every chain near (e.g. a MAP
            fit), each chain with its own jitter; None starts from small random rows.
        potentials: ``{"llm": Potential, "item": Potential}`` (either or both): the paper's Gram potential on that
            side's factors (see the module docstring); needs ``dim >= 1`` and neither the scale nor the row move
            (their Metropolis ratios leave the potential out).
    """
    width = dim + int(biases)
    if width == 0:
        raise ConfigError("the Gibbs sampler needs dim >= 1 or biases: the model has no parameters")
    nu0 = float(config.nu0) if config.nu0 is not None else float(width)
    if nu0 <= width - 1:
        raise ConfigError(f"nu0 must exceed the row length minus 1 ({width - 1}), got {nu0}")
    weights, factors = _check_potentials(potentials or {}, n_llms, n_items, dim, config)
    llm, item = np.asarray(llm, np.int32), np.asarray(item, np.int32)
    groups = np.zeros(n_items, np.int32) if item_group is None else np.asarray(item_group, np.int32)
    n_groups = int(groups.max()) + 1 if len(groups) else 1
    dense = n_llms * n_items <= DENSE_MAX_CELLS and n_llms * n_items <= DENSE_MAX_RATIO * len(llm)
    kappa = np.asarray(correct, np.float32) - 0.5
    kappa_block = None
    if dense:
        kappa_block = np.zeros((n_llms, n_items), np.float32)
        kappa_block[llm, item] = kappa
    data = _Data(jnp.asarray(llm), jnp.asarray(item), jnp.asarray(kappa), jnp.asarray(groups),
                 None if kappa_block is None else jnp.asarray(kappa_block), factors["llm"], factors["item"])
    shape = _Shape(n_llms, n_items, n_groups, dim, bool(biases), dense, float(config.beta0), nu0,
                   float(config.scale_step) if config.scale_move else 0.0,
                   float(config.row_step) if config.row_move else 0.0, weights["llm"], weights["item"])

    chain_keys = jax.random.split(jax.random.PRNGKey(seed), config.chains)
    start_rows = None if initial_rows is None else tuple(jnp.asarray(rows, jnp.float32) for rows in initial_rows)
    states = jax.vmap(lambda k: _initial_chain(k, n_llms, n_items, n_groups, width, start_rows))(chain_keys)

    records = max(1, config.chunk // config.thin)
    per_chunk = records * config.thin
    n_warmup_chunks = -(-config.warmup // per_chunk)
    n_keep_chunks = -(-config.kept_per_chain // records)
    start = time.perf_counter()
    bar = tqdm(total=(n_warmup_chunks + n_keep_chunks) * per_chunk, desc=description, disable=not config.progress,
               unit="sweep", leave=False)
    kept: list = []
    try:
        for index in range(n_warmup_chunks + n_keep_chunks):
            keys = jax.vmap(lambda k: jax.random.fold_in(k, index))(chain_keys)
            states, rows = _run_chunk(states, keys, data, shape=shape, records=records, thin=config.thin)
            _check_finite(states, (index + 1) * per_chunk)
            if index >= n_warmup_chunks:
                kept.append(jax.device_get(rows))
            bar.update(per_chunk)
    finally:
        bar.close()
    rows = {name: np.concatenate([chunk[name] for chunk in kept], axis=1)[:, : config.kept_per_chain]
            for name in kept[0]}
    draws = _as_sites(align_rotations(rows, dim), dim, biases)
    return GibbsResult(draws=draws, seconds=time.perf_counter() - start,
                       sweeps=(n_warmup_chunks + n_keep_chunks) * per_chunk)


class _Shape(NamedTuple):
    """What the compiled sweep is specialised on (hashable: a static argument)."""

    n_llms: int
    n_items: int
    n_groups: int
    dim: int
    biases: bool
    dense: bool
    beta0: float
    nu0: float
    scale_step: float  # 0: no scale move
    row_step: float  # 0: no row move
    llm_potential: float = 0.0  # λ of the LLM side's Gram potential; 0: none
    item_potential: float = 0.0


@partial(jax.jit, static_argnames=("shape", "records", "thin"))
def _run_chunk(states: _Chain, keys, data: _Data, *, shape: _Shape, records: int, thin: int):
    """``records`` kept states per chain, ``thin`` sweeps apart, for every chain at once: one compiled program for
    the whole run (warm-up chunks discard their records), with the data as an argument, not a constant, so
    JAX's compilation caches can reuse it."""
    sweep = _make_sweep(shape)

    def one_chain(state, key):
        def record(state, index):
            state = _advance(sweep, state, data, jax.random.fold_in(key, index), thin)
            return state, _record(state)

        return jax.lax.scan(record, state, jnp.arange(records))

    return jax.vmap(one_chain)(states, keys)


def _advance(sweep, state: _Chain, data: _Data, key, n_sweeps: int) -> _Chain:
    return jax.lax.fori_loop(0, n_sweeps, lambda i, s: sweep(s, jax.random.fold_in(key, i), data), state)


def _record(state: _Chain) -> dict:
    """What a kept draw stores: the rows and the populations (mean, covariance)."""
    return {
        "llm_rows": state.llm_rows, "item_rows": state.item_rows,
        LLM_POPULATION_LOC: state.llm_loc, LLM_POPULATION_COV: _covariance(state.llm_prec),
        ITEM_POPULATION_LOC: state.item_loc, ITEM_POPULATION_COV: _covariance(state.item_prec),
    }


def _covariance(precision: jnp.ndarray) -> jnp.ndarray:
    inverse = jnp.linalg.inv(precision)
    return (inverse + inverse.T) / 2.0


def align_rotations(rows: dict, dim: int, iterations: int = 2) -> dict:
    """The kept draws, each rotated in latent space to best match the mean draw (orthogonal Procrustes).

    ``m · x`` is unchanged when an orthogonal ``R`` rotates the factors of both sides (``m R``, ``x R``), and so
    are the likelihood and, with the identity as the Wishart's scale, the factor block of the priors; chains
    land in different rotations and drift between them. Rotating every draw towards a common reference (the
    mean of the aligned draws, refined ``iterations`` times from the first draw) leaves every prediction as it
    was and makes per-entity means and R-hat of the factors meaningful. The population means and covariances
    turn with their draw (the bias coordinate does not turn).
    """
    if dim < 2:
        return rows
    llm_rows, item_rows = np.asarray(rows["llm_rows"], np.float64), np.asarray(rows["item_rows"], np.float64)
    shape = llm_rows.shape[:2]
    factors = np.concatenate([llm_rows[..., :dim], item_rows[..., :dim]], axis=2).reshape(-1, llm_rows.shape[2]
                                                                                          + item_rows.shape[2], dim)
    reference = factors[0]
    for _ in range(iterations):
        u, _, vt = np.linalg.svd(np.einsum("snp,nq->spq", factors, reference))
        rotations = u @ vt
        reference = np.einsum("snp,spq->nq", factors, rotations) / len(factors)
    turn = np.broadcast_to(np.eye(llm_rows.shape[-1]), (len(factors), llm_rows.shape[-1], llm_rows.shape[-1])).copy()
    turn[:, :dim, :dim] = rotations
    turn = turn.reshape(*shape, *turn.shape[1:])
    out = dict(rows)
    out["llm_rows"] = np.einsum("csnp,cspq->csnq", llm_rows, turn)
    out["item_rows"] = np.einsum("csnp,cspq->csnq", item_rows, turn)
    out[LLM_POPULATION_LOC] = np.einsum("csp,cspq->csq", rows[LLM_POPULATION_LOC], turn)
    out[ITEM_POPULATION_LOC] = np.einsum("csgp,cspq->csgq", rows[ITEM_POPULATION_LOC], turn)
    for name in (LLM_POPULATION_COV, ITEM_POPULATION_COV):
        out[name] = np.einsum("cspa,cspq,csqb->csab", turn, rows[name], turn)
    return out


def _as_sites(rows: dict, dim: int, biases: bool) -> dict[str, np.ndarray]:
    """Split the kept rows into the model's sites (``(chains, kept, …)`` float32)."""
    llm_rows, item_rows = rows.pop("llm_rows"), rows.pop("item_rows")
    draws = {name: np.asarray(value, np.float32) for name, value in rows.items()}
    if dim:
        draws[LLM_FACTORS] = np.asarray(llm_rows[..., :dim], np.float32)
        draws[ITEM_FACTORS] = np.asarray(item_rows[..., :dim], np.float32)
    if biases:
        draws[LLM_BIAS] = np.asarray(llm_rows[..., dim], np.float32)
        draws[ITEM_BIAS] = np.asarray(item_rows[..., dim], np.float32)
        draws[INTERCEPT] = np.zeros(llm_rows.shape[:2], np.float32)
    return draws


def _check_finite(states: _Chain, sweeps: int) -> None:
    bad = [name for name, value in states._asdict().items() if not bool(jnp.all(jnp.isfinite(value)))]
    if bad:
        raise FitError(f"the Gibbs sampler produced non-finite {', '.join(bad)} by sweep {sweeps}; "
                       "try a smaller dim")


def _initial_chain(key, n_llms: int, n_items: int, n_groups: int, width: int, start_rows=None) -> _Chain:
    """Rows jittered by N(0, 0.3²) (each chain its own, so chains start apart) around ``start_rows`` or 0, the
    identity as population precision."""
    k1, k2 = jax.random.split(key)
    eye = jnp.eye(width, dtype=jnp.float32)
    llm_rows, item_rows = 0.3 * jax.random.normal(k1, (n_llms, width)), 0.3 * jax.random.normal(k2, (n_items, width))
    if start_rows is not None:
        llm_rows, item_rows = llm_rows + start_rows[0], item_rows + start_rows[1]
    return _Chain(llm_rows=llm_rows, item_rows=item_rows, llm_loc=jnp.zeros(width), llm_prec=eye,
                  item_loc=jnp.zeros((n_groups, width)), item_prec=eye)


def _make_sweep(shape: _Shape):
    """One Gibbs sweep of one chain (see the module docstring): ``sweep(state, key, data) -> state``."""
    (n_llms, n_items, n_groups, dim, biases, dense, beta0, nu0, scale_step, row_step, llm_potential,
     item_potential) = shape
    llm_group = jnp.zeros(n_llms, jnp.int32)
    make_sums = _dense_sums if dense else _pair_sums

    def sweep(state: _Chain, key, data: _Data) -> _Chain:
        sums = make_sums(data, n_llms, n_items)
        keys = jax.random.split(key, 7)
        logits = _pair_logits(state.llm_rows, state.item_rows, data.llm, data.item, dim, biases)
        omega = sample_pg1(keys[0], logits)
        partner, offset = _design(state.item_rows, dim, biases)
        precision, linear = sums(omega, partner, offset, "llm")
        llm_rows = _draw_side(keys[1], precision + state.llm_prec,
                              linear + jnp.broadcast_to(state.llm_loc @ state.llm_prec, linear.shape),
                              state.llm_rows, data.llm_similarity, llm_potential, dim)
        partner, offset = _design(llm_rows, dim, biases)
        precision, linear = sums(omega, partner, offset, "item")
        item_rows = _draw_side(keys[2], precision + state.item_prec,
                               linear + (state.item_loc @ state.item_prec)[data.item_group],
                               state.item_rows, data.item_similarity, item_potential, dim)
        if scale_step > 0:  # its own key, so that the other draws are those of a sampler without it
            llm_rows, item_rows = _scale_move(jax.random.fold_in(key, 7), llm_rows, item_rows, data.item_group,
                                              n_groups, dim, beta0, nu0, scale_step)
        llm_loc, llm_prec = _normal_wishart(keys[3], llm_rows, llm_group, 1, beta0, nu0)
        item_loc, item_prec = _normal_wishart(keys[4], item_rows, data.item_group, n_groups, beta0, nu0)
        if biases:
            # ω is spent: the next sweep draws it afresh, so these steps may target the un-augmented conditional.
            llm_rows, item_rows = _bias_metropolis(
                keys[5], llm_rows, item_rows, data, "llm", jnp.broadcast_to(llm_loc[0], llm_rows.shape), llm_prec, dim)
            llm_rows, item_rows = _bias_metropolis(
                keys[6], llm_rows, item_rows, data, "item", item_loc[data.item_group], item_prec, dim)
        if row_step > 0:  # its own keys, so that the other draws are those of a sampler without it
            llm_rows, item_rows = _row_metropolis(
                jax.random.fold_in(key, 8), llm_rows, item_rows, data, "llm",
                jnp.broadcast_to(llm_loc[0], llm_rows.shape), llm_prec, dim, biases, row_step)
            llm_rows, item_rows = _row_metropolis(
                jax.random.fold_in(key, 9), llm_rows, item_rows, data, "item", item_loc[data.item_group], item_prec,
                dim, biases, row_step)
        return _Chain(llm_rows, item_rows, llm_loc[0], llm_prec, item_loc, item_prec)

    return sweep


def _group_statistics(rows, group, n_groups: int, beta0: float):
    """``(counts (n_groups,), sums (n_groups, p), within (p, p), between (p, p))`` of ``rows`` for the Normal–Wishart
    conditional (prior mean 0, scale I): ``W_n⁻¹ = I + within + between``."""
    counts = jax.ops.segment_sum(jnp.ones(rows.shape[0]), group, n_groups)
    sums = jax.ops.segment_sum(rows, group, n_groups)
    group_mean = sums / jnp.maximum(counts, 1.0)[:, None]
    centred = rows - group_mean[group]
    between = jnp.einsum("g,gp,gq->pq", beta0 * counts / (beta0 + counts), group_mean, group_mean)
    return counts, sums, centred.T @ centred, between


def _population_scatter(rows, group, n_groups: int, beta0: float) -> jnp.ndarray:
    """``W_n⁻¹ − I`` of the Normal–Wishart conditional: the within-group scatter of ``rows`` plus the shrunk
    between-group term (see :func:`_group_statistics`)."""
    _, _, within, between = _group_statistics(rows, group, n_groups, beta0)
    return within + between


def _scale_move(key, llm_rows, item_rows, item_group, n_groups: int, dim: int, beta0: float, nu0: float,
                step: float):
    """Metropolis steps on the scales of the latent dimensions (see ``GibbsConfig.scale_move``).

    The target is the rows' density with each population's mean and precision integrated out:
    ``|I + S|^(−(ν0 + n)/2)`` per side, ``S`` the scatter of :func:`_population_scatter`. Scaling column k of the
    LLM rows by ``c`` and of the question rows by ``1/c`` turns ``S`` into ``D S D`` (``D⁻¹ S D⁻¹``) and has
    Jacobian ``c^(n_llms − n_items)``; the likelihood is unchanged, so it cancels. One step per dimension, the
    bias coordinate untouched."""
    width = llm_rows.shape[1]
    n_llms, n_items = llm_rows.shape[0], item_rows.shape[0]
    llm_scatter = _population_scatter(llm_rows, jnp.zeros(n_llms, jnp.int32), 1, beta0)
    item_scatter = _population_scatter(item_rows, item_group, n_groups, beta0)
    eye = jnp.eye(width)

    def log_target(log_scale):
        scale = jnp.exp(log_scale)
        llm = jnp.linalg.slogdet(eye + scale[:, None] * llm_scatter * scale[None, :])[1]
        item = jnp.linalg.slogdet(eye + item_scatter / (scale[:, None] * scale[None, :]))[1]
        return -0.5 * (nu0 + n_llms) * llm - 0.5 * (nu0 + n_items) * item + (n_llms - n_items) * jnp.sum(log_scale)

    def one_dimension(k, carry):
        log_scale, current, key = carry
        key, key_step, key_accept = jax.random.split(key, 3)
        proposal = log_scale.at[k].add(step * jax.random.normal(key_step))
        proposed = log_target(proposal)
        accept = jnp.log(jax.random.uniform(key_accept)) < proposed - current
        return jnp.where(accept, proposal, log_scale), jnp.where(accept, proposed, current), key

    start = jnp.zeros(width)
    log_scale, _, _ = jax.lax.fori_loop(0, dim, one_dimension, (start, log_target(start), key))
    scale = jnp.exp(log_scale)
    return llm_rows * scale, item_rows / scale


def _bias_metropolis(key, llm_rows, item_rows, data: _Data, side: str, prior_loc, prior_prec, dim: int):
    """One random-walk Metropolis step on the bias of every row of ``side``, on its exact (Bernoulli, not
    augmented) conditional, with the population's conditional sd of a bias given its factors as step size.

    Why: given ω the augmented Gibbs moves a row whose answers are (almost) all wrong or all right only by
    steps of order √(|ψ| / n) while its posterior spans the population's tail (Johndrow et al. 2019 on
    imbalanced data); on openllm-v2-mmlupro-math the 70 questions nobody answered kept the chains apart
    (R-hat up to 1.46 on pair predictions). This step moves such rows by the population's scale.
    """
    rows = llm_rows if side == "llm" else item_rows
    own, n_rows = (data.llm, llm_rows.shape[0]) if side == "llm" else (data.item, item_rows.shape[0])
    key_step, key_accept = jax.random.split(key)
    conditional_sd = 1.0 / jnp.sqrt(prior_prec[dim, dim])
    step = conditional_sd * jax.random.normal(key_step, (n_rows,))
    logits = _pair_logits(llm_rows, item_rows, data.llm, data.item, dim, True)
    likelihood_change = _likelihood_change(data, logits, logits + step[own], own, n_rows)
    prior_change = -step * ((rows - prior_loc) @ prior_prec)[:, dim] - 0.5 * prior_prec[dim, dim] * step**2
    accept = jnp.log(jax.random.uniform(key_accept, (n_rows,))) < likelihood_change + prior_change
    rows = rows.at[:, dim].add(jnp.where(accept, step, 0.0))
    return (rows, item_rows) if side == "llm" else (llm_rows, rows)


def _likelihood_change(data: _Data, logits, moved, own, n_rows: int) -> jnp.ndarray:
    """Per row, the change of its pairs' Bernoulli log likelihood when their logits go from ``logits`` to ``moved``."""
    answered = data.kappa + 0.5
    pair_change = answered * (moved - logits) - jnp.logaddexp(0.0, moved) + jnp.logaddexp(0.0, logits)
    return jax.ops.segment_sum(pair_change, own, n_rows)


def _row_metropolis(key, llm_rows, item_rows, data: _Data, side: str, prior_loc, prior_prec, dim: int, biases: bool,
                    step: float):
    """One random-walk Metropolis step on every whole row of ``side`` (see ``GibbsConfig.row_move``): proposal
    ``δ ~ N(0, step² Λ⁻¹)`` with ``Λ`` the population precision, accepted per row on the exact Bernoulli
    likelihood of its pairs and its population prior ``N(prior_loc, Λ⁻¹)`` (the other rows fixed)."""
    rows = llm_rows if side == "llm" else item_rows
    own, partners, partner_rows = ((data.llm, data.item, item_rows) if side == "llm"
                                   else (data.item, data.llm, llm_rows))
    n_rows = rows.shape[0]
    key_step, key_accept = jax.random.split(key)
    # δ = step · L⁻ᵀ ε with Λ = L Lᵀ: covariance step² Λ⁻¹.
    chol = jnp.linalg.cholesky(prior_prec)
    noise = jax.random.normal(key_step, rows.shape)
    delta = step * solve_triangular(chol.T, noise.T, lower=False).T
    design, _ = _design(partner_rows, dim, biases)
    logits = _pair_logits(llm_rows, item_rows, data.llm, data.item, dim, biases)
    moved = logits + jnp.sum(delta[own] * design[partners], axis=1)
    likelihood_change = _likelihood_change(data, logits, moved, own, n_rows)
    prior_change = (-jnp.sum(((rows - prior_loc) @ prior_prec) * delta, axis=1)
                    - 0.5 * jnp.sum((delta @ prior_prec) * delta, axis=1))
    accept = jnp.log(jax.random.uniform(key_accept, (n_rows,))) < likelihood_change + prior_change
    rows = rows + jnp.where(accept[:, None], delta, 0.0)
    return (rows, item_rows) if side == "llm" else (llm_rows, rows)


def _design(rows: jnp.ndarray, dim: int, biases: bool) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Each partner row's design vector ``[factors, 1]`` and its bias (the offset of the logit); without
    biases the factors and 0."""
    if not biases:
        return rows, jnp.zeros(rows.shape[0])
    return jnp.concatenate([rows[:, :dim], jnp.ones((rows.shape[0], 1))], axis=1), rows[:, dim]


def _pair_sums(data: _Data, n_llms: int, n_items: int):
    """``(Σ ω a aᵀ, Σ a (κ − ω · offset))`` per row of one side, summed over its pairs (scatter-adds)."""

    def sums(omega, partner_rows, partner_offset, side: str):
        rows, partners = (data.llm, data.item) if side == "llm" else (data.item, data.llm)
        n_rows = n_llms if side == "llm" else n_items
        design, offset = partner_rows[partners], partner_offset[partners]
        outer = (omega[:, None, None] * design[:, :, None]) * design[:, None, :]
        precision = jax.ops.segment_sum(outer, rows, n_rows)
        linear = jax.ops.segment_sum(design * (data.kappa - omega * offset)[:, None], rows, n_rows)
        return precision, linear

    return sums


def _dense_sums(data: _Data, n_llms: int, n_items: int):
    """The sums of :func:`_pair_sums` through the dense ``(n_llms, n_items)`` block of weights: one scatter
    of the ω's, then matrix products (several times faster on a CPU once the block is dense enough)."""
    def sums(omega, partner_rows, partner_offset, side: str):
        weights = jnp.zeros((n_llms, n_items)).at[data.llm, data.item].set(omega)
        kappa = data.kappa_block
        if side == "item":
            weights, kappa = weights.T, kappa.T
        width = partner_rows.shape[1]
        outer = (partner_rows[:, :, None] * partner_rows[:, None, :]).reshape(partner_rows.shape[0], -1)
        precision = (weights @ outer).reshape(weights.shape[0], width, width)
        linear = (kappa - weights * partner_offset[None, :]) @ partner_rows
        return precision, linear

    return sums


def _pair_logits(llm_rows, item_rows, llm, item, dim: int, biases: bool) -> jnp.ndarray:
    left, right = llm_rows[llm], item_rows[item]
    logits = jnp.sum(left[:, :dim] * right[:, :dim], axis=1)
    if biases:
        logits = logits + left[:, dim] + right[:, dim]
    return logits


def _draw_rows(key, precision: jnp.ndarray, linear: jnp.ndarray) -> jnp.ndarray:
    """One draw of each row from ``N(P⁻¹h, P⁻¹)`` given its precision ``P (n, p, p)`` and linear term
    ``h (n, p)``, through the Cholesky factor ``P = L Lᵀ``: ``L⁻ᵀ (L⁻¹ h + ε)``."""
    chol = jnp.linalg.cholesky(precision)
    noise = jax.random.normal(key, linear.shape)
    return jax.vmap(_draw_given_cholesky)(chol, linear, noise)


def _draw_given_cholesky(chol: jnp.ndarray, linear: jnp.ndarray, noise: jnp.ndarray) -> jnp.ndarray:
    """``L⁻ᵀ (L⁻¹ h + ε)``: a draw from ``N(P⁻¹h, P⁻¹)`` for one row, ``P = L Lᵀ``."""
    half = solve_triangular(chol, linear, lower=True)
    return solve_triangular(chol.T, half + noise, lower=False)


def _draw_side(key, precision, linear, current, similarity, weight: float, dim: int) -> jnp.ndarray:
    """One side's rows from their conditional: all at once (:func:`_draw_rows`) without a potential, else one
    after another (:func:`_draw_rows_with_potential`)."""
    if weight == 0.0:
        return _draw_rows(key, precision, linear)
    return _draw_rows_with_potential(key, precision, linear, current, similarity, weight, dim)


def _draw_rows_with_potential(key, precision, linear, current, similarity, weight: float, dim: int) -> jnp.ndarray:
    """Each row in turn from its conditional under the Gram potential (module docstring): the Gaussian part (data,
    population and the potential's quadratic terms given the other rows' current values) proposes, the quartic
    diagonal term accepts or keeps the row. ``F Fᵀ``'s pieces, ``Σ_j f_j f_jᵀ`` and ``Wᵀ F``, follow every change."""
    n_rows = linear.shape[0]
    key_noise, key_accept = jax.random.split(key)
    noise = jax.random.normal(key_noise, linear.shape)
    log_uniform = jnp.log(jax.random.uniform(key_accept, (n_rows,)))
    diagonal = jnp.sum(similarity * similarity, axis=1)  # c_ii
    factors = current[:, :dim]

    def one_row(i, carry):
        rows, gram, cross = carry
        old = rows[i]
        f_old = old[:dim]
        others = gram - jnp.outer(f_old, f_old)  # Σ_{j≠i} f_j f_jᵀ
        pulled = similarity[i] @ cross - diagonal[i] * f_old  # Σ_{j≠i} c_ij f_j
        row_precision = precision[i].at[:dim, :dim].add(4.0 * weight * others)
        row_linear = linear[i].at[:dim].add(4.0 * weight * pulled)
        proposal = _draw_given_cholesky(jnp.linalg.cholesky(row_precision), row_linear, noise[i])
        f_new = proposal[:dim]
        log_ratio = -weight * ((f_new @ f_new - diagonal[i]) ** 2 - (f_old @ f_old - diagonal[i]) ** 2)
        row = jnp.where(log_uniform[i] < log_ratio, proposal, old)
        f = row[:dim]
        return rows.at[i].set(row), others + jnp.outer(f, f), cross + jnp.outer(similarity[i], f - f_old)

    rows, _, _ = jax.lax.fori_loop(0, n_rows, one_row, (current, factors.T @ factors, similarity.T @ factors))
    return rows


def _check_potentials(potentials: dict, n_llms: int, n_items: int, dim: int, config: GibbsConfig):
    """``({side: λ or 0.0}, {side: W as a device array or None})`` from ``potentials``, or ConfigError."""
    unknown = set(potentials) - {"llm", "item"}
    if unknown:
        raise ConfigError(f"potentials takes the sides 'llm' and 'item', got {sorted(unknown)}")
    weights, factors = {"llm": 0.0, "item": 0.0}, {"llm": None, "item": None}
    for side, potential in potentials.items():
        if potential is None:
            continue
        factor = np.asarray(potential.factor, np.float32)
        n_rows = n_llms if side == "llm" else n_items
        if factor.ndim != 2 or factor.shape[0] != n_rows:
            raise ConfigError(f"the {side} potential's factor must have one row per {side} ({n_rows}), got shape "
                              f"{factor.shape}")
        if not np.all(np.isfinite(factor)):
            raise ConfigError(f"the {side} potential's factor holds non-finite values")
        weight = float(potential.weight)
        if not (np.isfinite(weight) and weight >= 0):
            raise ConfigError(f"the {side} potential's weight must be a finite number >= 0, got {potential.weight!r}")
        if weight == 0:
            continue
        if dim < 1:
            raise ConfigError("a Gram potential acts on the factors: it needs dim >= 1")
        if config.scale_move or config.row_move:
            raise ConfigError("the scale and row moves leave the Gram potential out of their acceptance ratios: "
                              "turn them off to sample with a potential")
        weights[side], factors[side] = weight, jnp.asarray(factor)
    return weights, factors


def _normal_wishart(key, rows, group, n_groups: int, beta0: float, nu0: float) -> tuple[jnp.ndarray, jnp.ndarray]:
    """``(means (n_groups, p), precision (p, p))`` from the Normal–Wishart conditional given ``rows`` (prior
    mean 0, scale matrix I): the precision with the group means integrated out, then each mean given it."""
    width = rows.shape[1]
    counts, sums, within, between = _group_statistics(rows, group, n_groups, beta0)
    beta_n = beta0 + counts
    scale_inverse = jnp.eye(width) + within + between
    key_w, key_m = jax.random.split(key)
    precision = _wishart(key_w, nu0 + rows.shape[0], scale_inverse)
    chol = jnp.linalg.cholesky(precision)
    noise = jax.random.normal(key_m, (n_groups, width))
    # mean_g + (β_g Λ)^(-1/2) ε: solve Lᵀ y = ε for each group.
    spread = solve_triangular(chol.T, noise.T, lower=False).T / jnp.sqrt(beta_n)[:, None]
    return sums / beta_n[:, None] + spread, precision


def _wishart(key, dof: float, scale_inverse: jnp.ndarray) -> jnp.ndarray:
    """A Wishart(dof, scale) draw given the inverse of the scale matrix (Bartlett decomposition)."""
    width = scale_inverse.shape[0]
    inverse_chol = jnp.linalg.cholesky((scale_inverse + scale_inverse.T) / 2.0)
    # scale = (L Lᵀ)⁻¹ = L⁻ᵀ L⁻¹: a square root of the scale is L⁻ᵀ.
    root = solve_triangular(inverse_chol.T, jnp.eye(width), lower=False)
    key_chi, key_normal = jax.random.split(key)
    chi2 = 2.0 * jax.random.gamma(key_chi, (dof - jnp.arange(width)) / 2.0)
    lower = jnp.tril(jax.random.normal(key_normal, (width, width)), k=-1) + jnp.diag(jnp.sqrt(chi2))
    factor = root @ lower
    return factor @ factor.T
