"""Pull the Open LLM Leaderboard v2's per-question results from the Hugging Face hub.

The leaderboard publishes, for every LLM it evaluated, a "details" dataset
``open-llm-leaderboard/<org>__<name>-details`` holding one samples file per task and run:
``<org>__<name>/samples_leaderboard_<task>_<timestamp>.jsonl``, one JSON record per question
with ``doc_id``, the question as ``doc``, the harness's ``target`` and the task's per-question
metric (``acc_norm``, ``acc`` or ``exact_match``). Its metadata table is the dataset
``open-llm-leaderboard/contents`` (one row per LLM and precision). :func:`pull` turns these into
the folder :func:`bayes_simrmf.data.load_dataset` reads:

- ``responses.parquet``: llm, item, correct (0/1), one row per (LLM, question);
- ``items.parquet``: item, benchmark, subtask, text; item ids are ``"<benchmark>/<subtask>/<doc_id>"``
  (``BBH/navigate/17``, ``MATH_L5/algebra_hard/4``, ``MMLU-Pro/math/7504``, ``MuSR/team_allocation/3``,
  ``GPQA/diamond/12``), ``doc_id`` being the harness's document index within the task;
- ``llms.parquet``: the contents table mapped to the columns of ``../shared/data/leaderboard-contents``
  (:data:`CONTENTS_COLUMNS`), one row per LLM (its latest submission);
- ``pull_summary.json``: what was pulled, what was skipped and why.

0/1 correctness follows the leaderboard's own scoring (:data:`BENCHMARKS`): BBH, MuSR and GPQA are
multiple choice scored by length-normalised log-likelihood accuracy ``acc_norm``, MMLU-Pro by
``acc``, MATH Lvl 5 by ``exact_match`` of the generated answer. Only the latest run of each task
is used (several runs of a task exist when the leaderboard re-evaluated an LLM).

Pulling is robust to the network and to interruption: every hub call is retried with exponential
backoff on rate limits (HTTP 429), server errors (5xx) and connection errors; a gated or
unauthorised dataset skips that benchmark for that LLM with a one-line message saying what to do;
a missing or renamed LLM is skipped and reported. Each LLM's results are written atomically
(temporary file, then ``os.replace``) to ``DIR/.pull/models/<org>__<name>.parquet`` as soon as they
are complete, so re-running the same command skips every LLM already done and fetches only the
rest; the final tables are assembled from the staging area at the end. Nothing under ``DIR`` is
ever half written.

Hub access goes through a :class:`HubClient`: :class:`HfHubClient` uses ``huggingface_hub``;
:class:`LocalHubMirror` reads a folder in the hub's own layout
(``ROOT/datasets/open-llm-leaderboard/<org>__<name>-details/...``), for offline use and tests.
"""

from __future__ import annotations

import ast
import json
import os
import random
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from bayes_simrmf.errors import BayesSimRMFError, ConfigError, DataError
from bayes_simrmf.log import Log, sink

__all__ = [
    "BENCHMARKS",
    "CONTENTS_COLUMNS",
    "CONTENTS_REPO_ID",
    "DEFAULT_BENCHMARKS",
    "Benchmark",
    "DryRunReport",
    "HfHubClient",
    "HubClient",
    "HubError",
    "HubGatedError",
    "HubNotFoundError",
    "HubTransientError",
    "LocalHubMirror",
    "MalformedSamplesError",
    "PullSummary",
    "RetryPolicy",
    "SamplesFile",
    "classify_error",
    "details_repo_id",
    "dry_run",
    "latest_samples_files",
    "normalise_contents",
    "parse_benchmarks",
    "parse_samples_filename",
    "pull",
    "read_models_file",
    "read_samples",
    "select_llms",
]

LEADERBOARD_ORG = "open-llm-leaderboard"
CONTENTS_REPO_ID = f"{LEADERBOARD_ORG}/contents"
STAGING_DIR = ".pull"
SUMMARY_FILE = "pull_summary.json"
_STAGING_FORMAT = 1
_METADATA_KEY = b"bayes_simrmf_pull"



def details_repo_id(llm: str) -> str:
    """The details dataset of an LLM: ``"org/name"`` -> ``"open-llm-leaderboard/org__name-details"``."""
    return f"{LEADERBOARD_ORG}/{llm_key(llm)}-details"


def llm_key(llm: str) -> str:
    """The leaderboard's file-name form of an LLM id (``/`` -> ``__``), also our staging file name."""
    return llm.replace("/", "__")


# ----------------------------------------------------------------------------- errors


class HubError(BayesSimRMFError):
    """A hub repository or file could not be read (raised by clients; classified by :func:`classify_error`)."""


class HubNotFoundError(HubError):
    """A repository or a file in it does not exist (or is not visible to this token)."""

    def __init__(self, message: str, *, what: Literal["repo", "file"] = "repo") -> None:
        super().__init__(message)
        self.what = what


class HubGatedError(HubError):
    """A repository needs an accepted licence and a token."""


class HubTransientError(HubError):
    """A failure worth retrying: rate limit, server error, connection error."""


class MalformedSamplesError(DataError):
    """A samples file has a line that is not JSON or lacks a field the pull needs (names file and line)."""


# ----------------------------------------------------------------------------- benchmarks


def _bbh_text(doc: dict) -> str:
    return str(doc["input"])


def _math_text(doc: dict) -> str:
    return str(doc["problem"])


def _mmlu_pro_text(doc: dict) -> str:
    options = doc["options"]
    if not isinstance(options, list):
        raise KeyError("options")
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return str(doc["question"]) + "".join(f"\n{letters[i]}. {option}" for i, option in enumerate(options))


def _musr_text(doc: dict) -> str:
    choices = doc["choices"]
    if isinstance(choices, str):  # the MuSR dataset stores the list as its Python repr
        try:
            choices = ast.literal_eval(choices)
        except (ValueError, SyntaxError):
            raise KeyError("choices") from None
    if not isinstance(choices, (list, tuple)):
        raise KeyError("choices")
    numbered = "".join(f"{i + 1} - {choice}\n" for i, choice in enumerate(choices))
    return f"{doc['narrative']}\n\n{doc['question']}\n\n{numbered}Answer:"


def _gpqa_text(doc: dict) -> str:
    return str(doc["Question"]).strip()


@dataclass(frozen=True)
class Benchmark:
    """One leaderboard benchmark: which samples files belong to it and how a record becomes 0/1 and text.

    Attributes:
        key: the name on the command line (``--benchmarks bbh,...``).
        name: the ``benchmark`` column and first part of item ids.
        task_prefix: samples files of tasks named ``task_prefix + <subtask>`` belong here; for a
            single-task benchmark (``subtask_field`` set) the task name itself.
        metric: the record field holding the per-question score.
        text_fields: the ``doc`` fields the question text is built from (for messages).
        text: builds the question text from ``doc``.
        subtask_field: ``doc`` field naming the subtask (MMLU-Pro's ``category``), else ``None``
            and the subtask is the task name's suffix.
        rule: the 0/1 rule in words (documentation and summary).
    """

    key: str
    name: str
    task_prefix: str
    metric: str
    text_fields: tuple[str, ...]
    text: Callable[[dict], str]
    subtask_field: str | None = None
    rule: str = ""

    def owns(self, task: str) -> bool:
        """Whether samples of ``task`` (e.g. ``leaderboard_bbh_navigate``) belong to this benchmark."""
        if self.subtask_field is not None:
            return task == self.task_prefix
        return task.startswith(self.task_prefix) and len(task) > len(self.task_prefix)

    def subtask(self, task: str, doc: dict) -> str:
        """The subtask of a record: the task suffix, or the ``doc`` field for single-task benchmarks."""
        if self.subtask_field is None:
            return task[len(self.task_prefix):]
        value = doc[self.subtask_field]
        if not isinstance(value, str) or not value:
            raise KeyError(self.subtask_field)
        return value


BENCHMARKS: dict[str, Benchmark] = {
    "bbh": Benchmark(
        key="bbh", name="BBH", task_prefix="leaderboard_bbh_", metric="acc_norm", text_fields=("input",),
        text=_bbh_text,
        rule="multiple choice (3-shot); correct iff the answer with the highest length-normalised "
             "log-likelihood is the target: acc_norm == 1",
    ),
    "gpqa": Benchmark(
        key="gpqa", name="GPQA", task_prefix="leaderboard_gpqa_", metric="acc_norm", text_fields=("Question",),
        text=_gpqa_text,
        rule="multiple choice (0-shot, four options); acc_norm == 1",
    ),
    "math": Benchmark(
        key="math", name="MATH_L5", task_prefix="leaderboard_math_", metric="exact_match", text_fields=("problem",),
        text=_math_text,
        rule="generative (4-shot); correct iff the extracted final answer matches the reference: exact_match == 1",
    ),
    "mmlu_pro": Benchmark(
        key="mmlu_pro", name="MMLU-Pro", task_prefix="leaderboard_mmlu_pro", metric="acc",
        text_fields=("question", "options", "category"), text=_mmlu_pro_text, subtask_field="category",
        rule="multiple choice (5-shot, up to ten options) by unnormalised log-likelihood: acc == 1",
    ),
    "musr": Benchmark(
        key="musr", name="MuSR", task_prefix="leaderboard_musr_", metric="acc_norm",
        text_fields=("narrative", "question", "choices"), text=_musr_text,
        rule="multiple choice (0-shot); acc_norm == 1",
    ),
}
DEFAULT_BENCHMARKS: tuple[str, ...] = tuple(BENCHMARKS)


def parse_benchmarks(value: str | Iterable[str]) -> tuple[str, ...]:
    """``"bbh,math"`` or ``["bbh", "math"]`` -> ``("bbh", "math")`` in :data:`BENCHMARKS` order.

    Raises:
        ConfigError: an unknown name, or none given.
    """
    names = [part.strip().lower() for part in (value.split(",") if isinstance(value, str) else value)]
    names = [name for name in names if name]
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        raise ConfigError(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}")
    if not names:
        raise ConfigError(f"no benchmark given; choose from {', '.join(BENCHMARKS)}")
    return tuple(key for key in BENCHMARKS if key in names)


def _benchmark_of_task(task: str) -> Benchmark | None:
    for benchmark in BENCHMARKS.values():
        if benchmark.owns(task):
            return benchmark
    return None


# ----------------------------------------------------------------------------- hub clients


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
                           "in the hub's layout with --hub-root DIR (hub.LocalHubMirror)")

    def list_files(self, repo_id: str) -> list[tuple[str, int]]:
        from huggingface_hub import HfApi

        self._check_online()
        api = HfApi(endpoint=self.endpoint, token=self.token)
        entries = list(api.list_repo_tree(repo_id, repo_type="dataset", recursive=True))
        return [(entry.path, int(entry.size or 0)) for entry in entries if hasattr(entry, "size")]

    def download(self, repo_id: str, filename: str) -> Path:
        from huggingface_hub import hf_hub_download

        self._check_online()
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

ErrorKind = Literal["gated", "repo_missing", "file_missing", "transient"]
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
    ``"transient"``: retry later (HTTP 429, 5xx, 408, connection and timeout errors).
    """
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
                if classify_error(error) != "transient" or attempt + 1 >= self.max_attempts:
                    raise
                delay = min(self.max_delay, self.base_delay * 2 ** attempt) * (0.5 + 0.5 * rng.random())
                retry_after = _retry_after(error)
                if retry_after is not None:
                    delay = max(delay, min(retry_after, self.max_retry_after))
                if on_retry is not None:
                    on_retry(f"{_short(error)}; retry {attempt + 1}/{self.max_attempts - 1} in {delay:.1f} s")
                self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}"[:300]


# ----------------------------------------------------------------------------- samples files

_SAMPLES_NAME = re.compile(
    r"^samples_(?P<task>leaderboard_[A-Za-z0-9_]+?)_(?P<timestamp>\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(?:\.\d+)?)"
    r"\.jsonl?$"
)


@dataclass(frozen=True)
class SamplesFile:
    """One samples file of a details dataset."""

    path: str  # path in the repo
    size: int  # bytes, from the listing
    task: str  # e.g. leaderboard_bbh_navigate
    timestamp: str  # the run, e.g. 2024-06-26T16-23-08.343424
    benchmark: str  # key in BENCHMARKS


def parse_samples_filename(path: str) -> tuple[str, str] | None:
    """``".../samples_leaderboard_bbh_navigate_2024-06-26T16-23-08.343424.jsonl"`` -> (task, timestamp).

    ``None`` for any other file (results_*.json, README.md, ...). Older runs used ``.json``
    for the same JSON-lines content; both are accepted.
    """
    match = _SAMPLES_NAME.match(path.rsplit("/", 1)[-1])
    return (match["task"], match["timestamp"]) if match else None


def _timestamp_key(timestamp: str) -> tuple:
    try:
        return (1, datetime.strptime(timestamp, "%Y-%m-%dT%H-%M-%S.%f" if "." in timestamp else "%Y-%m-%dT%H-%M-%S"))
    except ValueError:  # pragma: no cover - the file-name pattern already guarantees the shape
        return (0, timestamp)


def latest_samples_files(files: Iterable[tuple[str, int]], benchmarks: Iterable[str]) -> list[SamplesFile]:
    """The latest run's samples file of every task of the given benchmarks, sorted by path.

    "Latest" is per task (the newest timestamp among that task's files), as the dataset card's
    ``latest`` split: when the leaderboard re-ran only some tasks of an LLM, each task keeps its
    newest run.
    """
    wanted = set(benchmarks)
    best: dict[str, SamplesFile] = {}
    for path, size in files:
        parsed = parse_samples_filename(path)
        if parsed is None:
            continue
        task, timestamp = parsed
        benchmark = _benchmark_of_task(task)
        if benchmark is None or benchmark.key not in wanted:
            continue
        candidate = SamplesFile(path=path, size=int(size), task=task, timestamp=timestamp, benchmark=benchmark.key)
        current = best.get(task)
        if current is None or (_timestamp_key(timestamp), path) > (_timestamp_key(current.timestamp), current.path):
            best[task] = candidate
    return sorted(best.values(), key=lambda samples_file: samples_file.path)


def _iter_records(path: Path, label: str):
    """(line number, record dict) of a JSON-lines file, or of a JSON array (very old runs)."""
    with open(path, encoding="utf-8") as handle:
        first = ""
        while True:
            char = handle.read(1)
            if not char or not char.isspace():
                first = char
                break
        handle.seek(0)
        if first == "[":
            try:
                records = json.load(handle)
            except json.JSONDecodeError as error:
                raise MalformedSamplesError(f"{label}:{error.lineno}: not valid JSON ({error.msg})") from None
            for index, record in enumerate(records, start=1):
                yield index, record
            return
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield line_number, json.loads(line)
            except json.JSONDecodeError as error:
                raise MalformedSamplesError(
                    f"{label}:{line_number}: not valid JSON ({error.msg} at column {error.colno})"
                ) from None


def _metric_value(record: dict, metric: str):
    if metric in record:
        return record[metric]
    nested = record.get("metrics")
    if isinstance(nested, dict) and metric in nested:
        return nested[metric]
    raise KeyError(metric)


def read_samples(path: str | os.PathLike[str], task: str, *, label: str | None = None) -> tuple[pd.DataFrame, int]:
    """Parse one samples file into ``(frame, n_duplicates)``.

    The frame has one row per ``doc_id``: ``item``, ``benchmark``, ``subtask``, ``text``,
    ``correct`` (int8, from the benchmark's metric field: 1 iff it equals 1). A ``doc_id``
    logged more than once (one record per harness filter) keeps the record of filter ``"none"``,
    else the first; ``n_duplicates`` counts the others.

    Raises:
        ConfigError: ``task`` belongs to no benchmark.
        MalformedSamplesError: a line is not JSON, or a record lacks ``doc_id``, ``doc``, the metric
            field or a text field, or its metric is not 0/1 (message: ``file:line: problem``).
    """
    benchmark = _benchmark_of_task(task)
    if benchmark is None:
        raise ConfigError(f"task {task!r} belongs to none of the benchmarks {list(BENCHMARKS)}")
    label = label or str(path)
    chosen: dict[int, tuple[str | None, int, str, str]] = {}  # doc_id -> (filter, correct, subtask, text)
    duplicates = 0
    for line_number, record in _iter_records(Path(path), label):
        where = f"{label}:{line_number}"
        if not isinstance(record, dict):
            raise MalformedSamplesError(f"{where}: expected a JSON object, got {type(record).__name__}")
        doc_id = record.get("doc_id")
        if isinstance(doc_id, bool) or not isinstance(doc_id, (int, str)) or not str(doc_id).isdigit():
            raise MalformedSamplesError(f"{where}: missing or invalid 'doc_id' ({doc_id!r})")
        doc = record.get("doc")
        if not isinstance(doc, dict):
            raise MalformedSamplesError(f"{where}: missing 'doc' (the question) object")
        try:
            value = _metric_value(record, benchmark.metric)
        except KeyError:
            present = [key for key in record if key not in ("doc", "arguments", "resps", "filtered_resps")]
            raise MalformedSamplesError(
                f"{where}: no {benchmark.metric!r} field, which scores {benchmark.name} (fields: {present})"
            ) from None
        if isinstance(value, bool):
            value = int(value)
        if not isinstance(value, (int, float)) or value not in (0, 1):
            raise MalformedSamplesError(f"{where}: {benchmark.metric!r} is {value!r}; expected 0 or 1")
        try:
            subtask = benchmark.subtask(task, doc)
            text = benchmark.text(doc)
        except KeyError as error:
            raise MalformedSamplesError(
                f"{where}: 'doc' lacks field {error.args[0]!r} needed for the {benchmark.name} question "
                f"(expects {list(benchmark.text_fields)})"
            ) from None
        key = int(doc_id)
        filter_name = record.get("filter")
        if key in chosen:
            duplicates += 1
            if chosen[key][0] == "none" or filter_name != "none":
                continue
        chosen[key] = (filter_name, int(value), subtask, text)
    doc_ids = sorted(chosen)
    frame = pd.DataFrame(
        {
            "item": [f"{benchmark.name}/{chosen[d][2]}/{d}" for d in doc_ids],
            "benchmark": benchmark.name,
            "subtask": [chosen[d][2] for d in doc_ids],
            "text": [chosen[d][3] for d in doc_ids],
            "correct": np.array([chosen[d][1] for d in doc_ids], dtype=np.int8),
        }
    )
    return frame, duplicates


# ----------------------------------------------------------------------------- contents (LLM metadata)

CONTENTS_COLUMNS: dict[str, tuple[str, ...]] = {
    # our column: raw contents column names, first present wins
    "llm": ("fullname",),
    "precision": ("Precision",),
    "model_type": ("Type",),
    "weight_type": ("Weight type",),
    "architecture": ("Architecture",),
    "has_chat_template": ("Chat Template",),
    "is_merged": ("Merged",),
    "is_moe": ("MoE",),
    "is_official_provider": ("Official Providers",),
    "base_model": ("Base Model",),
    "generation": ("Generation",),
    "params_billions": ("#Params (B)",),
    "license": ("Hub License",),
    "hub_hearts": ("Hub ❤️",),
    "upload_date": ("Upload To Hub Date",),
    "submission_date": ("Submission Date",),
    "score_bbh": ("BBH Raw",),
    "score_gpqa": ("GPQA Raw",),
    "score_math_l5": ("MATH Lvl 5 Raw",),
    "score_mmlu_pro": ("MMLU-PRO Raw",),
    "score_musr": ("MUSR Raw",),
    "score_ifeval": ("IFEval Raw",),
}
"""llms.parquet column <- raw column of ``open-llm-leaderboard/contents`` (scores are the 0-1 "Raw" ones)."""

_BOOL_COLUMNS = ("has_chat_template", "is_merged", "is_moe", "is_official_provider")
_INT_COLUMNS = ("generation", "hub_hearts")
_FLOAT_COLUMNS = ("params_billions", "score_bbh", "score_gpqa", "score_math_l5", "score_mmlu_pro", "score_musr",
                  "score_ifeval")
_DATE_COLUMNS = ("upload_date", "submission_date")
_EMOJI = re.compile("[\U0001F000-\U0001FAFF\uFE0F]")
_PARENTHESES = re.compile(r"\([^)]*\)")


def _normalise_model_type(value: object) -> object:
    """``"💬 chat models (RLHF, DPO, IFT, ...)"`` -> ``"chatmodels"`` (as in ../shared/data/leaderboard-contents)."""
    if not isinstance(value, str):
        return value
    return re.sub(r"\s+", "", _PARENTHESES.sub("", _EMOJI.sub("", value))) or None


def normalise_contents(raw: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Map the raw contents table to :data:`CONTENTS_COLUMNS`, one row per LLM.

    Per LLM the row with the latest ``Submission Date`` is kept (the table has one row per LLM
    and precision). ``model_type`` loses its emoji, parenthesis and spaces; a missing
    ``base_model`` becomes the LLM itself (no known parent); dates become ``YYYY-MM-DD``.

    Returns:
        ``(llms frame sorted by llm, notes)``; notes name raw columns that were absent
        (their columns are then empty).

    Raises:
        DataError: the table has no ``fullname`` column.
    """
    if "fullname" not in raw.columns:
        raise DataError(
            f"{CONTENTS_REPO_ID}: no 'fullname' column (the LLM id); columns found: {list(raw.columns)[:40]}"
        )
    notes: list[str] = []
    frame = pd.DataFrame(index=raw.index)
    for column, sources in CONTENTS_COLUMNS.items():
        source = next((name for name in sources if name in raw.columns), None)
        if source is None:
            notes.append(f"contents table lacks {' / '.join(map(repr, sources))}: column {column!r} left empty")
            frame[column] = np.nan
        else:
            frame[column] = raw[source].to_numpy()
    frame = frame[frame["llm"].notna() & (frame["llm"].astype(str).str.strip() != "")].copy()
    frame["llm"] = frame["llm"].astype(str).str.strip()
    frame["model_type"] = frame["model_type"].map(_normalise_model_type)
    for column in _DATE_COLUMNS:
        text = frame[column].astype("string").str.slice(0, 10)
        is_date = text.str.match(r"^\d{4}-\d{2}-\d{2}$").fillna(False).astype(bool)
        frame[column] = text.where(is_date, None).astype(object)
    for column in ("license", "architecture", "precision", "weight_type", "base_model"):
        text = frame[column].astype("string").str.strip()
        frame[column] = text.where(text != "", None).astype(object)
    frame["base_model"] = frame["base_model"].where(frame["base_model"].notna(), frame["llm"])
    for column in _BOOL_COLUMNS:
        frame[column] = frame[column].map(lambda v: bool(v) if isinstance(v, (bool, np.bool_, int, float)) and v == v
                                          else str(v).strip().lower() in ("true", "1", "yes")).astype(bool)
    for column in _INT_COLUMNS:
        numbers = pd.to_numeric(frame[column], errors="coerce")
        frame[column] = numbers.astype("int64") if numbers.notna().all() else numbers.astype("Int64")
    for column in _FLOAT_COLUMNS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    order = frame.assign(_date=frame["submission_date"].fillna("")).sort_values(
        ["llm", "_date"], ascending=[True, False], kind="stable"
    )
    frame = order.drop(columns="_date").drop_duplicates("llm", keep="first")
    return frame.sort_values("llm", kind="stable").reset_index(drop=True), notes


def _fetch_contents(client: HubClient, retry: RetryPolicy, rng: random.Random,
                    on_retry: Log | None) -> tuple[pd.DataFrame, int]:
    """The raw contents table (all its ``data/*.parquet`` shards) and its size in bytes."""
    try:
        files = retry.call(lambda: client.list_files(CONTENTS_REPO_ID), rng=rng, on_retry=on_retry)
    except Exception as error:
        kind = classify_error(error)
        if kind is None:
            raise
        advice = f"; {_gated_advice(CONTENTS_REPO_ID)}" if kind == "gated" else ""
        raise HubError(f"cannot list {CONTENTS_REPO_ID} ({kind.replace('_', ' ')}): {_short(error)}{advice}") from error
    shards = sorted((path, size) for path, size in files if path.endswith(".parquet"))
    if not shards:
        raise HubError(f"{CONTENTS_REPO_ID} holds no parquet file (files: {[path for path, _ in files][:10]})")
    frames = []
    for path, _ in shards:
        try:
            local = retry.call(lambda path=path: client.download(CONTENTS_REPO_ID, path), rng=rng, on_retry=on_retry)
        except Exception as error:
            if classify_error(error) is None:
                raise
            raise HubError(f"cannot download {CONTENTS_REPO_ID}/{path}: {_short(error)}") from error
        try:
            frames.append(pd.read_parquet(local))
        except Exception as error:  # many parser error types; the file name is what helps
            raise DataError(f"{CONTENTS_REPO_ID}/{path}: cannot read parquet: {_short(error)}") from error
        finally:
            client.release(local)
    return pd.concat(frames, ignore_index=True), sum(size for _, size in shards)


# ----------------------------------------------------------------------------- selection


def read_models_file(path: str | os.PathLike[str]) -> list[str]:
    """LLM ids from a text file, one per line (``org/name``); blank lines and ``#`` comments ignored.

    Raises:
        DataError: a line is not of the form ``org/name``, or the file names no LLM.
    """
    ids: list[str] = []
    for line_number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if not re.fullmatch(r"[A-Za-z0-9][\w.\-]*/[\w.\-]+", text):
            raise DataError(f"{path}:{line_number}: {text!r} is not a Hugging Face id of the form org/name")
        if text not in ids:
            ids.append(text)
    if not ids:
        raise DataError(f"{path}: names no LLM")
    return ids


def select_llms(available: Sequence[str], *, models: Sequence[str] | None = None, n_models: int | None = None,
                seed: int = 0) -> list[str]:
    """The LLMs to pull: ``models`` as given; or ``n_models`` drawn without replacement from
    ``available`` (sorted first, so the draw depends only on the set and ``seed``); or all.

    Raises:
        ConfigError: both ``models`` and ``n_models``, or ``n_models < 1``.
    """
    if models is not None and n_models is not None:
        raise ConfigError("give either a list of LLMs or a number of LLMs, not both")
    if models is not None:
        return list(dict.fromkeys(models))
    pool = sorted(set(available))
    if n_models is None or n_models >= len(pool):
        if n_models is not None and n_models < 1:
            raise ConfigError(f"--models must be >= 1, got {n_models}")
        return pool
    if n_models < 1:
        raise ConfigError(f"--models must be >= 1, got {n_models}")
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(pool), size=n_models, replace=False)
    return sorted(pool[i] for i in chosen)


# ----------------------------------------------------------------------------- atomic files


def _temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def _write_parquet_atomic(frame: pd.DataFrame, path: Path, metadata: dict | None = None) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    if metadata is not None:
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), _METADATA_KEY: json.dumps(metadata).encode("utf-8")}
        )
    temporary = _temporary_name(path)
    try:
        pq.write_table(table, temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _write_text_atomic(text: str, path: Path) -> None:
    temporary = _temporary_name(path)
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _read_staged_metadata(path: Path) -> dict | None:
    import pyarrow.parquet as pq

    try:
        metadata = pq.read_schema(path).metadata or {}
        payload = json.loads(metadata[_METADATA_KEY].decode("utf-8"))
    except Exception:  # unreadable or foreign file: treat as not staged, it will be pulled again
        return None
    return payload if payload.get("format") == _STAGING_FORMAT else None


# ----------------------------------------------------------------------------- one LLM


@dataclass
class _ModelResult:
    """What a worker brings back for one LLM (workers never write files; the main thread does)."""

    llm: str
    rows: pd.DataFrame | None = None  # item, benchmark, subtask, text, correct
    done: set[str] = field(default_factory=set)  # benchmarks complete (pulled, or absent upstream)
    runs: dict[str, str] = field(default_factory=dict)  # task -> file used
    reports: list[dict] = field(default_factory=list)  # files skipped for good (malformed, absent)
    incomplete: list[dict] = field(default_factory=list)  # benchmarks to retry (gated, transient, vanished)
    skipped: str | None = None  # the whole LLM could not be listed
    skip_kind: str | None = None
    bytes_downloaded: int = 0
    retries: int = 0


def _gated_advice(repo_id: str) -> str:
    return (f"accept its conditions at https://huggingface.co/datasets/{repo_id} with your account, then log in "
            "(`hf auth login`) or set HF_TOKEN, and re-run the same command")


def _pull_one(client: HubClient, llm: str, benchmarks: Sequence[str], retry: RetryPolicy, strict: bool,
              seed: int) -> _ModelResult:
    repo_id = details_repo_id(llm)
    result = _ModelResult(llm=llm)
    rng = random.Random(f"{seed}/{llm}")

    def count_retry(_: str) -> None:
        result.retries += 1

    try:
        files = retry.call(lambda: client.list_files(repo_id), rng=rng, on_retry=count_retry)
    except Exception as error:
        kind = classify_error(error)
        if kind is None:
            raise
        result.skip_kind = "gated" if kind == "gated" else ("missing" if kind in ("repo_missing", "file_missing")
                                                             else "transient")
        if kind == "gated":
            result.skipped = f"{repo_id} is gated or needs a token: {_gated_advice(repo_id)}"
        elif kind in ("repo_missing", "file_missing"):
            result.skipped = f"{repo_id} not found (LLM renamed, removed or never evaluated): {_short(error)}"
        else:
            result.skipped = f"{repo_id}: could not list files after {retry.max_attempts} attempts: {_short(error)}"
        return result

    chosen = latest_samples_files(files, benchmarks)
    frames: list[pd.DataFrame] = []
    for key in benchmarks:
        benchmark = BENCHMARKS[key]
        own = [samples_file for samples_file in chosen if samples_file.benchmark == key]
        if not own:
            result.done.add(key)
            result.reports.append({"llm": llm, "benchmark": benchmark.name, "file": None,
                                   "problem": f"no samples file of {benchmark.name} in {repo_id}"})
            continue
        benchmark_frames: list[pd.DataFrame] = []
        benchmark_runs: dict[str, str] = {}
        failure: dict | None = None
        for samples_file in own:
            label = f"{repo_id}/{samples_file.path}"
            try:
                local = retry.call(lambda samples_file=samples_file: client.download(repo_id, samples_file.path),
                                   rng=rng, on_retry=count_retry)
            except Exception as error:
                kind = classify_error(error)
                if kind is None:
                    raise
                if kind == "gated":
                    reason = f"{repo_id} is gated or needs a token for {benchmark.name}: {_gated_advice(repo_id)}"
                elif kind in ("file_missing", "repo_missing"):
                    reason = f"{label} vanished between listing and download: {_short(error)}"
                else:
                    reason = f"{label}: gave up after {retry.max_attempts} attempts: {_short(error)}"
                failure = {"llm": llm, "benchmark": benchmark.name, "kind": kind, "reason": reason}
                break
            try:
                result.bytes_downloaded += samples_file.size
                frame, duplicates = read_samples(local, samples_file.task, label=label)
            except MalformedSamplesError as error:
                if strict:
                    raise
                result.reports.append({"llm": llm, "benchmark": benchmark.name, "file": label,
                                       "problem": f"skipped malformed file: {error}"})
                continue
            finally:
                client.release(local)
            if duplicates:
                result.reports.append({"llm": llm, "benchmark": benchmark.name, "file": label,
                                       "problem": f"{duplicates} repeated doc_id record(s) ignored"})
            benchmark_frames.append(frame)
            benchmark_runs[samples_file.task] = samples_file.path
        if failure is not None:
            result.incomplete.append(failure)  # the whole benchmark is retried on the next run
            continue
        result.done.add(key)
        frames.extend(benchmark_frames)
        result.runs.update(benchmark_runs)
    if frames:
        result.rows = pd.concat(frames, ignore_index=True)
    return result


# ----------------------------------------------------------------------------- summary


@dataclass
class PullSummary:
    """What a pull did; written as ``DIR/pull_summary.json``."""

    out: str
    source: str
    benchmarks: list[str]
    requested_llms: int
    pulled_llms: list[str] = field(default_factory=list)  # fetched (some or all benchmarks) in this run
    already_complete: list[str] = field(default_factory=list)  # staged by an earlier run, nothing fetched
    skipped_llms: dict[str, str] = field(default_factory=dict)  # llm -> reason (not in the tables)
    incomplete: list[dict] = field(default_factory=list)  # benchmark of an LLM to retry (gated, transient)
    file_reports: list[dict] = field(default_factory=list)  # files skipped for good
    not_in_contents: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tables: dict[str, int] = field(default_factory=dict)
    per_benchmark: dict[str, dict[str, int]] = field(default_factory=dict)
    runs: dict[str, list[str]] = field(default_factory=dict)  # llm -> run timestamps used
    bytes_downloaded: int = 0
    retries: int = 0
    text_conflicts: int = 0
    started_at: str = ""
    finished_at: str = ""
    seconds: float = 0.0
    metric_rules: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"format": "bayes-simrmf/pull-summary/v1", **self.__dict__}

    def lines(self) -> list[str]:
        """A short human summary (the JSON file has everything)."""
        lines = [
            f"pulled {len(self.pulled_llms):,} LLMs this run, {len(self.already_complete):,} already complete, "
            f"{len(self.skipped_llms):,} skipped, of {self.requested_llms:,} requested "
            f"({_format_bytes(self.bytes_downloaded)} of samples read, {self.retries} retries)",
            f"tables: {self.tables.get('responses', 0):,} responses, {self.tables.get('items', 0):,} items, "
            f"{self.tables.get('llms', 0):,} LLMs",
        ]
        for name, counts in self.per_benchmark.items():
            lines.append(f"  {name}: {counts['llms']:,} LLMs x {counts['items']:,} items, "
                         f"{counts['responses']:,} responses")
        for llm, reason in list(self.skipped_llms.items())[:10]:
            lines.append(f"skipped {llm}: {reason}")
        if len(self.skipped_llms) > 10:
            lines.append(f"... and {len(self.skipped_llms) - 10} more skipped LLMs (see {SUMMARY_FILE})")
        if self.incomplete:
            by_benchmark: dict[str, int] = {}
            for entry in self.incomplete:
                by_benchmark[entry["benchmark"]] = by_benchmark.get(entry["benchmark"], 0) + 1
            shown = ", ".join(f"{name} for {count} LLM(s)" for name, count in by_benchmark.items())
            lines.append(f"incomplete (re-run the same command to retry): {shown}; "
                         f"first: {self.incomplete[0]['reason']}")
        if self.file_reports:
            lines.append(f"{len(self.file_reports)} file problem(s) (files skipped for good), first: "
                         f"{self.file_reports[0]['problem']}")
        if self.not_in_contents:
            lines.append(f"{len(self.not_in_contents)} LLM(s) not in the contents table (no metadata): "
                         f"{', '.join(self.not_in_contents[:5])}")
        lines.extend(self.notes)
        return lines


def _format_bytes(size: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(size) < 1000 or unit == "TB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"  # pragma: no cover


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ----------------------------------------------------------------------------- pull


class _ItemsStore:
    """Question texts seen so far (``.pull/items.parquet``), written by the main thread only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        columns = ["item", "benchmark", "subtask", "text"]
        if path.is_file():
            self.frame = pd.read_parquet(path)[columns]
        else:
            self.frame = pd.DataFrame({column: pd.Series(dtype=object) for column in columns})
        self.conflicts = 0

    def add(self, rows: pd.DataFrame) -> None:
        known = rows["item"].isin(self.frame["item"])
        if known.any():
            merged = rows.loc[known, ["item", "text"]].merge(self.frame[["item", "text"]], on="item",
                                                            suffixes=("", "_known"))
            self.conflicts += int((merged["text"] != merged["text_known"]).sum())
        new = rows.loc[~known, ["item", "benchmark", "subtask", "text"]].drop_duplicates("item")
        if len(new):
            self.frame = pd.concat([self.frame, new], ignore_index=True)
            _write_parquet_atomic(self.frame, self.path)


def _staging_paths(out: Path) -> tuple[Path, Path, Path]:
    staging = out / STAGING_DIR
    return staging, staging / "models", staging / "items.parquet"


def _stage_result(result: _ModelResult, models_dir: Path, items: _ItemsStore) -> None:
    """Merge a worker's result with what was staged before and write it atomically."""
    path = models_dir / f"{llm_key(result.llm)}.parquet"
    previous = _read_staged_metadata(path) if path.is_file() else None
    frames = []
    if result.rows is not None:
        items.add(result.rows)  # texts first: a staged LLM always has its items
        frames.append(result.rows[["item", "correct"]])
    done = set(result.done)
    runs = dict(result.runs)
    reports = list(result.reports)
    if previous is not None:  # keep what earlier runs staged for the benchmarks not fetched now
        fresh = {BENCHMARKS[key].name for key in result.done}
        old = pd.read_parquet(path)
        old = old[~old["item"].str.split("/", n=1).str[0].isin(fresh)]
        frames.insert(0, old[["item", "correct"]])
        done |= set(previous.get("done", []))
        runs = {**previous.get("runs", {}), **runs}
        reports = [r for r in previous.get("reports", []) if r.get("benchmark") not in fresh] + reports
    staged = (pd.concat(frames, ignore_index=True) if frames
              else pd.DataFrame({"item": pd.Series(dtype=object), "correct": pd.Series(dtype=np.int8)}))
    staged = staged.drop_duplicates("item", keep="last").sort_values("item", kind="stable").reset_index(drop=True)
    staged["correct"] = staged["correct"].astype(np.int8)
    metadata = {"format": _STAGING_FORMAT, "llm": result.llm, "done": sorted(done), "runs": runs,
                "reports": reports, "staged_at": _now()}
    _write_parquet_atomic(staged, path, metadata)


def _load_contents_cached(client: HubClient, staging: Path, retry: RetryPolicy, log: Log) -> pd.DataFrame:
    cached = staging / "contents.parquet"
    if cached.is_file():
        return pd.read_parquet(cached)
    raw, size = _fetch_contents(client, retry, random.Random(0), on_retry=log)
    _write_parquet_atomic(raw, cached)
    log(f"contents table: {len(raw):,} rows ({_format_bytes(size)}), cached in {cached}")
    return raw


def pull(
    out: str | os.PathLike[str],
    client: HubClient,
    *,
    models: Sequence[str] | None = None,
    n_models: int | None = None,
    seed: int = 0,
    benchmarks: str | Iterable[str] = DEFAULT_BENCHMARKS,
    workers: int = 4,
    strict: bool = False,
    retry: RetryPolicy | None = None,
    progress: bool = False,
    log: Log | None = None,
) -> PullSummary:
    """Pull per-question results, question texts and metadata into folder ``out``; resumable.

    Args:
        out: the dataset folder to write (created if needed); ``out/.pull`` is the staging area.
        client: where to read from (:class:`HfHubClient` or :class:`LocalHubMirror`).
        models: LLM ids to pull (e.g. from :func:`read_models_file`); LLMs absent from the
            contents table are pulled too, with empty metadata, and reported.
        n_models: pull this many LLMs drawn from the contents table with ``seed``; neither
            ``models`` nor ``n_models``: every LLM of the contents table.
        seed: seed of that draw (and of the retry jitter).
        benchmarks: keys of :data:`BENCHMARKS`, as a list or ``"bbh,math"``.
        workers: LLMs fetched concurrently (a small pool keeps within the hub's rate limits).
        strict: a malformed samples file stops the pull (:class:`MalformedSamplesError`);
            by default that file (one subtask of one LLM) is skipped and reported.
        retry: backoff policy for transient errors (default :class:`RetryPolicy`).
        progress: show a tqdm bar over LLMs.
        log: receives progress messages (gated datasets, retries); ``None`` silences it.

    Returns:
        The :class:`PullSummary`, also written to ``out/pull_summary.json``.

    Raises:
        ConfigError: bad option values. DataError: nothing could be pulled, or bad input (also
        :class:`MalformedSamplesError` with ``strict``). HubError: the contents table is unreachable.
        Unexpected errors (bugs, a crash) propagate; everything staged so far is kept, and
        re-running resumes.
    """
    from tqdm.auto import tqdm

    log = sink(log)
    retry = retry or RetryPolicy(seed=seed)
    keys = parse_benchmarks(benchmarks)
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    started, clock = _now(), time.monotonic()
    out = Path(out)
    staging, models_dir, items_path = _staging_paths(out)
    models_dir.mkdir(parents=True, exist_ok=True)
    try:
        raw = _load_contents_cached(client, staging, retry, log)
        contents, notes = normalise_contents(raw)
        selected = select_llms(contents["llm"].tolist(), models=models, n_models=n_models, seed=seed)
        summary = PullSummary(out=str(out), source=client.describe(), benchmarks=[BENCHMARKS[k].name for k in keys],
                              requested_llms=len(selected), started_at=started, notes=notes,
                              metric_rules={BENCHMARKS[k].name: f"{BENCHMARKS[k].metric}: {BENCHMARKS[k].rule}"
                                            for k in keys})
        if n_models is not None and n_models > len(selected):
            summary.notes.append(f"--models {n_models} asked for more LLMs than the contents table has "
                                 f"({len(selected)}); pulling all")
        todo: list[tuple[str, tuple[str, ...]]] = []
        for llm in selected:
            staged = models_dir / f"{llm_key(llm)}.parquet"
            metadata = _read_staged_metadata(staged) if staged.is_file() else None
            needed = tuple(key for key in keys if metadata is None or key not in metadata.get("done", []))
            if needed:
                todo.append((llm, needed))
            else:
                summary.already_complete.append(llm)

        items = _ItemsStore(items_path)
        warned_gated = False
        bar = tqdm(total=len(todo), desc="pulling LLMs", unit="LLM", disable=not progress, dynamic_ncols=True)
        say = (lambda message: bar.write(message)) if progress else log
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pull")
        futures = {pool.submit(_pull_one, client, llm, needed, retry, strict, seed): needed for llm, needed in todo}
        try:
            for future in as_completed(futures):
                result = future.result()  # unexpected errors propagate here; staged work is kept
                summary.retries += result.retries
                summary.bytes_downloaded += result.bytes_downloaded
                if result.skipped is not None and (models_dir / f"{llm_key(result.llm)}.parquet").is_file():
                    # staged by an earlier run: keep that, retry the missing benchmarks next time
                    result.incomplete = [{"llm": result.llm, "benchmark": BENCHMARKS[key].name,
                                          "kind": result.skip_kind, "reason": result.skipped}
                                         for key in futures[future]]
                    result.skipped = None
                if result.skipped is not None:
                    summary.skipped_llms[result.llm] = result.skipped
                    if result.skip_kind == "gated" and not warned_gated:
                        say(f"gated: {result.skipped}")
                        warned_gated = True
                    elif result.skip_kind != "gated":
                        say(f"skipped {result.llm}: {result.skipped}")
                else:
                    if result.rows is not None or result.done:
                        _stage_result(result, models_dir, items)
                        summary.pulled_llms.append(result.llm)
                    elif not (models_dir / f"{llm_key(result.llm)}.parquet").is_file() and result.incomplete:
                        summary.skipped_llms[result.llm] = result.incomplete[0]["reason"]
                    for entry in result.incomplete:
                        summary.incomplete.append(entry)
                        if entry["kind"] == "gated":
                            if not warned_gated:
                                say(f"gated: {entry['reason']} (skipping {entry['benchmark']} where gated)")
                                warned_gated = True
                        else:
                            say(f"incomplete {result.llm}: {entry['reason']}")
                bar.update(1)
                bar.set_postfix(pulled=len(summary.pulled_llms), skipped=len(summary.skipped_llms), refresh=False)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            bar.close()
            raise
        pool.shutdown(wait=True)
        bar.close()
        summary.text_conflicts = items.conflicts
        _assemble(out, selected, keys, contents, items, summary, models_dir)
    finally:
        client.close()
    summary.finished_at = _now()
    summary.seconds = round(time.monotonic() - clock, 3)
    _write_text_atomic(json.dumps(summary.to_dict(), indent=1, ensure_ascii=False, default=str) + "\n",
                       out / SUMMARY_FILE)
    if not summary.tables.get("responses"):
        raise DataError(
            f"nothing pulled into {out}: no responses for the {len(selected)} requested LLM(s) "
            f"({len(summary.skipped_llms)} skipped); see {out / SUMMARY_FILE}"
        )
    return summary


def _assemble(out: Path, selected: Sequence[str], keys: Sequence[str], contents: pd.DataFrame, items: _ItemsStore,
              summary: PullSummary, models_dir: Path) -> None:
    """Final tables from the staging area: the selected LLMs and requested benchmarks only."""
    names = {BENCHMARKS[key].name for key in keys}
    frames = []
    for llm in sorted(selected):  # staged files are sorted by item: responses come out sorted by (llm, item)
        path = models_dir / f"{llm_key(llm)}.parquet"
        if not path.is_file():
            continue
        metadata = _read_staged_metadata(path) or {}
        for report in metadata.get("reports", []):
            if report.get("benchmark") in names and report not in summary.file_reports:
                summary.file_reports.append(report)
        staged = pd.read_parquet(path)
        staged = staged[staged["item"].str.split("/", n=1).str[0].isin(names)]
        timestamps = set()
        for task, file in metadata.get("runs", {}).items():
            benchmark, parsed = _benchmark_of_task(task), parse_samples_filename(file)
            if benchmark is not None and parsed is not None and benchmark.name in names:
                timestamps.add(parsed[1])
        if len(staged) == 0:
            if llm not in summary.skipped_llms:
                summary.skipped_llms[llm] = "no samples for the requested benchmarks"
            continue
        summary.runs[llm] = sorted(timestamps)
        frames.append(pd.DataFrame({"llm": llm, "item": staged["item"].to_numpy(),
                                    "correct": staged["correct"].to_numpy(dtype=np.int8)}))
    if not frames:
        summary.tables = {"responses": 0, "items": 0, "llms": 0}
        return
    responses = pd.concat(frames, ignore_index=True)
    referenced = pd.unique(responses["item"])
    items_frame = items.frame[items.frame["item"].isin(referenced)].drop_duplicates("item")
    missing = np.setdiff1d(referenced, items_frame["item"].to_numpy())
    if len(missing):
        raise DataError(f"{items.path}: staged responses name {len(missing)} item(s) without text, e.g. "
                        f"{list(missing[:3])}; delete {out / STAGING_DIR} and pull again")
    items_frame = items_frame.sort_values("item", kind="stable").reset_index(drop=True)
    pulled = pd.unique(responses["llm"])
    llms = contents[contents["llm"].isin(pulled)]
    absent = sorted(set(pulled) - set(llms["llm"]))
    if absent:
        summary.not_in_contents = absent
        llms = pd.concat([llms, pd.DataFrame({"llm": absent})], ignore_index=True)
    llms = llms.sort_values("llm", kind="stable").reset_index(drop=True)
    for name, frame in (("responses", responses), ("items", items_frame), ("llms", llms)):
        _write_parquet_atomic(frame, out / f"{name}.parquet")
    summary.tables = {"responses": len(responses), "items": len(items_frame), "llms": len(llms)}
    benchmark_of = responses["item"].str.split("/", n=1).str[0]
    for key in keys:
        name = BENCHMARKS[key].name
        part = responses[benchmark_of == name]
        summary.per_benchmark[name] = {"llms": int(part["llm"].nunique()), "items": int(part["item"].nunique()),
                                       "responses": len(part)}


# ----------------------------------------------------------------------------- dry run


@dataclass
class DryRunReport:
    """What a pull would fetch: per LLM the chosen samples files and their sizes (from the file listing)."""

    source: str
    benchmarks: list[str]
    requested_llms: int
    contents_bytes: int
    files: dict[str, list[SamplesFile]] = field(default_factory=dict)  # llm -> files
    skipped_llms: dict[str, str] = field(default_factory=dict)

    def bytes_by_benchmark(self) -> dict[str, tuple[int, int]]:
        """benchmark name -> (number of files, bytes) over all listed LLMs."""
        totals: dict[str, list[int]] = {BENCHMARKS[key].name: [0, 0] for key in self.benchmarks}
        for files in self.files.values():
            for samples_file in files:
                entry = totals[BENCHMARKS[samples_file.benchmark].name]
                entry[0] += 1
                entry[1] += samples_file.size
        return {name: (count, size) for name, (count, size) in totals.items()}

    @property
    def total_bytes(self) -> int:
        return sum(samples_file.size for files in self.files.values() for samples_file in files)

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "benchmarks": [BENCHMARKS[key].name for key in self.benchmarks],
            "requested_llms": self.requested_llms,
            "listed_llms": len(self.files),
            "contents_bytes": self.contents_bytes,
            "total_bytes": self.total_bytes,
            "by_benchmark": {name: {"files": count, "bytes": size}
                             for name, (count, size) in self.bytes_by_benchmark().items()},
            "skipped_llms": self.skipped_llms,
            "files": {llm: [{"path": f.path, "size": f.size, "task": f.task, "timestamp": f.timestamp}
                            for f in files] for llm, files in self.files.items()},
        }

    def to_text(self, max_llms: int = 20) -> str:
        lines = [f"dry run against {self.source}: {self.requested_llms:,} LLMs requested, "
                 f"{len(self.files):,} listed, {len(self.skipped_llms):,} skipped; nothing downloaded but the "
                 f"contents table ({_format_bytes(self.contents_bytes)})"]
        for llm, files in list(self.files.items())[:max_llms]:
            size = sum(f.size for f in files)
            tasks = ", ".join(sorted({BENCHMARKS[f.benchmark].name for f in files})) or "nothing"
            lines.append(f"  {llm}: {len(files)} files, {_format_bytes(size)} ({tasks})")
        if len(self.files) > max_llms:
            lines.append(f"  ... and {len(self.files) - max_llms:,} more LLMs")
        lines.append("by benchmark (files, bytes):")
        for name, (count, size) in self.bytes_by_benchmark().items():
            per = f", {_format_bytes(size / max(len(self.files), 1))} per LLM" if self.files else ""
            lines.append(f"  {name}: {count:,} files, {_format_bytes(size)}{per}")
        lines.append(f"total: {_format_bytes(self.total_bytes)} of samples files")
        for llm, reason in list(self.skipped_llms.items())[:10]:
            lines.append(f"skipped {llm}: {reason}")
        return "\n".join(lines)


def dry_run(
    client: HubClient,
    *,
    models: Sequence[str] | None = None,
    n_models: int | None = None,
    seed: int = 0,
    benchmarks: str | Iterable[str] = DEFAULT_BENCHMARKS,
    workers: int = 4,
    retry: RetryPolicy | None = None,
    progress: bool = False,
) -> DryRunReport:
    """List what :func:`pull` would fetch (one file listing per LLM; no samples downloaded)."""
    from tqdm.auto import tqdm

    retry = retry or RetryPolicy(seed=seed)
    keys = parse_benchmarks(benchmarks)
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    try:
        raw, contents_bytes = _fetch_contents(client, retry, random.Random(seed), on_retry=None)
        contents, _ = normalise_contents(raw)
        selected = select_llms(contents["llm"].tolist(), models=models, n_models=n_models, seed=seed)
        report = DryRunReport(source=client.describe(), benchmarks=list(keys), requested_llms=len(selected),
                              contents_bytes=contents_bytes)

        def listing(llm: str):
            repo_id = details_repo_id(llm)
            try:
                files = retry.call(lambda: client.list_files(repo_id), rng=random.Random(f"{seed}/{llm}"))
            except Exception as error:
                kind = classify_error(error)
                if kind is None:
                    raise
                return llm, None, f"{kind.replace('_', ' ')}: {_short(error)}"
            return llm, latest_samples_files(files, keys), None

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="list") as pool:
            found: dict[str, list[SamplesFile]] = {}
            for llm, files, problem in tqdm(pool.map(listing, selected), total=len(selected), desc="listing LLMs",
                                            unit="LLM", disable=not progress):
                if files is None:
                    report.skipped_llms[llm] = problem
                else:
                    found[llm] = files
        report.files = {llm: found[llm] for llm in selected if llm in found}
    finally:
        client.close()
    return report
