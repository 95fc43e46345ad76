"""How far is each variational guide from the exact posterior? A NUTS reference on a small problem (issue 4).

On a small sub-problem (default: 40 random LLMs x 80 random questions of openllm-v2-mmlupro-math, all of them
known, T=24 training answers per LLM, i.e. 12 per question; the other answers of the block are held out), fits
MF with the delta (MAP), normal (mean-field) and low-rank guides through ``SimRMF`` and draws from the exact
posterior of the same NumPyro model (``simrmf_model``, same ``ModelConfig``) with NUTS. Factor matrices are
not identifiable (any rotation of M and X together gives the same likelihood and prior), so only identifiable
quantities are compared, all computed from posterior draws by the same code for every method:

* per held-out pair: the posterior-mean probability, its sd, the logit's sd, and whether the NUTS mean lies
  in the method's 90% central interval;
* per LLM (and per question): the expected mean accuracy over its held-out pairs (mean, sd, 90% interval,
  and the Wasserstein-1 and Kolmogorov-Smirnov distances of its draws to the NUTS draws);
* coverage of the *observed* held-out mean accuracy of each LLM (question) by the 90% predictive interval
  (answers drawn per posterior draw), and the held-out log loss of the posterior-mean probabilities.

NUTS runs ``--num-chains`` chains sequentially; R-hat and bulk ESS are reported for the identifiable
quantities (and, for contrast, for the raw factor entries). With two chains, chain 2 is also compared with
chain 1 as if it were a method: this is the Monte Carlo noise floor of every distance in the table. The guides'
draws are ``SimRMF.sample_posterior``; they are cross-checked against ``predict_interval`` and
``predict_group_interval(observed=False)`` (the difference is reported).

The normal and low-rank guides are fitted once per ``--guide-settings`` entry (Adam learning rate and step
budget): the first is ``experiments/calibration.py``'s, the second a slower, longer one, to tell the guide
family's error from the optimiser's. ``--data`` and ``--lambda-reg`` take one or more values (one problem per
pair); a data value is a dataset folder name, or ``synthetic`` for data drawn from the model itself
(``bayes_simrmf.synthetic``, planted dimension ``--dim``): the likelihood is then right by construction, though
the planted parameters are not drawn from the fitted prior. The script writes ``OUT.md`` and ``OUT.csv``; the interpretation paragraph of the committed ``.md`` was written
by hand after the run and is not regenerated.

Usage:
    python experiments/nuts_reference.py --data openllm-v2-mmlupro-math synthetic --n-llms 40 --n-items 80 --T 24 \
        --dim 3 --lambda-reg 2 0.5 --guide-settings 0.02:5000 0.005:20000 --num-warmup 500 --num-samples 1000 \
        --num-chains 2 --out experiments/results/nuts_reference
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
import time
from pathlib import Path

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from numpyro.infer import MCMC, NUTS
from numpyro.infer.initialization import init_to_uniform
from scipy.stats import ks_2samp, wasserstein_distance

from bayes_simrmf.data import load_dataset, shared_dataset_path
from bayes_simrmf.predict import SimRMF
from bayes_simrmf.evaluate import fit_on_split
from bayes_simrmf.evaluate.metrics import brier, log_loss
from bayes_simrmf.model import INTERCEPT, ITEM_FACTORS, LLM_BIAS, LLM_FACTORS, PairsLayout, pair_logits, sigmoid, simrmf_model
from bayes_simrmf.splits import Protocol
from bayes_simrmf.synthetic import make_synthetic_dataset

GUIDES = ("delta", "normal", "lowrank")
LEVEL = 0.9
TAIL = (1.0 - LEVEL) / 2.0


# --- problem ------------------------------------------------------------------------------------------------
def make_split(args, data: str):
    """The small problem: a random sub-block, every LLM and question known, T answers per LLM for training."""
    rng = np.random.default_rng(args.seed)
    if data == "synthetic":
        dataset, _ = make_synthetic_dataset(args.n_llms, args.n_items, dim=args.dim, seed_value=args.seed)
    else:
        full = load_dataset(shared_dataset_path(data), unknown_entities="add", log=None)
        llm_ids = np.sort(full.responses["llm"].unique())
        item_ids = np.sort(full.responses["item"].unique())
        dataset = full.subset(llms=rng.choice(llm_ids, args.n_llms, replace=False),
                              items=rng.choice(item_ids, args.n_items, replace=False))
    protocol = Protocol(n_known_llms=args.n_llms, n_known_items=args.n_items, T=args.T, seed=args.seed)
    return protocol.split(dataset, log=None)


# --- draws -> identifiable quantities ------------------------------------------------------------------------
def interaction_sd(draws: dict, llm: np.ndarray, item: np.ndarray) -> float:
    """How much the factors contribute: sd across pairs of ``m·x``, averaged over draws (0 when collapsed)."""
    if LLM_FACTORS not in draws:
        return 0.0
    return float(np.einsum("spd,spd->sp", draws[LLM_FACTORS][:, llm], draws[ITEM_FACTORS][:, item]).std(axis=1).mean())


def group_means(values: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """``(n_draws, n_groups)`` mean of ``values (n_draws, n_pairs)`` per group code."""
    counts = np.bincount(codes, minlength=n_groups)
    onehot = np.zeros((len(codes), n_groups))
    onehot[np.arange(len(codes)), codes] = 1.0
    return (values @ onehot) / counts


def summarise(logits: np.ndarray, llm: np.ndarray, item: np.ndarray, n_llms: int, n_items: int, seed: int) -> dict:
    """Everything compared, from ``(n_draws, n_pairs)`` held-out logits."""
    prob = sigmoid(logits)
    answers = (np.random.default_rng([seed, 5]).random(prob.shape) < prob).astype(float)
    out = {"prob": prob, "logit_sd": logits.std(axis=0, ddof=1)}
    for name, codes, n in (("llm", llm, n_llms), ("item", item, n_items)):
        out[f"{name}_acc"] = group_means(prob, codes, n)            # expected accuracy per draw
        out[f"{name}_obs"] = group_means(answers, codes, n)         # observed accuracy per draw (answers drawn)
    return out


def interval(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lower, upper = np.quantile(values, [TAIL, 1.0 - TAIL], axis=0)
    return lower, upper


def compare(method: dict, reference: dict | None, heldout_correct: np.ndarray, observed: dict) -> dict:
    """Metrics of one method; distances to ``reference`` (NUTS) when given."""
    prob = method["prob"]
    mean = prob.mean(axis=0)
    row = {"heldout_log_loss": log_loss(mean, heldout_correct), "heldout_brier": brier(mean, heldout_correct)}
    for name in ("llm", "item"):
        lower, upper = interval(method[f"{name}_obs"])
        row[f"{name}_cover90_obs"] = float(np.mean((lower <= observed[name]) & (observed[name] <= upper)))
        row[f"{name}_width90_obs"] = float(np.mean(upper - lower))
    lower, upper = interval(method["llm_acc"])
    row["llm_width90_acc"] = float(np.mean(upper - lower))
    if reference is None:
        return row
    ref_prob = reference["prob"]
    ref_mean = ref_prob.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        row["prob_mae_vs_nuts"] = float(np.mean(np.abs(mean - ref_mean)))
        row["prob_sd_ratio_med"] = float(np.median(prob.std(axis=0, ddof=1) / ref_prob.std(axis=0, ddof=1)))
        row["logit_sd_ratio_med"] = float(np.median(method["logit_sd"] / reference["logit_sd"]))
        lower, upper = interval(prob)
        row["pair_cover90_nuts_mean"] = float(np.mean((lower <= ref_mean) & (ref_mean <= upper)))
        for name in ("llm", "item"):
            acc, ref_acc = method[f"{name}_acc"], reference[f"{name}_acc"]
            ref_sd = ref_acc.std(axis=0, ddof=1)
            row[f"{name}_acc_mae_vs_nuts"] = float(np.mean(np.abs(acc.mean(axis=0) - ref_acc.mean(axis=0))))
            row[f"{name}_acc_mae_over_nuts_sd"] = float(np.mean(np.abs(acc.mean(axis=0) - ref_acc.mean(axis=0)) / ref_sd))
            lower, upper = interval(acc)
            ref_lower, ref_upper = interval(ref_acc)
            row[f"{name}_width90_ratio_med"] = float(np.median((upper - lower) / (ref_upper - ref_lower)))
            row[f"{name}_w1_over_nuts_sd"] = float(np.mean(
                [wasserstein_distance(acc[:, g], ref_acc[:, g]) / ref_sd[g] for g in range(acc.shape[1])]))
            row[f"{name}_ks_mean"] = float(np.mean([ks_2samp(acc[:, g], ref_acc[:, g]).statistic
                                                    for g in range(acc.shape[1])]))
    return row


# --- NUTS ----------------------------------------------------------------------------------------------------
def run_nuts(args, estimator: SimRMF, llm_ids, item_ids, train_llm, train_item, train_correct):
    config = estimator.model_config()
    layout = PairsLayout(llm=jnp.asarray(train_llm, jnp.int32), item=jnp.asarray(train_item, jnp.int32))
    kernel = NUTS(simrmf_model, target_accept_prob=args.target_accept, init_strategy=init_to_uniform(radius=1.0))
    mcmc = MCMC(kernel, num_warmup=args.num_warmup, num_samples=args.num_samples, num_chains=args.num_chains,
                chain_method="sequential", progress_bar=False)
    started = time.perf_counter()
    mcmc.run(jax.random.PRNGKey(args.seed), len(llm_ids), len(item_ids), layout, config,
             correct=jnp.asarray(train_correct, jnp.float32), extra_fields=("diverging", "num_steps"))
    samples = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
    seconds = time.perf_counter() - started
    extra = mcmc.get_extra_fields(group_by_chain=True)
    return samples, seconds, np.asarray(extra["diverging"]), np.asarray(extra["num_steps"])


def parse_setting(text: str) -> tuple[float, int]:
    """``"0.02:5000"`` -> (0.02, 5000)."""
    lr, steps = text.split(":")
    return float(lr), int(steps)


def chain_diagnostics(by_chain: np.ndarray) -> tuple[float, float, float]:
    """(max R-hat, min bulk ESS, median bulk ESS) over the trailing dimensions of ``(chains, draws, ...)``.

    ArviZ's rank-normalised split R-hat and bulk ESS (Vehtari et al. 2021).
    """
    flat = by_chain.reshape(by_chain.shape[0], by_chain.shape[1], -1).astype(np.float64)
    dataset = az.convert_to_dataset({"x": flat})
    rhat = np.asarray(az.rhat(dataset)["x"].values)
    ess = np.asarray(az.ess(dataset, method="bulk")["x"].values)
    return float(np.nanmax(rhat)), float(np.nanmin(ess)), float(np.nanmedian(ess))


# --- one problem ---------------------------------------------------------------------------------------------
def run_problem(args, data: str, lambda_reg: float) -> tuple[pd.DataFrame, list[dict], list[dict], str]:
    """Fit the three guides and NUTS on one problem; returns (metrics per method, NUTS diagnostics,
    cross-checks of the package's interval code, a one-line description of the problem)."""
    split = make_split(args, data)
    train, heldout = split.pairs["train"], split.pairs["A"]
    llm_ids, item_ids = np.asarray(split.llms, dtype=str), np.asarray(split.items, dtype=str)
    n_llms, n_items = len(llm_ids), len(item_ids)
    observed = {
        "llm": np.bincount(heldout.llm, weights=heldout.correct, minlength=n_llms) / np.bincount(heldout.llm, minlength=n_llms),
        "item": np.bincount(heldout.item, weights=heldout.correct, minlength=n_items) / np.bincount(heldout.item, minlength=n_items),
    }
    source = (f"drawn from the model by `make_synthetic_dataset`, planted d={args.dim}, seed {args.seed}"
              if data == "synthetic" else f"random, seed {args.seed}")
    problem = (f"{data}, λ_reg={lambda_reg:g}: {n_llms} LLMs x {n_items} questions ({source}), all known; "
               f"{len(train.correct):,} training pairs (T={args.T} per LLM, "
               f"{len(train.correct) / n_items:.0f} per question), {len(heldout.correct):,} held-out pairs; "
               f"mean correct {train.correct.mean():.3f} (train), {heldout.correct.mean():.3f} (held out)")
    print(problem, flush=True)
    n_draws = args.num_samples * args.num_chains

    rows, summaries, checks = [], {}, []
    estimators = {}
    settings = [parse_setting(text) for text in args.guide_settings]
    fits = [("delta", 0.05, max(steps for _, steps in settings))]
    fits += [(guide, lr, steps) for lr, steps in settings for guide in GUIDES if guide != "delta"]
    for guide, lr, steps in fits:
        key = f"{guide} lr={lr:g} steps={steps}"
        estimator = SimRMF(method="mf", guide=guide, dim=args.dim, lambda_reg=lambda_reg, bias_scale=args.bias_scale,
                           learning_rate=lr, max_steps=steps, seed=args.seed, progress=False)
        fit_started = time.perf_counter()
        fit_on_split(estimator, split)
        fit_seconds = time.perf_counter() - fit_started
        estimators[key] = estimator
        draws = estimator.sample_posterior(n_draws, seed=args.seed)
        llm_codes = pd.Index(estimator.llms_).get_indexer(llm_ids[heldout.llm])
        item_codes = pd.Index(estimator.items_).get_indexer(item_ids[heldout.item])
        assert (llm_codes >= 0).all() and (item_codes >= 0).all()
        summaries[key] = summarise(pair_logits(draws, llm_codes, item_codes), heldout.llm, heldout.item,
                                   n_llms, n_items, args.seed)
        rows.append({"method": guide, "lr": lr, "_key": key, "fit_s": fit_seconds, "steps": len(estimator.losses_),
                     "converged": bool(estimator.converged_),
                     "final_loss": float(np.mean(estimator.losses_[-500:])),
                     "interaction_sd": interaction_sd(draws, llm_codes, item_codes)})
        print(f"{key}: {fit_seconds:.1f} s, {len(estimator.losses_)} steps, converged {estimator.converged_}, "
              f"final loss {rows[-1]['final_loss']:.1f}", flush=True)
        if guide != "delta" and (lr, steps) == settings[0]:
            # The package's own interval code should give the same numbers from the same draws.
            table = estimator.predict_interval(llm_ids[heldout.llm], item_ids[heldout.item], n_draws=n_draws,
                                               level=LEVEL, seed=args.seed)
            groups = estimator.predict_group_interval(llm_ids[heldout.llm], item_ids[heldout.item], by="llm",
                                                      n_draws=n_draws, level=LEVEL, observed=False, seed=args.seed)
            prob = summaries[key]["prob"]
            acc = summaries[key]["llm_acc"]
            lower, upper = interval(acc)
            mine = pd.DataFrame({"mean": acc.mean(axis=0), "lower": lower, "upper": upper}, index=llm_ids)
            mine = mine.loc[groups.index]
            checks.append({
                "data": data,
                "lambda_reg": lambda_reg,
                "guide": guide,
                "pair prob": np.max(np.abs(table["prob"].to_numpy() - prob.mean(axis=0))),
                "pair sd": np.max(np.abs(table["sd"].to_numpy() - prob.std(axis=0, ddof=1))),
                "pair lower/upper": max(np.max(np.abs(table["lower"].to_numpy() - interval(prob)[0])),
                                        np.max(np.abs(table["upper"].to_numpy() - interval(prob)[1]))),
                "LLM mean/lower/upper": float(np.max(np.abs(groups[["mean", "lower", "upper"]].to_numpy() - mine.to_numpy()))),
            })

    # NUTS on the same model, data and entity order as the fitted estimators.
    reference = estimators[rows[0]["_key"]]
    train_llm = pd.Index(reference.llms_).get_indexer(llm_ids[train.llm])
    train_item = pd.Index(reference.items_).get_indexer(item_ids[train.item])
    samples, nuts_seconds, diverging, num_steps = run_nuts(
        args, reference, reference.llms_, reference.items_, train_llm, train_item, train.correct)
    llm_codes = pd.Index(reference.llms_).get_indexer(llm_ids[heldout.llm])
    item_codes = pd.Index(reference.items_).get_indexer(item_ids[heldout.item])
    by_chain_logits = np.stack([pair_logits({k: v[c] for k, v in samples.items()}, llm_codes, item_codes)
                                for c in range(args.num_chains)])
    pooled = {k: v.reshape(-1, *v.shape[2:]) for k, v in samples.items()}
    summaries["nuts"] = summarise(pair_logits(pooled, llm_codes, item_codes), heldout.llm, heldout.item,
                                  n_llms, n_items, args.seed)
    print(f"nuts: {nuts_seconds:.1f} s, {int(diverging.sum())} divergences, mean leapfrog steps {num_steps.mean():.0f}",
          flush=True)
    nuts_row = {"method": "nuts", "_key": "nuts", "fit_s": nuts_seconds, "steps": args.num_warmup + args.num_samples,
                "interaction_sd": interaction_sd(pooled, llm_codes, item_codes),
                "divergences": int(diverging.sum()), "mean_leapfrog": float(num_steps.mean())}
    diagnostics = []
    if args.num_chains >= 2:
        acc_by_chain = np.stack([group_means(sigmoid(by_chain_logits[c]), heldout.llm, n_llms)
                                 for c in range(args.num_chains)])
        for key, label, values in (
            ("logit", "held-out pair logits", by_chain_logits),
            ("llm_acc", "per-LLM expected held-out accuracy", acc_by_chain),
            ("intercept", "intercept (weakly identified: trades off with the biases)", samples[INTERCEPT]),
            ("llm_bias", "llm_bias (weakly identified)", samples[LLM_BIAS]),
            ("llm_factors", "llm_factors entries (not identifiable: rotations)", samples[LLM_FACTORS]),
        ):
            rhat, ess_min, ess_med = chain_diagnostics(values)
            diagnostics.append({"data": data, "lambda_reg": lambda_reg, "quantity": label, "max R-hat": rhat, "min bulk ESS": ess_min,
                                "median bulk ESS": ess_med})
            if key in ("logit", "llm_acc"):
                nuts_row[f"rhat_max_{key}"], nuts_row[f"ess_min_{key}"] = rhat, ess_min
    rows.append(nuts_row)
    for row in rows:
        key = row.pop("_key")
        row.update(compare(summaries[key], None if key == "nuts" else summaries["nuts"], heldout.correct, observed))
    if args.num_chains >= 2:  # noise floor: one NUTS chain against another
        halves = [summarise(by_chain_logits[c], heldout.llm, heldout.item, n_llms, n_items, args.seed + c) for c in (0, 1)]
        rows.append({"method": "nuts chain 2 vs chain 1", "steps": args.num_warmup + args.num_samples,
                     **compare(halves[1], halves[0], heldout.correct, observed)})
    frame = pd.DataFrame(rows)
    frame.insert(0, "data", data)
    frame.insert(1, "lambda_reg", lambda_reg)
    return frame, diagnostics, checks, problem


# --- main ----------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=["openllm-v2-mmlupro-math", "synthetic"],
                        help="dataset folder name(s) and/or 'synthetic'; one problem each")
    parser.add_argument("--n-llms", type=int, default=40)
    parser.add_argument("--n-items", type=int, default=80)
    parser.add_argument("--T", type=int, default=24, help="training answers per LLM (the smaller side)")
    parser.add_argument("--dim", type=int, default=3)
    parser.add_argument("--lambda-reg", type=float, nargs="+", default=[2.0, 0.5],
                        help="L2 weight(s); one problem per data set and value (prior sd of a factor entry 1/sqrt(2 λ))")
    parser.add_argument("--bias-scale", type=float, default=2.0)
    parser.add_argument("--guide-settings", nargs="+", default=["0.02:5000", "0.005:20000"],
                        help="LR:MAX_STEPS of Adam for the normal and low-rank guides, one fit per setting (the first is "
                             "experiments/calibration.py's); delta always uses 0.05 and the largest MAX_STEPS")
    parser.add_argument("--num-warmup", type=int, default=500)
    parser.add_argument("--num-samples", type=int, default=1000, help="per chain")
    parser.add_argument("--num-chains", type=int, default=2)
    parser.add_argument("--target-accept", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="writes OUT.md and OUT.csv")
    args = parser.parse_args()
    started = time.time()
    frames, diagnostics, checks, problems = [], [], [], []
    for data in args.data:
        for lambda_reg in args.lambda_reg:
            frame, diag, check, problem = run_problem(args, data, lambda_reg)
            frames.append(frame)
            diagnostics += diag
            checks += check
            problems.append(problem)
    frame = pd.concat(frames, ignore_index=True)
    wall = time.time() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out.with_suffix(".csv"), index=False)
    write_markdown(args, frame, diagnostics, checks, problems, wall, args.num_samples * args.num_chains)
    print(args.out.with_suffix(".md").read_text())


_FORMATS = {"lambda_reg": "g", "lr": "g", "fit_s": ".1f", "steps": ".0f", "final_loss": ".1f", "min bulk ESS": ".0f",
            "median bulk ESS": ".0f"}


def _fmt(frame: pd.DataFrame, spec: str = ".3f") -> str:
    def cell(column, value):
        if isinstance(value, (float, np.floating, int, np.integer)) and not isinstance(value, (bool, np.bool_)):
            return "—" if np.isnan(value) else format(value, _FORMATS.get(column, spec))
        return str(value)

    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(c, v) for c, v in zip(frame.columns, row)) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def write_markdown(args, frame, diagnostics, checks, problems, wall, n_draws) -> None:
    distance_columns = ["data", "lambda_reg", "method", "lr", "prob_mae_vs_nuts", "prob_sd_ratio_med", "logit_sd_ratio_med",
                        "pair_cover90_nuts_mean", "llm_acc_mae_vs_nuts", "llm_acc_mae_over_nuts_sd", "llm_width90_ratio_med",
                        "llm_w1_over_nuts_sd", "llm_ks_mean", "item_width90_ratio_med", "item_w1_over_nuts_sd"]
    predictive_columns = ["data", "lambda_reg", "method", "lr", "fit_s", "steps", "final_loss", "interaction_sd", "heldout_log_loss", "heldout_brier", "llm_width90_acc",
                          "llm_cover90_obs", "llm_width90_obs", "item_cover90_obs", "item_width90_obs"]
    nuts = frame[frame.method == "nuts"]
    sampler = "; ".join(f"{row.data}, λ_reg={row.lambda_reg:g}: {int(row.divergences)} divergences, mean {row.mean_leapfrog:.0f} leapfrog steps "
                        f"per draw, {row.fit_s:.0f} s" for row in nuts.itertuples())
    text = [
        f"# Variational guides against a NUTS reference (MF d={args.dim})",
        "",
        f"Command: `{shlex.join(['python', *sys.argv])}`  ",
        f"Machine: {platform.machine()} CPU (JAX on CPU, 2 cores shared with other jobs); wall time {wall:.0f} s in all.  ",
        *[f"Problem: {problem}.  " for problem in problems],
        f"Model: `ModelConfig(dim={args.dim}, lambda_reg=λ_reg, biases=True, bias_scale={args.bias_scale})`, the same "
        f"for every method of a problem. SVI (`SimRMF`, dense layout, 1 ELBO particle, low-rank guide of rank 8): Adam "
        f"0.05 for delta; for normal and lowrank one fit per `LR:MAX_STEPS` in {' '.join(args.guide_settings)} (the "
        f"column `lr`); a fit stops earlier when the chunk-mean loss changes < 1e-5 per 50 steps. "
        f"NUTS (`numpyro.infer.NUTS(simrmf_model)`, pairs layout): {args.num_chains} chains run sequentially, "
        f"{args.num_warmup} warm-up + {args.num_samples} draws each, target accept {args.target_accept}, init "
        f"uniform(-1, 1) in unconstrained space. Every method is summarised from {n_draws} draws "
        f"({LEVEL:.0%} central intervals); the held-out pairs are the rest of the LLM x question block (split A).",
        "",
        "## NUTS diagnostics",
        "",
        "ArviZ rank-normalised split R-hat and bulk ESS across the chains, worst (and median) over the entries.",
        "",
        _fmt(pd.DataFrame(diagnostics)) if diagnostics else "(one chain: no R-hat)",
        "",
        f"Sampler: {sampler}.",
        "",
        "## Distance of each method's posterior from NUTS (held-out pairs)",
        "",
        "`prob_mae_vs_nuts`: mean |posterior-mean probability − NUTS's| per held-out pair. `*_sd_ratio_med`: median over "
        "pairs of the method's posterior sd / NUTS's (probability and logit scale). `pair_cover90_nuts_mean`: share of "
        "pairs whose NUTS posterior mean lies in the method's 90% interval. `llm_*`: each LLM's expected accuracy over "
        "its held-out pairs (per draw): mean |Δ mean| (absolute, and in NUTS sds), median ratio of 90% interval widths, "
        "mean Wasserstein-1 distance in NUTS sds, mean KS statistic; `item_*` the same per question. The row "
        "`nuts chain 2 vs chain 1` compares one NUTS chain with the other: the Monte Carlo noise floor of these "
        f"distances (each side has {args.num_samples} autocorrelated draws, against {n_draws} on each side for the "
        "guides, so the floor is if anything too high).",
        "",
        _fmt(frame[[c for c in distance_columns if c in frame]]),
        "",
        "## Predictive quality and calibration (held-out pairs)",
        "",
        "Log loss and Brier of the posterior-mean probabilities. `llm_width90_acc`: mean width of the 90% interval of "
        "an LLM's expected held-out accuracy. `*_cover90_obs`: share of LLMs (questions) whose observed held-out mean "
        "accuracy lies in the 90% predictive interval (answers drawn per posterior draw; for delta the plug-in "
        "predictive, answer noise around the MAP), with the interval's mean width. `fit_s`: wall time of the fit "
        "(SVI: `SimRMF.fit`, compile included; NUTS: all chains, compile included); `steps`: SVI steps run (NUTS: "
        "warm-up + draws per chain). `final_loss`: mean SVI loss over the last 500 steps (negative ELBO for normal and "
        "lowrank, comparable between them; negative log joint for delta). `interaction_sd`: sd of the factor term m·x across held-out pairs, averaged over "
        "draws (0: the factors collapsed to zero).",
        "",
        _fmt(frame[[c for c in predictive_columns if c in frame]]),
        "",
        "## Cross-check of the package's interval code",
        "",
        "Largest absolute difference between `predict_interval` / `predict_group_interval(by='llm', observed=False)` and "
        "the same quantities computed here from `sample_posterior` with the same seed and number of draws:",
        "",
        _fmt(pd.DataFrame(checks), ".1e") if checks else "",
        "",
    ]
    args.out.with_suffix(".md").write_text("\n".join(text))


if __name__ == "__main__":
    main()
