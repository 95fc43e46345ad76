"""Pull per-question results, texts and metadata into a dataset folder, resumably (:func:`pull`)."""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_simrmf.errors import ConfigError, DataError
from bayes_simrmf.log import Log, sink
from bayes_simrmf.hub.common import (
    STAGING_DIR,
    SUMMARY_FILE,
    _STAGING_FORMAT,
    MalformedSamplesError,
    _format_bytes,
    details_repo_id,
    llm_key,
)
from bayes_simrmf.hub.benchmarks import BENCHMARKS, DEFAULT_BENCHMARKS, _benchmark_of_task, parse_benchmarks
from bayes_simrmf.hub.client import HubClient, RetryPolicy, _attempt, _gated_advice, _short
from bayes_simrmf.hub.samples import latest_samples_files, parse_samples_filename, read_samples
from bayes_simrmf.hub.contents import _fetch_contents, normalise_contents
from bayes_simrmf.hub.selection import select_llms
from bayes_simrmf.hub.files import _read_staged_metadata, _write_parquet_atomic, _write_text_atomic


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


def _pull_one(client: HubClient, llm: str, benchmarks: Sequence[str], retry: RetryPolicy, strict: bool,
              seed: int) -> _ModelResult:
    repo_id = details_repo_id(llm)
    result = _ModelResult(llm=llm)
    rng = random.Random(f"{seed}/{llm}")

    def count_retry(_: str) -> None:
        result.retries += 1

    files, kind, error = _attempt(retry, lambda: client.list_files(repo_id), rng=rng, on_retry=count_retry)
    if error is not None:
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
            local, kind, error = _attempt(retry, lambda path=samples_file.path: client.download(repo_id, path),
                                          rng=rng, on_retry=count_retry)
            if error is not None:
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


def check_pull_folder(out: str | os.PathLike[str]) -> Path:
    """``out`` as a Path; ConfigError unless it is new, empty, or a folder a pull wrote (it holds the staging area
    or the summary): a pull never writes over files it did not write."""
    from bayes_simrmf.outputs import refuse_unsafe_target

    out = refuse_unsafe_target(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a folder")
    if out.is_dir() and not ((out / STAGING_DIR).is_dir() or (out / SUMMARY_FILE).is_file()):
        entries = sorted(entry.name for entry in out.iterdir())
        if entries:
            raise ConfigError(f"--out {out} is a folder not written by a pull (it holds {', '.join(entries[:5])}"
                              f"{' ...' if len(entries) > 5 else ''}); give a new or empty folder")
    return out


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


@dataclass(frozen=True)
class _FetchOptions:
    retry: RetryPolicy
    strict: bool
    seed: int
    workers: int
    progress: bool


def _pending(selected: Sequence[str], keys: Sequence[str], models_dir: Path,
             summary: PullSummary) -> list[tuple[str, tuple[str, ...]]]:
    """``(llm, benchmark keys still to fetch)`` for each selected LLM not complete in the staging area."""
    todo = []
    for llm in selected:
        staged = models_dir / f"{llm_key(llm)}.parquet"
        metadata = _read_staged_metadata(staged) if staged.is_file() else None
        needed = tuple(key for key in keys if metadata is None or key not in metadata.get("done", []))
        if needed:
            todo.append((llm, needed))
        else:
            summary.already_complete.append(llm)
    return todo


def _fetch_all(client: HubClient, todo, options: _FetchOptions, summary: PullSummary, models_dir: Path,
               items: _ItemsStore, log: Log) -> None:
    """Fetch every pending LLM on a small thread pool, staging each as it completes."""
    from tqdm.auto import tqdm

    bar = tqdm(total=len(todo), desc="pulling LLMs", unit="LLM", disable=not options.progress, dynamic_ncols=True)
    say = (lambda message: bar.write(message)) if options.progress else log
    warned = {"gated": False}
    pool = ThreadPoolExecutor(max_workers=options.workers, thread_name_prefix="pull")
    futures = {pool.submit(_pull_one, client, llm, needed, options.retry, options.strict, options.seed): needed
               for llm, needed in todo}
    try:
        for future in as_completed(futures):
            result = future.result()  # unexpected errors propagate here; staged work is kept
            _record(result, futures[future], summary, models_dir, items, say, warned)
            bar.update(1)
            bar.set_postfix(pulled=len(summary.pulled_llms), skipped=len(summary.skipped_llms), refresh=False)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
        raise
    pool.shutdown(wait=True)
    bar.close()


def _say_gated_once(message: str, say: Log, warned: dict) -> None:
    if not warned["gated"]:
        say(message)
        warned["gated"] = True


def _record(result: _ModelResult, needed: tuple[str, ...], summary: PullSummary, models_dir: Path,
            items: _ItemsStore, say: Log, warned: dict) -> None:
    """Stage one LLM's result and account for it in the summary (pulled, skipped or incomplete)."""
    summary.retries += result.retries
    summary.bytes_downloaded += result.bytes_downloaded
    staged_before = (models_dir / f"{llm_key(result.llm)}.parquet").is_file()
    if result.skipped is not None and staged_before:
        # staged by an earlier run: keep that, retry the missing benchmarks next time
        result.incomplete = [{"llm": result.llm, "benchmark": BENCHMARKS[key].name,
                              "kind": result.skip_kind, "reason": result.skipped} for key in needed]
        result.skipped = None
    if result.skipped is not None:
        summary.skipped_llms[result.llm] = result.skipped
        if result.skip_kind == "gated":
            _say_gated_once(f"gated: {result.skipped}", say, warned)
        else:
            say(f"skipped {result.llm}: {result.skipped}")
        return
    if result.rows is not None or result.done:
        _stage_result(result, models_dir, items)
        summary.pulled_llms.append(result.llm)
    elif not staged_before and result.incomplete:
        summary.skipped_llms[result.llm] = result.incomplete[0]["reason"]
    for entry in result.incomplete:
        summary.incomplete.append(entry)
        if entry["kind"] == "gated":
            _say_gated_once(f"gated: {entry['reason']} (skipping {entry['benchmark']} where gated)", say, warned)
        else:
            say(f"incomplete {result.llm}: {entry['reason']}")


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
    log = sink(log)
    retry = retry or RetryPolicy(seed=seed)
    keys = parse_benchmarks(benchmarks)
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    started, clock = _now(), time.monotonic()
    out = check_pull_folder(out)
    new_folder = not out.exists()
    staging, models_dir, items_path = _staging_paths(out)
    models_dir.mkdir(parents=True, exist_ok=True)
    try:
        try:
            raw = _load_contents_cached(client, staging, retry, log)
        except BaseException:
            _remove_empty_staging(out, staging, models_dir, new_folder)
            raise
        contents, notes = normalise_contents(raw)
        selected = select_llms(contents["llm"].tolist(), models=models, n_models=n_models, seed=seed)
        summary = PullSummary(out=str(out), source=client.describe(), benchmarks=[BENCHMARKS[k].name for k in keys],
                              requested_llms=len(selected), started_at=started, notes=notes,
                              metric_rules={BENCHMARKS[k].name: f"{BENCHMARKS[k].metric}: {BENCHMARKS[k].rule}"
                                            for k in keys})
        if n_models is not None and n_models > len(selected):
            summary.notes.append(f"--models {n_models} asked for more LLMs than the contents table has "
                                 f"({len(selected)}); pulling all")
        todo = _pending(selected, keys, models_dir, summary)
        items = _ItemsStore(items_path)
        _fetch_all(client, todo, _FetchOptions(retry, strict, seed, workers, progress), summary, models_dir, items, log)
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


def _remove_empty_staging(out: Path, staging: Path, models_dir: Path, new_folder: bool) -> None:
    """Where the contents table could not be read and nothing was staged yet, leave no trace: the staging area goes,
    and ``out`` too if this pull created it (a later ``fit --data out`` then says the folder is absent, not that
    it lacks files)."""
    if any(models_dir.iterdir()) or any(entry != models_dir for entry in staging.iterdir()):
        return
    models_dir.rmdir()
    staging.rmdir()
    if new_folder and not any(out.iterdir()):
        out.rmdir()


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


