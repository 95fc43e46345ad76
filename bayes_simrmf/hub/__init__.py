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

from bayes_simrmf.hub.common import (
    CONTENTS_REPO_ID,
    HubError,
    HubGatedError,
    HubNotFoundError,
    HubTransientError,
    STAGING_DIR,
    SUMMARY_FILE,
    MalformedSamplesError,
    details_repo_id,
    llm_key,
)
from bayes_simrmf.hub.benchmarks import BENCHMARKS, Benchmark, DEFAULT_BENCHMARKS, parse_benchmarks
from bayes_simrmf.hub.client import HfHubClient, HubClient, LocalHubMirror, RetryPolicy, classify_error
from bayes_simrmf.hub.samples import SamplesFile, latest_samples_files, parse_samples_filename, read_samples
from bayes_simrmf.hub.contents import CONTENTS_COLUMNS, normalise_contents
from bayes_simrmf.hub.selection import read_models_file, select_llms
from bayes_simrmf.hub.pull import PullSummary, pull
from bayes_simrmf.hub.dry_run import DryRunReport, dry_run

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
    "STAGING_DIR",
    "SUMMARY_FILE",
    "SamplesFile",
    "classify_error",
    "details_repo_id",
    "dry_run",
    "latest_samples_files",
    "llm_key",
    "normalise_contents",
    "parse_benchmarks",
    "parse_samples_filename",
    "pull",
    "read_models_file",
    "read_samples",
    "select_llms",
]
