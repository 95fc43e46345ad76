"""Choose ``SimRMF(population_draws=...)`` on validation entities carved from the training pairs (issue 12).

An LLM's (item's) mean accuracy over questions (LLMs) the fit never saw is predicted from the fitted
population of their group. "fixed" draws each unseen entity from the same population in every posterior
draw, so a mean over many of them has no uncertainty about the population itself; "bootstrap" resamples
the population per draw. Which gives calibrated intervals is decided here, on the seed's own training
pairs only: whole questions held out (like split B: per-LLM means over the held-out questions) and whole
LLMs held out (like split C: per-question means over the held-out LLMs); the 90% interval's coverage of
the observed means should be near 0.90.

Usage:
    python experiments/population_draws.py --data openllm-v2 openllm-v1-tiny --out experiments/results/population_draws.md
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import pandas as pd

from bayes_simrmf.data import load_dataset, shared_dataset_path
from bayes_simrmf.predict import SimRMF
from bayes_simrmf.splits import Protocol
from bayes_simrmf.evaluate.tuning import carve_validation

#: Per dataset: protocol and the MF+groups hyper-parameters chosen on seed-0 validation pairs
#: (experiments/results/table2_cells/<dataset>/T<T>/seed0/MF+groups.json, or `bayes-simrmf tune`).
SETTINGS = {
    "openllm-v2": {"T": 300, "dim": 16, "lambda_reg": 2.0, "protocol": {}},
    "openllm-v1-tiny": {"T": 100, "dim": 16, "lambda_reg": 2.0, "protocol": {}},
    "openllm-v2-mmlupro-math": {"T": 300, "dim": 8, "lambda_reg": 2.0,
                                "protocol": {"n_known_llms": 500, "n_known_items": 1000}},
}


def coverage(model, llm, item, correct, by: str, groups, n_draws: int) -> tuple[float, float, int]:
    """Share of groups (LLMs or items) whose observed mean lies in the 90% interval; mean width; count."""
    frame = model.predict_group_interval(llm, item, by=by, n_draws=n_draws, level=0.9, unknown="population",
                                         item_groups=groups)
    observed = pd.Series(correct.astype(float)).groupby(llm if by == "llm" else item).mean()
    observed = observed.reindex(frame.index)
    inside = (observed >= frame["lower"]) & (observed <= frame["upper"])
    return float(inside.mean()), float((frame["upper"] - frame["lower"]).mean()), len(frame)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=list(SETTINGS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-draws", type=int, default=100)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    started = time.time()
    rows = []
    for name in args.data:
        settings = SETTINGS[name]
        dataset = load_dataset(shared_dataset_path(name), unknown_entities="add", log=None)
        groups = dataset.items.set_index("item")["benchmark"].fillna("(none)").astype(str)
        split = Protocol(T=settings["T"], seed=args.seed, **settings["protocol"]).split(dataset, log=None)
        train = split.pairs["train"]
        llm, item, correct = split.llms[train.llm], split.items[train.item], train.correct
        for holdout, by in (("items", "llm"), ("llms", "item")):
            held = carve_validation(llm, item, share=0.2, holdout=holdout, seed=args.seed)
            for draws in ("fixed", "bootstrap"):
                model = SimRMF(guide="normal", dim=settings["dim"], lambda_reg=settings["lambda_reg"],
                               learning_rate=0.02, seed=args.seed, progress=False, population_draws=draws)
                model.fit(llm[~held], item[~held], correct[~held], item_groups=groups)
                cover, width, count = coverage(model, llm[held], item[held], correct[held], by, groups, args.n_draws)
                rows.append({"dataset": name, "T": settings["T"], "held out": holdout, "interval of": f"per-{by} mean",
                             "population_draws": draws, "cover90": round(cover, 3), "width90": round(width, 4),
                             "n": count, "converged": bool(model.converged_)})
                print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    text = [
        "# Population draws for unseen entities, chosen on validation entities (issue 12)", "",
        f"Command: `{shlex.join(['python', *sys.argv])}` (wall time {time.time() - started:.0f} s).  ",
        f"Seed {args.seed}'s training pairs only: 20% of the training questions (or LLMs) held out whole; MF with "
        "item groups = benchmarks, normal guide, hyper-parameters from the seed-0 validation choices. Coverage = share "
        f"of LLMs (questions) whose observed mean on the held-out pairs lies in the 90% interval ({args.n_draws} "
        "draws). No embeddings are used.", "",
        table.to_markdown(index=False) if hasattr(table, "to_markdown") and _has_tabulate() else table.to_string(index=False),
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(text) + "\n")
    print("\n".join(text))


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
