"""The leaderboard's contents table (LLM metadata) mapped to this package's columns (:func:`normalise_contents`)."""

from __future__ import annotations

import random
import re

import numpy as np
import pandas as pd

from bayes_simrmf.errors import DataError
from bayes_simrmf.log import Log
from bayes_simrmf.hub.common import CONTENTS_REPO_ID, HubError
from bayes_simrmf.hub.client import HubClient, RetryPolicy, _attempt, _gated_advice, _short


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
    files, kind, error = _attempt(retry, lambda: client.list_files(CONTENTS_REPO_ID), rng=rng, on_retry=on_retry)
    if error is not None:
        advice = f"; {_gated_advice(CONTENTS_REPO_ID)}" if kind == "gated" else ""
        raise HubError(f"cannot list {CONTENTS_REPO_ID} ({kind.replace('_', ' ')}): {_short(error)}{advice}") from error
    shards = sorted((path, size) for path, size in files if path.endswith(".parquet"))
    if not shards:
        raise HubError(f"{CONTENTS_REPO_ID} holds no parquet file (files: {[path for path, _ in files][:10]})")
    frames = []
    for path, _ in shards:
        local, _, error = _attempt(retry, lambda path=path: client.download(CONTENTS_REPO_ID, path), rng=rng,
                                   on_retry=on_retry)
        if error is not None:
            raise HubError(f"cannot download {CONTENTS_REPO_ID}/{path}: {_short(error)}") from error
        try:
            frames.append(pd.read_parquet(local))
        except Exception as error:  # many parser error types; the file name is what helps
            raise DataError(f"{CONTENTS_REPO_ID}/{path}: cannot read parquet: {_short(error)}") from error
        finally:
            client.release(local)
    return pd.concat(frames, ignore_index=True), sum(size for _, size in shards)


