"""Which spread to integrate over when a fitted LLM meets a question without data (or the reverse):
``fold_in_spread="gaussian"`` or ``"empirical"`` (see :class:`bayes_simrmf.predict.SimRMF`), decided on
validation only.

For each dataset × seed of ``experiments/configs/fold_in_spread.json``, Table 2's split is drawn
(:class:`bayes_simrmf.evaluate.seeds.ProtocolSeeds`) and a share of its *training* questions (hold-out
``items``, like split B) or LLMs (``llms``, like split C) is carved out with
:func:`bayes_simrmf.evaluate.tuning.carve_validation`; SimRMF+groups (kernel fold-in, benchmark item groups)
is fitted on the rest with that seed's Table 2 hyper-parameters (chosen there on the seed's training
pairs) and the held-out pairs are predicted with both spreads from the same fit; MF+groups (held-out
entities predicted from their group's fitted population) is the reference. No test pair is used. One
cell per dataset × seed × hold-out, with provenance (:class:`bayes_simrmf.evaluate.study.StudyCells`).

Usage:
    python experiments/fold_in_spread.py [--datasets openllm-v2] [--rerun-stale] [--aggregate-only]
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pandas as pd

from bayes_simrmf.evaluate.metrics import evaluate
from bayes_simrmf.evaluate.runner import SeedContext, build
from bayes_simrmf.evaluate.seeds import ProtocolSeeds
from bayes_simrmf.evaluate.study import StudyCells, check_provenance, paired_interval, run_driver, study_parser, parse_study
from bayes_simrmf.evaluate.tables import mean_sd
from bayes_simrmf.evaluate.tuning import carve_validation
from bayes_simrmf.options import DEFAULT_EMBEDDING_MODEL

ROOT = Path(__file__).resolve().parents[1]
CODE = ("experiments/fold_in_spread.py",)
CELLS = ROOT / "experiments" / "results" / "fold_in_spread_cells"
OUT = ROOT / "experiments" / "results" / "fold_in_spread"
METRICS = ("rmse_p", "rmse_m", "rmse_x", "log_loss")
SPREADS = ("gaussian", "empirical")


def cell_config(seeds: ProtocolSeeds, config: dict, dataset: str, seed: int, holdout: str) -> dict:
    return {**seeds.cell_config(dataset, config["T"], seed, [config["reference"], config["method"]]),
            "holdout": holdout, "share": config["share"]}


def run_cell(context: SeedContext, cell: dict) -> dict:
    """Fit the reference and the method on the training pairs less the hold-out; score both spreads."""
    split, seed = context.split, context.seed
    train = split.pairs["train"]
    llm, item = split.llms[train.llm], split.items[train.item]
    held = carve_validation(llm, item, share=cell["share"], holdout=cell["holdout"], seed=seed)
    scores = {}
    started = time.perf_counter()
    for label, method in cell["methods"].items():
        spec = method["spec"]
        side, groups = context.side(spec), context.item_groups(spec)
        kwargs = {"item_groups": groups} if groups is not None else {}
        if side is not None:
            kwargs.update(side=side, llms=split.llms, items=split.items)
        model = build(spec, seed, method["chosen"]).fit(llm[~held], item[~held], train.correct[~held], **kwargs)
        for spread in SPREADS if spec["method"] == "simrmf" else (None,):
            if spread is not None:
                model.fold_in_spread = spread
            prob = model.predict(llm[held], item[held], unknown="population")
            result = evaluate(prob, train.correct[held], llm[held], item[held])
            scores[label if spread is None else f"{label} {spread}"] = {m: float(result[m]) for m in METRICS}
    return {"n_held_pairs": int(held.sum()), "seconds": time.perf_counter() - started, "scores": scores}


def write_report(config: dict, cells: list[tuple[str, int, str, dict]], command: str, allow_mixed: bool) -> None:
    report = check_provenance(((f"{d}/seed{s}/{h}", cell) for d, s, h, cell in cells), allow_mixed=allow_mixed)
    frame = pd.DataFrame([{"dataset": dataset, "seed": seed, "holdout": holdout, "method": method, **scores,
                           "provenance": report.mark(f"{dataset}/seed{seed}/{holdout}")}
                          for dataset, seed, holdout, cell in cells for method, scores in cell["scores"].items()])
    frame.to_csv(OUT.with_suffix(".csv"), index=False, float_format="%.6f")
    method = config["method"]
    lines = ["# Fold-in spread: gaussian or empirical (chosen on validation carved from training pairs)", "",
             f"Command: `{command}` (config `experiments/configs/fold_in_spread.json`; one cell per dataset × seed × "
             "hold-out in `experiments/results/fold_in_spread_cells`)  ", *report.header(), "",
             f"Hold-out `items`: a share {config['share']} of the seed's known questions with all their training pairs "
             "(like split B: fitted LLMs × questions without data); `llms`: that share of the known LLMs (like split C). "
             f"{method}: kernel fold-in, benchmark item groups, question embeddings {DEFAULT_EMBEDDING_MODEL}; "
             f"hyper-parameters of that seed's Table 2 cell (T={config['T']}). Same fit, two spreads. "
             f"{config['reference']}: the held-out entities predicted from their group's fitted population. "
             "Cells marked in the `provenance` column of the CSV ran at other code.", ""]
    for holdout in config["holdouts"]:
        part = frame[frame["holdout"] == holdout]
        if part.empty:
            continue
        lines += [f"## Hold-out: {holdout}", "", "| dataset | method | seeds | " + " | ".join(METRICS) + " |",
                  "|---|---|---|" + "---|" * len(METRICS)]
        for (dataset, label), group in part.groupby(["dataset", "method"], sort=False):
            lines.append(f"| {dataset} | {label} | {len(group)} | "
                         + " | ".join(mean_sd(group[m].to_numpy()) for m in METRICS) + " |")
        lines += ["", "Paired difference empirical − gaussian, mean over seeds [95% t interval] (negative: empirical "
                  "better):", "", "| dataset | seeds | " + " | ".join(METRICS) + " |", "|---|---|" + "---|" * len(METRICS)]
        for dataset, group in part.groupby("dataset", sort=False):
            wide = group.pivot(index="seed", columns="method", values=list(METRICS))
            text = []
            for metric in METRICS:
                mean, lower, upper = paired_interval(
                    (wide[metric][f"{method} empirical"] - wide[metric][f"{method} gaussian"]).to_numpy())
                text.append(f"{mean:+.5f} [{lower:+.5f}, {upper:+.5f}]")
            lines.append(f"| {dataset} | {len(wide)} | " + " | ".join(text) + " |")
        lines.append("")
    OUT.with_suffix(".md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = study_parser(__doc__, ROOT / "experiments" / "configs" / "fold_in_spread.json")
    parser.add_argument("--datasets", nargs="*", help="only these datasets of the config (the report has them all)")
    parser.add_argument("--max-minutes", type=float, default=None, help="start no new cell after this long")
    args, config, command = parse_study(parser, "experiments/fold_in_spread.py")
    deadline = time.time() + 60 * args.max_minutes if args.max_minutes else float("inf")
    seeds = ProtocolSeeds.of(config)
    study, stored = StudyCells.from_args(CELLS, CODE, args), StudyCells(CELLS, CODE, read_only=True)
    cells = []
    for dataset, seed, holdout in itertools.product(config["datasets"], config["seeds"], config["holdouts"]):
        selected = (not args.datasets or dataset in args.datasets) and time.time() < deadline
        spec = cell_config(seeds, config, dataset, seed, holdout)
        cell = seeds.get(study if selected else stored, (dataset, f"T{config['T']}", f"seed{seed}", holdout), spec,
                         run_cell)
        if cell is None:
            continue
        cells.append((dataset, seed, holdout, cell))
        print(f"[{dataset} seed={seed} {holdout}] " + "  ".join(
            f"{m}: " + "/".join(f"{s[k]:.4f}" for k in ("rmse_m", "rmse_x", "log_loss"))
            for m, s in cell["scores"].items()) + f" ({cell['seconds']:.0f} s)", flush=True)
    write_report(config, cells, command, args.allow_mixed)
    print(OUT.with_suffix(".md").read_text())


if __name__ == "__main__":
    run_driver("fold_in_spread", main)
