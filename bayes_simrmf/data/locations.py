"""Where datasets live: ``$BAYES_SIMRMF_DATA`` or ``../shared/data`` beside the repository."""

from __future__ import annotations

import os
from pathlib import Path


from bayes_simrmf.errors import DataError
from bayes_simrmf.data.common import DATA_DIR_ENV_VAR


# ----------------------------------------------------------------------------- locations


def default_data_dir() -> Path:
    """Folder holding dataset folders: ``$BAYES_SIMRMF_DATA`` if set, else ``<repo>/../shared/data``.

    ``<repo>`` is the folder holding the ``bayes_simrmf`` package, so the default works from
    a source checkout whatever the working directory. The folder need not exist.
    """
    from_env = os.environ.get(DATA_DIR_ENV_VAR)
    if from_env:
        return Path(from_env).expanduser().resolve()
    repo_root = Path(__file__).resolve().parents[2]  # bayes_simrmf/data/locations.py
    return (repo_root.parent / "shared" / "data").resolve()


def shared_dataset_path(name: str) -> Path:
    """Path of dataset folder ``name`` inside :func:`default_data_dir`.

    Raises:
        DataError: the folder does not exist (the message lists the datasets that do).
    """
    data_dir = default_data_dir()
    path = data_dir / name
    if not path.is_dir():
        available = sorted(child.name for child in data_dir.iterdir() if child.is_dir()) if data_dir.is_dir() else []
        where = f"set {DATA_DIR_ENV_VAR} to a folder of dataset folders to look elsewhere"
        raise DataError(
            f"dataset {name!r} not found: no folder {path}; "
            + (f"available in {data_dir}: {available}; " if available else f"{data_dir} holds no datasets; ")
            + where
        )
    return path


