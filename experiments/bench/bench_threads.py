"""BLAS and XLA thread settings for the CLI fit (issue 15): which default is right for the machine.

Runs ``bayes-simrmf fit`` end to end (a fresh process each time: imports, load, split, side information, fit,
evaluation A-D, save) under thread settings, interleaved (round-robin over the settings, ``--repeats`` rounds), so
that a change of the machine's load hits every setting alike. Wall time and the process's peak RSS (``ru_maxrss``
from ``wait4``) per run; the median per setting and its ratio to the CLI's default.

Settings:

* ``default``: the environment as given; the CLI then sets ``OPENBLAS_NUM_THREADS=1`` (its default since issue 15);
* ``blas-all``: ``OPENBLAS_NUM_THREADS=<cores>``: OpenBLAS's own default, what the CLI did before;
* ``xla1``: the CLI default plus one XLA thread
  (``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1``).

Usage (about 6 minutes on a shared 2-core CPU):
    python experiments/bench/bench_threads.py [--repeats 2] [--datasets openllm-v2-mmlupro-math openllm-v2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bayes_simrmf.data.locations import default_data_dir
from bayes_simrmf.machine import machine_line, run_command_with_rusage

REPO = Path(__file__).resolve().parents[2]

COMMANDS = {
    "openllm-v2-mmlupro-math": ["--T", "300", "--guide", "delta", "--method", "simrmf"],
    "openllm-v2": ["--T", "100", "--guide", "delta", "--method", "simrmf"],
}


def settings() -> dict[str, dict[str, str]]:
    cores = str(os.cpu_count() or 1)
    return {
        "default": {},
        "blas-all": {"OPENBLAS_NUM_THREADS": cores},
        "xla1": {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--datasets", nargs="+", default=list(COMMANDS), choices=list(COMMANDS))
    args = parser.parse_args()
    data_root = default_data_dir()
    executable = shutil.which("bayes-simrmf")
    prefix = [executable] if executable else [sys.executable, "-m", "bayes_simrmf.cli"]
    print(f"command: python experiments/bench/bench_threads.py {' '.join(sys.argv[1:])}")
    print(machine_line())
    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}", flush=True)
    base_env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "XLA_FLAGS")}
    runs: dict[tuple[str, str], list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):
            for dataset in args.datasets:
                for name, extra in settings().items():
                    command = [*prefix, "fit", "--data", str(data_root / dataset), *COMMANDS[dataset], "--quiet",
                               "--no-baseline", "--out", str(Path(scratch) / f"m{repeat}-{dataset}-{name}")]
                    wall, peak, code, stdout, stderr = run_command_with_rusage(command, cwd=REPO, env={**base_env, **extra})
                    if code != 0:
                        raise SystemExit(f"{name} on {dataset} failed ({code}):\n{stderr[-2000:]}")
                    fitted = next((line for line in stdout.splitlines() if line.startswith("fitted")), "")
                    runs.setdefault((dataset, name), []).append((wall, peak))
                    print(f"  round {repeat} {dataset:<24} {name:<9} {wall:6.1f} s {peak:6.0f} MiB  {fitted}", flush=True)
    print(f"\n## bayes-simrmf fit, median over {args.repeats} interleaved rounds; ratio = setting / default")
    print(f"{'data':<24} {'setting':<9} {'wall':>8} {'ratio':>6} {'peak RSS':>10} {'runs (s)':>20}")
    for dataset in args.datasets:
        reference = np.median([w for w, _ in runs[(dataset, "default")]])
        for name in settings():
            walls = [w for w, _ in runs[(dataset, name)]]
            peaks = [p for _, p in runs[(dataset, name)]]
            print(f"{dataset:<24} {name:<9} {np.median(walls):6.1f} s {np.median(walls) / reference:5.2f}x "
                  f"{np.median(peaks):6.0f} MiB {' '.join(f'{w:.1f}' for w in walls):>20}")
    load = os.getloadavg()
    print(f"\nload average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")


if __name__ == "__main__":
    main()
