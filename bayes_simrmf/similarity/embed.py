"""Question texts -> sentence embeddings (the side information behind the item similarity S_X).

The item similarity of SimRMF is the cosine similarity of sentence embeddings of each question's prompt text,
``S_X = E Eᵀ`` with unit-norm rows ``E`` of shape ``(n_items, r)``. This module produces ``E``; the low-rank
square-root factor of ``S_X`` is built from it in :mod:`bayes_simrmf.similarity` (never an items × items matrix).
Which model embeds is resolved in :mod:`bayes_simrmf.similarity.embedding_models`; every computed vector is kept
in the on-disk cache of :mod:`bayes_simrmf.similarity.embedding_cache`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from bayes_simrmf.errors import ConfigError, DataError
from bayes_simrmf.log import Log
from bayes_simrmf.options import DEFAULT_EMBEDDING_MODEL
from bayes_simrmf.similarity.embedding_cache import (
    _cache_entry_dir,
    _prepare_cache_entry,
    _read_cache_entry,
    _text_sha256,
    _write_cache_chunk,
    default_cache_dir,
)
from bayes_simrmf.similarity.embedding_models import EmbeddingModelSpec, resolve_embedding_model

__all__ = ["embed_texts"]


@functools.lru_cache(maxsize=2)
def _load_sentence_transformer(spec: EmbeddingModelSpec) -> Any:
    """Load the sentence-transformers model of ``spec`` on the CPU (memoised: loading takes ~10 s)."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ConfigError(
            "embedding texts needs sentence-transformers and torch (pip install 'bayes-simrmf[embed]')"
        ) from exc
    sentence_model = SentenceTransformer(str(spec.load_path), device="cpu", local_files_only=True)
    if spec.max_seq_length is not None:
        sentence_model.max_seq_length = spec.max_seq_length
    return sentence_model


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.maximum(norms, np.finfo(np.float32).tiny)).astype(np.float32)


def _checked_texts(texts: Sequence[str]) -> list[str]:
    """``texts`` as a list, or a DataError naming the entries that are not strings."""
    if isinstance(texts, str):
        raise DataError("texts: expected a sequence of strings, got a single string")
    texts = list(texts)
    bad_positions = [i for i, text in enumerate(texts) if not isinstance(text, str)]
    if bad_positions:
        examples = ", ".join(f"#{i}={texts[i]!r}" for i in bad_positions[:5])
        raise DataError(f"texts: {len(bad_positions)} entries are not strings (e.g. {examples})")
    return texts


def _check_positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}={value!r}: expected a positive integer")


def _texts_to_embed(text_hashes: Sequence[str], texts: Sequence[str], cached: dict[str, np.ndarray]) -> dict[str, str]:
    """Text sha256 -> text for the texts not in the cache, in first-occurrence order; duplicates appear once."""
    missing: dict[str, str] = {}
    for text_hash, text in zip(text_hashes, texts):
        if text_hash not in cached and text_hash not in missing:
            missing[text_hash] = text
    return missing


def _encode_batch(sentence_model: Any, texts: list[str], prompt: str) -> np.ndarray:
    """One forward pass over ``texts``: float32 ``(len(texts), r)`` with unit-norm rows."""
    vectors = sentence_model.encode(
        texts,
        batch_size=len(texts),
        prompt=prompt or None,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return _unit_rows(np.asarray(vectors, dtype=np.float32))


def _token_counts(sentence_model: Any, texts: list[str], prompt: str) -> np.ndarray | None:
    """Tokens of each text as the model sees it (prompt and special tokens included, before truncation), or
    None where the model has no tokenizer to ask."""
    tokenizer = getattr(sentence_model, "tokenizer", None)
    if tokenizer is None:
        return None
    try:
        encoded = tokenizer([f"{prompt or ''}{text}" for text in texts], add_special_tokens=True, truncation=False,
                            verbose=False)["input_ids"]
    except Exception:  # tokenizers differ; the count is a report, never a reason to fail
        return None
    return np.fromiter((len(ids) for ids in encoded), np.int64, len(encoded))


def _report_truncation(counts: list[np.ndarray], limit: int | None, log: Log | None) -> None:
    """One line: how many texts were longer than the model's ``limit`` tokens, so embedded from their start."""
    if not log or limit is None or not counts:
        return
    lengths = np.concatenate(counts)
    long = lengths > limit
    if long.any():
        log(f"note: {int(long.sum())} of {len(lengths)} question texts are longer than the embedding model's "
            f"{limit} tokens and were truncated to {limit} tokens (longest {int(lengths.max())} tokens): their "
            "embeddings see only the start of the text")


def _embed_and_cache(
    missing: dict[str, str],
    spec: EmbeddingModelSpec,
    entry_dir: Path,
    *,
    batch_size: int,
    cache_chunk_size: int,
    progress: bool,
    log: Log | None = None,
) -> dict[str, np.ndarray]:
    """Embed the texts the cache lacks, batch by batch, writing a cache chunk whenever ``cache_chunk_size`` vectors
    are pending (and the rest at the end).

    Returns:
        text sha256 -> float32 unit vector, for every text of ``missing``.
    """
    _prepare_cache_entry(entry_dir, spec)
    sentence_model = _load_sentence_transformer(spec)
    missing_hashes = list(missing)
    n_batches = -(-len(missing_hashes) // batch_size)
    computed: dict[str, np.ndarray] = {}
    pending_hashes: list[str] = []
    pending_vectors: list[np.ndarray] = []
    token_counts: list[np.ndarray] = []
    with tqdm(total=n_batches, desc=f"embedding {len(missing_hashes)} texts ({spec.model_id})",
              unit="batch", disable=not progress) as bar:
        for start in range(0, len(missing_hashes), batch_size):
            batch_hashes = missing_hashes[start:start + batch_size]
            batch_texts = [missing[h] for h in batch_hashes]
            counts = _token_counts(sentence_model, batch_texts, spec.prompt) if log else None
            if counts is not None:
                token_counts.append(counts)
            batch_vectors = _encode_batch(sentence_model, batch_texts, spec.prompt)
            pending_hashes.extend(batch_hashes)
            pending_vectors.append(batch_vectors)
            computed.update(zip(batch_hashes, batch_vectors))
            bar.update(1)
            if len(pending_hashes) >= cache_chunk_size:
                _write_cache_chunk(entry_dir, pending_hashes, np.concatenate(pending_vectors))
                pending_hashes, pending_vectors = [], []
        if pending_hashes:
            _write_cache_chunk(entry_dir, pending_hashes, np.concatenate(pending_vectors))
    _report_truncation(token_counts, getattr(sentence_model, "max_seq_length", None), log)
    return computed


def embed_texts(
    texts: Sequence[str],
    model: str = DEFAULT_EMBEDDING_MODEL,
    *,
    batch_size: int = 64,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    prompt: str | None = None,
    cache_chunk_size: int = 1024,
    log: Log | None = None,
) -> np.ndarray:
    """Embed texts with a sentence-transformers model, reusing every vector already in the on-disk cache.

    Args:
        texts: ``n`` question texts (duplicates are embedded once).
        model: see :func:`resolve_embedding_model`.
        batch_size: texts per forward pass.
        cache_dir: cache root; ``None`` uses :func:`default_cache_dir`.
        progress: show a tqdm progress bar over the batches that must be computed.
        prompt: override the automatic prompt (``"query: "`` for E5 models, else none).
        cache_chunk_size: texts per cache file; an interrupted run loses at most this many computed vectors.
        log: receives one line saying how many of the texts embedded now were longer than the model's maximum
            sequence length and so truncated (texts found in the cache were counted when first embedded).

    Returns:
        float32 array ``(n, r)`` with unit-norm rows, in the order of ``texts``.

    Raises:
        DataError: a text is not a string.
        ConfigError: bad ``batch_size`` / ``cache_chunk_size``, or the model cannot be resolved.
    """
    texts = _checked_texts(texts)
    _check_positive_int("batch_size", batch_size)
    _check_positive_int("cache_chunk_size", cache_chunk_size)

    spec = resolve_embedding_model(model, prompt=prompt)
    entry_dir = _cache_entry_dir(Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir(), spec)

    text_hashes = [_text_sha256(text) for text in texts]
    cached = _read_cache_entry(entry_dir)
    missing = _texts_to_embed(text_hashes, texts, cached)
    if missing:
        cached.update(
            _embed_and_cache(
                missing, spec, entry_dir, batch_size=batch_size, cache_chunk_size=cache_chunk_size, progress=progress,
                log=log,
            )
        )

    if not texts:
        dim = next(iter(cached.values())).shape[0] if cached else 0
        return np.zeros((0, dim), dtype=np.float32)
    return _unit_rows(np.stack([cached[text_hash] for text_hash in text_hashes]))
