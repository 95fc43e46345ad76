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

from bayes_simrmf.data.common import (
    CSV_TEXT_COLUMNS,
    DATA_DIR_ENV_VAR,
    FILE_EXTENSIONS,
    ID_COLUMN,
    RESPONSE_COLUMNS,
    TABLE_NAMES,
    UnknownEntityPolicy,
)
from bayes_simrmf.data.dataset import (
    Dataset,
)
from bayes_simrmf.data.locations import (
    default_data_dir,
    shared_dataset_path,
)
from bayes_simrmf.data.load import (
    from_frames,
    load_dataset,
    responses_digest,
)

__all__ = [
    "CSV_TEXT_COLUMNS",
    "DATA_DIR_ENV_VAR",
    "Dataset",
    "FILE_EXTENSIONS",
    "ID_COLUMN",
    "RESPONSE_COLUMNS",
    "TABLE_NAMES",
    "UnknownEntityPolicy",
    "default_data_dir",
    "from_frames",
    "load_dataset",
    "responses_digest",
    "shared_dataset_path",
]
