"""How well side-information similarity agrees with score similarity, on the shared leaderboard datasets.

PAPER.md: the potential matches ``X Xᵀ`` to ``√S_X`` (and ``M Mᵀ`` to ``√S_M``); the ideal (oracle) similarity is
``S_X = ZᵀZ``, ``S_M = Z Zᵀ``, so a side-information similarity is useful to the extent that ``√S_X`` tracks
``√(ZᵀZ)`` (equivalently ``S_X`` tracks ``ZᵀZ``). This script measures that agreement over sampled pairs.

Per dataset:

* ``Z`` (LLMs × items, 0/1) with missing cells filled with the LLM's mean, as
  :func:`bayes_simrmf.similarity.oracle_factors` does; ``Z_c = Z − column means`` (each item's mean over LLMs
  removed) is the centred version.
* Items: ``S_X`` = cosine of the precomputed all-MiniLM-L6-v2 embeddings
  (:func:`bayes_simrmf.similarity.item_embeddings`), ``√S_X = W Wᵀ`` with ``W`` from
  :func:`~bayes_simrmf.similarity.sqrt_psd_factor_from_embeddings`; targets ``ZᵀZ`` and ``Z_cᵀZ_c`` and their
  square roots (``√(ZᵀZ)`` from the item factor of :func:`~bayes_simrmf.similarity.oracle_factors`, ``√(Z_cᵀZ_c)``
  from the SVD of ``Z_c``). Also the pair as the model sees it (``centre=True`` in
  :func:`bayes_simrmf.similarity.build_side_information`: both factors centred over items, i.e. ``H √S H``) and the
  package's own diagnostic :func:`~bayes_simrmf.similarity.similarity_alignment` (``√S`` vs the cosine of centred
  score vectors), and ``√S_X`` vs ``ZᵀZ`` itself (PAPER.md's "a similarity should behave like S ≈ (ZᵀZ)²").
* LLMs: ``S_M = α S_feature + (1−α) S_lineage`` (:func:`~bayes_simrmf.similarity.llm_similarity`) for
  α ∈ {0, 0.25, 0.5, 0.75, 1} (α = 0 is S_lineage alone, α = 1 is S_feature alone), ``√S_M`` from
  :func:`~bayes_simrmf.similarity.sqrt_psd_factor_from_dense`; the same targets with ``Z Zᵀ``.
* Pearson and Spearman correlation over a seeded sample of at most ``--max-pairs`` distinct off-diagonal pairs
  (all pairs when there are fewer). Every entry is computed from factor rows or score columns of the two
  entities: no items × items matrix is built.
* openllm-v2 only (several benchmarks): the same item statistics within and across benchmarks, and how well
  text similarity recovers an item's benchmark (share of its 10 nearest neighbours by text cosine that share its
  benchmark / subtask, over a seeded sample of items), against chance and against score-vector neighbours.

Usage:
    python experiments/similarity_alignment.py [--datasets openllm-v2-mmlupro-math openllm-v2 openllm-v2-bbh-tso5]
        [--max-pairs 200000] [--seed 0]

Prints Markdown. Run with ``OPENBLAS_NUM_THREADS=1`` on a shared machine: a multi-threaded
``eigh`` of the 4,027 × 4,027 ``S_M`` (one per α for openllm-v2-bbh-tso5) waits on busy cores.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

from bayes_simrmf.data import Dataset, load_dataset, shared_dataset_path
from bayes_simrmf.similarity import centre_rows, item_embeddings
from bayes_simrmf.similarity import (
    llm_similarity,
    oracle_factors,
    similarity_alignment,
    sqrt_psd_factor_from_dense,
    sqrt_psd_factor_from_embeddings,
)

DATASETS = ("openllm-v2-mmlupro-math", "openllm-v2", "openllm-v2-bbh-tso5")
ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)


# ============================================================================================== building blocks
def filled_score_matrix(dataset: Dataset) -> tuple[np.ndarray, float]:
    """``Z`` (n_llms, n_items) float64 with unobserved cells set to the LLM's mean (global mean for an LLM with no
    scores), as :func:`oracle_factors` fills it; and the observed share of cells."""
    llm_idx, item_idx, correct = dataset.codes()
    n_llms, n_items = dataset.n_llms, dataset.n_items
    totals = np.bincount(llm_idx, weights=correct, minlength=n_llms)
    counts = np.bincount(llm_idx, minlength=n_llms)
    llm_means = np.where(counts > 0, totals / np.maximum(counts, 1), correct.mean())
    scores = np.repeat(llm_means[:, None], n_items, axis=1)
    scores[llm_idx, item_idx] = correct  # responses hold one row per (llm, item) pair
    return scores, len(correct) / (n_llms * n_items)


def svd_sqrt_factors(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(U Σ^{1/2}, V Σ^{1/2})`` of ``scores = U Σ Vᵀ``: factors of ``√(Z Zᵀ)`` (rows) and ``√(ZᵀZ)`` (columns)."""
    left, singular, right_t = np.linalg.svd(scores, full_matrices=False)
    keep = singular > 1e-10 * singular[0]
    root = np.sqrt(singular[keep])
    return left[:, keep] * root, right_t[keep].T * root


def sample_pairs(n: int, max_pairs: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Distinct pairs ``(a, b)``, ``a < b``: all of them when there are at most ``max_pairs``, else a uniform sample."""
    n_all = n * (n - 1) // 2
    if n_all <= max_pairs:
        return np.triu_indices(n, k=1)
    first = rng.integers(0, n, size=int(max_pairs * 1.2) + 1000)
    second = rng.integers(0, n, size=first.size)
    keep = first != second
    low, high = np.minimum(first, second)[keep], np.maximum(first, second)[keep]
    unique = np.unique(low.astype(np.int64) * n + high)
    chosen = rng.permutation(unique)[:max_pairs]
    return chosen // n, chosen % n


def pair_dots(rows: np.ndarray, first: np.ndarray, second: np.ndarray, chunk: int = 20_000) -> np.ndarray:
    """``rows[a] · rows[b]`` for each pair, in float64, in chunks (an entry of ``rows rowsᵀ``)."""
    out = np.empty(len(first))
    for start in range(0, len(first), chunk):
        a = rows[first[start:start + chunk]].astype(np.float64)
        b = rows[second[start:start + chunk]].astype(np.float64)
        out[start:start + chunk] = np.einsum("pj,pj->p", a, b)
    return out


def correlations(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Pearson and Spearman (ties averaged) correlation; NaN where one side is constant."""
    if np.std(x) == 0 or np.std(y) == 0:
        return float("nan"), float("nan")
    return float(np.corrcoef(x, y)[0, 1]), float(np.corrcoef(rankdata(x), rankdata(y))[0, 1])


def _fmt(value: float) -> str:
    return "n/a" if np.isnan(value) else f"{value:+.3f}"


class Side:
    """Score-similarity targets for one side (items or LLMs) over one pair sample."""

    def __init__(self, score_rows: np.ndarray, score_rows_centred: np.ndarray, sqrt_factor: np.ndarray,
                 sqrt_factor_centred: np.ndarray, first: np.ndarray, second: np.ndarray) -> None:
        self.first, self.second = first, second
        # Entries of the Gram of scores (Z Zᵀ for LLMs, ZᵀZ for items) and of its square root.
        self.targets = {
            "G": pair_dots(score_rows, first, second),
            "Gc": pair_dots(score_rows_centred, first, second),
            "sqrtG": pair_dots(sqrt_factor, first, second),
            "sqrtGc": pair_dots(sqrt_factor_centred, first, second),
            "model_sqrtG": pair_dots(centre_rows(sqrt_factor), first, second),
        }

    def rows(self, similarity_entries: np.ndarray, sqrt_similarity_entries: np.ndarray,
             model_sqrt_entries: np.ndarray, mask: np.ndarray | None = None) -> list[tuple[str, float, float]]:
        pick = slice(None) if mask is None else mask
        t = {name: values[pick] for name, values in self.targets.items()}
        s, r, m = similarity_entries[pick], sqrt_similarity_entries[pick], model_sqrt_entries[pick]
        return [
            ("√S vs √G (raw Z)", *correlations(r, t["sqrtG"])),
            ("√S vs √G (centred Z)", *correlations(r, t["sqrtGc"])),
            ("S vs G (raw Z)", *correlations(s, t["G"])),
            ("S vs G (centred Z)", *correlations(s, t["Gc"])),
            ("√S vs G (raw Z): PAPER's S ≈ G²", *correlations(r, t["G"])),
            ("√S vs G (centred Z): PAPER's S ≈ G²", *correlations(r, t["Gc"])),
            ("H√S H vs H√G H (model's centre=True)", *correlations(m, t["model_sqrtG"])),
        ]


def print_table(title: str, columns: list[str], blocks: dict[str, list[tuple[str, float, float]]]) -> None:
    """One row per comparison, Pearson / Spearman per block (column group)."""
    print(f"\n{title}\n" if title else "")
    header = "| comparison | " + " | ".join(f"{c} Pearson | {c} Spearman" for c in columns) + " |"
    print(header)
    print("|---|" + "---:|---:|" * len(columns))
    names = [row[0] for row in next(iter(blocks.values()))]
    for index, name in enumerate(names):
        cells = " | ".join(f"{_fmt(blocks[c][index][1])} | {_fmt(blocks[c][index][2])}" for c in columns)
        print(f"| {name} | {cells} |")


# ================================================================================================ per dataset
def item_section(dataset: Dataset, scores: np.ndarray, scores_centred: np.ndarray, item_sqrt: np.ndarray,
                 item_sqrt_centred: np.ndarray, args: argparse.Namespace) -> None:
    item_ids = dataset.item_ids()
    embeddings = item_embeddings(dataset, item_ids, log=None)
    factor, factor_report = sqrt_psd_factor_from_embeddings(embeddings)
    rng = np.random.default_rng(args.seed)
    first, second = sample_pairs(len(item_ids), args.max_pairs, rng)
    side = Side(scores.T, scores_centred.T, item_sqrt, item_sqrt_centred, first, second)
    text_cosine = pair_dots(embeddings, first, second)
    text_sqrt = pair_dots(factor, first, second)
    text_model = pair_dots(centre_rows(factor), first, second)
    diagnostic = similarity_alignment(factor, scores.T, n_pairs=args.max_pairs, seed=args.seed)
    print(f"\n### Items: text cosine S_X vs score Gram ZᵀZ ({len(item_ids):,} items, {len(first):,} pairs)")
    print(f"\n{factor_report}. Off-diagonal text cosine over the pairs: mean {text_cosine.mean():.3f}, "
          f"sd {text_cosine.std():.3f}.")
    blocks = {"all pairs": side.rows(text_cosine, text_sqrt, text_model)}
    benchmarks = dataset.items.set_index("item")["benchmark"].reindex(list(item_ids)).to_numpy()
    if len(np.unique(benchmarks)) > 1:
        same = benchmarks[first] == benchmarks[second]
        blocks[f"same benchmark ({same.sum():,})"] = side.rows(text_cosine, text_sqrt, text_model, same)
        blocks[f"different benchmark ({(~same).sum():,})"] = side.rows(text_cosine, text_sqrt, text_model, ~same)
    print_table("", list(blocks), blocks)
    print(f"\nPackage diagnostic `similarity_alignment(W, Zᵀ)` (√S_X vs cosine of each item's centred score vector "
          f"over LLMs, {diagnostic.n_pairs:,} pairs): Pearson {diagnostic.pearson:+.3f}, "
          f"Spearman {diagnostic.spearman:+.3f}.")
    if len(np.unique(benchmarks)) > 1:
        benchmark_recovery(dataset, embeddings, scores, benchmarks, args)


def benchmark_recovery(dataset: Dataset, embeddings: np.ndarray, scores: np.ndarray, benchmarks: np.ndarray,
                       args: argparse.Namespace) -> None:
    """Share of each sampled item's k nearest neighbours (text cosine) in its benchmark / subtask."""
    subtasks = dataset.items.set_index("item")["subtask"].reindex(list(dataset.item_ids())).astype(str).to_numpy()
    subtasks = np.char.add(benchmarks.astype(str), np.char.add("/", subtasks))
    n_items, k = len(benchmarks), args.neighbours
    sample = np.random.default_rng(args.seed + 1).choice(n_items, size=min(args.knn_items, n_items), replace=False)
    centred = scores.T - scores.T.mean(axis=1, keepdims=True)
    centred /= np.linalg.norm(centred, axis=1, keepdims=True).clip(min=1e-12)
    neighbour_sets = {}
    for name, vectors in (("text cosine (MiniLM)", embeddings.astype(np.float32)),
                          ("score-vector cosine (centred filled Z)", centred.astype(np.float32))):
        similarity = vectors[sample] @ vectors.T  # (n_sample, n_items): never items × items
        similarity[np.arange(len(sample)), sample] = -np.inf
        neighbour_sets[name] = np.argpartition(-similarity, k, axis=1)[:, :k]
    print(f"\n#### Does text similarity recover the benchmark? ({len(sample):,} sampled items, {k} nearest neighbours "
          "each, self excluded)\n")
    names, counts = np.unique(benchmarks, return_counts=True)
    size_of = dict(zip(names, counts))
    sub_names, sub_counts = np.unique(subtasks, return_counts=True)
    sub_size_of = dict(zip(sub_names, sub_counts))
    chance_benchmark = np.array([(size_of[b] - 1) / (n_items - 1) for b in benchmarks[sample]])
    chance_subtask = np.array([(sub_size_of[s] - 1) / (n_items - 1) for s in subtasks[sample]])
    columns = ["all"] + list(names)
    print("| neighbours by | " + " | ".join(f"{c} (n={np.sum(benchmarks[sample] == c) if c != 'all' else len(sample)})"
                                          for c in columns) + " |")
    print("|---|" + "---:|" * len(columns))

    def by_benchmark(values: np.ndarray) -> str:
        cells = [values.mean()] + [values[benchmarks[sample] == c].mean() for c in names]
        return " | ".join(f"{v:.3f}" for v in cells)

    for name, neighbours in neighbour_sets.items():
        same_benchmark = (benchmarks[neighbours] == benchmarks[sample][:, None]).mean(axis=1)
        same_subtask = (subtasks[neighbours] == subtasks[sample][:, None]).mean(axis=1)
        print(f"| {name}: same benchmark | {by_benchmark(same_benchmark)} |")
        print(f"| {name}: same subtask | {by_benchmark(same_subtask)} |")
    print(f"| chance (random neighbours): same benchmark | {by_benchmark(chance_benchmark)} |")
    print(f"| chance (random neighbours): same subtask | {by_benchmark(chance_subtask)} |")
    print(f"\n({len(sub_names)} benchmark/subtask groups.)")


def llm_section(dataset: Dataset, scores: np.ndarray, scores_centred: np.ndarray, llm_sqrt: np.ndarray,
                llm_sqrt_centred: np.ndarray, args: argparse.Namespace) -> None:
    llm_ids = dataset.llm_ids()
    table = dataset.llms.set_index("llm").reindex(list(llm_ids)).reset_index()
    rng = np.random.default_rng(args.seed + 2)
    first, second = sample_pairs(len(llm_ids), args.max_pairs, rng)
    side = Side(scores, scores_centred, llm_sqrt, llm_sqrt_centred, first, second)
    blocks, notes = {}, []
    for alpha in ALPHAS:
        start = time.perf_counter()
        similarity, report = llm_similarity(table, alpha=alpha)
        factor, sqrt_report = sqrt_psd_factor_from_dense(similarity)
        entries = similarity[first, second].astype(np.float64)
        # S_M is dense (n_llms ≤ ~5·10^3) and its factor has up to n_llms columns, so entries come from the dense
        # √S_M rather than from gathering two factor rows per pair.
        sqrt_similarity = factor.astype(np.float64) @ factor.T.astype(np.float64)
        centred_factor = centre_rows(factor).astype(np.float64)
        sqrt_similarity_centred = centred_factor @ centred_factor.T
        label = {0.0: "α=0 (S_lineage)", 1.0: "α=1 (S_feature)"}.get(alpha, f"α={alpha:g}")
        blocks[label] = side.rows(entries, sqrt_similarity[first, second], sqrt_similarity_centred[first, second])
        diagnostic = similarity_alignment(sqrt_similarity, scores, dense=True, n_pairs=args.max_pairs, seed=args.seed)
        del sqrt_similarity, sqrt_similarity_centred
        notes.append(f"{label}: off-diagonal S mean {entries.mean():.3f}, share of pairs with S > 0 "
                     f"{(entries > 0).mean():.3f}; clipped negative spectral share "
                     f"{sqrt_report.clipped_negative_share:.2%}; similarity_alignment Pearson "
                     f"{diagnostic.pearson:+.3f} / Spearman {diagnostic.spearman:+.3f} "
                     f"({time.perf_counter() - start:.0f} s)")
        if alpha == 0.5:
            metadata = f"{report.features}\n\n{report.lineage}"
    print(f"\n### LLMs: S_M = α·S_feature + (1−α)·S_lineage vs score Gram Z Zᵀ ({len(llm_ids):,} LLMs, "
          f"{len(first):,} pairs)\n\n{metadata}")
    print_table("", list(blocks), blocks)
    print("\n" + "\n".join(f"- {note}" for note in notes))


def run_dataset(name: str, args: argparse.Namespace) -> None:
    start = time.perf_counter()
    dataset = load_dataset(args.data_dir / name if args.data_dir else shared_dataset_path(name),
                           unknown_entities="add", log=None)
    scores, observed_share = filled_score_matrix(dataset)
    scores_centred = scores - scores.mean(axis=0, keepdims=True)
    llm_index, item_index, correct = dataset.codes()
    llm_sqrt, item_sqrt, oracle_report = oracle_factors(llm_index, item_index, correct, dataset.n_llms,
                                                        dataset.n_items)
    llm_sqrt_centred, item_sqrt_centred = svd_sqrt_factors(scores_centred)
    # The oracle factor and this script's Z must describe the same matrix: check a few entries of √(ZᵀZ).
    check_first, check_second = sample_pairs(dataset.n_items, 2000, np.random.default_rng(99))
    _, own_item_sqrt = svd_sqrt_factors(scores)
    mismatch = np.max(np.abs(pair_dots(item_sqrt, check_first, check_second)
                             - pair_dots(own_item_sqrt, check_first, check_second)))
    print(f"\n## {dataset.name}: {dataset.n_llms:,} LLMs × {dataset.n_items:,} items, {dataset.n_responses:,} "
          f"responses ({observed_share:.1%} of cells observed; the rest filled with the LLM's mean)")
    print(f"\nOracle: {oracle_report.n_components_kept} components, top singular values "
          f"{', '.join(f'{s:.1f}' for s in oracle_report.top_singular_values[:5])}; max |√(ZᵀZ) oracle − own SVD| "
          f"on 2,000 pairs {mismatch:.1e}.")
    item_section(dataset, scores, scores_centred, item_sqrt, item_sqrt_centred, args)
    llm_section(dataset, scores, scores_centred, llm_sqrt, llm_sqrt_centred, args)
    print(f"\n({dataset.name}: {time.perf_counter() - start:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--data-dir", type=Path, default=None, help="folder holding the datasets (default: shared)")
    parser.add_argument("--max-pairs", type=int, default=200_000)
    parser.add_argument("--knn-items", type=int, default=2_000)
    parser.add_argument("--neighbours", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print("Column guide: S = side-information similarity, G = score Gram (ZᵀZ for items, Z Zᵀ for LLMs), "
          "√ = principal square root, centred Z = Z minus each item's mean over LLMs, H = centring over the "
          "entities (what build_side_information(centre=True) does to both factors).")
    for name in args.datasets:
        run_dataset(name, args)


if __name__ == "__main__":
    main()
