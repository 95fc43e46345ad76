"""Why the sampler's R-hat stays above 1.01 on openllm-v2-mmlupro-math (issue 23): per-chain population scales.

Fits ``SimRMF(method="mf", item_groups=benchmark, inference="gibbs", dim=8)`` (4 chains, the package defaults) on
``Protocol(500, 1000, T=300, seed=0)`` and prints, per chain, the mean eigenvalues of the learned LLM and question
population covariances, and how far the chains' pair probabilities differ between chains and drift within them.
The likelihood depends on the factors only through ``U Vᵀ``, so ``U C``, ``V C⁻ᵀ`` fit equally well; only the
Normal–Wishart priors pin the scale. If the chains sit at different scales and drift slowly along them, and the
predictions move with that scale a little (through the shrinkage it sets), R-hat reports the drift, and longer
chains do not remove it (``bench_gibbs.md``).

Writes ``experiments/results/gibbs_chains.md``.

Usage:
    python experiments/gibbs_chains.py
"""

from __future__ import annotations

import contextlib
import io
import time
from pathlib import Path

import numpy as np

from bayes_simrmf.data import load_dataset, shared_dataset_path
from bayes_simrmf.evaluate import fit_on_split
from bayes_simrmf.evaluate.study import code_state
from bayes_simrmf.inference.gibbs import ITEM_POPULATION_COV, LLM_POPULATION_COV
from bayes_simrmf.machine import machine_line
from bayes_simrmf.model.predictor import pair_logits, sigmoid
from bayes_simrmf.predict import make_estimator
from bayes_simrmf.splits import Protocol

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    code, started = code_state(["experiments/gibbs_chains.py"]), time.perf_counter()
    d = load_dataset(shared_dataset_path("openllm-v2-mmlupro-math"), log=None)
    groups = d.items.set_index("item")["benchmark"].fillna("(none)").astype(str)
    s = Protocol(500, 1000, T=300, seed=0).split(d, log=None)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        est = fit_on_split(make_estimator('mf', dim=8, seed=0, progress=False, inference='gibbs'), s, item_groups=groups)
        post = est.posterior_
        print({k: v.shape for k, v in post.draws.items()})
        for name in (LLM_POPULATION_COV, ITEM_POPULATION_COV):
            cov = post.draws[name]  # (chains, draws, [groups,] p, p)
            ev = np.linalg.eigvalsh(cov.astype(np.float64))
            m = ev.mean(axis=1)
            print(name, 'per-chain mean eigenvalues (sorted):')
            for c in range(m.shape[0]):
                print('  chain', c, np.round(np.sort(m[c].reshape(-1))[::-1][:10], 3))
            half = ev.shape[1] // 2
            print('  first vs second half of chain 0:', np.round(np.sort(ev[0, :half].mean(0).reshape(-1))[::-1][:9], 3), np.round(np.sort(ev[0, half:].mean(0).reshape(-1))[::-1][:9], 3))
        tr = s.pairs['train']
        rows = np.random.default_rng(0).choice(len(tr), 2000, replace=False)
        params = {k: post.flat(k) for k in post.draws}
        prob = sigmoid(pair_logits(params, tr.llm[rows], tr.item[rows])).reshape(post.chains, post.draws_per_chain, -1)
        cm = prob.mean(axis=1)
        print('per-chain mean prob over the 2000 pairs', cm.mean(axis=1).round(4))
        print('pairs: between-chain sd of the mean / within-chain sd, median', np.median(cm.std(0) / prob.std(axis=1).mean(0)).round(3))
        # trend within chains: mean over pairs of (second half mean - first half mean)/sd
        h = prob.shape[1] // 2
        drift = (prob[:, h:].mean(1) - prob[:, :h].mean(1)) / prob.std(1)
        print('within-chain drift (second - first half)/sd, median abs', np.median(np.abs(drift)).round(3))
    text = ["# The sampler's chains: population scales and prediction drift", "",
            f"Command: `python experiments/gibbs_chains.py`; code {code['commit']}{' (dirty)' if code['dirty'] else ''}; "
            f"{time.perf_counter() - started:.0f} s.  ", machine_line() + "  ",
            "MF+groups, dim 8, gibbs with the package defaults, openllm-v2-mmlupro-math, Protocol(500, 1000, T=300, "
            "seed=0). Output of the script:", "", "```", out.getvalue().rstrip(), "```", ""]
    (ROOT / "experiments" / "results" / "gibbs_chains.md").write_text("\n".join(text))
    print(out.getvalue())


if __name__ == "__main__":
    main()
