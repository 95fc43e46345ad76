"""The fitted posterior as plain arrays: a Gaussian over the model's real-valued sites.

Every guide the package fits is Gaussian in the model's (unconstrained, here real-valued)
parameters: ``delta`` is a point (zero spread), ``normal`` is mean-field and ``lowrank`` adds a
low-rank covariance shared by all sites. :class:`GaussianPosterior` holds it per site as

    draw = loc + Σₖ zₖ · cov_factor[k] + scale ⊙ ε,      z ~ N(0, I_r), ε ~ N(0, I),

with one ``z`` shared across sites in a draw. Being arrays, it is saved with the model (so a
loaded model still gives intervals) and sampled without the NumPyro guide or the training data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bayes_simrmf.errors import ConfigError, ModelFormatError


@dataclass
class GaussianPosterior:
    """Per-site Gaussian posterior.

    Attributes:
        loc: site name → mean array (the site's shape).
        scale: site name → sd of the independent part (same shape); zeros for a point estimate.
        cov_factor: site name → ``(rank, *shape)`` low-rank part (empty dict for mean-field).
        guide: the guide it came from ("delta", "normal" or "lowrank").
    """

    loc: dict[str, np.ndarray]
    scale: dict[str, np.ndarray]
    cov_factor: dict[str, np.ndarray] = field(default_factory=dict)
    guide: str = "delta"

    def __post_init__(self) -> None:
        for name, value in self.loc.items():
            if name not in self.scale:
                raise ModelFormatError(f"posterior site {name!r} has a loc but no scale")
            if np.shape(self.scale[name]) != np.shape(value):
                raise ModelFormatError(
                    f"posterior site {name!r}: scale shape {np.shape(self.scale[name])} != loc shape {np.shape(value)}"
                )
            if name in self.cov_factor and np.shape(self.cov_factor[name])[1:] != np.shape(value):
                raise ModelFormatError(
                    f"posterior site {name!r}: cov_factor shape {np.shape(self.cov_factor[name])} does not end in "
                    f"the site's shape {np.shape(value)}"
                )

    @property
    def rank(self) -> int:
        return int(next(iter(self.cov_factor.values())).shape[0]) if self.cov_factor else 0

    @property
    def n_draws(self) -> int:
        """How many draws a prediction averages over by default (a point needs one)."""
        return 1 if self.is_point else 100

    @property
    def is_point(self) -> bool:
        return not self.cov_factor and all(not np.any(s) for s in self.scale.values())

    @classmethod
    def point(cls, values: dict[str, np.ndarray]) -> GaussianPosterior:
        """A point mass at ``values`` (the delta guide)."""
        loc = {name: np.asarray(v, dtype=np.float32) for name, v in values.items()}
        return cls(loc, {name: np.zeros_like(v) for name, v in loc.items()}, {}, "delta")

    @classmethod
    def from_svi(cls, guide_name: str, guide, guide_params: dict, point: dict[str, np.ndarray]) -> GaussianPosterior:
        """Read the Gaussian out of a fitted NumPyro autoguide.

        Sites the guide does not treat as real-valued Gaussians (the positive bias scales of the
        hierarchical variant) keep their point value with zero spread.
        """
        point = {name: np.asarray(v, dtype=np.float32) for name, v in point.items()}
        if guide_name == "delta":
            return cls.point(point)
        loc = dict(point)
        scale = {name: np.zeros_like(v) for name, v in point.items()}
        cov_factor: dict[str, np.ndarray] = {}
        if guide_name == "normal":
            for name in point:
                site = guide.prototype_trace.get(name)
                real = site is not None and str(site["fn"].support) in ("Real()", "IndependentConstraint(Real(), 1)")
                if real and f"{name}_auto_loc" in guide_params:
                    loc[name] = np.asarray(guide_params[f"{name}_auto_loc"], dtype=np.float32)
                    scale[name] = np.asarray(guide_params[f"{name}_auto_scale"], dtype=np.float32)
            return cls(loc, scale, {}, guide_name)
        if guide_name == "lowrank":
            import jax.numpy as jnp

            distribution = guide.get_posterior(guide_params)
            unpack = guide._unpack_latent  # site shapes in the guide's flattening order
            loc_sites = unpack(distribution.loc)
            scale_sites = unpack(jnp.sqrt(distribution.cov_diag))
            factor_sites = unpack(jnp.asarray(distribution.cov_factor).T)
            for name in loc_sites:
                if name in point:
                    loc[name] = np.asarray(loc_sites[name], dtype=np.float32)
                    scale[name] = np.asarray(scale_sites[name], dtype=np.float32)
                    cov_factor[name] = np.asarray(factor_sites[name], dtype=np.float32)
            return cls(loc, scale, cov_factor, guide_name)
        raise ConfigError(f"unknown guide {guide_name!r}")

    def sample(self, n_draws: int, seed: int = 0) -> dict[str, np.ndarray]:
        """``n_draws`` joint draws: site name → ``(n_draws, *shape)`` float32."""
        if n_draws < 1:
            raise ConfigError(f"n_draws must be >= 1, got {n_draws}")
        rng = np.random.default_rng([int(seed), 11])
        shared = rng.standard_normal((n_draws, self.rank)).astype(np.float32)
        draws = {}
        for name in sorted(self.loc):
            loc, scale = self.loc[name], self.scale[name]
            value = np.broadcast_to(loc, (n_draws, *np.shape(loc))).astype(np.float32)
            if np.any(scale):
                value = value + scale * rng.standard_normal((n_draws, *np.shape(loc))).astype(np.float32)
            if name in self.cov_factor:
                value = value + np.tensordot(shared, self.cov_factor[name], axes=(1, 0)).astype(np.float32)
            draws[name] = value
        return draws

    def get_state(self) -> dict[str, np.ndarray]:
        state = {"posterior/guide": np.asarray(self.guide)}
        for part, values in (("loc", self.loc), ("scale", self.scale), ("cov_factor", self.cov_factor)):
            for name, value in values.items():
                state[f"posterior/{part}/{name}"] = np.asarray(value)
        return state

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> GaussianPosterior | None:
        """The posterior stored by :meth:`get_state`, or None if ``state`` holds none."""
        if "posterior/guide" not in state:
            return None
        parts: dict[str, dict[str, np.ndarray]] = {"loc": {}, "scale": {}, "cov_factor": {}}
        for key, value in state.items():
            if key.startswith("posterior/") and key != "posterior/guide":
                _, part, name = key.split("/", 2)
                if part not in parts:
                    raise ModelFormatError(f"unknown posterior entry {key!r} in the saved state")
                parts[part][name] = np.asarray(value)
        return cls(parts["loc"], parts["scale"], parts["cov_factor"], str(state["posterior/guide"]))
