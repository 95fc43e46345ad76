"""The evaluation protocol as a study: split → tune → fit → score, one cached cell per dataset × T × seed × method.

For every dataset × T × seed × method of a config, :func:`run` draws the seed's split, tunes the
method's hyper-parameters on validation pairs carved from *that seed's* training pairs (never on
test pairs, never on another seed's pairs), fits, scores splits A-D and writes one JSON cell
(:class:`~bayes_simrmf.evaluate.study.CellStore`)::

    <cells>/<dataset>/T<T>/seed<seed>/<method>.json   metrics per split, chosen hyper-parameters,
                                                       tuning table, fit seconds, embedding model
    <cells>/<dataset>/T<T>/seed<seed>/split.json       known counts and the training-degree report

A cell that exists is not recomputed, so a large table fills over several sessions; a deadline
stops cleanly after the cell in progress. :mod:`bayes_simrmf.evaluate.tables` aggregates the cells;
``experiments/run_protocol.py`` is the driver.

Provenance (:mod:`bayes_simrmf.evaluate.study`): every cell records the commit, whether the code was
dirty, the hash of the code it depends on (this module and every package module it can import —
:data:`STUDY_CODE` — not the driver, the tables, the CLI or the hub client), the package version,
the hash of its config (method spec, dataset options, T, seed, tuning settings) and the dataset's
fingerprint. Cells are written only from a clean tree (unless ``allow_dirty``); ``rerun_stale``
recomputes cells from other code or another config and says how far each moved. Grids are extended
past an edge choice (:func:`bayes_simrmf.evaluate.tuning.grid_search`); each cell records where every
tuned value lies (interior / bound / edge).

Config keys per method: ``method`` (meanscore, counting, mf, simrmf, oracle, or ``peer`` with ``peer``:
"smurff" / "cmfrec", see :mod:`bayes_simrmf.predict.peers`; a peer that is not installed is skipped with
a message, its cells stay missing), ``fixed`` options, ``paper: true`` (SimRMF as the paper writes it:
:data:`bayes_simrmf.predict.PAPER_FORM`, side information uncentred), ``side`` ("similarity" / "oracle"),
``item_groups`` (an items column, e.g. "benchmark": the model gets each question's group and new
questions are predicted from their group), ``inherit`` (start from another method's choice for the
same seed) and ``tune`` (a grid) or ``stages`` (grids with their own hold-outs; see
:func:`bayes_simrmf.evaluate.tuning.staged_search`).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_simrmf.data import load_dataset, shared_dataset_path
from bayes_simrmf.errors import ConfigError
from bayes_simrmf.evaluate.split import TEST_SPLITS, evaluate_on_split, fit_on_split
from bayes_simrmf.evaluate.study import StudyCells
from bayes_simrmf.evaluate.tuning import staged_search
from bayes_simrmf.options import DEFAULT_EMBEDDING_MODEL
from bayes_simrmf.predict.estimator import PAPER_FORM, make_estimator
from bayes_simrmf.predict.peers import PeerEstimator, missing_peers
from bayes_simrmf.similarity import build_side_information, centre_rows
from bayes_simrmf.splits import Protocol

CELL_FORMAT = 2
#: The code a protocol cell depends on: this module and every package module it can import.
STUDY_CODE = ("bayes_simrmf/evaluate/runner.py",)


def method_options(spec: dict, seed: int, chosen: dict | None) -> dict:
    """Constructor options of a config method for one seed: paper preset, fixed, then tuned."""
    options = {**(PAPER_FORM if spec.get("paper") else {}), **spec.get("fixed", {}), **(chosen or {})}
    method = options.pop("method", spec["method"])
    if method == "peer":
        options.setdefault("peer", spec["peer"])
        options.setdefault("seed", seed)
    elif method not in ("meanscore", "counting"):
        options.setdefault("seed", seed)
        options.setdefault("progress", False)
    return {"method": method, **options}


def build(spec: dict, seed: int, chosen: dict | None):
    options = method_options(spec, seed, chosen)
    method = options.pop("method")
    if method == "peer":
        return PeerEstimator(peer=options.pop("peer"), seed=options.pop("seed"), options=options)
    return make_estimator(method, **options)


def side_key(spec: dict) -> tuple[str, bool] | None:
    kind = spec.get("side")
    return None if not kind else (kind, bool(spec.get("paper")))


class SeedContext:
    """One dataset × T × seed: its split, side information (built on first use), item groups."""

    def __init__(self, dataset, options: dict, T: int, seed: int, n_test_pairs: int, side_cache: dict) -> None:
        self.dataset = dataset
        self.side_cache = side_cache
        protocol = Protocol(n_known_llms=options.get("n_known_llms"), n_known_items=options.get("n_known_items"),
                            T=T, n_test_pairs=n_test_pairs, seed=seed, new_llms=options.get("new_llms", "random"))
        lines: list[str] = []
        self.split = protocol.split(dataset, log=lines.append)
        self.split_log = lines
        self.seed = seed

    def side(self, spec: dict):
        """Side information for every LLM and item of the split. It does not depend on the seed or T
        (a split holds every entity of the dataset, known or new), so it is built once per dataset,
        uncentred, and centred per use unless the method is the paper's form."""
        key = side_key(spec)
        if key is None:
            return None
        kind, paper = key
        alpha = spec.get("alpha", 0.5)
        if (kind, alpha) not in self.side_cache:
            self.side_cache[(kind, alpha)] = build_side_information(
                self.dataset, np.sort(self.split.llms), np.sort(self.split.items), kind=kind, alpha=alpha,
                log=None, centre=False)
        side = self.side_cache[(kind, alpha)]
        if paper:
            return side  # PAPER_SIDE: the paper's similarity as it is, uncentred
        return dataclasses.replace(
            side,
            llm_factor=None if side.llm_factor is None else centre_rows(side.llm_factor),
            item_factor=None if side.item_factor is None else centre_rows(side.item_factor),
        )

    def item_groups(self, spec: dict):
        column = spec.get("item_groups")
        if not column:
            return None
        items = self.dataset.items
        if column not in items.columns:
            raise ConfigError(f"item_groups {column!r} is not a column of {self.dataset.name}'s items table")
        return items.set_index("item")[column].fillna("(none)").astype(str)


def run_cell(context: SeedContext, label: str, spec: dict, config: dict, inherited: dict) -> dict:
    """Tune (on this seed's training pairs), fit, score; the cell's JSON content."""
    split, seed = context.split, context.seed
    train = split.pairs["train"]
    side = context.side(spec)
    groups = context.item_groups(spec)
    fit_kwargs = {}
    if side is not None:
        fit_kwargs.update(side=side, llms=split.llms, items=split.items)
    if groups is not None:
        fit_kwargs["item_groups"] = groups
    chosen, tuning = dict(inherited), []
    stages = spec.get("stages", [{"grid": spec["tune"]}] if "tune" in spec else [])
    started = time.perf_counter()
    if stages:
        stages = [{"holdout": config["tuning"]["holdout"], **stage} for stage in stages]
        chosen, results = staged_search(
            lambda **options: build(spec, seed, options), stages,
            split.llms[train.llm], split.items[train.item], train.correct,
            base=chosen, metric=config["tuning"]["metric"], share=config["tuning"]["share"], seed=seed,
            fit_kwargs=fit_kwargs or None, log=None)
        tuning = [{"holdout": r.holdout, "metric": r.metric, "edges": r.edges,
                   "table": r.table.to_dict(orient="records")} for r in results]
    tune_seconds = time.perf_counter() - started
    start = time.perf_counter()
    estimator = fit_on_split(build(spec, seed, chosen), split, side=side, item_groups=groups)
    fit_seconds = time.perf_counter() - start
    scores = evaluate_on_split(estimator, split)
    return {
        "format": CELL_FORMAT,
        "method": label,
        "options": {k: v for k, v in method_options(spec, seed, chosen).items() if k not in ("progress",)},
        "paper_form": bool(spec.get("paper")),
        "side": spec.get("side"),
        "item_groups": spec.get("item_groups"),
        "embedding_model": DEFAULT_EMBEDDING_MODEL if spec.get("side") == "similarity" else None,
        "chosen": chosen,
        "edges": {name: status for stage in tuning for name, status in stage["edges"].items()},
        "tuning": tuning,
        "tune_seconds": tune_seconds,
        "fit_seconds": fit_seconds,
        "converged": bool(getattr(estimator, "converged_", True)),
        "n_train": len(train),
        "scores": scores,
    }


def noise_floor(split) -> dict:
    """Per test split, the RMSE_m / RMSE_x that even the true per-pair probabilities would show:
    binomial noise of each LLM's (item's) observed mean, ``sqrt(mean a(1-a)/n)`` over entities."""
    floors = {}
    for name in TEST_SPLITS:
        pairs = split.pairs[name]
        if not len(pairs):
            floors[name] = {"floor_m": float("nan"), "floor_x": float("nan")}
            continue
        frame = pd.DataFrame({"llm": pairs.llm, "item": pairs.item, "correct": pairs.correct.astype(float)})
        out = {}
        for key, column in (("floor_m", "llm"), ("floor_x", "item")):
            stats = frame.groupby(column)["correct"].agg(["mean", "count"])
            out[key] = float(np.sqrt(np.mean(stats["mean"] * (1 - stats["mean"]) / stats["count"])))
        floors[name] = out
    return floors


def cell_config(config: dict, dataset_name: str, T: int, seed: int, label: str) -> dict:
    """What decides a cell's result besides the code and the data; its hash is the cell's ``config_hash``."""
    return {"dataset": dataset_name, "dataset_options": config["datasets"][dataset_name], "T": T, "seed": seed,
            "n_test_pairs": config["n_test_pairs"], "tuning": config["tuning"], "method": label,
            "spec": config["methods"][label]}


def run(config: dict, cells: Path, datasets: list[str] | None, deadline: float, log=None,
        t_values: list[int] | None = None, methods: list[str] | None = None, rerun_stale: bool = False,
        allow_dirty: bool = False, seeds: list[int] | None = None) -> bool:
    """Fill missing cells (of ``datasets``, ``t_values``, ``methods`` and ``seeds`` only, if given), and
    with ``rerun_stale`` recompute those of other code or config; False if the deadline stopped it
    before every cell was done. ``log`` (e.g. ``print``) gets one line per cell."""
    log = log or (lambda message: None)
    study = StudyCells(cells, STUDY_CODE, rerun_stale=rerun_stale, allow_dirty=allow_dirty, log=log)

    def needs(folder_parts, label, T, seed, dataset_name) -> bool:
        return study.needs((*folder_parts, label), cell_config(config, dataset_name, T, seed, label))

    unknown = sorted(set(methods or []) - set(config["methods"]))
    if unknown:
        raise ConfigError(f"methods {unknown} not in the config's methods {list(config['methods'])}")
    selected = [label for label in config["methods"] if not methods or label in methods]
    skipped: set[str] = set()
    for dataset_name, options in config["datasets"].items():
        if datasets and dataset_name not in datasets:
            continue
        dataset, side_cache = None, {}
        for T in config["T"]:
            if t_values and T not in t_values:
                continue
            for seed in config["seeds"]:
                if seeds is not None and seed not in seeds:
                    continue
                parts = (dataset_name, f"T{T}", f"seed{seed}")
                todo = [label for label in selected
                        if label not in skipped and needs(parts, label, T, seed, dataset_name)]
                if not todo:
                    continue
                if time.time() > deadline:
                    log("time budget spent; rerun to continue")
                    return False
                if dataset is None:
                    dataset = load_dataset(shared_dataset_path(dataset_name),
                                           unknown_entities=options.get("unknown_entities", "error"), log=None)
                    data_hash = dataset.fingerprint()
                context = SeedContext(dataset, options, T, seed, config["n_test_pairs"], side_cache)
                split = context.split
                split_config = {"dataset": dataset_name, "dataset_options": options, "T": T, "seed": seed,
                                "n_test_pairs": config["n_test_pairs"]}
                study.write({
                    "n_known_llms": split.n_known_llms, "n_known_items": split.n_known_items,
                    "counts": {name: len(p) for name, p in split.pairs.items()},
                    "degree_report": split.degree_report, "log": context.split_log,
                    "noise_floor": noise_floor(split)}, (*parts, "split"), split_config, data_hash=data_hash)
                for label in selected:
                    spec = config["methods"][label]
                    if label not in todo:
                        continue
                    if spec["method"] == "peer" and missing_peers([spec["peer"]]):
                        skipped.add(label)
                        log(f"{label}: {spec['peer']} is not installed (pip install -e \".[peers]\"); its cells are skipped")
                        continue
                    if time.time() > deadline:
                        log("time budget spent; rerun to continue")
                        return False
                    inherited = {}
                    if "inherit" in spec:
                        parent = study.store.path(*parts, spec["inherit"])
                        if not parent.is_file() or needs(parts, spec["inherit"], T, seed, dataset_name):
                            raise ConfigError(f"{label} inherits from {spec['inherit']}, whose cell {parent} is "
                                             "not done at this code; run it first (or select it with --methods)")
                        inherited = study.store.read(*parts, spec["inherit"])["chosen"]
                    cell = study.get((*parts, label), cell_config(config, dataset_name, T, seed, label),
                                     lambda: run_cell(context, label, spec, config, inherited), data_hash=data_hash,
                                     name=f"[{dataset_name} T={T} seed={seed}] {label}")
                    scores = cell["scores"]
                    log(f"[{dataset_name} T={T} seed={seed}] {label}: "
                        + "  ".join(f"{s} {scores[s]['rmse_p']:.4f}/{scores[s]['rmse_m']:.4f}/{scores[s]['rmse_x']:.4f}"
                                    for s in TEST_SPLITS)
                        + f"  (tune {cell['tune_seconds']:.0f} s, fit {cell['fit_seconds']:.1f} s) {cell['chosen']}")
    return True
