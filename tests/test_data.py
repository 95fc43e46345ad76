"""Tests of bayes_simrmf.data: the loading rules, one test (or more) per rule, on small frames
written as parquet and as CSV, plus one integration test on real data from ../shared/data."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_simrmf.data import (
    DATA_DIR_ENV_VAR,
    Dataset,
    default_data_dir,
    from_frames,
    load_dataset,
    shared_dataset_path,
)
from bayes_simrmf.errors import ConfigError, DataError

FORMATS = ("parquet", "csv")


# ----------------------------------------------------------------------------- fixtures


def good_responses() -> pd.DataFrame:
    """3 LLMs x 4 items, every pair observed once, rows deliberately unsorted."""
    rows = [(llm, f"q{k}", (i + k) % 2) for i, llm in enumerate(["m-b", "m-a", "m-c"]) for k in (3, 1, 4, 2)]
    return pd.DataFrame(rows, columns=["llm", "item", "correct"])


def good_items() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item": ["q4", "q1", "q2", "q3"],
            "text": ["what is 4?", "what is 1?", "what is 2?", "what is 3?"],
            "benchmark": ["MATH", "MATH", "BBH", "MATH"],
        }
    )


def good_llms() -> pd.DataFrame:
    return pd.DataFrame({"llm": ["m-c", "m-a", "m-b"], "params_billions": [7.0, 8.0, 70.0]})


def write_dataset(
    folder: Path,
    fmt: str,
    responses: pd.DataFrame | None = None,
    items: pd.DataFrame | None = None,
    llms: pd.DataFrame | None = None,
    *,
    skip: tuple[str, ...] = (),
) -> Path:
    """Write the three tables (defaults: the good ones) as ``fmt`` files; ``skip`` leaves tables out."""
    folder.mkdir(parents=True, exist_ok=True)
    tables = {
        "responses": good_responses() if responses is None else responses,
        "items": good_items() if items is None else items,
        "llms": good_llms() if llms is None else llms,
    }
    for table_name, frame in tables.items():
        if table_name in skip:
            continue
        if fmt == "parquet":
            frame.to_parquet(folder / f"{table_name}.parquet", index=False)
        else:
            frame.to_csv(folder / f"{table_name}.csv", index=False)
    return folder


class LogRecorder:
    """Collects log lines passed to load_dataset / from_frames."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        self.lines.append(line)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture(params=FORMATS)
def fmt(request: pytest.FixtureRequest) -> str:
    return request.param


# ----------------------------------------------------------------------------- valid input


def test_load_valid_folder_normalises_tables(tmp_path: Path, fmt: str) -> None:
    log = LogRecorder()
    dataset = load_dataset(write_dataset(tmp_path / "toy", fmt), log=log)

    assert dataset.name == "toy"
    assert dataset.source == str((tmp_path / "toy").resolve())
    assert (dataset.n_llms, dataset.n_items, dataset.n_responses) == (3, 4, 12)
    assert dataset.mean_correct == pytest.approx(0.5)
    assert list(dataset.responses.columns) == ["llm", "item", "correct"]
    assert dataset.responses["correct"].dtype == np.int8
    # Sorted by (llm, item) and tables sorted by id.
    pairs = list(zip(dataset.responses["llm"], dataset.responses["item"]))
    assert pairs == sorted(pairs)
    assert list(dataset.llm_ids()) == ["m-a", "m-b", "m-c"]
    assert list(dataset.item_ids()) == ["q1", "q2", "q3", "q4"]
    assert list(dataset.items["item"]) == ["q1", "q2", "q3", "q4"]
    # Side information travels with its id.
    assert dataset.items.set_index("item").loc["q3", "text"] == "what is 3?"
    assert dataset.llms.set_index("llm").loc["m-b", "params_billions"] == 70.0
    # Values survive the reordering: m-b is row 0 of the raw grid, q3 its first item -> (0 + 3) % 2.
    as_dict = dataset.responses.set_index(["llm", "item"])["correct"].to_dict()
    assert as_dict[("m-b", "q3")] == 1 and as_dict[("m-a", "q3")] == 0
    assert log.lines == []  # nothing was corrected, so nothing is logged


def test_items_without_text_column_are_fine(tmp_path: Path, fmt: str) -> None:
    items = good_items().drop(columns=["text"])
    dataset = load_dataset(write_dataset(tmp_path / "d", fmt, items=items), log=None)
    assert "text" not in dataset.items.columns
    assert dataset.n_items == 4


def test_items_and_llms_without_responses_are_kept(tmp_path: Path, fmt: str) -> None:
    items = pd.concat([good_items(), pd.DataFrame({"item": ["q9"], "text": ["cold"], "benchmark": ["BBH"]})])
    llms = pd.concat([good_llms(), pd.DataFrame({"llm": ["m-cold"], "params_billions": [1.0]})])
    dataset = load_dataset(write_dataset(tmp_path / "d", fmt, items=items, llms=llms), log=None)
    assert (dataset.n_llms, dataset.n_items, dataset.n_responses) == (4, 5, 12)
    assert "m-cold" in dataset.llm_ids() and "q9" in dataset.item_ids()
    assert "3 LLMs and 4 items have responses" in dataset.summary()


@pytest.mark.parametrize(
    "raw_values",
    [
        [True, False] * 6,
        [1.0, 0.0] * 6,
        ["1", "0"] * 6,
        ["True", "false"] * 6,
    ],
    ids=["bool", "float", "string-digits", "string-bools"],
)
def test_correct_accepts_bools_floats_and_numeric_strings(tmp_path: Path, fmt: str, raw_values: list) -> None:
    responses = good_responses().assign(correct=raw_values)
    dataset = load_dataset(write_dataset(tmp_path / "d", fmt, responses=responses), log=None)
    assert dataset.responses["correct"].dtype == np.int8
    assert dataset.n_responses == 12 and dataset.mean_correct == pytest.approx(0.5)


def test_numeric_ids_are_coerced_to_str(tmp_path: Path, fmt: str) -> None:
    responses = pd.DataFrame({"llm": [10, 10, 20], "item": [1, 2, 1], "correct": [1, 0, 1]})
    items = pd.DataFrame({"item": [1, 2], "text": ["a", "b"]})
    llms = pd.DataFrame({"llm": [10, 20]})
    dataset = load_dataset(write_dataset(tmp_path / "d", fmt, responses, items, llms), log=None)
    assert list(dataset.llm_ids()) == ["10", "20"]
    assert list(dataset.item_ids()) == ["1", "2"]
    assert all(isinstance(value, str) for value in dataset.responses["item"])


def test_csv_ids_keep_leading_zeros(tmp_path: Path) -> None:
    responses = pd.DataFrame({"llm": ["m"], "item": ["007"], "correct": [1]})
    dataset = load_dataset(
        write_dataset(tmp_path / "d", "csv", responses, pd.DataFrame({"item": ["007"]}), pd.DataFrame({"llm": ["m"]})),
        log=None,
    )
    assert list(dataset.item_ids()) == ["007"]


def test_numeric_ids_match_str_ids_of_other_table() -> None:
    # Parquet written by different tools may type the same ids differently.
    responses = pd.DataFrame({"llm": ["m", "m"], "item": [1, 2], "correct": [1, 0]})
    dataset = from_frames(responses, items=pd.DataFrame({"item": ["1", "2"]}), log=None)
    assert dataset.n_responses == 2


def test_parquet_preferred_over_csv(tmp_path: Path) -> None:
    folder = write_dataset(tmp_path / "d", "parquet")
    # A CSV with different content must be ignored, and the log must say so.
    good_responses().head(3).to_csv(folder / "responses.csv", index=False)
    log = LogRecorder()
    dataset = load_dataset(folder, log=log)
    assert dataset.n_responses == 12
    assert "responses.parquet" in log.text and "ignoring responses.csv" in log.text


def test_log_none_is_silent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    responses = pd.concat([good_responses(), good_responses().head(2)])
    load_dataset(write_dataset(tmp_path / "d", "parquet", responses=responses), log=None)
    assert capsys.readouterr().out == ""


# ----------------------------------------------------------------------------- missing folder / file / column


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="dataset folder not found") as error:
        load_dataset(tmp_path / "nowhere")
    assert "nowhere" in str(error.value)


def test_path_is_a_file(tmp_path: Path) -> None:
    file = tmp_path / "responses.parquet"
    good_responses().to_parquet(file)
    with pytest.raises(DataError, match="is a file"):
        load_dataset(file)


@pytest.mark.parametrize("table_name", ["responses", "items", "llms"])
def test_missing_file(tmp_path: Path, fmt: str, table_name: str) -> None:
    folder = write_dataset(tmp_path / "d", fmt, skip=(table_name,))
    with pytest.raises(DataError) as error:
        load_dataset(folder)
    message = str(error.value)
    assert f"{table_name}.parquet, {table_name}.csv" in message
    assert "missing required file" in message and str(folder.resolve()) in message
    for present in {"responses", "items", "llms"} - {table_name}:
        assert f"{present}.parquet" not in message


def test_all_missing_files_are_named_at_once(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as error:
        load_dataset(tmp_path / "empty")
    for table_name in ("responses", "items", "llms"):
        assert f"{table_name}.csv" in str(error.value)


@pytest.mark.parametrize(
    ("table_name", "column"),
    [("responses", "llm"), ("responses", "item"), ("responses", "correct"), ("items", "item"), ("llms", "llm")],
)
def test_missing_required_column(tmp_path: Path, fmt: str, table_name: str, column: str) -> None:
    tables = {"responses": good_responses(), "items": good_items(), "llms": good_llms()}
    tables[table_name] = tables[table_name].rename(columns={column: f"{column}_renamed"})
    folder = write_dataset(tmp_path / "d", fmt, **tables)
    with pytest.raises(DataError) as error:
        load_dataset(folder)
    message = str(error.value)
    assert f"{table_name}.{fmt}" in message
    assert f"missing required column(s) ['{column}']" in message
    assert "columns found: " in message and f"{column}_renamed" in message


def test_unreadable_file_names_the_file(tmp_path: Path) -> None:
    folder = write_dataset(tmp_path / "d", "parquet")
    (folder / "llms.parquet").write_bytes(b"this is not parquet")
    with pytest.raises(DataError, match=r"llms\.parquet: cannot read llms table"):
        load_dataset(folder)


# ----------------------------------------------------------------------------- bad values


@pytest.mark.parametrize("bad_value", [0.5, 2, "yes"], ids=["half", "two", "yes"])
def test_correct_values_other_than_0_1(tmp_path: Path, fmt: str, bad_value: object) -> None:
    responses = good_responses()
    # Give the column a type that can hold the bad value (parquet needs one type per column).
    responses["correct"] = responses["correct"].astype(type(bad_value))
    responses.loc[[4, 9], "correct"] = bad_value
    with pytest.raises(DataError) as error:
        load_dataset(write_dataset(tmp_path / "d", fmt, responses=responses))
    message = str(error.value)
    assert f"responses.{fmt}" in message and "column 'correct' must be 0 or 1" in message
    assert "2 row(s)" in message and "rows 4, 9" in message
    if fmt == "csv":
        assert "CSV lines 6, 11" in message  # header is line 1


@pytest.mark.parametrize("column", ["llm", "item", "correct"])
def test_missing_values_in_responses(tmp_path: Path, fmt: str, column: str) -> None:
    responses = good_responses()
    responses[column] = responses[column].astype(object)
    responses.loc[[2, 7, 8], column] = None
    with pytest.raises(DataError) as error:
        load_dataset(write_dataset(tmp_path / "d", fmt, responses=responses))
    message = str(error.value)
    assert f"responses.{fmt}" in message
    assert f"column {column!r} is missing" in message and "3 row(s)" in message and "rows 2, 7, 8" in message


def test_blank_ids_count_as_missing() -> None:
    responses = good_responses()
    responses.loc[5, "item"] = "   "
    with pytest.raises(DataError, match=r"column 'item' is missing \(NaN/None/empty\) in 1 row\(s\): row 5"):
        from_frames(responses, good_items(), good_llms())


@pytest.mark.parametrize(("table_name", "column"), [("items", "item"), ("llms", "llm")])
def test_missing_ids_in_side_tables(tmp_path: Path, fmt: str, table_name: str, column: str) -> None:
    tables = {"items": good_items(), "llms": good_llms()}
    tables[table_name] = tables[table_name].astype({column: object})
    tables[table_name].loc[1, column] = None
    with pytest.raises(DataError) as error:
        load_dataset(write_dataset(tmp_path / "d", fmt, **tables))
    assert f"{table_name}.{fmt}" in str(error.value) and f"column {column!r} is missing" in str(error.value)


@pytest.mark.parametrize(("table_name", "column", "repeated"), [("items", "item", "q2"), ("llms", "llm", "m-a")])
def test_duplicate_ids_in_side_tables(tmp_path: Path, fmt: str, table_name: str, column: str, repeated: str) -> None:
    tables = {"items": good_items(), "llms": good_llms()}
    frame = tables[table_name]
    tables[table_name] = pd.concat([frame, frame[frame[column] == repeated]], ignore_index=True)
    with pytest.raises(DataError) as error:
        load_dataset(write_dataset(tmp_path / "d", fmt, **tables))
    message = str(error.value)
    assert f"{table_name}.{fmt}" in message and f"column {column!r} must be unique" in message
    assert f"'{repeated}' (2 rows)" in message


# ----------------------------------------------------------------------------- duplicates


def test_same_pair_twice_with_different_values_is_an_error(tmp_path: Path, fmt: str) -> None:
    responses = good_responses()
    flipped = responses.iloc[[0]].assign(correct=1 - responses.loc[0, "correct"])
    responses = pd.concat([responses, flipped], ignore_index=True)
    with pytest.raises(DataError) as error:
        load_dataset(write_dataset(tmp_path / "d", fmt, responses=responses))
    message = str(error.value)
    assert f"responses.{fmt}" in message and "1 (llm, item) pair(s)" in message
    assert "llm='m-b', item='q3'" in message and "rows 0, 12" in message


def test_same_pair_twice_with_same_value_is_deduplicated(tmp_path: Path, fmt: str) -> None:
    responses = pd.concat([good_responses(), good_responses().iloc[[0, 5, 5]]], ignore_index=True)
    log = LogRecorder()
    dataset = load_dataset(write_dataset(tmp_path / "d", fmt, responses=responses), log=log)
    assert dataset.n_responses == 12
    assert "removed 3 duplicate responses" in log.text


# ----------------------------------------------------------------------------- unknown entities


def responses_with_strangers() -> pd.DataFrame:
    """The good grid plus 2 rows from an unknown LLM and 1 row on an unknown item."""
    extra = pd.DataFrame(
        [("m-stranger", "q1", 1), ("m-stranger", "q2", 0), ("m-a", "q-stranger", 1)], columns=["llm", "item", "correct"]
    )
    return pd.concat([good_responses(), extra], ignore_index=True)


def test_unknown_entities_error_by_default(tmp_path: Path, fmt: str) -> None:
    folder = write_dataset(tmp_path / "d", fmt, responses=responses_with_strangers())
    with pytest.raises(DataError) as error:
        load_dataset(folder)
    message = str(error.value)
    assert "2 responses name 1 llm id(s) absent from" in message and "'m-stranger' (2 rows)" in message
    assert "1 responses name 1 item id(s) absent from" in message and "'q-stranger' (1 rows)" in message
    assert f"llms.{fmt}" in message and f"items.{fmt}" in message
    assert "unknown_entities='drop'" in message


def test_unknown_entities_drop_logs_counts(tmp_path: Path, fmt: str) -> None:
    log = LogRecorder()
    dataset = load_dataset(
        write_dataset(tmp_path / "d", fmt, responses=responses_with_strangers()), unknown_entities="drop", log=log
    )
    assert dataset.n_responses == 12 and dataset.n_llms == 3 and dataset.n_items == 4
    assert "dropped 3 of 15 responses" in log.text
    assert "'m-stranger' (2 rows)" in log.text and "'q-stranger' (1 rows)" in log.text


def test_unknown_entities_add_extends_tables(tmp_path: Path, fmt: str) -> None:
    log = LogRecorder()
    dataset = load_dataset(
        write_dataset(tmp_path / "d", fmt, responses=responses_with_strangers()), unknown_entities="add", log=log
    )
    assert dataset.n_responses == 15 and dataset.n_llms == 4 and dataset.n_items == 5
    added = dataset.llms.set_index("llm").loc["m-stranger"]
    assert np.isnan(added["params_billions"])
    assert "added ids" in log.text and "'m-stranger'" in log.text


def test_drop_leaving_nothing_is_an_error() -> None:
    responses = pd.DataFrame({"llm": ["ghost"], "item": ["q1"], "correct": [1]})
    with pytest.raises(DataError, match="no responses left after dropping"):
        from_frames(responses, good_items(), good_llms(), unknown_entities="drop", log=None)


@pytest.mark.parametrize("policy", ["ignore", "DROP", None])
def test_invalid_unknown_entities_policy(tmp_path: Path, policy: object) -> None:
    with pytest.raises(ConfigError, match="unknown_entities must be one of"):
        load_dataset(tmp_path / "not-even-there", unknown_entities=policy)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=re.escape(repr(policy))):
        from_frames(good_responses(), unknown_entities=policy)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- empty data


def test_empty_responses(tmp_path: Path, fmt: str) -> None:
    empty = good_responses().iloc[:0]
    with pytest.raises(DataError) as error:
        load_dataset(write_dataset(tmp_path / "d", fmt, responses=empty))
    assert f"responses.{fmt}" in str(error.value) and "no responses" in str(error.value)


# ----------------------------------------------------------------------------- from_frames


def test_from_frames_builds_side_tables_from_responses() -> None:
    responses = good_responses()
    before = responses.copy()
    dataset = from_frames(responses, name="synthetic", log=None)
    assert dataset.name == "synthetic"
    assert list(dataset.items.columns) == ["item"] and list(dataset.llms.columns) == ["llm"]
    assert (dataset.n_llms, dataset.n_items, dataset.n_responses) == (3, 4, 12)
    pd.testing.assert_frame_equal(responses, before)  # input untouched


def test_from_frames_applies_the_same_rules() -> None:
    responses = good_responses().assign(correct=lambda frame: frame["correct"].astype(float))
    responses.loc[3, "correct"] = 0.5
    with pytest.raises(DataError, match=r"responses \(in-memory frame\): column 'correct' must be 0 or 1.*row 3"):
        from_frames(responses, good_items(), good_llms())
    with pytest.raises(DataError, match="expected a pandas DataFrame"):
        from_frames([("m", "q", 1)])  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- integer view and fingerprint


def test_codes_match_responses() -> None:
    dataset = from_frames(responses_with_strangers(), good_items(), good_llms(), unknown_entities="add", log=None)
    llm_idx, item_idx, correct = dataset.codes()
    assert llm_idx.dtype == np.int32 and item_idx.dtype == np.int32 and correct.dtype == np.int8
    assert llm_idx.shape == item_idx.shape == correct.shape == (dataset.n_responses,)
    np.testing.assert_array_equal(dataset.llm_ids()[llm_idx], dataset.responses["llm"].to_numpy(dtype=object))
    np.testing.assert_array_equal(dataset.item_ids()[item_idx], dataset.responses["item"].to_numpy(dtype=object))
    np.testing.assert_array_equal(correct, dataset.responses["correct"].to_numpy())
    assert dataset.codes()[0] is llm_idx  # cached
    with pytest.raises(ValueError):
        llm_idx[0] = 2  # shared cache is read-only


def test_fingerprint_is_stable_and_format_independent(tmp_path: Path) -> None:
    from_parquet = load_dataset(write_dataset(tmp_path / "p", "parquet"), log=None)
    from_csv = load_dataset(write_dataset(tmp_path / "c", "csv"), log=None)
    shuffled = from_frames(good_responses().sample(frac=1.0, random_state=0), good_items(), good_llms(), log=None)
    fingerprint = from_parquet.fingerprint()
    assert re.fullmatch(r"[0-9a-f]{16}", fingerprint)
    assert fingerprint == from_csv.fingerprint() == shuffled.fingerprint()
    # Pinned value: the hash is stored with fitted models, so it must not drift between runs,
    # platforms or versions; change it only together with _FINGERPRINT_VERSION.
    assert fingerprint == PINNED_TOY_FINGERPRINT


PINNED_TOY_FINGERPRINT = "33eeb3b4123c3a22"  # the toy grid of good_responses() and its tables


def test_fingerprint_changes_with_content() -> None:
    base = from_frames(good_responses(), good_items(), good_llms(), log=None)
    flipped_responses = good_responses()
    flipped_responses.loc[7, "correct"] = 1 - flipped_responses.loc[7, "correct"]
    flipped = from_frames(flipped_responses, good_items(), good_llms(), log=None)
    fewer = from_frames(good_responses().drop(index=7), good_items(), good_llms(), log=None)
    extra_item = from_frames(
        good_responses(), pd.concat([good_items(), pd.DataFrame({"item": ["q9"]})]), good_llms(), log=None
    )
    fingerprints = {base.fingerprint(), flipped.fingerprint(), fewer.fingerprint(), extra_item.fingerprint()}
    assert len(fingerprints) == 4
    # Metadata is not part of it.
    relabelled = from_frames(good_responses(), good_items().assign(text="other"), good_llms(), log=None)
    assert relabelled.fingerprint() == base.fingerprint()


# ----------------------------------------------------------------------------- Dataset methods


def test_summary_mentions_shape_and_benchmarks() -> None:
    summary = from_frames(good_responses(), good_items(), good_llms(), name="toy", log=None).summary()
    assert summary.startswith("toy: 3 LLMs x 4 items, 12 observed pairs (density 100.0%), mean correct 0.500")
    assert "MATH (3 items)" in summary and "BBH (1 items)" in summary


def test_subset_restricts_tables_and_responses() -> None:
    dataset = from_frames(good_responses(), good_items(), good_llms(), log=None)
    sub = dataset.subset(llms=["m-c", "m-a"], items=["q2", "q4", "q1"])
    assert list(sub.llm_ids()) == ["m-a", "m-c"] and list(sub.item_ids()) == ["q1", "q2", "q4"]
    assert sub.n_responses == 6
    assert set(sub.responses["llm"]) == {"m-a", "m-c"}
    assert list(sub.items.columns) == list(dataset.items.columns)
    only_llms = dataset.subset(llms=["m-b"])
    assert only_llms.n_items == 4 and only_llms.n_responses == 4
    expected = dataset.responses[dataset.responses["llm"] == "m-b"]["correct"].to_numpy()
    np.testing.assert_array_equal(only_llms.codes()[2], expected)


def test_subset_refuses_unknown_ids_and_empty_results() -> None:
    dataset = from_frames(good_responses(), good_items(), good_llms(), log=None)
    with pytest.raises(DataError, match=r"not in the dataset: 'nobody'"):
        dataset.subset(llms=["m-a", "nobody"])
    with pytest.raises(DataError, match="has no responses"):
        dataset.subset(llms=[])


def test_direct_construction_checks_invariants() -> None:
    valid = from_frames(good_responses(), good_items(), good_llms(), log=None)
    unsorted = valid.responses.iloc[::-1].reset_index(drop=True)
    with pytest.raises(DataError, match="sorted by"):
        Dataset(responses=unsorted, items=valid.items, llms=valid.llms)
    with pytest.raises(DataError, match="absent from the llms table"):
        Dataset(responses=valid.responses, items=valid.items, llms=valid.llms.iloc[1:])
    with pytest.raises(DataError, match="int8"):
        Dataset(responses=valid.responses.astype({"correct": "int64"}), items=valid.items, llms=valid.llms)


# ----------------------------------------------------------------------------- locations


def test_default_data_dir_honours_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_DIR_ENV_VAR, str(tmp_path))
    assert default_data_dir() == tmp_path.resolve()
    write_dataset(tmp_path / "toy", "csv")
    assert shared_dataset_path("toy") == tmp_path.resolve() / "toy"
    with pytest.raises(DataError) as error:
        shared_dataset_path("absent")
    assert "'absent'" in str(error.value) and "['toy']" in str(error.value) and DATA_DIR_ENV_VAR in str(error.value)


def test_default_data_dir_is_next_to_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_DIR_ENV_VAR, raising=False)
    repo_root = Path(__file__).resolve().parent.parent
    assert default_data_dir() == (repo_root.parent / "shared" / "data").resolve()


# ----------------------------------------------------------------------------- real data


@pytest.mark.slow
def test_load_real_mmlupro_math() -> None:
    try:
        path = shared_dataset_path("openllm-v2-mmlupro-math")
    except DataError as error:
        pytest.skip(f"real data not available ({error})")
    dataset = load_dataset(path, log=None)
    assert (dataset.n_llms, dataset.n_items, dataset.n_responses) == (755, 1351, 1_020_005)
    assert dataset.mean_correct == pytest.approx(0.223, abs=0.001)
    assert {"text", "benchmark", "subtask"} <= set(dataset.items.columns)
    llm_idx, item_idx, _ = dataset.codes()
    assert llm_idx.max() == 754 and item_idx.max() == 1350
    assert dataset.fingerprint() == load_dataset(path, log=None).fingerprint()


# ----------------------------------------------------------------------------- side tables alone


@pytest.mark.parametrize("tables", [("items", "llms"), ("llms",)])
def test_side_tables_alone_match_the_full_load(tmp_path: Path, fmt: str, tables: tuple[str, ...]) -> None:
    folder = write_dataset(tmp_path / "d", fmt)
    full = load_dataset(folder, log=None)
    side = load_dataset(folder, log=None, tables=tables)
    assert side.tables == tables and side.n_responses == 0 and len(side.responses) == 0
    pd.testing.assert_frame_equal(side.llms, full.llms)
    assert list(side.llm_ids()) == list(full.llm_ids())
    if "items" in tables:
        pd.testing.assert_frame_equal(side.items, full.items)
    else:
        assert side.n_items == 0
    # The side tables' hashes are those of the full load, for the tables read.
    assert side.metadata_fingerprints() == {name: value for name, value in full.metadata_fingerprints().items()
                                            if name in tables}
    with pytest.raises(DataError, match="loaded without its responses"):
        side.fingerprint()
    # A new LLM can still be added to it (what folding in does).
    extended = side.with_entities(llms=pd.DataFrame({"llm": ["m-new"], "params_billions": [3.0]}))
    assert extended.tables == tables and "m-new" in set(extended.llm_ids())


@pytest.mark.parametrize("tables", [("responses", "llms"), ("items",), ()])
def test_other_table_choices_are_refused(tmp_path: Path, tables: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError, match="tables must hold 'llms'"):
        load_dataset(write_dataset(tmp_path / "d", "parquet"), log=None, tables=tables)


def test_a_dataset_built_by_hand_must_match_its_tables() -> None:
    full = from_frames(good_responses(), good_items(), good_llms(), log=None)
    with pytest.raises(DataError, match="responses was not read"):
        Dataset(responses=full.responses, items=full.items, llms=full.llms, tables=("items", "llms"))


def test_responses_digest_follows_the_bytes_of_the_responses_file(tmp_path: Path) -> None:
    from bayes_simrmf.data import responses_digest

    first = responses_digest(write_dataset(tmp_path / "a", "parquet"))
    assert re.fullmatch(r"[0-9a-f]{16}", first)
    assert responses_digest(write_dataset(tmp_path / "b", "parquet")) == first  # same bytes
    assert responses_digest(write_dataset(tmp_path / "c", "parquet", items=good_items().assign(text="x"))) == first
    flipped = good_responses()
    flipped.loc[0, "correct"] = 1 - flipped.loc[0, "correct"]
    assert responses_digest(write_dataset(tmp_path / "d", "parquet", responses=flipped)) != first
    with pytest.raises(DataError, match="missing required file"):
        responses_digest(write_dataset(tmp_path / "e", "parquet", skip=("responses",)))
