"""Access to the hub (:class:`HfHubClient`) or to a local mirror in its layout (:class:`LocalHubMirror`), and
the retry policy for transient errors (:class:`RetryPolicy`)."""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

from bayes_simrmf.errors import ConfigError
from bayes_simrmf.hub.common import (
    OFFLINE_ADVICE,
    HubError,
    HubGatedError,
    HubNotFoundError,
    HubTransientError,
    HubUnreachableError,
    llm_key,
)
from bayes_simrmf.hub.network import check_reachable, unreachable_reason


class HubClient:
    """What the pull needs from the hub: list a dataset's files, download one.

    Implementations raise :class:`HubNotFoundError`, :class:`HubGatedError`,
    :class:`HubTransientError` or ``huggingface_hub``'s own errors; :func:`classify_error`
    understands both.
    """

    def list_files(self, repo_id: str) -> list[tuple[str, int]]:
        """All files of dataset ``repo_id`` as ``(path in repo, size in bytes)``."""
        raise NotImplementedError

    def download(self, repo_id: str, filename: str) -> Path:
        """A local path holding file ``filename`` of dataset ``repo_id``."""
        raise NotImplementedError

    def release(self, path: Path) -> None:
        """Called once the pull has read a downloaded file; a client may delete it."""

    def close(self) -> None:
        """Called at the end of a pull or dry run; a client may remove its scratch space."""

    def describe(self) -> str:
        """Where the data come from, for the summary."""
        return type(self).__name__


class HfHubClient(HubClient):
    """The Hugging Face hub through ``huggingface_hub`` (``HfApi.list_repo_tree``, ``hf_hub_download``).

    Authentication is ``huggingface_hub``'s: ``token`` if given, else ``HF_TOKEN`` or the token
    saved by ``hf auth login``. Samples files are large (MMLU-Pro's is some hundreds of MB per LLM)
    and read once, so by default they are downloaded into a scratch folder (``download_dir``, or a
    temporary folder) and deleted as soon as they are parsed; ``keep_downloads=True`` uses the
    normal hub cache instead and keeps them.
    """

    def __init__(
        self,
        *,
        token: str | None = None,
        endpoint: str | None = None,
        download_dir: str | os.PathLike[str] | None = None,
        keep_downloads: bool = False,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.token = token
        self.endpoint = endpoint
        self.keep_downloads = keep_downloads
        self.cache_dir = cache_dir
        self._download_dir = Path(download_dir) if download_dir is not None else None
        self._own_download_dir = False
        self._lock = threading.Lock()
        self._reachable = False

    def _scratch(self) -> Path:
        with self._lock:
            if self._download_dir is None:
                self._download_dir = Path(tempfile.mkdtemp(prefix="bayes-simrmf-pull-"))
                self._own_download_dir = True
            self._download_dir.mkdir(parents=True, exist_ok=True)
            return self._download_dir

    @staticmethod
    def _check_online() -> None:
        from huggingface_hub import constants

        if constants.HF_HUB_OFFLINE:  # else every call would be retried with backoff before failing
            raise HubError("HF_HUB_OFFLINE is set, so the hub cannot be reached: unset it, or read a local mirror "
                           "in the hub's layout with --hub-root DIR")

    def _check_reachable(self) -> None:
        """Once per client: HubUnreachableError at once if the hub's name does not resolve or it refuses
        connections (huggingface_hub would retry those itself for half a minute per call)."""
        with self._lock:
            if not self._reachable:
                from huggingface_hub import constants

                check_reachable(self.endpoint or constants.ENDPOINT)
                self._reachable = True

    def list_files(self, repo_id: str) -> list[tuple[str, int]]:
        from huggingface_hub import HfApi

        self._check_online()
        self._check_reachable()
        api = HfApi(endpoint=self.endpoint, token=self.token)
        entries = list(api.list_repo_tree(repo_id, repo_type="dataset", recursive=True))
        return [(entry.path, int(entry.size or 0)) for entry in entries if hasattr(entry, "size")]

    def download(self, repo_id: str, filename: str) -> Path:
        from huggingface_hub import hf_hub_download

        self._check_online()
        self._check_reachable()
        kwargs: dict[str, Any] = {"repo_id": repo_id, "filename": filename, "repo_type": "dataset", "token": self.token}
        if self.endpoint is not None:
            kwargs["endpoint"] = self.endpoint
        if self.keep_downloads:
            return Path(hf_hub_download(**kwargs, cache_dir=self.cache_dir))
        return Path(hf_hub_download(**kwargs, local_dir=self._scratch() / llm_key(repo_id)))

    def release(self, path: Path) -> None:
        if self.keep_downloads or self._download_dir is None:
            return
        try:
            Path(path).resolve().relative_to(self._download_dir.resolve())
        except ValueError:
            return  # not ours
        Path(path).unlink(missing_ok=True)

    def close(self) -> None:
        if self._download_dir is not None and not self.keep_downloads:
            shutil.rmtree(self._download_dir, ignore_errors=True)
            if self._own_download_dir:
                self._download_dir = None

    def describe(self) -> str:
        return f"Hugging Face hub ({self.endpoint or 'https://huggingface.co'})"


class LocalHubMirror(HubClient):
    """A folder in the hub's layout: ``ROOT/datasets/<org>/<name>/<path in repo>``.

    For offline use and tests, e.g. ``ROOT/datasets/open-llm-leaderboard/contents/data/train-00000-of-00001.parquet``
    and ``ROOT/datasets/open-llm-leaderboard/org__name-details/org__name/samples_leaderboard_bbh_navigate_<ts>.jsonl``.
    Files are read in place (never copied or deleted).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise ConfigError(f"hub mirror {self.root} is not a folder")

    def _repo_dir(self, repo_id: str) -> Path:
        return self.root / "datasets" / repo_id

    def list_files(self, repo_id: str) -> list[tuple[str, int]]:
        folder = self._repo_dir(repo_id)
        if not folder.is_dir():
            raise HubNotFoundError(f"{repo_id}: no folder {folder} in the mirror", what="repo")
        return sorted(
            (path.relative_to(folder).as_posix(), path.stat().st_size) for path in folder.rglob("*") if path.is_file()
        )

    def download(self, repo_id: str, filename: str) -> Path:
        folder = self._repo_dir(repo_id)
        if not folder.is_dir():
            raise HubNotFoundError(f"{repo_id}: no folder {folder} in the mirror", what="repo")
        path = folder / filename
        if not path.is_file():
            raise HubNotFoundError(f"{repo_id}: no file {filename} in the mirror", what="file")
        return path

    def describe(self) -> str:
        return f"local mirror {self.root}"


# ----------------------------------------------------------------------------- retries

ErrorKind = Literal["gated", "repo_missing", "file_missing", "transient", "unreachable"]
_TRANSIENT_NAME_PARTS = ("ConnectError", "ConnectionError", "Timeout", "TransportError", "NetworkError",
                         "RemoteProtocolError", "ReadError", "ChunkedEncodingError", "ProtocolError")


def _hf_error_classes() -> dict[str, type]:
    """huggingface_hub's error classes by name (their module moved between versions)."""
    classes: dict[str, type] = {}
    for module_name in ("huggingface_hub.utils", "huggingface_hub.errors"):
        try:
            module = __import__(module_name, fromlist=["_"])
        except ImportError:  # pragma: no cover - old versions lack huggingface_hub.errors
            continue
        for name in ("GatedRepoError", "RepositoryNotFoundError", "EntryNotFoundError", "RevisionNotFoundError",
                     "DisabledRepoError", "LocalEntryNotFoundError"):
            if hasattr(module, name):
                classes[name] = getattr(module, name)
    return classes


def _status_code(error: BaseException) -> int | None:
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    if status is None:
        status = getattr(error, "status_code", None)
    try:
        return int(status) if status is not None else None
    except (TypeError, ValueError):
        return None


def classify_error(error: BaseException) -> ErrorKind | None:
    """What a hub failure means for the pull, or ``None`` for an unexpected error (a bug: re-raised).

    ``"gated"``: a licence must be accepted or a token given (``GatedRepoError``, HTTP 401/403);
    ``"repo_missing"``: the dataset does not exist (``RepositoryNotFoundError``, ``DisabledRepoError``);
    ``"file_missing"``: a listed file is gone (``EntryNotFoundError``, HTTP 404);
    ``"transient"``: retry later (HTTP 429, 5xx, 408, a connection reset or a read timeout: the hub was reached);
    ``"unreachable"``: the hub cannot be reached (its name does not resolve, the connection is refused, the
    network is unreachable): retrying only makes the user wait.
    """
    if isinstance(error, HubUnreachableError) or unreachable_reason(error) is not None:
        return "unreachable"
    classes = _hf_error_classes()

    def is_a(*names: str) -> bool:
        return any(name in classes and isinstance(error, classes[name]) for name in names)

    if isinstance(error, HubGatedError) or is_a("GatedRepoError"):
        return "gated"
    if isinstance(error, HubNotFoundError):
        return "file_missing" if error.what == "file" else "repo_missing"
    if isinstance(error, HubTransientError):
        return "transient"
    if is_a("RepositoryNotFoundError", "DisabledRepoError"):
        return "repo_missing"
    if is_a("LocalEntryNotFoundError"):
        # hf_hub_download raises it when the hub is unreachable and the file is not cached: a network failure.
        return "transient"
    if is_a("EntryNotFoundError", "RevisionNotFoundError"):
        return "file_missing"
    status = _status_code(error)
    if status is not None:
        if status in (401, 403):
            return "gated"
        if status == 404:
            return "file_missing"
        if status in (408, 429) or status >= 500:
            return "transient"
        return None
    if isinstance(error, (ConnectionError, TimeoutError)):
        return "transient"
    names = [cls.__name__ for cls in type(error).__mro__]
    if any(part in name for name in names for part in _TRANSIENT_NAME_PARTS):
        return "transient"
    return None


def _retry_after(error: BaseException) -> float | None:
    headers = getattr(getattr(error, "response", None), "headers", None)
    if not headers:
        return None
    try:
        value = headers.get("Retry-After") or headers.get("retry-after")
        return float(value) if value is not None else None
    except (TypeError, ValueError, AttributeError):
        return None


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for transient hub errors.

    Attempt ``a`` (0-based) that fails with a transient error waits
    ``min(max_delay, base_delay * 2**a) * U(0.5, 1)`` seconds (jitter from ``random.Random(seed)``)
    or the server's ``Retry-After`` when that is longer (at most ``max_retry_after``), then tries
    again, up to ``max_attempts`` attempts in all. ``sleep`` is injectable so tests run instantly.
    """

    max_attempts: int = 6
    base_delay: float = 2.0
    max_delay: float = 120.0
    max_retry_after: float = 600.0
    seed: int = 0
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ConfigError("retry delays must be >= 0")

    def call(self, function: Callable[[], Any], *, rng: random.Random, on_retry: Callable[[str], None] | None = None):
        """``function()``, retried on transient errors; the last error propagates."""
        for attempt in range(self.max_attempts):
            try:
                return function()
            except Exception as error:  # classified below; unexpected errors propagate unchanged
                kind = classify_error(error)
                if kind == "unreachable" and not isinstance(error, HubUnreachableError):
                    raise HubUnreachableError(f"the hub is unreachable ({unreachable_reason(error)}); "
                                              f"{OFFLINE_ADVICE}") from error
                if kind != "transient" or attempt + 1 >= self.max_attempts:
                    raise
                delay = min(self.max_delay, self.base_delay * 2 ** attempt) * (0.5 + 0.5 * rng.random())
                retry_after = _retry_after(error)
                if retry_after is not None:
                    delay = max(delay, min(retry_after, self.max_retry_after))
                if on_retry is not None:
                    on_retry(f"{_short(error)}; retry {attempt + 1}/{self.max_attempts - 1} in {delay:.1f} s")
                self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover


class _Attempt(NamedTuple):
    """What :func:`_attempt` got: the value, or the kind of hub failure and its error."""

    value: Any
    kind: ErrorKind | None
    error: Exception | None


def _attempt(retry: RetryPolicy, function: Callable[[], Any], *, rng: random.Random,
             on_retry: Callable[[str], None] | None = None) -> _Attempt:
    """``retry.call(function)``, with a hub failure (one :func:`classify_error` knows) returned instead of
    raised, so the caller can report it; an unexpected error propagates."""
    try:
        return _Attempt(retry.call(function, rng=rng, on_retry=on_retry), None, None)
    except Exception as error:
        kind = classify_error(error)
        if kind is None or kind == "unreachable":  # unreachable: every other call would fail too; stop now
            raise
        return _Attempt(None, kind, error)


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}"[:300]


def _gated_advice(repo_id: str) -> str:
    return (f"accept its conditions at https://huggingface.co/datasets/{repo_id} with your account, then log in "
            "(`hf auth login`) or set HF_TOKEN, and re-run the same command")
