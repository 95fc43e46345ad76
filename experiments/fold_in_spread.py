"""Which spread to integrate over when a fitted LLM meets a question without data (or the reverse):
``fold_in_spread="gaussian"`` or ``"empirical"`` (see :class:`bayes_simrmf.predict.SimRMF`), decided on
validation only.

For each dataset × seed of the Table 2 config (T=100), the seed's split is drawn and a share of its *training*
questions (``--holdout items``, like split B) or LLMs (``llms``, like split C) is carved out with
:func:`bayes_simrmf.evaluate.tuning.carve_validation`; SimRMF+groups (kernel fold-in, benchmark item groups) is fitted on
the rest with that seed's Table 2 hyper-parameters (``experiments/results/table2_cells``, themselves chosen on
that seed's training pairs) and the held-out pairs are predicted with both spreads from the same fit; MF with
item groups (the held-out entities predicted from their group's fitted population) is the reference. No test
pair is used. One cached JSON per dataset × seed × hold-out.

Usage:
    python experiments/fold_in_spread.py --out experiments/results/fold_in_spread [--seeds 0 1 2] [--share 0.2]
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import pandas as pd

from bayes_simrmf.data import load_dataset, shared_dataset_path
from bayes_simrmf.evaluate.metrics import evaluate
from bayes_simrmf.options import DEFAULT_EMBEDDING_MODEL
from bayes_simrmf.evaluate.tuning import carve_validation

from bayes_simrmf.evaluate.runner import SeedContext, build
from bayes_simrmf.evaluate.study import write_json
from bayes_simrmf.evaluate.tables import mean_sd

METRICS = ("rmse_p", "rmse_m", "rmse_x", "log_loss")
SPREADS = ("gaussian", "empirical")


def run_cell(context: SeedContext, config: dict, cells_table2: Path, name: str, T: int, seed: int, holdout: str,
             share: float) -> dict:
    split = context.split
    train = split.pairs["train"]
    llm, item = split.llms[train.llm], split.items[train.item]
    held = carve_validation(llm, item, share=share, holdout=holdout, seed=seed)
    scores = {}
    started = time.perf_counter()
    for label in ("MF+groups", "SimRMF+groups"):
        spec = config["methods"][label]
        chosen = json.loads((cells_table2 / name / f"T{T}" / f"seed{seed}" / f"{label}.json").read_text())["chosen"]
        side, groups = context.side(spec), context.item_groups(spec)
        kwargs = {"item_groups": groups} if groups is not None else {}
        if side is not None:
            kwargs.update(side=side, llms=split.llms, items=split.items)
        model = build(spec, seed, chosen).fit(llm[~held], item[~held], train.correct[~held], **kwargs)
        spreads = SPREADS if label.startswith("SimRMF") else (None,)
        for spread in spreads:
            if spread is not None:
                model.fold_in_spread = spread
            prob = model.predict(llm[held], item[held], unknown="population")
            result = evaluate(prob, train.correct[held], llm[held], item[held])
            scores[label if spread is None else f"{label} {spread}"] = {m: float(result[m]) for m in METRICS}
    return {"dataset": name, "T": T, "seed": seed, "holdout": holdout, "share": share,
            "n_held_pairs": int(held.sum()), "seconds": time.perf_counter() - started, "scores": scores}


def write_report(cells: Path, out: Path, command: str) -> None:
    rows = []
    for path in sorted(cells.glob("*/*.json")):
        cell = json.loads(path.read_text())
        for method, scores in cell["scores"].items():
            rows.append({"dataset": cell["dataset"], "seed": cell["seed"], "holdout": cell["holdout"],
                         "method": method, **scores})
    frame = pd.DataFrame(rows)
    lines = ["# Fold-in spread: gaussian or empirical (chosen on validation carved from training pairs)", "",
             f"Command: `{command}` (resumable: one cached cell per dataset × seed × hold-out in `{cells}`)  ",
             "Hold-out `items`: a share of the seed's known questions with all their training pairs (like split B: "
             "fitted LLMs × questions without data); `llms`: a share of the known LLMs (like split C).  ",
             f"SimRMF+groups: kernel fold-in, benchmark item groups, question embeddings {DEFAULT_EMBEDDING_MODEL}; "
             "hyper-parameters of that seed's Table 2 cell (T=100). Same fit, two spreads. "
             "MF+groups: the held-out entities predicted from their group's fitted population.", ""]
    if frame.empty:
        out.with_suffix(".md").write_text("\n".join(lines + ["No cells yet."]) + "\n")
        return
    frame.to_csv(out.with_suffix(".csv"), index=False, float_format="%.6f")
    for holdout in ("items", "llms"):
        part = frame[frame["holdout"] == holdout]
        if part.empty:
            continue
        lines += [f"## Hold-out: {holdout}", "", "| dataset | method | seeds | " + " | ".join(METRICS) + " |",
                  "|---|---|---|" + "---|" * len(METRICS)]
        for (dataset, method), group in part.groupby(["dataset", "method"], sort=False):
            lines.append(f"| {dataset} | {method} | {len(group)} | "
                         + " | ".join(mean_sd(group[m].to_numpy()) for m in METRICS) + " |")
        lines += ["", "Paired difference empirical − gaussian (mean over seeds [min, max]; negative: empirical better):",
                  "", "| dataset | seeds | " + " | ".join(METRICS) + " |", "|---|---|" + "---|" * len(METRICS)]
        for dataset, group in part.groupby("dataset", sort=False):
            wide = group.pivot(index="seed", columns="method", values=list(METRICS))
            cells_text = []
            for metric in METRICS:
                diff = (wide[metric]["SimRMF+groups empirical"] - wide[metric]["SimRMF+groups gaussian"]).to_numpy()
                cells_text.append(f"{diff.mean():+.5f} [{diff.min():+.5f}, {diff.max():+.5f}]")
            lines.append(f"| {dataset} | {len(wide)} | " + " | ".join(cells_text) + " |")
        lines.append("")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=Path("experiments/configs/table2.json"))
    parser.add_argument("--out", type=Path, default=Path("experiments/results/fold_in_spread"))
    parser.add_argument("--datasets", nargs="*", help="only these datasets of the config")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--holdouts", nargs="*", default=["items", "llms"])
    parser.add_argument("--share", type=float, default=0.2)
    parser.add_argument("--T", type=int, default=100)
    parser.add_argument("--max-minutes", type=float, default=None)
    args = parser.parse_args()
    config = json.loads(args.config.read_text())
    cells_table2 = Path("experiments/results/table2_cells")
    cells = args.out.parent / f"{args.out.name}_cells"
    deadline = time.time() + 60 * args.max_minutes if args.max_minutes else float("inf")
    for name, options in config["datasets"].items():
        if args.datasets and name not in args.datasets:
            continue
        dataset, side_cache = None, {}
        for seed in args.seeds:
            todo = [h for h in args.holdouts if not (cells / name / f"seed{seed}-{h}.json").is_file()]
            if not todo or time.time() > deadline:
                continue
            if dataset is None:
                dataset = load_dataset(shared_dataset_path(name),
                                       unknown_entities=options.get("unknown_entities", "error"), log=None)
            context = SeedContext(dataset, options, args.T, seed, config["n_test_pairs"], side_cache)
            for holdout in todo:
                cell = run_cell(context, config, cells_table2, name, args.T, seed, holdout, args.share)
                write_json(cells / name / f"seed{seed}-{holdout}.json", cell)
                print(f"[{name} seed={seed} {holdout}] " + "  ".join(
                    f"{m}: " + "/".join(f"{s[k]:.4f}" for k in ("rmse_m", "rmse_x", "log_loss"))
                    for m, s in cell["scores"].items()) + f" ({cell['seconds']:.0f} s)", flush=True)
    command = shlex.join(["python", "experiments/fold_in_spread.py", "--out", str(args.out),
                          "--seeds", *map(str, args.seeds), "--share", str(args.share)])
    write_report(cells, args.out, command)
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
