"""Routing scored on held-out answers, and the baselines to compare with (oracle, single LLM, best LLM per
benchmark, random, kNN)."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from bayes_simrmf.errors import ConfigError
from bayes_simrmf.splits import Split
from bayes_simrmf.routing.common import _examples
from bayes_simrmf.routing.candidates import Candidates, _as_candidates, _item_ids
from bayes_simrmf.routing.draws import expected_success
from bayes_simrmf.routing.policies import _best
from bayes_simrmf.routing.route import RoutingResult


def pairs_frame(split: Split, name: str) -> pd.DataFrame:
    """The pairs of one split (``"train"``, ``"A"`` … ``"D"``) as ids: columns ``llm``, ``item``, ``correct``."""
    if name not in split.pairs:
        raise ConfigError(f"split has no pairs {name!r}; it has {list(split.pairs)}")
    pairs = split.pairs[name]
    return pd.DataFrame({"llm": split.llms[pairs.llm].astype(str), "item": split.items[pairs.item].astype(str),
                         "correct": pairs.correct.astype(np.int8)})


def _check_truth(truth: pd.DataFrame, what: str = "truth") -> pd.DataFrame:
    if not isinstance(truth, pd.DataFrame):
        raise ConfigError(f"{what} must be a DataFrame with columns item, llm, correct; got {type(truth).__name__}")
    missing = {"item", "llm", "correct"} - set(truth.columns)
    if missing:
        raise ConfigError(f"{what} needs columns item, llm, correct; missing {sorted(missing)}")
    frame = truth[["item", "llm", "correct"]].copy()
    frame["item"] = frame["item"].astype(str)
    frame["llm"] = frame["llm"].astype(str)
    correct = pd.to_numeric(frame["correct"], errors="coerce")
    bad = ~correct.isin([0, 1])
    if bad.any():
        rows = np.flatnonzero(bad.to_numpy())
        raise ConfigError(f"{what}: correct must be 0/1; rows {_examples(rows.tolist())} hold "
                          f"{_examples(frame['correct'].iloc[rows].tolist())}")
    frame["correct"] = correct.astype(np.int8)
    duplicated = frame.duplicated(["item", "llm"])
    if duplicated.any():
        rows = np.flatnonzero(duplicated.to_numpy())
        raise ConfigError(f"{what}: the same (item, llm) pair appears twice, e.g. rows {_examples(rows.tolist())}")
    return frame


def _decision_frame(decisions) -> pd.DataFrame:
    frame = decisions.decisions if isinstance(decisions, RoutingResult) else decisions
    if not isinstance(frame, pd.DataFrame):
        raise ConfigError(f"decisions must be a RoutingResult or a DataFrame, got {type(decisions).__name__}")
    missing = {"item", "llm", "cost"} - set(frame.columns)
    if missing:
        raise ConfigError(f"decisions need columns item, llm, cost; missing {sorted(missing)}")
    return frame


def _scored(frame: pd.DataFrame, truth: pd.DataFrame, missing: str) -> tuple[np.ndarray, np.ndarray]:
    """Per decision: correct (0/1, NaN where abstained or unscored) and whether the pair had no truth."""
    if missing not in ("error", "skip"):
        raise ConfigError(f"missing must be 'error' or 'skip', got {missing!r}")
    routed = frame["llm"].notna().to_numpy()
    keys = pd.MultiIndex.from_arrays([frame["item"].astype(str), frame["llm"].astype(str)])
    lookup = pd.Series(truth["correct"].to_numpy(), index=pd.MultiIndex.from_frame(truth[["item", "llm"]]))
    correct = np.array(lookup.reindex(keys).to_numpy(dtype=np.float64))
    correct[~routed] = np.nan
    unscored = routed & np.isnan(correct)
    if unscored.any() and missing == "error":
        rows = np.flatnonzero(unscored)
        examples = [(frame["item"].iloc[row], frame["llm"].iloc[row]) for row in rows[:5]]
        raise ConfigError(
            f"truth has no answer for {len(rows)} routed (item, llm) pair(s), e.g. {examples}; evaluate on pairs "
            "whose answers are known (a dense test split), or pass missing='skip' to leave those questions out"
        )
    return correct, unscored


def evaluate_routing(decisions, truth: pd.DataFrame, *, missing: str = "error") -> dict[str, float]:
    """Accuracy, cost and abstention of a routing, scored on held-out answers.

    Args:
        decisions: a :class:`RoutingResult` or a table with ``item``, ``llm`` (None/NaN: abstained), ``cost``.
        truth: ``item``, ``llm``, ``correct`` (0/1) for held-out pairs.
        missing: "error" (default) when a routed pair has no answer in ``truth``; "skip" leaves such
            questions out of every rate (counted in ``n_unscored``).
    Returns:
        ``n_questions``, ``n_routed``, ``abstain_rate``, ``accuracy`` (correct share of routed questions),
        ``accuracy_all`` (correct share of all questions: an abstention counts as not solved), ``mean_cost``
        (per question, abstentions cost 0), ``total_cost``, ``n_unscored``.
    """
    frame = _decision_frame(decisions)
    correct, unscored = _scored(frame, _check_truth(truth), missing)
    keep = ~unscored
    routed = frame["llm"].notna().to_numpy() & keep
    n_questions = int(keep.sum())
    n_correct = float(np.nansum(correct[routed]))
    cost = frame["cost"].to_numpy(dtype=np.float64)[keep]
    return {
        "n_questions": n_questions,
        "n_routed": int(routed.sum()),
        "abstain_rate": float(1.0 - routed.sum() / n_questions) if n_questions else float("nan"),
        "accuracy": n_correct / float(routed.sum()) if routed.any() else float("nan"),
        "accuracy_all": n_correct / n_questions if n_questions else float("nan"),
        "mean_cost": float(cost.mean()) if n_questions else float("nan"),
        "total_cost": float(cost.sum()),
        "n_unscored": int(unscored.sum()),
    }


def routing_table(routers: Mapping[str, Any], truth: pd.DataFrame, *, missing: str = "error") -> pd.DataFrame:
    """One row per router (a RoutingResult or a decision table): :func:`evaluate_routing`'s metrics, plus the
    model's own ``expected_accuracy`` and ``expected_mean_cost`` where the router is a RoutingResult."""
    rows = []
    for name, router in routers.items():
        row = {"router": name, **evaluate_routing(router, truth, missing=missing)}
        if isinstance(router, RoutingResult):
            summary = router.summary()
            row.update(expected_accuracy=summary["expected_accuracy"], expected_mean_cost=summary["mean_cost"])
        rows.append(row)
    return pd.DataFrame(rows).set_index("router")


def _baseline_frame(item_ids: np.ndarray, choice: np.ndarray, candidates: Candidates) -> pd.DataFrame:
    return pd.DataFrame({"item": item_ids, "llm": candidates.llms[choice], "cost": candidates.costs[choice]})


def oracle_routing(items, candidates, truth: pd.DataFrame) -> pd.DataFrame:
    """The best possible router (uses the truth: an upper bound, not a method): each question goes to the
    cheapest candidate that answers it correctly, or to the cheapest candidate with an answer if none does.

    Returns:
        decision table ``item``, ``llm``, ``cost``.
    """
    candidates = _as_candidates(candidates)
    item_ids = _item_ids(items)
    truth = _check_truth(truth)
    order = pd.Series(np.arange(len(candidates)), index=candidates.llms)
    known = truth[truth["item"].isin(item_ids) & truth["llm"].isin(candidates.llms)].copy()
    known["rank"] = order.reindex(known["llm"]).to_numpy()
    known["cost"] = candidates.costs[known["rank"].to_numpy()]
    best = known.sort_values(["item", "correct", "cost", "rank"], ascending=[True, False, True, True])
    best = best.drop_duplicates("item").set_index("item")
    absent = np.setdiff1d(item_ids, best.index.to_numpy(dtype=str))
    if len(absent):
        raise ConfigError(f"truth has no answer by any candidate for {len(absent)} question(s), e.g. "
                          f"{_examples(absent.tolist())}")
    return _baseline_frame(item_ids, best["rank"].reindex(item_ids).to_numpy(dtype=np.int64), candidates)


def single_llm_routing(items, candidates, llm: str) -> pd.DataFrame:
    """Every question to ``llm`` (one of the candidates). Choose ``llm`` with
    :func:`best_single_llm_from_training` or :func:`best_single_llm_from_model`, never on the test truth."""
    candidates = _as_candidates(candidates)
    item_ids = _item_ids(items)
    return _baseline_frame(item_ids, np.full(len(item_ids), candidates.index(llm, "single")), candidates)


def random_routing(items, candidates, *, seed: int = 0) -> pd.DataFrame:
    """Each question to a candidate drawn uniformly at random (seeded)."""
    candidates = _as_candidates(candidates)
    item_ids = _item_ids(items)
    choice = np.random.default_rng([int(seed), 104729]).integers(0, len(candidates), len(item_ids))
    return _baseline_frame(item_ids, choice, candidates)


def _training_counts(train: pd.DataFrame, candidates: Candidates, what: str = "train"):
    train = _check_truth(train, what)
    train = train[train["llm"].isin(candidates.llms)]
    without = np.setdiff1d(candidates.llms, train["llm"].unique().astype(str))
    if len(without):
        raise ConfigError(f"{what}: {len(without)} candidate(s) have no training answers, e.g. "
                          f"{_examples(without.tolist())}; this baseline judges LLMs by their training answers")
    return train


def best_single_llm_from_training(train: pd.DataFrame, candidates) -> str:
    """The candidate with the highest accuracy on its training answers (``llm``, ``item``, ``correct``);
    ties to the cheaper. Under the protocol each known LLM answers T random known questions, so the
    accuracies are comparable."""
    candidates = _as_candidates(candidates)
    train = _training_counts(train, candidates)
    accuracy = train.groupby("llm")["correct"].mean().reindex(candidates.llms).to_numpy()
    return str(candidates.llms[_best(accuracy[None, :], candidates.costs)[0]])


def best_llm_per_group_from_training(train: pd.DataFrame, candidates, groups: pd.Series) -> dict[str, str]:
    """For each group of questions (e.g. each benchmark), the candidate with the highest accuracy on its
    training answers to that group's questions; ties to the cheaper. A candidate with no training answer in
    a group is not chosen for it.

    Args:
        train: training answers (``llm``, ``item``, ``correct``).
        candidates: :class:`Candidates` (or a frame with ``llm``, ``cost``).
        groups: the group of each question, indexed by item id (e.g. ``dataset.items.set_index("item")
            ["benchmark"]``); every training question of a candidate must be in it.
    Returns:
        ``{group: llm}`` for every group with training answers by at least one candidate.
    """
    candidates = _as_candidates(candidates)
    train = _training_counts(train, candidates)
    groups = _check_groups(groups, train["item"].unique(), "training questions")
    train = train.assign(group=groups.reindex(train["item"]).to_numpy())
    accuracy = train.groupby(["group", "llm"])["correct"].mean().unstack("llm").reindex(columns=candidates.llms)
    values = accuracy.to_numpy(dtype=np.float64)
    chosen = _best(np.where(np.isnan(values), -np.inf, values), candidates.costs)
    return {str(group): str(candidates.llms[index]) for group, index in zip(accuracy.index, chosen)}


def _check_groups(groups, item_ids, what: str) -> pd.Series:
    if not isinstance(groups, pd.Series):
        raise ConfigError(f"groups must be a pandas Series (group per item id), got {type(groups).__name__}")
    groups = pd.Series(groups.to_numpy(), index=groups.index.astype(str))
    if groups.index.duplicated().any():
        raise ConfigError(f"groups: item ids appear twice, e.g. "
                          f"{_examples(groups.index[groups.index.duplicated()].tolist())}")
    absent = np.setdiff1d(np.asarray(item_ids, dtype=str), groups.index.to_numpy(dtype=str))
    if len(absent):
        raise ConfigError(f"groups: {len(absent)} {what} have no group, e.g. {_examples(absent.tolist())}")
    return groups.astype(str)


def group_llm_routing(items, candidates, groups: pd.Series, choice: Mapping[str, str], fallback: str) -> pd.DataFrame:
    """Each question to the LLM chosen for its group (``choice``, e.g. from
    :func:`best_llm_per_group_from_training`); a question whose group has no choice goes to ``fallback``."""
    candidates = _as_candidates(candidates)
    item_ids = _item_ids(items)
    groups = _check_groups(groups, item_ids, "questions")
    position = {llm: candidates.index(llm, f"choice for group {group!r}") for group, llm in choice.items()}
    default = candidates.index(fallback, "fallback")
    picked = np.array([position.get(choice.get(group), default) for group in groups.reindex(item_ids)],
                      dtype=np.int64)
    return _baseline_frame(item_ids, picked, candidates)


def best_single_llm_from_model(model, items, candidates, *, n_draws: int = 200, seed: int = 0,
                               batch_items: int = 1000) -> str:
    """The candidate with the highest mean predicted success over ``items`` (the model's predictions, no
    answers used); ties to the cheaper."""
    candidates = _as_candidates(candidates, model)
    mean = expected_success(model, items, candidates, n_draws=n_draws, seed=seed, batch_items=batch_items)
    return str(candidates.llms[_best(mean.to_numpy().mean(axis=0)[None, :], candidates.costs)[0]])


def knn_routing(
    items,
    candidates,
    train: pd.DataFrame,
    item_vectors: pd.DataFrame,
    *,
    k: int = 10,
    metric: str = "cosine",
    prior_strength: float = 1.0,
    batch_items: int | None = None,
) -> pd.DataFrame:
    """kNN over questions: each question goes to the candidate with the best accuracy on its ``k`` most
    similar training questions (ties to the cheaper).

    Args:
        items: the questions to route.
        train: training answers ``llm``, ``item``, ``correct`` (never test answers). A routed question that is
            itself a training question counts among its own neighbours with its training answers.
        item_vectors: one row per question id (index) holding its vector: text embeddings (``metric="cosine"``)
            or rows of a similarity factor ``W`` with ``√S = W Wᵀ`` (``metric="dot"``). Must cover ``items`` and
            the training questions.
        k: neighbours per question.
        prior_strength: each candidate's accuracy on the neighbours is smoothed towards its overall training
            accuracy with this many pseudo-answers (training data are sparse: a candidate may have answered
            few of the neighbours).
        batch_items: questions per block of the ``batch × n_train_questions`` similarity (default: about 2·10⁷
            entries per block). No questions × questions matrix is built.
    Returns:
        decision table ``item``, ``llm``, ``cost``.
    """
    candidates = _as_candidates(candidates)
    item_ids = _item_ids(items)
    train = _training_counts(train, candidates)
    if metric not in ("cosine", "dot"):
        raise ConfigError(f"metric must be 'cosine' or 'dot', got {metric!r}")
    if not isinstance(item_vectors, pd.DataFrame):
        raise ConfigError("item_vectors must be a DataFrame indexed by item id, one column per dimension")
    if not (np.isfinite(prior_strength) and prior_strength >= 0):
        raise ConfigError(f"prior_strength must be a finite number >= 0, got {prior_strength!r}")
    vectors = item_vectors.copy()
    vectors.index = vectors.index.astype(str)
    if vectors.index.duplicated().any():
        raise ConfigError(f"item_vectors: item ids repeat, e.g. {_examples(vectors.index[vectors.index.duplicated()])}")
    train_items, train_codes = np.unique(train["item"].to_numpy(dtype=str), return_inverse=True)
    for what, ids in (("questions to route", item_ids), ("training questions", train_items)):
        absent = np.setdiff1d(ids, vectors.index.to_numpy(dtype=str))
        if len(absent):
            raise ConfigError(f"item_vectors has no row for {len(absent)} {what}, e.g. {_examples(absent.tolist())}")
    if not isinstance(k, (int, np.integer)) or not 1 <= k:
        raise ConfigError(f"k must be an integer >= 1, got {k!r}")
    k = min(int(k), len(train_items))
    llm_codes = pd.Index(candidates.llms).get_indexer(train["llm"].to_numpy(dtype=str))
    successes = np.zeros((len(train_items), len(candidates)))
    answered = np.zeros((len(train_items), len(candidates)))
    np.add.at(successes, (train_codes, llm_codes), train["correct"].to_numpy(dtype=np.float64))
    np.add.at(answered, (train_codes, llm_codes), 1.0)
    overall = successes.sum(axis=0) / answered.sum(axis=0)

    def rows(ids: np.ndarray) -> np.ndarray:
        matrix = vectors.loc[ids].to_numpy(dtype=np.float64)
        if metric == "cosine":
            matrix = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
        return matrix

    train_matrix = rows(train_items)
    if batch_items is None:
        batch_items = max(1, 20_000_000 // len(train_items))
    choice = np.empty(len(item_ids), dtype=np.int64)
    for start in range(0, len(item_ids), batch_items):
        block = slice(start, start + batch_items)
        similarity = rows(item_ids[block]) @ train_matrix.T  # (batch, n_train_questions)
        neighbours = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        wins = successes[neighbours].sum(axis=1) + prior_strength * overall
        tries = answered[neighbours].sum(axis=1) + prior_strength
        choice[block] = _best(wins / np.maximum(tries, 1e-12), candidates.costs)
    return _baseline_frame(item_ids, choice, candidates)


