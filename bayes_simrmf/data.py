"""The data model: who answered what, and what we know about each LLM and item.

A :class:`Dataset` holds three tables, validated and normalised once at the boundary so
that every later module (splits, similarity, model) can trust them:

- ``responses``: one row per observed (llm, item) pair, columns ``llm`` (str), ``item``
  (str), ``correct`` (int8, 0 or 1), sorted by llm then item, no duplicate pairs;
- ``items``: column ``item`` (str, unique) plus whatever the source has (``text``,
  ``benchmark``, ``subtask``, ...), sorted by item;
- ``llms``: column ``llm`` (str, unique) plus metadata columns, sorted by llm.

Every LLM and item named in ``responses`` is present in its table; tables may list LLMs or
items without any response (cold entities). :meth:`Dataset.codes` gives the integer
view, ``(llm_idx, item_idx, correct)`` into :meth:`Dataset.llm_ids` / :meth:`Dataset.item_ids`,
that the numerical code works with.

Sources: :func:`load_dataset` reads a folder holding ``responses``, ``items`` and ``llms``
as ``.parquet`` or ``.csv``; :func:`from_frames` takes in-memory pandas frames. Both apply
the same rules: bad input raises :class:`~bayes_simrmf.errors.DataError` naming the file,
column and offending rows or ids, and nothing is dropped without a log line saying how
much and why.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple, get_args

import numpy as np
import pandas as pd

from bayes_simrmf.errors import ConfigError, DataError
from bayes_simrmf.log import Log, sink

__all__ = [
    "DATA_DIR_ENV_VAR",
    "Dataset",
    "UnknownEntityPolicy",
    "default_data_dir",
    "from_frames",
    "load_dataset",
    "shared_dataset_path",
]

UnknownEntityPolicy = Literal["error", "drop", "add"]
"""What to do with responses whose LLM or item is absent from the llms / items table:
``"error"`` refuses, ``"drop"`` removes those response rows, ``"add"`` keeps them and adds
the missing ids to their table with empty (NaN) metadata. ``"drop"`` and ``"add"`` log counts."""

DATA_DIR_ENV_VAR = "BAYES_SIMRMF_DATA"
"""Environment variable naming a folder of dataset folders; overrides ``<repo>/../shared/data``."""

TABLE_NAMES: tuple[str, ...] = ("responses", "items", "llms")
FILE_EXTENSIONS: tuple[str, ...] = (".parquet", ".csv")  # in order of preference
ID_COLUMN = {"items": "item", "llms": "llm"}
RESPONSE_COLUMNS: tuple[str, ...] = ("llm", "item", "correct")
# Read as text from CSV so that ids like "007" keep their zeros (a missing column is ignored).
CSV_TEXT_COLUMNS: dict[str, tuple[str, ...]] = {"responses": ("llm", "item"), "items": ("item",), "llms": ("llm",)}
_MAX_EXAMPLES = 5  # offending rows / ids shown in an error message
_FINGERPRINT_VERSION = b"bayes-simrmf/dataset-fingerprint/v1"



# ----------------------------------------------------------------------------- data model


@dataclass(frozen=True, eq=False)
class Dataset:
    """Validated responses plus item and LLM side information.

    Build one with :func:`load_dataset` or :func:`from_frames`, which validate and
    normalise raw input. Constructing ``Dataset(...)`` directly checks only the
    invariants the rest of the package relies on (listed in the module docstring) and
    raises :class:`DataError` if one fails; it does not repair anything.

    Attributes:
        responses: ``(n_responses, 3)`` frame: ``llm`` str, ``item`` str, ``correct`` int8 0/1;
            sorted by (llm, item), one row per pair.
        items: ``(n_items, ...)`` frame with a unique str ``item`` column, sorted by item.
        llms: ``(n_llms, ...)`` frame with a unique str ``llm`` column, sorted by llm.
        name: short name, e.g. the folder name or ``"synthetic"``.
        source: where the data came from (a path or a description).
    """

    responses: pd.DataFrame
    items: pd.DataFrame
    llms: pd.DataFrame
    name: str = "in-memory"
    source: str = ""
    # Derived once in __post_init__; read-only arrays, not part of the constructor.
    _llm_ids: np.ndarray = field(init=False, repr=False)
    _item_ids: np.ndarray = field(init=False, repr=False)
    _codes: tuple[np.ndarray, np.ndarray, np.ndarray] = field(init=False, repr=False)
    _fingerprint: list[str] = field(init=False, repr=False)  # lazily filled one-element cache

    def __post_init__(self) -> None:
        where = f"Dataset {self.name!r}"
        for table_name, frame, columns in (
            ("responses", self.responses, RESPONSE_COLUMNS),
            ("items", self.items, ("item",)),
            ("llms", self.llms, ("llm",)),
        ):
            if not isinstance(frame, pd.DataFrame):
                raise DataError(f"{where}: {table_name} must be a pandas DataFrame, got {type(frame).__name__}")
            missing = [column for column in columns if column not in frame.columns]
            if missing:
                raise DataError(
                    f"{where}: {table_name} lacks column(s) {missing}; columns found: {list(frame.columns)}"
                )
        if len(self.responses) == 0:
            raise DataError(f"{where}: responses has no rows")

        llm_ids = _sorted_unique_ids(self.llms["llm"], f"{where}: llms", "llm")
        item_ids = _sorted_unique_ids(self.items["item"], f"{where}: items", "item")
        llm_idx = _positions_in(self.responses["llm"], llm_ids)
        item_idx = _positions_in(self.responses["item"], item_ids)
        for column, positions in (("llm", llm_idx), ("item", item_idx)):
            unknown = positions < 0
            if unknown.any():
                examples = _format_examples(pd.unique(self.responses[column].to_numpy()[unknown]))
                raise DataError(
                    f"{where}: {int(unknown.sum())} responses name a {column} absent from the "
                    f"{column}s table: {examples}; build the Dataset with from_frames() to choose a policy"
                )
        correct_values = self.responses["correct"].to_numpy()
        if correct_values.dtype != np.int8 or not np.isin(correct_values, (0, 1)).all():
            raise DataError(
                f"{where}: responses column 'correct' must be int8 with values 0/1 "
                f"(got dtype {correct_values.dtype}); build the Dataset with from_frames() to parse it"
            )
        # Sorted by (llm, item) with unique pairs <=> the pair key strictly increases.
        pair_key = llm_idx.astype(np.int64) * len(item_ids) + item_idx
        if len(pair_key) > 1 and not (np.diff(pair_key) > 0).all():
            raise DataError(
                f"{where}: responses must be sorted by (llm, item) with one row per pair; "
                "build the Dataset with from_frames() to sort and deduplicate"
            )

        correct = np.ascontiguousarray(correct_values, dtype=np.int8)
        for array in (llm_ids, item_ids, llm_idx, item_idx, correct):
            array.flags.writeable = False  # shared caches: callers must not mutate them
        object.__setattr__(self, "_llm_ids", llm_ids)
        object.__setattr__(self, "_item_ids", item_ids)
        object.__setattr__(self, "_codes", (llm_idx, item_idx, correct))
        object.__setattr__(self, "_fingerprint", [])

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, n_llms={self.n_llms}, n_items={self.n_items}, "
            f"n_responses={self.n_responses}, source={self.source!r})"
        )

    # ------------------------------------------------------------------ sizes

    @property
    def n_llms(self) -> int:
        """Number of LLMs in the llms table (with or without responses)."""
        return len(self._llm_ids)

    @property
    def n_items(self) -> int:
        """Number of items in the items table (with or without responses)."""
        return len(self._item_ids)

    @property
    def n_responses(self) -> int:
        """Number of observed (llm, item) pairs."""
        return len(self._codes[2])

    @property
    def mean_correct(self) -> float:
        """Fraction of observed responses that are correct, in [0, 1]."""
        return float(self._codes[2].mean())

    # ------------------------------------------------------------------ integer view

    def llm_ids(self) -> np.ndarray:
        """All LLM ids of the llms table, sorted; shape ``(n_llms,)``, object array of str, read-only."""
        return self._llm_ids

    def item_ids(self) -> np.ndarray:
        """All item ids of the items table, sorted; shape ``(n_items,)``, object array of str, read-only."""
        return self._item_ids

    def codes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Integer view of ``responses``, row for row.

        Returns:
            ``(llm_idx, item_idx, correct)``, each of shape ``(n_responses,)`` and read-only:
            int32 positions into :meth:`llm_ids` and :meth:`item_ids`, and int8 0/1.
        """
        return self._codes

    def fingerprint(self) -> str:
        """Hash of the responses and of the LLM and item id lists: 16 hex characters of sha256.

        Equal for equal data on any platform and run (fixed byte order, ids UTF-8 encoded);
        any changed response, added or removed pair, LLM or item changes it. Metadata
        columns (text, model cards) are not included.
        """
        if not self._fingerprint:
            digest = hashlib.sha256(_FINGERPRINT_VERSION)
            for ids in (self._llm_ids, self._item_ids):
                digest.update(len(ids).to_bytes(8, "little"))
                # NUL cannot occur inside a sensibly named id, so the join is unambiguous.
                digest.update("\0".join(ids.tolist()).encode("utf-8"))
            llm_idx, item_idx, correct = self._codes
            digest.update(len(correct).to_bytes(8, "little"))
            digest.update(llm_idx.astype("<i4").tobytes())
            digest.update(item_idx.astype("<i4").tobytes())
            digest.update(correct.astype("i1").tobytes())
            self._fingerprint.append(digest.hexdigest()[:16])
        return self._fingerprint[0]

    def summary(self) -> str:
        """One short paragraph: sizes, observed pairs, density, mean correct, benchmarks."""
        llm_idx, item_idx, _ = self._codes
        density = self.n_responses / (self.n_llms * self.n_items)
        llms_observed = len(np.unique(llm_idx))
        items_observed = len(np.unique(item_idx))
        text = (
            f"{self.name}: {self.n_llms:,} LLMs x {self.n_items:,} items, "
            f"{self.n_responses:,} observed pairs (density {density:.1%}), "
            f"mean correct {self.mean_correct:.3f}; "
            f"{llms_observed:,} LLMs and {items_observed:,} items have responses"
        )
        if "benchmark" in self.items.columns:
            counts = self.items["benchmark"].fillna("<missing>").astype(str).value_counts()
            shown = ", ".join(f"{benchmark} ({count:,} items)" for benchmark, count in counts.head(6).items())
            more = f" and {len(counts) - 6} more" if len(counts) > 6 else ""
            text += f"; benchmarks: {shown}{more}"
        return text + "."

    def subset(self, llms: Iterable[str] | None = None, items: Iterable[str] | None = None) -> Dataset:
        """Restrict to the given LLM and/or item ids (``None`` keeps all).

        The llms / items tables keep exactly the given ids (also those without responses);
        responses keep the rows whose LLM and item are both kept.

        Raises:
            DataError: an id is not in this dataset, or no response is left.
        """
        llm_idx, item_idx, _ = self._codes
        keep_llm = self._selection_mask(llms, self._llm_ids, "llm")
        keep_item = self._selection_mask(items, self._item_ids, "item")
        keep_rows = keep_llm[llm_idx] & keep_item[item_idx]
        if not keep_rows.any():
            raise DataError(
                f"Dataset {self.name!r}: subset of {int(keep_llm.sum())} LLMs x {int(keep_item.sum())} items "
                "has no responses"
            )
        described = []
        if llms is not None:
            described.append(f"{int(keep_llm.sum())} LLMs")
        if items is not None:
            described.append(f"{int(keep_item.sum())} items")
        return Dataset(
            responses=self.responses.loc[keep_rows].reset_index(drop=True),
            items=self.items.loc[keep_item].reset_index(drop=True),
            llms=self.llms.loc[keep_llm].reset_index(drop=True),
            name=self.name,
            source=f"{self.source} [subset: {', '.join(described) or 'all'}]",
        )

    def with_entities(self, items: pd.DataFrame | None = None, llms: pd.DataFrame | None = None) -> Dataset:
        """A copy whose items / llms tables also hold these new rows (entities without responses, e.g.
        questions to fold in from their text, or LLMs from their metadata).

        The new rows need the id column (``item`` / ``llm``); other columns are matched by name and
        missing ones left empty. ``source`` is kept, so files beside the data (precomputed embeddings)
        are still found.

        Raises:
            DataError: an id column is missing or empty, an id repeats, or an id is already in the dataset.
        """
        tables = {"items": self.items, "llms": self.llms}
        for table_name, id_column, extra in (("items", "item", items), ("llms", "llm", llms)):
            if extra is None or len(extra) == 0:
                continue
            where = f"Dataset {self.name!r}: new {table_name}"
            if id_column not in extra.columns:
                raise DataError(f"{where} lack the {id_column!r} column; columns found: {list(extra.columns)}")
            ids = extra[id_column]
            if ids.isna().any():
                raise DataError(f"{where}: {int(ids.isna().sum())} row(s) have no {id_column} id")
            ids = _ids_as_str(ids)
            repeated = pd.unique(ids[ids.duplicated()].to_numpy())
            if len(repeated):
                raise DataError(f"{where}: ids repeat: {_format_examples(repeated)}")
            present = _positions_in(ids, self._llm_ids if id_column == "llm" else self._item_ids) >= 0
            if present.any():
                raise DataError(f"{where}: {int(present.sum())} id(s) are already in the dataset: "
                                f"{_format_examples(ids.to_numpy()[present])}")
            extra = extra.copy()
            extra[id_column] = ids.to_numpy()
            combined = pd.concat([tables[table_name], extra], ignore_index=True, sort=False)
            tables[table_name] = combined.sort_values(id_column, kind="stable").reset_index(drop=True)
        return Dataset(responses=self.responses, items=tables["items"], llms=tables["llms"], name=self.name,
                       source=self.source)

    def _selection_mask(self, wanted: Iterable[str] | None, all_ids: np.ndarray, kind: str) -> np.ndarray:
        """Boolean mask over ``all_ids`` of the ids in ``wanted`` (all True for None)."""
        if wanted is None:
            return np.ones(len(all_ids), dtype=bool)
        if isinstance(wanted, str):  # a bare string would otherwise be read as its characters
            wanted = [wanted]
        wanted_ids = pd.Series(list(wanted), dtype=object).astype(str)
        positions = _positions_in(wanted_ids, all_ids)
        if (positions < 0).any():
            unknown = pd.unique(wanted_ids.to_numpy()[positions < 0])
            raise DataError(
                f"Dataset {self.name!r}: subset() got {len(unknown)} {kind} id(s) not in the dataset: "
                f"{_format_examples(unknown)}"
            )
        mask = np.zeros(len(all_ids), dtype=bool)
        mask[positions] = True
        return mask


# ----------------------------------------------------------------------------- locations


def default_data_dir() -> Path:
    """Folder holding dataset folders: ``$BAYES_SIMRMF_DATA`` if set, else ``<repo>/../shared/data``.

    ``<repo>`` is the folder holding the ``bayes_simrmf`` package, so the default works from
    a source checkout whatever the working directory. The folder need not exist.
    """
    from_env = os.environ.get(DATA_DIR_ENV_VAR)
    if from_env:
        return Path(from_env).expanduser().resolve()
    repo_root = Path(__file__).resolve().parent.parent
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


# ----------------------------------------------------------------------------- loading


class _Table(NamedTuple):
    """A raw table and how to name it in messages."""

    frame: pd.DataFrame
    label: str  # file path, or "<table> (in-memory frame)"
    is_csv: bool  # rows are then also reported as CSV line numbers (header is line 1)


def load_dataset(
    path: str | os.PathLike[str],
    *,
    unknown_entities: UnknownEntityPolicy = "error",
    log: Log | None = None,
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

    Returns:
        The validated :class:`Dataset`, named after the folder.

    Raises:
        ConfigError: ``unknown_entities`` is not a valid policy.
        DataError: the folder or a file is missing, unreadable or invalid.
    """
    _check_policy(unknown_entities)
    log = sink(log)
    folder = Path(path).expanduser()
    if not folder.is_dir():
        if folder.exists():
            raise DataError(f"{folder} is a file; load_dataset() expects a folder holding responses, items, llms")
        hint = ""
        if not folder.is_absolute() and len(folder.parts) == 1 and (default_data_dir() / folder).is_dir():
            hint = f"; did you mean shared_dataset_path({str(folder)!r}) = {default_data_dir() / folder}?"
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
        raise DataError(f"{folder.resolve()}: missing required file(s): {'; '.join(missing)}")

    tables = {table_name: _read_table(file, table_name) for table_name, file in files.items()}
    return _build_dataset(
        tables["responses"],
        tables["items"],
        tables["llms"],
        name=folder.resolve().name,
        source=str(folder.resolve()),
        unknown_entities=unknown_entities,
        log=log,
    )


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


# ----------------------------------------------------------------------------- validation


def _build_dataset(
    responses: _Table,
    items: _Table,
    llms: _Table,
    *,
    name: str,
    source: str,
    unknown_entities: UnknownEntityPolicy,
    log: Log,
) -> Dataset:
    """Validate and normalise the three raw tables (the one place the loading rules live)."""
    items_frame = _validate_id_table(items, "item")
    llms_frame = _validate_id_table(llms, "llm")

    _require_columns(responses, RESPONSE_COLUMNS)
    if len(responses.frame) == 0:
        raise DataError(f"{responses.label}: no responses (the table has no rows)")
    _reject_missing_values(responses, RESPONSE_COLUMNS)
    correct = _parse_correct(responses)
    llm_column = _ids_as_str(responses.frame["llm"])
    item_column = _ids_as_str(responses.frame["item"])
    extra_columns = [column for column in responses.frame.columns if column not in RESPONSE_COLUMNS]
    if extra_columns:
        log(f"{name}: ignoring extra responses column(s) {extra_columns}")

    # Resolve ids against the tables; -1 marks an id the table lacks.
    llm_ids = np.sort(llms_frame["llm"].to_numpy(dtype=object))
    item_ids = np.sort(items_frame["item"].to_numpy(dtype=object))
    llm_idx = _positions_in(llm_column, llm_ids)
    item_idx = _positions_in(item_column, item_ids)
    unknown_llm, unknown_item = llm_idx < 0, item_idx < 0
    if unknown_llm.any() or unknown_item.any():
        problems = [
            _describe_unknown(values, mask, column, table.label)
            for column, values, mask, table in (
                ("llm", llm_column, unknown_llm, llms),
                ("item", item_column, unknown_item, items),
            )
            if mask.any()
        ]
        if unknown_entities == "error":
            raise DataError(
                f"{responses.label}: responses name ids absent from their tables: {'; '.join(problems)}. "
                "Pass unknown_entities='drop' to drop these responses, or unknown_entities='add' to keep "
                "them and add the ids to their table with empty metadata."
            )
        if unknown_entities == "drop":
            keep = ~(unknown_llm | unknown_item)
            log(
                f"{name}: dropped {int((~keep).sum()):,} of {len(keep):,} responses "
                f"(unknown_entities='drop'): {'; '.join(problems)}"
            )
            if not keep.any():
                raise DataError(
                    f"{responses.label}: no responses left after dropping those with unknown ids: "
                    f"{'; '.join(problems)}"
                )
            llm_column, item_column = llm_column[keep].reset_index(drop=True), item_column[keep].reset_index(drop=True)
            correct = correct[keep]
            row_numbers = np.flatnonzero(keep)
        else:  # "add"
            if unknown_llm.any():
                llms_frame = _add_ids(llms_frame, "llm", llm_column[unknown_llm])
            if unknown_item.any():
                items_frame = _add_ids(items_frame, "item", item_column[unknown_item])
            log(
                f"{name}: added ids to their tables with empty metadata (unknown_entities='add'): "
                f"{'; '.join(problems)}"
            )
            llm_ids = np.sort(llms_frame["llm"].to_numpy(dtype=object))
            item_ids = np.sort(items_frame["item"].to_numpy(dtype=object))
            row_numbers = np.arange(len(correct))
        llm_idx = _positions_in(llm_column, llm_ids)
        item_idx = _positions_in(item_column, item_ids)
    else:
        row_numbers = np.arange(len(correct))

    # Sort by (llm, item) through integer pair keys: fast, and puts duplicates side by side.
    pair_key = llm_idx.astype(np.int64) * len(item_ids) + item_idx
    order = np.argsort(pair_key, kind="stable")
    sorted_key, sorted_correct = pair_key[order], correct[order]
    repeats_previous = sorted_key[1:] == sorted_key[:-1]
    conflicting = repeats_previous & (sorted_correct[1:] != sorted_correct[:-1])
    if conflicting.any():
        conflict_keys = np.unique(sorted_key[1:][conflicting])
        examples = []
        for key in conflict_keys[:_MAX_EXAMPLES]:
            positions = order[sorted_key == key]
            rows, values = row_numbers[positions], correct[positions]
            examples.append(
                f"(llm={llm_ids[key // len(item_ids)]!r}, item={item_ids[key % len(item_ids)]!r}) "
                f"at {_rows_phrase(responses, rows)} with correct={values.tolist()}"
            )
        more = f" and {len(conflict_keys) - _MAX_EXAMPLES} more" if len(conflict_keys) > _MAX_EXAMPLES else ""
        raise DataError(
            f"{responses.label}: {len(conflict_keys)} (llm, item) pair(s) appear more than once with "
            f"different 'correct' values: {'; '.join(examples)}{more}"
        )
    keep_first = np.concatenate([[True], ~repeats_previous])
    n_duplicates = int((~keep_first).sum())
    if n_duplicates:
        log(f"{name}: removed {n_duplicates:,} duplicate responses (same llm, item and correct value)")
    kept = order[keep_first]
    llm_idx, item_idx, correct = llm_idx[kept], item_idx[kept], correct[kept]

    responses_frame = pd.DataFrame(
        {
            # A numpy take of object ids, then one conversion, beats taking from Arrow strings.
            "llm": pd.Series(llm_ids[llm_idx], dtype=object).astype(str),
            "item": pd.Series(item_ids[item_idx], dtype=object).astype(str),
            "correct": correct,
        }
    )
    return Dataset(
        responses=responses_frame,
        items=_sorted_by(items_frame, "item"),
        llms=_sorted_by(llms_frame, "llm"),
        name=name,
        source=source,
    )


def _validate_id_table(table: _Table, id_column: str) -> pd.DataFrame:
    """Check an items / llms table: id column present, no missing or duplicate ids; ids as str."""
    _require_columns(table, (id_column,))
    _reject_missing_values(table, (id_column,))
    ids = _ids_as_str(table.frame[id_column])
    duplicated = ids.duplicated(keep=False).to_numpy()
    if duplicated.any():
        counts = ids[duplicated].value_counts()
        examples = [f"{value!r} ({count} rows)" for value, count in counts.head(_MAX_EXAMPLES).items()]
        more = f" and {len(counts) - _MAX_EXAMPLES} more" if len(counts) > _MAX_EXAMPLES else ""
        raise DataError(
            f"{table.label}: column {id_column!r} must be unique; {len(counts)} id(s) repeat: "
            f"{', '.join(examples)}{more} (at {_rows_phrase(table, np.flatnonzero(duplicated))})"
        )
    frame = table.frame.copy()
    frame[id_column] = ids.to_numpy()
    return frame.reset_index(drop=True)


def _require_columns(table: _Table, columns: Sequence[str]) -> None:
    missing = [column for column in columns if column not in table.frame.columns]
    if missing:
        raise DataError(
            f"{table.label}: missing required column(s) {missing}; columns found: {list(table.frame.columns)}"
        )


def _reject_missing_values(table: _Table, columns: Sequence[str]) -> None:
    """Raise naming rows where a required column is NaN / None / empty text."""
    problems = []
    for column in columns:
        values = table.frame[column]
        missing = values.isna().to_numpy(dtype=bool)
        if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
            # An empty or blank id is as unusable as a missing one; CSV readers may yield either.
            try:
                blank = values.str.strip().eq("")  # vectorised; non-str entries give False
            except AttributeError:  # .str refuses columns mixing str with other objects
                blank = values.map(lambda value: isinstance(value, str) and not value.strip())
            missing = missing | blank.fillna(False).to_numpy(dtype=bool)
        if missing.any():
            problems.append(
                f"column {column!r} is missing (NaN/None/empty) in {int(missing.sum())} row(s): "
                f"{_rows_phrase(table, np.flatnonzero(missing))}"
            )
    if problems:
        raise DataError(f"{table.label}: {'; '.join(problems)}")


def _parse_correct(table: _Table) -> np.ndarray:
    """``correct`` column as int8 0/1, shape ``(n_rows,)``; raise naming rows with other values.

    Accepted: bools, numbers equal to 0 or 1, and strings of those ("0", "1.0", "true", "False").
    """
    values = table.frame["correct"]
    if pd.api.types.is_bool_dtype(values):
        return values.to_numpy(dtype=np.int8)
    if pd.api.types.is_numeric_dtype(values):
        numeric = values.to_numpy(dtype=np.float64)
    else:
        as_text = values.map(lambda value: value.strip().lower() if isinstance(value, str) else value)
        as_text = as_text.replace({"true": 1, "false": 0}).infer_objects()
        numeric = pd.to_numeric(as_text, errors="coerce").to_numpy(dtype=np.float64)
    invalid = ~((numeric == 0) | (numeric == 1))
    if invalid.any():
        rows = np.flatnonzero(invalid)
        shown = _format_examples(values.iloc[rows[:_MAX_EXAMPLES]].tolist())
        raise DataError(
            f"{table.label}: column 'correct' must be 0 or 1 (bool, 0.0/1.0 and '0'/'1' are fine); "
            f"{len(rows)} row(s) hold other values: {_rows_phrase(table, rows)}; values there: {shown}"
        )
    return numeric.astype(np.int8)


def _describe_unknown(values: pd.Series, mask: np.ndarray, column: str, table_label: str) -> str:
    """'N responses name K llm id(s) absent from <table>: 'a' (3 rows), ...'."""
    counts = values[mask].value_counts()
    examples = [f"{value!r} ({count:,} rows)" for value, count in counts.head(_MAX_EXAMPLES).items()]
    more = f" and {len(counts) - _MAX_EXAMPLES} more" if len(counts) > _MAX_EXAMPLES else ""
    return (
        f"{int(mask.sum()):,} responses name {len(counts)} {column} id(s) absent from {table_label}: "
        f"{', '.join(examples)}{more}"
    )


def _add_ids(frame: pd.DataFrame, id_column: str, new_ids: pd.Series) -> pd.DataFrame:
    """``frame`` plus one row per distinct id in ``new_ids``, other columns NaN."""
    additions = pd.DataFrame({id_column: pd.unique(new_ids.to_numpy())})
    return pd.concat([frame, additions], ignore_index=True)


# ----------------------------------------------------------------------------- helpers


def _check_policy(unknown_entities: object) -> None:
    valid = get_args(UnknownEntityPolicy)
    if unknown_entities not in valid:
        raise ConfigError(f"unknown_entities must be one of {list(valid)}, got {unknown_entities!r}")


def _read_table(file: Path, table_name: str) -> _Table:
    """Read one parquet or CSV file; id columns of CSVs are read as text so '007' stays '007'."""
    try:
        if file.suffix == ".parquet":
            frame = pd.read_parquet(file, engine="pyarrow")
        else:
            frame = pd.read_csv(file, dtype={column: str for column in CSV_TEXT_COLUMNS[table_name]})
    except Exception as error:  # parser errors come in many types; the file name is what helps
        raise DataError(f"{file}: cannot read {table_name} table: {type(error).__name__}: {error}") from error
    return _Table(frame, str(file), is_csv=file.suffix == ".csv")


def _in_memory_table(frame: object, table_name: str) -> _Table:
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{table_name}: expected a pandas DataFrame, got {type(frame).__name__}")
    # Row positions, not the caller's index labels, are what error messages report.
    return _Table(frame.reset_index(drop=True), f"{table_name} (in-memory frame)", is_csv=False)


def _ids_table(responses: _Table, id_column: str) -> pd.DataFrame:
    """A side-information table holding only the distinct valid ids of a responses column."""
    _reject_missing_values(responses, (id_column,))
    return pd.DataFrame({id_column: pd.unique(_ids_as_str(responses.frame[id_column]).to_numpy())})


def _ids_as_str(values: pd.Series) -> pd.Series:
    """Ids as str; integral floats (ints that met a NaN) print without '.0'."""
    if pd.api.types.is_float_dtype(values) and np.all(np.mod(values.to_numpy(), 1) == 0):
        values = values.astype(np.int64)
    if pd.api.types.is_string_dtype(values) and not pd.api.types.is_object_dtype(values):
        return values.reset_index(drop=True)
    return values.astype(str).reset_index(drop=True)


def _sorted_unique_ids(ids: pd.Series, where: str, column: str) -> np.ndarray:
    """Sorted ids as an object array of str; raise if any is missing, not str, or repeated."""
    values = ids.to_numpy(dtype=object)
    not_str = np.fromiter((not isinstance(value, str) for value in values), dtype=bool, count=len(values))
    if not_str.any():
        raise DataError(
            f"{where}: column {column!r} must hold str ids; {int(not_str.sum())} do not: "
            f"{_format_examples(values[not_str])}"
        )
    sorted_ids = np.sort(values)
    repeated = sorted_ids[1:][sorted_ids[1:] == sorted_ids[:-1]]
    if len(repeated):
        raise DataError(f"{where}: column {column!r} must be unique; repeated: {_format_examples(pd.unique(repeated))}")
    return sorted_ids


def _positions_in(values: pd.Series, sorted_ids: np.ndarray) -> np.ndarray:
    """Position of each value in ``sorted_ids`` (int32, -1 where absent), shape ``(len(values),)``.

    Factorising first means the lookup runs once per distinct id, not once per row.
    """
    # Factorising the Series itself (not an object array) lets Arrow-backed strings stay in Arrow.
    row_codes, distinct = pd.factorize(values)
    distinct_positions = pd.Index(sorted_ids, dtype=object).get_indexer(np.asarray(distinct, dtype=object))
    return distinct_positions.astype(np.int32)[row_codes]


def _sorted_by(frame: pd.DataFrame, id_column: str) -> pd.DataFrame:
    order = np.argsort(frame[id_column].to_numpy(dtype=object), kind="stable")
    sorted_frame = frame.iloc[order].reset_index(drop=True)
    sorted_frame[id_column] = sorted_frame[id_column].astype(str)
    return sorted_frame


def _rows_phrase(table: _Table, rows: np.ndarray) -> str:
    """'rows 3, 7 (CSV lines 5, 9)' for up to a few 0-based row positions, plus how many more."""
    shown = [int(row) for row in rows[:_MAX_EXAMPLES]]
    more = f" and {len(rows) - _MAX_EXAMPLES} more" if len(rows) > _MAX_EXAMPLES else ""
    phrase = f"row{'s' if len(shown) > 1 else ''} {', '.join(map(str, shown))}"
    if table.is_csv:  # header is line 1, row 0 is line 2
        phrase += f" (CSV line{'s' if len(shown) > 1 else ''} {', '.join(str(row + 2) for row in shown)})"
    return phrase + more


def _format_examples(values: Iterable[object]) -> str:
    """'a', 'b', ... and N more."""
    values = list(values)
    shown = ", ".join(repr(value) for value in values[:_MAX_EXAMPLES])
    return shown + (f" and {len(values) - _MAX_EXAMPLES} more" if len(values) > _MAX_EXAMPLES else "")
