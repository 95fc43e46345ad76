"""Stopping cleanly on Ctrl-C (SIGINT) and SIGTERM.

The command-line entry point calls :func:`install`; from then on the first SIGINT or SIGTERM removes what
is being written (folders and files registered with :func:`cleanup_on_interrupt`), prints one line on stderr
and ends the process at once with exit code 128 + the signal number (130 for SIGINT, 143 for SIGTERM).

The process ends with ``os._exit``: a ``KeyboardInterrupt`` raised into a running fit can be swallowed by a
callback (JAX's garbage-collection hook prints "Exception ignored in ...") so that the fit goes on, and the
interpreter's teardown with XLA's threads still running has crashed with a segmentation fault. Nothing is
lost by skipping the teardown: every output of the package is written to a temporary name and renamed into
place, and the temporary name is registered here while it exists. A rename that must not be cut in two
(replacing a model folder) runs inside :func:`deferred`, which holds the signal until it is done.

Without :func:`install` (the library, the tests) nothing changes: Python's own handlers stay, and
registering paths only keeps a set.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

__all__ = ["cleanup_on_interrupt", "completed", "deferred", "install", "installed", "written_into_place"]

_SIGNAL_NAMES = {signal.SIGINT: "SIGINT (Ctrl-C)", signal.SIGTERM: "SIGTERM"}
_lock = threading.Lock()
_paths: dict[int, Path] = {}
_state = {"installed": False, "deferred": 0, "pending": None, "stopping": False}
#: Outputs moved into place whole during this process (named in the stop line: they are complete, not removed).
_completed: list[Path] = []


def installed() -> bool:
    """Whether :func:`install` has set the handlers in this process."""
    return bool(_state["installed"])


def install() -> None:
    """Handle SIGINT and SIGTERM as described in the module docstring (main thread only; else a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for number in _SIGNAL_NAMES:
        signal.signal(number, _handler)
    _state["installed"] = True


@contextlib.contextmanager
def cleanup_on_interrupt(path: str | os.PathLike) -> Iterator[Path]:
    """Register ``path`` (a folder or file being written) for removal if the process is interrupted meanwhile."""
    path = Path(path)
    with _lock:
        _paths[id(path)] = path
    try:
        yield path
    finally:
        with _lock:
            _paths.pop(id(path), None)


@contextlib.contextmanager
def written_into_place(temporary: str | os.PathLike, path: str | os.PathLike) -> Iterator[Path]:
    """Yield ``temporary`` to write into; when the block succeeds, rename it to ``path`` (so ``path`` is whole or
    absent). ``temporary`` is removed on an error, and on an interrupt meanwhile (:func:`cleanup_on_interrupt`)."""
    temporary = Path(temporary)
    with cleanup_on_interrupt(temporary):
        try:
            yield temporary
            os.replace(temporary, path)
            completed(path)
        finally:
            temporary.unlink(missing_ok=True)


def completed(path: str | os.PathLike) -> None:
    """Record that ``path`` is now in place and whole, so that an interrupt after it says so instead of leaving the
    user to wonder whether the output is complete."""
    with _lock:
        _completed.append(Path(path))


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT / SIGTERM until the block is done (for renames that must happen together)."""
    _state["deferred"] += 1
    try:
        yield
    finally:
        _state["deferred"] -= 1
        pending = _state["pending"]
        if pending is not None and not _state["deferred"]:
            _state["pending"] = None
            _stop(pending)


def _handler(signum: int, frame) -> None:
    if _state["deferred"]:
        _state["pending"] = signum
        return
    _stop(signum)


def _remove_registered() -> int:
    """Remove every registered path; how many there were."""
    with _lock:
        paths = list(_paths.values())
    for path in paths:
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        except OSError:
            pass
    return len(paths)


def _stop(signum: int) -> None:
    """Remove what is being written, say so in one line, and end the process now."""
    code = 128 + int(signum)
    if _state["stopping"]:  # a second signal during the clean-up: just go
        os._exit(code)
    _state["stopping"] = True
    removed = _remove_registered()
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    name = _SIGNAL_NAMES.get(signum, f"signal {signum}")
    note = f"; removed {removed} unfinished output(s)" if removed else ""
    with _lock:
        done = [str(path) for path in _completed]
    kept = f"; {', '.join(done[-3:])} {'was' if len(done) == 1 else 'were'} written in full before it" if done else ""
    line = f"\ninterrupted by {name}: stopped{note}{kept}, nothing half-written is left\n"
    with contextlib.suppress(OSError):
        os.write(2, line.encode())
    os._exit(code)
