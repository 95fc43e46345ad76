"""The variational families: delta (MAP), mean-field normal, low-rank normal."""

from __future__ import annotations


import jax
import numpy as np
from numpyro import handlers
from numpyro.infer.autoguide import AutoDelta, AutoLowRankMultivariateNormal, AutoNormal
from numpyro.infer.initialization import init_to_value

from bayes_simrmf.model import (
    PairsLayout,
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


def prepare_guide(guide, model_args: tuple, model_kwargs: dict, rng_key: jax.Array) -> None:
    """Set up ``guide``'s prototype (its latent sites, shapes, plates and initial values), compiled.

    An autoguide inspects the model on its first call: NumPyro runs the model and the gradient of its density
    op by op there, compiling hundreds of small XLA programs (6-8 s on mmlupro-math, 20-30 s at the paper's
    scale, on 2 cores). Only the latent sites matter to the guide, and they depend neither on the observed pairs
    nor on the similarity potentials, so the set-up runs here on one stand-in pair without potentials, inside
    one jit-compiled call. Everything it keeps is static (sites, shapes, plates, supports, and functions bound to
    the stand-in arguments, which are constants) except the initial values, which come back as the call's
    outputs and replace their traced copies: the same initial values, so the same fit.
    """
    n_llms, n_items, _, model_config = model_args
    item_group = model_kwargs["item_group"]
    stand_in = PairsLayout(llm=np.zeros(1, np.int32), item=np.zeros(1, np.int32))
    key = jax.random.fold_in(rng_key, 2)

    def set_up():
        with handlers.block(), handlers.seed(rng_seed=key):
            guide(n_llms, n_items, stand_in, model_config, correct=np.zeros(1, np.float32), similarity=None,
                  item_group=item_group)
        return {name: getattr(guide, name) for name in _INITIAL_VALUES if hasattr(guide, name)}

    for name, value in jax.jit(set_up)().items():
        setattr(guide, name, value)


#: The guide attributes holding initial values (traced during the compiled set-up, then set to their values).
_INITIAL_VALUES = ("_init_locs", "_init_latent")
