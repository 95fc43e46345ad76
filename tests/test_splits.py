"""Tests of bayes_simrmf.splits: the paper's protocol of known/new entities, balanced training, splits A-D."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_simrmf.errors import ConfigError, DataError, SplitError
from bayes_simrmf.splits import (
    SPLIT_NAMES,
    Pairs,
    Protocol,
    Split,
    balanced_block_selection,
)
from bayes_simrmf.splits.balance import _augment_once

DATA_DIR = Path(
    os.environ.get("BAYES_SIMRMF_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data"
)


class SyntheticData:
    """A random response matrix as the arrays ``split_arrays`` takes, plus the truth to check against.

    ``truth[llm, item]`` is the score of an observed cell, -1 where unobserved (small sizes only).
    """

    def __init__(self, n_llms: int, n_items: int, missing: float = 0.0, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self._set_cells(rng.random((n_llms, n_items)) >= missing, rng)

    def _set_cells(self, observed: np.ndarray, rng: np.random.Generator) -> None:
        """Ids, random scores and pair arrays for a bool ``(n_llms, n_items)`` observed pattern."""
        n_llms, n_items = observed.shape
        self.llm_ids = np.array([f"llm-{index:04d}" for index in range(n_llms)])
        self.item_ids = np.array([f"item-{index:05d}" for index in range(n_items)])
        self.truth = np.where(observed, rng.integers(0, 2, (n_llms, n_items)), -1).astype(np.int8)
        self.llm_idx, self.item_idx = (codes.astype(np.int32) for codes in np.nonzero(observed))
        self.correct = self.truth[self.llm_idx, self.item_idx]

    def arrays(self) -> tuple[np.ndarray, ...]:
        return self.llm_ids, self.item_ids, self.llm_idx, self.item_idx, self.correct

    def split(self, protocol: Protocol, **kwargs) -> Split:
        return protocol.split_arrays(*self.arrays(), log=kwargs.pop("log", None), **kwargs)


def original_codes(split: Split, data: SyntheticData, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The pairs of split ``name`` as indices into the synthetic data's own id arrays."""
    pairs = split.pairs[name]
    llm = np.searchsorted(data.llm_ids, split.llms[pairs.llm].astype(str))
    item = np.searchsorted(data.item_ids, split.items[pairs.item].astype(str))
    return llm, item


def train_degrees(split: Split) -> tuple[np.ndarray, np.ndarray]:
    """Training pairs per known LLM ``(n_known_llms,)`` and per known item ``(n_known_items,)``."""
    train = split.pairs["train"]
    return (
        np.bincount(train.llm, minlength=split.n_known_llms),
        np.bincount(train.item, minlength=split.n_known_items),
    )


def assert_splits_equal(left: Split, right: Split) -> None:
    assert left.protocol == right.protocol
    assert np.array_equal(left.llms, right.llms) and np.array_equal(left.items, right.items)
    assert (left.n_known_llms, left.n_known_items) == (right.n_known_llms, right.n_known_items)
    for name in SPLIT_NAMES:
        assert left.pairs[name].equals(right.pairs[name]), name
    assert left.degree_report == right.degree_report
    assert left.data_fingerprint == right.data_fingerprint


# ------------------------------------------------------------------------------------------ balance


@pytest.mark.parametrize("T", [10, 60])
def test_equal_known_counts_dense_give_exactly_T(T: int) -> None:
    data = SyntheticData(80, 90)
    split = data.split(Protocol(n_known_llms=60, n_known_items=60, T=T, seed=1))
    llm_degree, item_degree = train_degrees(split)
    assert (llm_degree == T).all() and (item_degree == T).all()
    assert len(split.pairs["train"]) == 60 * T
    assert len(split.pairs["A"]) == 60 * 60 - 60 * T  # T = 60 uses the whole block: A is empty
    report = split.degree_report
    assert report["llm_degree"] == {"min": T, "max": T, "mean": float(T)}
    assert report["shortfall_pairs"] == 0


@pytest.mark.parametrize(
    ("n_known_llms", "n_known_items", "T"),
    [(30, 60, 20), (40, 60, 10), (60, 25, 12)],
)
def test_unequal_known_counts_smaller_side_gets_T(n_known_llms: int, n_known_items: int, T: int) -> None:
    data = SyntheticData(80, 90)
    split = data.split(Protocol(n_known_llms=n_known_llms, n_known_items=n_known_items, T=T, seed=2))
    llm_degree, item_degree = train_degrees(split)
    small_degree, large_degree = (
        (llm_degree, item_degree) if n_known_llms < n_known_items else (item_degree, llm_degree)
    )
    n_small, n_large = min(n_known_llms, n_known_items), max(n_known_llms, n_known_items)
    assert (small_degree == T).all()
    # The larger side shares the same number of pairs as evenly as possible: floor or ceil.
    assert large_degree.sum() == T * n_small
    assert large_degree.min() == (T * n_small) // n_large
    assert large_degree.max() - large_degree.min() <= 1


def test_T_larger_than_possible_is_capped_and_logged() -> None:
    data = SyntheticData(30, 40)
    messages: list[str] = []
    split = data.split(Protocol(n_known_llms=20, n_known_items=30, T=50), log=messages.append)
    llm_degree, item_degree = train_degrees(split)
    assert (llm_degree == 30).all() and (item_degree == 20).all()  # every known x known cell
    assert split.degree_report["T_used"] == 30 and split.degree_report["T_requested"] == 50
    assert any("T=50" in message and "T=30" in message for message in messages)
    assert len(split.pairs["A"]) == 0


def test_missing_cells_stay_close_to_T_and_report_the_range() -> None:
    data = SyntheticData(120, 130, missing=0.1, seed=3)
    split = data.split(Protocol(n_known_llms=100, n_known_items=100, T=20, seed=3))
    llm_degree, item_degree = train_degrees(split)
    report = split.degree_report
    assert (report["llm_degree"]["min"], report["llm_degree"]["max"]) == (llm_degree.min(), llm_degree.max())
    assert (report["item_degree"]["min"], report["item_degree"]["max"]) == (item_degree.min(), item_degree.max())
    # Each known LLM has ~90 observed known items, far more than T: exact balance is reachable.
    assert (llm_degree == 20).all() and (item_degree == 20).all()


def test_infeasible_targets_reach_the_maximum_possible() -> None:
    """With T near the observed degree some nodes cannot reach T; the selection is then a maximum flow."""
    data = SyntheticData(70, 70, missing=0.1, seed=4)
    messages: list[str] = []
    split = data.split(Protocol(n_known_llms=60, n_known_items=60, T=56, seed=4), log=messages.append)
    llm_degree, item_degree = train_degrees(split)
    report = split.degree_report
    assert llm_degree.max() <= 56 and item_degree.max() <= 56
    assert report["llm_degree"]["min"] == llm_degree.min()
    assert report["item_degree"]["min"] == item_degree.min()
    # Targets are T capped at each known LLM's answered known items (the new rule; before, a flat T).
    known_llms = np.searchsorted(data.llm_ids, split.known_llms.astype(str))
    known_items = np.searchsorted(data.item_ids, split.known_items.astype(str))
    observed = data.truth[np.ix_(known_llms, known_items)] >= 0
    assert report["n_target_pairs"] == np.minimum(observed.sum(axis=1), 56).sum()
    assert report["shortfall_pairs"] == report["n_target_pairs"] - len(split.pairs["train"]) > 0
    assert any("unfilled" in message for message in messages)
    assert llm_degree.mean() > 0.95 * 56

    csgraph = pytest.importorskip("scipy.sparse.csgraph")
    sparse = pytest.importorskip("scipy.sparse")
    # Max flow source -> known LLM (cap 56) -> observed cell (cap 1) -> known item (cap 56) -> sink.
    rows, cols = np.nonzero(observed)
    source, sink = 120, 121
    graph = sparse.csr_matrix(
        (
            np.concatenate([np.full(60, 56), np.ones(len(rows)), np.full(60, 56)]).astype(np.int32),
            (
                np.concatenate([np.full(60, source), rows, 60 + np.arange(60)]),
                np.concatenate([np.arange(60), 60 + cols, np.full(60, sink)]),
            ),
        ),
        shape=(122, 122),
    )
    assert len(split.pairs["train"]) == csgraph.maximum_flow(graph, source, sink).flow_value


def test_augmenting_path_repairs_a_greedy_dead_end() -> None:
    # Row 0 took column 0, leaving row 1 (which only observes column 0) without a pair.
    observed = np.array([[True, True], [True, False]])
    selected = np.array([[True, False], [False, False]])
    found = _augment_once(
        observed, selected, row_below=np.array([False, True]), col_below=np.array([False, True])
    )
    assert found
    assert np.array_equal(selected, [[False, True], [True, False]])
    # Nothing left to improve: no path.
    assert not _augment_once(observed, selected, np.array([False, False]), np.array([False, False]))


@pytest.mark.parametrize("seed", range(20))
def test_balanced_selection_on_small_random_blocks(seed: int) -> None:
    rng = np.random.default_rng(seed)
    observed = rng.random((7, 9)) >= 0.3
    row_targets, col_targets = np.full(7, 5), np.array([4, 4, 4, 4, 4, 4, 4, 4, 3])
    selected = balanced_block_selection(observed, row_targets, col_targets, np.random.default_rng(seed))
    assert not (selected & ~observed).any()
    assert (selected.sum(axis=1) <= row_targets).all() and (selected.sum(axis=0) <= col_targets).all()


# ------------------------------------------------------------------------------------------ splits


@pytest.fixture(scope="module")
def sparse_data() -> SyntheticData:
    return SyntheticData(50, 70, missing=0.15, seed=5)


@pytest.fixture(scope="module")
def sparse_split(sparse_data: SyntheticData) -> Split:
    return sparse_data.split(Protocol(n_known_llms=35, n_known_items=45, T=12, seed=5))


def test_splits_are_disjoint_and_cover_every_observed_cell(
    sparse_data: SyntheticData, sparse_split: Split
) -> None:
    all_cells = []
    for name in SPLIT_NAMES:
        llm, item = original_codes(sparse_split, sparse_data, name)
        all_cells.append(llm.astype(np.int64) * 70 + item)
    cells = np.concatenate(all_cells)
    assert len(np.unique(cells)) == len(cells), "a cell is in two splits (or twice in one)"
    # n_test_pairs is large here, so nothing is sampled away.
    assert len(cells) == len(sparse_data.correct)


def test_pairs_are_observed_cells_with_their_score(sparse_data: SyntheticData, sparse_split: Split) -> None:
    for name in SPLIT_NAMES:
        llm, item = original_codes(sparse_split, sparse_data, name)
        truth = sparse_data.truth[llm, item]
        assert (truth >= 0).all(), f"{name} holds an unobserved cell"
        assert np.array_equal(truth, sparse_split.pairs[name].correct), name


def test_splits_have_their_roles(sparse_split: Split) -> None:
    n_known_llms, n_known_items = sparse_split.n_known_llms, sparse_split.n_known_items
    # split -> (LLM known, item known)
    roles = {
        "train": (True, True),
        "A": (True, True),
        "B": (True, False),
        "C": (False, True),
        "D": (False, False),
    }
    for name, (llm_known, item_known) in roles.items():
        pairs = sparse_split.pairs[name]
        assert len(pairs) > 0, name
        assert ((pairs.llm < n_known_llms) == llm_known).all(), name
        assert ((pairs.item < n_known_items) == item_known).all(), name
    assert len(sparse_split.known_llms) == 35 and len(sparse_split.new_llms) == 15
    assert len(sparse_split.known_items) == 45 and len(sparse_split.new_items) == 25


def test_pair_arrays_have_the_documented_dtypes(sparse_split: Split) -> None:
    for pairs in sparse_split.pairs.values():
        assert pairs.llm.dtype == np.int32 and pairs.item.dtype == np.int32 and pairs.correct.dtype == np.int8
        assert not pairs.llm.flags.writeable


def test_same_seed_same_split_and_input_order_does_not_matter(
    sparse_data: SyntheticData, sparse_split: Split
) -> None:
    protocol = sparse_split.protocol
    assert_splits_equal(sparse_data.split(protocol), sparse_split)
    shuffle = np.random.default_rng(0).permutation(len(sparse_data.correct))
    shuffled = protocol.split_arrays(
        sparse_data.llm_ids,
        sparse_data.item_ids,
        sparse_data.llm_idx[shuffle],
        sparse_data.item_idx[shuffle],
        sparse_data.correct[shuffle],
        log=None,
    )
    assert_splits_equal(shuffled, sparse_split)


def test_different_seed_different_split(sparse_data: SyntheticData, sparse_split: Split) -> None:
    other = sparse_data.split(Protocol(n_known_llms=35, n_known_items=45, T=12, seed=6))
    assert not np.array_equal(other.known_llms, sparse_split.known_llms)
    assert not np.array_equal(other.known_items, sparse_split.known_items)
    train_cells = {
        split.protocol.seed: set(zip(*(ids.tolist() for ids in original_codes(split, sparse_data, "train"))))
        for split in (sparse_split, other)
    }
    assert train_cells[5] != train_cells[6]


def test_changing_T_keeps_the_known_sets(sparse_data: SyntheticData, sparse_split: Split) -> None:
    # Independent random streams: T only changes the training pairs (and so A), not who is known.
    more_pairs = sparse_data.split(Protocol(n_known_llms=35, n_known_items=45, T=13, seed=5))
    assert np.array_equal(more_pairs.llms, sparse_split.llms)
    assert np.array_equal(more_pairs.items, sparse_split.items)
    assert more_pairs.pairs["B"].equals(sparse_split.pairs["B"])
    assert len(more_pairs.pairs["train"]) == 35 * 13


def test_n_test_pairs_caps_each_test_split(sparse_data: SyntheticData, sparse_split: Split) -> None:
    capped = sparse_data.split(Protocol(n_known_llms=35, n_known_items=45, T=12, seed=5, n_test_pairs=40))
    assert capped.pairs["train"].equals(sparse_split.pairs["train"])  # the cap only affects test splits
    for name in ("A", "B", "C", "D"):
        assert len(capped.pairs[name]) == min(40, len(sparse_split.pairs[name]))
        # A sample of the uncapped split, kept in (llm, item) order.
        full_cells = set(zip(sparse_split.pairs[name].llm.tolist(), sparse_split.pairs[name].item.tolist()))
        capped_cells = list(zip(capped.pairs[name].llm.tolist(), capped.pairs[name].item.tolist()))
        assert set(capped_cells) <= full_cells and capped_cells == sorted(capped_cells)
    zero = sparse_data.split(Protocol(n_known_llms=35, n_known_items=45, T=12, seed=5, n_test_pairs=0))
    assert all(len(zero.pairs[name]) == 0 for name in ("A", "B", "C", "D"))


def test_all_known_makes_new_splits_empty() -> None:
    data = SyntheticData(10, 12)
    messages: list[str] = []
    split = data.split(Protocol(n_known_llms=10, n_known_items=8, T=4), log=messages.append)
    assert len(split.pairs["C"]) == 0 and len(split.pairs["D"]) == 0 and len(split.pairs["B"]) > 0
    assert any("C and D will be empty" in message for message in messages)


def test_summary_lists_every_split(sparse_split: Split) -> None:
    text = sparse_split.summary()
    for name in SPLIT_NAMES:
        assert f"\n{name} " in text
    assert str(len(sparse_split.pairs["train"])) in text and "degree" in text


# ------------------------------------------------------------------------------------------ defaults


def test_default_known_counts() -> None:
    messages: list[str] = []
    assert Protocol().resolve(1704, 21065, log=messages.append) == (1000, 1000)
    assert Protocol().resolve(755, 1351, log=messages.append) == (503, 901)
    assert any("round(2/3 * 755)" in message for message in messages)
    # The larger side's default is capped at max_known_ratio (10) x the smaller side's count
    # (before the cap this gave (1000, 2): 1,000 LLMs sharing 2 * T training pairs).
    assert Protocol().resolve(1500, 3, log=None) == (20, 2)
    assert Protocol(max_known_ratio=1000.0).resolve(1500, 3, log=None) == (1000, 2)
    assert Protocol(n_known_llms=500).resolve(755, 1351, log=None) == (500, 901)


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"T": 0}, "T"),
        ({"T": -3}, "T"),
        ({"T": 2.5}, "T"),
        ({"T": True}, "T"),
        ({"n_known_llms": -1}, "n_known_llms"),
        ({"n_known_llms": 0}, "n_known_llms"),
        ({"n_known_items": -5}, "n_known_items"),
        ({"n_test_pairs": -1}, "n_test_pairs"),
        ({"seed": -1}, "seed"),
        ({"min_answer_share": 0}, "min_answer_share"),
        ({"min_answer_share": -0.1}, "min_answer_share"),
        ({"min_answer_share": 1.5}, "min_answer_share"),
        ({"min_answer_share": float("nan")}, "min_answer_share"),
        ({"min_answer_share": "0.3"}, "min_answer_share"),
        ({"min_answer_share": True}, "min_answer_share"),
        ({"max_known_ratio": 0.5}, "max_known_ratio"),
        ({"max_known_ratio": float("inf")}, "max_known_ratio"),
        ({"max_known_ratio": None}, "max_known_ratio"),
    ],
)
def test_bad_protocol_arguments_raise_config_error(arguments: dict, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        Protocol(**arguments)


def test_known_count_above_available_raises_config_error() -> None:
    data = SyntheticData(10, 12)
    with pytest.raises(ConfigError, match="n_known_llms=11"):
        data.split(Protocol(n_known_llms=11, n_known_items=5))
    with pytest.raises(ConfigError, match="n_known_items=13"):
        data.split(Protocol(n_known_llms=5, n_known_items=13))


def test_bad_input_arrays_raise_data_error() -> None:
    data = SyntheticData(6, 7)
    llm_ids, item_ids, llm_idx, item_idx, correct = data.arrays()
    protocol = Protocol(n_known_llms=3, n_known_items=3, T=2)
    with pytest.raises(DataError, match="more than once"):
        protocol.split_arrays(
            llm_ids, item_ids, np.r_[llm_idx, 0], np.r_[item_idx, 0], np.r_[correct, 1], log=None
        )
    with pytest.raises(DataError, match="llm_idx"):
        protocol.split_arrays(llm_ids, item_ids, llm_idx + 1, item_idx, correct, log=None)
    with pytest.raises(DataError, match="correct"):
        protocol.split_arrays(llm_ids, item_ids, llm_idx, item_idx, correct * 2, log=None)
    with pytest.raises(DataError, match="equal length"):
        protocol.split_arrays(llm_ids, item_ids, llm_idx, item_idx[:-1], correct, log=None)
    with pytest.raises(DataError, match="llm_ids must be unique"):
        repeated_llm_ids = np.concatenate([llm_ids[:-1], llm_ids[:1]])
        protocol.split_arrays(repeated_llm_ids, item_ids, llm_idx, item_idx, correct, log=None)


def fake_dataset(data: SyntheticData, fingerprint: str, items: pd.DataFrame | None = None):
    """The duck-typed part of bayes_simrmf.data.Dataset that splits use (a fresh class per call,
    so a test may change its ``items`` attribute)."""

    class FakeDataset:
        def llm_ids(self) -> np.ndarray:
            return data.llm_ids

        def item_ids(self) -> np.ndarray:
            return data.item_ids

        def codes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            return data.llm_idx, data.item_idx, data.correct

        def fingerprint(self) -> str:
            return fingerprint

    if items is not None:
        FakeDataset.items = items
    return FakeDataset()


def test_split_of_a_dataset_uses_its_codes_and_fingerprint() -> None:
    data = SyntheticData(20, 25, missing=0.2)

    protocol = Protocol(n_known_llms=12, n_known_items=15, T=5, seed=9)
    split = protocol.split(fake_dataset(data, "abc123"), log=None)
    assert split.data_fingerprint == "abc123"
    expected = data.split(protocol, data_fingerprint="abc123")
    assert_splits_equal(split, expected)


# ------------------------------------------------------------------------------------------ save/load


def test_save_load_round_trip(tmp_path: Path, sparse_data: SyntheticData) -> None:
    split = sparse_data.split(
        Protocol(n_known_llms=35, n_known_items=None, T=12, seed=5, n_test_pairs=100), data_fingerprint="f00d"
    )
    folder = tmp_path / "nested" / "split"
    split.save(folder)
    assert sorted(path.name for path in folder.iterdir()) == ["pairs.parquet", "split.json"]
    loaded = Split.load(folder)
    assert_splits_equal(loaded, split)
    assert loaded.protocol.n_known_items is None  # the request, not the resolved count
    frame = pd.read_parquet(folder / "pairs.parquet")
    assert list(frame.columns) == ["split", "llm", "item", "correct"]
    assert frame["llm"].astype(str).str.startswith("llm-").all()
    # Saving again over an existing split replaces it.
    split.save(folder)
    assert_splits_equal(Split.load(folder), split)


def test_load_reports_missing_and_corrupt_files(tmp_path: Path, sparse_split: Split) -> None:
    with pytest.raises(SplitError, match="split.json is missing"):
        Split.load(tmp_path / "nothing-here")
    sparse_split.save(tmp_path / "s")

    (tmp_path / "s" / "pairs.parquet").write_bytes(b"not parquet")
    with pytest.raises(SplitError, match="pairs.parquet"):
        Split.load(tmp_path / "s")

    sparse_split.save(tmp_path / "s")
    (tmp_path / "s" / "split.json").write_text("{ truncated", encoding="utf-8")
    with pytest.raises(SplitError, match="not readable JSON"):
        Split.load(tmp_path / "s")

    sparse_split.save(tmp_path / "s")
    meta = json.loads((tmp_path / "s" / "split.json").read_text(encoding="utf-8"))
    meta["format_version"] = 99
    (tmp_path / "s" / "split.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(SplitError, match="format_version 99"):
        Split.load(tmp_path / "s")

    meta["format_version"] = 1
    meta["counts"]["A"] += 1
    (tmp_path / "s" / "split.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(SplitError, match="split 'A'"):
        Split.load(tmp_path / "s")


def test_pairs_validate_their_arrays() -> None:
    with pytest.raises(SplitError, match="equal length"):
        Pairs(np.zeros(3), np.zeros(2), np.zeros(3))
    assert len(Pairs.empty()) == 0


# ------------------------------------------------------------------------------------------ benchmark blocks

BENCHMARKS = ("A", "B", "C")


class BenchmarkData(SyntheticData):
    """60 LLMs x 610 items in three benchmarks with benchmark-block missingness.

    Benchmark A (300 items) is answered by half of the LLMs, B (200) by 50 of 60, C (110) by all but
    three. Three LLMs answered only B (eligible: 200/610 >= 25 %), four only C (not eligible:
    110/610 < 25 %); ten C items were answered by only 8 LLMs (not eligible: 8/60 < 25 %). On top,
    ``missing`` of the cells of an answered benchmark are missing at random.

    ``roles``: bool ``(60, 3)`` benchmarks each LLM answered; ``groups``: str ``(610,)`` benchmark of
    each item; ``rare``: bool ``(610,)`` the ten rarely answered items.
    """

    def __init__(self, missing: float = 0.05, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        roles = np.zeros((60, 3), dtype=bool)
        roles[0:4, 2] = True  # only C
        roles[4:7, 1] = True  # only B
        roles[7:37, 0] = True  # A: half of the LLMs
        roles[7:31, 1] = True
        roles[7:37, 2] = True
        roles[37:60, 1:] = True  # B and C
        self.roles = roles[rng.permutation(60)]
        self.groups = np.repeat(np.array(BENCHMARKS), [300, 200, 110])[rng.permutation(610)]
        answered_benchmark = self.roles[:, np.searchsorted(BENCHMARKS, self.groups)]
        observed = answered_benchmark & (rng.random((60, 610)) >= missing)
        self.rare = np.zeros(610, dtype=bool)
        self.rare[np.flatnonzero(self.groups == "C")[:10]] = True
        observed[:, self.rare] = False
        for item in np.flatnonzero(self.rare):
            observed[rng.choice(60, 8, replace=False), item] = True
        self._set_cells(observed, rng)

    def split(self, protocol: Protocol, **kwargs) -> Split:
        kwargs.setdefault("item_groups", self.groups)
        return super().split(protocol, **kwargs)


def known_codes(split: Split, data: SyntheticData) -> tuple[np.ndarray, np.ndarray]:
    """Indices into the data's own ids of the known LLMs ``(n_known_llms,)`` and items."""
    return (
        np.searchsorted(data.llm_ids, split.known_llms.astype(str)),
        np.searchsorted(data.item_ids, split.known_items.astype(str)),
    )


def per_benchmark_counts(split: Split, data: BenchmarkData) -> tuple[np.ndarray, np.ndarray]:
    """Answered known items and training pairs per known LLM and benchmark, each ``(n_known_llms, 3)``."""
    known_llms, known_items = known_codes(split, data)
    observed = data.truth[np.ix_(known_llms, known_items)] >= 0
    item_benchmark = np.searchsorted(BENCHMARKS, data.groups[known_items])
    train = split.pairs["train"]
    answered = np.stack([observed[:, item_benchmark == code].sum(axis=1) for code in range(3)], axis=1)
    trained = np.zeros((split.n_known_llms, 3), dtype=np.int64)
    np.add.at(trained, (train.llm, item_benchmark[train.item]), 1)
    return answered, trained


@pytest.fixture(scope="module")
def benchmark_data() -> BenchmarkData:
    return BenchmarkData()


@pytest.fixture(scope="module")
def benchmark_split(benchmark_data: BenchmarkData) -> Split:
    return benchmark_data.split(Protocol(n_known_llms=40, n_known_items=300, T=60, seed=0))


@pytest.mark.parametrize("T", [20, 60])
def test_benchmark_blocks_every_known_llm_trains_on_each_benchmark_in_proportion(
    benchmark_data: BenchmarkData, T: int
) -> None:
    split = benchmark_data.split(Protocol(n_known_llms=40, n_known_items=300, T=T, seed=0))
    llm_degree, item_degree = train_degrees(split)
    assert (llm_degree > 0).all() and (item_degree > 0).all()
    answered, trained = per_benchmark_counts(split, benchmark_data)
    # Every known LLM (the smaller side) gets T, or all it answered where that is fewer.
    assert np.array_equal(llm_degree, np.minimum(T, answered.sum(axis=1)))
    exact = llm_degree[:, None] * answered / answered.sum(axis=1, keepdims=True)
    assert np.abs(trained - exact).max() <= 2, "training pairs per benchmark not proportional"
    assert (trained[exact >= 1] > 0).all(), "a known LLM gets no pair in a benchmark it answered"
    assert split.degree_report["n_demoted_llms"] == split.degree_report["n_demoted_items"] == 0


def test_item_degrees_within_a_complete_benchmark_differ_by_at_most_one() -> None:
    data = BenchmarkData(missing=0.0, seed=1)
    split = data.split(Protocol(n_known_llms=40, n_known_items=300, T=60, seed=1))
    _, item_degree = train_degrees(split)
    _, known_items = known_codes(split, data)
    for name in BENCHMARKS:
        degrees = item_degree[data.groups[known_items] == name]
        assert degrees.max() - degrees.min() <= 1, name


def test_per_benchmark_report_rows_agree_with_the_pairs(
    benchmark_data: BenchmarkData, benchmark_split: Split
) -> None:
    split, data = benchmark_split, benchmark_data
    known_llms, known_items = known_codes(split, data)
    observed = data.truth[np.ix_(known_llms, known_items)] >= 0
    selected = np.zeros(observed.shape, dtype=bool)
    selected[split.pairs["train"].llm, split.pairs["train"].item] = True
    table = split.degree_table()
    assert list(table["benchmark"]) == list(BENCHMARKS)
    for row in table.to_dict("records"):
        columns = data.groups[known_items] == row["benchmark"]
        answering = observed[:, columns].any(axis=1)
        chosen = selected[:, columns]
        llm_degree, item_degree = chosen[answering].sum(axis=1), chosen.sum(axis=0)
        assert row["n_known_items"] == columns.sum()
        assert row["n_known_llms_answering"] == answering.sum()
        assert (row["llm_degree_min"], row["llm_degree_max"]) == (llm_degree.min(), llm_degree.max())
        assert row["llm_degree_mean"] == pytest.approx(llm_degree.mean())
        assert (row["item_degree_min"], row["item_degree_max"]) == (item_degree.min(), item_degree.max())
        assert row["item_degree_mean"] == pytest.approx(item_degree.mean())
        assert row["achieved_pairs"] == selected[:, columns].sum()
    assert table["achieved_pairs"].sum() == len(split.pairs["train"])
    assert table["target_pairs"].sum() == split.degree_report["n_target_pairs"]
    json.dumps(split.degree_report)  # saved with the split: must stay JSON-serialisable
    text = split.summary()
    assert "per benchmark" in text and "not T-regular" in text


def test_not_t_regular_is_reported_and_logged(benchmark_data: BenchmarkData) -> None:
    messages: list[str] = []
    protocol = Protocol(n_known_llms=40, n_known_items=300, T=60, seed=0)
    split = benchmark_data.split(protocol, log=messages.append)
    assert split.degree_report["t_regular"] is False
    (line,) = [message for message in messages if "not T-regular" in message]
    assert "T_used=60" in line
    for name in BENCHMARKS:  # then one line per benchmark with its degree ranges
        assert any(message.startswith(f"  {name}: ") and "item degree" in message for message in messages)


@pytest.mark.parametrize(
    ("n_known_llms", "n_known_items", "T", "llm_range", "item_range"),
    [
        (30, 60, 20, (20, 20), (10, 10)),  # LLMs the smaller side: they get T, items T*30/60
        (40, 60, 10, (10, 10), (6, 7)),  # items' share 6.67: floor or ceil
        (60, 25, 12, (5, 5), (12, 12)),  # items the smaller side (targets fitted per benchmark)
        (50, 40, 15, (12, 12), (15, 15)),
        (45, 45, 9, (9, 9), (9, 9)),
    ],
)
def test_complete_block_with_benchmarks_is_t_regular(
    n_known_llms: int, n_known_items: int, T: int, llm_range: tuple, item_range: tuple
) -> None:
    data = SyntheticData(80, 90)
    groups = np.random.default_rng(0).choice(["x", "y", "z"], size=90, p=[0.5, 0.3, 0.2])
    messages: list[str] = []
    split = data.split(
        Protocol(n_known_llms=n_known_llms, n_known_items=n_known_items, T=T, seed=3),
        item_groups=groups,
        log=messages.append,
    )
    llm_degree, item_degree = train_degrees(split)
    assert (llm_degree.min(), llm_degree.max()) == llm_range
    assert (item_degree.min(), item_degree.max()) == item_range
    assert split.degree_report["t_regular"] is True
    assert any(message.endswith("; T-regular") for message in messages)
    assert not any("not T-regular" in message for message in messages)


def test_known_items_without_training_pairs_move_to_the_new_side(benchmark_data: BenchmarkData) -> None:
    # T=10: benchmark A's 24 answering known LLMs want ~140 pairs for its ~150 known items.
    messages: list[str] = []
    protocol = Protocol(n_known_llms=40, n_known_items=300, T=10, seed=0)
    split = benchmark_data.split(protocol, log=messages.append)
    report = split.degree_report
    assert report["n_demoted_items"] > 0 and report["n_demoted_llms"] == 0
    assert split.n_known_items == 300 - report["n_demoted_items"]
    assert any(f"moved 0 known LLMs and {report['n_demoted_items']} known items" in m for m in messages)
    llm_degree, item_degree = train_degrees(split)
    assert (llm_degree > 0).all() and (item_degree > 0).all()
    assert report["t_regular"] is False
    # Every observed cell is still in exactly one split; the demoted items' cells are in B or D.
    cells = np.concatenate(
        [
            llm.astype(np.int64) * 610 + item
            for llm, item in (original_codes(split, benchmark_data, name) for name in SPLIT_NAMES)
        ]
    )
    assert len(np.unique(cells)) == len(cells) == len(benchmark_data.correct)
    same_draw = benchmark_data.split(Protocol(n_known_llms=40, n_known_items=300, T=60, seed=0))
    demoted = set(same_draw.known_items.astype(str)) - set(split.known_items.astype(str))
    assert len(demoted) == report["n_demoted_items"] and demoted <= set(split.new_items.astype(str))
    assert set(split.known_items.astype(str)) <= set(same_draw.known_items.astype(str))


def test_eligibility_excludes_rarely_answering_llms_and_rarely_answered_items(
    benchmark_data: BenchmarkData, benchmark_split: Split
) -> None:
    data = benchmark_data
    only_c = np.flatnonzero((data.roles == [False, False, True]).all(axis=1))
    known_llms, known_items = known_codes(benchmark_split, data)
    assert not np.isin(only_c, known_llms).any()
    assert not data.rare[known_items].any()
    report = benchmark_split.degree_report
    assert (report["n_eligible_llms"], report["n_eligible_items"]) == (56, 600)
    # Ineligible LLMs are new: their answers are scored in C and D.
    new_llm_codes = np.searchsorted(data.llm_ids, benchmark_split.new_llms.astype(str))
    assert np.isin(only_c, new_llm_codes).all()

    messages: list[str] = []
    split = data.split(Protocol(T=20, seed=0), log=messages.append)
    assert any("56 of 60 LLMs" in message and "600 of 610 items" in message for message in messages)
    assert split.n_known_llms == round(2 / 3 * 56)  # the default counts the eligible ones
    lenient = data.split(Protocol(n_known_llms=40, n_known_items=300, T=20, min_answer_share=0.1))
    assert (lenient.degree_report["n_eligible_llms"], lenient.degree_report["n_eligible_items"]) == (60, 610)


def test_explicit_count_above_the_eligible_count_raises_config_error(benchmark_data: BenchmarkData) -> None:
    with pytest.raises(ConfigError, match=r"n_known_llms=58 exceeds the 56 eligible llms.*min_answer_share"):
        benchmark_data.split(Protocol(n_known_llms=58, n_known_items=300))
    with pytest.raises(ConfigError, match=r"n_known_items=605 exceeds the 600 eligible items.*min_answer"):
        benchmark_data.split(Protocol(n_known_llms=40, n_known_items=605))


def test_default_known_count_is_capped_by_max_known_ratio() -> None:
    messages: list[str] = []
    assert Protocol().resolve(30, 700, log=messages.append) == (20, 200)  # 467 capped at 10 x 20
    assert any("max_known_ratio=10" in message and "= 200" in message for message in messages)
    assert Protocol(max_known_ratio=2.5).resolve(30, 700, log=None) == (20, 50)
    assert Protocol(n_known_items=400).resolve(30, 700, log=None) == (20, 400)  # explicit: unchanged
    assert Protocol(n_known_llms=5).resolve(30, 700, log=None) == (5, 50)
    split = SyntheticData(30, 700).split(Protocol(T=20))
    assert (split.n_known_llms, split.n_known_items) == (20, 200)


def test_same_seed_same_split_with_benchmarks(benchmark_data: BenchmarkData, benchmark_split: Split) -> None:
    protocol = benchmark_split.protocol
    assert_splits_equal(benchmark_data.split(protocol), benchmark_split)
    shuffle = np.random.default_rng(1).permutation(len(benchmark_data.correct))
    shuffled = protocol.split_arrays(
        benchmark_data.llm_ids,
        benchmark_data.item_ids,
        benchmark_data.llm_idx[shuffle],
        benchmark_data.item_idx[shuffle],
        benchmark_data.correct[shuffle],
        item_groups=benchmark_data.groups,
        log=None,
    )
    assert_splits_equal(shuffled, benchmark_split)


def test_changing_T_keeps_the_known_sets_with_benchmarks(
    benchmark_data: BenchmarkData, benchmark_split: Split
) -> None:
    other = benchmark_data.split(Protocol(n_known_llms=40, n_known_items=300, T=30, seed=0))
    assert np.array_equal(other.llms, benchmark_split.llms)
    assert np.array_equal(other.items, benchmark_split.items)
    assert other.pairs["B"].equals(benchmark_split.pairs["B"])


def test_items_as_the_smaller_side_get_T_in_every_benchmark(benchmark_data: BenchmarkData) -> None:
    split = benchmark_data.split(Protocol(n_known_llms=50, n_known_items=40, T=20, seed=3))
    llm_degree, item_degree = train_degrees(split)
    assert (item_degree == 20).all()
    assert (llm_degree > 0).all() and llm_degree.sum() == 40 * 20


def test_item_groups_must_match_the_item_ids(benchmark_data: BenchmarkData) -> None:
    with pytest.raises(DataError, match="item_groups"):
        benchmark_data.split(
            Protocol(n_known_llms=40, n_known_items=300), item_groups=benchmark_data.groups[:-1]
        )


def test_split_of_a_dataset_groups_items_by_their_benchmark_column(benchmark_data: BenchmarkData) -> None:
    data = benchmark_data
    items_table = pd.DataFrame({"item": data.item_ids, "benchmark": data.groups}).iloc[::-1]  # any row order

    FakeDataset = type(fake_dataset(data, "f", items_table))
    protocol = Protocol(n_known_llms=40, n_known_items=300, T=30, seed=2)
    split = protocol.split(FakeDataset(), log=None)
    assert_splits_equal(split, data.split(protocol, data_fingerprint="f"))
    FakeDataset.items = items_table.drop(columns="benchmark")
    assert list(protocol.split(FakeDataset(), log=None).degree_table()["benchmark"]) == ["(none)"]


def test_degree_report_round_trips_and_old_reports_still_load(tmp_path: Path, benchmark_split: Split) -> None:
    benchmark_split.save(tmp_path / "new")
    loaded = Split.load(tmp_path / "new")
    assert_splits_equal(loaded, benchmark_split)
    pd.testing.assert_frame_equal(loaded.degree_table(), benchmark_split.degree_table())
    # A split saved before the per-benchmark report: no t_regular, per_benchmark, ... keys.
    meta = json.loads((tmp_path / "new" / "split.json").read_text(encoding="utf-8"))
    old_keys = {
        "T_requested", "T_used", "target_llm_degree", "target_item_degree", "llm_degree", "item_degree",
        "n_target_pairs", "n_train_pairs", "shortfall_pairs", "n_llms_below_target", "n_items_below_target",
    }
    meta["degree_report"] = {key: meta["degree_report"][key] for key in old_keys}
    del meta["protocol"]["min_answer_share"], meta["protocol"]["max_known_ratio"]
    (tmp_path / "new" / "split.json").write_text(json.dumps(meta), encoding="utf-8")
    old = Split.load(tmp_path / "new")
    assert old.degree_table().empty and list(old.degree_table().columns)[0] == "benchmark"
    assert "train degree" in old.summary() and "per benchmark" not in old.summary()


# ------------------------------------------------------------------------------------------ speed, real data


def test_speed_at_the_papers_scale() -> None:
    """1,000 x 1,000 known at T = 1,000 and a 4,000 x 250 shape both split in well under seconds."""
    shapes = ((1100, 1100, 1000, 1000, 1000), (4000, 250, 3000, 200, 150))
    for n_llms, n_items, n_known_llms, n_known_items, T in shapes:
        data = SyntheticData(n_llms, n_items, missing=0.02, seed=8)
        start = time.perf_counter()
        split = data.split(Protocol(n_known_llms=n_known_llms, n_known_items=n_known_items, T=T, seed=8))
        assert time.perf_counter() - start < 5.0
        assert split.degree_report["llm_degree"]["max"] <= T


@pytest.mark.slow
def test_openllm_mmlupro_math_paper_like_split() -> None:
    responses_path = DATA_DIR / "openllm-v2-mmlupro-math" / "responses.parquet"
    if not responses_path.is_file():
        pytest.skip(f"{responses_path} not available")
    responses = pd.read_parquet(responses_path, columns=["llm", "item", "correct"])
    llm_ids = np.sort(responses["llm"].astype(str).unique())
    item_ids = np.sort(responses["item"].astype(str).unique())
    llm_idx = np.searchsorted(llm_ids, responses["llm"].astype(str).to_numpy())
    item_idx = np.searchsorted(item_ids, responses["item"].astype(str).to_numpy())
    assert (len(llm_ids), len(item_ids)) == (755, 1351)

    start = time.perf_counter()
    split = Protocol(n_known_llms=500, n_known_items=1000, T=100, seed=0).split_arrays(
        llm_ids, item_ids, llm_idx, item_idx, responses["correct"].to_numpy(), log=None
    )
    elapsed = time.perf_counter() - start
    assert elapsed < 10.0, f"split took {elapsed:.1f} s"

    llm_degree, item_degree = train_degrees(split)
    assert (llm_degree == 100).all()  # the smaller known side (LLMs) gets T
    assert (item_degree == 50).all()  # 100 * 500 / 1000
    # Per-pair roles from the original codes (isin on the short id arrays only: fast).
    pair_llm_known = np.isin(llm_ids, split.known_llms.astype(str))[llm_idx]
    pair_item_known = np.isin(item_ids, split.known_items.astype(str))[item_idx]
    assert len(split.pairs["train"]) + len(split.pairs["A"]) == int((pair_llm_known & pair_item_known).sum())
    assert len(split.pairs["B"]) == int((pair_llm_known & ~pair_item_known).sum())
    assert len(split.pairs["C"]) == int((~pair_llm_known & pair_item_known).sum())
    assert sum(len(pairs) for pairs in split.pairs.values()) == len(responses)


@pytest.mark.slow
def test_openllm_v2_every_known_llm_trains_on_mmlu_pro_and_the_rest() -> None:
    """openllm-v2: MMLU-Pro answered by 37 of 78 LLMs, the other benchmarks by all (the issue's case)."""
    folder = DATA_DIR / "openllm-v2"
    if not (folder / "responses.parquet").is_file():
        pytest.skip(f"{folder} not available")
    from bayes_simrmf.data import load_dataset

    dataset = load_dataset(folder, unknown_entities="add", log=None)
    messages: list[str] = []
    split = Protocol(T=300, seed=0).split(dataset, log=messages.append)
    assert (split.n_known_llms, split.n_known_items) == (52, 520)  # 1,000 items capped at 10 x 52
    llm_degree, item_degree = train_degrees(split)
    assert (llm_degree > 0).all() and (item_degree > 0).all()
    benchmark = dataset.items.set_index("item")["benchmark"].astype(str)
    item_is_mmlu_pro = (benchmark.reindex(split.known_items.astype(str)) == "MMLU-Pro").to_numpy()
    train = split.pairs["train"]
    mmlu_pairs = np.bincount(train.llm[item_is_mmlu_pro[train.item]], minlength=split.n_known_llms)
    other_pairs = np.bincount(train.llm[~item_is_mmlu_pro[train.item]], minlength=split.n_known_llms)
    llm_idx, item_idx, _ = dataset.codes()
    answered_mmlu_pro = np.zeros(dataset.n_llms, dtype=bool)
    all_items_mmlu_pro = (benchmark.reindex(dataset.item_ids()) == "MMLU-Pro").to_numpy()
    answered_mmlu_pro[llm_idx[all_items_mmlu_pro[item_idx]]] = True
    known_answered = answered_mmlu_pro[np.searchsorted(dataset.llm_ids(), split.known_llms.astype(str))]
    assert known_answered.any() and not known_answered.all()
    assert (mmlu_pairs[known_answered] > 0).all(), "a known LLM that answered MMLU-Pro has no MMLU-Pro pair"
    assert (other_pairs > 0).all(), "a known LLM has no pair outside MMLU-Pro"
    table = split.degree_table().set_index("benchmark")
    assert table.loc["MMLU-Pro", "n_known_llms_answering"] == known_answered.sum()
    assert split.degree_report["t_regular"] is False and any("not T-regular" in m for m in messages)


# Frontier protocols: the newest or the strongest LLMs are new ---------------------------------------------------
def test_newest_llms_are_new_and_undated_ones_count_as_the_oldest() -> None:
    data = SyntheticData(40, 60, missing=0.1, seed=3)
    rng = np.random.default_rng(0)
    dates = np.datetime64("2024-01-01") + rng.permutation(400)[:40].astype("timedelta64[D]")  # distinct
    dates[[3, 7]] = np.datetime64("NaT")
    messages: list[str] = []
    split = data.split(Protocol(n_known_llms=25, T=10, seed=1, new_llms="newest"), llm_dates=dates,
                       log=messages.append)
    index = {llm: position for position, llm in enumerate(data.llm_ids)}
    known = np.array([index[llm] for llm in split.known_llms.astype(str)])
    new = np.array([index[llm] for llm in split.new_llms.astype(str)])
    assert {3, 7} <= set(known)  # no date: the oldest
    dated = dates[known][~np.isnat(dates[known])]
    assert dated.max() <= dates[new].min()
    assert any("newest 15" in message for message in messages) and any("no date" in message for message in messages)
    assert "new LLMs: the newest" in split.summary()
    # The seed breaks ties only: another seed keeps the same known LLMs (the dates are distinct but the two NaT).
    other = data.split(Protocol(n_known_llms=25, T=10, seed=2, new_llms="newest"), llm_dates=dates)
    assert set(other.known_llms) == set(split.known_llms)


def test_strongest_llms_are_new() -> None:
    data = SyntheticData(40, 60, missing=0.1, seed=4)
    split = data.split(Protocol(n_known_llms=25, T=10, seed=0, new_llms="strongest"))
    accuracy = pd.Series(data.correct).groupby(data.llm_idx).mean().to_numpy()
    index = {llm: position for position, llm in enumerate(data.llm_ids)}
    known = [index[llm] for llm in split.known_llms.astype(str)]
    new = [index[llm] for llm in split.new_llms.astype(str)]
    assert accuracy[known].max() <= accuracy[new].min()
    random = data.split(Protocol(n_known_llms=25, T=10, seed=0))
    assert set(random.known_llms) != set(split.known_llms)


def test_frontier_protocols_refuse_what_they_cannot_do(tmp_path: Path) -> None:
    data = SyntheticData(20, 30, seed=5)
    with pytest.raises(ConfigError, match="new_llms must be one of"):
        Protocol(new_llms="latest")
    with pytest.raises(ConfigError, match="needs each LLM's date"):
        data.split(Protocol(n_known_llms=10, T=5, new_llms="newest"))
    with pytest.raises(ConfigError, match="no LLM has a date"):
        data.split(Protocol(n_known_llms=10, T=5, new_llms="newest"), llm_dates=np.full(20, np.datetime64("NaT")))
    with pytest.raises(ConfigError, match="one date per LLM"):
        data.split(Protocol(n_known_llms=10, T=5, new_llms="newest"), llm_dates=np.full(3, np.datetime64("2024-01-01")))
    split = data.split(Protocol(n_known_llms=10, T=5, new_llms="strongest"))
    split.save(tmp_path / "split")
    assert Split.load(tmp_path / "split").protocol.new_llms == "strongest"


def test_newest_on_real_metadata_puts_every_later_submission_in_c() -> None:
    folder = DATA_DIR / "openllm-v2-mmlupro-math"
    if not (folder / "responses.parquet").is_file():
        pytest.skip(f"{folder} not available")
    from bayes_simrmf.data import load_dataset

    dataset = load_dataset(folder, log=None)
    split = Protocol(n_known_llms=500, n_known_items=1000, T=30, seed=0, new_llms="newest").split(dataset, log=None)
    table = dataset.llms.set_index("llm")
    dates = pd.to_datetime(table["submission_date"], errors="coerce").fillna(
        pd.to_datetime(table["upload_date"], errors="coerce"))
    known, new = dates.reindex(split.known_llms.astype(str)), dates.reindex(split.new_llms.astype(str))
    assert known.max() <= new.dropna().min()
    assert split.pairs["C"].correct.mean() > 0  # the newest LLMs are scored in C
