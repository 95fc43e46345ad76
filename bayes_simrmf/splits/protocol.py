"""The evaluation protocol: known / new LLMs and questions, training pairs and test splits A–D (:class:`Protocol`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from bayes_simrmf.errors import ConfigError, SplitError
from bayes_simrmf.options import NEW_LLM_CHOICES
from bayes_simrmf.log import Log, sink

if TYPE_CHECKING:  # data.py is written alongside; only its duck-typed API is used here
    from bayes_simrmf.data import Dataset
from bayes_simrmf.splits.common import (
    _STREAM_DEGREE_TARGETS,
    _STREAM_KNOWN_ITEMS,
    _STREAM_KNOWN_LLMS,
    _STREAM_TRAIN,
    PAPER_N_KNOWN,
    _FALLBACK_KNOWN_FRACTION,
    _PAPER_DEFAULT_MIN_ENTITIES,
    _TEST_STREAMS,
    _stream,
)
from bayes_simrmf.splits.pairs import Pairs
from bayes_simrmf.splits.targets import (
    _Targets,
    _group_answers,
    _item_targets,
    _rake,
    _round_quotas,
    _select_by_group,
    _water_fill,
)
from bayes_simrmf.splits.sampling import (
    _check_int,
    _check_real,
    _dataset_benchmarks,
    _dense_block,
    _draw_known,
    _group_codes,
    _known_with_pairs,
    _log_short,
    _share_threshold,
)
from bayes_simrmf.splits.report import _degree_report, _log_degrees, _validate_arrays
from bayes_simrmf.splits.split import Split


#: LLM metadata columns that date an LLM for ``new_llms="newest"``, the first present with a value wins.
DATE_COLUMNS = ("submission_date", "upload_date")


@dataclass(frozen=True)
class Protocol:
    """The paper's evaluation protocol, with its seed.

    Attributes:
        n_known_llms: number of known LLMs; None -> 1,000 where at least 1,500 LLMs are eligible,
            else ``round(2/3 * n_eligible_llms)``, then the ``max_known_ratio`` cap.
        n_known_items: number of known items; same default rule.
        T: training pairs per known LLM and per known item (the smaller known side gets T, the
            larger side ``T * n_small / n_large``); capped at the larger known count, and per LLM at
            the known items it answered (see the module docstring).
        n_test_pairs: at most this many pairs per test split (uniform random sample).
        seed: seed of every random choice; the same seed and data give the same split.
        min_answer_share: in (0, 1]; only an LLM that answered at least this share of all items,
            and only an item answered by at least this share of all LLMs, can be known.
        max_known_ratio: >= 1; a default known count is capped at this many times the other
            side's known count (explicit counts are never changed).
        new_llms: which LLMs are new (splits C and D). "random": a seeded draw, as the paper. "newest": the
            known LLMs are the eligible ones submitted first (``submission_date``, else ``upload_date`` of
            the LLM metadata; LLMs without a date count as the oldest), so the new ones are the latest, as
            an evaluation team meets them. "strongest": the known LLMs are the eligible ones with the lowest
            accuracy over all their answers, so the new ones are the strongest. Frontier choices keep the
            eligibility rule (an LLM that answered too little is always new); ties are broken by the seed.
    """

    n_known_llms: int | None = None
    n_known_items: int | None = None
    T: int = 300
    n_test_pairs: int = 1_000_000
    seed: int = 0
    min_answer_share: float = 0.25
    max_known_ratio: float = 10.0
    new_llms: str = "random"

    def __post_init__(self) -> None:
        if self.new_llms not in NEW_LLM_CHOICES:
            raise ConfigError(f"new_llms must be one of {', '.join(map(repr, NEW_LLM_CHOICES))}, got {self.new_llms!r}")
        _check_int("n_known_llms", self.n_known_llms, minimum=1, allow_none=True)
        _check_int("n_known_items", self.n_known_items, minimum=1, allow_none=True)
        _check_int("T", self.T, minimum=1)
        _check_int("n_test_pairs", self.n_test_pairs, minimum=0)
        _check_int("seed", self.seed, minimum=0)
        share = _check_real(
            "min_answer_share", self.min_answer_share, minimum=0.0, inclusive=False, maximum=1.0
        )
        ratio = _check_real("max_known_ratio", self.max_known_ratio, minimum=1.0, inclusive=True)
        # Plain ints and floats keep the protocol hashable, comparable and JSON-serialisable.
        for name in ("n_known_llms", "n_known_items", "T", "n_test_pairs", "seed"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, int(value))
        object.__setattr__(self, "min_answer_share", share)
        object.__setattr__(self, "max_known_ratio", ratio)

    def resolve(
        self,
        n_llms: int,
        n_items: int,
        *,
        log: Log | None = None,
        n_eligible_llms: int | None = None,
        n_eligible_items: int | None = None,
    ) -> tuple[int, int]:
        """Known counts actually drawn for data with ``n_llms`` LLMs and ``n_items`` items.

        Args:
            n_llms, n_items: sizes of the data.
            log: receives one line per decision; None silences.
            n_eligible_llms, n_eligible_items: how many may be known (``min_answer_share``);
                None -> all.

        Returns:
            ``(n_known_llms, n_known_items)`` before any known entity without training pairs is
            moved to the new side.

        Raises:
            SplitError: the data have no LLM or no item.
            ConfigError: an explicit known count exceeds the number available or eligible, or
                nothing is eligible.
        """
        emit = sink(log)
        counts = {}
        for axis, requested, n_available, n_eligible in (
            ("llms", self.n_known_llms, n_llms, n_llms if n_eligible_llms is None else n_eligible_llms),
            ("items", self.n_known_items, n_items, n_items if n_eligible_items is None else n_eligible_items),
        ):
            counts[axis] = self._resolve_axis(axis, requested, n_available, n_eligible, emit)
        self._cap_default_ratio(counts, emit)
        for axis, n_available in (("llms", n_llms), ("items", n_items)):
            if counts[axis] == n_available:
                empty = "C and D" if axis == "llms" else "B and D"
                emit(
                    f"warning: n_known_{axis}={counts[axis]} makes every {axis[:-1]} known; "
                    f"splits {empty} will be empty"
                )
        return counts["llms"], counts["items"]

    def _resolve_axis(
        self, axis: str, requested: int | None, n_available: int, n_eligible: int, emit: Log
    ) -> int:
        """Known count of one axis (``"llms"`` / ``"items"``) by the default rule or as requested."""
        argument, other = f"n_known_{axis}", ("items" if axis == "llms" else "llms")
        if n_available < 1:
            raise SplitError(f"the data have {n_available} {axis}; a split needs at least one")
        eligible = (
            f"{axis} with answers on at least min_answer_share={self.min_answer_share:g} of the {other}"
        )
        if n_eligible < 1:
            raise ConfigError(f"there are no {eligible}; lower min_answer_share")
        if requested is not None:
            if requested > n_available:
                raise ConfigError(f"{argument}={requested} exceeds the {n_available} {axis} in the data")
            if requested > n_eligible:
                raise ConfigError(
                    f"{argument}={requested} exceeds the {n_eligible} eligible {axis} ({eligible}); "
                    f"lower {argument} or min_answer_share"
                )
            return int(requested)
        which = "eligible " if n_eligible < n_available else ""
        if n_eligible >= _PAPER_DEFAULT_MIN_ENTITIES:
            emit(f"{argument}: using the paper's {PAPER_N_KNOWN} of {n_eligible} {which}{axis}")
            return PAPER_N_KNOWN
        n_known = max(1, round(_FALLBACK_KNOWN_FRACTION * n_eligible))
        emit(
            f"{argument}: using {n_known} = round(2/3 * {n_eligible}) {which}{axis}, because "
            f"fewer than {_PAPER_DEFAULT_MIN_ENTITIES} {axis} leave too few new ones "
            f"for the paper's {PAPER_N_KNOWN}"
        )
        return n_known

    def _cap_default_ratio(self, counts: dict[str, int], emit: Log) -> None:
        """Cap the larger side's *default* count at ``max_known_ratio`` x the smaller side's count.

        Otherwise e.g. 52 known LLMs x 1,000 known items leave each known item only T*52/1000
        training pairs (1-2 at T=30). Modifies ``counts`` in place.
        """
        requested = {"llms": self.n_known_llms, "items": self.n_known_items}
        larger = "items" if counts["items"] > counts["llms"] else "llms"
        smaller = "llms" if larger == "items" else "items"
        if requested[larger] is not None:
            return
        cap = max(1, math.floor(self.max_known_ratio * counts[smaller] + 1e-9))
        if counts[larger] > cap:
            emit(
                f"n_known_{larger}: capping the default {counts[larger]} at max_known_ratio="
                f"{self.max_known_ratio:g} x {counts[smaller]} known {smaller} = {cap}, so that each "
                f"known {larger[:-1]} still gets about T*{counts[smaller]}/{cap} training pairs"
            )
            counts[larger] = cap

    def split(self, dataset: Dataset, *, log: Log | None = None) -> Split:
        """Apply the protocol to a :class:`bayes_simrmf.data.Dataset`.

        The items' ``benchmark`` column (if the items table has one) gives the benchmark groups of
        :meth:`split_arrays`; items without one form the group ``"(none)"``.
        """
        llm_idx, item_idx, correct = dataset.codes()
        item_ids = dataset.item_ids()
        return self.split_arrays(
            dataset.llm_ids(),
            item_ids,
            llm_idx,
            item_idx,
            correct,
            item_groups=_dataset_benchmarks(dataset, item_ids),
            data_fingerprint=dataset.fingerprint(),
            log=log,
            llm_dates=llm_dates(dataset) if self.new_llms == "newest" else None,
        )

    def split_arrays(
        self,
        llm_ids: np.ndarray,
        item_ids: np.ndarray,
        llm_idx: np.ndarray,
        item_idx: np.ndarray,
        correct: np.ndarray,
        *,
        item_groups: np.ndarray | None = None,
        data_fingerprint: str | None = None,
        log: Log | None = None,
        llm_dates: np.ndarray | None = None,
    ) -> Split:
        """Apply the protocol to observed pairs given as codes.

        Args:
            llm_ids: str ``(n_llms,)`` unique LLM ids.
            item_ids: str ``(n_items,)`` unique item ids.
            llm_idx: int ``(n_pairs,)`` index into ``llm_ids`` of each observed pair.
            item_idx: int ``(n_pairs,)`` index into ``item_ids``.
            correct: int ``(n_pairs,)`` 0/1 scores; each (llm, item) cell at most once.
            item_groups: ``(n_items,)`` benchmark label of each item id (training degrees are
                spread over benchmarks in proportion); None -> one group.
            data_fingerprint: stored in the split to tie it to its data.
            log: receives one line per decision (defaults, caps, achieved balance); None silences.
            llm_dates: ``(n_llms,)`` datetime64 of each LLM (NaT: unknown), needed by ``new_llms="newest"``.

        Returns:
            The :class:`Split`. Depends only on the ids, the groups, the set of observed cells and
            the protocol, not on the order of the pairs.
        """
        emit = sink(log)
        llm_ids, item_ids, llm_idx, item_idx, correct = _validate_arrays(
            llm_ids, item_ids, llm_idx, item_idx, correct
        )
        shape = (len(llm_ids), len(item_ids))
        groups, group_names = _group_codes(item_groups, shape[1])
        llm_rank = self._llm_rank(llm_idx, correct, shape[0], llm_dates, emit)
        known_llm_mask, known_item_mask, n_eligible = self._draw_known_sets(llm_idx, item_idx, shape, emit, llm_rank)
        known_llms, known_items = np.flatnonzero(known_llm_mask), np.flatnonzero(known_item_mask)
        block_correct = _dense_block(llm_idx, item_idx, correct, known_llms, known_items, shape)
        observed, known_groups = block_correct >= 0, groups[known_items]

        targets = self._degree_targets(observed, known_groups, len(group_names), emit)
        selected = _select_by_group(observed, targets, known_groups, _stream(self.seed, _STREAM_TRAIN))
        keep_llms, keep_items = _known_with_pairs(selected, emit)
        degree_report = _degree_report(
            selected,
            observed,
            targets,
            (keep_llms, keep_items),
            (known_groups, group_names),
            self.T,
            n_eligible,
        )
        _log_degrees(degree_report, emit)

        known_llm_mask[known_llms[~keep_llms]] = False
        known_item_mask[known_items[~keep_items]] = False
        kept = np.ix_(keep_llms, keep_items)
        pairs, llm_order, item_order = self._assemble_pairs(
            block_correct[kept],
            selected[kept],
            known_llm_mask,
            known_item_mask,
            (llm_idx, item_idx, correct),
            emit,
        )
        return Split(
            protocol=self,
            llms=llm_ids[llm_order],
            items=item_ids[item_order],
            n_known_llms=int(known_llm_mask.sum()),
            n_known_items=int(known_item_mask.sum()),
            pairs=pairs,
            degree_report=degree_report,
            data_fingerprint=data_fingerprint,
        )

    def _llm_rank(self, llm_idx: np.ndarray, correct: np.ndarray, n_llms: int, llm_dates: np.ndarray | None,
                  emit: Log) -> np.ndarray | None:
        """Each LLM's place on the frontier, lowest first to be known (float ``(n_llms,)``), or None for
        ``new_llms="random"``: the date (days; no date: −inf) for "newest", the accuracy over all its
        answers for "strongest"."""
        if self.new_llms == "random":
            return None
        return frontier_rank(self.new_llms, n_llms, llm_dates=llm_dates, llm_idx=llm_idx, correct=correct, emit=emit)

    def _draw_known_sets(
        self, llm_idx: np.ndarray, item_idx: np.ndarray, shape: tuple[int, int], emit: Log,
        llm_rank: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
        """Known LLMs and items, drawn among the eligible ones (the LLMs lowest on ``llm_rank`` where given).

        Returns:
            bool ``(n_llms,)`` and ``(n_items,)`` known masks, and ``(n_eligible_llms,
            n_eligible_items)``.
        """
        n_llms, n_items = shape
        llm_threshold = _share_threshold(self.min_answer_share, n_items)
        item_threshold = _share_threshold(self.min_answer_share, n_llms)
        eligible_llms = np.bincount(llm_idx, minlength=n_llms) >= llm_threshold
        eligible_items = np.bincount(item_idx, minlength=n_items) >= item_threshold
        n_eligible = (int(eligible_llms.sum()), int(eligible_items.sum()))
        if n_eligible != shape:
            emit(
                f"eligible to be known (min_answer_share={self.min_answer_share:g}): {n_eligible[0]} of "
                f"{n_llms} LLMs answered >= {llm_threshold} of the {n_items} items, {n_eligible[1]} of "
                f"{n_items} items were answered by >= {item_threshold} of the {n_llms} LLMs; "
                "the others are always new"
            )
        n_known_llms, n_known_items = self.resolve(
            n_llms, n_items, log=emit, n_eligible_llms=n_eligible[0], n_eligible_items=n_eligible[1]
        )
        # Own streams per axis: T, the groups and the other axis never change who is known.
        known_llms = _draw_known(eligible_llms, n_known_llms, _stream(self.seed, _STREAM_KNOWN_LLMS), llm_rank)
        if llm_rank is not None:
            _log_frontier(self.new_llms, llm_rank, known_llms, eligible_llms, emit)
        known_items = _draw_known(eligible_items, n_known_items, _stream(self.seed, _STREAM_KNOWN_ITEMS))
        return known_llms, known_items, n_eligible

    def _degree_targets(
        self, observed: np.ndarray, groups: np.ndarray, n_groups: int, emit: Log
    ) -> _Targets:
        """Training degree targets of the known block (see the module docstring).

        The smaller known side (LLMs on a tie) gets ``T_used`` per entity, capped at its answers;
        the larger side's targets follow from them.

        Args:
            observed: bool ``(n_L, n_I)`` observed known x known cells.
            groups: int ``(n_I,)`` benchmark code of each known item, in ``[0, n_groups)``.
        """
        rng = _stream(self.seed, _STREAM_DEGREE_TARGETS)
        n_known_llms, n_known_items = observed.shape
        t_used, llm_nominal, item_nominal = self._nominal_degrees(n_known_llms, n_known_items, emit)
        answered = _group_answers(observed, groups, n_groups)
        item_answers = observed.sum(axis=0).astype(np.int64)
        if n_known_llms <= n_known_items:
            llm = np.minimum(t_used, answered.sum(axis=1))
            n_short = int((llm < t_used).sum())
            _log_short(n_short, n_known_llms, "LLMs answered fewer known items", t_used, emit)
            # Each LLM's pairs go to the benchmarks it answered, in proportion to its answers there.
            exact = answered * (llm / np.maximum(answered.sum(axis=1), 1))[:, None]
        else:
            item_wanted = np.minimum(t_used, item_answers)
            _log_short(
                int((item_wanted < t_used).sum()), n_known_items, "items were answered by fewer known LLMs",
                t_used, emit,
            )
            demand = np.bincount(groups, weights=item_wanted, minlength=n_groups).astype(np.int64)
            llm = _water_fill(int(demand.sum()), np.minimum(answered.sum(axis=1), t_used), rng)
            # Proportional to the answers, adjusted (IPF) so each benchmark's items get their T.
            exact = _rake(answered, llm, demand)
        quotas = _round_quotas(exact, llm, answered, rng)
        # No known entity gets more than T_used pairs, even where others' missing answers push it.
        item = _item_targets(quotas.sum(axis=0), groups, np.minimum(item_answers, t_used), rng)
        return _Targets(t_used, llm_nominal, llm, quotas, item, item_nominal)

    def _nominal_degrees(
        self, n_known_llms: int, n_known_items: int, emit: Log
    ) -> tuple[int, tuple[int, int], tuple[int, int]]:
        """Degrees on a complete block: the smaller side T_used each, the larger T_used*n_small/n_large.

        Returns:
            ``(T_used, (llm_min, llm_max), (item_min, item_max))``; the larger side's range is the
            floor and ceil of its share.
        """
        n_small, n_large = min(n_known_llms, n_known_items), max(n_known_llms, n_known_items)
        t_used = min(self.T, n_large)
        if t_used < self.T:
            emit(
                f"T={self.T} exceeds the {n_large} known entities a node can be paired with; "
                f"using T={t_used}"
            )
        share = ((t_used * n_small) // n_large, -(-(t_used * n_small) // n_large))
        if n_known_llms != n_known_items:
            smaller = "llm" if n_known_llms < n_known_items else "item"
            larger = "item" if smaller == "llm" else "llm"
            emit(
                f"unequal known counts: each known {smaller} gets T={t_used} training pairs, "
                f"each known {larger} {share[0] if share[0] == share[1] else f'{share[0]}-{share[1]}'} "
                f"(T*{n_small}/{n_large} = {t_used * n_small / n_large:.2f})"
            )
        if n_known_llms <= n_known_items:
            return t_used, (t_used, t_used), share
        return t_used, share, (t_used, t_used)

    def _assemble_pairs(
        self,
        block_correct: np.ndarray,
        selected: np.ndarray,
        known_llm_mask: np.ndarray,
        known_item_mask: np.ndarray,
        observed_pairs: tuple[np.ndarray, np.ndarray, np.ndarray],
        emit: Log,
    ) -> tuple[dict[str, Pairs], np.ndarray, np.ndarray]:
        """The five pair sets, coded into the reordered ids (known first, then new).

        Args:
            block_correct: int8 ``(n_known_llms, n_known_items)`` final known block, -1 unobserved.
            selected: bool, same shape, the training pairs.
            known_llm_mask, known_item_mask: bool ``(n_llms,)`` / ``(n_items,)`` final known sets.
            observed_pairs: ``(llm_idx, item_idx, correct)``, each ``(n_pairs,)``.

        Returns:
            ``(pairs, llm_order, item_order)``: the orders are ``(n_llms,)`` / ``(n_items,)`` indices
            into the given ids; within known and within new, ids keep their given order.
        """
        llm_idx, item_idx, correct = observed_pairs
        n_items = len(known_item_mask)
        llm_order = np.concatenate([np.flatnonzero(known_llm_mask), np.flatnonzero(~known_llm_mask)])
        item_order = np.concatenate([np.flatnonzero(known_item_mask), np.flatnonzero(~known_item_mask)])
        old_to_new_llm = np.empty(len(llm_order), dtype=np.int64)
        old_to_new_llm[llm_order] = np.arange(len(llm_order))
        old_to_new_item = np.empty(n_items, dtype=np.int64)
        old_to_new_item[item_order] = np.arange(n_items)
        pair_llm, pair_item = old_to_new_llm[llm_idx], old_to_new_item[item_idx]
        pair_llm_known = known_llm_mask[llm_idx]
        pair_item_known = known_item_mask[item_idx]

        train_llm, train_item = np.nonzero(selected)
        pairs = {"train": Pairs(train_llm, train_item, block_correct[train_llm, train_item])}
        rest_llm, rest_item = np.nonzero((block_correct >= 0) & ~selected)
        pairs["A"] = self._sample(rest_llm, rest_item, block_correct[rest_llm, rest_item], "A", n_items, emit)
        for name, llm_known, item_known in (("B", True, False), ("C", False, True), ("D", False, False)):
            in_split = (pair_llm_known == llm_known) & (pair_item_known == item_known)
            pairs[name] = self._sample(
                pair_llm[in_split], pair_item[in_split], correct[in_split], name, n_items, emit
            )
        return pairs, llm_order, item_order

    def _sample(
        self,
        llm: np.ndarray,
        item: np.ndarray,
        correct: np.ndarray,
        name: str,
        n_items: int,
        emit: Log,
    ) -> Pairs:
        """Uniform random sample of at most ``n_test_pairs`` pairs, in (llm, item) order."""
        # Sorting first makes the sample independent of the order the pairs came in.
        order = np.argsort(llm.astype(np.int64) * n_items + item, kind="stable")
        n_candidates = len(order)
        if n_candidates > self.n_test_pairs:
            rng = _stream(self.seed, _TEST_STREAMS[name])
            order = order[np.sort(rng.choice(n_candidates, size=self.n_test_pairs, replace=False))]
            emit(f"split {name}: sampled {self.n_test_pairs} of {n_candidates} observed pairs")
        return Pairs(llm[order], item[order], correct[order])




def frontier_rank(kind: str, n_llms: int, *, llm_dates: np.ndarray | None = None, llm_idx: np.ndarray | None = None,
                  correct: np.ndarray | None = None, emit: Log | None = None) -> np.ndarray:
    """Each LLM's place on the frontier (float ``(n_llms,)``, higher is newer or stronger): ``kind="newest"``, its
    date in days from ``llm_dates`` (no date: −inf, counted as the oldest); ``"strongest"``, its accuracy over all its
    answers ``(llm_idx, correct)`` (no answer: −inf)."""
    if kind == "newest":
        if llm_dates is None:
            raise ConfigError("new_llms='newest' needs each LLM's date (llm_dates, or LLM metadata with one of "
                              f"the columns {', '.join(DATE_COLUMNS)})")
        dates = np.asarray(llm_dates, dtype="datetime64[D]")
        if dates.shape != (n_llms,):
            raise ConfigError(f"llm_dates must hold one date per LLM id ({n_llms}), got shape {dates.shape}")
        missing = np.isnat(dates)
        if missing.all():
            raise ConfigError(f"new_llms='newest': no LLM has a date ({', '.join(DATE_COLUMNS)})")
        if missing.any() and emit is not None:
            emit(f"new_llms='newest': {int(missing.sum())} of {n_llms} LLMs have no date and count as the oldest")
        return np.where(missing, -np.inf, dates.astype(np.int64).astype(float))
    if kind == "strongest":
        answers = np.bincount(llm_idx, minlength=n_llms)
        right = np.bincount(llm_idx, weights=np.asarray(correct, float), minlength=n_llms)
        return np.where(answers > 0, right / np.maximum(answers, 1), -np.inf)
    raise ConfigError(f"the frontier is 'newest' or 'strongest', got {kind!r}")


def frontier_llms(dataset, responses, kind: str, n_new: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(new, rest)``: the ``n_new`` LLMs of ``responses`` highest on :func:`frontier_rank` (ties broken in a seeded
    order), sorted, and the others, lowest first. For studies that hold out a share of LLMs as new (the
    adaptive-testing and k-shot studies); ``Protocol(new_llms=...)`` is the same choice inside the paper's split."""
    llms = np.sort(responses.llm.unique())
    codes = np.searchsorted(llms, responses.llm.to_numpy())
    dates = None
    if kind == "newest":
        import pandas as pd

        dates = pd.Series(llm_dates(dataset), index=pd.Index(dataset.llm_ids())).reindex(llms).to_numpy()
    rank = frontier_rank(kind, len(llms), llm_dates=dates, llm_idx=codes, correct=responses.correct.to_numpy())
    order = llms[np.lexsort((rng.random(len(llms)), rank))]
    return np.sort(order[len(llms) - n_new:]), order[: len(llms) - n_new]


def llm_dates(dataset) -> np.ndarray:
    """Each LLM's date (datetime64[D], NaT where unknown) from the first of :data:`DATE_COLUMNS` with a value."""
    import pandas as pd

    table = dataset.llms.set_index("llm") if "llm" in dataset.llms.columns else dataset.llms
    dates = pd.Series(pd.NaT, index=pd.Index(dataset.llm_ids()), dtype="datetime64[ns]")
    for column in DATE_COLUMNS:
        if column in table.columns:
            values = pd.to_datetime(table[column], errors="coerce").reindex(dates.index)
            dates = dates.fillna(values)
    return dates.to_numpy().astype("datetime64[D]")


def _log_frontier(choice: str, rank: np.ndarray, known: np.ndarray, eligible: np.ndarray, emit: Log) -> None:
    """One line: where the frontier between known and new LLMs lies."""
    new = eligible & ~known
    if not new.any() or not known.any():
        return
    if choice == "newest":
        def day(value: float) -> str:
            return "no date" if not np.isfinite(value) else str(np.datetime64(int(value), "D"))

        emit(f"new LLMs: the newest {int((~known).sum())} (eligible ones dated {day(rank[new].min())} or later; "
             f"the known ones up to {day(rank[known].max())})")
    else:
        emit(f"new LLMs: the strongest {int((~known).sum())} (eligible ones with accuracy "
             f"{rank[new].min():.3f} to {rank[new].max():.3f}; the known ones up to {rank[known].max():.3f})")
