"""Table names, columns and policies shared by the data modules."""

from __future__ import annotations

from typing import Literal


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


