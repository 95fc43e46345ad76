"""Fold questions and LLMs a fitted model has never seen into it, from their text and metadata.

This sits above both :mod:`bayes_simrmf.similarity.side_information` (which builds the similarity of the new entities to
the fitted ones) and :class:`~bayes_simrmf.predict.SimRMF` (whose ``fold_in`` computes each new entity's
posterior given that similarity), so neither calls the other.
"""

from __future__ import annotations

import os

import pandas as pd

from bayes_simrmf.data import Dataset
from bayes_simrmf.log import Log, sink
from bayes_simrmf.options import DEFAULT_EMBEDDING_MODEL
from bayes_simrmf.similarity import new_entity_side_information


def fold_in_new_entities(
    model,
    dataset: Dataset,
    *,
    items=None,
    llms=None,
    alpha: float = 0.5,
    embeddings: str | os.PathLike | None = None,
    embedding_model: str = DEFAULT_EMBEDDING_MODEL,
    energy: float | None = None,
    answers: pd.DataFrame | None = None,
    temperature: float = 1.0,
    log: Log | None = None,
) -> dict[str, pd.DataFrame]:
    """Fold questions and LLMs the model has never seen into a fitted :class:`~bayes_simrmf.predict.SimRMF`,
    with the similarity prior of ``model.fold_in`` built from their text and metadata.

    Args:
        model: a fitted SimRMF (MF or SimRMF method: the prior needs only the fitted latents).
        dataset, items, llms, alpha, embeddings, embedding_model, energy, log: as for
            :func:`bayes_simrmf.similarity.new_entity_side_information`.
        answers, temperature: answers of the new LLMs (or of the new questions) and the fold-in's τ, as
            for ``model.fold_in`` (each kind gets the answers naming its new ids).
    Returns:
        ``{"item": report, "llm": report}`` for the kinds folded in (``model.fold_in``'s reports).
    Raises:
        DataError: a new question has no text, an id is already in the dataset or the model, or the
            dataset lacks texts / metadata for the model's own entities.
    """
    log = sink(log)
    fitted = {"item": model.items_, "llm": model.llms_}
    sides = new_entity_side_information(dataset, fitted, items=items, llms=llms, alpha=alpha, embeddings=embeddings,
                                        embedding_model=embedding_model, energy=energy, log=log)
    reports = {}
    for kind, (entity_ids, side) in sides.items():
        own = None if answers is None else answers[answers[kind].astype(str).isin(entity_ids)]
        reports[kind] = model.fold_in(kind, entity_ids, side=side, answers=own, temperature=temperature)
        log(f"folded in {len(entity_ids)} new {kind}(s) from their {'text' if kind == 'item' else 'metadata'}: "
            f"median logit sd {reports[kind]['prior_sd_logit'].median():.3f}")
    return reports
