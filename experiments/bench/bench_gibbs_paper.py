"""The paper's form of SimRMF under the sampler (issue 23: a Metropolis step within Gibbs for the Gram potential).

On one seed's split of openllm-v2-mmlupro-math (``Protocol(500, 1000, T=300, seed)``, the bench problem of
``bench_gibbs.py``), side by side in one run on the same machine:

- SimRMF as the paper writes it (``PAPER_FORM``: joint Gram potential on the factors, the similarity's scale fixed,
  side information uncentred) fitted by SVI with the delta guide (the paper's point estimate) and with the normal
  guide;
- the same model under the sampler (``inference="gibbs"``): learned Normal–Wishart populations, the potential's
  quadratic part in each row's Gaussian conditional and its quartic diagonal term by a Metropolis step, rows of a
  side drawn one after another;
- MF+groups under the sampler (no potential) as the reference for what the potential costs and brings.

The paper-form rows run at two settings of κ (questions, LLMs): the package default (1, 1), and the values Table 2's
tuning chose for SimRMF-paper on this dataset, T and seed (on validation pairs carved from the seed's training
pairs, for the SVI form; read from ``experiments/results/table2_cells``); nothing is tuned here. Every row uses the
same side information: question texts embedded with the package's default embedding model, LLM metadata, ``alpha`` 0.5.
Reported: wall time of fit and of predicting A-D (compilation included), RMSE_p per split, and for the sampler rows
R-hat and bulk ESS of the prediction summaries (as in ``bench_gibbs.py``).

Usage:
    python experiments/bench/bench_gibbs_paper.py [--seed 0] [--dim 8] [--out experiments/results/bench_gibbs_paper.md]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dim", type=int, default=8)
    parser.add_argument("--out", type=Path, default=None, help="also write the report here (Markdown)")
    args = parser.parse_args()

    from bayes_simrmf.data import load_dataset, shared_dataset_path
    from bayes_simrmf.evaluate import evaluate_on_split, fit_on_split
    from bayes_simrmf.evaluate.study import Report
    from bayes_simrmf.predict import PAPER_FORM, PAPER_SIDE, make_estimator
    from bayes_simrmf.similarity import build_side_information
    from bayes_simrmf.similarity.embedding_models import DEFAULT_EMBEDDING_MODEL
    from bayes_simrmf.splits import Protocol

    report = Report("The paper's form of SimRMF under the sampler",
                    f"python experiments/bench/bench_gibbs_paper.py --seed {args.seed} --dim {args.dim}")
    say = report.say
    dataset = load_dataset(args.data or shared_dataset_path("openllm-v2-mmlupro-math"), log=None)
    split = Protocol(500, 1000, T=300, seed=args.seed).split(dataset, log=None)
    groups = dataset.items.set_index("item")["benchmark"].fillna("(none)").astype(str)
    start = time.perf_counter()
    side = build_side_information(dataset, split.llms, split.items, kind="similarity", alpha=0.5, log=None,
                                  **PAPER_SIDE)
    side_seconds = time.perf_counter() - start
    say(f"Data: {dataset.name}, Protocol(500, 1000, T=300, seed={args.seed}): "
        + ", ".join(f"{name} {len(pairs):,}" for name, pairs in split.pairs.items()) + " pairs; item groups: "
        f"benchmark; dim {args.dim}; side information (embedding model: {DEFAULT_EMBEDDING_MODEL}, "
        f"alpha 0.5, uncentred) built in {side_seconds:.0f} s, not counted below.")
    say()
    paper = {key: value for key, value in PAPER_FORM.items() if key != "method"}
    cell = ROOT / "experiments" / "results" / "table2_cells" / dataset.name / "T300" / f"seed{args.seed}" / "SimRMF-paper.json"
    chosen = json.loads(cell.read_text())["chosen"]
    tuned = {name: chosen[name] for name in ("similarity_weight_items", "similarity_weight_llms")}
    say(f"Tuned κ (questions, LLMs) = ({tuned['similarity_weight_items']:g}, {tuned['similarity_weight_llms']:g}), "
        f"from `{cell.relative_to(ROOT)}`.")
    say()
    settings = (
        ("SimRMF-paper κ (1, 1), SVI delta (the paper's point estimate)", "simrmf", {**paper, "guide": "delta"}),
        ("SimRMF-paper κ (1, 1), SVI normal guide", "simrmf", {**paper, "guide": "normal", "learning_rate": 0.02}),
        ("SimRMF-paper κ (1, 1), gibbs (defaults)", "simrmf", {**paper, "inference": "gibbs"}),
        ("SimRMF-paper κ tuned, SVI delta", "simrmf", {**paper, **tuned, "guide": "delta"}),
        ("SimRMF-paper κ tuned, gibbs (defaults)", "simrmf", {**paper, **tuned, "inference": "gibbs"}),
        ("MF+groups, gibbs (defaults; no potential)", "mf", {"inference": "gibbs"}),
    )
    say("| setting | fit s | predict A-D s | A RMSE_p | B RMSE_p | C RMSE_p | D RMSE_p | max R-hat | median R-hat "
        "(pair / LLM / question) | min bulk ESS |")
    say("|" + "---|" * 10)
    for label, method, options in settings:
        estimator = make_estimator(method, dim=args.dim, seed=args.seed, progress=False, **options)
        start = time.perf_counter()
        fit_on_split(estimator, split, side=side if method == "simrmf" else None, item_groups=groups)
        fitted = time.perf_counter()
        scores = evaluate_on_split(estimator, split)
        predicted = time.perf_counter()
        diagnostics = getattr(estimator, "sampler_diagnostics_", None)
        if diagnostics:
            kinds = diagnostics["by_kind"]
            rhat = (f"{diagnostics['max_rhat']:.3f} | "
                    + " / ".join(f"{kinds[k]['median_rhat']:.3f}" for k in ("pair", "llm", "item"))
                    + f" | {diagnostics['min_ess_bulk']:.0f}")
        else:
            rhat = "– | – | –"
        say(f"| {label} | {fitted - start:.1f} | {predicted - fitted:.1f} | "
            + " | ".join(f"{scores[name]['rmse_p']:.4f}" for name in "ABCD") + f" | {rhat} |")
    say()
    if args.out:
        report.write(args.out)


if __name__ == "__main__":
    main()
