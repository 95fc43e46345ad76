"""The probabilistic model: the SimRMF NumPyro program and what it is made of.

- :mod:`~bayes_simrmf.model.sites`: names of the sample sites;
- :mod:`~bayes_simrmf.model.config`: :class:`ModelConfig`, the model's hyper-parameters;
- :mod:`~bayes_simrmf.model.inputs`: where the observed pairs are, and the similarity factors;
- :mod:`~bayes_simrmf.model.predictor`: the one linear predictor (logits of pairs or of a grid) and σ;
- :mod:`~bayes_simrmf.model.program`: :func:`simrmf_model`, the joint density (the paper's loss).
"""

from bayes_simrmf.model.config import ModelConfig
from bayes_simrmf.model.inputs import DenseLayout, PairsLayout, SimilarityInputs
from bayes_simrmf.model.predictor import grid_logits, pair_logits, sigmoid
from bayes_simrmf.model.program import simrmf_model
from bayes_simrmf.model.sites import *  # noqa: F403 (the site names, listed in sites.__all__)
from bayes_simrmf.model.sites import __all__ as _SITES

__all__ = [*_SITES, "DenseLayout", "ModelConfig", "PairsLayout", "SimilarityInputs", "grid_logits", "pair_logits",
           "sigmoid", "simrmf_model"]
