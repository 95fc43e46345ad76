"""Peers on real data: SimRMF against SMURFF (Macau) and cmfrec (collective MF), side by side (issue 6).

One split of ``openllm-v2-mmlupro-math`` (``Protocol(n_known_llms=500, n_known_items=1000, T=300, seed=0)``),
one run, every method scored on splits A-D with the package's own metrics
(:func:`bayes_simrmf.evaluate.metrics.evaluate`, as :func:`bayes_simrmf.evaluate.evaluate_on_split` does):

* **SimRMF** with the committed hyper-parameters (``experiments/results/table2_simrmf.md``,
  ``calibration_mmlupro.md``: d=8, λ_reg=2, kernel fold-in nuggets 10 (questions) / 0.1 (LLMs)), delta guide
  (MAP, the paper) and normal guide (posterior, for calibration).
* **SMURFF** (``smurff``): Macau, Bayesian MF by Gibbs sampling with side information as features of both sides
  (link matrices, ``priors=["macau", "macau"]``) and probit noise for the 0/1 scores, so P(correct) = Φ(u·v).
  All 755 LLMs and 1,351 questions are rows/columns of the matrix, only the training pairs are observed: the
  latent vector of an LLM or question without data is drawn, per sample, from its Macau prior
  N(μ + βᵀf, Λ⁻¹) given its features (SMURFF's cold-start). Predictions average Φ over the saved samples.
* **cmfrec** (``cmfrec.CMF``): collective MF (squared loss, ALS, global mean and biases) on the known block,
  with the features factorised jointly (U ≈ A Cᵀ, I ≈ B Dᵀ). New LLMs and questions get their factors from their
  features alone by cmfrec's documented cold-start routines ``factors_cold`` / ``item_factors_cold`` (their bias
  is 0); this reproduces ``predict_cold`` (C) and ``predict_new`` (B) exactly, and D combines both. Scores are
  clipped to [0.001, 0.999] to be read as probabilities.

Side information (``--features``): ``factors`` (default) gives the peers exactly what SimRMF uses, the package's
square-root similarity factors ``SideInformation.item_factor`` (text embeddings, all-MiniLM-L6-v2) and
``llm_factor`` (metadata features and lineage, α=0.5), rows centred; ``raw`` gives the item text embeddings
(384-d, precomputed file beside the data) and ``llm_feature_matrix`` (metadata only, no lineage).

References without side information: MeanScore and MF (delta, d=8, λ_reg=2, table2_simrmf.md's T=300 choice).
The accuracy targets compare SimRMF (delta) with each peer on B and C by RMSE_p, with the paired difference of
mean squared errors and its standard error clustered by the split's new entity (question for B, LLM for C).

Peers' hyper-parameters are chosen on validation pairs carved from the training pairs
(:func:`bayes_simrmf.evaluate.tuning.carve_validation`, 10%, seed 0; the same carve the package's tuning uses), never on
test pairs: rank and regularisation on held-out pairs, then cmfrec's side-information weights on held-out
questions and held-out LLMs (the cold-start analogues of B and C). Calibration follows
``experiments/calibration.py``: per-LLM observed mean accuracy on a split (up to 100,000 pairs, answers drawn
per draw) against its 90% predictive interval from 100 posterior draws.

Usage:
    pip install -e ".[peers]"
    python experiments/bench/bench_peers.py --features factors,raw --out experiments/results/bench_peers.md
    # (about 21 minutes on 2 shared cores; add --skip-missing to run without a peer that is not installed)
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.metadata
import itertools
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_simrmf.data import load_dataset, shared_dataset_path
from bayes_simrmf.predict import MeanScore, SimRMF
from bayes_simrmf.evaluate import TEST_SPLITS, fit_on_split
from bayes_simrmf.evaluate.metrics import ece, evaluate
from bayes_simrmf.similarity import build_side_information, item_embeddings
from bayes_simrmf.similarity import llm_feature_matrix
from bayes_simrmf.splits import Protocol
from bayes_simrmf.evaluate.tuning import LOWER_IS_BETTER, carve_validation

from bayes_simrmf.evaluate.split import interval_coverage as coverage
from bayes_simrmf.predict.peers import PEERS, CmfrecPeer, SmurffDraws, SmurffPeer, missing_peers

# SimRMF as committed for openllm-v2-mmlupro-math at T=300 (table2_simrmf.md, calibration_mmlupro.md).
SIMRMF_OPTIONS = dict(method="simrmf", dim=8, lambda_reg=2.0, similarity_mode="kernel", fold_in_ridge_items=10.0,
                      fold_in_ridge_llms=0.1, max_steps=3000, progress=False)
SIMRMF_LEARNING_RATE = {"delta": 0.05, "normal": 0.02}  # as experiments/calibration.py
CMFREC_STAGES = [
    ("pairs", {"k": [4, 8, 16, 32], "lambda_": [0.1, 1.0, 10.0, 100.0]}),
    ("items", {"w_item": [0.1, 1.0, 10.0, 100.0, 1000.0]}),
    ("llms", {"w_user": [0.1, 1.0, 10.0, 100.0, 1000.0]}),
]
# d=64 costs ~0.9 s per Gibbs sweep here (d=32: ~0.2 s), too slow for the ~30 minute budget of the whole run.
SMURFF_STAGES = [("pairs", {"num_latent": [8, 16, 32]})]


# ------------------------------------------------------------------------------------------------ tuning
def tune(make_peer, stages, train_ids, train_codes, correct, features, metric, log):
    """Staged grid search on validation pairs carved from the training pairs; returns (chosen, table)."""
    chosen, rows = {}, []
    llm_ids, item_ids = train_ids
    llm, item = train_codes
    for holdout, grid in stages:
        held = carve_validation(llm_ids, item_ids, share=0.1, holdout=holdout, seed=0)
        for values in itertools.product(*grid.values()):
            candidate = {**chosen, **dict(zip(grid, values))}
            start = time.perf_counter()
            peer = make_peer(**candidate).fit(llm[~held], item[~held], correct[~held], *features)
            scores = evaluate(peer.predict_codes(llm[held], item[held]), correct[held], llm[held], item[held])
            rows.append({"holdout": holdout, **candidate, **{name: scores[name] for name in LOWER_IS_BETTER},
                         "seconds": time.perf_counter() - start})
            log(f"  [{holdout}] {candidate}: {metric} {scores[metric]:.5f} ({rows[-1]['seconds']:.1f} s)")
        stage = pd.DataFrame([row for row in rows if row["holdout"] == holdout])
        best = stage.loc[stage[metric].idxmin()]
        chosen.update({name: best[name].item() if hasattr(best[name], "item") else best[name] for name in grid})
        log(f"  chosen after {holdout} hold-out: {chosen}")
    return chosen, pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------ run
def score(predict_codes, split, store: dict) -> dict[str, dict[str, float]]:
    """The package's metrics per split, plus ECE, from a function of coded pairs; the predictions go to ``store``."""
    results = {}
    for name in TEST_SPLITS:
        pairs = split.pairs[name]
        prob = store[name] = np.asarray(predict_codes(pairs.llm, pairs.item), np.float64)
        results[name] = {**evaluate(prob, pairs.correct, pairs.llm, pairs.item), "ece": ece(prob, pairs.correct)}
    return results


def paired_mse_difference(ours, peer, pairs, cluster) -> tuple[float, float]:
    """``MSE_ours − MSE_peer`` over a split's pairs and its standard error, clustered by ``cluster`` codes
    (the split's new entity: the pairs of one new question, or one new LLM, are not independent)."""
    difference = (ours - pairs.correct) ** 2 - (peer - pairs.correct) ** 2
    mean = float(difference.mean())
    codes, _ = pd.factorize(cluster)
    residual_sums = np.bincount(codes, weights=difference - mean)
    return mean, float(np.sqrt(np.sum(residual_sums ** 2)) / len(difference))


def calibrate(model, split, n_draws: int, max_pairs: int) -> dict[str, dict[str, float]]:
    return {name: coverage(model, split, name, "llm", n_draws, max_pairs, 0) for name in TEST_SPLITS}


def features_for(kind, dataset, split, side):
    if kind == "factors":
        return side.llm_factor.astype(np.float64), side.item_factor.astype(np.float64)
    llms_table = dataset.llms.set_index("llm").reindex(list(split.llms)).reset_index()
    return (llm_feature_matrix(llms_table)[0].astype(np.float64),
            item_embeddings(dataset, split.items, log=None).astype(np.float64))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="openllm-v2-mmlupro-math", help="dataset folder name under the data dir")
    parser.add_argument("--out", type=Path, default=Path("experiments/results/bench_peers.md"))
    parser.add_argument("--features", default="factors", help="comma list of: factors, raw (peers' features)")
    parser.add_argument("--peers", default=",".join(PEERS), help="comma list of peers to run")
    parser.add_argument("--skip-missing", action="store_true", help="skip a peer that is not installed")
    parser.add_argument("--burnin", type=int, default=200, help="SMURFF burn-in sweeps (its default)")
    parser.add_argument("--nsamples", type=int, default=800, help="SMURFF sampling sweeps (its default)")
    parser.add_argument("--tune-burnin", type=int, default=100, help="SMURFF burn-in while tuning")
    parser.add_argument("--tune-nsamples", type=int, default=200, help="SMURFF sampling sweeps while tuning")
    parser.add_argument("--n-draws", type=int, default=100, help="posterior draws for the intervals")
    parser.add_argument("--max-pairs", type=int, default=100_000, help="pairs per split for the intervals")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    peers = [name for name in args.peers.split(",") if name]
    unknown = sorted(set(peers) - set(PEERS))
    if unknown:
        raise SystemExit(f"bench_peers: unknown peer(s) {unknown}; choose from {list(PEERS)}")
    missing = missing_peers(peers)
    if missing and not args.skip_missing:
        raise SystemExit(f"bench_peers: peer(s) {', '.join(missing)} not installed: pip install -e \".[peers]\" "
                         "(the 'peers' extra), or pass --skip-missing")
    skipped = {name: "not installed (--skip-missing)" for name in missing}
    peers = [name for name in peers if name not in missing]

    started = time.time()
    log = lambda message: print(message, flush=True)  # noqa: E731
    dataset = load_dataset(shared_dataset_path(args.data), log=None)
    split = Protocol(n_known_llms=500, n_known_items=1000, T=300, seed=0).split(dataset, log=None)
    side = build_side_information(dataset, split.llms, split.items, log=None)
    train = split.pairs["train"]
    train_ids = (np.asarray(split.llms[train.llm]), np.asarray(split.items[train.item]))
    log(dataset.summary())
    log(split.summary())

    metrics, calibration, fit_seconds, chosen, tables = {}, {}, {}, {}, {}
    predictions: dict[str, dict[str, np.ndarray]] = {}

    # References without side information (not tuned here: table2_simrmf.md's MF choice at T=300).
    for label, estimator in (("MeanScore", MeanScore()),
                             ("MF (delta)", SimRMF(method="mf", dim=8, lambda_reg=2.0, seed=0, progress=False))):
        start = time.perf_counter()
        model = fit_on_split(estimator, split)
        fit_seconds[label] = time.perf_counter() - start
        metrics[label] = score(lambda llm, item: model.predict(split.llms[llm], split.items[item],
                                                               unknown="population"),
                               split, predictions.setdefault(label, {}))
        log(f"{label}: fitted in {fit_seconds[label]:.1f} s; "
            + "  ".join(f"{s} {metrics[label][s]['rmse_p']:.4f}" for s in TEST_SPLITS))

    for guide in ("delta", "normal"):
        label = f"SimRMF ({guide})"
        start = time.perf_counter()
        model = fit_on_split(SimRMF(guide=guide, learning_rate=SIMRMF_LEARNING_RATE[guide], seed=0, **SIMRMF_OPTIONS),
                             split, side=side)
        fit_seconds[label] = time.perf_counter() - start
        # What evaluate_on_split computes (predict with unknown="population", then evaluate), plus ECE.
        results = score(lambda llm, item: model.predict(split.llms[llm], split.items[item], unknown="population"),
                        split, predictions.setdefault(label, {}))
        metrics[label] = results
        calibration[label] = calibrate(model, split, args.n_draws, args.max_pairs)
        log(f"{label}: fitted in {fit_seconds[label]:.1f} s ({len(model.losses_)} steps); "
            + "  ".join(f"{s} {results[s]['rmse_p']:.4f}" for s in TEST_SPLITS))

    for kind in args.features.split(","):
        features = features_for(kind, dataset, split, side)
        log(f"features '{kind}': LLMs {features[0].shape}, questions {features[1].shape}")
        if "cmfrec" in peers:
            label = f"cmfrec CMF [{kind}]"
            log(f"tuning {label}")
            make = lambda **options: CmfrecPeer(threads=args.threads, **options)  # noqa: E731
            chosen[label], tables[label] = tune(make, CMFREC_STAGES, train_ids, (train.llm, train.item),
                                                train.correct, features, "rmse_p", log)
            start = time.perf_counter()
            peer = make(**chosen[label]).fit(train.llm, train.item, train.correct, *features)
            fit_seconds[label] = time.perf_counter() - start
            metrics[label] = score(peer.predict_codes, split, predictions.setdefault(label, {}))
            log(f"{label}: fitted in {fit_seconds[label]:.1f} s; "
                + "  ".join(f"{s} {metrics[label][s]['rmse_p']:.4f}" for s in TEST_SPLITS))
        if "smurff" in peers:
            label = f"SMURFF Macau [{kind}]"
            log(f"tuning {label} (chains of {args.tune_burnin} + {args.tune_nsamples} sweeps)")
            make = lambda **options: SmurffPeer(threads=args.threads, burnin=args.tune_burnin,  # noqa: E731
                                                nsamples=args.tune_nsamples, n_saved=50, **options)
            chosen[label], tables[label] = tune(make, SMURFF_STAGES, train_ids, (train.llm, train.item),
                                                train.correct, features, "log_loss", log)
            start = time.perf_counter()
            peer = SmurffPeer(burnin=args.burnin, nsamples=args.nsamples, n_saved=args.n_draws, threads=args.threads,
                              **chosen[label]).fit(train.llm, train.item, train.correct, *features)
            fit_seconds[label] = time.perf_counter() - start
            metrics[label] = score(peer.predict_codes, split, predictions.setdefault(label, {}))
            calibration[label] = calibrate(SmurffDraws(peer, split.llms, split.items), split, args.n_draws,
                                           args.max_pairs)
            log(f"{label}: fitted in {fit_seconds[label]:.1f} s; "
                + "  ".join(f"{s} {metrics[label][s]['rmse_p']:.4f}" for s in TEST_SPLITS))

    command = shlex.join(["python", *sys.argv])
    paired = {}
    for label in metrics:
        if label.startswith(("cmfrec", "SMURFF")):
            for name, cluster in (("B", "item"), ("C", "llm")):
                pairs = split.pairs[name]
                paired[label, name] = paired_mse_difference(predictions["SimRMF (delta)"][name],
                                                            predictions[label][name], pairs, getattr(pairs, cluster))
    text = report(args, command, time.time() - started, split, metrics, calibration, fit_seconds, chosen, tables,
                  skipped, peers, paired)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


# ------------------------------------------------------------------------------------------------ report
def versions(peers) -> str:
    names = ["bayes-simrmf", "numpy", "jax", "numpyro", *peers]
    found = []
    for name in names:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    try:
        revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                  cwd=Path(__file__).resolve().parent).stdout.strip()
    except OSError:
        revision = ""
    return f"Python {platform.python_version()}; " + ", ".join(found) + (f"; repository at {revision} (plus the "
                                                                          "working tree)" if revision else "")


def metrics_table(metrics) -> str:
    columns = ["rmse_p", "rmse_m", "rmse_x", "log_loss", "ece", "auc"]
    header = "| split | method | RMSE_p | RMSE_m | RMSE_x | log loss | ECE | AUC |"
    lines = [header, "|---|---|---|---|---|---|---|---|"]
    for name in TEST_SPLITS:
        for label, per_split in metrics.items():
            lines.append(f"| {name} | {label} | " + " | ".join(f"{per_split[name][c]:.4f}" for c in columns) + " |")
    return "\n".join(lines)


def calibration_table(calibration) -> str:
    lines = ["| split | method | cover 50% | cover 80% | cover 90% | cover 95% | width 90% | bias | LLMs |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in TEST_SPLITS:
        for label, per_split in calibration.items():
            row = per_split[name]
            lines.append(f"| {name} | {label} | {row['cover50_llm_mean']:.3f} | {row['cover80_llm_mean']:.3f} | "
                         f"{row['cover90_llm_mean']:.3f} | {row['cover95_llm_mean']:.3f} | {row['width_llm_mean']:.4f} "
                         f"| {row['bias_llm_mean']:+.4f} | {row['n_llms']} |")
    return "\n".join(lines)


def targets(metrics, calibration, fit_seconds, paired) -> list[str]:
    """Each target of the issue, met or not, with the numbers that decide it."""
    lines = []
    ours = "SimRMF (delta)"
    for label in (label for label in metrics if label.startswith(("cmfrec", "SMURFF"))):
        for name in ("B", "C"):
            wins = [f"{m.replace('rmse_', 'RMSE_')} {metrics[ours][name][m]:.4f} vs {metrics[label][name][m]:.4f} "
                    + ("(better)" if metrics[ours][name][m] < metrics[label][name][m] else "(NOT better)")
                    for m in ("rmse_p", "rmse_m", "rmse_x")]
            met = metrics[ours][name]["rmse_p"] < metrics[label][name]["rmse_p"]
            difference, error = paired[label, name]
            clear = abs(difference) > 2 * error
            lines.append(f"- More accurate than {label} on {name} (RMSE_p decides; all three shown): "
                         f"**{'met' if met else 'NOT met'}**"
                         f"{'' if clear else ' (within noise)'} — " + "; ".join(wins)
                         + f"; paired MSE difference (ours − peer) {difference:+.5f} ± {error:.5f} (SE clustered by "
                         f"new {'question' if name == 'B' else 'LLM'}: {'beyond' if clear else 'within'} 2 SE)")
    ours = "SimRMF (normal)"
    for label in (label for label in calibration if label.startswith("SMURFF")):
        faster = fit_seconds[ours] < fit_seconds[label]
        parts, equal_or_better = [], True
        for name in ("B", "C"):
            n_llms = calibration[ours][name]["n_llms"]
            tolerance = float(np.sqrt(0.9 * 0.1 / n_llms))  # one binomial standard error of a coverage
            gap_ours = abs(calibration[ours][name]["cover90_llm_mean"] - 0.9)
            gap_peer = abs(calibration[label][name]["cover90_llm_mean"] - 0.9)
            ece_ok = metrics[ours][name]["ece"] <= metrics[label][name]["ece"] + 0.005
            ok = gap_ours <= gap_peer + tolerance and ece_ok
            equal_or_better &= ok
            parts.append(f"{name}: 90% coverage {calibration[ours][name]['cover90_llm_mean']:.3f} vs "
                         f"{calibration[label][name]['cover90_llm_mean']:.3f}, ECE {metrics[ours][name]['ece']:.4f} vs "
                         f"{metrics[label][name]['ece']:.4f} ({'equal or better' if ok else 'worse'})")
        lines.append(f"- Faster than {label} at equal or better calibration: "
                     f"**{'met' if faster and equal_or_better else 'NOT met'}** — fit {fit_seconds[ours]:.0f} s vs "
                     f"{fit_seconds[label]:.0f} s ({'faster' if faster else 'slower'}); " + "; ".join(parts)
                     + ". Equal or better = |coverage − 0.90| within one binomial standard error (√(0.09/n_LLMs)) of "
                     "SMURFF's or closer, and ECE at most 0.005 above SMURFF's.")
    return lines


def report(args, command, seconds, split, metrics, calibration, fit_seconds, chosen, tables, skipped, peers,
           paired) -> str:
    counts = ", ".join(f"{name} {len(split.pairs[name]):,}" for name in ("train", *TEST_SPLITS))
    time_rows = "\n".join(f"| {label} | {value:.1f} |" for label, value in fit_seconds.items())
    sections = [
        "# Peers on real data: SimRMF vs SMURFF (Macau) vs cmfrec (CMF), issue 6",
        "",
        f"Command: `{command}`  ",
        f"Date: {datetime.date.today().isoformat()}; machine: {platform.machine()}, {os.cpu_count()} cores shared "
        f"with other jobs, {platform.platform()}; JAX on CPU; wall time of the whole run {seconds:.0f} s.  ",
        f"Versions: {versions(peers)}.  ",
        f"Data: `{args.data}`, `Protocol(n_known_llms=500, n_known_items=1000, T=300, seed=0)`: pairs {counts}.  ",
        f"Peers' side information: `{args.features}` (see the script's docstring: `factors` = the package's "
        "similarity factors, the same information SimRMF uses; `raw` = text embeddings + metadata features).",
        *(f"Skipped: {name}, {why}." for name, why in skipped.items()),
        "",
        "## Accuracy per split (the package's metrics on every test pair; ECE with 15 bins)",
        "",
        metrics_table(metrics),
        "",
        "cmfrec predicts scores by squared loss, clipped to [0.001, 0.999] here; its log loss and ECE describe those "
        "clipped scores, not a probability model.",
        "",
        "## Calibration: each LLM's observed mean accuracy on the split against its predictive interval",
        "",
        f"As `experiments/calibration.py`: up to {args.max_pairs:,} pairs per split, {args.n_draws} draws (SMURFF: "
        f"{args.n_draws} of its saved Gibbs samples, evenly spaced), answers drawn per draw, coverage = share of LLMs "
        "whose observed mean lies in the interval, bias = mean(observed − predicted). SimRMF (delta) intervals are "
        "plug-in (answer noise around the MAP, plus the fold-in posterior of new entities). cmfrec gives no "
        "uncertainty.",
        "",
        calibration_table(calibration),
        "",
        "## Fit time (wall seconds, final fit on all training pairs; 2 threads)",
        "",
        "| method | fit s |",
        "|---|---|",
        time_rows,
        "",
        "SimRMF: SVI to convergence (at most 3,000 steps) plus the fold-in of new LLMs and questions, JAX "
        "compilation included where it happens: MF (delta), fitted first, compiles the delta-guide program that "
        "SimRMF (delta) then reuses (so SimRMF (delta)'s time is without compilation); SimRMF (normal) compiles "
        "its own. "
        f"SMURFF: {args.burnin} burn-in + {args.nsamples} sampling sweeps (SMURFF's defaults are 200 + 800), one "
        f"sample in {max(1, args.nsamples // args.n_draws)} kept, at the chosen rank; its time includes reading the "
        "kept samples back. cmfrec: ALS (10 sweeps, its default) plus the cold-start factors.",
        "",
        "## Targets",
        "",
        *targets(metrics, calibration, fit_seconds, paired),
        "",
        "## Installing the peers",
        "",
        "`pip install -e \".[peers]\"` (the optional extra `peers = [\"smurff>=1.1\", \"cmfrec>=3.5\"]`). On this "
        "machine (CPython 3.11, x86_64 Linux) smurff 1.1 installs from a manylinux_2_28 wheel (14 MB; pulls "
        "h5sparse-tensor, scikit-learn, scipy). cmfrec 3.5.1.post14 has no wheel for this platform on PyPI: pip builds "
        "it from the source archive (Cython and findblas are pulled in; needs a C compiler), which took about 4 "
        "minutes on 2 cores. Without them the script stops with a one-line message naming the extra, or skips the "
        "missing peer with `--skip-missing`.",
        "",
        "## Peers' hyper-parameters (chosen on validation pairs carved from the training pairs, never on test pairs)",
        "",
        "SimRMF is not re-tuned: d=8, λ_reg=2, nuggets 10 / 0.1, as committed (its own tuning: log loss on a 10% "
        "carve of the training pairs, then held-out questions / LLMs for the nuggets). Peers: 10% of the training "
        "pairs (`holdout=pairs`), or every training pair of 10% of the known questions (`items`) or LLMs (`llms`), "
        "`carve_validation(..., seed=0)`. cmfrec is chosen by RMSE_p (its squared loss), SMURFF by log loss (its "
        f"likelihood), SMURFF while tuning with chains of {args.tune_burnin} + {args.tune_nsamples} sweeps. SMURFF "
        "samples its regularisation (Normal-Wishart hyper-prior on the latent prior, sampled link-matrix "
        "precision), so only its rank is tuned.",
        "",
    ]
    for label, value in chosen.items():
        sections += [f"### {label}: chosen `{value}`", "", "```", tables[label].round(5).to_string(index=False), "```", ""]
    return "\n".join(sections) + "\n"


if __name__ == "__main__":
    main()
