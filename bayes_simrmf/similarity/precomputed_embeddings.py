"""Precomputed question embeddings: the ``item_embeddings.<model>.parquet`` files written beside the data.

Each file has the columns item, text_sha256_16 (:func:`text_sha256_16` of the text the vector was computed from)
and embedding; :func:`load_precomputed_embeddings` reads the vectors of the wanted items, checked against their
current texts.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_simrmf.errors import DataError

__all__ = ["load_precomputed_embeddings", "text_sha256_16"]

_PRECOMPUTED_COLUMNS = ("item", "text_sha256_16", "embedding")


def text_sha256_16(text: str) -> str:
    """First 16 hex characters of the sha256 of ``text`` encoded as UTF-8.

    This is the ``text_sha256_16`` column of the shared ``item_embeddings.*.parquet`` files (checked against
    their ``items.parquet`` texts), used to detect embeddings that no longer match their question text.
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _examples(values: Sequence[Any], limit: int = 5) -> str:
    shown = ", ".join(repr(v) for v in list(values)[:limit])
    return shown + (", ..." if len(values) > limit else "")


def _read_precomputed_table(path: Path) -> pd.DataFrame:
    """The parquet table, or a DataError when it is absent, unreadable or lacks a column."""
    try:
        table = pd.read_parquet(path)
    except FileNotFoundError as exc:
        raise DataError(f"{path}: precomputed embeddings file not found") from exc
    except Exception as exc:
        raise DataError(f"{path}: cannot read as parquet ({type(exc).__name__}: {exc})") from exc
    absent_columns = [c for c in _PRECOMPUTED_COLUMNS if c not in table.columns]
    if absent_columns:
        raise DataError(f"{path}: missing column(s) {absent_columns}; found {list(table.columns)}")
    return table


def _rows_of_items(table: pd.DataFrame, item_ids: list[str], path: Path) -> np.ndarray:
    """Row of each wanted item in the table; the table's items must be unique and include every wanted one."""
    stored_items = table["item"].astype(str)
    duplicated = stored_items[stored_items.duplicated()].unique().tolist()
    if duplicated:
        raise DataError(f"{path}: {len(duplicated)} item ids appear more than once (e.g. {_examples(duplicated)})")
    row_of_item = pd.Series(np.arange(len(table)), index=stored_items.to_numpy())
    absent_items = [item for item in item_ids if item not in row_of_item.index]
    if absent_items:
        raise DataError(
            f"{path}: no embedding for {len(absent_items)} of {len(item_ids)} items (e.g. {_examples(absent_items)})"
        )
    return row_of_item.loc[item_ids].to_numpy()


_ROWS = 4096  # rows normalised per block


def _stacked_vectors(table: pd.DataFrame, rows: np.ndarray, item_ids: list[str], path: Path) -> list[np.ndarray]:
    """The embedding column at ``rows`` (one 1-D array per row); all vectors must share one length."""
    vectors = [table["embedding"].iat[row] for row in rows]
    lengths = np.array([np.size(v) if v is not None else 0 for v in vectors])
    dims, counts = np.unique(lengths, return_counts=True)
    if len(dims) > 1 or (len(dims) == 1 and dims[0] == 0):
        common_dim = dims[np.argmax(counts)]
        odd_items = [item_ids[i] for i in np.flatnonzero(lengths != common_dim)]
        raise DataError(
            f"{path}: column 'embedding' has vectors of different lengths {dims.tolist()}; "
            f"{len(odd_items)} items differ from the common length {common_dim} (e.g. {_examples(odd_items)})"
        )
    return vectors


def _unit_rows(vectors: list[np.ndarray], item_ids: list[str], path: Path) -> np.ndarray:
    """float32 ``(n, r)`` unit-norm rows, normalised in float64 a block of rows at a time (no float64 copy of the
    whole matrix); every row must be finite and not all zeros."""
    dim = int(np.size(vectors[0])) if vectors else 0
    unit = np.empty((len(vectors), dim), np.float32)
    non_finite, zero = [], []
    for start in range(0, len(vectors), _ROWS):
        block = np.stack([np.asarray(v, dtype=np.float64).ravel() for v in vectors[start:start + _ROWS]])
        finite = np.isfinite(block).all(axis=1)
        non_finite += (start + np.flatnonzero(~finite)).tolist()
        norms = np.linalg.norm(block, axis=1)
        zero += (start + np.flatnonzero(finite & (norms == 0))).tolist()
        with np.errstate(invalid="ignore", divide="ignore"):  # bad rows are refused below, by name
            unit[start:start + _ROWS] = block / norms[:, None]
    if non_finite:
        bad = [item_ids[i] for i in non_finite]
        raise DataError(f"{path}: {len(bad)} embeddings contain NaN or inf (e.g. {_examples(bad)})")
    if zero:
        bad = [item_ids[i] for i in zero]
        raise DataError(f"{path}: {len(bad)} embeddings are all zeros (e.g. {_examples(bad)})")
    return unit


def _check_text_hashes(
    table: pd.DataFrame, rows: np.ndarray, item_ids: list[str], texts: list[str], path: Path
) -> None:
    """The stored text_sha256_16 of each item must be that of its current text (else the vector is stale)."""
    stored_hashes = table["text_sha256_16"].astype(str).to_numpy()[rows]
    stale = [item for item, text, stored in zip(item_ids, texts, stored_hashes) if text_sha256_16(str(text)) != stored]
    if stale:
        raise DataError(
            f"{path}: {len(stale)} items have embeddings of a different text (text_sha256_16 mismatch, "
            f"stale embeddings, e.g. {_examples(stale)}): delete or rewrite the file, or pass another --embeddings, "
            "so that these texts are embedded again"
        )


def load_precomputed_embeddings(
    path: str | os.PathLike[str],
    item_ids: Sequence[str],
    texts: Sequence[str] | None = None,
    *,
    expected_dim: int | None = None,
) -> np.ndarray:
    """Read an ``item_embeddings.*.parquet`` file (columns item, text_sha256_16, embedding) in ``item_ids`` order.

    Args:
        path: parquet file written when the data were prepared (e.g. ``item_embeddings.all-MiniLM-L6-v2.parquet``).
        item_ids: the ``n_items`` item ids wanted, in the order of the returned rows.
        texts: optional current texts of those items (same order); any whose :func:`text_sha256_16` differs from
            the file's hash means the stored vector belongs to another text (stale) and is an error.
        expected_dim: optional embedding dimension ``r`` to insist on.

    Returns:
        float32 array ``(n_items, r)``, rows re-normalised to unit norm.

    Raises:
        DataError: unreadable file, missing columns, duplicate or missing items, ragged / wrong dimensions,
            non-finite or zero vectors, stale text hashes; each message names the file and offending items.
    """
    path = Path(path)
    item_ids = [str(item) for item in item_ids]
    if texts is not None:
        texts = list(texts)
        if len(texts) != len(item_ids):
            raise DataError(f"texts: {len(texts)} texts given for {len(item_ids)} item_ids; they must align")
    table = _read_precomputed_table(path)
    rows = _rows_of_items(table, item_ids, path)
    vectors = _stacked_vectors(table, rows, item_ids, path)
    if expected_dim is not None and len(rows) and np.size(vectors[0]) != expected_dim:
        raise DataError(f"{path}: embeddings have dimension {np.size(vectors[0])}, expected_dim={expected_dim}")
    unit = _unit_rows(vectors, item_ids, path)
    if texts is not None:
        _check_text_hashes(table, rows, item_ids, texts, path)
    return unit if len(rows) else np.zeros((0, 0), np.float32)
