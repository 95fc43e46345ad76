"""Process settings for speed and memory on small machines: one OpenBLAS thread, few malloc arenas.

``bayes-simrmf`` applies them when it starts (:func:`configure_process`); a script using the package can call it
first thing, before NumPy is imported, to run as the CLI does. Measured on 2 shared cores
(``experiments/results/bench_threads.md``, ``bench_scale_paper.md``):

* one OpenBLAS thread: the fits run in XLA, which has its own thread pool; a BLAS pool beside it only competes with
  it (the CLI's end-to-end fits ran 1.36-1.51x faster than with a BLAS thread per core);
* two malloc arenas (glibc): XLA's worker threads each allocate a step's temporaries from their own arena, and the
  freed blocks of one arena are not reused by another, so a long fit's resident memory crept up chunk after chunk
  (paper scale: peak 986 MiB with the default of 8 arenas per core, 782 MiB with two, together with buffer
  donation in the compiled steps).

Settings the user made win: ``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` and ``MALLOC_ARENA_MAX`` in the
environment are left alone.

One setting is applied on ``import bayes_simrmf`` itself, as it is about correctness, not speed
(:func:`avoid_lapack_deadlock`): jaxlib 0.10 and later split a batched LAPACK call (Cholesky, triangular
solve) over XLA's CPU thread pool and wait for the parts on a pool thread, so two such calls that XLA runs side
by side can hold every thread of a small pool waiting for work none is left to run. On 2 cores this froze the
Gibbs sampler for good (a routing fit on openllm-v2 at 0 % CPU, native stacks in ``ParallelBatchMap`` under
``lapack_spotrf_ffi`` and ``lapack_strsm_ffi``; the bare reproducer in ``tests/test_runtime.py``). XLA's
concurrency-optimised scheduler is what puts such calls side by side; with it off the reproducer and the sampler
finish (``experiments/bench/bench_gibbs.py``: the same draws, ~6 % slower on 2 cores).
"""

from __future__ import annotations

import ctypes
import os
import sys
import warnings
from importlib import metadata

#: glibc's ``mallopt`` parameter for the maximum number of malloc arenas (malloc.h: ``M_ARENA_MAX``).
_M_ARENA_MAX = -8


def configure_process(*, blas_threads: int = 1, malloc_arenas: int = 2) -> dict[str, int]:
    """Apply the settings this process does not have yet; returns what was applied.

    The BLAS thread count is read by OpenBLAS when NumPy loads, so it applies only before NumPy is imported
    (the CLI calls this before importing anything heavy). The arena limit applies to arenas created afterwards,
    i.e. to the threads JAX starts on first use.
    """
    applied: dict[str, int] = {}
    blas_chosen = "OPENBLAS_NUM_THREADS" in os.environ or "OMP_NUM_THREADS" in os.environ
    if not blas_chosen and "numpy" not in sys.modules:
        os.environ["OPENBLAS_NUM_THREADS"] = str(int(blas_threads))
        applied["blas_threads"] = int(blas_threads)
    if "MALLOC_ARENA_MAX" not in os.environ and sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6")
        except OSError:  # not glibc (e.g. musl): nothing to limit
            return applied
        if libc.mallopt(_M_ARENA_MAX, int(malloc_arenas)) == 1:
            applied["malloc_arenas"] = int(malloc_arenas)
    return applied


#: The XLA flag :func:`avoid_lapack_deadlock` turns off (its value is left alone if XLA_FLAGS names it).
DEADLOCK_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"


def _parallel_lapack_jaxlib() -> bool:
    """Whether the installed jaxlib splits batched LAPACK calls over the thread pool (0.10 and later; the change
    that stops it in open-source builds is in no release on PyPI yet)."""
    try:
        version = metadata.version("jaxlib")
    except metadata.PackageNotFoundError:
        return False
    parts = []
    for part in version.split(".")[:2]:
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts) >= (0, 10)


def _backend_started() -> bool:
    """Whether JAX has created a backend already (its XLA flags are then fixed for this process)."""
    if "jax" not in sys.modules:
        return False
    try:
        from jax._src import xla_bridge
    except ImportError:  # a JAX without this private module: assume the worst, so the user hears of it
        return True
    return bool(getattr(xla_bridge, "_backends", {}))


def avoid_lapack_deadlock() -> bool:
    """Turn off XLA's concurrency-optimised CPU scheduler for this process unless the user chose it in
    ``XLA_FLAGS`` (see the module docstring for why); returns whether it changed ``XLA_FLAGS``.

    It must run before JAX creates its backend; if that has happened, a warning says how to set it instead.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if DEADLOCK_FLAG in flags or not _parallel_lapack_jaxlib():
        return False
    if _backend_started():
        warnings.warn(
            f"JAX started before bayes_simrmf was imported, so it runs without {DEADLOCK_FLAG}=false; with this "
            "jaxlib, batched Cholesky and triangular solves run side by side can freeze a machine with few cores "
            f"(the Gibbs sampler). Import bayes_simrmf before using JAX, or set XLA_FLAGS='{DEADLOCK_FLAG}=false'.",
            RuntimeWarning,
            stacklevel=3,
        )
        return False
    os.environ["XLA_FLAGS"] = f"{flags} {DEADLOCK_FLAG}=false".strip()
    return True
