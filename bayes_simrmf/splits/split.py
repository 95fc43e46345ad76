"""A split: its entities, pairs and degree report; saved and loaded with a format version (:class:`Split`)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayes_simrmf.errors import ConfigError, SplitError

if TYPE_CHECKING:
    from bayes_simrmf.splits.protocol import Protocol  # protocol imports this module
from bayes_simrmf.splits.common import DEGREE_TABLE_COLUMNS, SPLIT_NAMES, _FORMAT_VERSION, _PAIRS_PARQUET, _SPLIT_JSON
from bayes_simrmf.splits.pairs import Pairs


@dataclass(frozen=True, eq=False)
class Split:
    """The outcome of a :class:`Protocol` on one dataset.

    Attributes:
        protocol: the protocol as requested (its ``None`` known counts are resolved below).
        llms: str ``(n_llms,)`` LLM ids, the ``n_known_llms`` known ones first, then the new ones.
        items: str ``(n_items,)`` item ids, known first, then new.
        n_known_llms: number of known LLMs actually used (after known LLMs without a training pair
            were moved to the new side).
        n_known_items: number of known items actually used (same).
        pairs: ``"train"``, ``"A"``, ``"B"``, ``"C"``, ``"D"`` -> :class:`Pairs` coded into
            ``llms`` / ``items``; the five sets are disjoint.
        degree_report: achieved training degrees per known LLM and item versus their targets,
            whether they are T-regular, the eligible and demoted counts, and one row per benchmark
            (``"per_benchmark"``, see :meth:`degree_table`).
        data_fingerprint: fingerprint of the dataset the split was drawn from, if known.
    """

    protocol: Protocol
    llms: np.ndarray
    items: np.ndarray
    n_known_llms: int
    n_known_items: int
    pairs: dict[str, Pairs]
    degree_report: dict[str, Any] = field(default_factory=dict)
    data_fingerprint: str | None = None

    def __post_init__(self) -> None:
        llms = np.asarray([str(llm) for llm in np.asarray(self.llms).ravel()], dtype=object)
        items = np.asarray([str(item) for item in np.asarray(self.items).ravel()], dtype=object)
        llms.flags.writeable = False
        items.flags.writeable = False
        object.__setattr__(self, "llms", llms)
        object.__setattr__(self, "items", items)
        if set(self.pairs) != set(SPLIT_NAMES):
            raise SplitError(f"pairs must have keys {list(SPLIT_NAMES)}, got {sorted(self.pairs)}")
        object.__setattr__(self, "pairs", {name: self.pairs[name] for name in SPLIT_NAMES})
        if not (0 <= self.n_known_llms <= len(llms) and 0 <= self.n_known_items <= len(items)):
            raise SplitError(
                f"n_known_llms={self.n_known_llms} / n_known_items={self.n_known_items} out of range "
                f"for {len(llms)} llms and {len(items)} items"
            )
        for name, split_pairs in self.pairs.items():
            for axis, codes, n_ids in (
                ("llm", split_pairs.llm, len(llms)),
                ("item", split_pairs.item, len(items)),
            ):
                if len(codes) and (codes.min() < 0 or codes.max() >= n_ids):
                    raise SplitError(f"pairs[{name!r}].{axis} has codes outside [0, {n_ids})")

    @property
    def known_llms(self) -> np.ndarray:
        """str ``(n_known_llms,)`` ids of the known LLMs."""
        return self.llms[: self.n_known_llms]

    @property
    def new_llms(self) -> np.ndarray:
        """str ``(n_llms - n_known_llms,)`` ids of the new LLMs."""
        return self.llms[self.n_known_llms :]

    @property
    def known_items(self) -> np.ndarray:
        """str ``(n_known_items,)`` ids of the known items."""
        return self.items[: self.n_known_items]

    @property
    def new_items(self) -> np.ndarray:
        """str ``(n_items - n_known_items,)`` ids of the new items."""
        return self.items[self.n_known_items :]

    def summary(self) -> str:
        """Plain-text table: pairs, LLMs, items and mean score per split, then the training degrees
        (overall, then per benchmark as in :meth:`degree_table`)."""
        lines = [
            f"LLMs: {len(self.llms)} ({self.n_known_llms} known, {len(self.new_llms)} new); "
            f"items: {len(self.items)} ({self.n_known_items} known, {len(self.new_items)} new); "
            f"T={_t_text(self.protocol.T, (self.degree_report or {}).get('T_used'))}, seed={self.protocol.seed}"
            + ("" if self.protocol.new_llms == "random" else f", new LLMs: the {self.protocol.new_llms}"),
            f"{'split':<6}{'pairs':>10}{'llms':>8}{'items':>8}{'mean correct':>14}",
        ]
        for name, split_pairs in self.pairs.items():
            mean_correct = f"{split_pairs.correct.mean():.3f}" if len(split_pairs) else "-"
            lines.append(
                f"{name:<6}{len(split_pairs):>10}{len(np.unique(split_pairs.llm)):>8}"
                f"{len(np.unique(split_pairs.item)):>8}{mean_correct:>14}"
            )
        report = self.degree_report
        if report:
            llm, item = report["llm_degree"], report["item_degree"]
            line = (
                f"train degree per known LLM {llm['min']}-{llm['max']} (mean {llm['mean']:.2f}), "
                f"per known item {item['min']}-{item['max']} (mean {item['mean']:.2f}); "
                f"shortfall {report['shortfall_pairs']} pairs"
            )
            if "t_regular" in report:  # splits saved before the per-benchmark report lack these
                line += (
                    f"; {'T-regular' if report['t_regular'] else 'not T-regular'}; moved to new: "
                    f"{report['n_demoted_llms']} LLMs, {report['n_demoted_items']} items"
                )
            lines.append(line)
        table = self.degree_table()
        if len(table):
            lines.append("training degrees per benchmark:")
            lines.append(table.to_string(index=False, float_format=lambda value: f"{value:.2f}"))
        return "\n".join(lines)

    def degree_table(self) -> pd.DataFrame:
        """Training degrees per benchmark, one row each, columns :data:`DEGREE_TABLE_COLUMNS`.

        ``llm_degree_*`` are over the known LLMs that answered a known item of the benchmark,
        ``item_degree_*`` over its known items; ``target_pairs`` / ``achieved_pairs`` are wanted and
        chosen training pairs in it. Empty for splits saved before the report had these rows.
        """
        rows = self.degree_report.get("per_benchmark", []) if self.degree_report else []
        return pd.DataFrame(rows, columns=list(DEGREE_TABLE_COLUMNS))

    # ---------------------------------------------------------------------------------------------
    # Persistence
    # ---------------------------------------------------------------------------------------------

    def save(self, folder: str | os.PathLike[str]) -> None:
        """Write ``split.json`` and ``pairs.parquet`` into ``folder`` (created if needed).

        Each file is written to a temporary name and moved into place, so a reader never sees a
        half-written file; ``split.json`` is written last and so marks a complete split.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        split_names = np.repeat(np.array(SPLIT_NAMES, dtype=object), [len(p) for p in self.pairs.values()])
        llm_codes = np.concatenate([p.llm for p in self.pairs.values()])
        item_codes = np.concatenate([p.item for p in self.pairs.values()])
        pairs_frame = pd.DataFrame(
            {
                "split": pd.Categorical(split_names, categories=list(SPLIT_NAMES)),
                # Dictionary-encoded strings: the file stores each id once.
                "llm": pd.Categorical.from_codes(llm_codes, categories=pd.Index(self.llms, dtype=object)),
                "item": pd.Categorical.from_codes(item_codes, categories=pd.Index(self.items, dtype=object)),
                "correct": np.concatenate([p.correct for p in self.pairs.values()]).astype(np.int8),
            }
        )
        meta = {
            "format_version": _FORMAT_VERSION,
            "protocol": asdict(self.protocol),
            "n_known_llms": int(self.n_known_llms),
            "n_known_items": int(self.n_known_items),
            "llms": [str(llm) for llm in self.llms],
            "items": [str(item) for item in self.items],
            "counts": {name: len(p) for name, p in self.pairs.items()},
            "degree_report": self.degree_report,
            "data_fingerprint": self.data_fingerprint,
        }
        _atomic_write(folder / _PAIRS_PARQUET, lambda path: pairs_frame.to_parquet(path, index=False))
        _atomic_write(
            folder / _SPLIT_JSON,
            lambda path: Path(path).write_text(json.dumps(meta, indent=1), encoding="utf-8"),
        )

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> Split:
        """Read a split written by :meth:`save`.

        Raises:
            SplitError: a file is missing, unreadable, of another format version, or inconsistent.
        """
        folder = Path(folder)
        json_path, parquet_path = folder / _SPLIT_JSON, folder / _PAIRS_PARQUET
        for path in (json_path, parquet_path):
            if not path.is_file():
                raise SplitError(f"{path} is missing; is {folder} a split folder written by bayes-simrmf?")
        try:
            meta = json.loads(json_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise SplitError(f"{json_path} is not readable JSON: {error}") from error
        if not isinstance(meta, dict) or meta.get("format_version") != _FORMAT_VERSION:
            found = meta.get("format_version") if isinstance(meta, dict) else None
            raise SplitError(
                f"{json_path} has format_version {found!r}; this version reads {_FORMAT_VERSION}"
            )
        try:
            from bayes_simrmf.splits.protocol import Protocol  # protocol imports this module

            protocol = Protocol(**meta["protocol"])
            llms = np.asarray(meta["llms"], dtype=object)
            items = np.asarray(meta["items"], dtype=object)
            n_known_llms, n_known_items = int(meta["n_known_llms"]), int(meta["n_known_items"])
            counts = {name: int(meta["counts"][name]) for name in SPLIT_NAMES}
            degree_report, data_fingerprint = meta["degree_report"], meta["data_fingerprint"]
        except (KeyError, TypeError, ValueError, ConfigError) as error:
            raise SplitError(f"{json_path} is incomplete or malformed: {error!r}") from error

        try:
            frame = pd.read_parquet(parquet_path)
        except Exception as error:  # pyarrow raises several unrelated types on corrupt files
            raise SplitError(f"{parquet_path} is not a readable parquet file: {error}") from error
        missing = {"split", "llm", "item", "correct"} - set(frame.columns)
        if missing:
            raise SplitError(f"{parquet_path} lacks columns {sorted(missing)}")
        llm_codes = _codes_of(frame["llm"], llms, parquet_path, "llm")
        item_codes = _codes_of(frame["item"], items, parquet_path, "item")
        split_column = frame["split"].astype(str).to_numpy()
        correct = frame["correct"].to_numpy()

        pairs = {}
        for name in SPLIT_NAMES:
            rows = np.flatnonzero(split_column == name)
            if len(rows) != counts[name]:
                raise SplitError(
                    f"{parquet_path} has {len(rows)} rows of split {name!r}, {json_path} says {counts[name]}"
                )
            pairs[name] = Pairs(llm_codes[rows], item_codes[rows], correct[rows])
        return cls(
            protocol=protocol,
            llms=llms,
            items=items,
            n_known_llms=n_known_llms,
            n_known_items=n_known_items,
            pairs=pairs,
            degree_report=degree_report,
            data_fingerprint=data_fingerprint,
        )


def _codes_of(column: pd.Series, ids: np.ndarray, path: Path, name: str) -> np.ndarray:
    """int32 codes of a string (or categorical) column into ``ids``; SplitError on unknown ids."""
    index = pd.Index(ids, dtype=object)
    if isinstance(column.dtype, pd.CategoricalDtype):
        category_codes = index.get_indexer(column.cat.categories.astype(str))
        codes = np.where(column.cat.codes.to_numpy() >= 0, category_codes[column.cat.codes.to_numpy()], -1)
    else:
        codes = index.get_indexer(column.astype(str))
    if (codes < 0).any():
        example = column[codes < 0].iloc[0]
        raise SplitError(f"{path} column {name!r} has ids not listed in {_SPLIT_JSON}, e.g. {example!r}")
    return codes.astype(np.int32)


def _atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Call ``write(temporary_path)`` then move the result onto ``path`` in one step."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def _t_text(requested: int, used: int | None) -> str:
    """T as the summary states it: the T the split used, and the one asked for where it was capped."""
    return str(requested) if used is None or used == requested else f"{used} (asked {requested}; capped)"
