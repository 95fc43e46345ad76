"""LLM similarity from lineage: base models, fine-tunes and merges as a graph."""

from __future__ import annotations

import dataclasses
import functools
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from bayes_simrmf.errors import ConfigError
from bayes_simrmf.similarity.llm_features import (
    LLMFeatureReport,
    _LINEAGE_COLUMNS_REQUIRED,
    _is_missing,
    _parse_flag,
    _parse_model_type,
    _require_columns,
    llm_feature_matrix,
)


LINEAGE_WEIGHTS: dict[str, float] = {
    "fine_tune": 0.8,  # one was fine-tuned from the other, or both were fine-tuned from the same parent
    "merge_source": 0.7,  # one was merged from the other
    "same_base_model": 0.6,  # same root ancestor along fine-tune hops (e.g. cousins, grandparent / grandchild)
    "same_merge_source": 0.5,  # both were merged from the same parent
}
"""PAPER.md "Side information" lineage weights; a pair takes the largest weight among the relations that hold."""

# Hugging Face repositories renamed after the leaderboard started, so both names occur as base_model values.
_RENAMED_REPO_PREFIXES: tuple[tuple[str, str], ...] = (
    ("meta-llama/meta-llama-3.1-", "meta-llama/llama-3.1-"),
)
_MERGE_SUFFIX = re.compile(r"\s*\(merge\)\s*$", re.IGNORECASE)
_NO_PARENT_VALUES = frozenset({"", "removed", "nan", "none", "null", "?", "unknown"})


def _canonical_llm_id(raw: str) -> str:
    """Compare Hugging Face ids the way the hub resolves them: case-insensitively, following known renames."""
    key = raw.strip().casefold()
    for old_prefix, new_prefix in _RENAMED_REPO_PREFIXES:
        if key.startswith(old_prefix):
            key = new_prefix + key[len(old_prefix):]
    return key


@dataclasses.dataclass(frozen=True)
class LineageReport:
    """What :func:`llm_lineage_matrix` found in the base_model column.

    Attributes:
        n_llms: rows of the table.
        n_with_parent: LLMs whose base_model names another model (one lineage hop).
        n_parent_in_table: of those, parents that are rows of this table.
        n_with_relation: LLMs with a non-zero lineage similarity to at least one other LLM ("usable lineage").
        n_fine_tune_edges, n_merge_edges: parent hops by type (decided by the child, see the function doc).
        n_no_parent_self: base_model is the LLM itself (no known parent).
        n_self_merge: base_model is "<the LLM itself> (Merge)": a merge whose sources the table does not list.
        n_removed: base_model is "Removed" (or empty / missing).
        n_parent_marked_merge: parents written as "<parent> (Merge)": the parent is itself a merge.
        n_id_case_duplicates: rows whose llm id equals an earlier row's up to case (same hub repository).
        pair_counts: unordered LLM pairs whose final weight came from each relation.
    """

    n_llms: int
    n_with_parent: int
    n_parent_in_table: int
    n_with_relation: int
    n_fine_tune_edges: int
    n_merge_edges: int
    n_no_parent_self: int
    n_self_merge: int
    n_removed: int
    n_parent_marked_merge: int
    n_id_case_duplicates: int
    pair_counts: dict[str, int]

    def __str__(self) -> str:
        return (
            f"LLM lineage: {self.n_with_relation}/{self.n_llms} LLMs related to another; {self.n_with_parent} name a "
            f"parent ({self.n_parent_in_table} in the table; {self.n_fine_tune_edges} fine-tune, {self.n_merge_edges} "
            f"merge hops); no parent: {self.n_no_parent_self} self, {self.n_self_merge} self-merge, "
            f"{self.n_removed} removed; pairs by relation {self.pair_counts}"
        )


@dataclasses.dataclass(frozen=True)
class _LineageGraph:
    """One parent hop per LLM, as read from the base_model column (see :func:`llm_lineage_matrix`).

    Attributes:
        own_keys: canonical id of each row's LLM.
        row_of_key: canonical id -> first row with that id (rows differing only in case are the same repository).
        parent_key: canonical id of each row's parent, ``None`` when it names no other model.
        is_merge_child: (n_llms,) bool, the LLM is a merge (so its parent hop is a merge hop).
        base_model_readings: how many base_model values said each of "removed", "self", "self_merge", "parent",
            "parent_marked_merge" (see :func:`_read_base_model`).
    """

    own_keys: list[str]
    row_of_key: dict[str, int]
    parent_key: list[str | None]
    is_merge_child: np.ndarray
    base_model_readings: Counter[str]


def _read_base_model(raw_base: Any, own_key: str) -> tuple[str | None, str]:
    """One base_model value -> (parent's canonical id or ``None``, what the value said).

    What it said: "removed" (missing, empty, "Removed", ...), "self" (the LLM itself), "self_merge" ("<the LLM
    itself> (Merge)"), "parent" or "parent_marked_merge" (another model, written as "<parent> (Merge)").
    """
    if _is_missing(raw_base) or str(raw_base).strip().casefold() in _NO_PARENT_VALUES:
        return None, "removed"
    base_text = str(raw_base)
    marked_merge = bool(_MERGE_SUFFIX.search(base_text))
    candidate = _canonical_llm_id(_MERGE_SUFFIX.sub("", base_text))
    if not candidate or candidate in _NO_PARENT_VALUES:
        return None, "removed"
    if candidate == own_key:
        return None, "self_merge" if marked_merge else "self"
    return candidate, "parent_marked_merge" if marked_merge else "parent"


def _read_lineage_graph(llms: pd.DataFrame) -> _LineageGraph:
    """Canonical ids, parent hops and merge status of every row of the table."""
    own_keys = [_canonical_llm_id(str(v)) for v in llms["llm"]]
    # Hub ids are case-insensitive, so rows differing only in case are the same repository submitted twice (the
    # leaderboard has a few); the first such row stands for the repository when it is named as a parent.
    row_of_key: dict[str, int] = {}
    for row, key in enumerate(own_keys):
        row_of_key.setdefault(key, row)

    parent_key: list[str | None] = [None] * len(llms)
    is_merge_child = np.zeros(len(llms), dtype=bool)
    readings: Counter[str] = Counter()
    for row, record in enumerate(llms[list(_LINEAGE_COLUMNS_REQUIRED)].to_dict("records")):
        is_merge_child[row] = (
            _parse_model_type(record["model_type"]) == "merge" or _parse_flag(record["is_merged"]) == 1.0
        )
        parent_key[row], reading = _read_base_model(record["base_model"], own_keys[row])
        readings[reading] += 1
    return _LineageGraph(own_keys, row_of_key, parent_key, is_merge_child, readings)


def _root_of(graph: _LineageGraph, row: int) -> str:
    """The root of ``row``: follow fine-tune hops upward until a model with no parent, a merge, or a parent outside
    the table (whose id is then the root)."""
    # The visited set guards against cycles in hand-edited tables.
    visited = {row}
    current = row
    while True:
        if graph.is_merge_child[current] or graph.parent_key[current] is None:
            return graph.own_keys[current]
        parent = graph.parent_key[current]
        parent_row = graph.row_of_key.get(parent)
        if parent_row is None or parent_row in visited:
            return parent
        visited.add(parent_row)
        current = parent_row


def _relation_names() -> tuple[str, ...]:
    """Relation of each code of the relation_of_pair matrix (code 0: none)."""
    return ("",) + tuple(LINEAGE_WEIGHTS)


def _link_group(lineage: np.ndarray, relation_of_pair: np.ndarray, rows: Sequence[int], relation: str) -> None:
    """Raise the similarity of every pair within ``rows`` to the relation's weight (a stronger one already set
    stays), recording which relation set it."""
    if len(rows) < 2:
        return
    index = np.asarray(rows)
    block = np.ix_(index, index)
    stronger = lineage[block] < LINEAGE_WEIGHTS[relation]
    lineage[block] = np.where(stronger, LINEAGE_WEIGHTS[relation], lineage[block])
    relation_of_pair[block] = np.where(stronger, _relation_names().index(relation), relation_of_pair[block])


def lineage_groups(graph: _LineageGraph) -> list[tuple[list[int], str]]:
    """The groups of rows each relation links (every pair within a group), weakest relation first: the order in
    which :func:`llm_lineage_matrix` applies them, so that a stronger relation overwrites a weaker one. Groups of
    fewer than two rows link nothing and are left out."""
    merge_children: dict[str, list[int]] = defaultdict(list)
    fine_tune_children: dict[str, list[int]] = defaultdict(list)
    roots: dict[str, list[int]] = defaultdict(list)
    for row in range(len(graph.own_keys)):
        roots[_root_of(graph, row)].append(row)
        if graph.parent_key[row] is not None:
            (merge_children if graph.is_merge_child[row] else fine_tune_children)[graph.parent_key[row]].append(row)
    groups = [(rows, "same_merge_source") for rows in merge_children.values()]
    groups += [(rows, "same_base_model") for rows in roots.values()]
    groups += [([row, graph.row_of_key[parent]], "merge_source") for parent, rows in merge_children.items()
               if parent in graph.row_of_key for row in rows]
    # A parent is linked to all its fine-tune children at 0.8, and the children to each other at 0.8.
    groups += [(rows + ([graph.row_of_key[parent]] if parent in graph.row_of_key else []), "fine_tune")
               for parent, rows in fine_tune_children.items()]
    return [(rows, relation) for rows, relation in groups if len(rows) >= 2]


def _link_relations(graph: _LineageGraph) -> tuple[np.ndarray, np.ndarray]:
    """Lineage similarity (n_llms, n_llms) float32 before its diagonal is set, and the relation that set each pair.

    The relation codes are int8 (:func:`_relation_names`), which keeps them at n² bytes.
    """
    n_llms = len(graph.own_keys)
    lineage = np.zeros((n_llms, n_llms), dtype=np.float32)
    relation_of_pair = np.zeros((n_llms, n_llms), dtype=np.int8)
    link = functools.partial(_link_group, lineage, relation_of_pair)
    for rows, relation in lineage_groups(graph):
        link(rows, relation)
    return lineage, relation_of_pair


def _lineage_report(graph: _LineageGraph, lineage: np.ndarray, relation_of_pair: np.ndarray) -> LineageReport:
    """The report of :func:`llm_lineage_matrix` from the graph, the final matrix and the relation codes."""
    n_llms = len(graph.own_keys)
    off_diagonal = lineage.copy()
    np.fill_diagonal(off_diagonal, 0.0)
    upper_codes = relation_of_pair[np.triu_indices(n_llms, k=1)]
    pair_counts = {name: int((upper_codes == code).sum()) for code, name in enumerate(_relation_names()) if code}
    return lineage_report(graph, int((off_diagonal > 0).any(axis=1).sum()), pair_counts)


def lineage_report(graph: _LineageGraph, n_with_relation: int, pair_counts: dict[str, int]) -> LineageReport:
    """The :class:`LineageReport` of ``graph`` given how many LLMs have a relation and the pairs per relation
    (the dense matrix and the structured factor count those their own way)."""
    with_parent = [row for row in range(len(graph.own_keys)) if graph.parent_key[row] is not None]
    readings = graph.base_model_readings
    return LineageReport(
        n_llms=len(graph.own_keys),
        n_with_parent=len(with_parent),
        n_parent_in_table=sum(graph.parent_key[row] in graph.row_of_key for row in with_parent),
        n_with_relation=n_with_relation,
        n_fine_tune_edges=sum(not graph.is_merge_child[row] for row in with_parent),
        n_merge_edges=sum(bool(graph.is_merge_child[row]) for row in with_parent),
        n_no_parent_self=readings["self"],
        n_self_merge=readings["self_merge"],
        n_removed=readings["removed"],
        n_parent_marked_merge=readings["parent_marked_merge"],
        n_id_case_duplicates=len(graph.own_keys) - len(graph.row_of_key),
        pair_counts=pair_counts,
    )


def llm_lineage_matrix(llms: pd.DataFrame) -> tuple[np.ndarray, LineageReport]:
    """Dense lineage similarity ``S_lineage`` (n_llms, n_llms) from the leaderboard's one-hop base_model column.

    Reading base_model (one hop per LLM, as the leaderboard wrote it):
      - the LLM itself, ``"Removed"``, empty or missing: no known parent;
      - ``"<X> (Merge)"``: the suffix marks X as a merge model. When X is the LLM itself, the LLM is a merge whose
        sources are not listed (no parent). When X is another model, X is the parent; the suffix says nothing about
        how the child was made (on the leaderboard such children are fine-tunes with is_merged False);
      - anything else: the parent's Hugging Face id. Ids are compared case-insensitively, with the
        meta-llama/Meta-Llama-3.1-* -> meta-llama/Llama-3.1-* rename followed.

    Fine-tune vs merge hop: decided by the child, since the column names only one parent. The hop is a merge when
    the child is a merge (model_type "basemergesandmoerges" or is_merged True), else a fine-tune (fine-tuned, chat,
    continuously pretrained, adapters, ...).

    Relations (:data:`LINEAGE_WEIGHTS`; a pair takes the largest weight that holds; diagonal 1; 0 otherwise):
      - fine_tune 0.8: one is the fine-tune parent of the other, or both are fine-tunes of the same parent
        ("same fine-tuning source"; the parent need not be in the table);
      - merge_source 0.7: one is the merge parent of the other;
      - same_base_model 0.6: the same root, where the root is found by following fine-tune hops upward through the
        table until a model with no parent, a merge, or a parent outside the table (that parent id is then the
        root). This links cousins and grandparent/grandchild pairs along fine-tune chains. Merge hops are not
        followed because a merge has several sources and the table names only one of them, so it has no single
        base model;
      - same_merge_source 0.5: both were merged from the same parent.

    Args:
        llms: leaderboard metadata with columns llm, base_model, model_type, is_merged.

    Returns:
        ``S_lineage`` float32 ``(n_llms, n_llms)``, symmetric, values in {0, 0.5, 0.6, 0.7, 0.8, 1}, and a report.
    """
    _require_columns(llms, _LINEAGE_COLUMNS_REQUIRED, "LLM lineage")
    graph = _read_lineage_graph(llms)
    lineage, relation_of_pair = _link_relations(graph)
    np.fill_diagonal(lineage, 1.0)
    return lineage, _lineage_report(graph, lineage, relation_of_pair)


@dataclasses.dataclass(frozen=True)
class LLMSimilarityReport:
    """Report of :func:`llm_similarity`: its ``alpha`` and the feature and lineage reports."""

    alpha: float
    features: LLMFeatureReport
    lineage: LineageReport
    feature_names: list[str]

    def __str__(self) -> str:
        return f"LLM similarity (alpha={self.alpha}):\n  {self.features}\n  {self.lineage}"


def llm_similarity(llms: pd.DataFrame, alpha: float = 0.5) -> tuple[np.ndarray, LLMSimilarityReport]:
    """``S_M = α·S_feature + (1−α)·S_lineage`` (n_llms, n_llms), dense float32, rows in table order.

    ``S_feature = F Fᵀ`` is the cosine similarity of :func:`llm_feature_matrix` rows (PSD, in [0, 1]);
    ``S_lineage`` is :func:`llm_lineage_matrix`. The sum is symmetric with unit diagonal but need not be PSD:
    pass it to :func:`sqrt_psd_factor_from_dense`, which clips and reports the negative part.

    Args:
        llms: leaderboard metadata, one row per LLM.
        alpha: weight of the feature similarity, in [0, 1] (the paper uses 0.5).
    """
    if not isinstance(alpha, (int, float)) or not 0.0 <= float(alpha) <= 1.0:
        raise ConfigError(f"alpha={alpha!r}: expected a weight in [0, 1]")
    features, feature_names, feature_report = llm_feature_matrix(llms)
    lineage, lineage_report = llm_lineage_matrix(llms)
    feature_similarity = features.astype(np.float64) @ features.T.astype(np.float64)
    similarity = float(alpha) * feature_similarity + (1.0 - float(alpha)) * lineage
    similarity = (similarity + similarity.T) / 2.0  # exact symmetry despite float round-off
    np.fill_diagonal(similarity, 1.0)
    report = LLMSimilarityReport(float(alpha), feature_report, lineage_report, feature_names)
    return similarity.astype(np.float32), report


