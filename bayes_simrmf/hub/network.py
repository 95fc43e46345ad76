"""Telling "the hub cannot be reached" from "the hub is busy": only the second is worth a retry.

A name that does not resolve, a refused connection or an unreachable network will not mend in the seconds a
backoff waits, and ``huggingface_hub`` already retries such calls itself for half a minute each; so the pull
checks once that the hub's host resolves and accepts a connection (:func:`check_reachable`), and
:func:`unreachable_reason` recognises the same failures inside the errors of ``requests``, ``httpx``,
``urllib3`` and ``huggingface_hub`` (which wrap them, sometimes several levels deep).
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

from bayes_simrmf.hub.common import OFFLINE_ADVICE, HubUnreachableError

_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy")
_UNREACHABLE_ERRNOS = {errno.ECONNREFUSED: "the connection was refused", errno.ENETUNREACH: "the network is unreachable",
                       errno.EHOSTUNREACH: "no route to the host"}
_MESSAGES = (
    # (text in an error message, lower case) -> reason
    ("name or service not known", "its name does not resolve"),
    ("temporary failure in name resolution", "its name does not resolve"),
    ("nodename nor servname", "its name does not resolve"),
    ("getaddrinfo failed", "its name does not resolve"),
    ("failed to resolve", "its name does not resolve"),
    ("no address associated with hostname", "its name does not resolve"),
    ("connection refused", "the connection was refused"),
    ("network is unreachable", "the network is unreachable"),
    ("no route to host", "no route to the host"),
)
# A connect timeout is not here: a busy server can cause one, so it stays a transient error.
_CLASS_NAMES = {"NameResolutionError": "its name does not resolve"}


def _chain(error: BaseException, limit: int = 12) -> Iterator[BaseException]:
    """``error`` and the errors it wraps: causes, contexts, ``reason`` attributes and exception arguments."""
    seen: set[int] = set()
    todo = [error]
    while todo and len(seen) < limit:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = [current.__cause__, current.__context__, getattr(current, "reason", None),
                   *getattr(current, "args", ())]
        todo.extend(item for item in wrapped if isinstance(item, BaseException))


def unreachable_reason(error: BaseException) -> str | None:
    """Why the hub cannot be reached, if ``error`` (or an error it wraps) says so; None for other failures."""
    for current in _chain(error):
        if isinstance(current, socket.gaierror):
            return f"its name does not resolve: {current}"
        if isinstance(current, OSError) and current.errno in _UNREACHABLE_ERRNOS:
            return _UNREACHABLE_ERRNOS[current.errno]
        for cls in type(current).__mro__:
            if cls.__name__ in _CLASS_NAMES:
                return _CLASS_NAMES[cls.__name__]
        text = str(current).lower()
        for needle, reason in _MESSAGES:
            if needle in text:
                return reason
    return None


def check_reachable(endpoint: str, timeout: float = 10.0) -> None:
    """HubUnreachableError, in one line with what to do, if ``endpoint``'s host does not resolve or refuses a
    connection. Skipped behind a proxy (the proxy resolves the name); other failures are left to the calls."""
    if any(os.environ.get(name) for name in _PROXY_VARIABLES):
        return
    parts = urlsplit(endpoint)
    host = parts.hostname
    if not host:
        return
    port = parts.port or (80 if parts.scheme == "http" else 443)
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise HubUnreachableError(f"the hub is unreachable ({host} does not resolve: {error}); {OFFLINE_ADVICE}") \
            from error
    try:
        connection = socket.create_connection((host, port), timeout=timeout)
    except OSError as error:  # a timeout (busy server, slow network) is left to the calls and their retries
        reason = None if isinstance(error, socket.timeout) else _UNREACHABLE_ERRNOS.get(error.errno)
        if reason is None:
            return
        raise HubUnreachableError(f"the hub is unreachable ({host}:{port}: {reason}); {OFFLINE_ADVICE}") from error
    connection.close()
