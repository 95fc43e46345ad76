"""Samples files of an LLM's details dataset: their names, the latest run per task, and their records as
0/1 answers (:func:`read_samples`)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_simrmf.errors import ConfigError
from bayes_simrmf.hub.common import MalformedSamplesError
from bayes_simrmf.hub.benchmarks import BENCHMARKS, _benchmark_of_task


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


