"""k-shot accuracy of a new LLM per benchmark, with intervals (issue 4, item 5).

Setting (the one tinyBenchmarks reports on): the model is fitted on every answer of the training
LLMs; each new LLM then answers k questions per benchmark, drawn at random, and we predict its
accuracy on the whole benchmark. The new LLM is folded in without refitting
(:meth:`SimRMF.fold_in`: Laplace posterior of its latent vector with everything else fixed); its
benchmark accuracy is ``(answers seen + predicted answers on the rest) / benchmark size``, with a
90% predictive interval whose draws include the posterior and the answers not yet seen.

With every fitted parameter held at its point estimate, the fold-in posterior of a new LLM is too sure
once it has many answers (the items' uncertainty and the model's misfit are not in it). ``fold_in``'s
``temperature`` τ divides the curvature the answers add to the posterior precision, keeping the estimate;
τ is chosen on training LLMs held out as if new (the model refitted without them), never on the test LLMs.

Compared estimates of the accuracy per benchmark:
* ``sample mean``: the mean of the k answers (k > 0), what running k random questions gives;
* ``population``: the mean accuracy of the training LLMs (no information about the new one);
* ``fold-in``: the model, population prior (``SimRMF.fold_in``);
* ``fold-in + metadata``: the same with the LLM-similarity prior from leaderboard metadata.

Protocols (config ``protocols``, issue 25): which LLMs are new, ``random`` (a seeded draw) or the frontier ones,
``newest`` / ``strongest`` (:func:`bayes_simrmf.splits.frontier_llms`), reported side by side.

Settings in ``experiments/configs/kshot.json``; one cell per dataset × protocol × seed with provenance
(:class:`bayes_simrmf.evaluate.study.StudyCells`); writes ``experiments/results/kshot_<name>.md`` / ``.csv``.

Usage:
    python experiments/kshot.py [--datasets openllm_v2] [--protocols newest] [--rerun-stale] [--aggregate-only]
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from bayes_simrmf.data import load_dataset, shared_dataset_path
from bayes_simrmf.errors import ConfigError
from bayes_simrmf.evaluate.study import StudyCells, check_provenance, run_driver, study_parser, parse_study
from bayes_simrmf.machine import machine_line
from bayes_simrmf.predict import SimRMF
from bayes_simrmf.similarity import SideInformation, centre_rows
from bayes_simrmf.similarity import llm_similarity, sqrt_psd_factor_from_dense
from bayes_simrmf.splits import frontier_llms

ROOT = Path(__file__).resolve().parents[1]
CODE = ("experiments/kshot.py",)
CELLS = ROOT / "experiments" / "results" / "kshot_cells"
PROTOCOLS = ("random", "newest", "strongest")
SETTINGS = ("new_share", "validation_share", "temperatures", "ks", "repeats", "dim", "lambda_reg", "guide",
            "max_steps", "n_draws")


def llm_side_information(dataset, llm_ids: np.ndarray) -> SideInformation:
    table = dataset.llms.set_index("llm").reindex(list(llm_ids)).reset_index()
    similarity, _ = llm_similarity(table, alpha=0.5)
    factor, _ = sqrt_psd_factor_from_dense(similarity)
    return SideInformation(llm_ids, centre_rows(factor), None, None)


def kshot_rows(model: SimRMF, side: SideInformation | None, test: pd.DataFrame, new_llms: np.ndarray, ks, repeats: int,
               temperature: float, n_draws: int, seed: int, tag: str, variants=("fold-in", "fold-in + metadata"),
               population: pd.Series | None = None) -> list[dict]:
    """Fold each new LLM in with k answers per benchmark; one row per (repeat, k, LLM, benchmark, estimate)."""
    truth = test.groupby(["llm", "benchmark"]).correct.mean()
    sizes = test.groupby(["llm", "benchmark"]).size()
    rows = []
    for repeat in range(repeats):
        for k in ks:
            # k random answered questions per benchmark for each new LLM.
            shots = (test.sample(frac=1.0, random_state=seed * 1000 + repeat * 10 + k)
                     .groupby(["llm", "benchmark"]).head(k))
            rest = test.merge(shots[["llm", "item"]], how="left", indicator=True)
            rest = rest[rest["_merge"] == "left_only"]
            for variant in variants:
                suffix = f"#{tag}r{repeat}k{k}{'m' if 'metadata' in variant else ''}"
                rename = {llm: llm + suffix for llm in new_llms}
                ids = np.array(list(rename.values()))
                answers = shots.assign(llm=shots.llm.map(rename))
                if variant == "fold-in":
                    model.fold_in("llm", ids, answers=answers, temperature=temperature)
                else:
                    side_k = SideInformation(np.concatenate([side.llms, ids]),
                                             np.concatenate([side.llm_factor, side.rows_for("llm", new_llms)]), None, None)
                    model.fold_in("llm", ids, answers=answers, side=side_k, temperature=temperature)
                # Questions not seen: predictive draws of their answers; seen ones count as answered.
                renamed = rest.llm.map(rename)
                group_ids, means, _ = model.group_draws(renamed.to_numpy(), rest.item.to_numpy(),
                                                        by=renamed.str.cat(rest.benchmark, sep="|").to_numpy(),
                                                        n_draws=n_draws, observed=True, seed=repeat)
                draws = dict(zip(group_ids, means.T))
                seen_sum = shots.assign(key=shots.llm.map(rename).str.cat(shots.benchmark, sep="|")).groupby("key").correct.sum()
                for (llm, benchmark), actual in truth.items():
                    key = f"{rename[llm]}|{benchmark}"
                    n_total = int(sizes[(llm, benchmark)])
                    n_seen = int(min(k, n_total))
                    accuracy = (draws[key] * (n_total - n_seen) + seen_sum.get(key, 0.0)) / n_total
                    lower, upper = np.quantile(accuracy, [0.05, 0.95])
                    row = {"repeat": repeat, "k": k, "llm": llm, "benchmark": benchmark, "actual": actual,
                           "variant": variant, "estimate": float(accuracy.mean()), "lower": lower, "upper": upper}
                    rows.append(row)
                    if variant == "fold-in" and population is not None:
                        sample_mean = seen_sum.get(key, np.nan) / n_seen if n_seen else np.nan
                        rows.append({**row, "variant": "sample mean", "estimate": sample_mean,
                                     "lower": np.nan, "upper": np.nan})
                        rows.append({**row, "variant": "population", "estimate": population[benchmark],
                                     "lower": np.nan, "upper": np.nan})
    return rows


def score(rows: list[dict]) -> pd.DataFrame:
    results = pd.DataFrame(rows)
    results["abs_error"] = (results.estimate - results.actual).abs()
    inside = (results.lower <= results.actual) & (results.actual <= results.upper)
    results["covered"] = inside.astype(float).where(results.lower.notna())
    results["width"] = results.upper - results.lower
    return results


def summarise(results: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return (results.groupby(keys).agg(mae=("abs_error", "mean"), cover90=("covered", "mean"),
                                      width90=("width", "mean"), n=("abs_error", "size")).reset_index())


def fit_mf(args, responses: pd.DataFrame) -> SimRMF:
    model = SimRMF(method="mf", dim=args.dim, lambda_reg=args.lambda_reg, guide=args.guide,
                   max_steps=args.max_steps, seed=args.seed, progress=False)
    model.fit(responses.llm, responses.item, responses.correct)
    print(f"fit: {model.fit_seconds_:.0f} s, {len(model.losses_)} steps, converged={model.converged_}", flush=True)
    return model


def choose_new(dataset, responses: pd.DataFrame, protocol: str, args, rng) -> tuple[np.ndarray, np.ndarray]:
    """``(new LLMs, validation LLMs)``. Random: seeded draws, the validation LLMs among the training ones. Frontier
    (``newest`` / ``strongest``, :func:`bayes_simrmf.splits.frontier_llms`): the new share at the frontier, the
    validation LLMs the frontier of the training LLMs, so τ is chosen where the new LLMs lie."""
    llms = np.sort(responses.llm.unique())
    n_new = int(round(args.new_share * len(llms)))
    n_held = max(2, int(round(args.validation_share * (len(llms) - n_new))))
    if protocol == "random":
        new_llms = np.sort(rng.choice(llms, n_new, replace=False))
        return new_llms, np.sort(rng.choice(np.setdiff1d(llms, new_llms), n_held, replace=False))
    if protocol not in PROTOCOLS:
        raise ConfigError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    new_llms, rest = frontier_llms(dataset, responses, protocol, n_new, rng)
    return new_llms, np.sort(rest[-n_held:])


def run_cell(dataset, seed: int, settings: dict, protocol: str = "random") -> dict:
    """Choose τ on validation LLMs, fit on the training LLMs, fold the new LLMs in from k answers; the tables."""
    started = time.time()
    args = SimpleNamespace(**settings, seed=seed)
    ks, temperatures = list(args.ks), [float(t) for t in args.temperatures]
    responses = dataset.responses.merge(dataset.items[["item", "benchmark"]], on="item")
    rng = np.random.default_rng(seed)
    llms = np.sort(responses.llm.unique())
    # Temperature of the k-shot likelihood: chosen on training LLMs held out as if new (never on test LLMs),
    # the one whose 90% intervals cover closest to 90% over k > 0.
    new_llms, held = choose_new(dataset, responses, protocol, args, rng)
    train = responses[~responses.llm.isin(new_llms)]
    test = responses[responses.llm.isin(new_llms) & responses.item.isin(train.item.unique())]
    print(f"{dataset.name} ({protocol}): {len(llms) - len(new_llms)} training LLMs ({len(train):,} answers), "
          f"{len(new_llms)} new LLMs")
    inner = train[~train.llm.isin(held)]
    validation = train[train.llm.isin(held) & train.item.isin(inner.item.unique())]
    inner_model = fit_mf(args, inner)
    choice = []
    for temperature in temperatures:
        rows = kshot_rows(inner_model, None, validation, held, [k for k in ks if k > 0], 1, temperature,
                          args.n_draws, seed + 1, f"v{temperature:g}", variants=("fold-in",))
        covered = score(rows).covered.mean()
        choice.append({"temperature": temperature, "validation_cover90": covered})
        print(f"validation: temperature {temperature:g} covers {covered:.3f}", flush=True)
    choice = pd.DataFrame(choice)
    temperature = float(choice.temperature[(choice.validation_cover90 - 0.9).abs().idxmin()])

    model = fit_mf(args, train)
    side = llm_side_information(dataset, np.concatenate([model.llms_, new_llms]))
    population = train.groupby(["llm", "benchmark"]).correct.mean().groupby("benchmark").mean()
    results = score(
        kshot_rows(model, side, test, new_llms, ks, args.repeats, temperature, args.n_draws, seed, "t",
                   population=population)
        + [{**row, "variant": row["variant"] + " (τ=1)"} for row in
           kshot_rows(model, side, test, new_llms, ks, args.repeats, 1.0, args.n_draws, seed, "u",
                      variants=("fold-in",))]
    )
    return {"dataset": dataset.name, "protocol": protocol, "seed": seed, "temperature": temperature,
            "new_accuracy": float(test.correct.mean()), "train_accuracy": float(train.correct.mean()), "choice": choice.to_dict(orient="list"),
            "n_train_llms": int(len(llms) - len(new_llms)), "n_train_answers": len(train), "n_new_llms": len(new_llms),
            "n_validation_llms": len(held), "fit_seconds": model.fit_seconds_, "machine": machine_line(),
            "seconds": time.time() - started,
            "summary": summarise(results, ["benchmark", "k", "variant"]).to_dict(orient="list"),
            "overall": summarise(results, ["k", "variant"]).to_dict(orient="list")}


def write_report(name: str, settings: dict, cells: list[dict], command: str, report) -> None:
    out = ROOT / "experiments" / "results" / f"kshot_{name}"
    seeds = sorted({cell["seed"] for cell in cells})
    tag = lambda frame, c: frame.assign(protocol=c.get("protocol", "random"), seed=c["seed"])  # noqa: E731
    summary = pd.concat([tag(pd.DataFrame(c["summary"]), c) for c in cells], ignore_index=True)
    overall = pd.concat([tag(pd.DataFrame(c["overall"]), c) for c in cells], ignore_index=True)
    summary.to_csv(out.with_suffix(".csv"), index=False)
    first = cells[0]
    fmt = lambda v: f"{v:.4f}"  # noqa: E731
    ks = [k for k in settings["ks"] if k > 0]
    lines = [
        f"# k-shot accuracy of new LLMs per benchmark: {first['dataset']}, seed{'s' if len(seeds) > 1 else ''} "
        + ", ".join(map(str, seeds)),
        "",
        f"Command: `{command}` (config `experiments/configs/kshot.json`)  ",
        *report.header(),
        "",
        f"{'; '.join(sorted({c['machine'].split('; load average')[0] for c in cells}))}; "
        f"{sum(c['seconds'] for c in cells):.0f} s of cell time. MF d={settings['dim']}, λ_reg={settings['lambda_reg']} "
        f"(package defaults, not tuned), guide {settings['guide']}, fitted on every answer of {first['n_train_llms']} "
        f"training LLMs ({first['n_train_answers']:,} answers, {first['fit_seconds']:.0f} s). {first['n_new_llms']} new "
        f"LLMs ({settings['new_share']:.0%}: a seeded draw under the random protocol, the newest by date or the "
        "strongest by accuracy under the frontier ones, whose validation LLMs are the frontier of the training LLMs; "
        + "; ".join(f"{c.get('protocol', 'random')} seed {c['seed']}: new LLMs' accuracy {c['new_accuracy']:.3f} "
                    f"against the training answers' {c['train_accuracy']:.3f}" for c in cells if "new_accuracy" in c)
        + f"), k random answered questions per benchmark, {settings['repeats']} "
        "random draws of them; the target is the new LLM's accuracy on all of the benchmark's questions in the fit. "
        "Intervals: 90%, answers not seen drawn per posterior draw. MAE in accuracy points (0–1).",
        "",
        f"Likelihood temperature τ per cell: {', '.join(format(c['temperature'], 'g') for c in cells)}, chosen on "
        f"{first['n_validation_llms']} training LLMs held out as new (model refitted without them; k ∈ {ks}, one "
        "draw): the τ whose 90% intervals covered closest to 90%. τ divides the curvature the answers add to the "
        "fold-in posterior's precision; the estimate is the posterior-predictive mean at this τ, so it moves with τ "
        "(the posterior mode does not; experiments/adaptive_testing.py chooses the reported estimate on validation "
        "LLMs). Rows marked (τ=1) are the untempered fold-in, for comparison.",
        "",
        pd.concat([tag(pd.DataFrame(c["choice"]), c) for c in cells]).to_string(
            index=False, float_format=lambda v: f"{v:.3f}"),
        "",
        "## All benchmarks",
        "",
        overall.to_string(index=False, float_format=fmt),
        "",
        "## Per benchmark",
        "",
        summary.to_string(index=False, float_format=fmt),
        "",
    ]
    out.with_suffix(".md").write_text("\n".join(lines))


def main() -> None:
    parser = study_parser(__doc__, ROOT / "experiments" / "configs" / "kshot.json")
    parser.add_argument("--datasets", nargs="*", help="only these names of the config's datasets")
    parser.add_argument("--protocols", nargs="*", choices=PROTOCOLS, help="only these protocols of the config")
    args, config, command = parse_study(parser, "experiments/kshot.py")
    missing = [key for key in ("datasets", "seeds", *SETTINGS) if key not in config]
    unknown = sorted(set(args.datasets or []) - set(config.get("datasets", {})))
    if missing or unknown:
        raise ConfigError(f"{args.config} lacks {missing}" if missing else
                          f"{unknown} are not among the config's datasets {list(config['datasets'])}")
    settings = {key: config[key] for key in SETTINGS}
    study = StudyCells.from_args(CELLS, CODE, args)
    for name, folder in config["datasets"].items():
        if args.datasets and name not in args.datasets:
            continue
        loaded = {}

        def dataset():
            if "dataset" not in loaded:
                loaded["dataset"] = load_dataset(shared_dataset_path(folder), unknown_entities="add", log=None)
            return loaded["dataset"]

        cells = []
        for protocol in config.get("protocols", ["random"]):
            if args.protocols and protocol not in args.protocols:
                continue
            # A random cell keeps its key and config (cells from before the protocols); a frontier cell names it.
            where = () if protocol == "random" else (protocol,)
            extra = {} if protocol == "random" else {"protocol": protocol}
            cells += [cell for seed in config["seeds"] if (cell := study.get(
                (name, *where, f"seed{seed}"), {"dataset": folder, "seed": seed, **settings, **extra},
                lambda: run_cell(dataset(), seed, settings, protocol),
                data_hash=lambda: dataset().fingerprint(), compare="overall")) is not None]
        if cells:
            report = check_provenance(((f"{name}/{c.get('protocol', 'random')}/seed{c['seed']}", c) for c in cells),
                                      allow_mixed=args.allow_mixed)
            write_report(name, settings, cells, command, report)
            print(f"wrote experiments/results/kshot_{name}.md ({len(cells)} cells)")


if __name__ == "__main__":
    run_driver("kshot", main)
