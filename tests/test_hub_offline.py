"""Offline, the hub fails at once: a name that does not resolve and a refused connection are not transient
(bayes_simrmf.hub.network), while rate limits and server errors are still retried. No network is used: the
failures are the exceptions requests / httpx / urllib3 / huggingface_hub raise, built by hand, and a patched
socket module."""

from __future__ import annotations

import socket
import types

import pytest
from click.testing import CliRunner

from bayes_simrmf import hub
from bayes_simrmf.cli import main
from bayes_simrmf.hub.common import HubUnreachableError


def _requests_dns_error():
    import requests
    import urllib3

    reason = urllib3.exceptions.NameResolutionError("huggingface.co", None, socket.gaierror(-2, "Name or service not known"))
    return requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/api/datasets", reason))


def _httpx_error(text: str, cause: BaseException | None = None):
    """The ConnectError of the HTTP library huggingface_hub uses (httpx, or httpx2 in later versions)."""
    import importlib

    for name in ("httpx2", "httpx"):
        try:
            error = importlib.import_module(name).ConnectError(text)
            break
        except ImportError:
            continue
    else:
        error = type("ConnectError", (Exception,), {})(text)
    error.__cause__ = cause
    return error


def _local_entry_error(cause: BaseException | None):
    from huggingface_hub.errors import LocalEntryNotFoundError

    error = LocalEntryNotFoundError("An error happened while trying to locate the file on the Hub and we cannot "
                                    "find the requested files in the local cache.")
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (_requests_dns_error, "unreachable"),
        (lambda: _httpx_error("[Errno -2] Name or service not known"), "unreachable"),
        (lambda: _httpx_error("[Errno -3] Temporary failure in name resolution"), "unreachable"),
        (lambda: _httpx_error("[Errno 111] Connection refused", ConnectionRefusedError(111, "Connection refused")),
         "unreachable"),
        (lambda: _local_entry_error(_httpx_error("[Errno -2] Name or service not known")), "unreachable"),
        (lambda: socket.gaierror(-3, "Temporary failure in name resolution"), "unreachable"),
        (lambda: OSError(101, "Network is unreachable"), "unreachable"),
        (lambda: _local_entry_error(None), "transient"),  # unchanged: no cause that says why
        (lambda: _httpx_error("Server disconnected without sending a response."), "transient"),
        (lambda: ConnectionResetError(104, "Connection reset by peer"), "transient"),
    ],
)
def test_unreachable_hub_errors_are_told_from_transient_ones(make, kind):
    assert hub.classify_error(make()) == kind


def _policy():
    sleeps: list[float] = []
    return hub.RetryPolicy(max_attempts=31, sleep=sleeps.append), sleeps


class _FailingClient(hub.HubClient):
    """Every call raises ``error()``; counts the calls."""

    def __init__(self, error):
        self.error, self.calls = error, 0

    def list_files(self, repo_id):
        self.calls += 1
        raise self.error()

    download = list_files


def test_a_dns_failure_stops_the_pull_at_once_without_retrying(tmp_path):
    policy, sleeps = _policy()
    client = _FailingClient(_requests_dns_error)
    with pytest.raises(HubUnreachableError, match="hub is unreachable.*--hub-root.*HF_HUB_OFFLINE=1"):
        hub.pull(tmp_path / "out", client, n_models=5, retry=policy)
    assert client.calls == 1 and sleeps == []
    assert not (tmp_path / "out").exists()  # nothing staged: no half-made data folder for a later fit to trip on
    with pytest.raises(HubUnreachableError):
        hub.dry_run(_FailingClient(_requests_dns_error), n_models=5, retry=policy)
    (tmp_path / "kept").mkdir()  # a folder that existed before the pull stays, empty
    with pytest.raises(HubUnreachableError):
        hub.pull(tmp_path / "kept", _FailingClient(_requests_dns_error), n_models=5, retry=policy)
    assert (tmp_path / "kept").is_dir() and not any((tmp_path / "kept").iterdir())


@pytest.mark.parametrize("status", [429, 503])
def test_rate_limits_and_server_errors_are_still_retried(tmp_path, status):
    from huggingface_hub.errors import HfHubHTTPError

    policy, sleeps = _policy()
    response = types.SimpleNamespace(status_code=status, headers={}, request=None)
    client = _FailingClient(lambda: HfHubHTTPError(f"{status} error", response=response))
    with pytest.raises(hub.HubError, match="transient"):
        hub.dry_run(client, n_models=5, retry=policy)
    assert client.calls == 31 and len(sleeps) == 30


@pytest.mark.parametrize(("patch", "expected"), [
    ("getaddrinfo", "does not resolve"),
    ("create_connection", "the connection was refused"),
])
def test_data_pull_offline_fails_in_one_line_naming_a_mirror_and_hf_hub_offline(monkeypatch, patch, expected):
    from huggingface_hub import HfApi, constants

    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    listed = []
    monkeypatch.setattr(HfApi, "list_repo_tree", lambda *args, **kwargs: listed.append(args) or [])

    def dns_failure(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    def refused(*args, **kwargs):
        raise ConnectionRefusedError(111, "Connection refused")

    if patch == "getaddrinfo":
        monkeypatch.setattr("bayes_simrmf.hub.network.socket.getaddrinfo", dns_failure)
    else:
        monkeypatch.setattr("bayes_simrmf.hub.network.socket.getaddrinfo", lambda *args, **kwargs: [])
        monkeypatch.setattr("bayes_simrmf.hub.network.socket.create_connection", refused)
    result = CliRunner().invoke(main, ["data", "pull", "--models", "5", "--dry-run", "--quiet"])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "hub is unreachable" in lines[0] and expected in lines[0]
    assert "--hub-root" in lines[0] and "HF_HUB_OFFLINE=1" in lines[0]
    assert listed == []  # failed before huggingface_hub's own retries


def test_behind_a_proxy_the_reachability_check_is_left_to_the_proxy(monkeypatch):
    from bayes_simrmf.hub.network import check_reachable

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setattr("bayes_simrmf.hub.network.socket.getaddrinfo",
                        lambda *args, **kwargs: pytest.fail("resolved the hub's name behind a proxy"))
    check_reachable("https://huggingface.co")  # returns without looking the name up
