"""What a split achieved: training degrees overall and per benchmark, printed and recorded."""

from __future__ import annotations

from typing import Any

import numpy as np

from bayes_simrmf.errors import DataError
from bayes_simrmf.log import Log

from bayes_simrmf.splits.targets import _Targets


def _validate_arrays(
    llm_ids: np.ndarray,
    item_ids: np.ndarray,
    llm_idx: np.ndarray,
    item_idx: np.ndarray,
    correct: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Check and normalise the inputs of :meth:`Protocol.split_arrays` (raises DataError)."""
    llm_ids = np.asarray([str(llm) for llm in np.asarray(llm_ids).ravel()], dtype=object)
    item_ids = np.asarray([str(item) for item in np.asarray(item_ids).ravel()], dtype=object)
    for name, ids in (("llm_ids", llm_ids), ("item_ids", item_ids)):
        unique, counts = np.unique(ids, return_counts=True)
        if (counts > 1).any():
            raise DataError(f"{name} must be unique; repeated: {list(unique[counts > 1][:5])}")
    llm_idx, item_idx, correct = (np.asarray(a) for a in (llm_idx, item_idx, correct))
    one_dimensional = llm_idx.ndim == item_idx.ndim == correct.ndim == 1
    if not (one_dimensional and len(llm_idx) == len(item_idx) == len(correct)):
        raise DataError(
            "llm_idx, item_idx and correct must be 1-D of equal length; got shapes "
            f"{llm_idx.shape}, {item_idx.shape}, {correct.shape}"
        )
    for name, codes, n_ids in (("llm_idx", llm_idx, len(llm_ids)), ("item_idx", item_idx, len(item_ids))):
        if codes.size and not np.issubdtype(codes.dtype, np.integer):
            raise DataError(f"{name} must hold integer codes, got dtype {codes.dtype}")
        bad = (codes < 0) | (codes >= n_ids)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise DataError(f"{name} has codes outside [0, {n_ids}), e.g. {codes[first]!r} at row {first}")
    bad = (correct != 0) & (correct != 1)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(f"correct must be 0 or 1, got {correct[first]!r} at row {first}")
    llm_idx = llm_idx.astype(np.int64)
    item_idx = item_idx.astype(np.int64)
    cell_keys = llm_idx * len(item_ids) + item_idx
    sorted_keys = np.sort(cell_keys)
    repeated = sorted_keys[1:][sorted_keys[1:] == sorted_keys[:-1]]
    if repeated.size:
        llm, item = divmod(int(repeated[0]), len(item_ids))
        raise DataError(
            f"{repeated.size} (llm, item) cells are observed more than once, e.g. "
            f"llm={llm_ids[llm]!r}, item={item_ids[item]!r}"
        )
    return llm_ids, item_ids, llm_idx, item_idx, correct.astype(np.int8)


def _stats(values: np.ndarray) -> dict[str, float]:
    """min / max / mean of an integer array as JSON-ready numbers (NaN-free for empty input)."""
    if values.size == 0:
        return {"min": 0, "max": 0, "mean": 0.0}
    return {"min": int(values.min()), "max": int(values.max()), "mean": float(values.mean())}


def _per_benchmark_rows(
    selected: np.ndarray, observed: np.ndarray, groups: np.ndarray, names: list[str], quotas: np.ndarray
) -> list[dict[str, Any]]:
    """One row per benchmark (keys :data:`DEGREE_TABLE_COLUMNS`), JSON-ready.

    Args:
        selected, observed: bool ``(n_L, n_I)`` training pairs and observed cells of the final block.
        groups: int ``(n_I,)`` benchmark code of each final known item.
        names: benchmark name of each code.
        quotas: int ``(n_L0, n_groups)`` wanted pairs per drawn known LLM (demoted ones included).
    """
    rows = []
    for code, name in enumerate(names):
        columns = groups == code
        answering = observed[:, columns].any(axis=1)
        chosen = selected[:, columns]
        llm, item = _stats(chosen[answering].sum(axis=1)), _stats(chosen.sum(axis=0))
        rows.append(
            {
                "benchmark": name,
                "n_known_items": int(columns.sum()),
                "n_known_llms_answering": int(answering.sum()),
                **{f"llm_degree_{key}": value for key, value in llm.items()},
                **{f"item_degree_{key}": value for key, value in item.items()},
                "target_pairs": int(quotas[:, code].sum()),
                "achieved_pairs": int(chosen.sum()),
            }
        )
    return rows


def _degree_report(
    selected: np.ndarray,
    observed: np.ndarray,
    targets: _Targets,
    keep: tuple[np.ndarray, np.ndarray],
    benchmarks: tuple[np.ndarray, list[str]],
    t_requested: int,
    n_eligible: tuple[int, int],
) -> dict[str, Any]:
    """Achieved versus wanted training degrees (JSON-serialisable).

    Args:
        selected, observed: bool ``(n_L0, n_I0)`` over the drawn known block (before demotion).
        targets: the block's degree targets.
        keep: bool ``(n_L0,)`` and ``(n_I0,)``, the known LLMs and items that got a training pair.
        benchmarks: int ``(n_I0,)`` benchmark code per drawn known item, and the names.
        t_requested: the protocol's T.
        n_eligible: ``(n_eligible_llms, n_eligible_items)``.
    """
    keep_llms, keep_items = keep
    kept = np.ix_(keep_llms, keep_items)
    chosen = selected[kept]
    llm_degree, item_degree = chosen.sum(axis=1), chosen.sum(axis=0)
    llm_targets, item_targets = targets.llm[keep_llms], targets.item[keep_items]
    # Wanted pairs of every drawn known LLM: a demoted one's target counts as shortfall.
    n_target_pairs, n_train_pairs = int(targets.llm.sum()), int(chosen.sum())
    item_low, item_high = targets.item_nominal
    llm_low, llm_high = targets.llm_nominal
    n_llms_off = int(((llm_degree < llm_low) | (llm_degree > llm_high)).sum())
    n_items_off = int(((item_degree < item_low) | (item_degree > item_high)).sum())
    n_demoted = (int((~keep_llms).sum()), int((~keep_items).sum()))
    return {
        "T_requested": int(t_requested),
        "T_used": int(targets.t_used),
        "target_llm_degree": _stats(llm_targets),
        "target_item_degree": _stats(item_targets),
        "llm_degree": _stats(llm_degree),
        "item_degree": _stats(item_degree),
        "n_target_pairs": n_target_pairs,
        "n_train_pairs": n_train_pairs,
        "shortfall_pairs": n_target_pairs - n_train_pairs,
        "n_llms_below_target": int((llm_degree < llm_targets).sum()),
        "n_items_below_target": int((item_degree < item_targets).sum()),
        "nominal_llm_degree": {"min": int(llm_low), "max": int(llm_high)},
        "nominal_item_degree": {"min": int(item_low), "max": int(item_high)},
        "n_llms_off_nominal": n_llms_off,
        "n_items_off_nominal": n_items_off,
        "t_regular": bool(n_llms_off == 0 and n_items_off == 0 and n_demoted == (0, 0)),
        "n_demoted_llms": n_demoted[0],
        "n_demoted_items": n_demoted[1],
        "n_eligible_llms": int(n_eligible[0]),
        "n_eligible_items": int(n_eligible[1]),
        "per_benchmark": _per_benchmark_rows(
            chosen, observed[kept], benchmarks[0][keep_items], benchmarks[1], targets.quotas
        ),
    }


def _benchmark_line(row: dict[str, Any]) -> str:
    """One log line of a ``per_benchmark`` row."""
    return (
        f"  {row['benchmark']}: {row['n_known_items']} known items, {row['n_known_llms_answering']} "
        f"known LLMs answering; LLM degree {row['llm_degree_min']}-{row['llm_degree_max']} "
        f"(mean {row['llm_degree_mean']:.2f}), item degree {row['item_degree_min']}-"
        f"{row['item_degree_max']} (mean {row['item_degree_mean']:.2f}); "
        f"{row['achieved_pairs']} of {row['target_pairs']} wanted pairs"
    )


def _log_degrees(report: dict[str, Any], emit: Log) -> None:
    """One line on the achieved balance; when not T-regular one more line and one per benchmark."""
    llm, item = report["llm_degree"], report["item_degree"]
    line = (
        f"training pairs: {report['n_train_pairs']}; degree per known LLM {llm['min']}-{llm['max']} "
        f"(mean {llm['mean']:.2f}), per known item {item['min']}-{item['max']} (mean {item['mean']:.2f})"
    )
    if report["shortfall_pairs"]:
        line += (
            f"; missing cells left {report['shortfall_pairs']} of {report['n_target_pairs']} wanted pairs "
            f"unfilled ({report['n_llms_below_target']} LLMs and {report['n_items_below_target']} "
            "items below target; no better balance exists for these targets)"
        )
    if report["t_regular"]:
        emit(line + "; T-regular")
        return
    emit(line)
    llm_range, item_range = (
        f"{nominal['min']}" if nominal["min"] == nominal["max"] else f"{nominal['min']}-{nominal['max']}"
        for nominal in (report["nominal_llm_degree"], report["nominal_item_degree"])
    )
    emit(
        f"training degrees are not T-regular (T_used={report['T_used']}): {report['n_llms_off_nominal']} "
        f"known LLMs are off {llm_range} and {report['n_items_off_nominal']} known items off {item_range}; "
        f"{report['n_demoted_llms']} LLMs and {report['n_demoted_items']} items were moved to the new side; "
        "per benchmark:"
    )
    for row in report["per_benchmark"]:
        emit(_benchmark_line(row))


