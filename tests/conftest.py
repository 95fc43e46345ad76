"""Shared test set-up: no network, small caches in temporary folders."""

from __future__ import annotations

import os

# Tests never reach the Hugging Face hub; without this an offline machine retries for ~70 s.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
