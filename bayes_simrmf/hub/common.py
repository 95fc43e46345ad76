"""Ids, names and errors shared by the hub modules."""

from __future__ import annotations

from typing import Literal

from bayes_simrmf.errors import BayesSimRMFError, DataError


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


class HubUnreachableError(HubError):
    """The hub cannot be reached at all (its name does not resolve, the connection is refused): not retried."""


#: What to do when the hub is unreachable, appended to that error's one line.
OFFLINE_ADVICE = ("no network? read a local mirror in the hub's layout with --hub-root DIR, or set HF_HUB_OFFLINE=1 "
                  "to fail at once without trying")


class MalformedSamplesError(DataError):
    """A samples file has a line that is not JSON or lacks a field the pull needs (names file and line)."""


def _format_bytes(size: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(size) < 1000 or unit == "TB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"  # pragma: no cover
