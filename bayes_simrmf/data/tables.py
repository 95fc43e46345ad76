"""Reading tables and handling id columns (text ids keep their zeros; sorted, unique, located)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple, get_args

import numpy as np
import pandas as pd

from bayes_simrmf.errors import ConfigError, DataError
from bayes_simrmf.data.common import CSV_TEXT_COLUMNS, UnknownEntityPolicy, _MAX_EXAMPLES


# ----------------------------------------------------------------------------- helpers


class _Table(NamedTuple):
    """A raw table and how to name it in messages."""

    frame: pd.DataFrame
    label: str  # file path, or "<table> (in-memory frame)"
    is_csv: bool  # rows are then also reported as CSV line numbers (header is line 1)


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


def decode_text_column(frame: pd.DataFrame, column: str, label: str, rows_phrase=None) -> pd.DataFrame:
    """``frame`` with the bytes of ``column`` decoded as UTF-8 (a copy if any were); DataError naming the rows
    whose bytes are not UTF-8. ``rows_phrase(rows)`` words the row positions (default 'rows 3, 7')."""
    if column not in frame.columns or frame[column].dtype != object:
        return frame
    values = frame[column].to_numpy()
    is_bytes = np.fromiter((isinstance(value, (bytes, bytearray)) for value in values), bool, len(values))
    if not is_bytes.any():
        return frame
    decoded, bad = values.copy(), []
    for row in np.flatnonzero(is_bytes):
        try:
            decoded[row] = bytes(values[row]).decode("utf-8")
        except UnicodeDecodeError:
            bad.append(row)
    if bad:
        where = rows_phrase(np.asarray(bad)) if rows_phrase else f"rows {', '.join(map(str, bad[:_MAX_EXAMPLES]))}" + (
            f" and {len(bad) - _MAX_EXAMPLES} more" if len(bad) > _MAX_EXAMPLES else "")
        ids = f" (items {_format_examples(frame['item'].to_numpy()[bad])})" if "item" in frame.columns else ""
        raise DataError(f"{label}: column {column!r} holds bytes that are not UTF-8 text in {len(bad)} row(s): "
                        f"{where}{ids}; store the texts as UTF-8 strings")
    frame = frame.copy()
    frame[column] = decoded
    return frame
