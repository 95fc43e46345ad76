"""Speed and scale of SimRMF (issue 6): paper-scale fit, growth with items and LLMs, end-to-end CLI.

Every measured configuration runs in its own child process (``python bench_scale.py --child SPEC``), which reports
its own peak RSS (``VmHWM`` of /proc/self/status: the peak of that process since it started), so peaks never mix.
Inputs are generated (seeded) by a child into a scratch folder and loaded by the children; the parent stays small.
The end-to-end CLI run's peak is ``ru_maxrss`` from ``os.wait4`` (its floor is the small parent's RSS, printed).

Modes
-----
``--mode paper``: simulated data shaped like the paper's: 1,704 LLMs x 21,065 items, 768-d unit-norm item embeddings
with a low-rank cluster structure, leaderboard-like LLM metadata (architecture, model type, parameter count, flags,
a random fine-tune / merge family tree), 1,000 known LLMs x 1,000 known items, every known LLM and item with exactly
T = 300 training pairs (a circulant design), d = 32, every LLM and item in the model (transductive).

* package: ``SimRMF(method="simrmf", dim=32, similarity_mode="joint")`` (the paper's Gram potential on all entities,
  through the low-rank factors) with the delta and the normal guide, plus the package's default
  ``similarity_mode="kernel"`` (warm fit, then Gaussian-process fold-in of the cold entities). The side information
  is built as the package builds it: item factor ``centre_rows(sqrt_psd_factor_from_embeddings(E))``, LLM factor
  ``centre_rows(llm_similarity_factor(metadata))`` (exact ``eigh`` at 1,704 LLMs). Reported: factor build time, fit to
  convergence (the package's own stopping rule, default settings: tol 1e-5 per 50-step chunk, max 3,000 steps; the
  normal guide capped at ``--normal-max-steps``, default 600, with the 3,000-step time extrapolated),
  time per SVI step (two fixed-length runs, 50 and 150 steps with tol = 0; the difference cancels compilation),
  compile time, peak RSS of the process.
* dense: the same loss with the n x n matrices: ``√S_X`` (21,065², float32) and ``√S_M`` (1,704²) dense, the Gram
  potential ``‖F Fᵀ‖² − ⟨F Fᵀ, √S⟩² / ‖√S‖²`` (the package's default scale-profiled, bias-augmented potential) as
  n x n products in JAX, the same priors and Bernoulli likelihood, the same initial values and Adam(0.05). At full
  size ``√S_X`` is formed as ``W Wᵀ`` from the package's factor (the same matrix, exactly); the cost of getting it
  the straightforward way, ``scipy.linalg.eigh`` of the 21,065² cosine similarity, clip, square root, is measured at
  n = 2,000 / 4,000 / 8,000 (float32, LAPACK evd, one BLAS thread: the fastest setting measured on this machine) and
  extrapolated to 21,065 with a fitted power law (the full-size eigh is attempted only with ``--eigh-full``).
  Checked: the dense loss at the initial values and over the first 10 Adam steps equals the package's.

``--mode growth``: time per step (100 steps after compile) and peak RSS of the package's joint delta fit, d = 32,
for items 10^3 .. 10^5 at 1,704 LLMs, and LLMs 10^3 .. 10^4 at 21,065 items (log-log slopes, target <= 1.1). The
LLM factor is the package's (``llm_similarity_factor``: feature + lineage similarity, exact up to 2,000 LLMs, its
leading 512 components from the similarity's structure above, O(n·k)); ``--features-llm-sizes`` adds rows with the
factor of the metadata features alone.

``--mode breakdown``: at paper size, the jitted value + gradient of each term of the model alone (item and LLM Gram
potentials, with the full factor and truncated to 384 / 128 columns; likelihood; priors): where a step's time goes.

``--mode e2e``: ``bayes-simrmf fit --data $BAYES_SIMRMF_DATA/<data> --T <T> --guide delta --method simrmf --quiet``
as a child process (openllm-v2-mmlupro-math T=300, openllm-v2 T=100 and T=300 by default): wall time and peak RSS
(written to a scratch ``--out``).

Usage:
    python experiments/bench/bench_scale.py --mode paper [--dense-steps 5] [--eigh-sizes 2000 4000 8000] [--eigh-full]
        [--energies 0.9] [--skip-normal]
    python experiments/bench/bench_scale.py --mode growth
    python experiments/bench/bench_scale.py --mode e2e [--e2e-repeats 3]
    python experiments/bench/bench_scale.py --mode breakdown
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bayes_simrmf.machine import (current_rss_mib, machine_line, peak_rss_mib, power_law,  # noqa: F401 (re-exported)
                                  run_command_with_rusage)

REPO = Path(__file__).resolve().parents[2]
PAPER = {"n_llms": 1704, "n_items": 21065, "n_known": 1000, "T": 300, "emb_dim": 768, "dim": 32}
# On this shared 2-core machine a 2-thread OpenBLAS eigh spends most of its time waiting for the busy core
# (n = 3,000 float32: 3.2 s with one thread, 18 s with two); numpy/scipy parts of every child get one thread.
ONE_BLAS_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
N_CHECK = 10  # Adam steps over which the dense loss is compared with the package's



# ============================================================================================ synthetic problem
def balanced_pairs(n_known: int, T: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Known LLM i answers items ``(i + o) mod n_known`` for T random distinct offsets o: every known LLM and every
    known item has exactly T training pairs (the paper's balanced design), then rows and columns are shuffled."""
    offsets = rng.choice(n_known, size=T, replace=False)
    llm = np.repeat(np.arange(n_known), T)
    item = (llm + np.tile(offsets, n_known)) % n_known
    return rng.permutation(n_known)[llm].astype(np.int32), rng.permutation(n_known)[item].astype(np.int32)


def write_problem(folder: Path, n_llms: int, n_items: int, n_known: int, T: int, emb_dim: int, seed: int = 0) -> Path:
    """Generate a problem and save it (``embeddings.npy``, ``llms.parquet``, ``pairs.npz``). Ids sort known-first, so
    the package's entity order (warm sorted, then cold sorted) is the order of the arrays here."""
    from bayes_simrmf.synthetic import synthetic_item_embeddings, synthetic_llm_metadata  # not in the parent: keeps JAX out

    from bayes_simrmf.model import INTERCEPT, ITEM_BIAS, ITEM_FACTORS, LLM_BIAS, LLM_FACTORS, pair_logits, sigmoid

    folder.mkdir(parents=True, exist_ok=True)
    if (folder / "pairs.npz").exists():
        return folder
    rng = np.random.default_rng(seed)
    n_known_llms, n_known_items = min(n_known, n_llms), min(n_known, n_items)
    metadata, family = synthetic_llm_metadata(n_llms, rng)
    embeddings, topic = synthetic_item_embeddings(n_items, emb_dim, rng)
    known_llms = np.sort(rng.choice(n_llms, n_known_llms, replace=False))
    known_items = np.sort(rng.choice(n_items, n_known_items, replace=False))
    llm_order = np.concatenate([known_llms, np.setdiff1d(np.arange(n_llms), known_llms)])
    item_order = np.concatenate([known_items, np.setdiff1d(np.arange(n_items), known_items)])
    new_name = {metadata["llm"][old]: f"{'k' if rank < n_known_llms else 'n'}-llm-{rank:05d}"
                for rank, old in enumerate(llm_order)}
    metadata = metadata.iloc[llm_order].reset_index(drop=True)
    metadata["base_model"] = [new_name[b.removesuffix(" (Merge)")] + (" (Merge)" if b.endswith(" (Merge)") else "")
                              for b in metadata["base_model"]]
    metadata["llm"] = metadata["llm"].map(new_name)
    family, embeddings, topic = family[llm_order], embeddings[item_order], topic[item_order]
    # Planted truth, tied to the side information: item latents and difficulties by topic, LLM latents by family.
    d_true = 8
    item_latent = rng.normal(0, 0.8, (topic.max() + 1, d_true))[topic] + rng.normal(0, 0.4, (n_items, d_true))
    item_bias = rng.normal(0, 1.2, topic.max() + 1)[topic] + rng.normal(0, 0.6, n_items)
    llm_latent = rng.normal(0, 0.8, (family.max() + 1, d_true))[family] + rng.normal(0, 0.4, (n_llms, d_true))
    llm_bias = rng.normal(0, 0.8, family.max() + 1)[family] + rng.normal(0, 0.4, n_llms)
    pair_llm, pair_item = balanced_pairs(min(n_known_llms, n_known_items), T, rng)
    planted = {INTERCEPT: np.float64(-0.8), LLM_BIAS: llm_bias, ITEM_BIAS: item_bias, LLM_FACTORS: llm_latent,
               ITEM_FACTORS: item_latent}
    logits = pair_logits(planted, pair_llm, pair_item)
    correct = (rng.random(len(logits)) < sigmoid(logits)).astype(np.int8)
    np.save(folder / "embeddings.npy", embeddings)
    metadata.to_parquet(folder / "llms.parquet")
    item_ids = np.array([f"{'k' if k < n_known_items else 'n'}-item-{k:06d}" for k in range(n_items)])
    np.savez(folder / "pairs.npz", llm=pair_llm, item=pair_item, correct=correct, item_ids=item_ids)
    return folder


def load_problem(folder: Path) -> dict:
    import pandas as pd

    pairs = np.load(folder / "pairs.npz")
    metadata = pd.read_parquet(folder / "llms.parquet")
    return {
        "embeddings": np.load(folder / "embeddings.npy"),
        "metadata": metadata,
        "llm_ids": metadata["llm"].to_numpy().astype(str),
        "item_ids": pairs["item_ids"],
        "llm": pairs["llm"], "item": pairs["item"], "correct": pairs["correct"],
    }


# ================================================================================================ children
def build_side(problem: dict, llm_route: str, energy: float | None = None) -> tuple[object, dict]:
    """The package's side information for the problem; ``llm_route`` "package" (feature + lineage similarity,
    ``llm_similarity_factor``: exact eigh up to 2,000 LLMs, its leading 512 components from the similarity's
    structure above; what ``build_side_information`` does) or "features" (low-rank factor of the metadata feature
    vectors alone). ``energy``: each √S keeps the leading components holding that share of its trace (None: all)."""
    from bayes_simrmf.similarity import SideInformation, centre_rows
    from bayes_simrmf.similarity import llm_feature_matrix, llm_similarity_factor, sqrt_psd_factor_from_embeddings

    start = time.perf_counter()
    item_factor = centre_rows(sqrt_psd_factor_from_embeddings(problem["embeddings"], energy=energy)[0])
    items_s = time.perf_counter() - start
    start = time.perf_counter()
    if llm_route in ("package", "dense"):
        factor, _, _ = llm_similarity_factor(problem["metadata"], alpha=0.5, energy=energy)
    else:
        features, _, _ = llm_feature_matrix(problem["metadata"])
        factor, _ = sqrt_psd_factor_from_embeddings(features, energy=energy)
    llm_factor = centre_rows(factor)
    llms_s = time.perf_counter() - start
    side = SideInformation(problem["llm_ids"], llm_factor, problem["item_ids"], item_factor)
    return side, {"item_factor_s": items_s, "llm_factor_s": llms_s, "item_factor_shape": list(item_factor.shape),
                  "llm_factor_shape": list(llm_factor.shape)}


def _fit(problem: dict, side, spec: dict, **overrides):
    from bayes_simrmf.predict import SimRMF

    options = dict(method="simrmf", dim=spec["dim"], guide=spec["guide"], similarity_mode=spec["mode"],
                   progress=False, seed=0)
    options.update(overrides)
    model = SimRMF(**options)
    start = time.perf_counter()
    model.fit(problem["llm_ids"][problem["llm"]], problem["item_ids"][problem["item"]], problem["correct"],
              llms=problem["llm_ids"], items=problem["item_ids"], side=side)
    return model, time.perf_counter() - start


def child_package(spec: dict) -> dict:
    import gc

    import jax  # noqa: F401  (imports are part of the process's footprint)

    import bayes_simrmf.predict  # noqa: F401

    result = {"rss_after_imports_mib": peak_rss_mib()}
    problem = load_problem(Path(spec["problem"]))
    result["rss_after_inputs_mib"] = peak_rss_mib()
    side, build = build_side(problem, spec["llm_route"], spec.get("energy"))
    result.update(build, rss_after_build_mib=peak_rss_mib())
    if spec.get("converge"):
        # First fit in a fresh process, default stopping rule: what a user's fit costs (first-call set-up included).
        model, wall = _fit(problem, side, spec, **({"max_steps": spec["max_steps"]} if spec.get("max_steps") else {}))
        result["converge"] = {"fit_wall_s": wall, "svi_s": model.fit_seconds_, "steps": int(len(model.losses_)),
                              "converged": bool(model.converged_), "final_loss": float(model.losses_[-1]),
                              "max_steps": int(model.max_steps), "layout": model.layout_,
                              "lambdas": model.similarity_lambdas_}
        result["rss_after_converge_mib"] = peak_rss_mib()
        del model
        gc.collect()
    elif spec.get("timing"):
        # The first SVI fit in a process pays one-off set-up (hundreds of small eager compilations in svi.init);
        # a 1-step warm-up takes it, so that the two timed runs below differ by their steps only.
        model, wall = _fit(problem, side, spec, max_steps=1, tol=0.0)
        result["warmup"] = {"fit_wall_s": wall, "svi_s": model.fit_seconds_}
        del model
        gc.collect()
    if spec.get("timing"):
        short, long = spec["timing"]
        runs = {}
        for steps in (short, long):
            model, wall = _fit(problem, side, spec, max_steps=steps, tol=0.0)
            runs[steps] = (model.fit_seconds_, wall, float(model.losses_[-1]))
            del model
            gc.collect()
        per_step = (runs[long][0] - runs[short][0]) / (long - short)
        result["timing"] = {"steps": [short, long], "svi_s": [runs[short][0], runs[long][0]],
                            "fit_wall_s": [runs[short][1], runs[long][1]], "per_step_s": per_step,
                            "compile_and_setup_s": runs[short][0] - short * per_step,
                            "losses": [runs[short][2], runs[long][2]]}
        if "converge" in result:
            result["converge"]["setup_s"] = result["converge"]["svi_s"] - result["converge"]["steps"] * per_step
    result["peak_rss_mib"] = peak_rss_mib()
    return result


def child_dense(spec: dict) -> dict:
    """The same loss with dense n x n √S matrices, in plain JAX, Adam(0.05) from the package's initial values."""
    import jax
    import jax.numpy as jnp
    import numpyro.distributions as dist
    import optax

    from bayes_simrmf.inference import initial_values
    from bayes_simrmf.model import INTERCEPT, ITEM_BIAS, ITEM_FACTORS, LLM_BIAS, LLM_FACTORS, ModelConfig, grid_logits

    highest = jax.lax.Precision.HIGHEST
    result = {"rss_after_imports_mib": peak_rss_mib()}
    problem = load_problem(Path(spec["problem"]))
    side, build = build_side(problem, "package")
    result.update(build)
    n_llms, n_items = len(problem["llm_ids"]), len(problem["item_ids"])
    n_pairs = len(problem["correct"])
    config = ModelConfig(dim=spec["dim"])  # the package's defaults: lambda_reg 1, bias_scale 2, intercept_prior 3
    lambda_items, lambda_llms = n_pairs / n_items**2, n_pairs / n_llms**2  # kappa = 1 (SimRMF defaults)

    start = time.perf_counter()
    item_factor = jnp.asarray(side.item_factor)
    sqrt_items = jax.block_until_ready(jnp.matmul(item_factor, item_factor.T, precision=highest))  # (n, n)
    llm_factor = jnp.asarray(side.llm_factor)
    sqrt_llms = jax.block_until_ready(jnp.matmul(llm_factor, llm_factor.T, precision=highest))
    del item_factor, llm_factor
    side.item_factor = side.llm_factor = None
    sqrt_items_fro2, sqrt_llms_fro2 = jnp.vdot(sqrt_items, sqrt_items), jnp.vdot(sqrt_llms, sqrt_llms)
    result["dense_sqrt_from_factor_s"] = time.perf_counter() - start
    result["rss_after_dense_sqrt_mib"] = peak_rss_mib()

    n_block = int(problem["llm"].max()) + 1, int(problem["item"].max()) + 1
    mask = np.zeros(n_block, bool)
    mask[problem["llm"], problem["item"]] = True
    observed = np.zeros(n_block, np.float32)
    observed[problem["llm"], problem["item"]] = problem["correct"]
    mask, observed = jnp.asarray(mask), jnp.asarray(observed)

    def dense_potential(latent, sqrt_sim, sqrt_sim_fro2):
        gram = jnp.matmul(latent, latent.T, precision=highest)  # the n x n Gram of [factors, bias]
        return jnp.vdot(gram, gram) - jnp.vdot(gram, sqrt_sim) ** 2 / sqrt_sim_fro2

    def loss(params, sqrt_items, sqrt_items_fro2, sqrt_llms, sqrt_llms_fro2, mask, observed):
        llm_f, item_f = params[LLM_FACTORS], params[ITEM_FACTORS]
        llm_b, item_b, intercept = params[LLM_BIAS], params[ITEM_BIAS], params[INTERCEPT]
        log_joint = dist.Normal(0.0, config.intercept_prior).log_prob(intercept)
        log_joint += dist.Normal(0.0, config.bias_scale).log_prob(llm_b).sum()
        log_joint += dist.Normal(0.0, config.bias_scale).log_prob(item_b).sum()
        log_joint += dist.Normal(0.0, config.factor_prior_sd).log_prob(llm_f).sum()
        log_joint += dist.Normal(0.0, config.factor_prior_sd).log_prob(item_f).sum()
        log_joint -= lambda_items * dense_potential(jnp.concatenate([item_f, item_b[:, None]], 1), sqrt_items, sqrt_items_fro2)
        log_joint -= lambda_llms * dense_potential(jnp.concatenate([llm_f, llm_b[:, None]], 1), sqrt_llms, sqrt_llms_fro2)
        logits = grid_logits(params, slice(0, n_block[0]), slice(0, n_block[1]), xp=jnp)
        log_joint += jnp.sum(jnp.where(mask, dist.Bernoulli(logits=logits).log_prob(observed), 0.0))
        return -log_joint

    optimizer = optax.adam(0.05)

    @jax.jit
    def step(params, opt_state, *data):
        value, grads = jax.value_and_grad(loss)(params, *data)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    init = initial_values(n_llms, n_items, config, problem["correct"], 0.1, 0)
    params = {name: jnp.asarray(value) for name, value in init.items()}
    opt_state = optimizer.init(params)
    data = (sqrt_items, sqrt_items_fro2, sqrt_llms, sqrt_llms_fro2, mask, observed)
    start = time.perf_counter()
    params, opt_state, first_loss = jax.block_until_ready(step(params, opt_state, *data))
    result["compile_and_first_step_s"] = time.perf_counter() - start
    losses, times = [float(first_loss)], []
    for _ in range(max(spec["steps"], N_CHECK - 1)):
        start = time.perf_counter()
        params, opt_state, value = jax.block_until_ready(step(params, opt_state, *data))
        times.append(time.perf_counter() - start)
        losses.append(float(value))
    timed = times[: spec["steps"]]
    result.update(per_step_s=float(np.median(timed)), per_step_min_s=float(np.min(timed)),
                  per_step_max_s=float(np.max(timed)), timed_steps=len(timed), losses=losses[:N_CHECK],
                  peak_rss_mib=peak_rss_mib())
    del params, opt_state, data, sqrt_items, sqrt_llms
    # The same loss? The package's first N_CHECK steps from the same initial values (after the peak was read; small).
    from bayes_simrmf.similarity import SideInformation  # noqa: F401

    side_again, _ = build_side(problem, "package")
    from bayes_simrmf.predict import SimRMF

    model = SimRMF(method="simrmf", dim=spec["dim"], similarity_mode="joint", progress=False, seed=0, max_steps=N_CHECK, tol=0.0)
    model.fit(problem["llm_ids"][problem["llm"]], problem["item_ids"][problem["item"]], problem["correct"],
              llms=problem["llm_ids"], items=problem["item_ids"], side=side_again)
    result["package_losses"] = [float(v) for v in model.losses_[:N_CHECK]]
    return result


def child_eigh(spec: dict) -> dict:
    """Dense √S_X the straightforward way: cosine S (n x n) -> eigh -> clip -> V diag(√λ₊) Vᵀ, float32."""
    import scipy.linalg

    embeddings = np.load(Path(spec["problem"]) / "embeddings.npy", mmap_mode="r")[: spec["n"]]
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    np.linalg.eigh(np.eye(50, dtype=np.float32))  # library load and thread start-up are not the O(n³) cost
    result = {"n": spec["n"], "rss_before_mib": peak_rss_mib()}
    start = time.perf_counter()
    similarity = embeddings @ embeddings.T
    result["cosine_s"] = time.perf_counter() - start
    start = time.perf_counter()
    eigenvalues, eigenvectors = scipy.linalg.eigh(similarity, driver="evd", overwrite_a=True, check_finite=False)
    result["eigh_s"] = time.perf_counter() - start
    del similarity
    start = time.perf_counter()
    clipped = np.clip(eigenvalues, 0.0, None)
    eigenvectors *= np.sqrt(np.sqrt(clipped))[None, :]  # V diag(λ₊^{1/4}), in place
    sqrt_sim = eigenvectors @ eigenvectors.T
    result["assemble_s"] = time.perf_counter() - start
    result["negative_share"] = float(-eigenvalues[eigenvalues < 0].sum() / np.abs(eigenvalues).sum())
    result["sqrt_sim_trace"] = float(np.trace(sqrt_sim))
    result["peak_rss_mib"] = peak_rss_mib()
    return result


def child_generate(spec: dict) -> dict:
    """Write a problem (in a child, so the parent stays small)."""
    start = time.perf_counter()
    write_problem(Path(spec["folder"]), spec["n_llms"], spec["n_items"], spec["n_known"], spec["T"], spec["emb_dim"])
    return {"seconds": time.perf_counter() - start, "peak_rss_mib": peak_rss_mib()}


def generate(folder: Path, n_llms: int, n_items: int, p: dict) -> tuple[Path, float]:
    """Problem folder (generated in a child process unless present) and the seconds it took."""
    if (folder / "pairs.npz").exists():
        return folder, 0.0
    result = run_child({"kind": "generate", "folder": str(folder), "n_llms": n_llms, "n_items": n_items,
                        "n_known": p["n_known"], "T": p["T"], "emb_dim": p["emb_dim"]})
    if "error" in result:
        raise SystemExit(f"generating {folder} failed: {result['error']}\n{result.get('stderr', '')}")
    return folder, result["seconds"]


CHILDREN = {"package": child_package, "dense": child_dense, "eigh": child_eigh, "generate": child_generate,
            "breakdown": lambda spec: child_breakdown(spec)}  # defined further down, with its mode


def run_child(spec: dict, *, env: dict | None = None, timeout: float | None = None) -> dict:
    """Run one configuration in a fresh process; returns its JSON result plus ``wall_s`` and ``peak_rss_wait4_mib``."""
    wall, peak, code, stdout, stderr = run_command_with_rusage(
        [sys.executable, __file__, "--child", json.dumps(spec)], env=dict(os.environ, **(env or {})), timeout=timeout)
    if code is None:
        return {"error": f"timed out after {timeout:.0f} s", "wall_s": wall, "peak_rss_wait4_mib": peak}
    if code != 0:
        last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
        return {"error": f"exit {code}: {last}", "stderr": stderr[-3000:], "wall_s": wall, "peak_rss_wait4_mib": peak}
    result = json.loads(stdout.strip().splitlines()[-1])
    result.update(wall_s=wall, peak_rss_wait4_mib=peak)
    return result


# ============================================================================================= reporting helpers
def _fmt_s(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "n/a"
    if seconds >= 600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.3f} s" if seconds < 10 else f"{seconds:.1f} s"


def _check(result: dict, name: str) -> dict:
    if "error" in result:
        print(f"  !! {name} failed: {result['error']}\n{result.get('stderr', '')}", flush=True)
    return result


# ================================================================================================= paper mode
def mode_paper(args: argparse.Namespace, scratch: Path) -> None:
    p = dict(PAPER, n_llms=args.shape[0], n_items=args.shape[1])
    print(f"problem: {p['n_llms']} LLMs x {p['n_items']} items, {p['emb_dim']}-d item embeddings, "
          f"{p['n_known']} x {p['n_known']} known, T={p['T']} ({p['n_known'] * p['T']:,} training pairs), d={p['dim']}")
    problem, seconds = generate(scratch / f"paper-{p['n_llms']}-{p['n_items']}", p["n_llms"], p["n_items"], p)
    print(f"inputs generated in {seconds:.1f} s (seed 0)", flush=True)
    one_thread = ONE_BLAS_THREAD
    env = {} if args.blas_default else one_thread
    print(f"BLAS threads in the package and dense children: {'library default' if args.blas_default else 1}; "
          "eigh children: 1 (XLA's own thread pool is not affected)")
    base = {"problem": str(problem), "dim": p["dim"], "llm_route": "package"}
    configs = {
        "package joint, delta": dict(base, kind="package", guide="delta", mode="joint", converge=True,
                                     timing=[50, 150]),
    }
    for energy in args.energies:
        configs[f"package joint, delta, energy {energy:g}"] = dict(base, kind="package", guide="delta", mode="joint",
                                                                  converge=True, timing=[50, 150], energy=energy)
    if not args.skip_normal:
        configs["package joint, normal"] = dict(base, kind="package", guide="normal", mode="joint", converge=True,
                                                timing=[50, 150], max_steps=args.normal_max_steps)
    configs["package default (kernel), delta"] = dict(base, kind="package", guide="delta", mode="kernel",
                                                      converge=True, timing=[50, 150])
    results = {}
    for name, spec in configs.items():
        print(f"  running {name} ...", flush=True)
        results[name] = _check(run_child(spec, env=env), name)
        print(f"    done in {results[name]['wall_s']:.1f} s", flush=True)
    print("  running dense (full size, √S_X = W Wᵀ) ...", flush=True)
    dense = _check(run_child(dict(base, kind="dense", steps=args.dense_steps), env=env), "dense")
    print(f"    done in {dense['wall_s']:.1f} s", flush=True)
    eigh = {}
    for n in args.eigh_sizes:
        print(f"  running eigh n={n} (one BLAS thread) ...", flush=True)
        eigh[n] = _check(run_child({"kind": "eigh", "problem": str(problem), "n": n}, env=one_thread,
                                   timeout=args.eigh_cap), f"eigh {n}")
        print(f"    done in {eigh[n]['wall_s']:.1f} s", flush=True)
    sizes = [n for n in args.eigh_sizes if "error" not in eigh[n]]
    build_total = {n: eigh[n]["cosine_s"] + eigh[n]["eigh_s"] + eigh[n]["assemble_s"] for n in sizes}
    time_exponent, time_constant = power_law(sizes, [build_total[n] for n in sizes])
    eigh_exponent, eigh_constant = power_law(sizes, [eigh[n]["eigh_s"] for n in sizes])
    baseline_rss = min(eigh[n]["rss_before_mib"] for n in sizes)
    memory_exponent, memory_constant = power_law(sizes, [eigh[n]["peak_rss_mib"] - baseline_rss for n in sizes])
    n_full = p["n_items"]
    predicted_build = time_constant * n_full**time_exponent
    predicted_build_rss = baseline_rss + memory_constant * n_full**memory_exponent
    full = None
    if args.eigh_full:
        if predicted_build <= args.eigh_cap:
            print(f"  running eigh n={n_full} (predicted {predicted_build / 60:.1f} min, cap {args.eigh_cap / 60:.0f} min) ...",
                  flush=True)
            full = _check(run_child({"kind": "eigh", "problem": str(problem), "n": n_full}, env=one_thread,
                                    timeout=args.eigh_cap), "eigh full")
        else:
            print(f"  eigh at n={n_full} skipped: predicted {predicted_build / 60:.1f} min > cap {args.eigh_cap / 60:.0f} min")

    # ---------------------------------------------------------------- tables
    print("\n## package SimRMF at paper scale (each row a fresh process)")
    print("s/step: (SVI time of a 150-step run − of a 50-step run) / 100, tol = 0, after the convergence fit; "
          "set-up: SVI time of the convergence fit − steps x s/step (first fit in the process: svi.init, compile)")
    print(f"{'configuration':<34} {'factors':>8} {'s/step':>8} {'set-up':>7} {'steps':>6} {'conv.':>10} "
          f"{'SVI':>9} {'fit()':>9} {'process':>9} {'peak RSS':>9}")
    for name, r in results.items():
        if "error" in r:
            print(f"{name:<34} failed: {r['error']}")
            continue
        c, t = r["converge"], r["timing"]
        state = "yes" if c["converged"] else f"NO (cap {c['max_steps']})"
        print(f"{name:<34} {r['item_factor_s'] + r['llm_factor_s']:>6.1f} s {t['per_step_s'] * 1e3:>5.0f} ms "
              f"{c['setup_s']:>5.1f} s {c['steps']:>6} {state:>10} {_fmt_s(c['svi_s']):>9} {_fmt_s(c['fit_wall_s']):>9} "
              f"{_fmt_s(r['wall_s']):>9} {r['peak_rss_mib']:>5.0f} MiB")
    first = next((r for r in results.values() if "error" not in r), None)
    if first is not None:
        print(f"factors = item factor {first['item_factor_shape']} ({first['item_factor_s']:.1f} s) + LLM factor "
              f"{first['llm_factor_shape']} ({first['llm_factor_s']:.1f} s); RSS after imports "
              f"{first['rss_after_imports_mib']:.0f} MiB, after inputs {first['rss_after_inputs_mib']:.0f} MiB, after the "
              f"factors {first['rss_after_build_mib']:.0f} MiB")
    for name, r in results.items():
        if "error" not in r:
            c = r["converge"]
            extra = ""
            if not c["converged"]:
                extra = (f"; NOT converged within {c['max_steps']} steps: {3000} steps (the package's max_steps) would "
                         f"take ~{_fmt_s(c['setup_s'] + 3000 * r['timing']['per_step_s'])} (EXTRAPOLATED)")
            print(f"  {name}: final loss {c['final_loss']:.6g}, layout {c['layout']}, lambdas "
                  f"{ {k: float(f'{v:.4g}') for k, v in c['lambdas'].items()} }, peak RSS after the convergence fit "
                  f"{r['rss_after_converge_mib']:.0f} MiB{extra}")

    print("\n## dense formula (n x n √S), same loss, Adam(0.05), full size: MEASURED per step")
    if "error" in dense:
        print(f"dense failed: {dense['error']}")
    else:
        print(f"√S_X ({n_full}², float32, {n_full**2 * 4 / 2**30:.2f} GiB) and √S_M ({p['n_llms']}²) formed as W Wᵀ in "
              f"{dense['dense_sqrt_from_factor_s']:.1f} s; RSS then {dense['rss_after_dense_sqrt_mib']:.0f} MiB")
        print(f"compile + first step {dense['compile_and_first_step_s']:.1f} s; per step median "
              f"{dense['per_step_s']:.2f} s (min {dense['per_step_min_s']:.2f}, max {dense['per_step_max_s']:.2f}, "
              f"{dense['timed_steps']} steps); peak RSS {dense['peak_rss_mib']:.0f} MiB")
        dense_losses, package_losses = np.array(dense["losses"]), np.array(dense["package_losses"])
        relative = np.abs(dense_losses - package_losses) / np.abs(package_losses)
        print(f"same loss? |dense − package| / |package| at the initial values {relative[0]:.1e}, max over the first "
              f"{N_CHECK} Adam steps {relative.max():.1e} (losses {package_losses[0]:.6g} → {package_losses[-1]:.6g})")

    print("\n## dense √S_X by eigendecomposition (cosine S -> scipy eigh evd float32 -> clip -> V diag(√λ) Vᵀ), one BLAS "
          "thread: MEASURED at these n")
    print(f"{'n':>6} {'cosine':>8} {'eigh':>8} {'assemble':>9} {'total':>8} {'peak RSS':>9} {'negative share':>15}")
    for n in sizes:
        e = eigh[n]
        print(f"{n:>6} {e['cosine_s']:>6.2f} s {e['eigh_s']:>6.1f} s {e['assemble_s']:>7.1f} s {build_total[n]:>6.1f} s "
              f"{e['peak_rss_mib']:>5.0f} MiB {e['negative_share']:>15.2e}")
    print(f"EXTRAPOLATED to n={n_full}: build time ~ n^{time_exponent:.2f} -> {predicted_build / 60:.1f} min "
          f"(eigh alone ~ n^{eigh_exponent:.2f} -> {eigh_constant * n_full**eigh_exponent / 60:.1f} min); "
          f"peak RSS over the {baseline_rss:.0f} MiB baseline ~ n^{memory_exponent:.2f} -> {predicted_build_rss:.0f} MiB")
    if full is not None and "error" not in full:
        print(f"MEASURED at n={n_full}: cosine {full['cosine_s']:.1f} s, eigh {full['eigh_s']:.0f} s, assemble "
              f"{full['assemble_s']:.0f} s, peak RSS {full['peak_rss_mib']:.0f} MiB")
        build_s, build_rss, build_note = full["cosine_s"] + full["eigh_s"] + full["assemble_s"], full["peak_rss_mib"], "measured"
    else:
        build_s, build_rss, build_note = predicted_build, predicted_build_rss, "extrapolated"

    # ---------------------------------------------------------------- ratios and targets
    if "error" in dense:
        return
    for name, delta in results.items():
        if "delta" in name and "joint" in name and "error" not in delta:
            _paper_targets(name, delta, dense, build_s, build_rss, build_note, n_full)


def _paper_targets(name: str, delta: dict, dense: dict, build_s: float, build_rss: float, build_note: str,
                   n_full: int) -> None:
    """Ratios of one package configuration against the dense formula, and the issue's targets (issue 15)."""
    package_step, package_peak = delta["timing"]["per_step_s"], delta["peak_rss_mib"]
    dense_peak = max(dense["peak_rss_mib"], build_rss)
    steps = delta["converge"]["steps"]
    factors_s = delta["item_factor_s"] + delta["llm_factor_s"]
    dense_to_convergence = build_s + dense["compile_and_first_step_s"] + steps * dense["per_step_s"]
    package_to_convergence = factors_s + delta["converge"]["fit_wall_s"]
    print(f"\n## ratios at {n_full} items, {name} (factors {delta['item_factor_shape']} / {delta['llm_factor_shape']}) "
          "vs dense (same loss, same optimiser)")
    print(f"{'':<40} {'package':>12} {'dense':>14} {'dense/package':>14}")
    print(f"{'time per SVI step (measured both)':<40} {package_step * 1e3:>9.0f} ms {dense['per_step_s']:>12.2f} s "
          f"{dense['per_step_s'] / package_step:>13.0f}x")
    print(f"{'peak RSS, steps only (measured both)':<40} {package_peak:>8.0f} MiB {dense['peak_rss_mib']:>10.0f} MiB "
          f"{dense['peak_rss_mib'] / package_peak:>13.1f}x")
    print(f"{'peak RSS incl. eigh build (' + build_note + ')':<40} {package_peak:>8.0f} MiB {dense_peak:>10.0f} MiB "
          f"{dense_peak / package_peak:>13.1f}x")
    print(f"{'√S build (dense ' + build_note + ')':<40} {factors_s:>10.1f} s {build_s / 60:>10.1f} min "
          f"{build_s / factors_s:>13.0f}x")
    print(f"{'to convergence (' + str(steps) + ' steps; dense extrapolated)':<40} "
          f"{package_to_convergence:>10.1f} s {dense_to_convergence / 60:>10.1f} min "
          f"{dense_to_convergence / package_to_convergence:>13.0f}x")
    print(f"targets ({name}):")
    fit_s = factors_s + delta["converge"]["fit_wall_s"]
    print(f"  delta-guide fit to convergence <= 45 s: {fit_s:.0f} s (factors + fit(); converged: "
          f"{delta['converge']['converged']}, {steps} steps) -> {'MET' if fit_s <= 45 else 'NOT MET'}")
    print(f"  peak RSS <= 1 GiB (1024 MiB): {package_peak:.0f} MiB -> {'MET' if package_peak <= 1024 else 'NOT MET'}")
    print(f"  >= 50x faster per step than dense: {dense['per_step_s'] / package_step:.0f}x -> "
          f"{'MET' if dense['per_step_s'] / package_step >= 50 else 'NOT MET'}")
    print(f"  >= 5x lower peak memory than dense: {dense['peak_rss_mib'] / package_peak:.1f}x (steps only), "
          f"{dense_peak / package_peak:.1f}x (with the {build_note} eigh build) -> "
          f"{'MET' if dense['peak_rss_mib'] / package_peak >= 5 else 'NOT MET (steps only)'}")


# ============================================================================================= breakdown mode
def child_breakdown(spec: dict) -> dict:
    """Jitted value + gradient of each term of the joint model at paper size, one at a time (median of 20)."""
    import jax
    import jax.numpy as jnp
    import numpyro.distributions as dist

    from bayes_simrmf.similarity import gram_fro2, scaled_gram_mismatch

    problem = load_problem(Path(spec["problem"]))
    side, _ = build_side(problem, "package")
    rng = np.random.default_rng(0)
    timings = {}

    def bench(name, function, *arguments):
        compiled = jax.jit(jax.value_and_grad(function))
        jax.block_until_ready(compiled(*arguments))
        times = []
        for _ in range(20):
            start = time.perf_counter()
            jax.block_until_ready(compiled(*arguments))
            times.append(time.perf_counter() - start)
        timings[name] = (float(np.median(times)), float(np.min(times)))

    def potential(latent, factor, constant):
        return scaled_gram_mismatch(latent, factor, constant)

    width = spec["dim"] + 1  # [factors, bias]
    for label, factor in (("item", side.item_factor), ("LLM", side.llm_factor)):
        latent = jnp.asarray(rng.normal(0, 0.5, (factor.shape[0], width)).astype(np.float32))
        columns = [factor.shape[1]] + [k for k in (384, 128) if k < factor.shape[1]]
        for k in columns:
            part = np.ascontiguousarray(factor[:, :k])
            bench(f"{label} potential, factor {factor.shape[0]} x {k}", potential, latent, jnp.asarray(part),
                  jnp.float32(gram_fro2(part)))
    n_block = int(problem["llm"].max()) + 1, int(problem["item"].max()) + 1
    mask = np.zeros(n_block, bool)
    mask[problem["llm"], problem["item"]] = True
    observed = np.zeros(n_block, np.float32)
    observed[problem["llm"], problem["item"]] = problem["correct"]
    llm_f = jnp.asarray(rng.normal(0, 0.1, (len(problem["llm_ids"]), spec["dim"])).astype(np.float32))
    item_f = jnp.asarray(rng.normal(0, 0.1, (len(problem["item_ids"]), spec["dim"])).astype(np.float32))

    def likelihood(llm_f, item_f, mask, observed):
        logits = llm_f[: n_block[0]] @ item_f[: n_block[1]].T
        return -jnp.sum(jnp.where(mask, dist.Bernoulli(logits=logits).log_prob(observed), 0.0))

    bench(f"likelihood, dense {n_block[0]} x {n_block[1]} block", likelihood, llm_f, item_f, jnp.asarray(mask),
          jnp.asarray(observed))
    bench("factor priors", lambda a, b: -(dist.Normal(0.0, 0.7).log_prob(a).sum() + dist.Normal(0.0, 0.7).log_prob(b).sum()),
          llm_f, item_f)
    return {"timings": timings, "peak_rss_mib": peak_rss_mib()}


def mode_breakdown(args: argparse.Namespace, scratch: Path) -> None:
    p = dict(PAPER, n_llms=args.shape[0], n_items=args.shape[1])
    problem, _ = generate(scratch / f"paper-{p['n_llms']}-{p['n_items']}", p["n_llms"], p["n_items"], p)
    result = _check(run_child({"kind": "breakdown", "problem": str(problem), "dim": p["dim"]},
                              env={} if args.blas_default else ONE_BLAS_THREAD), "breakdown")
    if "error" in result:
        return
    print(f"\n## where an SVI step's time goes (joint model, {p['n_llms']} LLMs x {p['n_items']} items, d={p['dim']}): "
          "jitted value + gradient of each term alone, median (min) of 20 calls")
    for name, (median, minimum) in result["timings"].items():
        print(f"{name:<48} {median * 1e3:7.1f} ms ({minimum * 1e3:.1f})")
    print("(the first row of each potential is what the package uses; fewer columns = the factor truncated to its "
          "leading components, e.g. with build_side_information(energy=...))")


# ================================================================================================ growth mode
def mode_growth(args: argparse.Namespace, scratch: Path) -> None:
    p = dict(PAPER, n_llms=args.shape[0], n_items=args.shape[1])
    env = {} if args.blas_default else ONE_BLAS_THREAD
    steps = [50, 50 + args.growth_steps]
    rows = []
    grid = [("items", p["n_llms"], n, "package") for n in args.item_sizes]
    grid += [("llms", n, p["n_items"], "package") for n in args.llm_sizes]
    grid += [("features-llm", n, p["n_items"], "features") for n in args.features_llm_sizes]
    for axis, n_llms, n_items, route in grid:
        folder, generated = generate(scratch / f"g-{n_llms}-{n_items}", n_llms, n_items, p)
        spec = {"kind": "package", "problem": str(folder), "dim": p["dim"], "llm_route": route, "guide": "delta",
                "mode": "joint", "timing": steps}
        print(f"  {axis}: {n_llms} LLMs x {n_items} items (inputs {generated:.1f} s) ...", flush=True)
        result = _check(run_child(spec, env=env), f"{axis} {n_llms}x{n_items}")
        print(f"    done in {result['wall_s']:.1f} s", flush=True)
        rows.append((axis, n_llms, n_items, route, result))
    print(f"\n## package joint delta fit, d={p['dim']}, T={p['T']} on {p['n_known']}x{p['n_known']} known, "
          f"{args.growth_steps} steps after compile (each row a fresh process)")
    print("s/step: (SVI time of a 100-step run − of a 50-step run) / 50, after a 1-step warm-up fit; compile: SVI time "
          "of the 50-step run − 50 x s/step; first fit: the warm-up's SVI time (first fit in the process)")
    print(f"{'axis':<10} {'LLMs':>6} {'items':>7} {'LLM factor':>13} {'item factor':>13} {'build':>7} {'s/step':>9} "
          f"{'compile':>8} {'first fit':>9} {'peak RSS':>9} {'RSS after inputs':>16}")
    for axis, n_llms, n_items, route, r in rows:
        if "error" in r:
            print(f"{axis:<10} {n_llms:>6} {n_items:>7} failed: {r['error']}")
            continue
        print(f"{axis:<10} {n_llms:>6} {n_items:>7} {str(tuple(r['llm_factor_shape'])):>13} "
              f"{str(tuple(r['item_factor_shape'])):>13} {r['item_factor_s'] + r['llm_factor_s']:>5.1f} s "
              f"{r['timing']['per_step_s'] * 1e3:>6.1f} ms {r['timing']['compile_and_setup_s']:>6.1f} s "
              f"{r['warmup']['svi_s']:>7.1f} s {r['peak_rss_mib']:>5.0f} MiB {r['rss_after_inputs_mib']:>12.0f} MiB")
    print("\n## log-log slopes (value ~ n^slope); 1 = linear, 2 = quadratic")
    for axis, label in (("items", f"items at {p['n_llms']:,} LLMs"),
                        ("llms", f"LLMs at {p['n_items']:,} items (package route, lineage included)"),
                        ("features-llm", f"LLMs at {p['n_items']:,} items (metadata features only)")):
        ok = [(n_llms if axis != "items" else n_items, r) for a, n_llms, n_items, _, r in rows if a == axis and "error" not in r]
        if len(ok) < 2:
            continue
        sizes = [n for n, _ in ok]
        step_slope, _ = power_law(sizes, [r["timing"]["per_step_s"] for _, r in ok])
        peak_slope, _ = power_law(sizes, [r["peak_rss_mib"] for _, r in ok])
        over = [r["peak_rss_mib"] - r["rss_after_imports_mib"] for _, r in ok]
        over_slope, _ = power_law(sizes, over)
        build_slope, _ = power_law(sizes, [r["item_factor_s"] + r["llm_factor_s"] for _, r in ok])
        # Largest over smallest, per unit of size: ~1 for linear growth.
        last_steps = ok[-1][1]["timing"]["per_step_s"] / ok[0][1]["timing"]["per_step_s"]
        print(f"{label:<52} time/step {step_slope:5.2f}   peak RSS {peak_slope:5.2f}   RSS over imports {over_slope:5.2f}   "
              f"factor build {build_slope:5.2f}   (x{sizes[-1] / sizes[0]:.0f} size -> x{last_steps:.1f} time/step)")
        verdict = {name: "MET" if slope <= 1.1 else "NOT MET" for name, slope in
                   (("time/step", step_slope), ("peak RSS", peak_slope), ("factor build", build_slope))}
        print(f"{'':<52} target slope <= 1.1: " + ", ".join(f"{name} {v}" for name, v in verdict.items()))


# ================================================================================================= e2e mode
E2E_RUNS = {
    # name: (dataset, T, extra options, environment)
    "mmlupro-T300": ("openllm-v2-mmlupro-math", 300, [], {}),
    "v2-T100": ("openllm-v2", 100, [], {}),
    "v2-T300": ("openllm-v2", 300, [], {}),
    "mmlupro-T300-joint": ("openllm-v2-mmlupro-math", 300, ["--similarity-mode", "joint"], {}),
    "mmlupro-T300-blas-all": ("openllm-v2-mmlupro-math", 300, [], {"OPENBLAS_NUM_THREADS": str(os.cpu_count())}),
}
#: Peak RSS target of the issue for the openllm-v2 runs (1.2 GB).
E2E_RSS_TARGET_MIB = 1.2e9 / 2**20


def mode_e2e(args: argparse.Namespace, scratch: Path) -> None:
    data_root = Path(os.environ.get("BAYES_SIMRMF_DATA", REPO.parent / "shared" / "data"))
    executable = shutil.which("bayes-simrmf")
    prefix = [executable] if executable else [sys.executable, "-m", "bayes_simrmf.cli"]
    print(f"parent RSS at the forks {current_rss_mib():.0f} MiB (the floor of the children's ru_maxrss)")
    codes = {"this tree": None} if args.e2e_baseline is None else {"this tree": None, "baseline": args.e2e_baseline}
    if args.e2e_baseline is not None:
        print(f"baseline: the same commands with PYTHONPATH={args.e2e_baseline} (another version of the package), "
              "interleaved run by run")
    rows = []
    for repeat in range(args.e2e_repeats):
        for name in args.e2e_variants:
            for version, path in codes.items():
                dataset, T, extra, env = E2E_RUNS[name]
                env = dict(env, **({"PYTHONPATH": str(path)} if path is not None else {}))
                out = scratch / f"model-{len(rows)}"
                command = [*prefix, "fit", "--data", str(data_root / dataset), "--T", str(T), "--guide", "delta",
                           "--method", "simrmf", "--quiet", *extra, "--out", str(out)]
                print(f"  {' '.join(f'{k}={v}' for k, v in env.items())} {' '.join(command)}".strip(), flush=True)
                wall, peak, code, stdout, stderr = run_command_with_rusage(command, cwd=REPO, env=dict(os.environ, **env))
                if code != 0:
                    print(f"  !! exit {code}: {stderr[-2000:]}")
                fitted = next((line for line in stdout.splitlines() if line.startswith("fitted")), "")
                rows.append((name, version, repeat, wall, peak, code, fitted))
                print(f"    {wall:.1f} s, peak RSS {peak:.0f} MiB; {fitted}", flush=True)
                if len(rows) == 1 and not args.quiet_output:
                    print("    --- stdout of the first run ---")
                    print("\n".join("    " + line for line in stdout.splitlines()))
                shutil.rmtree(out, ignore_errors=True)
    print("\n## end to end: process wall time (start, imports, load, split, side information, fit, evaluate A-D, save)")
    print(f"target: openllm-v2 peak RSS <= 1.2 GB ({E2E_RSS_TARGET_MIB:.0f} MiB); every run <= 60 s")
    print(f"{'run':<22} {'version':<10} {'#':>2} {'wall':>8} {'peak RSS':>9} {'<= 60 s':>8} {'RSS target':>11}  fit line")
    for name, version, repeat, wall, peak, code, fitted in rows:
        rss = ("MET" if peak <= E2E_RSS_TARGET_MIB else "NOT MET") if name.startswith("v2-") else "-"
        print(f"{name:<22} {version:<10} {repeat:>2} {wall:>6.1f} s {peak:>5.0f} MiB "
              f"{('MET' if wall <= 60 and code == 0 else 'NOT MET'):>8} {rss:>11}  {fitted}")
    if args.e2e_baseline is not None:
        print("\n## ratios this tree / baseline (medians over the repeats)")
        print(f"{'run':<22} {'wall':>16} {'ratio':>7} {'peak RSS':>22} {'ratio':>7}")
        for name in args.e2e_variants:
            median = {version: (float(np.median([r[3] for r in rows if r[0] == name and r[1] == version])),
                                float(np.median([r[4] for r in rows if r[0] == name and r[1] == version])))
                      for version in codes}
            (wall, peak), (base_wall, base_peak) = median["this tree"], median["baseline"]
            print(f"{name:<22} {wall:>6.1f} / {base_wall:>5.1f} s {wall / base_wall:>6.2f}x {peak:>7.0f} / {base_peak:>5.0f} MiB "
                  f"{peak / base_peak:>6.2f}x")


# ====================================================================================================== main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["paper", "growth", "e2e", "breakdown"])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--shape", type=int, nargs=2, default=[PAPER["n_llms"], PAPER["n_items"]],
                        metavar=("N_LLMS", "N_ITEMS"), help="paper: the problem; growth: the fixed LLMs / items")
    parser.add_argument("--dense-steps", type=int, default=5, help="timed dense steps after compile (paper)")
    parser.add_argument("--eigh-sizes", type=int, nargs="+", default=[2000, 4000, 8000])
    parser.add_argument("--eigh-full", action="store_true", help="also run the eigh at 21,065 if predicted under the cap")
    parser.add_argument("--eigh-cap", type=float, default=1200.0, help="seconds allowed for one eigh child")
    parser.add_argument("--blas-default", action="store_true",
                        help="leave the BLAS thread count at the library default in package / dense children "
                             "(default: 1 thread, as for the eigh children; see ONE_BLAS_THREAD)")
    parser.add_argument("--normal-max-steps", type=int, default=600,
                        help="cap of the normal-guide fit (paper; the package default is 3000)")
    parser.add_argument("--skip-normal", action="store_true", help="paper: leave out the normal-guide configuration")
    parser.add_argument("--energies", type=float, nargs="*", default=[],
                        help="paper: also the joint delta fit with each √S truncated to this share of its trace")
    parser.add_argument("--item-sizes", type=int, nargs="+", default=[1000, 3000, 10000, 30000, 100000])
    parser.add_argument("--llm-sizes", type=int, nargs="+", default=[1000, 3000, 10000])
    parser.add_argument("--features-llm-sizes", type=int, nargs="*", default=[],
                        help="growth: also LLM sizes with the LLM factor from the metadata features alone")
    parser.add_argument("--growth-steps", type=int, default=100, help="timed steps after compile (growth)")
    parser.add_argument("--e2e-repeats", type=int, default=1)
    parser.add_argument("--e2e-variants", nargs="+", choices=list(E2E_RUNS), default=list(E2E_RUNS)[:3],
                        help="e2e: which runs (default: the CLI's default command on mmlupro-math T=300 and on "
                             "openllm-v2 T=100 and T=300)")
    parser.add_argument("--e2e-baseline", type=Path, default=None,
                        help="e2e: a folder holding another version of bayes_simrmf (e.g. `git archive main bayes_simrmf`); "
                             "each run is repeated with it on PYTHONPATH, for ratios from one run")
    parser.add_argument("--quiet-output", action="store_true", help="do not echo the CLI's output (e2e)")
    parser.add_argument("--scratch", type=Path, default=None, help="keep generated inputs here (default: a temp dir)")
    args = parser.parse_args()
    if args.child:
        from bayes_simrmf.runtime import configure_process

        configure_process()  # two malloc arenas, as bayes-simrmf runs (BLAS threads: set by the parent's env)
        spec = json.loads(args.child)
        print(json.dumps(CHILDREN[spec["kind"]](spec)))
        return
    if not args.mode:
        parser.error("--mode is required")
    print(f"command: python experiments/bench/bench_scale.py {' '.join(sys.argv[1:])}")
    print(machine_line())
    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}", flush=True)
    start = time.perf_counter()
    if args.scratch is not None:
        args.scratch.mkdir(parents=True, exist_ok=True)
        scratch_context = None
        scratch = args.scratch
    else:
        scratch_context = tempfile.TemporaryDirectory()
        scratch = Path(scratch_context.name)
    try:
        {"paper": mode_paper, "growth": mode_growth, "e2e": mode_e2e, "breakdown": mode_breakdown}[args.mode](args, scratch)
    finally:
        if scratch_context is not None:
            scratch_context.cleanup()
    load = os.getloadavg()
    print(f"\ntotal wall time {(time.perf_counter() - start) / 60:.1f} min; load average at the end "
          f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")


if __name__ == "__main__":
    main()
