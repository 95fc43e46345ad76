"""The on-disk cache of computed sentence embeddings.

Embedding 10^5 questions takes hours on a CPU, so :func:`embed_texts` keeps every vector it computes on disk,
keyed by (model id, model revision or weights hash, prompt, max_seq_length) and by the sha256 of each text:
a second run over the same texts embeds nothing. Vectors are written in chunks, each to a temporary file that is
then renamed into place (``os.replace`` is atomic), so an interrupted run keeps every finished chunk and no reader
ever sees a half-written file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bayes_simrmf import interrupts
from bayes_simrmf.similarity.embedding_models import EmbeddingModelSpec

__all__ = ["default_cache_dir"]

_ENV_CACHE_DIR = "BAYES_SIMRMF_CACHE"
_CHUNK_PREFIX = "emb-"
_TEMP_PREFIX = ".tmp-"


def _text_sha256(text: str) -> str:
    """Full sha256 hex digest of the UTF-8 text: the per-text cache key."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def default_cache_dir() -> Path:
    """Embedding cache folder: ``$BAYES_SIMRMF_CACHE`` if set, else ``~/.cache/bayes_simrmf/embeddings``."""
    configured = os.environ.get(_ENV_CACHE_DIR)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "bayes_simrmf" / "embeddings"


def _cache_entry_dir(cache_dir: Path, spec: EmbeddingModelSpec) -> Path:
    """One folder per model identity, named by a readable slug plus a hash of the full cache key."""
    key_json = json.dumps(spec.cache_key(), sort_keys=True)
    key_hash = hashlib.sha256(key_json.encode("utf-8")).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", spec.model_id)[-60:].strip("_") or "model"
    return cache_dir / f"{slug}-{key_hash}"


def _atomic_write_bytes_via(path: Path, write: Any) -> None:
    """Write a file through ``write(handle)`` into a temp file in the same folder, then rename it into place.

    A crash leaves at most a ``.tmp-*`` file, which readers ignore; the final name only ever holds a whole file.
    """
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=_TEMP_PREFIX, suffix=path.suffix)
    # Removed on an error or when Ctrl-C ends the CLI: never a temp file left behind when we can help it.
    with interrupts.written_into_place(temp_name, path), os.fdopen(fd, "wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())


def _prepare_cache_entry(entry_dir: Path, spec: EmbeddingModelSpec) -> None:
    entry_dir.mkdir(parents=True, exist_ok=True)
    key_file = entry_dir / "key.json"
    if not key_file.exists():
        # Human-readable record of what the folder holds; the folder name already encodes it.
        payload = json.dumps(spec.cache_key(), indent=2, sort_keys=True).encode("utf-8")
        _atomic_write_bytes_via(key_file, lambda handle: handle.write(payload))


def _read_cache_entry(entry_dir: Path) -> dict[str, np.ndarray]:
    """All cached vectors of one model identity: text sha256 (hex) -> float32 vector (r,).

    Unreadable chunk files are skipped with a warning attributed to the caller of ``embed_texts``.
    """
    vectors: dict[str, np.ndarray] = {}
    if not entry_dir.is_dir():
        return vectors
    for chunk_file in sorted(entry_dir.glob(f"{_CHUNK_PREFIX}*.npz")):
        try:
            with np.load(chunk_file, allow_pickle=False) as chunk:
                hashes = chunk["text_sha256"]
                embeddings = np.asarray(chunk["embeddings"], dtype=np.float32)
            if embeddings.ndim != 2 or embeddings.shape[0] != hashes.shape[0]:
                raise ValueError(f"shapes {hashes.shape} and {embeddings.shape} disagree")
        except Exception as exc:  # only possible if something outside this module wrote the file
            warnings.warn(f"ignoring unreadable embedding cache file {chunk_file}: {exc}", stacklevel=3)
            continue
        for text_hash, vector in zip(hashes.astype(str), embeddings):
            vectors[text_hash] = vector
    return vectors


def _write_cache_chunk(entry_dir: Path, text_hashes: Sequence[str], embeddings: np.ndarray) -> Path:
    """Persist one chunk of freshly computed vectors atomically; returns the chunk file."""
    chunk_file = entry_dir / f"{_CHUNK_PREFIX}{time.time_ns()}-{uuid.uuid4().hex[:8]}.npz"
    hashes_array = np.asarray(list(text_hashes), dtype="S64")
    embeddings_array = np.ascontiguousarray(embeddings, dtype=np.float32)
    _atomic_write_bytes_via(
        chunk_file, lambda handle: np.savez(handle, text_sha256=hashes_array, embeddings=embeddings_array)
    )
    return chunk_file
