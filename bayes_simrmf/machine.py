"""What a benchmark or study report says about where it ran, and how it measures a process.

One :func:`machine_line` for every report header; peak and current resident memory of this process;
a command's wall time and its own peak RSS (:func:`run_command_with_rusage`); power-law fits of
growth (:func:`power_law`). Used by the scripts in ``experiments/bench``.
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import time
from pathlib import Path

import numpy as np


def peak_rss_mib() -> float:
    """Peak resident set of this process since it started (``VmHWM``). Not ``ru_maxrss``: Linux carries that over
    ``fork`` + ``exec``, so a child's figure would never be below its parent's RSS at the fork."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def current_rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def machine_line() -> str:
    from importlib.metadata import version  # not importing jax here keeps the parent small (see peak_rss_mib)

    load = os.getloadavg()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"machine: {platform.machine()}, {os.cpu_count()} cores, {memory:.0f} GiB RAM, {platform.platform()}, python "
            f"{platform.python_version()}, jax {version('jax')} ({os.environ.get('JAX_PLATFORMS') or 'default backend'}), numpyro {version('numpyro')}, numpy {np.__version__}; "
            f"load average at start {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min)")


def run_command_with_rusage(command: list[str], *, env: dict | None = None, cwd: Path | None = None,
                            timeout: float | None = None) -> tuple[float, float, int | None, str, str]:
    """Run ``command``; wall seconds, peak RSS in MiB of that process (``wait4``'s ``ru_maxrss``, its own, not a
    running maximum over all children), exit code (None when killed at ``timeout``), stdout, stderr."""
    import threading

    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd, env=env)
    outputs: dict[str, str] = {}
    readers = [threading.Thread(target=lambda name=name, stream=stream: outputs.__setitem__(name, stream.read()))
               for name, stream in (("stdout", process.stdout), ("stderr", process.stderr))]
    for reader in readers:
        reader.start()
    killed = threading.Event()
    timer = None
    if timeout is not None:
        timer = threading.Timer(timeout, lambda: (killed.set(), process.kill()))
        timer.start()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if timer is not None:
        timer.cancel()
    for reader in readers:
        reader.join()
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4; tell Popen
    code = None if killed.is_set() else process.returncode
    # ru_maxrss of the reaped child; its floor is this (small) parent's RSS at the fork, printed by the callers.
    return wall, usage.ru_maxrss / 1024, code, outputs.get("stdout", ""), outputs.get("stderr", "")


def power_law(sizes, values) -> tuple[float, float]:
    """Exponent and constant of ``value = c · size^exponent`` (least squares in log-log; non-positive values dropped)."""
    sizes, values = np.asarray(sizes, float), np.asarray(values, float)
    keep = values > 0
    if keep.sum() < 2:
        return float("nan"), float("nan")
    sizes, values = sizes[keep], values[keep]
    exponent, log_constant = np.polyfit(np.log(np.asarray(sizes, float)), np.log(np.asarray(values, float)), 1)
    return float(exponent), float(np.exp(log_constant))
