"""The ELBO the SVI runs optimise: :class:`OrderedTraceELBO`."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from numpyro.handlers import replay, seed
from numpyro.infer import Trace_ELBO
from numpyro.infer.util import log_density


class OrderedTraceELBO(Trace_ELBO):
    """NumPyro's ``Trace_ELBO`` (the same draws from the same keys, the same value), with the sites summed in the
    order the model and the guide visit them.

    ``Trace_ELBO`` sums over a Python ``set`` of site names, whose order changes with each process's string-hash
    seed: the compiled step then differs from one process to the next in the order of its additions, so JAX's
    persistent compilation cache never finds it again (each new process recompiled the SVI step, 3-4 s for a small
    model) and the last bits of a loss depended on the process. Here each density is summed in trace order.
    Mutable state and multi-sample guides, which this package does not use, are not supported.
    """

    def loss_with_mutable_state(self, rng_key, param_map, model, guide, *args, **kwargs):
        def one_particle(key):
            model_key, guide_key = jax.random.split(key)
            guide_log_density, guide_trace = log_density(seed(guide, guide_key), args, kwargs, param_map)
            model_log_density, _ = log_density(replay(seed(model, model_key), guide_trace), args, kwargs, param_map)
            return model_log_density - guide_log_density

        if self.num_particles == 1:
            elbo = one_particle(rng_key)
        else:
            elbo = jnp.mean(jax.vmap(one_particle)(jax.random.split(rng_key, self.num_particles)))
        return {"loss": -elbo, "mutable_state": None}
