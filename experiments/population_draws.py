"""Choose ``SimRMF(population_draws=...)`` on validation entities carved from the training pairs (issue 12).

An LLM's (item's) mean accuracy over questions (LLMs) the fit never saw is predicted from the fitted
population of their group. "fixed" draws each unseen entity from the same population in every posterior
draw, so a mean over many of them has no uncertainty about the population itself; "bootstrap" resamples
the population per draw. Which gives calibrated intervals is decided here, on each seed's own training
pairs only (Table 2's split, :class:`bayes_simrmf.evaluate.seeds.ProtocolSeeds`): whole questions held out
(like split B: per-LLM means over the held-out questions) and whole LLMs held out (like split C:
per-question means over the held-out LLMs); the 90% interval's coverage of the observed means should be
near 0.90. MF+groups with that seed's Table 2 hyper-parameters, a posterior guide.

Settings in ``experiments/configs/population_draws.json``; one cell per dataset × seed × hold-out with
provenance (:class:`bayes_simrmf.evaluate.study.StudyCells`).

Usage:
    python experiments/population_draws.py [--rerun-stale] [--aggregate-only]
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd

from bayes_simrmf.evaluate.runner import SeedContext, build
from bayes_simrmf.evaluate.seeds import ProtocolSeeds
from bayes_simrmf.evaluate.study import StudyCells, check_provenance, parse_study, run_driver, study_parser
from bayes_simrmf.evaluate.tables import markdown_table
from bayes_simrmf.evaluate.tuning import carve_validation

ROOT = Path(__file__).resolve().parents[1]
CODE = ("experiments/population_draws.py",)
CELLS = ROOT / "experiments" / "results" / "population_draws_cells"
OUT = ROOT / "experiments" / "results" / "population_draws"


def coverage(model, llm, item, correct, by: str, groups, n_draws: int) -> tuple[float, float, int]:
    """Share of groups (LLMs or items) whose observed mean lies in the 90% interval; mean width; count."""
    frame = model.predict_group_interval(llm, item, by=by, n_draws=n_draws, level=0.9, unknown="population",
                                         item_groups=groups)
    observed = pd.Series(correct.astype(float)).groupby(llm if by == "llm" else item).mean()
    observed = observed.reindex(frame.index)
    inside = (observed >= frame["lower"]) & (observed <= frame["upper"])
    return float(inside.mean()), float((frame["upper"] - frame["lower"]).mean()), len(frame)


def run_cell(context: SeedContext, cell: dict) -> dict:
    """Fit on the training pairs less the held-out entities with each population policy; coverage of their means."""
    split, seed = context.split, context.seed
    train = split.pairs["train"]
    llm, item, correct = split.llms[train.llm], split.items[train.item], train.correct
    (method,) = cell["methods"].values()
    groups = context.item_groups(method["spec"])
    held = carve_validation(llm, item, share=cell["share"], holdout=cell["holdout"], seed=seed)
    rows = []
    for draws in cell["draws"]:
        model = build(method["spec"], seed, {**method["chosen"], **cell["guide"], "population_draws": draws})
        model.fit(llm[~held], item[~held], correct[~held], item_groups=groups)
        cover, width, count = coverage(model, llm[held], item[held], correct[held], cell["by"], groups, cell["n_draws"])
        rows.append({"dataset": cell["dataset"], "T": cell["T"], "seed": seed, "held out": cell["holdout"],
                     "interval of": f"per-{cell['by']} mean", "population_draws": draws, "cover90": cover,
                     "width90": width, "n": count, "converged": bool(model.converged_)})
    return {"rows": rows}


def main() -> None:
    args, config, command = parse_study(study_parser(__doc__, ROOT / "experiments" / "configs" / "population_draws.json"),
                                        "experiments/population_draws.py")
    seeds = ProtocolSeeds.of(config)
    study = StudyCells.from_args(CELLS, CODE, args)
    cells = []
    for (name, T), seed, (holdout, by) in itertools.product(config["runs"].items(), config["seeds"],
                                                            config["holdouts"].items()):
        spec = {**seeds.cell_config(name, T, seed, [config["method"]]), "holdout": holdout, "by": by,
                **{key: config[key] for key in ("draws", "guide", "share", "n_draws")}}
        cell = seeds.get(study, (name, f"T{T}", f"seed{seed}", holdout), spec, run_cell, compare="rows")
        if cell is not None:
            cells.append((f"{name}/seed{seed}/{holdout}", cell))
            print(cells[-1][0], [(r["population_draws"], round(r["cover90"], 3)) for r in cell["rows"]], flush=True)
    report = check_provenance(cells, allow_mixed=args.allow_mixed)
    frame = pd.DataFrame([row for _, cell in cells for row in cell["rows"]])
    frame.to_csv(OUT.with_suffix(".csv"), index=False)
    summary = (frame.groupby(["dataset", "T", "held out", "interval of", "population_draws"], sort=False)
               .agg(seeds=("seed", "size"), cover90=("cover90", "mean"), cover90_sd=("cover90", "std"),
                    width90=("width90", "mean"), n=("n", "mean"), converged=("converged", "all")).reset_index())
    text = ["# Population draws for unseen entities, chosen on validation entities (issue 12)", "",
            f"Command: `{command}` (config `experiments/configs/population_draws.json`)  ", *report.header(), "",
            f"Each seed's Table 2 training pairs only: {config['share']:.0%} of the training questions (or LLMs) held "
            f"out whole; {config['method']} with that seed's Table 2 hyper-parameters, {config['guide']}. Coverage = "
            f"share of LLMs (questions) whose observed mean on the held-out pairs lies in the 90% interval "
            f"({config['n_draws']} draws), mean and sd over seeds. No embeddings are used.", "",
            markdown_table(summary.apply(lambda c: c.map("{:.4f}".format) if c.dtype.kind == "f" else c))]
    OUT.with_suffix(".md").write_text("\n".join(text) + "\n")
    print("\n".join(text))


if __name__ == "__main__":
    run_driver("population_draws", main)
