"""Time and peak memory of the similarity term: low-rank factor vs the dense n × n formula, side by side.

At the paper's item count (n = 21,065 questions), embedding dimension r = 384 and latent dimension d = 32:

* low-rank: the factor ``W`` (n, k) with ``√S = W Wᵀ`` from
  :func:`bayes_simrmf.similarity.sqrt_psd_factor_from_embeddings` (a one-off build, timed on its own), then the
  jit-compiled value and gradient (w.r.t. ``X``) of :func:`~bayes_simrmf.similarity.gram_mismatch` and
  :func:`~bayes_simrmf.similarity.scaled_gram_mismatch`, with the constant ``‖WᵀW‖²_F`` recomputed inside each
  evaluation (as the model calls them) and precomputed once (``WtW_fro2=``);
* dense: ``√S`` as an (n, n) float32 matrix and the jit-compiled value and gradient of
  :func:`~bayes_simrmf.similarity.gram_mismatch_dense`. The dense ``√S`` is built as ``W Wᵀ`` from the same factor
  (exact, and minutes instead of hours); what an eigendecomposition of the n × n similarity would cost is
  estimated separately from ``numpy.linalg.eigh`` (one BLAS thread) timed at smaller n and extrapolated as O(n³).

Every variant runs in its own child process (``python this_file --child VARIANT``) so that peak RSS
(``ru_maxrss`` of that process) is not polluted by the others; a ``baseline`` child holds only the imports and
the inputs. The factor is written once to a scratch folder and read by the term children. Values and gradients
are checked against a float64 evaluation of the exact low-rank identity.

Embeddings are random unit-norm float32 (seeded); ``X`` is a draw from the model's default prior
(entries N(0, 1/2), i.e. λ_reg = 1) and, for the value check only, a near-fit ``X`` (top d columns of ``W``
plus noise), where the potential is a difference of large terms.

Usage:
    python experiments/bench/bench_similarity.py [--n 21065] [--r 384] [--d 32] [--repeats-lowrank 20]
        [--repeats-dense 5] [--eigh-sizes 1000 2000 4000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bayes_simrmf.machine import machine_line


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _embeddings(n: int, r: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, r)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _latent(n: int, d: int, seed: int) -> np.ndarray:
    """A draw from the model's default prior: entries N(0, 1/(2 λ_reg)) with λ_reg = 1."""
    return (np.random.default_rng(seed + 1).standard_normal((n, d)) / np.sqrt(2.0)).astype(np.float32)


def _near_fit_latent(factor: np.ndarray, d: int, seed: int) -> np.ndarray:
    """Top d columns of W plus 1% noise: X Xᵀ close to the leading part of √S (a large-cancellation case)."""
    top = factor[:, :d].astype(np.float64)
    noise = np.random.default_rng(seed + 2).standard_normal(top.shape) * 0.01 * top.std()
    return (top + noise).astype(np.float32)


def _reference_float64(latent: np.ndarray, factor: np.ndarray) -> dict:
    """Exact value and gradient of ‖X Xᵀ − W Wᵀ‖²_F (and the scale-profiled value) in float64, low-rank."""
    x = latent.astype(np.float64)
    w = factor.astype(np.float64)
    xtx, wtx, wtw = x.T @ x, w.T @ x, w.T @ w
    xtx2, wtx2, wtw2 = float(np.sum(xtx**2)), float(np.sum(wtx**2)), float(np.sum(wtw**2))
    # d/dX ‖XXᵀ − WWᵀ‖² = 4 (X XᵀX − W WᵀX)
    gradient = 4.0 * (x @ xtx - w @ wtx)
    return {
        "value": xtx2 - 2.0 * wtx2 + wtw2,
        "scaled_value": xtx2 - wtx2**2 / wtw2,
        "gradient": gradient,
    }


def _time_jitted(function, arguments, repeats: int) -> dict:
    """Compile+first-call seconds and the median (min, max) of ``repeats`` further calls, value and gradient."""
    import jax

    start = time.perf_counter()
    value, gradient = jax.block_until_ready(function(*arguments))
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(function(*arguments))
        times.append(time.perf_counter() - start)
    times = times or [float("nan")]
    return {
        "first_s": first,
        "median_s": float(np.median(times)),
        "min_s": float(np.min(times)),
        "max_s": float(np.max(times)),
        "repeats": repeats,
        "value": float(value),
        "gradient": np.asarray(gradient),
    }


# ================================================================================================ children
def child_baseline(args: argparse.Namespace, scratch: Path) -> dict:
    import jax  # noqa: F401  (the imports every variant pays for)

    from bayes_simrmf import similarity  # noqa: F401

    _latent(args.n, args.d, args.seed)
    return {"peak_rss_mib": _peak_rss_mib()}


def child_factor(args: argparse.Namespace, scratch: Path) -> dict:
    import jax  # noqa: F401

    from bayes_simrmf.similarity import gram_fro2, sqrt_psd_factor_from_embeddings

    embeddings = _embeddings(args.n, args.r, args.seed)
    rss_before = _peak_rss_mib()
    start = time.perf_counter()
    factor, report = sqrt_psd_factor_from_embeddings(embeddings)
    seconds = time.perf_counter() - start
    peak = _peak_rss_mib()
    np.save(scratch / "factor.npy", factor)
    # The potential's constant ‖WᵀW‖²_F, computed once here so the "+const" children do not pay its memory.
    (scratch / "factor_fro2.json").write_text(json.dumps(gram_fro2(factor)))
    # References for the checks, computed after the peak was read so they do not count towards it.
    for name, latent in (("prior", _latent(args.n, args.d, args.seed)),
                         ("near_fit", _near_fit_latent(factor, args.d, args.seed))):
        np.save(scratch / f"latent_{name}.npy", latent)
        reference = _reference_float64(latent, factor)
        np.save(scratch / f"reference_gradient_{name}.npy", reference.pop("gradient"))
        (scratch / f"reference_{name}.json").write_text(json.dumps(reference))
    return {
        "build_s": seconds,
        "peak_rss_mib": peak,
        "rss_before_build_mib": rss_before,
        "factor_shape": list(factor.shape),
        "report": str(report),
    }


def _lowrank_functions():
    import jax

    from bayes_simrmf.similarity import gram_mismatch, scaled_gram_mismatch

    return {
        # As the model calls them: the constant ‖WᵀW‖²_F (an O(n k²) product) is recomputed in every evaluation.
        "gram_mismatch": jax.jit(jax.value_and_grad(lambda x, w: gram_mismatch(x, w))),
        "scaled_gram_mismatch": jax.jit(jax.value_and_grad(lambda x, w: scaled_gram_mismatch(x, w))),
        # With the constant precomputed once (gram_fro2) and passed in.
        "gram_mismatch+const": jax.jit(jax.value_and_grad(lambda x, w, c: gram_mismatch(x, w, c))),
        "scaled_gram_mismatch+const": jax.jit(jax.value_and_grad(lambda x, w, c: scaled_gram_mismatch(x, w, c))),
    }


def child_lowrank(args: argparse.Namespace, scratch: Path) -> dict:
    import jax.numpy as jnp

    name = args.child.split(":", 1)[1]
    factor = jnp.asarray(np.load(scratch / "factor.npy"))
    function = _lowrank_functions()[name]
    extra = (jnp.float32(json.loads((scratch / "factor_fro2.json").read_text())),) if name.endswith("+const") else ()
    result = {}
    for which in ("prior", "near_fit"):
        latent = jnp.asarray(np.load(scratch / f"latent_{which}.npy"))
        timing = _time_jitted(function, (latent, factor, *extra), args.repeats_lowrank if which == "prior" else 0)
        np.save(scratch / f"gradient_{name}_{which}.npy", timing.pop("gradient"))
        result[which] = timing
    result["peak_rss_mib"] = _peak_rss_mib()
    return result


def child_dense(args: argparse.Namespace, scratch: Path) -> dict:
    import jax
    import jax.numpy as jnp

    from bayes_simrmf.similarity import gram_mismatch_dense

    factor = jnp.asarray(np.load(scratch / "factor.npy"))
    start = time.perf_counter()
    # (n, n) float32, built in JAX so that only one n × n buffer exists: the dense √S (exact: √S = W Wᵀ).
    sqrt_sim = jax.block_until_ready(jnp.matmul(factor, factor.T, precision=jax.lax.Precision.HIGHEST))
    build_s = time.perf_counter() - start
    del factor
    rss_after_build = _peak_rss_mib()
    # √S enters as an argument, not a closed-over constant (XLA would try to constant-fold it).
    function = jax.jit(jax.value_and_grad(gram_mismatch_dense))
    result = {"build_sqrt_s_from_factor_s": build_s, "peak_rss_after_build_mib": rss_after_build}
    for which in ("prior", "near_fit"):
        latent = jnp.asarray(np.load(scratch / f"latent_{which}.npy"))
        timing = _time_jitted(function, (latent, sqrt_sim), args.repeats_dense if which == "prior" else 0)
        np.save(scratch / f"gradient_dense_{which}.npy", timing.pop("gradient"))
        result[which] = timing
    result["peak_rss_mib"] = _peak_rss_mib()
    # Scale-profiled value from the dense matrices, for the check of scaled_gram_mismatch (not timed).
    latent = jnp.asarray(np.load(scratch / "latent_prior.npy"))
    gram = jnp.matmul(latent, latent.T, precision=jax.lax.Precision.HIGHEST)
    inner, sqrt_sim_fro2 = float(jnp.vdot(gram, sqrt_sim)), float(jnp.vdot(sqrt_sim, sqrt_sim))
    result["scaled_value_prior"] = float(jnp.vdot(gram, gram)) - inner**2 / sqrt_sim_fro2
    return result


def child_eigh(args: argparse.Namespace, scratch: Path) -> dict:
    timings = {}
    np.linalg.eigh(np.eye(100))  # warm-up: library load and thread start-up are not part of the O(n³) cost
    for size in args.eigh_sizes:
        # A cosine similarity of random embeddings, as the dense pipeline would decompose (float64, as
        # sqrt_psd_factor_from_dense does). Best of 3 below n = 2,500 (the machine is shared), else one run.
        vectors = _embeddings(size, args.r, args.seed).astype(np.float64)
        similarity = vectors @ vectors.T
        runs = []
        for _ in range(3 if size < 2500 else 1):
            start = time.perf_counter()
            np.linalg.eigh(similarity)
            runs.append(time.perf_counter() - start)
        timings[str(size)] = min(runs)
    return {"eigh_s": timings, "peak_rss_mib": _peak_rss_mib()}


CHILDREN = {"baseline": child_baseline, "factor": child_factor, "dense": child_dense, "eigh": child_eigh}


def run_child(variant: str, args: argparse.Namespace, scratch: Path) -> dict:
    environment = dict(os.environ)
    if variant == "eigh":
        # One BLAS thread: on a shared 2-core machine a multi-threaded eigh spends its time waiting for the busy
        # core (measured: n=2,000 took 16 s with 2 threads, 1.8 s with 1), so this is the stable, reproducible cost.
        environment.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    command = [sys.executable, __file__, "--child", variant, "--scratch", str(scratch), "--n", str(args.n),
               "--r", str(args.r), "--d", str(args.d), "--seed", str(args.seed),
               "--repeats-lowrank", str(args.repeats_lowrank), "--repeats-dense", str(args.repeats_dense),
               "--eigh-sizes", *map(str, args.eigh_sizes)]
    start = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, env=environment)
    wall = time.perf_counter() - start
    if completed.returncode != 0:
        raise SystemExit(f"child {variant} failed:\n{completed.stderr[-4000:]}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    result["child_wall_s"] = wall
    print(f"  child {variant:<28} done in {wall:6.1f} s, peak RSS {result['peak_rss_mib']:7.0f} MiB", flush=True)
    return result


# ================================================================================================= report
def _relative(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


def _gradient_relative(scratch: Path, name: str, which: str) -> float:
    gradient = np.load(scratch / f"gradient_{name}_{which}.npy").astype(np.float64)
    reference = np.load(scratch / f"reference_gradient_{which}.npy")
    return float(np.linalg.norm(gradient - reference) / np.linalg.norm(reference))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=21_065, help="items (the paper's count)")
    parser.add_argument("--r", type=int, default=384, help="embedding dimension")
    parser.add_argument("--d", type=int, default=32, help="latent dimension")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats-lowrank", type=int, default=20)
    parser.add_argument("--repeats-dense", type=int, default=5)
    parser.add_argument("--eigh-sizes", type=int, nargs="+", default=[1000, 2000, 4000])
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--scratch", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child is not None:
        handler = child_lowrank if args.child.startswith("lowrank:") else CHILDREN[args.child]
        print(json.dumps(handler(args, args.scratch)))
        return

    print(machine_line())
    print(f"n={args.n} items, r={args.r} (random unit-norm float32 embeddings, seed {args.seed}), d={args.d}; "
          f"X entries N(0, 1/2); each variant in its own child process")
    lowrank_names = list(_lowrank_functions())
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        results = {"baseline": run_child("baseline", args, scratch), "factor": run_child("factor", args, scratch)}
        for name in lowrank_names:
            results[name] = run_child(f"lowrank:{name}", args, scratch)
        results["dense"] = run_child("dense", args, scratch)
        results["eigh"] = run_child("eigh", args, scratch)
        references = {w: json.loads((scratch / f"reference_{w}.json").read_text()) for w in ("prior", "near_fit")}
        gradient_errors = {
            (name, which): _gradient_relative(scratch, name, which)
            for name in ["gram_mismatch", "gram_mismatch+const", "dense"] for which in ("prior", "near_fit")
        }
        dense_vs_lowrank_gradient = {
            which: float(
                np.linalg.norm(np.load(scratch / f"gradient_dense_{which}.npy").astype(np.float64)
                               - np.load(scratch / f"gradient_gram_mismatch_{which}.npy"))
                / np.linalg.norm(np.load(scratch / f"gradient_dense_{which}.npy").astype(np.float64))
            )
            for which in ("prior", "near_fit")
        }

    baseline = results["baseline"]["peak_rss_mib"]
    factor = results["factor"]
    dense = results["dense"]
    print(f"\n## one-off factor build: sqrt_psd_factor_from_embeddings, E ({args.n}, {args.r}) -> W {factor['factor_shape']}")
    print(f"{factor['build_s']:.2f} s; peak RSS {factor['peak_rss_mib']:.0f} MiB (baseline child {baseline:.0f} MiB)")
    print(factor["report"])

    print(f"\n## similarity term, jit-compiled value + gradient w.r.t. X ({args.n} x {args.d}), X from the prior")
    print("time: median over repeats after one warm-up call (min-max); peak RSS of the child process "
          f"(baseline child: imports + X only = {baseline:.0f} MiB)")
    header = (f"{'variant':<30} {'compile+1st s':>13} {'median s/eval':>14} {'min-max s':>17} {'peak RSS MiB':>13} "
              f"{'over baseline':>14}")
    print(header)
    rows = [(name, results[name]) for name in lowrank_names] + [("dense gram_mismatch_dense", dense)]
    for name, result in rows:
        timing = result["prior"]
        print(f"{name:<30} {timing['first_s']:13.3f} {timing['median_s']:14.5f} "
              f"{timing['min_s']:8.5f}-{timing['max_s']:.5f} {result['peak_rss_mib']:13.0f} "
              f"{result['peak_rss_mib'] - baseline:14.0f}")
    print(f"dense: building √S = W Wᵀ ({args.n}² float32, {args.n**2 * 4 / 2**30:.2f} GiB) took "
          f"{dense['build_sqrt_s_from_factor_s']:.1f} s; RSS after the build {dense['peak_rss_after_build_mib']:.0f} MiB")

    print("\n## ratios dense / low-rank (time per evaluation, value + gradient; peak RSS; RSS over baseline)")
    print(f"{'low-rank variant':<30} {'time ratio':>11} {'peak RSS ratio':>15} {'RSS-over-baseline ratio':>24}")
    for name in lowrank_names:
        result = results[name]
        print(f"{name:<30} {dense['prior']['median_s'] / result['prior']['median_s']:10.1f}x "
              f"{dense['peak_rss_mib'] / result['peak_rss_mib']:14.1f}x "
              f"{(dense['peak_rss_mib'] - baseline) / max(result['peak_rss_mib'] - baseline, 1.0):23.1f}x")

    print("\n## agreement (relative differences; reference: float64 low-rank identity)")
    print(f"{'X':<9} {'reference value':>16} {'|low-rank−ref|/ref':>19} {'|dense−ref|/ref':>16} {'|dense−lowrank|/dense':>22} "
          f"{'grad low-rank':>14} {'grad dense':>11} {'grad dense vs low-rank':>23}")
    for which in ("prior", "near_fit"):
        reference = references[which]["value"]
        lowrank_value = results["gram_mismatch"][which]["value"]
        dense_value = dense[which]["value"]
        print(f"{which:<9} {reference:16.6e} {_relative(lowrank_value, reference):19.2e} "
              f"{_relative(dense_value, reference):16.2e} {_relative(dense_value, lowrank_value):22.2e} "
              f"{gradient_errors[('gram_mismatch', which)]:14.2e} {gradient_errors[('dense', which)]:11.2e} "
              f"{dense_vs_lowrank_gradient[which]:23.2e}")
    for name in ("gram_mismatch+const", "scaled_gram_mismatch", "scaled_gram_mismatch+const"):
        key = "scaled_value" if name.startswith("scaled") else "value"
        print(f"{name:<28} vs float64 (prior X): {_relative(results[name]['prior']['value'], references['prior'][key]):.2e}")
    print(f"scaled value from the dense matrices vs float64 (prior X): "
          f"{_relative(dense['scaled_value_prior'], references['prior']['scaled_value']):.2e}")

    eigh = {int(size): seconds for size, seconds in results["eigh"]["eigh_s"].items()}
    sizes = np.array(sorted(eigh), dtype=float)
    seconds = np.array([eigh[int(size)] for size in sizes])
    largest = sizes[-1]
    cubic_estimate = eigh[int(largest)] * (args.n / largest) ** 3
    exponent, log_constant = np.polyfit(np.log(sizes), np.log(seconds), 1)
    fitted_estimate = float(np.exp(log_constant) * args.n**exponent)
    print("\n## ESTIMATE (not measured): dense √S by eigendecomposition of the n × n similarity, numpy.linalg.eigh "
          "float64, one BLAS thread")
    print("measured: " + ", ".join(f"n={int(s)}: {t:.2f} s" for s, t in zip(sizes, seconds)))
    print(f"extrapolated to n={args.n}: O(n³) from n={int(largest)}: ~{cubic_estimate:,.0f} s (~{cubic_estimate / 3600:.1f} h); "
          f"log-log fit (exponent {exponent:.2f}): ~{fitted_estimate:,.0f} s (~{fitted_estimate / 3600:.1f} h)")
    print(f"memory estimate: S and its eigenvectors in float64 alone are 2 × {args.n**2 * 8 / 2**30:.1f} GiB; "
          "√S = V diag(√λ) Vᵀ then costs one more n³ product")


if __name__ == "__main__":
    main()
