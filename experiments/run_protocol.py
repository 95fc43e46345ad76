"""Run the paper's evaluation protocol and write a Table 2 style result table.

For each dataset and T: hyper-parameters of each tunable method are chosen once, on
validation pairs carved from the training pairs of the seed-0 split (never on test
pairs), then every method is fitted and scored on splits A-D for every seed. Results are
written as a long CSV (one row per dataset, T, method, seed, split) and a Markdown table
in the paper's layout (mean ± sd over seeds), with the command and chosen
hyper-parameters above it.

Usage:
    python experiments/run_protocol.py --config experiments/configs/table2_mf.json \
        --out experiments/results/table2_mf
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_simrmf.data import load_dataset, shared_dataset_path
from bayes_simrmf.estimators import make_estimator
from bayes_simrmf.evaluate import TEST_SPLITS, evaluate_on_split, fit_on_split
from bayes_simrmf.sideinfo import build_side_information
from bayes_simrmf.splits import Protocol
from bayes_simrmf.tuning import staged_search

METRICS = ("rmse_p", "rmse_m", "rmse_x")


def build(spec: dict, seed: int, chosen: dict | None):
    options = {**spec.get("fixed", {}), **(chosen or {})}
    options.pop("side", None)
    if spec["method"] != "meanscore":
        options.setdefault("seed", seed)
        options.setdefault("progress", False)
    return make_estimator(spec["method"], **options)


def run(config: dict, log=print, checkpoint=None) -> tuple[pd.DataFrame, dict]:
    rows, chosen_all = [], {}
    for dataset_name, dataset_options in config["datasets"].items():
        dataset = load_dataset(
            shared_dataset_path(dataset_name), unknown_entities=dataset_options.get("unknown_entities", "error"), log=None
        )
        log(dataset.summary())
        for T in config["T"]:
            chosen: dict[str, dict] = {}
            for seed in config["seeds"]:
                protocol = Protocol(
                    n_known_llms=dataset_options.get("n_known_llms"),
                    n_known_items=dataset_options.get("n_known_items"),
                    T=T,
                    n_test_pairs=config["n_test_pairs"],
                    seed=seed,
                )
                split = protocol.split(dataset, log=None)
                train = split.pairs["train"]
                sides: dict[str, object] = {}
                for label, spec in config["methods"].items():
                    kind = spec.get("side")
                    if kind and kind not in sides:
                        sides[kind] = build_side_information(
                            dataset, split.llms, split.items, kind=kind, alpha=spec.get("alpha", 0.5), log=None
                        )
                    side = sides.get(kind) if kind else None
                    if label not in chosen and ("tune" in spec or "stages" in spec or "inherit" in spec):
                        base = dict(chosen.get(spec["inherit"], {})) if "inherit" in spec else {}
                        stages = spec.get("stages", [{"grid": spec["tune"]}] if "tune" in spec else [])
                        stages = [{"holdout": config["tuning"]["holdout"], **stage} for stage in stages]
                        log(f"[{dataset_name} T={T}] tuning {label} on seed-{seed} training pairs")
                        chosen[label], _ = staged_search(
                            lambda **kw: build(spec, seed, kw),
                            stages,
                            split.llms[train.llm],
                            split.items[train.item],
                            train.correct,
                            base=base,
                            metric=config["tuning"]["metric"],
                            share=config["tuning"]["share"],
                            seed=config["tuning"]["seed"],
                            fit_kwargs={"side": side, "llms": split.llms, "items": split.items} if side else None,
                            log=None,
                        )
                        log(f"  chosen {chosen[label]}")
                    start = time.perf_counter()
                    estimator = fit_on_split(build(spec, seed, chosen.get(label)), split, side=side)
                    fit_seconds = time.perf_counter() - start
                    scores = evaluate_on_split(estimator, split)
                    for split_name, metrics in scores.items():
                        rows.append(
                            {"dataset": dataset_name, "T": T, "method": label, "seed": seed, "split": split_name,
                             "n_known_llms": split.n_known_llms, "n_known_items": split.n_known_items,
                             "n_train": len(train), "fit_seconds": fit_seconds, **metrics}
                        )
                    log(
                        f"[{dataset_name} T={T} seed={seed}] {label}: "
                        + "  ".join(f"{s} {scores[s]['rmse_p']:.4f}/{scores[s]['rmse_m']:.4f}/{scores[s]['rmse_x']:.4f}"
                                    for s in TEST_SPLITS)
                        + f"  ({fit_seconds:.1f} s)"
                    )
            chosen_all[f"{dataset_name} T={T}"] = chosen
            if checkpoint is not None:
                checkpoint(pd.DataFrame(rows), chosen_all)
    return pd.DataFrame(rows), chosen_all


def markdown_table(frame: pd.DataFrame, dataset: str) -> str:
    """Paper layout: rows T × method, columns split × RMSE_p/m/x, cells mean ± sd over seeds."""
    part = frame[frame["dataset"] == dataset]
    methods = list(dict.fromkeys(part["method"]))
    header = ["T", "method"] + [f"{s} {m.replace('rmse_', 'RMSE_')}" for s in TEST_SPLITS for m in METRICS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for T in sorted(part["T"].unique()):
        for method in methods:
            cells = [str(T), method]
            for split_name in TEST_SPLITS:
                sel = part[(part["T"] == T) & (part["method"] == method) & (part["split"] == split_name)]
                for metric in METRICS:
                    values = sel[metric].dropna().to_numpy()
                    cells.append("—" if len(values) == 0 else f"{values.mean():.4f} ± {values.std(ddof=1) if len(values) > 1 else 0:.4f}")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path, help="output prefix: writes PREFIX.csv and PREFIX.md")
    args = parser.parse_args()
    config = json.loads(args.config.read_text())
    started = time.time()
    command = shlex.join(["python", *sys.argv])

    def write(frame: pd.DataFrame, chosen: dict, final: bool = False) -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(args.out.with_suffix(".csv"), index=False)
        args.out.with_suffix(".md").write_text(report(config, frame, chosen, command, time.time() - started, final))

    frame, chosen = run(config, checkpoint=write)
    write(frame, chosen, final=True)
    print(args.out.with_suffix(".md").read_text())


def report(config: dict, frame: pd.DataFrame, chosen: dict, command: str, seconds: float, final: bool) -> str:
    sections = [
        f"# {config.get('description', 'Protocol results')}",
        "",
        f"Command: `{command}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, JAX on CPU; wall time {seconds:.0f} s"
        f"{'' if final else ' so far (PARTIAL: the run had not finished when this was written)'}.  ",
        f"Cells: mean ± sd over seeds {config['seeds']}; test splits sampled up to {config['n_test_pairs']:,} pairs.  ",
        "Hyper-parameters chosen on validation pairs carved from the seed-0 training pairs "
        f"({config['tuning']}; per-stage hold-outs in the config), never on test pairs:",
        "",
        "```json",
        json.dumps(chosen, indent=1),
        "```",
        "",
        "Methods (options fixed by the config; tuned ones above override them):",
        "",
        *[f"- {label}: `{json.dumps({'method': spec['method'], **spec.get('fixed', {})})}`"
          + (f", side information `{spec['side']}`" if spec.get("side") else "")
          for label, spec in config["methods"].items()],
    ]
    for dataset in dict.fromkeys(frame["dataset"]):
        sub = frame[frame["dataset"] == dataset].iloc[0]
        pair_counts = (frame[(frame["dataset"] == dataset) & (frame["seed"] == frame["seed"].min())]
                       .groupby(["T", "split"])["n_pairs"].first().unstack())
        sections += [
            "",
            f"## {dataset} ({int(sub['n_known_llms'])} known LLMs × {int(sub['n_known_items'])} known items)",
            "",
            markdown_table(frame, dataset),
            "",
            "Test pairs per split (seed 0): " + "; ".join(
                f"T={T}: " + ", ".join(f"{s} {int(row[s]):,}" for s in TEST_SPLITS) for T, row in pair_counts.iterrows()
            ),
        ]
    return "\n".join(sections) + "\n"


if __name__ == "__main__":
    main()
