"""The data model: :class:`Dataset`, responses (llm, item, correct) with the items and LLMs tables."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bayes_simrmf.errors import DataError
from bayes_simrmf.data.common import RESPONSE_COLUMNS, TABLE_NAMES, _FINGERPRINT_VERSION
from bayes_simrmf.data.tables import _format_examples, _ids_as_str, _positions_in, _sorted_unique_ids


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
        tables: the tables read (``load_dataset(..., tables=...)``); one left out is an empty frame. Folding
            a new LLM in reads only ``("llms",)``, new questions ``("items", "llms")``; :meth:`fingerprint` needs
            the responses, :meth:`metadata_fingerprints` covers the side tables read.
    """

    responses: pd.DataFrame
    items: pd.DataFrame
    llms: pd.DataFrame
    name: str = "in-memory"
    source: str = ""
    tables: tuple[str, ...] = TABLE_NAMES
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
        if "llms" not in self.tables or ("responses" in self.tables and "items" not in self.tables):
            raise DataError(f"{where}: tables={self.tables!r}; the llms table is always read, and responses only "
                            "with items")
        for table_name, frame in (("responses", self.responses), ("items", self.items)):
            if table_name not in self.tables and len(frame):
                raise DataError(f"{where}: {table_name} was not read (tables={self.tables!r}) but has {len(frame)} rows")
        if len(self.responses) == 0 and "responses" in self.tables:
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
        """Fraction of observed responses that are correct, in [0, 1] (NaN without responses)."""
        return float(self._codes[2].mean()) if len(self._codes[2]) else float("nan")

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
        if "responses" not in self.tables:
            raise DataError(f"Dataset {self.name!r} was loaded without its responses (tables={self.tables!r}), so "
                            "it has no fingerprint; load every table")
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

    def metadata_fingerprints(self) -> dict[str, str]:
        """``{"llms": ..., "items": ...}``: a hash of each metadata table read (every column, every row, in id
        order; 16 hex characters of sha256), which :meth:`fingerprint` leaves out. A model records them, so a command that
        folds new entities in from another copy of the data (edited metadata or texts) can say which table differs.
        """
        hashes = {}
        for name, table, key in (("llms", self.llms, "llm"), ("items", self.items, "item")):
            if name not in self.tables:
                continue
            frame = table.assign(**{key: table[key].astype(str)}).sort_values(key, kind="stable")
            frame = frame[sorted(frame.columns, key=str)].astype(str).reset_index(drop=True)
            digest = hashlib.sha256("\0".join(map(str, frame.columns)).encode("utf-8"))
            digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().astype("<u8").tobytes())
            hashes[name] = digest.hexdigest()[:16]
        return hashes

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
                       source=self.source, tables=self.tables)

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


