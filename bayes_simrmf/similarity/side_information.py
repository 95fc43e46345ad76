"""Side information for SimRMF: square-root similarity factors aligned to entity ids.

Builds, for a dataset and the LLM / item ids a model will hold, the factors ``W`` with
``√S ≈ W Wᵀ`` that the model's Gram potentials use:

* items: cosine similarity of text embeddings (precomputed file beside the data, or
  computed with a sentence-transformers model, cached);
* LLMs: ``α·S_feature + (1−α)·S_lineage`` from the LLM metadata table;
* oracle (experiments only): ``ZᵀZ`` and ``Z Zᵀ`` from the full true score matrix.

Centring. Every factor is centred over its rows (``W − mean(W)``), which double-centres
``√S`` (``H √S H``). The model's intercept already carries what all items share, and an
uncentred text similarity is dominated by that shared direction (all questions of one
benchmark look alike): matching it would pull every item's difficulty to the same value.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_simrmf.data import Dataset
from bayes_simrmf.errors import ConfigError, DataError
from bayes_simrmf.log import Log
from bayes_simrmf.similarity.common import _BLOCK, aligned_empty
from bayes_simrmf.similarity.embed import embed_texts
from bayes_simrmf.similarity.embedding_models import DEFAULT_EMBEDDING_MODEL
from bayes_simrmf.similarity.llm_factor import llm_similarity_factor
from bayes_simrmf.similarity.oracle import oracle_factors
from bayes_simrmf.similarity.precomputed_embeddings import load_precomputed_embeddings
from bayes_simrmf.similarity.sqrt_factor import sqrt_psd_factor_from_embeddings


@dataclass
class SideInformation:
    """Square-root similarity factors, one row per entity id.

    Attributes:
        llms: ``(n_llms,)`` ids of the rows of ``llm_factor``.
        llm_factor: ``(n_llms, k)`` with ``√S_M ≈ W Wᵀ``, or None (no LLM potential).
        items: ``(n_items,)`` ids of the rows of ``item_factor``.
        item_factor: ``(n_items, r)`` with ``√S_X ≈ W Wᵀ``, or None.
        report: what was built, kept, clipped or could not be parsed.
    """

    llms: np.ndarray
    llm_factor: np.ndarray | None
    items: np.ndarray
    item_factor: np.ndarray | None
    report: dict = field(default_factory=dict)

    def rows_for(self, kind: str, ids: np.ndarray) -> np.ndarray | None:
        """Factor rows for ``ids`` (in that order); DataError naming ids without a row."""
        known, factor = (self.llms, self.llm_factor) if kind == "llm" else (self.items, self.item_factor)
        if factor is None:
            return None
        position = {entity: row for row, entity in enumerate(known)}
        missing = [entity for entity in ids if entity not in position]
        if missing:
            raise DataError(
                f"side information has no {kind} row for {len(missing)} id(s), e.g. {missing[:5]}; "
                f"build it for every {kind} the model will hold"
            )
        if len(ids) == len(known) and np.array_equal(np.asarray(ids, dtype=object), np.asarray(known, dtype=object)):
            return factor  # the rows as they are: no copy of a factor that may be large
        return factor[[position[entity] for entity in ids]]


def centre_rows(factor: np.ndarray) -> np.ndarray:
    """``W − mean_rows(W)``: the factor of the double-centred ``H (W Wᵀ) H``."""
    factor = np.asarray(factor)
    mean = factor.mean(axis=0, keepdims=True)
    centred = aligned_empty(factor.shape, np.float32)  # aligned: a fit shares it with JAX instead of copying
    for start in range(0, len(factor), _BLOCK):
        np.subtract(factor[start:start + _BLOCK], mean, out=centred[start:start + _BLOCK], casting="same_kind")
    return centred


def precomputed_embeddings_file(folder: str | os.PathLike, model: str = DEFAULT_EMBEDDING_MODEL) -> Path:
    """Path of ``item_embeddings.<model>.parquet`` in a dataset folder (may not exist)."""
    return Path(folder) / f"item_embeddings.{Path(model).name}.parquet"


def item_embeddings(
    dataset: Dataset,
    item_ids: np.ndarray,
    *,
    embeddings: str | os.PathLike | None = None,
    model: str = DEFAULT_EMBEDDING_MODEL,
    log: Log | None = None,
) -> np.ndarray:
    """Unit-norm text embeddings ``(n_items, r)`` of ``item_ids``.

    Uses, in order: the parquet file ``embeddings`` if given; the dataset folder's
    ``item_embeddings.<model>.parquet`` if present (checked against the texts); otherwise
    embeds the item texts with ``model`` (cached on disk). Items the file does not hold (e.g.
    new questions added with :meth:`Dataset.with_entities`) are embedded with ``model``, so the
    file must come from the same model.
    """
    item_ids = np.asarray(item_ids).astype(str)
    texts = _item_texts(dataset, item_ids)
    path = Path(embeddings) if embeddings is not None else None
    if path is None and dataset.source and Path(dataset.source).is_dir():
        candidate = precomputed_embeddings_file(dataset.source, model)
        path = candidate if candidate.is_file() else None
    if path is None:
        if log:
            log(f"item embeddings: embedding {len(texts)} texts with {model}")
        return embed_texts(texts, model, log=log)
    if log:
        log(f"item embeddings: {path}")
    try:
        stored = pd.read_parquet(path, columns=["item"])["item"].astype(str)
    except Exception:  # unreadable or without the column: the full loader says what is wrong
        stored = None
    # A hash lookup: np.isin on object arrays of 20k ids takes tens of seconds.
    covered = np.ones(len(item_ids), bool) if stored is None else pd.Series(item_ids).isin(stored).to_numpy()
    if covered.all():
        return load_precomputed_embeddings(path, list(item_ids), texts=texts)
    texts = np.asarray(texts, dtype=object)
    if log:
        log(f"item embeddings: {int((~covered).sum())} item(s) not in {path.name}: embedding them with {model}")
    fresh = embed_texts(texts[~covered].tolist(), model, log=log)
    stored_vectors = (load_precomputed_embeddings(path, item_ids[covered].tolist(), texts=texts[covered].tolist())
                      if covered.any() else np.zeros((0, fresh.shape[1]), np.float32))
    if stored_vectors.shape[1] != fresh.shape[1]:
        raise DataError(f"{path}: vectors have dimension {stored_vectors.shape[1]} but {model} gives "
                        f"{fresh.shape[1]}; pass the embedding model the file was written with")
    vectors = np.empty((len(item_ids), fresh.shape[1]), np.float32)
    vectors[covered], vectors[~covered] = stored_vectors, fresh
    return vectors


def _item_factor(dataset, item_ids, embeddings, embedding_model, energy, log):
    """``(W, report)`` with ``√S_X ≈ W Wᵀ`` from the items' text embeddings (uncentred)."""
    vectors = item_embeddings(dataset, item_ids, embeddings=embeddings, model=embedding_model, log=log)
    return sqrt_psd_factor_from_embeddings(vectors, energy=energy)


def _llm_factor(dataset, llm_ids, alpha, energy):
    """``(W, report)`` with ``√S_M ≈ W Wᵀ`` from the LLMs' metadata (uncentred)."""
    llms_table = dataset.llms.set_index("llm").reindex(list(llm_ids)).reset_index()
    llm_factor, llm_sqrt_report, llm_report = llm_similarity_factor(llms_table, alpha=alpha, energy=energy)
    return llm_factor, {"llms": llm_report, "llms_sqrt": llm_sqrt_report}


def _item_texts(dataset: Dataset, item_ids: np.ndarray) -> list[str]:
    if "text" not in dataset.items.columns:
        raise DataError(f"{dataset.name}: items table has no 'text' column, so there is no question similarity")
    table = dataset.items.set_index("item")["text"]
    texts = table.reindex(list(item_ids))
    missing = texts.isna().to_numpy()
    if missing.any():
        examples = list(np.asarray(item_ids)[missing][:5])
        raise DataError(f"{dataset.name}: {int(missing.sum())} item(s) have no text, e.g. {examples}, so they have no "
                        "question similarity; leave them out (unknown_entities='drop'), give their texts in the items "
                        "table, or fit without side information (method='mf')")
    return texts.astype(str).tolist()


def build_side_information(
    dataset: Dataset,
    llm_ids: np.ndarray,
    item_ids: np.ndarray,
    *,
    kind: str = "similarity",
    alpha: float = 0.5,
    embeddings: str | os.PathLike | None = None,
    embedding_model: str = DEFAULT_EMBEDDING_MODEL,
    energy: float | None = None,
    centre: bool = True,
    log: Log | None = None,
) -> SideInformation:
    """Factors for ``kind="similarity"`` (SimRMF) or ``kind="oracle"`` (OracleSimRMF).

    Args:
        llm_ids, item_ids: the entities the model will hold (rows of the factors, in order).
        alpha: weight of the feature similarity in ``S_M`` (the rest is lineage).
        embeddings, embedding_model: see :func:`item_embeddings`.
        energy: keep the top components holding this share of ``trace(√S)`` (None: all).
        centre: double-centre each similarity (see the module docstring).
    """
    llm_ids = np.asarray(llm_ids).astype(str)
    item_ids = np.asarray(item_ids).astype(str)
    report: dict = {"kind": kind, "centred": centre}
    if kind == "oracle":
        llm_codes = {entity: i for i, entity in enumerate(llm_ids)}
        item_codes = {entity: k for k, entity in enumerate(item_ids)}
        responses = dataset.responses
        keep = responses["llm"].isin(llm_codes).to_numpy() & responses["item"].isin(item_codes).to_numpy()
        llm_index = responses["llm"][keep].map(llm_codes).to_numpy()
        item_index = responses["item"][keep].map(item_codes).to_numpy()
        llm_factor, item_factor, oracle_report = oracle_factors(
            llm_index, item_index, responses["correct"][keep].to_numpy(), len(llm_ids), len(item_ids), energy=energy
        )
        report["oracle"] = oracle_report
    elif kind == "similarity":
        item_factor, item_report = _item_factor(dataset, item_ids, embeddings, embedding_model, energy, log)
        llm_factor, llm_report = _llm_factor(dataset, llm_ids, alpha, energy)
        report.update(items=item_report, **llm_report, alpha=alpha)
    else:
        raise ConfigError(f"kind must be 'similarity' or 'oracle', got {kind!r}")
    if kind == "similarity":
        report["texts_blank"] = int(sum(not text.strip() for text in _item_texts(dataset, item_ids)))
    if centre:
        llm_factor, item_factor = centre_rows(llm_factor), centre_rows(item_factor)
    if log:
        log(f"side information ({kind}): LLM factor {llm_factor.shape}, item factor {item_factor.shape}")
        for line in side_information_warnings(report):
            log(line)
    return SideInformation(llm_ids, np.asarray(llm_factor, np.float32), item_ids, np.asarray(item_factor, np.float32), report)


def side_information_warnings(report: dict) -> list[str]:
    """Warnings about metadata and texts a similarity cannot use, from a side-information ``report``: how many
    LLMs and which fields, and blank question texts (empty when everything was usable)."""
    lines = []
    features = getattr(report.get("llms"), "features", None)
    if features is not None and features.n_usable < features.n_llms:
        fields = ", ".join(f"{name} {count}" for name, count in (
            ("params_billions missing", features.n_params_missing),
            ("architecture unreadable", features.n_architecture_unparsed),
            ("model_type unreadable", features.n_model_type_unparsed)) if count)
        lines.append(
            f"warning: LLM metadata is unusable for {features.n_llms - features.n_usable} of {features.n_llms} LLMs "
            f"(no architecture, model_type or parameter count could be read; {fields})"
            + ("; the LLM similarity carries no metadata" if features.n_usable == 0 else "")
        )
    lineage = getattr(report.get("llms"), "lineage", None)
    if lineage is not None and lineage.n_llms > 1 and lineage.n_with_relation == 0:
        lines.append(f"warning: no LLM's base_model links it to another of the {lineage.n_llms} LLMs, so the lineage "
                     "part of the LLM similarity is empty")
    if report.get("texts_blank"):
        lines.append(f"warning: {report['texts_blank']} question text(s) are blank, so those questions look alike "
                     "to the question similarity")
    return lines


def report_summary(report: dict) -> dict:
    """A side-information ``report`` as JSON-ready values (reports of dataclasses become dicts)."""
    import dataclasses

    def plain(value):
        if dataclasses.is_dataclass(value):
            return {field.name: plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
        if isinstance(value, dict):
            return {str(key): plain(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(item) for item in value]
        if isinstance(value, np.generic):
            return value.item()
        return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)

    return plain(report)


def new_entity_side_information(
    dataset: Dataset,
    fitted: dict[str, np.ndarray],
    *,
    items=None,
    llms=None,
    alpha: float = 0.5,
    embeddings: str | os.PathLike | None = None,
    embedding_model: str = DEFAULT_EMBEDDING_MODEL,
    energy: float | None = None,
    log: Log | None = None,
) -> dict[str, tuple[np.ndarray, SideInformation]]:
    """Side information for questions and LLMs a model has never seen, from their text and metadata.

    Args:
        dataset: the data the model was fitted on (texts of its questions, metadata of its LLMs).
        fitted: ``{"item": ids, "llm": ids}``, the model's own entities (each new entity's similarity is
            to them).
        items: new questions, a DataFrame with ``item`` and ``text`` (other items-table columns optional).
            Ids the dataset already holds keep the dataset's row (its text or metadata).
        llms: new LLMs, a DataFrame with ``llm`` and leaderboard metadata columns (see
            :func:`bayes_simrmf.similarity.llm_feature_matrix`).
        alpha, embeddings, embedding_model, energy: as for :func:`build_side_information`; pass the values the
            model was fitted with.
    Returns:
        ``{kind: (new ids, side information over the fitted ids then the new ones)}`` for the kinds given.
    Raises:
        DataError: a new question has no text, or the dataset lacks texts / metadata for the fitted entities.
    """
    new = {kind: frame for kind, frame in (("item", items), ("llm", llms)) if frame is not None and len(frame)}
    if not new:
        return {}
    if "item" in new:
        if "text" not in new["item"].columns or new["item"]["text"].isna().any():
            raise DataError("new questions need a text column without gaps: their similarity comes from the text")
    # Entities the dataset already holds (e.g. its test questions, which an MF fit never saw) keep its rows.
    unseen = {kind: frame[~frame[kind].astype(str).isin(dataset.item_ids() if kind == "item" else dataset.llm_ids())]
              for kind, frame in new.items()}
    extended = dataset.with_entities(items=unseen.get("item"), llms=unseen.get("llm"))
    sides = {}
    for kind, frame in new.items():
        entity_ids = np.asarray(frame[kind]).astype(str)
        all_ids = np.concatenate([np.asarray(fitted[kind], dtype=str), entity_ids])
        if kind == "item":
            factor = _item_factor(extended, all_ids, embeddings, embedding_model, energy, log)[0]
            side = SideInformation(np.zeros(0, str), None, all_ids, centre_rows(factor))
        else:
            factor = _llm_factor(extended, all_ids, alpha, energy)[0]
            side = SideInformation(all_ids, centre_rows(factor), np.zeros(0, str), None)
        sides[kind] = (entity_ids, side)
    return sides
