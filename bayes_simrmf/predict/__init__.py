"""Estimators and everything a fitted model answers.

* :class:`SimRMF` (``estimator``): hyper-parameters, ``fit``, ``fold_in``, persistence; its queries
  (``predict``, intervals, group means, posterior draws) are :class:`queries.PosteriorQueries`.
* ``state``: the fitted state as one frozen :class:`FittedState`; ``sides``: the LLM / item records.
* ``point``: probabilities at one point of parameter space; ``population``: the stand-ins for
  entities the model does not hold; ``draws``: posterior draws and batched probabilities.
* ``fold_in`` (Laplace k-shot update) over ``gaussian_process`` (the similarity prior of a new
  entity); ``new_entities``: side information for new questions / LLMs, then ``SimRMF.fold_in``.
* ``baselines``: :class:`MeanScore` and the counting baseline :class:`GroupAccuracy`.
* ``assisted``: a benchmark's accuracy from randomly asked questions, corrected by the model's predictions
  (:func:`assisted_accuracy`, the survey regression estimator).
"""

from bayes_simrmf.predict.assisted import assisted_accuracy
from bayes_simrmf.predict.baselines import GroupAccuracy, MeanScore
from bayes_simrmf.predict.estimator import PAPER_FORM, PAPER_SIDE, SimRMF, make_estimator
from bayes_simrmf.predict.fold_in import laplace_logistic
from bayes_simrmf.predict.gaussian_process import gp_conditional, group_means, kernel_fold_in
from bayes_simrmf.predict.new_entities import fold_in_new_entities
from bayes_simrmf.predict.sides import ITEM, LLM, Side
from bayes_simrmf.predict.state import FittedState, encode_ids

__all__ = [
    "FittedState",
    "GroupAccuracy",
    "ITEM",
    "LLM",
    "MeanScore",
    "PAPER_FORM",
    "PAPER_SIDE",
    "Side",
    "SimRMF",
    "assisted_accuracy",
    "encode_ids",
    "fold_in_new_entities",
    "gp_conditional",
    "group_means",
    "kernel_fold_in",
    "laplace_logistic",
    "make_estimator",
]
