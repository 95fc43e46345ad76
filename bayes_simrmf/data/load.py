"""Loading a dataset folder (parquet or CSV) or in-memory frames into a validated :class:`Dataset`."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Collection
from pathlib import Path

import pandas as pd

from bayes_simrmf.errors import ConfigError, DataError
from bayes_simrmf.log import Log, sink
from bayes_simrmf.data.common import FILE_EXTENSIONS, RESPONSE_COLUMNS, TABLE_NAMES, UnknownEntityPolicy
from bayes_simrmf.data.dataset import Dataset
from bayes_simrmf.data.locations import default_data_dir
from bayes_simrmf.data.validation import _build_dataset, _build_side_tables
from bayes_simrmf.data.tables import _Table, _check_policy, _ids_table, _in_memory_table, _read_table, _require_columns


# ----------------------------------------------------------------------------- loading


def load_dataset(
    path: str | os.PathLike[str],
    *,
    unknown_entities: UnknownEntityPolicy = "error",
    log: Log | None = None,
    tables: Collection[str] = TABLE_NAMES,
) -> Dataset:
    """Read and validate a dataset folder.

    The folder holds ``responses``, ``items`` and ``llms`` tables, each as ``.parquet`` or
    ``.csv`` (parquet is used when both exist). Required columns: ``llm``, ``item``,
    ``correct`` in responses; ``item`` in items (``text`` and other columns optional and
    kept); ``llm`` in llms. Ids are read as str. ``correct`` may be 0/1 integers, 0.0/1.0
    floats, booleans or their string forms.

    Args:
        path: the dataset folder.
        unknown_entities: policy for responses whose LLM / item is absent from its table
            (see :data:`UnknownEntityPolicy`).
        log: receives one line per correction made (duplicates removed, rows dropped,
            ids added); ``None`` silences it.
        tables: the tables to read: all three, ``("items", "llms")`` or ``("llms",)``; the others are left
            empty (:attr:`Dataset.tables`). Folding new entities in needs only the side tables, and not the
            memory of the responses; without the responses ``unknown_entities`` has nothing to act on.

    Returns:
        The validated :class:`Dataset`, named after the folder.

    Raises:
        ConfigError: ``unknown_entities`` is not a valid policy, or ``tables`` not one of the choices above.
        DataError: the folder or a file is missing, unreadable or invalid.
    """
    _check_policy(unknown_entities)
    tables = tuple(name for name in TABLE_NAMES if name in set(tables))
    if tables not in (TABLE_NAMES, ("items", "llms"), ("llms",)):
        raise ConfigError(f"tables must hold 'llms', and 'items' where it holds 'responses'; got {tables!r}")
    log = sink(log)
    folder = Path(path).expanduser()
    files = table_files(folder, log=log)
    if tables != TABLE_NAMES:
        return _build_side_tables(_read_table(files["items"], "items") if "items" in tables else None,
                                  _read_table(files["llms"], "llms"), name=folder.resolve().name,
                                  source=str(folder.resolve()))
    read = {table_name: _read_table(file, table_name) for table_name, file in files.items()}
    return _build_dataset(
        read["responses"],
        read["items"],
        read["llms"],
        name=folder.resolve().name,
        source=str(folder.resolve()),
        unknown_entities=unknown_entities,
        log=log,
    )


def table_files(folder: Path, *, log: Log | None = None) -> dict[str, Path]:
    """The file of each table (responses, items, llms) in a dataset folder: parquet where both forms exist.

    Raises:
        DataError: the folder is missing or a file, or a table has no file.
    """
    log = sink(log)
    if not folder.is_dir():
        if folder.exists():
            raise DataError(f"{folder} is a file; a dataset is a folder holding responses, items and llms tables")
        hint = ""
        if not folder.is_absolute() and len(folder.parts) == 1 and (default_data_dir() / folder).is_dir():
            hint = f"; did you mean {default_data_dir() / folder}?"
        raise DataError(f"dataset folder not found: {folder.resolve()}{hint}")

    files: dict[str, Path] = {}
    missing: list[str] = []
    for table_name in TABLE_NAMES:
        candidates = [folder / f"{table_name}{extension}" for extension in FILE_EXTENSIONS]
        present = [candidate for candidate in candidates if candidate.is_file()]
        if not present:
            missing.append(f"{table_name} (looked for {', '.join(c.name for c in candidates)})")
            continue
        files[table_name] = present[0]
        if len(present) > 1:
            log(f"{folder.name}: using {present[0].name}; ignoring {', '.join(p.name for p in present[1:])}")
    if missing:
        unfinished = (folder / ".pull").is_dir()
        raise DataError(f"{folder.resolve()}: missing required file(s): {'; '.join(missing)}"
                        + ("; it holds an unfinished pull (.pull/): run the same `bayes-simrmf data pull` again to "
                           "resume it" if unfinished else ""))
    return files


def responses_digest(folder: str | os.PathLike[str]) -> str:
    """sha256 (16 hex characters) of the bytes of a dataset folder's responses file: equal digests mean equal
    responses, so a model that recorded it can trust the folder's responses without reading them."""
    digest = hashlib.sha256()
    with open(table_files(Path(folder).expanduser())["responses"], "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def from_frames(
    responses: pd.DataFrame,
    items: pd.DataFrame | None = None,
    llms: pd.DataFrame | None = None,
    *,
    name: str = "in-memory",
    unknown_entities: UnknownEntityPolicy = "error",
    log: Log | None = None,
) -> Dataset:
    """Validate in-memory frames into a :class:`Dataset`, with the rules of :func:`load_dataset`.

    Args:
        responses: columns ``llm``, ``item``, ``correct`` (extra columns are ignored).
        items: column ``item`` plus side information; ``None`` builds it from the item ids
            in ``responses`` (no text).
        llms: column ``llm`` plus metadata; ``None`` builds it from the LLM ids in ``responses``.
        name: the dataset's name (``"synthetic"``, ...).
        unknown_entities: see :func:`load_dataset`.
        log: see :func:`load_dataset`.

    The input frames are not modified.
    """
    _check_policy(unknown_entities)
    log = sink(log)
    responses_table = _in_memory_table(responses, "responses")
    if items is None or llms is None:
        # Ids must be valid before they can seed a table; the full check follows in _build_dataset.
        _require_columns(responses_table, RESPONSE_COLUMNS)
    items_table = (
        _in_memory_table(items, "items")
        if items is not None
        else _Table(_ids_table(responses_table, "item"), "items (built from responses)", False)
    )
    llms_table = (
        _in_memory_table(llms, "llms")
        if llms is not None
        else _Table(_ids_table(responses_table, "llm"), "llms (built from responses)", False)
    )
    return _build_dataset(
        responses_table,
        items_table,
        llms_table,
        name=name,
        source=f"in-memory frames ({name})",
        unknown_entities=unknown_entities,
        log=log,
    )


