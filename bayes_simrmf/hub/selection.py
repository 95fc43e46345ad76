"""Which LLMs to pull: a models file or a seeded sample (:func:`select_llms`)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bayes_simrmf.errors import ConfigError, DataError


def read_models_file(path: str | os.PathLike[str]) -> list[str]:
    """LLM ids from a text file, one per line (``org/name``); blank lines and ``#`` comments ignored.

    Raises:
        DataError: a line is not of the form ``org/name``, or the file names no LLM.
    """
    ids: list[str] = []
    for line_number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if not re.fullmatch(r"[A-Za-z0-9][\w.\-]*/[\w.\-]+", text):
            raise DataError(f"{path}:{line_number}: {text!r} is not a Hugging Face id of the form org/name")
        if text not in ids:
            ids.append(text)
    if not ids:
        raise DataError(f"{path}: names no LLM")
    return ids


def select_llms(available: Sequence[str], *, models: Sequence[str] | None = None, n_models: int | None = None,
                seed: int = 0) -> list[str]:
    """The LLMs to pull: ``models`` as given; or ``n_models`` drawn without replacement from
    ``available`` (sorted first, so the draw depends only on the set and ``seed``); or all.

    Raises:
        ConfigError: both ``models`` and ``n_models``, or ``n_models < 1``.
    """
    if models is not None and n_models is not None:
        raise ConfigError("give either a list of LLMs or a number of LLMs, not both")
    if models is not None:
        return list(dict.fromkeys(models))
    pool = sorted(set(available))
    if n_models is None or n_models >= len(pool):
        if n_models is not None and n_models < 1:
            raise ConfigError(f"--models must be >= 1, got {n_models}")
        return pool
    if n_models < 1:
        raise ConfigError(f"--models must be >= 1, got {n_models}")
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(pool), size=n_models, replace=False)
    return sorted(pool[i] for i in chosen)


