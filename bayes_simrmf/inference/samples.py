"""A posterior held as draws (the Gibbs sampler's), with the same interface as the Gaussian one.

:class:`SamplePosterior` keeps every kept draw of every site as ``(chains, draws, *shape)`` float32 arrays, so a
saved and reloaded model gives identical intervals. :meth:`SamplePosterior.sample` hands them out: all of
them, in order, when as many are asked as are kept, else a seeded choice (without replacement while there
are enough). Entities folded in after the fit are appended to every draw (:meth:`SamplePosterior.appended`),
so a new LLM or question is as uncertain as the draw it was folded into.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayes_simrmf.errors import ConfigError, ModelFormatError


@dataclass
class SamplePosterior:
    """Kept draws of a sampler.

    Attributes:
        draws: site name → ``(chains, kept, *shape)`` float32.
        guide: the inference that made them ("gibbs").
    """

    draws: dict[str, np.ndarray]
    guide: str = "gibbs"

    def __post_init__(self) -> None:
        shapes = {name: np.shape(value)[:2] for name, value in self.draws.items()}
        if not shapes or len(set(shapes.values())) != 1 or any(len(shape) < 2 for shape in shapes.values()):
            raise ModelFormatError(f"posterior draws must share their (chains, draws) axes; got {shapes}")

    @property
    def chains(self) -> int:
        return int(next(iter(self.draws.values())).shape[0])

    @property
    def draws_per_chain(self) -> int:
        return int(next(iter(self.draws.values())).shape[1])

    @property
    def n_draws(self) -> int:
        return self.chains * self.draws_per_chain

    @property
    def is_point(self) -> bool:
        return False

    @property
    def loc(self) -> dict[str, np.ndarray]:
        """Posterior mean of each site (factors after rotation alignment; see ``gibbs.align_rotations``)."""
        return {name: value.mean(axis=(0, 1)) for name, value in self.draws.items()}

    @property
    def nbytes(self) -> int:
        return int(sum(value.nbytes for value in self.draws.values()))

    def flat(self, name: str) -> np.ndarray:
        """The draws of one site with chains and draws merged: ``(n_draws, *shape)``."""
        value = self.draws[name]
        return value.reshape(-1, *value.shape[2:])

    def indices(self, n_draws: int, seed: int) -> np.ndarray:
        """Which kept draws :meth:`sample` returns: all in order for ``n_draws == n_draws kept``, else a seeded
        choice, without replacement up to the number kept."""
        if n_draws < 1:
            raise ConfigError(f"n_draws must be >= 1, got {n_draws}")
        if n_draws == self.n_draws:
            return np.arange(n_draws)
        rng = np.random.default_rng([int(seed), 17])
        return np.sort(rng.choice(self.n_draws, n_draws, replace=n_draws > self.n_draws))

    def sample(self, n_draws: int, seed: int = 0, *, copy: bool = True) -> dict[str, np.ndarray]:
        """``n_draws`` joint draws: site name → ``(n_draws, *shape)`` float32 (see :meth:`indices`).

        With ``copy=False``, asking for every kept draw gives read-only views of the kept arrays instead of a
        copy (at openllm-v2's scale the question factors alone are gigabytes); a subset is always a copy."""
        rows = self.indices(n_draws, seed)
        if not copy and n_draws == self.n_draws:
            views = {name: self.flat(name).view() for name in sorted(self.draws)}
            for value in views.values():
                value.flags.writeable = False
            return views
        return {name: self.flat(name)[rows] for name in sorted(self.draws)}

    def appended(self, site_rows: dict[str, np.ndarray]) -> SamplePosterior:
        """This posterior with rows added along the entity axis (axis 0 of a site's shape) of some sites:
        ``site_rows[name]`` is ``(n_draws, m, …)`` in the order of :meth:`flat`."""
        draws = dict(self.draws)
        for name, rows in site_rows.items():
            rows = np.asarray(rows, np.float32).reshape(self.chains, self.draws_per_chain, *np.shape(rows)[1:])
            draws[name] = np.concatenate([draws[name], rows], axis=2)
        return SamplePosterior(draws, self.guide)

    def prediction_diagnostics(self, llm: np.ndarray, item: np.ndarray, max_pairs: int = 2000, seed: int = 0,
                               threshold: float = 1.01) -> dict:
        """R-hat and bulk ESS (ArviZ, rank-normalised split R-hat) of the predictions a user reads: the
        probability of each of at most ``max_pairs`` of the coded pairs ``(llm, item)`` (a seeded sample) and
        each LLM's and each question's mean probability over those pairs.

        Returns:
            ``{"max_rhat", "min_ess_bulk", "n_summaries"}``: the worst value over every summary;
            ``"share_above"``: the share of summaries whose R-hat exceeds ``threshold``; ``"by_kind"``: for
            ``"pair"``, ``"llm"`` and ``"item"`` summaries, ``{"n", "max_rhat", "median_rhat", "n_above",
            "min_ess_bulk"}``.
        """
        import arviz as az

        from bayes_simrmf.model.predictor import pair_logits, sigmoid

        llm, item = np.asarray(llm), np.asarray(item)
        if len(llm) > max_pairs:
            rows = np.sort(np.random.default_rng([int(seed), 23]).choice(len(llm), max_pairs, replace=False))
            llm, item = llm[rows], item[rows]
        params = {name: self.flat(name) for name in self.draws}
        prob = sigmoid(pair_logits(params, llm, item)).reshape(self.chains, self.draws_per_chain, -1)
        summaries = {"pair": prob}
        for kind, codes in (("llm", llm), ("item", item)):
            inverse = np.unique(codes, return_inverse=True)[1].ravel()
            counts = np.bincount(inverse)
            sums = np.zeros((self.chains, self.draws_per_chain, len(counts)))
            np.add.at(sums, (slice(None), slice(None), inverse), prob)
            summaries[kind] = sums / counts
        by_kind, all_rhat, all_ess = {}, [], []
        for kind, values in summaries.items():
            dataset = az.convert_to_dataset({"prediction": values})
            rhat = az.rhat(dataset)["prediction"].to_numpy()
            ess = az.ess(dataset, method="bulk")["prediction"].to_numpy()
            all_rhat.append(rhat)
            all_ess.append(ess)
            by_kind[kind] = {"n": int(values.shape[2]), "max_rhat": float(np.nanmax(rhat)),
                             "median_rhat": float(np.nanmedian(rhat)), "n_above": int(np.sum(rhat > threshold)),
                             "min_ess_bulk": float(np.nanmin(ess))}
        rhat, ess = np.concatenate(all_rhat), np.concatenate(all_ess)
        return {"max_rhat": float(np.nanmax(rhat)), "min_ess_bulk": float(np.nanmin(ess)),
                "n_summaries": int(len(rhat)), "share_above": float(np.mean(rhat > threshold)), "by_kind": by_kind}

    def get_state(self) -> dict[str, np.ndarray]:
        state = {"posterior/guide": np.asarray(self.guide)}
        for name, value in self.draws.items():
            state[f"posterior/draws/{name}"] = np.asarray(value)
        return state

    @classmethod
    def from_state(cls, state) -> SamplePosterior | None:
        """The posterior stored by :meth:`get_state`, or None if ``state`` holds no draws."""
        draws = {key.split("/", 2)[2]: np.asarray(value) for key, value in state.items()
                 if key.startswith("posterior/draws/")}
        if not draws:
            return None
        return cls(draws, str(state["posterior/guide"]))
