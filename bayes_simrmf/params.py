"""Hyper-parameters in one place, and the estimator interface every model shares.

Each estimator's hyper-parameters are the fields of one dataclass declared here with
:func:`hyper` (default, help text, bounds, CLI name). From that one list come:

- the constructor (the dataclass), ``get_params`` / ``set_params`` / :func:`clone` (scikit-learn's
  conventions: ``sklearn.base.clone`` works on every estimator) and ``get_config`` /
  ``from_config`` (what a saved model records);
- validation (a ``Literal`` annotation is a choice, ``minimum`` a lower bound) with one wording;
- the CLI's options (:func:`click_options`), so no command repeats a default or a help text.

This module imports neither JAX nor pandas: the CLI reads it before ``--help``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from bayes_simrmf.errors import ConfigError, NotFittedError

__all__ = ["Estimator", "SimRMFParams", "CountingParams", "clone", "hyper", "click_options"]


def hyper(default, help: str, *, minimum: float | None = None, exclusive: bool = False, cli: str | None = "",
          cli_min: int | None = None, runtime: bool = False):
    """A hyper-parameter field.

    Args:
        default: its default (the only place it is written).
        help: one sentence for the docs and ``--help``.
        minimum: values below it (or equal, with ``exclusive``) are refused, as are non-finite numbers.
        cli: the option's name on the command line: "" for ``--the-field-name``, None for none (the
            command sets it otherwise, e.g. ``seed`` from the split options).
        cli_min: for an integer the library checks elsewhere (``ModelConfig``, ``InferenceConfig``), the least
            value the command line takes, so a bad one is a usage error before any work.
        runtime: steers a run but is no hyper-parameter of the model (left out of ``get_config``).
    """
    return field(default=default, metadata={"help": help, "minimum": minimum, "exclusive": exclusive, "cli": cli,
                                            "cli_min": cli_min, "runtime": runtime})


def _base_type(hint):
    """``(type, optional)``: ``float | None`` → ``(float, True)``."""
    args = typing.get_args(hint)
    if type(None) in args:
        return next(a for a in args if a is not type(None)), True
    return hint, False


def _json_ready(value, hint):
    """``value`` cast to the type its annotation names (``int``, ``float``, ``bool``, optional or choice)."""
    base, optional = _base_type(hint)
    if optional and value is None:
        return None
    return base(value) if base in (int, float, bool) else value


@dataclass(eq=False, repr=False)
class Estimator:
    """What every estimator shares: hyper-parameters as dataclass fields, scikit-learn's ``get_params`` /
    ``set_params``, ``get_config`` / ``from_config``, one validation and one not-fitted error."""

    #: The name a saved model records (``config.json``'s ``estimator.method``) where it is no field.
    method: ClassVar[str] = ""

    @classmethod
    def _fields(cls, *, runtime: bool = True) -> dict[str, dataclasses.Field]:
        return {f.name: f for f in dataclasses.fields(cls) if f.init and (runtime or not f.metadata.get("runtime"))}

    @classmethod
    def _hints(cls) -> dict[str, object]:
        hints = typing.get_type_hints(cls)
        return {name: hints[name] for name in cls._fields()}

    # scikit-learn conventions ------------------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict:
        """Constructor argument → value (scikit-learn's convention; ``deep`` has nothing nested to add)."""
        return {name: getattr(self, name) for name in self._fields()}

    def set_params(self, **params):
        """Set hyper-parameters by name (checked when ``fit`` runs); an unknown name is refused. Returns self."""
        self._check_names(params)
        for name, value in params.items():
            setattr(self, name, value)
        return self

    @classmethod
    def _check_names(cls, params) -> None:
        unknown = sorted(set(params) - set(cls._fields()))
        if unknown:
            raise ConfigError(f"unknown {cls.__name__} option(s) {unknown}; it takes {sorted(cls._fields())}")

    # saved configuration -----------------------------------------------------------------------
    def get_config(self) -> dict:
        """Every hyper-parameter but the runtime ones, JSON-ready, with ``method`` first."""
        hints = self._hints()
        config = {name: _json_ready(getattr(self, name), hints[name]) for name in self._fields(runtime=False)}
        return config if "method" in config else {"method": self.method, **config}

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        if "method" not in cls._fields():
            method = config.pop("method", cls.method)
            if method != cls.method:
                raise ConfigError(f"a {cls.__name__} config has method {cls.method!r}, not {method!r}")
        cls._check_names(config)
        return cls(**config)

    # checks ------------------------------------------------------------------------------------
    def _validate(self) -> None:
        """Refuse a value outside its choices (its ``Literal``) or below its ``minimum``, naming the parameter."""
        hints = self._hints()
        for name, spec in self._fields().items():
            value, (base, optional) = getattr(self, name), _base_type(hints[name])
            if optional and value is None:
                continue
            if typing.get_origin(base) is Literal and value not in typing.get_args(base):
                choices = ", ".join(repr(choice) for choice in typing.get_args(base))
                raise ConfigError(f"{name} must be one of {choices}; got {value!r}")
            minimum = spec.metadata.get("minimum")
            if minimum is None:
                continue
            exclusive = spec.metadata.get("exclusive")
            number = not isinstance(value, bool) and isinstance(value, (int, float)) or _is_numpy_number(value)
            if not (number and math.isfinite(value) and (value > minimum if exclusive else value >= minimum)):
                kind = "an integer" if base is int else "a finite number"
                raise ConfigError(f"{name} must be {kind} {'>' if exclusive else '>='} {minimum:g}, got {value!r}")

    def _require_fitted(self, attribute: str) -> None:
        if attribute not in self.__dict__:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit(...) or load a saved model first")

    def __repr__(self) -> str:
        """scikit-learn's style: the class and the parameters that differ from their defaults."""
        changed = []
        for name, spec in self._fields().items():
            value = getattr(self, name)
            default = spec.default_factory() if spec.default_factory is not dataclasses.MISSING else spec.default
            if value is not default and value != default:
                changed.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(changed)})"


def _is_numpy_number(value) -> bool:
    return type(value).__module__ == "numpy" and hasattr(value, "dtype") and value.dtype.kind in "iuf"


def clone(estimator):
    """A new, unfitted estimator with the same hyper-parameters, copied (scikit-learn's ``clone``)."""
    return type(estimator)(**copy.deepcopy(estimator.get_params(deep=False)))


@dataclass(eq=False, repr=False)
class SimRMFParams(Estimator):
    """The hyper-parameters of :class:`bayes_simrmf.predict.SimRMF` (see its docstring for the model)."""

    method: Literal["mf", "simrmf", "oracle"] = hyper(
        "mf", "mf: BCE + L2 + biases; simrmf: plus similarity from side information; oracle: plus the ideal "
        "similarity from the true scores (an upper bound, uses test data).", cli=None)
    dim: int = hyper(8, "Latent dimension d.", cli_min=0)
    lambda_reg: float = hyper(1.0, "L2 weight (prior sd of factor entries = 1/sqrt(2*lambda_reg)).")
    biases: bool = hyper(True, "An intercept plus per-LLM and per-question biases (logit units).")
    bias_scale: float = hyper(2.0, "Prior sd of the LLM and question biases (logit units).")
    llm_bias_scale: float | None = hyper(
        None, "Prior sd of the LLM biases alone, smaller where each LLM has few training answers "
        "[default: the bias scale].")
    guide: Literal["delta", "normal", "lowrank"] = hyper(
        "delta", "Variational family: delta = MAP (the paper's point estimate), normal = mean-field, lowrank.")
    learning_rate: float = hyper(0.05, "Adam step size.")
    max_steps: int = hyper(3000, "Upper bound on SVI steps.", cli_min=1)
    tol: float = hyper(1e-5, "Stop when the relative loss change per 50 steps is below this.")
    layout: Literal["auto", "dense", "pairs"] = hyper(
        "auto", "How the likelihood reads the observed pairs: a dense matrix, the pairs, or whichever is smaller.")
    seed: int = hyper(0, "Seeds initial values and SVI draws; the same seed gives the same fit.", cli=None)
    progress: bool = hyper(True, "Show a progress bar.", cli=None, runtime=True)
    similarity_weight_items: float = hyper(
        1.0, "kappa_X, the question-similarity weight (lambda_X = kappa_X * pairs / questions^2); 0 switches it off.",
        minimum=0)
    similarity_weight_llms: float = hyper(
        1.0, "kappa_M, the LLM-similarity weight (lambda_M = kappa_M * pairs / LLMs^2); 0 switches it off.", minimum=0)
    similarity_on: Literal["augmented", "factors"] = hyper(
        "augmented", "augmented: the Gram of [factors, bias] meets the similarity (it then predicts a new "
        "question's difficulty); factors: the factors alone.")
    profile_scale: bool = hyper(True, "Fit the similarity's scale (closed form) instead of fixing it to 1.")
    similarity_mode: Literal["kernel", "cold", "joint"] = hyper(
        "kernel", "kernel: fold LLMs/questions without data in by GP regression on the similarity; cold: the Gram "
        "potential moving only those; joint: the paper's Gram potential on all.")
    fold_in_ridge_items: float = hyper(1.0, "GP nugget of the question fold-in (kernel mode); larger shrinks towards "
                                            "the average.", minimum=0)
    fold_in_ridge_llms: float = hyper(1.0, "GP nugget of the LLM fold-in (kernel mode); larger shrinks towards the "
                                           "average.", minimum=0)
    lowrank_rank: int = hyper(8, "Rank of the low-rank guide's covariance (guide lowrank).", cli="--rank", cli_min=1)
    population_draws: Literal["fixed", "bootstrap"] = hyper(
        "fixed", "How a posterior draw treats the population standing in for unseen entities: fixed, or "
        "bootstrap (resample the fitted members of each group per draw).")
    fold_in_spread: Literal["gaussian", "empirical"] = hyper(
        "gaussian", "Shape of a folded-in entity's logit spread against a fitted partner: gaussian, or empirical "
        "(the partner's own logits across the entity's group).")
    batch_size: int | None = hyper(
        None, "Training pairs per SVI step (minibatch SVI, log-likelihood scaled by pairs / batch size) "
        "[default: full batch].", cli_min=1)
    inference: Literal["svi", "gibbs"] = hyper(
        "svi", "svi: the variational guide above; gibbs: blocked Gibbs sampling (Polya-Gamma) with learned "
        "Normal-Wishart priors on LLM and question rows (mf, or simrmf/oracle in kernel mode).")
    prior: Literal["fixed", "learned"] | None = hyper(
        None, "fixed: N(0, 1/sqrt(2*lambda_reg)) factor entries and fixed bias scales; learned: Normal-Wishart "
        "populations of LLM and question rows (a mean per benchmark) fitted with the rows, svi with the normal or "
        "lowrank guide [default: fixed for svi; the gibbs sampler always learns them].")
    asymptotes: bool = hyper(
        False, "A guessing floor and a ceiling per question group (benchmark; one for all without groups), learned: "
        "p = floor + (ceiling - floor) * sigmoid(logit), the 4PL form (inference svi, prior fixed).")
    chains: int = hyper(4, "Gibbs chains, run side by side (inference gibbs).", minimum=1)
    warmup: int = hyper(300, "Gibbs sweeps per chain discarded before any is kept (inference gibbs).", minimum=0)
    samples: int = hyper(400, "Gibbs sweeps per chain after warm-up (inference gibbs).", minimum=1)
    thin: int = hyper(4, "Keep one Gibbs sweep in this many (inference gibbs).", minimum=1)
    gibbs_init: Literal["map", "random"] = hyper(
        "map", "Where Gibbs chains start: near a MAP fit (a short delta-guide SVI run; shorter warm-up), each chain "
        "jittered, or at small random rows (inference gibbs).")
    gibbs_scale_move: bool = hyper(
        False, "After each Gibbs sweep's rows, a Metropolis step on the scale of each latent dimension (LLM column "
        "x c, question column / c; the likelihood is unchanged) with the populations integrated out (inference "
        "gibbs).")
    gibbs_row_move: bool = hyper(
        False, "After each Gibbs sweep's rows, a random-walk Metropolis step on every whole LLM and question row, "
        "proposed from its population's spread, on the exact Bernoulli likelihood: moves questions that every LLM "
        "answered wrong (or right) faster (inference gibbs).")


@dataclass(eq=False, repr=False)
class CountingParams(Estimator):
    """The hyper-parameter of :class:`bayes_simrmf.predict.GroupAccuracy`."""

    method: ClassVar[str] = "counting"
    shrinkage: float = hyper(10.0, "Pseudo-count of the shrinkage of each LLM's group accuracy towards the group "
                                   "mean (method counting).", minimum=0)


def click_options(params: type[Estimator], *, only: typing.Iterable[str] | None = None):
    """A decorator adding one click option per hyper-parameter of ``params`` (those with a CLI name; ``only``
    narrows them): its type, choices, default and help all from the field. Integer bounds (``minimum`` or
    ``cli_min``) become ``click.IntRange``; float bounds are checked by the estimator before the command loads
    anything (one wording for library and CLI)."""
    import click

    hints = typing.get_type_hints(params)
    specs = [(name, spec) for name, spec in params._fields().items()
             if spec.metadata.get("cli") is not None and (only is None or name in only)]

    def decorate(command):
        for name, spec in reversed(specs):
            base, _ = _base_type(hints[name])
            flag = spec.metadata["cli"] or "--" + name.replace("_", "-")
            options = {"default": spec.default, "help": spec.metadata["help"], "show_default": spec.default is not None}
            if base is bool:
                decls = [f"{flag}/--no-{flag[2:]}", name]
            else:
                decls = [flag, name]
                if typing.get_origin(base) is Literal:
                    options["type"] = click.Choice(typing.get_args(base))
                elif base is int:
                    minimum = spec.metadata["minimum"] if spec.metadata["minimum"] is not None else spec.metadata["cli_min"]
                    options["type"] = click.IntRange(min=minimum) if minimum is not None else click.INT
                else:
                    options["type"] = base
            command = click.option(*decls, **options)(command)
        return command

    return decorate


def cli_params(params: type[Estimator], values: dict) -> dict:
    """The hyper-parameters of ``params`` among a command's ``values`` (its keyword arguments)."""
    return {name: values[name] for name in params._fields() if name in values}
