"""Names, formats and random streams shared by the split modules."""

from __future__ import annotations


import numpy as np


#: The paper's number of known LLMs and known items.
PAPER_N_KNOWN = 1000
#: The paper's default is used only where at least this many entities exist (so >= 1/3 stay new).
_PAPER_DEFAULT_MIN_ENTITIES = 1500
#: Fraction of an axis made known when the data are too small for the paper's 1,000.
_FALLBACK_KNOWN_FRACTION = 2.0 / 3.0
#: Group name of items without a benchmark (or of every item when no groups are given).
_NO_GROUP = "(none)"

TEST_SPLIT_NAMES: tuple[str, ...] = ("A", "B", "C", "D")
SPLIT_NAMES: tuple[str, ...] = ("train", *TEST_SPLIT_NAMES)
#: Columns of :meth:`Split.degree_table` (and keys of each ``degree_report["per_benchmark"]`` row).
DEGREE_TABLE_COLUMNS: tuple[str, ...] = (
    "benchmark",
    "n_known_items",
    "n_known_llms_answering",
    "llm_degree_min",
    "llm_degree_max",
    "llm_degree_mean",
    "item_degree_min",
    "item_degree_max",
    "item_degree_mean",
    "target_pairs",
    "achieved_pairs",
)

# Version 1 still: the new degree-report keys are optional on load, so old files stay readable.
_FORMAT_VERSION = 1
_SPLIT_JSON = "split.json"
_PAIRS_PARQUET = "pairs.parquet"

# Independent random streams per purpose, so that e.g. changing T leaves the known sets unchanged
# and changing n_test_pairs leaves the training pairs unchanged.
(
    _STREAM_KNOWN_LLMS,
    _STREAM_KNOWN_ITEMS,
    _STREAM_TRAIN,
    _STREAM_A,
    _STREAM_B,
    _STREAM_C,
    _STREAM_D,
    _STREAM_DEGREE_TARGETS,
) = range(8)
_TEST_STREAMS = {"A": _STREAM_A, "B": _STREAM_B, "C": _STREAM_C, "D": _STREAM_D}


def _stream(seed: int, purpose: int) -> np.random.Generator:
    """Random generator for one purpose, derived from the protocol seed."""
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(purpose + 1)[purpose])


