"""Training degrees of the evaluation protocol on the shared datasets (eligibility, per-benchmark targets).

For each dataset x T (seed 0) this builds ``Protocol(...).split(dataset)`` and reports the known and
eligible counts, the training pairs, the LLM and item degree ranges, how many known LLMs / items
have no training pair (must be 0: such entities are moved to the new side, counted as "demoted"),
and whether the training graph is T-regular. For ``openllm-v2`` (MMLU-Pro answered by 37 of 78
LLMs) it also writes the full per-benchmark degree table at T=100 and T=300.

Data come from ``$BAYES_SIMRMF_DATA`` (default ``../shared/data`` next to the repository).

    python experiments/protocol_degrees.py --out experiments/results/protocol_degrees.md
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_simrmf.data import load_dataset, shared_dataset_path
from bayes_simrmf.evaluate.tables import markdown_table
from bayes_simrmf.splits import Protocol, Split

#: Dataset -> explicit known counts (None: the protocol's defaults).
DATASETS: dict[str, dict[str, int]] = {
    "openllm-v2-mmlupro-math": {"n_known_llms": 500, "n_known_items": 1000},
    "openllm-v2": {},
    "openllm-v2-bbh-tso5": {},
    "openllm-v1-tiny": {},
}
T_VALUES = (30, 100, 300, 1000)
#: (dataset, T) whose per-benchmark table is written in full.
DETAILED = (("openllm-v2", 100), ("openllm-v2", 300))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--T", nargs="+", type=int, default=list(T_VALUES), dest="T_values")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("experiments/results/protocol_degrees.md"))
    return parser.parse_args(argv)


def degree_range(values: np.ndarray) -> str:
    """``min-max (mean m)`` of an integer array ``(n,)``; ``-`` when empty."""
    if values.size == 0:
        return "-"
    low, high = int(values.min()), int(values.max())
    text = f"{low}" if low == high else f"{low}-{high}"
    return f"{text} (mean {values.mean():.1f})"


def summary_row(name: str, T: int, split: Split, n_llms: int, n_items: int, seconds: float) -> dict:
    """One row of the summary table, degrees counted from the training pairs themselves."""
    train = split.pairs["train"]
    llm_degree = np.bincount(train.llm, minlength=split.n_known_llms)[: split.n_known_llms]
    item_degree = np.bincount(train.item, minlength=split.n_known_items)[: split.n_known_items]
    report = split.degree_report
    return {
        "dataset": name,
        "T": T,
        "T used": report["T_used"],
        "known LLMs (eligible / all)": f"{split.n_known_llms} ({report['n_eligible_llms']} / {n_llms})",
        "known items (eligible / all)": f"{split.n_known_items} ({report['n_eligible_items']} / {n_items})",
        "train pairs": f"{len(train):,}",
        "LLM degree": degree_range(llm_degree),
        "item degree": degree_range(item_degree),
        "known LLMs / items with 0 pairs": f"{int((llm_degree == 0).sum())} / {int((item_degree == 0).sum())}",
        "demoted LLMs / items": f"{report['n_demoted_llms']} / {report['n_demoted_items']}",
        "T-regular": "yes" if report["t_regular"] else "no",
        "LLMs / items off nominal": f"{report['n_llms_off_nominal']} / {report['n_items_off_nominal']}",
        "seconds": f"{seconds:.2f}",
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    command = "python experiments/protocol_degrees.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    rows, detail = [], {}
    for name in args.datasets:
        dataset = load_dataset(shared_dataset_path(name), unknown_entities="add", log=None)
        print(dataset.summary(), flush=True)
        for T in args.T_values:
            start = time.perf_counter()
            split = Protocol(T=T, seed=args.seed, **DATASETS[name]).split(dataset, log=None)
            seconds = time.perf_counter() - start
            rows.append(summary_row(name, T, split, dataset.n_llms, dataset.n_items, seconds))
            print(" | ".join(str(value) for value in rows[-1].values()), flush=True)
            if (name, T) in DETAILED:
                detail[(name, T)] = split.degree_table()
    summary = pd.DataFrame(rows)
    lines = [
        "# Training degrees of the protocol: eligibility, per-benchmark targets, no empty known entity",
        "",
        f"Command: `{command.strip()}` (seed {args.seed}; data from `$BAYES_SIMRMF_DATA`, "
        "default `../shared/data`).",
        "",
        "`openllm-v2-mmlupro-math` uses `n_known_llms=500, n_known_items=1000`; the other datasets use the "
        "protocol's defaults (1,000 where at least 1,500 entities are eligible, else 2/3 of the eligible, "
        "the larger side capped at `max_known_ratio=10` x the smaller). Eligible: answered >= "
        "`min_answer_share=0.25` of all items (LLMs) / answered by >= 0.25 of all LLMs (items). "
        "Degrees are counted from the training pairs; \"0 pairs\" must be 0 (a known entity left without "
        "training pairs is moved to the new side and counted as demoted). T-regular: every known LLM and "
        "item got its nominal degree (the smaller known side `T used`, the larger side its share "
        "`T used * n_small / n_large`, floor or ceil); \"off nominal\" counts those that did not, e.g. "
        "known LLMs that answered fewer than `T used` known items (they train on all of them).",
        "",
        markdown_table(summary),
    ]
    for (name, T), table in detail.items():
        lines += [
            "",
            f"## Per benchmark: {name}, T={T}",
            "",
            "LLM degree: training pairs in the benchmark per known LLM that answered one of its known items; "
            "item degree: per known item of the benchmark; target pairs: what the proportional targets wanted.",
            "",
            markdown_table(table),
        ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
