"""What a pull would fetch and how long it would take, without downloading results (:func:`dry_run`)."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from bayes_simrmf.errors import ConfigError
from bayes_simrmf.hub.common import _format_bytes, details_repo_id
from bayes_simrmf.hub.benchmarks import BENCHMARKS, DEFAULT_BENCHMARKS, parse_benchmarks
from bayes_simrmf.hub.client import HubClient, RetryPolicy, _attempt, _short
from bayes_simrmf.hub.samples import SamplesFile, latest_samples_files
from bayes_simrmf.hub.contents import _fetch_contents, normalise_contents
from bayes_simrmf.hub.selection import select_llms


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
            rng = random.Random(f"{seed}/{llm}")
            files, kind, error = _attempt(retry, lambda: client.list_files(repo_id), rng=rng)
            if error is not None:
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
