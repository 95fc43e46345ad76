"""The SVI runs' ELBO: NumPyro's value, summed in an order that does not depend on the process."""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from numpyro.infer import SVI, Trace_ELBO
from numpyro.infer.autoguide import AutoNormal

from bayes_simrmf.inference.elbo import OrderedTraceELBO
from bayes_simrmf.model import ModelConfig, PairsLayout, simrmf_model

_PROGRAM = """
import hashlib, jax, jax.numpy as jnp, numpy as np, optax
from numpyro.infer import SVI
from numpyro.infer.autoguide import AutoNormal
from bayes_simrmf.inference.elbo import OrderedTraceELBO
from bayes_simrmf.model import ModelConfig, PairsLayout, simrmf_model
rng = np.random.default_rng(0)
layout = PairsLayout(jnp.asarray(rng.integers(0, 6, 40), jnp.int32), jnp.asarray(rng.integers(0, 9, 40), jnp.int32))
correct = jnp.asarray(rng.random(40) < 0.4, jnp.float32)
guide = AutoNormal(simrmf_model)
svi = SVI(simrmf_model, guide, optax.adam(0.01), OrderedTraceELBO(num_particles=2))
args = (6, 9, layout, ModelConfig(dim=2))
step = jax.jit(lambda key: svi.update(svi.init(key, *args, correct=correct), *args, correct=correct))
print(hashlib.sha256(step.lower(jax.random.PRNGKey(0)).as_text().encode()).hexdigest())
"""


def _data(n_llms=10, n_items=15, n_pairs=200):
    rng = np.random.default_rng(0)
    layout = PairsLayout(jnp.asarray(rng.integers(0, n_llms, n_pairs), jnp.int32),
                         jnp.asarray(rng.integers(0, n_items, n_pairs), jnp.int32))
    return (n_llms, n_items, layout, ModelConfig(dim=2)), jnp.asarray(rng.random(n_pairs) < 0.4, jnp.float32)


@pytest.mark.parametrize("num_particles", [1, 3])
def test_the_ordered_elbo_is_numpyros_value_from_the_same_draws(num_particles):
    args, correct = _data()
    guide = AutoNormal(simrmf_model)
    svi = SVI(simrmf_model, guide, optax.adam(0.01), Trace_ELBO())

    @jax.jit
    def losses(key):
        params = svi.get_params(svi.init(jax.random.PRNGKey(0), *args, correct=correct))
        return [elbo(num_particles=num_particles).loss(key, params, simrmf_model, guide, *args, correct=correct)
                for elbo in (Trace_ELBO, OrderedTraceELBO)]

    numpyro_loss, ordered_loss = (float(loss) for loss in losses(jax.random.PRNGKey(3)))
    assert ordered_loss == pytest.approx(numpyro_loss, rel=1e-6)
    # Another key draws other guide samples: the value is not a constant.
    assert abs(float(losses(jax.random.PRNGKey(4))[1]) - ordered_loss) > 1e-3


def test_the_compiled_step_is_the_same_program_whatever_the_hash_seed():
    # With NumPyro's Trace_ELBO the two programs differ in the order of their additions (the sites are summed
    # over a set of names), and JAX's persistent compilation cache misses in every new process.
    hashes = set()
    for hash_seed in ("1", "2"):
        done = subprocess.run([sys.executable, "-c", _PROGRAM], capture_output=True, text=True, timeout=300,
                              env={**os.environ, "PYTHONHASHSEED": hash_seed})
        assert done.returncode == 0, done.stderr[-2000:]
        hashes.add(done.stdout.strip())
    assert len(hashes) == 1
