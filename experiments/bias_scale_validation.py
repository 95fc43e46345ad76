"""How the biases' prior sds were chosen: validation log loss of three Table 2 rows, read from their cells.

The three rows differ only in what is tuned after d and λ_reg (each on that seed's validation pairs,
carved from its own training pairs; ``experiments/configs/table2.json``):

- ``MF+groups``: nothing (both bias scales fixed at 2.0);
- ``MF+groups+bias``: one scale shared by LLM and item biases;
- ``MF+groups+llmbias``: the LLM biases' scale, then the item biases'.

Each cell stores every candidate's validation scores; this script prints the best validation log loss of
each row per dataset × T × seed and the paired differences (95% t interval over seeds), under the cells'
provenance line. No test split is read; nothing is computed, so the view is as current as the cells.

Usage:
    python experiments/bias_scale_validation.py --out experiments/results/bias_scale_validation
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_simrmf.evaluate.study import check_provenance, paired_interval
from bayes_simrmf.evaluate.tables import read_cells

ROOT = Path(__file__).resolve().parents[1]
CELLS = ROOT / "experiments" / "results" / "table2_cells"
ROWS = ("MF+groups", "MF+groups+bias", "MF+groups+llmbias")


def best_validation(cells: Path = CELLS) -> pd.DataFrame:
    """One row per dataset × T × seed × method: the best validation log loss over its last stage
    and the chosen bias scales."""
    records = []
    for method in ROWS:
        for path in sorted(cells.glob(f"*/T*/seed*/{method}.json")):
            payload = json.loads(path.read_text())
            dataset, t_part, seed_part = path.parts[-4:-1]
            losses = [row["log_loss"] for stage in payload["tuning"] for row in stage["table"]]
            if not losses:
                raise SystemExit(f"{path} has no tuning table")
            records.append({"dataset": dataset, "T": int(t_part[1:]), "seed": int(seed_part[4:]), "method": method,
                            "validation_log_loss": min(losses),
                            "llm_bias_scale": payload["chosen"].get("llm_bias_scale", payload["chosen"].get("bias_scale", 2.0)),
                            "item_bias_scale": payload["chosen"].get("bias_scale", 2.0)})
    return pd.DataFrame(records)


def report(frame: pd.DataFrame, command: str) -> str:
    provenance = check_provenance([cell for cell in read_cells(CELLS, {"methods": ROWS})], allow_mixed=True)
    lines = ["# Bias prior scales chosen on validation (Table 2 cells)", "", f"Command: `{command}`  ",
             *provenance.header(), "",
             "Validation: 10% of each seed's training pairs (log loss), never test pairs. Rows: `MF+groups` (both "
             "scales 2.0), `MF+groups+bias` (one shared scale tuned over 0.25, 0.5, 1, 2), `MF+groups+llmbias` (the "
             "LLM scale over 0.1, 0.25, 0.5, 1, 2, then the item scale over 0.5, 1, 2; each grid extended past an edge "
             "choice); d and λ_reg from `MF+groups`.",
             ""]
    wide = frame.pivot_table(index=["dataset", "T", "seed"], columns="method", values="validation_log_loss")
    lines += ["| dataset | T | seeds | " + " | ".join(f"{m} log loss" for m in ROWS) + " | llmbias − bias (mean [95% t interval]) | "
              "llmbias lower / equal / higher | chosen LLM scale | chosen item scale |", "|---|---|---|" + "---|" * (len(ROWS) + 4)]
    for (dataset, T), part in wide.groupby(level=["dataset", "T"]):
        part = part.dropna()
        if part.empty or not set(ROWS) <= set(part.columns):
            continue
        diff = (part["MF+groups+llmbias"] - part["MF+groups+bias"]).to_numpy()
        mean, lower, upper = paired_interval(diff)
        chosen = frame[(frame.dataset == dataset) & (frame["T"] == T) & (frame.method == "MF+groups+llmbias")]
        lines.append(f"| {dataset} | {T} | {len(part)} | " + " | ".join(
            f"{part[m].mean():.4f} ± {part[m].std(ddof=1) if len(part) > 1 else 0:.4f}" for m in ROWS)
            + f" | {mean:+.5f} [{lower:+.5f}, {upper:+.5f}] | "
            f"{int((diff < -1e-12).sum())} / {int((np.abs(diff) <= 1e-12).sum())} / {int((diff > 1e-12).sum())} | "
            f"{', '.join(f'{v:g}' for v in chosen.sort_values('seed')['llm_bias_scale'])} | "
            f"{', '.join(f'{v:g}' for v in chosen.sort_values('seed')['item_bias_scale'])} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "experiments" / "results" / "bias_scale_validation")
    args = parser.parse_args()
    frame = best_validation()
    command = "python experiments/bias_scale_validation.py --out experiments/results/bias_scale_validation"
    text = report(frame, command)
    args.out.with_suffix(".md").write_text(text)
    frame.to_csv(args.out.with_suffix(".csv"), index=False)
    print(text)


if __name__ == "__main__":
    main()
