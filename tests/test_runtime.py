"""The process setting that keeps batched LAPACK calls from freezing a small machine (``bayes_simrmf.runtime``)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bayes_simrmf.runtime import DEADLOCK_FLAG, _parallel_lapack_jaxlib

pytestmark = pytest.mark.skipif(not _parallel_lapack_jaxlib(), reason="this jaxlib does not split LAPACK batches")

# Two independent batched Cholesky factorisations in one compiled loop: with jaxlib 0.10's thread-pool split and
# XLA's concurrency-optimised scheduler this froze at 0 % CPU on 2 cores, every time (as the Gibbs sampler did).
REPRODUCER = """
import bayes_simrmf
import jax, jax.numpy as jnp
x = jax.random.normal(jax.random.PRNGKey(0), (2000, 9, 9))
a = x @ jnp.swapaxes(x, -1, -2) + 9 * jnp.eye(9)
def body(i, carry):
    a, b = carry
    la, lb = jnp.linalg.cholesky(a), jnp.linalg.cholesky(b)
    return a + 1e-6 * jnp.mean(lb), b + 1e-6 * jnp.mean(la)
run = jax.jit(lambda c: jax.lax.fori_loop(0, 50, body, c))
for _ in range(10):
    out = run((a, a + 1.0))
    out[0].block_until_ready()
print("finished", bool(jnp.all(jnp.isfinite(out[0]))))
"""


def _python(code: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key != "XLA_FLAGS"}
    environment.update(env or {})
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment,
                          timeout=timeout)


def test_importing_the_package_turns_the_scheduler_off_unless_the_user_chose():
    show = "import os, bayes_simrmf; print(os.environ.get('XLA_FLAGS'))"
    assert _python(show).stdout.strip() == f"{DEADLOCK_FLAG}=false"
    kept = f"--xla_cpu_enable_fast_math=false {DEADLOCK_FLAG}=true"
    assert _python(show, {"XLA_FLAGS": kept}).stdout.strip() == kept
    other = _python(show, {"XLA_FLAGS": "--xla_cpu_enable_fast_math=false"}).stdout.strip()
    assert other == f"--xla_cpu_enable_fast_math=false {DEADLOCK_FLAG}=false"


def test_a_backend_started_before_the_import_is_reported_not_changed():
    late = _python("import jax.numpy as jnp; jnp.ones(1).block_until_ready()\n"
                   "import os, warnings\nwarnings.simplefilter('always')\nimport bayes_simrmf\n"
                   "print(os.environ.get('XLA_FLAGS'))")
    assert late.returncode == 0, late.stderr
    assert late.stdout.strip() == "None"
    assert "JAX started before bayes_simrmf was imported" in late.stderr and DEADLOCK_FLAG in late.stderr


def test_side_by_side_batched_cholesky_finishes_after_the_import():
    """The reproducer runs to the end in a fresh process once the package is imported (a freeze fails the test
    at the subprocess timeout, far beyond the ~1 s the loop takes)."""
    try:
        done = _python(REPRODUCER)
    except subprocess.TimeoutExpired:
        pytest.fail("two batched Cholesky factorisations side by side froze (XLA's CPU pool deadlock)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "finished True"
