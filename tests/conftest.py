"""Shared test set-up: no network, small caches in temporary folders, a persistent JAX compilation cache."""

from __future__ import annotations

import os
from pathlib import Path

# Tests never reach the Hugging Face hub; without this an offline machine retries for ~70 s.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# JAX's persistent compilation cache (set before JAX is imported, and inherited by the CLI subprocesses the
# tests start): programs of the same shapes compiled by different tests or processes are compiled once. It lives
# outside the checkout, so a later run on the same machine starts warm; JAX_COMPILATION_CACHE_DIR overrides it.
# Every program is cached (threshold 0 s): small ones are many. Measured on 2 cores (python -m pytest, two
# workers): 446 s with an empty cache (a fresh virtual environment, .ci/run), 235 s with a warm one.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      str(Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "bayes-simrmf-tests" / "jax"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

# The package sets XLA_FLAGS on import, before any test starts JAX's backend (bayes_simrmf.runtime); the CLI
# subprocesses the tests start inherit it.
import bayes_simrmf  # noqa: E402,F401
