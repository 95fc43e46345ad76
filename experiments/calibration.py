"""Calibration of point predictions and of predictive intervals, per guide and split (issues 4, 23).

Each run of ``experiments/configs/calibration.json`` names a dataset, T and Table 2 methods. For every
seed, method and guide it takes that seed's Table 2 split and the method's hyper-parameters from its
Table 2 cell (chosen there on the seed's own validation pairs, never on test pairs), fits with the guide
(delta: MAP, intervals are the plug-in predictive; normal / low-rank: posterior draws; gibbs: the sampler's
kept draws), and per test
split records log loss, Brier, ECE and a reliability table of the pair predictions (posterior
predictive mean), and the share of LLMs (questions) whose observed mean accuracy lies inside the
50/80/90/95% predictive intervals, with the 90% interval's mean width and the centre's mean signed
error. One cell per run × seed × method × guide, with provenance
(:class:`bayes_simrmf.evaluate.study.StudyCells`); rerunning skips finished cells.

Writes, per run, ``experiments/results/calibration_<run>.md`` / ``.csv`` / ``_reliability.png``.

Usage:
    python experiments/calibration.py                     # every run; add --runs v1_tiny to pick
    python experiments/calibration.py --aggregate-only    # rebuild the tables from the cells
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_simrmf.errors import ConfigError
from bayes_simrmf.evaluate import TEST_SPLITS, fit_on_split
from bayes_simrmf.evaluate.metrics import brier, ece, log_loss, reliability_table
from bayes_simrmf.evaluate.runner import SeedContext, method_options
from bayes_simrmf.evaluate.seeds import ProtocolSeeds
from bayes_simrmf.evaluate.split import COVERAGE_LEVELS, interval_coverage
from bayes_simrmf.evaluate.study import StudyCells, check_provenance, paired_interval, run_driver, study_parser, parse_study
from bayes_simrmf.machine import machine_line
from bayes_simrmf.options import DEFAULT_EMBEDDING_MODEL
from bayes_simrmf.evaluate.conformal import fit_conformal
from bayes_simrmf.predict.estimator import make_estimator

ROOT = Path(__file__).resolve().parents[1]
CODE = ("experiments/calibration.py",)
CELLS = ROOT / "experiments" / "results" / "calibration_cells"


SUMMARY = ["log_loss", "ece", "cover90_llm_mean", "pit90_llm_mean", "width_llm_mean", "cover90_item_mean",
           "pit90_item_mean", "width_item_mean"]
SETTINGS = ("seeds", "guides", "max_steps", "n_draws", "max_pairs", "conformal")
#: A guide name ending in this is the guide's intervals with split-conformal half-widths (an explicit option).
CONFORMAL = "+conformal"


def settings(config: dict, run: dict) -> dict:
    """The config's study settings, with the run's own where it sets them."""
    return {key: run.get(key, config.get(key)) for key in SETTINGS}


def guides_of(own: dict) -> list[str]:
    """The guides of a run, then the ``+conformal`` variants of those ``conformal.guides`` names."""
    conformal = own.get("conformal") or {}
    return list(own["guides"]) + [f"{guide}{CONFORMAL}" for guide in conformal.get("guides", [])]


def cell_config(seeds: ProtocolSeeds, config: dict, run: dict, seed: int, label: str, guide: str) -> dict:
    own = settings(config, run)
    base = guide.removesuffix(CONFORMAL)
    extra = {"conformal": own["conformal"]} if guide.endswith(CONFORMAL) else {}
    return {**seeds.cell_config(run["dataset"], run["T"], seed, [label]), "guide": base,
            "guide_options": own["guides"][base], "max_steps": own["max_steps"], "n_draws": own["n_draws"],
            "max_pairs": own["max_pairs"], **extra}


def run_cell(context: SeedContext, cell: dict) -> dict:
    """Fit one method with one guide on the seed's split and score its calibration on every test split."""
    started = time.perf_counter()
    split, seed = context.split, context.seed
    (method,) = cell["methods"].values()
    spec = method["spec"]
    options = method_options(spec, seed, method["chosen"])
    guide_options = dict(cell["guide_options"])  # a named variant (e.g. "normal+learned") names its guide there
    if cell["guide"] == "gibbs":  # the sampler, with its default chains and sweeps unless the config sets them
        options.update(inference="gibbs", **guide_options)
    else:
        options.update(guide=guide_options.pop("guide", cell["guide"]), max_steps=cell["max_steps"], **guide_options)
    side = context.side(spec)
    method_name = options.pop("method")
    conformal = None
    if "conformal" in cell:
        conformal = fit_conformal(lambda: make_estimator(method_name, **options), split,
                                  fit_kwargs={"side": side, **({"item_groups": context.item_groups(spec)}
                                                               if context.item_groups(spec) is not None else {})},
                                  levels=COVERAGE_LEVELS, share=cell["conformal"]["share"], n_draws=cell["n_draws"],
                                  max_pairs=cell["max_pairs"], seed=seed)
    model = fit_on_split(make_estimator(method_name, **options), split, side=side,
                         item_groups=context.item_groups(spec))
    rows, reliability = [], {}
    for name in TEST_SPLITS:
        pairs = split.pairs[name]
        if not len(pairs):
            continue
        sample = np.random.default_rng(seed).permutation(len(pairs))[: cell["max_pairs"]]
        prob = model.predict(split.llms[pairs.llm[sample]], split.items[pairs.item[sample]], unknown="population")
        correct = pairs.correct[sample]
        reliability[name] = reliability_table(prob, correct).to_dict(orient="list")
        rows.append({"split": name, "log_loss": log_loss(prob, correct), "brier": brier(prob, correct),
                     "ece": ece(prob, correct),
                     **interval_coverage(model, split, name, "llm", cell["n_draws"], cell["max_pairs"], seed, conformal),
                     **interval_coverage(model, split, name, "item", cell["n_draws"], cell["max_pairs"], seed, conformal)})
    diagnostics = getattr(model, "sampler_diagnostics_", None)
    return {"rows": rows, "reliability": reliability, "steps": len(model.losses_), "converged": bool(model.converged_),
            **({"sampler": diagnostics} if diagnostics else {}),
            **({"conformal_levels": conformal.to_json()} if conformal is not None else {}),
            "fit_seconds": model.fit_seconds_, "seconds": time.perf_counter() - started, "machine": machine_line(),
            "options": {k: v for k, v in options.items() if k != "progress"},
            "embedding_model": DEFAULT_EMBEDDING_MODEL if side is not None and spec.get("side") == "similarity" else None}


def reliability_figure(cells: list[tuple[str, str, dict]], path: Path, title: str) -> None:
    """One panel per split: observed rate against mean predicted probability per bin (bins of ≥ 30 pairs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    splits = [name for name in TEST_SPLITS if any(name in cell["reliability"] for _, _, cell in cells)]
    figure, axes = plt.subplots(1, len(splits), figsize=(4 * len(splits), 4), sharey=True)
    for axis, name in zip(np.atleast_1d(axes), splits):
        axis.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle="--")
        for method, guide, cell in cells:
            if name in cell["reliability"]:
                table = pd.DataFrame(cell["reliability"][name])
                used = table.n_pairs >= 30  # bins with fewer pairs are noise
                axis.plot(table.mean_prob[used], table.observed[used], marker="o", markersize=3, label=f"{method} {guide}")
        axis.set_title(f"split {name}")
        axis.set_xlabel("predicted probability")
    np.atleast_1d(axes)[0].set_ylabel("observed rate")
    np.atleast_1d(axes)[-1].legend(fontsize=7)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


PAIRED_METRICS = ("log_loss", "brier", "ece", "cover90_llm_mean", "pit90_llm_mean", "cover90_item_mean", "pit90_item_mean")


def paired_guides(frame: pd.DataFrame, pairs: list) -> pd.DataFrame:
    """Per pair ``[first, second]`` of guides (a run's ``paired``), method and split: the first's metric minus the
    second's, paired by seed, with a 95% t interval."""
    rows = []
    for first, second in pairs:
        for (method, split), part in frame.groupby(["method", "split"], sort=False):
            left, right = (part[part.guide == guide].set_index("seed") for guide in (first, second))
            seeds = left.index.intersection(right.index)
            if len(seeds) == 0:
                continue
            row = {"comparison": f"{first} - {second}", "method": method, "split": split, "seeds": len(seeds)}
            for metric in PAIRED_METRICS:
                mean, low, high = paired_interval((left.loc[seeds, metric] - right.loc[seeds, metric]).to_numpy(float))
                row[metric] = f"{mean:+.4f} [{low:+.4f}, {high:+.4f}]"
            rows.append(row)
    return pd.DataFrame(rows)


def write_report(config: dict, name: str, run: dict, cells: list[tuple[int, str, str, dict]], command: str,
                 allow_mixed: bool) -> None:
    report = check_provenance(((f"{name}/seed{seed}/{method}-{guide}", cell) for seed, method, guide, cell in cells),
                              allow_mixed=allow_mixed)
    frame = pd.DataFrame([{"seed": seed, "method": method, "guide": guide, "steps": cell["steps"],
                           "converged": cell["converged"], **row,
                           "provenance": report.mark(f"{name}/seed{seed}/{method}-{guide}")}
                          for seed, method, guide, cell in cells for row in cell["rows"]])
    out = ROOT / "experiments" / "results" / f"calibration_{name}"
    frame.to_csv(out.with_suffix(".csv"), index=False)
    figure = out.with_name(out.name + "_reliability.png")
    first = cells[0][0]
    reliability_figure([(method, guide, cell) for seed, method, guide, cell in cells if seed == first],
                       figure, f"{run['dataset']}, T={run['T']}, seed {first}: reliability per split")
    chosen = "; ".join(sorted({f"{method}: " + ", ".join(f"{k}={v}" for k, v in cell["options"].items()
                                                        if k in ("dim", "lambda_reg", "fold_in_ridge_items",
                                                                 "fold_in_ridge_llms", "item_groups"))
                               for _, method, _, cell in cells}))
    main = ["seed", "method", "guide", "split", "steps", "converged", "log_loss", "brier", "ece", "cover90_llm_mean",
            "pit90_llm_mean", "width_llm_mean", "bias_llm_mean", "n_llms", "answers_llm_median", "cover90_item_mean",
            "pit90_item_mean", "width_item_mean", "bias_item_mean", "n_items", "answers_item_median"]
    levels = ["seed", "method", "guide", "split"] + [f"{kind}{round(level * 100)}_{by}_mean" for by in ("llm", "item")
                                                     for level in COVERAGE_LEVELS for kind in ("cover", "pit")]
    for column in main + levels + SUMMARY:  # cells of code before a column existed
        if column not in frame:
            frame[column] = np.nan
    if not report.clean:
        main.append("provenance")
    own = settings(config, run)
    summary = []
    if frame["seed"].nunique() > 1:
        spread = frame.groupby(["method", "guide", "split"], sort=False)[SUMMARY].agg(["mean", "std"])
        table = pd.DataFrame({column: [f"{m:.3f} ± {sd:.3f}" for m, sd in zip(spread[column]["mean"], spread[column]["std"])]
                              for column in SUMMARY}, index=spread.index).reset_index()
        summary = [f"## Mean ± sd over {frame['seed'].nunique()} seeds", "", table.to_string(index=False), ""]
    text = [
        f"# Calibration per method, guide and split: {run['dataset']}, T={run['T']}, "
        f"seed{'s' if len({c[0] for c in cells}) > 1 else ''} {', '.join(str(s) for s in sorted({c[0] for c in cells}))}",
        "",
        f"Command: `{command}` (config `experiments/configs/calibration.json`, run `{name}`)  ",
        *report.header(),
        "",
        f"{'; '.join(sorted({cell['machine'].split('; load average')[0] for *_, cell in cells}))}; "
        f"{sum(cell['seconds'] for *_, cell in cells):.0f} s of cell time. Split and hyper-parameters of each seed's Table 2 cell (chosen on that seed's validation "
        f"pairs): {chosen}. Guides: {json.dumps(own['guides'])}, at most {own['max_steps']} SVI steps. Pair "
        f"metrics use the posterior predictive mean (`SimRMF.predict`). Intervals: {own['n_draws']} draws, up to "
        f"{own['max_pairs']:,} pairs per split; the delta guide's are the plug-in predictive (answer noise around "
        "the MAP). An LLM or question the fit never saw is, in each draw, a population stand-in "
        "(`unknown=\"population\"`); one folded in from similarity (SimRMF) is drawn from its conditional. Intervals are "
        "for the observed mean accuracy (answers drawn per draw). Coverage = share of LLMs (questions) whose observed "
        "mean on the split lies in its interval; bias = mean of observed − predicted centre. `pit90`: share whose "
        "randomised PIT lies in [0.05, 0.95], 0.90 in expectation for a calibrated predictive even where a mean over "
        "few answers (`answers_*_median` per LLM / question) takes few values and its quantile interval, holding an "
        "atom at an end, covers more than 90% (`bayes_simrmf.evaluate.metrics.randomised_pit`; not given for "
        f"`+conformal` rows, whose intervals are not quantiles of the draws). `<guide>{CONFORMAL}`: "
        "the guide's draws' mean ± a number of their sds learned by split conformal prediction on validation pairs, "
        f"questions and LLMs carved from the seed's own training pairs (share {(own.get('conformal') or {}).get('share')}; "
        "`bayes_simrmf.evaluate.conformal`; the learned half-widths are in the cells), an explicit option, not the posterior. "
        "Reliability diagrams: "
        f"`{figure.name}`.",
        "",
        *summary,
        *(["## Paired differences between guides (first minus second, mean over seeds [95% t interval])", "",
           paired_guides(frame, run["paired"]).to_string(index=False), ""] if run.get("paired") else []),
        "## 90% intervals, pair metrics",
        "",
        frame[main].round(4).to_string(index=False),
        "",
        "## Coverage (interval, then randomised PIT) at 50 / 80 / 90 / 95%",
        "",
        frame[levels].round(3).to_string(index=False),
    ]
    out.with_suffix(".md").write_text("\n".join(text) + "\n")


def main() -> None:
    parser = study_parser(__doc__, ROOT / "experiments" / "configs" / "calibration.json")
    parser.add_argument("--runs", nargs="*", help="only these runs of the config")
    parser.add_argument("--guides", nargs="*", help="only compute cells of these guides (e.g. delta+conformal); "
                        "the report still gathers every cell on disk")
    args, config, command = parse_study(parser, "experiments/calibration.py")
    seeds = ProtocolSeeds.of(config)
    unknown = sorted(set(args.runs or []) - set(config["runs"]))
    if unknown:
        raise ConfigError(f"runs {unknown} are not in {args.config} (it has {list(config['runs'])})")
    study = StudyCells.from_args(CELLS, CODE, args)
    for name, run in config["runs"].items():
        if args.runs and name not in args.runs:
            continue
        cells, own = [], settings(config, run)
        for seed, label, guide in itertools.product(own["seeds"], run["methods"], guides_of(own)):
            spec = cell_config(seeds, config, run, seed, label, guide)
            started = time.time()
            if args.guides and guide not in args.guides:
                path = (name, f"seed{seed}", f"{label}-{guide}")
                cell = study.store.read(*path) if study.store.has(*path) else None
            else:
                cell = seeds.get(study, (name, f"seed{seed}", f"{label}-{guide}"), spec, run_cell, compare="rows")
            if cell is not None:
                cells.append((seed, label, guide, cell))
                if time.time() - started > 1:
                    print(f"{name} seed {seed} {label} {guide}: {cell['steps']} steps, {time.time() - started:.0f} s",
                          flush=True)
        if cells and run.get("report", True):
            write_report(config, name, run, cells, command, args.allow_mixed)
            print(f"wrote experiments/results/calibration_{name}.md ({len(cells)} cells)")


if __name__ == "__main__":
    run_driver("calibration", main)
