"""Validation of the tables: ids, required columns, missing values, 0/1 answers, unknown entities."""

from __future__ import annotations

from typing import NamedTuple, NoReturn

import numpy as np
import pandas as pd

from bayes_simrmf.errors import DataError
from bayes_simrmf.log import Log
from bayes_simrmf.data.common import RESPONSE_COLUMNS, UnknownEntityPolicy, _MAX_EXAMPLES
from bayes_simrmf.data.dataset import Dataset
from bayes_simrmf.data.tables import (
    _Table,
    _format_examples,
    _ids_as_str,
    _positions_in,
    _reject_missing_values,
    _require_columns,
    _rows_phrase,
    _sorted_by,
    decode_text_column,
)


# ----------------------------------------------------------------------------- validation


class _Responses(NamedTuple):
    """The responses' columns: llm and item ids (str), 0/1 answers (int8), and each row's number in the table."""

    llm: pd.Series
    item: pd.Series
    correct: np.ndarray
    rows: np.ndarray


class _Codes(NamedTuple):
    """The tables' sorted ids, and each response's position among them (-1 marks an id the table lacks)."""

    llm_ids: np.ndarray
    item_ids: np.ndarray
    llm_idx: np.ndarray
    item_idx: np.ndarray


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
    items_frame = decode_text_column(_validate_id_table(items, "item"), "text", items.label,
                                     lambda rows: _rows_phrase(items, rows))
    llms_frame = _validate_id_table(llms, "llm")
    columns = _read_responses(responses, name=name, log=log)
    codes = _encode(columns, llms_frame, items_frame)
    unknown_llm, unknown_item = codes.llm_idx < 0, codes.item_idx < 0
    if unknown_llm.any() or unknown_item.any():
        problems = "; ".join(
            _describe_unknown(values, mask, column, table.label)
            for column, values, mask, table in (
                ("llm", columns.llm, unknown_llm, llms),
                ("item", columns.item, unknown_item, items),
            )
            if mask.any()
        )
        if unknown_entities == "error":
            raise DataError(
                f"{responses.label}: responses name ids absent from their tables: {problems}. "
                "Pass unknown_entities='drop' to drop these responses, or unknown_entities='add' to keep "
                "them and add the ids to their table with empty metadata."
            )
        if unknown_entities == "drop":
            columns = _drop_responses(responses, columns, ~(unknown_llm | unknown_item), problems, name=name, log=log)
        else:  # "add"
            llms_frame, items_frame = _add_unknown_ids(
                columns, unknown_llm, unknown_item, llms_frame, items_frame, problems, name=name, log=log
            )
        codes = _encode(columns, llms_frame, items_frame)
    return Dataset(
        responses=_deduplicated_responses(responses, columns, codes, name=name, log=log),
        items=_sorted_by(items_frame, "item"),
        llms=_sorted_by(llms_frame, "llm"),
        name=name,
        source=source,
    )


def _build_side_tables(items: _Table | None, llms: _Table, *, name: str, source: str) -> Dataset:
    """The llms table (and the items table, unless None) validated and normalised as :func:`_build_dataset` does,
    in a Dataset without responses (``tables`` names those read)."""
    llms_frame = _validate_id_table(llms, "llm")
    items_frame = pd.DataFrame({"item": pd.Series([], dtype=str)}) if items is None else decode_text_column(
        _validate_id_table(items, "item"), "text", items.label, lambda rows: _rows_phrase(items, rows))
    empty = pd.DataFrame({"llm": pd.Series([], dtype=str), "item": pd.Series([], dtype=str),
                          "correct": pd.Series([], dtype=np.int8)})
    return Dataset(responses=empty, items=_sorted_by(items_frame, "item"), llms=_sorted_by(llms_frame, "llm"),
                   name=name, source=source, tables=("llms",) if items is None else ("items", "llms"))


def _read_responses(responses: _Table, *, name: str, log: Log) -> _Responses:
    """Check the responses table (required columns, rows, no missing values, 0/1 answers) and read its columns;
    extra columns are logged and ignored."""
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
    return _Responses(llm_column, item_column, correct, np.arange(len(correct)))


def _encode(columns: _Responses, llms_frame: pd.DataFrame, items_frame: pd.DataFrame) -> _Codes:
    """Resolve the responses' ids against the (sorted) ids of the tables."""
    llm_ids = np.sort(llms_frame["llm"].to_numpy(dtype=object))
    item_ids = np.sort(items_frame["item"].to_numpy(dtype=object))
    return _Codes(llm_ids, item_ids, _positions_in(columns.llm, llm_ids), _positions_in(columns.item, item_ids))


def _drop_responses(
    responses: _Table, columns: _Responses, keep: np.ndarray, problems: str, *, name: str, log: Log
) -> _Responses:
    """The responses where ``keep`` holds (unknown_entities='drop'), logged; raise if none is left."""
    log(f"{name}: dropped {int((~keep).sum()):,} of {len(keep):,} responses (unknown_entities='drop'): {problems}")
    if not keep.any():
        raise DataError(f"{responses.label}: no responses left after dropping those with unknown ids: {problems}")
    return _Responses(
        columns.llm[keep].reset_index(drop=True),
        columns.item[keep].reset_index(drop=True),
        columns.correct[keep],
        np.flatnonzero(keep),
    )


def _add_unknown_ids(
    columns: _Responses,
    unknown_llm: np.ndarray,
    unknown_item: np.ndarray,
    llms_frame: pd.DataFrame,
    items_frame: pd.DataFrame,
    problems: str,
    *,
    name: str,
    log: Log,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The llms and items tables with the unknown ids added with empty metadata (unknown_entities='add'), logged."""
    if unknown_llm.any():
        llms_frame = _add_ids(llms_frame, "llm", columns.llm[unknown_llm])
    if unknown_item.any():
        items_frame = _add_ids(items_frame, "item", columns.item[unknown_item])
    log(f"{name}: added ids to their tables with empty metadata (unknown_entities='add'): {problems}")
    return llms_frame, items_frame


def _deduplicated_responses(
    responses: _Table, columns: _Responses, codes: _Codes, *, name: str, log: Log
) -> pd.DataFrame:
    """The responses table sorted by (llm, item), each pair once; raise if a pair repeats with different answers.

    Sorting goes through integer pair keys: fast, and puts duplicates side by side. Removed duplicates are
    logged.
    """
    pair_key = codes.llm_idx.astype(np.int64) * len(codes.item_ids) + codes.item_idx
    order = np.argsort(pair_key, kind="stable")
    sorted_key, sorted_correct = pair_key[order], columns.correct[order]
    repeats_previous = sorted_key[1:] == sorted_key[:-1]
    conflicting = repeats_previous & (sorted_correct[1:] != sorted_correct[:-1])
    if conflicting.any():
        _raise_conflicts(responses, columns, codes, order, sorted_key, np.unique(sorted_key[1:][conflicting]))
    keep_first = np.concatenate([[True], ~repeats_previous])
    n_duplicates = int((~keep_first).sum())
    if n_duplicates:
        log(f"{name}: removed {n_duplicates:,} duplicate responses (same llm, item and correct value)")
    kept = order[keep_first]
    return pd.DataFrame(
        {
            # A numpy take of object ids, then one conversion, beats taking from Arrow strings.
            "llm": pd.Series(codes.llm_ids[codes.llm_idx[kept]], dtype=object).astype(str),
            "item": pd.Series(codes.item_ids[codes.item_idx[kept]], dtype=object).astype(str),
            "correct": columns.correct[kept],
        }
    )


def _raise_conflicts(
    responses: _Table,
    columns: _Responses,
    codes: _Codes,
    order: np.ndarray,
    sorted_key: np.ndarray,
    conflict_keys: np.ndarray,
) -> NoReturn:
    """Raise naming the first (llm, item) pairs of ``conflict_keys`` (pair keys that repeat with different
    answers), their rows and answers."""
    n_items = len(codes.item_ids)
    examples = []
    for key in conflict_keys[:_MAX_EXAMPLES]:
        positions = order[sorted_key == key]
        rows, values = columns.rows[positions], columns.correct[positions]
        examples.append(
            f"(llm={codes.llm_ids[key // n_items]!r}, item={codes.item_ids[key % n_items]!r}) "
            f"at {_rows_phrase(responses, rows)} with correct={values.tolist()}"
        )
    more = f" and {len(conflict_keys) - _MAX_EXAMPLES} more" if len(conflict_keys) > _MAX_EXAMPLES else ""
    raise DataError(
        f"{responses.label}: {len(conflict_keys)} (llm, item) pair(s) appear more than once with "
        f"different 'correct' values: {'; '.join(examples)}{more}"
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


