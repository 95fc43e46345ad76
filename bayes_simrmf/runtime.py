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
"""

from __future__ import annotations

import ctypes
import os
import sys

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
