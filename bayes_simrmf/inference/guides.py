"""The variational families: delta (MAP), mean-field normal, low-rank normal."""

from __future__ import annotations


from numpyro.infer.autoguide import AutoDelta, AutoLowRankMultivariateNormal, AutoNormal
from numpyro.infer.initialization import init_to_value

from bayes_simrmf.model import (
    simrmf_model,
)
from bayes_simrmf.inference.config import InferenceConfig


def make_guide(config: InferenceConfig, init_values: dict):
    """The autoguide named by ``config.guide``, started at ``init_values``."""
    init_loc_fn = init_to_value(values=init_values)
    if config.guide == "delta":
        return AutoDelta(simrmf_model, init_loc_fn=init_loc_fn)
    if config.guide == "normal":
        return AutoNormal(simrmf_model, init_loc_fn=init_loc_fn, init_scale=0.01)
    return AutoLowRankMultivariateNormal(
        simrmf_model, init_loc_fn=init_loc_fn, rank=config.lowrank_rank, init_scale=0.01
    )


