"""Hyper-parameters of the probabilistic model (not of inference): :class:`ModelConfig`."""

from __future__ import annotations

from dataclasses import dataclass, fields

import jax
import numpy as np

from bayes_simrmf.errors import ConfigError


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of the probabilistic model (not of inference).

    Attributes:
        dim: latent dimension d of ``m_i`` and ``x_k``.
        lambda_reg: the paper's L2 weight; prior sd of each factor entry is ``1/√(2 λ_reg)``.
        biases: include the intercept and hierarchical per-LLM / per-item biases.
        bias_scale: sd of the Normal prior on every bias (logit units), or None to learn one
            scale per side (hierarchical, HalfNormal(``bias_scale_prior``) hyper-prior). Learnt
            scales suit posterior guides; under MAP (delta guide) they collapse towards 0,
            since the joint density grows without bound as a scale and its biases shrink
            together, so the delta guide uses a fixed scale.
        llm_bias_scale: sd of the LLM biases' prior where it should differ from the items' (LLMs
            with few answers each need more shrinkage than items with many), or None for
            ``bias_scale`` on both sides; needs a fixed ``bias_scale``.
        bias_scale_prior: sd of the HalfNormal hyper-prior of a learnt bias scale (logit units).
        intercept_prior: sd of the Normal prior on the intercept (logit units).
        n_item_groups: number of item groups (benchmarks) with their own mean item bias; 0 for none.
        asymptotes: a guessing floor and a ceiling per item group (one for all items without groups), learned:
            ``p = floor + (ceiling − floor) σ(logit)`` (the 4PL form of item response theory). A multiple-choice
            question answered at random is right 1/options of the time, which σ of any logit only reaches by
            sending the LLM's or the item's terms to the extreme; the floor holds it instead. Priors: floor
            ~ Beta(2, ``floor_prior``), slip (the share of the range above the floor a perfect LLM still misses)
            ~ Beta(2, ``slip_prior``); ``ceiling = 1 − (1 − floor)·slip``, so floor < ceiling always. A Beta(1, ·)
            has its mode at 0, where MAP (the delta guide) then left every floor on synthetic data with a planted
            floor of 0.25, which a normal guide found; Beta(2, ·) vanishes at 0, so the data decide.
        floor_prior, slip_prior: the second Beta parameter of the floor and of the slip (prior modes 1/·: 0.1
            and 0.05 by default).
        fixed_floor, fixed_slip: with ``asymptotes``, each group's floor and slip held at these values instead of
            learned (one per group). MAP with latent factors drives learned floors to 0 (the factors fit each wrong
            answer instead), so the delta guide takes them from a MAP fit without factors first
            (:class:`~bayes_simrmf.predict.SimRMF`).
    """

    dim: int = 8
    lambda_reg: float = 1.0
    biases: bool = True
    bias_scale: float | None = 2.0
    bias_scale_prior: float = 2.0
    llm_bias_scale: float | None = None
    intercept_prior: float = 3.0
    n_item_groups: int = 0
    asymptotes: bool = False
    floor_prior: float = 10.0
    slip_prior: float = 20.0
    fixed_floor: tuple | None = None
    fixed_slip: tuple | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.dim, (int, np.integer)) or self.dim < 0:
            raise ConfigError(f"dim must be a non-negative integer, got {self.dim!r}")
        for name in ("lambda_reg", "bias_scale_prior", "intercept_prior", "floor_prior", "slip_prior"):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise ConfigError(f"{name} must be a positive finite number, got {value!r}")
        if self.bias_scale is not None and not (np.isfinite(self.bias_scale) and self.bias_scale > 0):
            raise ConfigError(f"bias_scale must be a positive finite number or None, got {self.bias_scale!r}")
        if self.llm_bias_scale is not None:
            if self.bias_scale is None:
                raise ConfigError("llm_bias_scale sets the LLM side of a fixed bias_scale; with bias_scale=None "
                                  "both scales are learnt, so leave llm_bias_scale at None")
            if not (np.isfinite(self.llm_bias_scale) and self.llm_bias_scale > 0):
                raise ConfigError(f"llm_bias_scale must be a positive finite number or None, got {self.llm_bias_scale!r}")
        if not isinstance(self.n_item_groups, (int, np.integer)) or self.n_item_groups < 0:
            raise ConfigError(f"n_item_groups must be a non-negative integer, got {self.n_item_groups!r}")
        if self.n_item_groups and not self.biases:
            raise ConfigError("item groups set the mean of the item biases; they need biases=True")
        for name in ("fixed_floor", "fixed_slip"):
            value = getattr(self, name)
            if value is not None and not (self.asymptotes and len(value) == (self.n_item_groups or 1)
                                          and all(0.0 < float(v) < 1.0 for v in value)):
                raise ConfigError(f"{name} must hold one value in (0, 1) per item group ({self.n_item_groups or 1}) "
                                  f"with asymptotes=True, got {value!r}")
        if self.dim == 0 and not self.biases:
            raise ConfigError("dim=0 with biases=False leaves the model with no parameters")

    @property
    def factor_prior_sd(self):
        """Prior sd of one factor entry, ``1/√(2 λ_reg)``: the Bayesian reading of the L2 term (a float, or a
        traced value inside a compiled step)."""
        sd = (2.0 * self.lambda_reg) ** -0.5
        return sd if isinstance(sd, jax.Array) else float(sd)


# A pytree whose numbers are leaves and whose structure (dim, biases, groups, which scales are None) is static:
# compiled SVI steps take the config as an argument, so fits that differ only in lambda_reg or a bias scale (a
# tuning grid) share one compiled program. Unflattening skips validation: inside a trace the leaves are tracers.
_NUMBERS = ("lambda_reg", "bias_scale", "bias_scale_prior", "llm_bias_scale", "intercept_prior", "floor_prior",
            "slip_prior", "fixed_floor", "fixed_slip")
_STRUCTURE = tuple(field.name for field in fields(ModelConfig) if field.name not in _NUMBERS)


def _flatten(config: ModelConfig):
    return tuple(getattr(config, name) for name in _NUMBERS), tuple(getattr(config, name) for name in _STRUCTURE)


def _unflatten(structure: tuple, numbers: tuple) -> ModelConfig:
    config = object.__new__(ModelConfig)
    for name, value in (*zip(_STRUCTURE, structure), *zip(_NUMBERS, numbers)):
        object.__setattr__(config, name, value)
    return config


jax.tree_util.register_pytree_node(ModelConfig, _flatten, _unflatten)
