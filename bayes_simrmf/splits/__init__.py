"""Evaluation protocol: known/new LLMs and items, balanced training pairs, test splits A-D.

The paper's protocol (see PAPER.md, "Evaluation protocol"):

* draw ``n_known_llms`` known LLMs and ``n_known_items`` known items at random (seeded);
* training pairs come only from observed cells of the known x known block, balanced so that every
  known LLM and every known item gets ``T`` training pairs;
* four test splits, each a uniform random sample of at most ``n_test_pairs`` observed cells:
  ``A`` known LLM x known item (the rest of the block), ``B`` known LLM x new item,
  ``C`` new LLM x known item, ``D`` new LLM x new item.

Real response matrices are not complete: whole benchmarks are answered by only some LLMs (on
``openllm-v2`` MMLU-Pro by 37 of 78). Uniform targets with a repair that does not care which rows
starve leave some known LLMs without any training pair and others trained on one benchmark only.
This module therefore adds four steps to the paper's recipe.

1. *Eligibility.* Only an LLM that answered at least ``min_answer_share`` of all items, and only an
   item answered by at least that share of all LLMs, can be drawn as known; the others are always
   new (they are still scored in B, C and D). The known sets are a seeded permutation of the
   eligible ids, drawn from their own random streams, so changing ``T`` never changes them.
2. *Known counts.* Explicit counts are used as given (a ConfigError if they exceed the eligible
   count). The default is the paper's 1,000 where at least 1,500 entities are eligible, else 2/3 of
   the eligible ones; the larger side's default is then capped at ``max_known_ratio`` times the
   smaller side's count, because the larger side's degree ``T * n_small / n_large`` would
   otherwise leave each of its entities only one or two training pairs.
3. *Per-benchmark proportional targets* (``item_groups``: the items' benchmark). ``T_used`` is
   ``T`` capped at the larger known count; the smaller known side (LLMs on a tie) is the one that
   should get ``T_used`` per entity, the larger side its share ``T_used * n_small / n_large``.

   *LLMs the smaller side (or equal).* Known LLM ``i`` gets ``T_i = min(T_used, its answered known
   items)``, split over the benchmarks it answered in proportion to its answered known items in
   each: ``q_ib``. The demand ``D_b = sum_i q_ib`` of benchmark ``b`` is spread over its known items
   as evenly as possible (floor/ceil), each item capped at the number of known LLMs that answered it
   (and at ``T_used``), the excess water-filled onto the other items of ``b``; so item degrees
   follow where the LLMs' answers are and may differ between benchmarks.

   *Items the smaller side.* Known item ``j`` wants ``min(T_used, known LLMs that answered it)``;
   ``D_b`` is the sum over the items of ``b``. The LLM totals are ``sum_b D_b`` spread as evenly as
   possible (each capped at its answered known items and at ``T_used``), and ``q_ib`` starts
   proportional to the answers as above and is then fitted to both margins (iterative
   proportional fitting, each ``q_ib`` capped at the answers), so that every item can get its
   ``T_used``. No known entity ever gets more than ``T_used`` training pairs.

   Rounding: largest remainder per LLM; the extra units go to the benchmarks whose running total
   over the LLMs handled so far (random order) lags its exact share most, so that each benchmark's
   total stays within about one pair of exact.
4. *No empty known entity.* After selection a known LLM or item with no training pair is moved to
   the new side (it is scored in B/C/D, not A) and counted in the degree report.

Selection (:func:`balanced_block_selection`, run once per benchmark sub-block with the row targets
``q_ib`` and the item targets, then a repair over the whole known x known block). Where a
benchmark's LLM quotas exceed what its items can take, the largest quotas are trimmed first
(max-min fair), so that no LLM is starved by the order of the greedy pass:

1. *Greedy*: LLMs in random order; each takes its target number of items among the items it has an
   observed cell with, preferring the items whose remaining need is largest relative to the LLMs
   still to come that could serve them (random tie-break). On a complete block this is the
   Gale-Ryser construction and meets every target exactly.
2. *Repair*: while some LLM and some item are both below target, find an augmenting path in the
   residual bipartite graph (breadth first, vectorised over the dense block) and flip it; each flip
   adds one training pair without changing any other degree. When no path exists the number of
   training pairs is maximal for these targets. The whole-block repair may give an LLM that is
   short in one benchmark a pair in another benchmark whose items are short.

The degree report (:attr:`Split.degree_report`) states the achieved degrees, whether the training
graph is *T-regular* (every known LLM got its nominal degree and every known item its nominal
``T_used`` or ``T_used * n_llms / n_items``) and one row per benchmark (:meth:`Split.degree_table`).
Only the known x known block is ever held as a dense matrix; everything else uses the pair arrays.
"""

from __future__ import annotations

from bayes_simrmf.splits.common import (
    DEGREE_TABLE_COLUMNS,
    PAPER_N_KNOWN,
    SPLIT_NAMES,
    TEST_SPLIT_NAMES,
)
from bayes_simrmf.splits.pairs import (
    Pairs,
)
from bayes_simrmf.splits.balance import (
    balanced_block_selection,
)
from bayes_simrmf.splits.protocol import (
    Protocol,
    frontier_llms,
    frontier_rank,
    llm_dates,
)
from bayes_simrmf.splits.split import (
    Split,
)

__all__ = [
    "DEGREE_TABLE_COLUMNS",
    "PAPER_N_KNOWN",
    "Pairs",
    "Protocol",
    "SPLIT_NAMES",
    "Split",
    "TEST_SPLIT_NAMES",
    "balanced_block_selection",
    "frontier_llms",
    "frontier_rank",
    "llm_dates",
]
