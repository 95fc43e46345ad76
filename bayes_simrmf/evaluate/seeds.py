"""The protocol's seeds for studies built on Table 2: its splits, specs and chosen hyper-parameters.

A study that looks closer at one of Table 2's methods (calibration of its intervals, the spread of its
fold-in, adaptive testing of new LLMs) should see what Table 2 saw: the same split of each dataset × T ×
seed and the hyper-parameters Table 2 chose for that seed on its own validation pairs. :class:`ProtocolSeeds`
gives both, loading each dataset once, so no study copies a split recipe or a tuned value by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

from bayes_simrmf.data import load_dataset, shared_dataset_path
from bayes_simrmf.errors import ConfigError
from bayes_simrmf.evaluate.runner import SeedContext
from bayes_simrmf.evaluate.study import REPO_ROOT

#: Table 2's config and cells, relative to the repository root.
TABLE2_CONFIG = "experiments/configs/table2.json"
TABLE2_CELLS = "experiments/results/table2_cells"


class ProtocolSeeds:
    """Splits, method specs and chosen hyper-parameters of the Table 2 config ``config`` (a path relative
    to ``root`` or a dict) and its cells under ``cells``."""

    def __init__(self, config: str | Path | dict = TABLE2_CONFIG, cells: str | Path = TABLE2_CELLS,
                 root: Path = REPO_ROOT) -> None:
        self.config = config if isinstance(config, dict) else json.loads((root / config).read_text())
        self.cells = root / cells
        self._datasets: dict[str, object] = {}
        self._side: dict[str, dict] = {}
        self._context: tuple[tuple, SeedContext] | None = None

    @classmethod
    def of(cls, study_config: dict) -> "ProtocolSeeds":
        """The seeds a study config names in its ``table2`` block (``{"config": ..., "cells": ...}``)."""
        return cls(study_config["table2"]["config"], study_config["table2"]["cells"])

    def get(self, study, parts, cell: dict, run_cell, **kwargs) -> dict | None:
        """``study.get`` (a :class:`~bayes_simrmf.evaluate.study.StudyCells`) of a cell whose config came from
        :meth:`cell_config`: ``run_cell(context, cell)`` on that cell's dataset, T and seed, the dataset's
        fingerprint as its data hash; ``kwargs`` go to ``study.get``."""
        name, T, seed = cell["dataset"], cell["T"], cell["seed"]
        return study.get(parts, cell, lambda: run_cell(self.context(name, T, seed), cell),
                         data_hash=lambda: self.dataset(name).fingerprint(), **kwargs)

    def options(self, dataset: str) -> dict:
        """The config's options for ``dataset`` (known counts, how unknown entities are read)."""
        if dataset not in self.config["datasets"]:
            raise ConfigError(f"{dataset!r} is not a dataset of the Table 2 config (it has {list(self.config['datasets'])})")
        return self.config["datasets"][dataset]

    def spec(self, label: str) -> dict:
        """The config's spec of the method ``label``."""
        if label not in self.config["methods"]:
            raise ConfigError(f"{label!r} is not a method of the Table 2 config (it has {list(self.config['methods'])})")
        return self.config["methods"][label]

    def dataset(self, name: str):
        """The dataset ``name``, loaded once, as Table 2 reads it."""
        if name not in self._datasets:
            self._datasets[name] = load_dataset(
                shared_dataset_path(name), unknown_entities=self.options(name).get("unknown_entities", "error"), log=None)
        return self._datasets[name]

    def context(self, dataset: str, T: int, seed: int) -> SeedContext:
        """Table 2's split of ``dataset`` for ``T`` and ``seed`` (the last one asked for is kept; side
        information is shared across seeds)."""
        key = (dataset, T, seed)
        if self._context is None or self._context[0] != key:
            self._context = key, SeedContext(self.dataset(dataset), self.options(dataset), T, seed,
                                             self.config["n_test_pairs"], self._side.setdefault(dataset, {}))
        return self._context[1]

    def chosen(self, dataset: str, T: int, seed: int, label: str) -> dict:
        """The hyper-parameters Table 2 chose for ``label`` on this dataset, T and seed."""
        path = self.cells / dataset / f"T{T}" / f"seed{seed}" / f"{label}.json"
        if not path.is_file():
            raise ConfigError(f"{path} is missing: run Table 2 for {dataset} T={T} seed {seed} {label} first "
                              "(experiments/run_protocol.py)")
        return json.loads(path.read_text())["chosen"]

    def cell_config(self, dataset: str, T: int, seed: int, labels) -> dict:
        """What a study's cell on this seed inherits from Table 2 (for its config hash): the dataset's
        options, the split's settings, and each method's spec and chosen hyper-parameters."""
        return {"dataset": dataset, "dataset_options": self.options(dataset), "T": T, "seed": seed,
                "n_test_pairs": self.config["n_test_pairs"],
                "methods": {label: {"spec": self.spec(label), "chosen": self.chosen(dataset, T, seed, label)}
                            for label in labels}}
