"""Evaluating a new LLM with k questions: random vs adaptive choice, and which estimate to report (issue 14).

Setting: a share of the dataset's LLMs is held out as new; MF (with item groups = benchmarks) is fitted on
every answer of the others. Each new LLM is folded in (``SimRMF.fold_in``, population prior) and answers k
questions, chosen either at random or adaptively (``bayes_simrmf.predict.adaptive.next_questions``, in rounds
of ``--batch`` questions: fold in the answers so far, pick the next batch, look up its answers). The target is
the LLM's accuracy on each benchmark over all of the benchmark's questions in the fit; answered questions count
as answered, the rest are predicted.

Estimates compared at each k:
* ``model``: the estimate chosen on validation LLMs (training LLMs held out as new, the model refitted without
  them; never the test LLMs) among the posterior-predictive mean at the chosen temperature τ, the plug-in at the
  posterior mode, the sample mean and the population mean, per k (so on validation it is never worse than either
  baseline); its 90% interval comes from posterior draws of the LLM's latent row with
  the unanswered questions' answers drawn (τ, chosen on validation by coverage closest to 90%).
* ``sample mean``: the mean of the answered questions of the benchmark (the population mean where it has none);
* ``population``: the training LLMs' mean accuracy on the benchmark.

One cached result per (dataset, seed) cell under ``--out``; rerunning skips finished cells, ``--aggregate-only``
rebuilds the tables.

Usage:
    python experiments/adaptive_testing.py --data openllm-v2-mmlupro-math --seeds 0 1 2 --out experiments/results/adaptive_testing
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_simrmf.data import load_dataset, shared_dataset_path
from bayes_simrmf.model.predictor import expected_sigmoid, sigmoid
from bayes_simrmf.predict import SimRMF
from bayes_simrmf.predict.adaptive import llm_posterior, next_questions
from bayes_simrmf.predict.fold_in import partner_design
from bayes_simrmf.predict.sides import ITEM

ESTIMATES = ("pp", "mode", "sample", "population")
#: The hybrid strategy asks this many questions adaptively, then random ones.
ADAPTIVE_FIRST = 10
STRATEGIES = ("random", "adaptive", "hybrid")


def fit(responses: pd.DataFrame, groups: dict, args) -> SimRMF:
    model = SimRMF(method="mf", dim=args.dim, lambda_reg=args.lambda_reg, guide="delta", max_steps=args.max_steps,
                   seed=args.seed_fit, progress=False)
    return model.fit(responses.llm, responses.item, responses.correct, item_groups=groups)


class Scorer:
    """Accuracy estimates per benchmark for a folded-in LLM (fast: closed forms and draws of its latent row)."""

    def __init__(self, model: SimRMF, groups: dict, n_draws: int, seed: int):
        state = model.fitted_
        self.model = model
        self.items = state.items[: state.n_fitted_items]
        self.design, self.offsets = partner_design(state, ITEM, True)
        self.design, self.offsets = self.design[: len(self.items)], self.offsets[: len(self.items)]
        labels = pd.Series([groups[item] for item in self.items])
        self.codes, self.names = pd.factorize(labels, sort=True)
        self.n_draws, self.rng = n_draws, np.random.default_rng(seed)
        self.index = pd.Index(self.items)

    def estimates(self, llm_id: str, answered: pd.Series) -> dict[str, np.ndarray]:
        """``{estimate: (n_benchmarks,)}`` plus ``lower``/``upper`` of the 90% interval from draws."""
        mean, cov = llm_posterior(self.model.fitted_, llm_id)
        logits = self.design @ mean + self.offsets
        variance = np.einsum("np,pq,nq->n", self.design, cov, self.design)
        done = np.zeros(len(self.items), bool)
        values = np.zeros(len(self.items))
        rows = self.index.get_indexer(answered.index)
        done[rows], values[rows] = True, answered.to_numpy(float)
        counts = np.bincount(self.codes, minlength=len(self.names))

        def per_benchmark(prob):
            return np.bincount(self.codes, weights=np.where(done, values, prob), minlength=len(self.names)) / counts

        out = {"pp": per_benchmark(expected_sigmoid(logits, variance)), "mode": per_benchmark(sigmoid(logits))}
        n_seen = np.bincount(self.codes, weights=done.astype(float), minlength=len(self.names))
        seen_sum = np.bincount(self.codes, weights=np.where(done, values, 0.0), minlength=len(self.names))
        out["sample"] = np.where(n_seen > 0, seen_sum / np.maximum(n_seen, 1), np.nan)
        chol = np.linalg.cholesky(cov + 1e-9 * np.eye(len(mean)))
        draws = mean + self.rng.standard_normal((self.n_draws, len(mean))) @ chol.T
        prob = sigmoid(draws @ self.design.T + self.offsets)
        sampled = (self.rng.random(prob.shape) < prob).astype(float)
        accuracy = np.stack([per_benchmark(row) for row in sampled])
        out["lower"], out["upper"] = np.quantile(accuracy, [0.05, 0.95], axis=0)
        return out


def run_llm(model, scorer, truth: pd.Series, llm: str, ks, strategy: str, temperature: float, batch: int,
            rng: np.random.Generator, tag: str) -> list[dict]:
    """Rows (k, benchmark, estimates) for one new LLM answering up to max(ks) questions chosen by ``strategy``."""
    rows, order, answered = [], rng.permutation(truth.index.to_numpy()), pd.Series(dtype=float)
    unavailable = pd.Index(scorer.items).difference(truth.index)  # questions the data holds no answer of
    for k in sorted(ks):
        while len(answered) < min(k, len(truth)):
            if strategy == "random" or (strategy == "hybrid" and len(answered) >= ADAPTIVE_FIRST):
                chosen = [item for item in order if item not in answered.index][: k - len(answered)]
            else:
                probe = f"{llm}#{tag}{strategy}{len(answered)}p"
                model.fold_in("llm", [probe], answers=_answers(probe, answered), temperature=temperature)
                step = min(batch, k - len(answered), *([ADAPTIVE_FIRST - len(answered)] if strategy == "hybrid" else []))
                chosen = next_questions(model, probe, step, answered=answered.index.union(unavailable),
                                        temperature=temperature)["item"]
            answered = pd.concat([answered, truth.reindex(chosen)])
        current = f"{llm}#{tag}{strategy}{k}"
        model.fold_in("llm", [current], answers=_answers(current, answered), temperature=temperature)
        estimate = scorer.estimates(current, answered)
        for code, benchmark in enumerate(scorer.names):
            rows.append({"llm": llm, "strategy": strategy, "k": k, "benchmark": benchmark,
                         **{name: float(value[code]) for name, value in estimate.items()}})
    return rows


def _answers(llm_id: str, answered: pd.Series) -> pd.DataFrame:
    return pd.DataFrame({"llm": llm_id, "item": answered.index, "correct": answered.to_numpy(int)})


def _covered(frame: pd.DataFrame) -> pd.Series:
    return ((frame.lower <= frame.actual) & (frame.actual <= frame.upper)).astype(float)


def population_means(responses: pd.DataFrame, groups: dict) -> pd.Series:
    """Per benchmark: the mean over LLMs of each LLM's accuracy on it (what a new LLM scores on average)."""
    per_llm = responses.assign(benchmark=responses.item.map(groups)).groupby(["llm", "benchmark"]).correct.mean()
    return per_llm.groupby("benchmark").mean()


def study(model, groups, responses, llms, ks, strategies, temperature, args, tag, population) -> pd.DataFrame:
    """Rows for every LLM of ``llms``, strategy and k, with the actual accuracy and the population mean."""
    scorer = Scorer(model, groups, args.n_draws, args.seed_fit)
    fitted = set(scorer.items)
    rows = []
    for index, llm in enumerate(llms):
        truth = responses[(responses.llm == llm) & responses.item.isin(fitted)].set_index("item").correct
        rng = np.random.default_rng([args.seed_fit, index])
        for strategy in strategies:
            rows += run_llm(model, scorer, truth, llm, ks, strategy, temperature, args.batch, rng, tag)
    frame = pd.DataFrame(rows)
    actual = (responses[responses.llm.isin(llms) & responses.item.isin(fitted)]
              .assign(benchmark=lambda f: f.item.map(groups)).groupby(["llm", "benchmark"]).correct.mean())
    frame["actual"] = actual.reindex(pd.MultiIndex.from_frame(frame[["llm", "benchmark"]])).to_numpy()
    frame["population"] = frame.benchmark.map(population)
    return frame[frame.actual.notna()]


def run_cell(name: str, seed: int, args) -> dict:
    started = time.time()
    dataset = load_dataset(shared_dataset_path(name), unknown_entities="add", log=None)
    responses = dataset.responses
    groups = dataset.items.set_index("item")["benchmark"].astype(str).to_dict()
    rng = np.random.default_rng(seed)
    llms = np.sort(responses.llm.unique())
    new = np.sort(rng.choice(llms, int(round(args.new_share * len(llms))), replace=False))
    train = responses[~responses.llm.isin(new)]
    held = np.sort(rng.choice(np.setdiff1d(llms, new), args.n_llms, replace=False))
    tested = new[: args.n_llms]
    args.seed_fit = seed
    inner_train = train[~train.llm.isin(held)]
    inner = fit(inner_train, groups, args)
    inner_population = population_means(inner_train, groups)
    validation = {temperature: study(inner, groups, train, held, args.ks, STRATEGIES, temperature, args,
                                     f"v{temperature:g}", inner_population) for temperature in args.temperatures}
    cover, temperature, mae, choice = {}, {}, {}, {}
    for strategy in STRATEGIES:
        # Per strategy: τ whose 90% intervals cover closest to 90%, then the estimate with the least MAE per k.
        cover[strategy] = {t: float(_covered(v[(v.strategy == strategy) & (v.k > 0)]).mean())
                           for t, v in validation.items()}
        temperature[strategy] = min(cover[strategy], key=lambda t: abs(cover[strategy][t] - 0.9))
        chosen = validation[temperature[strategy]]
        chosen = chosen[chosen.strategy == strategy]
        mae[strategy] = {int(k): {e: float((part[e].fillna(part["population"]) - part.actual).abs().mean())
                                  for e in ESTIMATES} for k, part in chosen.groupby("k")}
        choice[strategy] = {str(k): min(values, key=values.get) for k, values in mae[strategy].items()}
    model = fit(train, groups, args)
    population = population_means(train, groups)
    test = pd.concat([study(model, groups, responses, tested, args.ks, (strategy,), temperature[strategy], args,
                            f"t{strategy}", population) for strategy in STRATEGIES])
    return {"dataset": name, "seed": seed, "temperature": temperature, "validation_cover90": cover,
            "validation_mae": {s: {str(k): v for k, v in m.items()} for s, m in mae.items()}, "choice": choice,
            "population": population.to_dict(), "n_train_llms": int(len(llms) - len(new)),
            "n_validation_llms": len(held), "n_test_llms": len(tested), "seconds": time.time() - started,
            "rows": test.to_dict(orient="list")}


def per_seed_scores(cells: list[dict]) -> pd.DataFrame:
    """MAE and 90% coverage per dataset, strategy, estimate, k and seed (the test LLMs' rows averaged)."""
    frames = []
    for cell in cells:
        rows = pd.DataFrame(cell["rows"])
        population = rows.benchmark.map(cell["population"])
        chosen = pd.Series([cell["choice"][strategy].get(str(k), "pp") for strategy, k in zip(rows.strategy, rows.k)])
        model = np.select([chosen == e for e in ESTIMATES], [rows[e] for e in ESTIMATES])
        model = np.where(np.isnan(model), population, model)
        sample = rows["sample"].fillna(population)
        covered = _covered(rows)
        for estimate, values in (("model", model), ("sample mean", sample), ("population", population)):
            frames.append(pd.DataFrame({"dataset": cell["dataset"], "seed": cell["seed"], "strategy": rows.strategy,
                                        "k": rows.k, "estimate": estimate,
                                        "abs_error": np.abs(values - rows.actual),
                                        "covered": covered if estimate == "model" else np.nan}))
    return (pd.concat(frames).groupby(["dataset", "strategy", "estimate", "k", "seed"])
            .agg(mae=("abs_error", "mean"), cover90=("covered", "mean")).reset_index())


def summarise(cells: list[dict]) -> pd.DataFrame:
    return (per_seed_scores(cells).groupby(["dataset", "strategy", "estimate", "k"])
            .agg(mae=("mae", "mean"), mae_sd=("mae", "std"), cover90=("cover90", "mean"), seeds=("seed", "size"))
            .reset_index())


def paired_differences(cells: list[dict]) -> pd.DataFrame:
    """The model's MAE of one strategy minus another's, paired by seed, with a 95% t interval over seeds: adaptive
    and hybrid against random at the same k, and adaptive at k against random at 2k (the issue's goal)."""
    from scipy.stats import t as student

    scores = per_seed_scores(cells)
    mae = scores[scores.estimate == "model"].set_index(["dataset", "strategy", "k", "seed"]).mae
    rows = []
    for dataset in sorted(scores.dataset.unique()):
        ks = sorted(scores[scores.dataset == dataset].k.unique())
        pairs = [(s, k, "random", k) for s in ("adaptive", "hybrid") for k in ks if k > 0]
        pairs += [("adaptive", k, "random", 2 * k) for k in ks if k > 0 and 2 * k in ks]
        for strategy, k, other, k_other in pairs:
            diff = (mae[dataset, strategy, k] - mae[dataset, other, k_other]).dropna()
            half = student.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else np.nan
            rows.append({"dataset": dataset, "comparison": f"{strategy} k={k} - {other} k={k_other}",
                         "mean_diff": diff.mean(), "ci95_low": diff.mean() - half, "ci95_high": diff.mean() + half,
                         "seeds": len(diff)})
    return pd.DataFrame(rows)


def validation_table(cells: list[dict]) -> pd.DataFrame:
    """Per dataset, strategy and k: the validation MAE of the estimate chosen there (at the chosen τ), over seeds."""
    rows = [{"dataset": cell["dataset"], "seed": cell["seed"], "strategy": strategy, "k": int(k),
             "validation_mae": min(values.values())}
            for cell in cells for strategy, per_k in cell["validation_mae"].items() for k, values in per_k.items()]
    frame = pd.DataFrame(rows)
    return (frame.groupby(["dataset", "k", "strategy"]).validation_mae.agg(["mean", "std", "size"])
            .rename(columns={"mean": "mae", "std": "mae_sd", "size": "seeds"}).reset_index())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=["openllm-v2-mmlupro-math"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--ks", type=int, nargs="+", default=[0, 5, 10, 30, 60, 100])
    parser.add_argument("--temperatures", type=float, nargs="+", default=[1.0, 4.0, 16.0])
    parser.add_argument("--new-share", type=float, default=1 / 3)
    parser.add_argument("--n-llms", type=int, default=20, help="new LLMs tested (and validation LLMs) per seed")
    parser.add_argument("--batch", type=int, default=5, help="questions per adaptive round")
    parser.add_argument("--dim", type=int, default=8)
    parser.add_argument("--lambda-reg", type=float, default=1.0)
    parser.add_argument("--max-steps", type=int, default=1500)
    parser.add_argument("--n-draws", type=int, default=300)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--aggregate-only", action="store_true")
    args = parser.parse_args()
    cells_dir = args.out.parent / f"{args.out.name}_cells"
    cells_dir.mkdir(parents=True, exist_ok=True)
    for name in [] if args.aggregate_only else args.data:
        for seed in args.seeds:
            path = cells_dir / f"{name}_seed{seed}.json"
            if path.exists():
                continue
            cell = run_cell(name, seed, args)
            path.write_text(json.dumps(cell, default=float))
            print(f"{name} seed {seed}: τ={cell['temperature']}, choice {cell['choice']}, {cell['seconds']:.0f} s",
                  flush=True)
    cells = [json.loads(path.read_text()) for path in sorted(cells_dir.glob("*.json"))]
    if not cells:
        return
    table = summarise(cells)
    table.to_csv(args.out.with_suffix(".csv"), index=False)
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    lines = ["# A new LLM's benchmark accuracies from k questions: random vs adaptive (issue 14)", "",
             f"Command: `{command}`  ", f"Machine: {platform.machine()}, JAX on CPU. MF (d={args.dim}, "
             f"λ_reg={args.lambda_reg}, item groups = benchmarks, delta guide), fitted on every answer of the training "
             "LLMs; each new LLM folded in with the population prior (no metadata). MAE in accuracy points (0-1), "
             "mean ± sd over seeds; cover90: share of 90% intervals (model rows) holding the actual accuracy. "
             "The model's estimate and τ are chosen per seed on validation LLMs (see the cells' choice).", ""]
    for cell in cells:
        lines.append(f"- {cell['dataset']} seed {cell['seed']}: τ per strategy {cell['temperature']}, estimate per k "
                     f"{cell['choice']}, {cell['n_test_llms']} test / {cell['n_validation_llms']} validation / "
                     f"{cell['n_train_llms']} training LLMs, {cell['seconds']:.0f} s")
    lines += ["", "## Test LLMs: MAE and 90% coverage per strategy, estimate and k", "",
              table.to_string(index=False, float_format=lambda v: f"{v:.4f}"), "",
              "## Paired differences of the model's MAE (negative: the first is better), 95% t interval over seeds", "",
              paired_differences(cells).to_string(index=False, float_format=lambda v: f"{v:.4f}"), "",
              "## Validation LLMs (what the choices rest on): MAE of the chosen estimate, mean over seeds", "",
              validation_table(cells).to_string(index=False, float_format=lambda v: f"{v:.4f}"), ""]
    args.out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
