"""Validation of the tables: ids, required columns, missing values, 0/1 answers, unknown entities."""

from __future__ import annotations


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


