"""Why intervals and ECE still miss on new LLMs and questions (issue 23, part 5): which entities happened to be new.

A model fitted on the known LLMs and questions can place a new LLM (question) only where the known population
says it will be, unless side information tells it more. When the new entities of a split are, as a set, stronger
or weaker than the known ones on the same questions (LLMs), every prediction for them is off by that offset, and
pair-level ECE cannot fall below it, whatever the posterior. This study measures that offset on each calibration
run's splits (the same datasets, T and seeds as ``experiments/configs/calibration.json``), from the split alone:

* ``offset``: per new entity, its observed accuracy on the split's pairs minus the known entities' mean accuracy
  on the same partner entities (training pairs), averaged over the new entities; ``offset_sd``: its standard error
  by resampling the new entities (500 bootstrap draws). An offset many ``offset_sd`` from 0 means the new set is
  not a random draw from the known population; within about 2 it is the luck of a small new set.
* ``offset_ineligible``: the same over the new entities that could never be known (they answered less than the
  protocol's ``min_answer_share`` of the other axis, so the protocol always makes them new), beside
  ``offset_eligible``.
* ``ece_reference``: ECE of a count predictor that uses only the training pairs (a new question in split B gets
  the LLM's overall training level plus the benchmark's, added on the logit scale; a new LLM in C gets the question's accuracy over the
  known LLMs; D the benchmark's mean); ``ece_oracle_offset``: the same predictor with each benchmark's realised
  offset of the split added (read from the test answers: not a predictor, a measurement of how much of the ECE
  that offset is). ``ece_gibbs`` / ``ece_normal``: the fitted models' ECE from ``calibration_<run>.csv`` (the run's first
  method: MF+groups, or MF on the one-benchmark mmlupro-math).

A second table shows whether benchmark coverage is missing at random: for each dataset and benchmark g, the
LLMs with and without answers on g, and each group's mean accuracy on every benchmark (over all LLMs of the
dataset, not a split). Where the LLMs without g are stronger elsewhere, a new LLM drawn from all fitted LLMs is
predicted too high on g against the LLMs that are actually measured on g.

Writes ``experiments/results/ece_floor.md`` / ``.csv``.

Usage:
    python experiments/ece_floor.py [--runs v1_tiny openllm_v2 ...]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_simrmf.data import load_dataset, shared_dataset_path
from bayes_simrmf.evaluate.metrics import ece
from bayes_simrmf.evaluate.study import code_state
from bayes_simrmf.evaluate.tables import markdown_table
from bayes_simrmf.machine import machine_line
from bayes_simrmf.splits import Protocol


ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
CONFIG = ROOT / "experiments" / "configs" / "calibration.json"
N_BOOT = 500
#: Which axis of each split is new, the partner axis the offset is measured against.
SPLITS = {"B": ("item", "llm"), "C": ("llm", "item"), "D": ("both", None)}


def pair_frame(split, name: str, groups: pd.Series) -> pd.DataFrame:
    pairs = split.pairs[name]
    items = split.items[pairs.item]
    return pd.DataFrame({"llm": split.llms[pairs.llm], "item": items, "group": groups.reindex(items).to_numpy(),
                         "correct": pairs.correct.astype(float)})


def _logit(p):
    return np.log(p) - np.log1p(-p)


def reference_prob(frame: pd.DataFrame, train: pd.DataFrame, split_name: str) -> np.ndarray:
    """The count predictor of the module docstring, from training pairs only (counts smoothed by half a
    success and half a failure, so no prediction is 0 or 1)."""
    def rate(by):
        counts = train.groupby(by)["correct"].agg(["sum", "count"])
        return (counts["sum"] + 0.5) / (counts["count"] + 1.0)

    overall = (train["correct"].sum() + 0.5) / (len(train) + 1.0)
    group_mean = rate("group")
    fallback = group_mean.reindex(frame["group"]).fillna(overall).to_numpy()
    if split_name == "B":  # additive on the logit scale: the LLM's overall level plus the benchmark's
        level = _logit(rate("llm").reindex(frame["llm"]).to_numpy())
        prob = 1 / (1 + np.exp(-(level + _logit(fallback) - _logit(overall))))
    elif split_name == "C":
        prob = rate("item").reindex(frame["item"]).to_numpy()
    else:
        prob = fallback
    return np.where(np.isnan(prob), fallback, prob)


def offsets(frame: pd.DataFrame, train: pd.DataFrame, new_axis: str, partner: str, eligible: set,
            rng: np.random.Generator) -> dict:
    reference = train.groupby(partner)["correct"].mean()
    gap = frame.assign(ref=frame[partner].map(reference)).dropna(subset=["ref"])
    per = gap.groupby(new_axis).apply(lambda g: (g["correct"] - g["ref"]).mean(), include_groups=False)
    is_eligible = per.index.isin(list(eligible))
    boot = [per.to_numpy()[rng.integers(0, len(per), len(per))].mean() for _ in range(N_BOOT)]
    return {"n_new": len(per), "share_ineligible": float(1 - is_eligible.mean()), "offset": float(per.mean()),
            "offset_sd": float(np.std(boot)),
            "offset_eligible": float(per[is_eligible].mean()) if is_eligible.any() else np.nan,
            "offset_ineligible": float(per[~is_eligible].mean()) if (~is_eligible).any() else np.nan}


def model_ece(run: str, method: str) -> pd.DataFrame:
    path = RESULTS / f"calibration_{run}.csv"
    if not path.is_file():
        return pd.DataFrame(columns=["seed", "split", "guide", "ece"])
    table = pd.read_csv(path)
    return table[table["method"] == method][["seed", "split", "guide", "ece"]]


def run_one(run: str, spec: dict, seeds: list[int], min_share: float, log) -> list[dict]:
    dataset = load_dataset(shared_dataset_path(spec["dataset"]), log=None)
    groups = dataset.items.set_index("item")["benchmark"].fillna("(none)").astype(str)
    responses = dataset.responses
    n_items, n_llms = responses["item"].nunique(), responses["llm"].nunique()
    llm_counts, item_counts = responses["llm"].value_counts(), responses["item"].value_counts()
    eligible = {"llm": set(llm_counts.index[llm_counts >= np.ceil(min_share * n_items)]),
                "item": set(item_counts.index[item_counts >= np.ceil(min_share * n_llms)])}
    fitted = model_ece(run, spec["methods"][0])
    rows = []
    for seed in seeds:
        split = Protocol(T=spec["T"], seed=seed, min_answer_share=min_share).split(dataset, log=None)
        train = pair_frame(split, "train", groups)
        rng = np.random.default_rng([seed, 41])
        for name, (new_axis, partner) in SPLITS.items():
            frame = pair_frame(split, name, groups)
            if not len(frame):
                continue
            prob = reference_prob(frame, train, name)
            residual = frame.assign(prob=prob, miss=frame["correct"] - prob)
            shift = residual.groupby("group")["miss"].transform("mean").to_numpy()
            row = {"run": run, "dataset": spec["dataset"], "T": spec["T"], "seed": seed, "split": name,
                   "n_pairs": len(frame), "ece_reference": ece(prob, frame["correct"].to_numpy()),
                   "ece_oracle_offset": ece(np.clip(prob + shift, 0, 1), frame["correct"].to_numpy())}
            if partner is not None:
                row.update(offsets(frame, train, new_axis, partner, eligible[new_axis], rng))
            for guide in ("gibbs", "normal"):
                mine = fitted[(fitted["seed"] == seed) & (fitted["split"] == name) & (fitted["guide"] == guide)]
                row[f"ece_{guide}"] = float(mine["ece"].iloc[0]) if len(mine) else np.nan
            rows.append(row)
            log(f"{run} seed {seed} {name}: " + ", ".join(
                f"{key} {value:.4f}" for key, value in row.items() if isinstance(value, float)))
    return rows


def coverage_table(dataset) -> pd.DataFrame:
    """Per benchmark g: the LLMs with and without answers on g, and their mean accuracy per benchmark."""
    responses = dataset.responses.merge(dataset.items[["item", "benchmark"]], on="item")
    accuracy = responses.pivot_table(index="llm", columns="benchmark", values="correct", aggfunc="mean")
    rows = []
    for benchmark in accuracy.columns:
        has = accuracy[benchmark].notna()
        if has.all():
            continue
        for answered, part in ((True, accuracy[has]), (False, accuracy[~has])):
            rows.append({"dataset": dataset.name, "benchmark": benchmark, "answered it": answered, "n_llms": len(part),
                         **{f"accuracy on {other}": part[other].mean() for other in accuracy.columns}})
    return pd.DataFrame(rows)


def write_report(table: pd.DataFrame, coverage: pd.DataFrame, command: str, code: dict, seconds: float) -> None:
    out = RESULTS / "ece_floor"
    table.to_csv(out.with_suffix(".csv"), index=False)
    mean = table.groupby(["run", "split"], sort=False).agg(
        seeds=("seed", "nunique"), n_new=("n_new", "mean"), share_ineligible=("share_ineligible", "mean"),
        mean_abs_offset=("offset", lambda v: float(np.mean(np.abs(v)))), offset_sd=("offset_sd", "mean"),
        offset_eligible=("offset_eligible", "mean"), offset_ineligible=("offset_ineligible", "mean"),
        ece_reference=("ece_reference", "mean"), ece_oracle_offset=("ece_oracle_offset", "mean"),
        ece_gibbs=("ece_gibbs", "mean"), ece_normal=("ece_normal", "mean")).reset_index()
    text = [
        "# Why ECE misses on new entities: the offset of the new set", "",
        f"Command: `{command}`; code {code['commit']}{' (dirty)' if code['dirty'] else ''}; {seconds:.0f} s.  ",
        machine_line() + "  ",
        "What each column means: the docstring of `experiments/ece_floor.py`. The offset is measured on the "
        "split's answers; only `ece_gibbs` / `ece_normal` are model predictions (the run's first "
        "calibration method, from `calibration_<run>.csv`).", "",
        "## Means over seeds", "", markdown_table(mean, 4), "",
        "## Is benchmark coverage missing at random?", "",
        "Benchmarks that some LLMs of a dataset never answered (datasets where every LLM answered every benchmark "
        "are left out); mean accuracy per benchmark of the LLMs that answered it and of those that did not:", "",
        *([markdown_table(part.dropna(axis=1, how="all"), 3) + "\n" for _, part in coverage.groupby("dataset", sort=False)]
          if len(coverage) else ["every LLM answered every benchmark"]),
        "## Per seed", "", markdown_table(table.drop(columns=["dataset"]), 4), ""]
    out.with_suffix(".md").write_text("\n".join(text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="*", help="calibration runs to measure (default: all but ci)")
    args = parser.parse_args()
    config = json.loads(CONFIG.read_text())
    runs = args.runs or [name for name in config["runs"] if name != "ci"]
    code, started, rows, coverage = code_state(["experiments/ece_floor.py"]), time.perf_counter(), [], []
    for run in runs:
        spec = config["runs"][run]
        rows += run_one(run, spec, spec.get("seeds", config["seeds"]), Protocol().min_answer_share, print)
        coverage.append(coverage_table(load_dataset(shared_dataset_path(spec["dataset"]), log=None)))
    table = pd.DataFrame(rows).assign(commit=code["commit"], dirty=code["dirty"])
    command = "python experiments/ece_floor.py" + (f" --runs {' '.join(args.runs)}" if args.runs else "")
    write_report(table, pd.concat(coverage, ignore_index=True), command, code, time.perf_counter() - started)


if __name__ == "__main__":
    main()
