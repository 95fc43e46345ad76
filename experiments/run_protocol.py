"""Table 2 and its siblings: the paper's evaluation protocol over a config, one cached cell at a time.

The study itself (split → tune on the seed's own training pairs → fit → score, provenance in every
cell, grids extended past an edge) is :mod:`bayes_simrmf.evaluate.runner`; the tables are
:mod:`bayes_simrmf.evaluate.tables`. This driver reads a config, runs the missing cells and rebuilds
``PREFIX.csv`` / ``PREFIX.md`` from every cell on disk (alone with ``--aggregate-only``).
``--max-minutes`` stops cleanly after the cell in progress; commit the cells as they finish.

Usage:
    python experiments/run_protocol.py --config experiments/configs/table2.json \
        --out experiments/results/table2 [--datasets openllm-v1-tiny] [--T 100] [--max-minutes 60]
"""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

from bayes_simrmf.evaluate.runner import run
from bayes_simrmf.evaluate.study import run_driver, study_parser
from bayes_simrmf.evaluate.tables import write_tables


def main() -> None:
    parser = study_parser(__doc__)
    parser.add_argument("--out", required=True, type=Path, help="output prefix: PREFIX.csv, PREFIX.md, PREFIX_cells/")
    parser.add_argument("--datasets", nargs="*", help="only these datasets of the config")
    parser.add_argument("--T", type=int, nargs="*", dest="t_values", help="only these T of the config")
    parser.add_argument("--methods", nargs="*", help="only these methods of the config (a method's 'inherit' "
                        "parent must be done or selected too)")
    parser.add_argument("--seeds", type=int, nargs="*", help="only these seeds of the config")
    parser.add_argument("--max-minutes", type=float, default=None, help="start no new cell after this long")
    args = parser.parse_args()
    config = json.loads(args.config.read_text())
    cells = args.out.parent / f"{args.out.name}_cells"
    deadline = time.time() + 60 * args.max_minutes if args.max_minutes else float("inf")
    command = shlex.join(["python", "experiments/run_protocol.py", "--config", str(args.config), "--out", str(args.out)])
    if not args.aggregate_only:
        run(config, cells, args.datasets, deadline, log=print, t_values=args.t_values, methods=args.methods,
            rerun_stale=args.rerun_stale, allow_dirty=args.allow_dirty, seeds=args.seeds)
    write_tables(config, cells, args.out, command, allow_mixed=args.allow_mixed)
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    run_driver("run_protocol", main)
