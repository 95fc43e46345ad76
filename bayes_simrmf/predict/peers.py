"""Peers (SMURFF Macau, cmfrec CMF) for the experiments: the samplers' own adapters and a wrapper that
gives them the package's estimator interface, so the protocol runner tunes, fits and scores them on the same
splits, validation carves and metrics as our methods (issue 12).

* :class:`CmfrecPeer`, :class:`SmurffPeer` work on pairs coded into the full entity lists and on dense feature
  matrices of every entity (see each class). ``experiments/bench/bench_peers.py`` uses them directly.
* :class:`PeerEstimator` wraps either behind ``fit(llm_ids, item_ids, correct, side=, llms=, items=,
  item_groups=)`` / ``predict(llm_ids, item_ids)``: the features are the rows of the package's square-root
  similarity factors (:class:`bayes_simrmf.similarity.SideInformation`, exactly what SimRMF gets), and, when item
  groups are given (each question's benchmark), one indicator column per group appended to the question
  features, so a peer gets the same information as ``SimRMF+groups``.

The peers are optional (``pip install -e ".[peers]"``); nothing here imports them until a fit.
"""

from __future__ import annotations

import importlib
import os
import shutil
import tempfile

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import ndtr

from bayes_simrmf.errors import ConfigError
from bayes_simrmf.params import Estimator, hyper

PEERS = ("smurff", "cmfrec")
CMFREC_CLIP = 1e-3


def missing_peers(names: list[str]) -> list[str]:
    """The peers that cannot be imported (not installed, or installed broken)."""
    missing = []
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


class CmfrecPeer:
    """cmfrec.CMF on the entities with data; the rest from their features by cmfrec's cold-start routines.

    ``fit`` takes pairs coded into the full entity lists and the feature matrices ``(n_llms, p)``,
    ``(n_items, q)`` of every entity; ``predict_codes`` gives clipped scores for any coded pairs.
    """

    def __init__(self, k: int = 8, lambda_: float = 10.0, w_user: float = 1.0, w_item: float = 1.0,
                 seed: int = 0, threads: int = 2) -> None:
        self.k, self.lambda_, self.w_user, self.w_item = int(k), float(lambda_), float(w_user), float(w_item)
        self.seed, self.threads = seed, threads

    def fit(self, llm, item, correct, llm_features, item_features) -> "CmfrecPeer":
        import cmfrec

        warm_llms, warm_items = np.unique(llm), np.unique(item)
        matrix = sp.coo_matrix((np.asarray(correct, np.float64), (np.searchsorted(warm_llms, llm),
                                                                   np.searchsorted(warm_items, item))),
                               shape=(len(warm_llms), len(warm_items)))
        model = cmfrec.CMF(k=self.k, lambda_=self.lambda_, w_user=self.w_user, w_item=self.w_item, method="als",
                           use_float=False, random_state=self.seed, nthreads=self.threads, verbose=False)
        model.fit(matrix, U=llm_features[warm_llms], I=item_features[warm_items])
        self.global_mean_ = float(model.glob_mean_)
        self.llm_factors_, self.llm_bias_ = self._all_rows(model.A_, model.user_bias_, warm_llms, llm_features,
                                                           model.factors_cold)
        self.item_factors_, self.item_bias_ = self._all_rows(model.B_, model.item_bias_, warm_items, item_features,
                                                             model.item_factors_cold)
        return self

    @staticmethod
    def _all_rows(fitted, bias, warm, features, cold_factors):
        factors = np.zeros((len(features), fitted.shape[1]))
        biases = np.zeros(len(features))  # a cold entity has no bias in cmfrec's cold-start prediction
        factors[warm] = fitted
        if len(bias):
            biases[warm] = bias
        for row in np.setdiff1d(np.arange(len(features)), warm):
            factors[row] = cold_factors(features[row])
        return factors, biases

    def predict_codes(self, llm, item) -> np.ndarray:
        score = (self.global_mean_ + self.llm_bias_[llm] + self.item_bias_[item]
                 + np.einsum("nd,nd->n", self.llm_factors_[llm], self.item_factors_[item]))
        return np.clip(score, CMFREC_CLIP, 1 - CMFREC_CLIP)


class SmurffPeer:
    """SMURFF Macau with probit noise on the whole LLM × question matrix (only training pairs observed).

    ``burnin`` Gibbs sweeps are discarded, then ``nsamples`` are run and every ``nsamples // n_saved``-th is
    kept; predictions are the mean of Φ(u·v) over the kept samples.
    """

    def __init__(self, num_latent: int = 16, burnin: int = 200, nsamples: int = 800, n_saved: int = 100,
                 seed: int = 0, threads: int = 2) -> None:
        self.num_latent, self.burnin, self.nsamples, self.n_saved = int(num_latent), burnin, nsamples, n_saved
        self.seed, self.threads = seed, threads

    def fit(self, llm, item, correct, llm_features, item_features) -> "SmurffPeer":
        import smurff

        scores = sp.csr_matrix((np.asarray(correct, np.float64), (llm, item)),
                               shape=(len(llm_features), len(item_features)))
        folder = tempfile.mkdtemp(prefix="bench_peers_smurff_")
        try:
            session = smurff.TrainSession(
                priors=["macau", "macau"], num_latent=self.num_latent, burnin=self.burnin, nsamples=self.nsamples,
                num_threads=self.threads, seed=self.seed, verbose=0, save_freq=max(1, self.nsamples // self.n_saved),
                save_name=os.path.join(folder, "chain.hdf5"))
            session.setTrain(scores, noise=smurff.ProbitNoise(0.5), is_scarce=True)  # 1 if the score is >= 0.5
            # Default side-information noise (SampledNoise): the link matrix's precision is sampled too.
            session.addSideInfo(0, np.ascontiguousarray(llm_features, np.float64), direct=True)
            session.addSideInfo(1, np.ascontiguousarray(item_features, np.float64), direct=True)
            session.init()
            while session.step():
                pass
            samples = session.makePredictSession().samples
            self.llm_latents_ = np.stack([np.asarray(sample.latents[0]) for sample in samples]).astype(np.float32)
            self.item_latents_ = np.stack([np.asarray(sample.latents[1]) for sample in samples]).astype(np.float32)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return self

    def sample_probs(self, llm, item):
        """Yield Φ(u·v) ``(n_pairs,)`` for each kept sample."""
        for llm_latent, item_latent in zip(self.llm_latents_, self.item_latents_):
            yield ndtr(np.einsum("nd,nd->n", llm_latent[llm], item_latent[item]).astype(np.float64))

    def predict_codes(self, llm, item) -> np.ndarray:
        return sum(self.sample_probs(llm, item)) / len(self.llm_latents_)


class SmurffDraws:
    """SMURFF's samples behind SimRMF's ``group_draws`` interface, so ``calibration.coverage`` scores both alike."""

    def __init__(self, peer: SmurffPeer, llms: np.ndarray, items: np.ndarray) -> None:
        self.peer = peer
        self.llm_code = pd.Index(llms)
        self.item_code = pd.Index(items)

    def group_draws(self, llm, item, *, by="llm", n_draws=100, unknown="population", seed=0, **_ignored):
        llm_codes, item_codes = self.llm_code.get_indexer(llm), self.item_code.get_indexer(item)
        group_codes, group_ids = pd.factorize(pd.Series(llm if by == "llm" else item))
        n_kept = len(self.peer.llm_latents_)
        chosen = set(np.linspace(0, n_kept - 1, min(n_draws, n_kept)).round().astype(int).tolist())
        rng = np.random.default_rng(seed)
        counts = np.bincount(group_codes, minlength=len(group_ids))
        means = []
        for index, prob in enumerate(self.peer.sample_probs(llm_codes, item_codes)):
            if index in chosen:
                answers = (rng.random(len(prob)) < prob).astype(float)  # the observed mean, as calibration.py
                means.append(np.bincount(group_codes, weights=answers, minlength=len(group_ids)) / counts)
        return np.asarray(group_ids, dtype=str), np.stack(means), counts


def group_indicators(item_groups: pd.Series, items: np.ndarray) -> np.ndarray:
    """``(n_items, n_groups)`` 0/1 columns, one per group of ``item_groups`` (a Series indexed by item id),
    rows in the order of ``items``; a question without a group gets a row of zeros."""
    labels = pd.Series(item_groups).reindex(pd.Index(items))
    codes, names = pd.factorize(labels)  # missing labels get code -1
    indicators = np.zeros((len(items), len(names)))
    present = codes >= 0
    indicators[np.flatnonzero(present), codes[present]] = 1.0
    return indicators


@dataclass(eq=False, repr=False)
class PeerEstimator(Estimator):
    """A peer behind the package's estimator interface (``fit`` / ``predict`` on entity ids, and the
    hyper-parameter conventions of :class:`bayes_simrmf.params.Estimator`).

    Args:
        peer: ``"cmfrec"`` or ``"smurff"`` (or a class with the :class:`CmfrecPeer` interface, for tests).
        seed: the peer's random seed.
        options: the peer's own hyper-parameters (``k``, ``lambda_``, ``w_user``, ``w_item`` for cmfrec;
            ``num_latent``, ``burnin``, ``nsamples``, ``n_saved`` for SMURFF; ``threads`` for both).
    """

    method: ClassVar[str] = "peer"
    peer: object = hyper("cmfrec", "cmfrec or smurff (or a peer class).", cli=None)
    seed: int = hyper(0, "The peer's random seed.", cli=None)
    options: dict = field(default_factory=dict, metadata={"help": "The peer's own hyper-parameters.", "cli": None})

    def fit(self, llm, item, correct, *, side, llms, items, item_groups=None) -> "PeerEstimator":
        classes = {"cmfrec": CmfrecPeer, "smurff": SmurffPeer}
        if isinstance(self.peer, str) and self.peer not in classes:
            raise ConfigError(f"unknown peer {self.peer!r}; choose from {sorted(classes)}")
        peer_class = classes[self.peer] if isinstance(self.peer, str) else self.peer
        if side is None or side.llm_factor is None or side.item_factor is None:
            raise ConfigError("a peer needs side information for both LLMs and questions (side=...)")
        self.llm_index_, self.item_index_ = pd.Index(np.asarray(llms)), pd.Index(np.asarray(items))
        llm_features = np.asarray(side.rows_for("llm", np.asarray(llms)), np.float64)
        item_features = np.asarray(side.rows_for("item", np.asarray(items)), np.float64)
        if item_groups is not None:
            item_features = np.hstack([item_features, group_indicators(item_groups, np.asarray(items))])
        self.n_features_ = (llm_features.shape[1], item_features.shape[1])
        llm_codes, item_codes = self._codes(llm, item)
        self.model_ = peer_class(seed=self.seed, **self.options).fit(
            llm_codes, item_codes, np.asarray(correct, np.float64), llm_features, item_features)
        return self

    def _codes(self, llm, item) -> tuple[np.ndarray, np.ndarray]:
        llm_codes = self.llm_index_.get_indexer(np.asarray(llm))
        item_codes = self.item_index_.get_indexer(np.asarray(item))
        for name, codes, ids in (("LLM", llm_codes, llm), ("question", item_codes, item)):
            if (codes < 0).any():
                unknown = pd.unique(np.asarray(ids)[codes < 0])
                raise ValueError(f"{len(unknown)} {name} id(s) were not in the entity list given to fit, "
                                 f"e.g. {list(unknown[:5])}")
        return llm_codes, item_codes

    def predict(self, llm, item, unknown: str = "population") -> np.ndarray:
        """P(correct) per pair; every id must be among the ``llms`` / ``items`` given to ``fit`` (the peers
        place an entity without training pairs from its features alone; ``unknown`` is accepted for the
        interface and has no other choice)."""
        self._require_fitted("model_")
        return np.asarray(self.model_.predict_codes(*self._codes(llm, item)), np.float64)
