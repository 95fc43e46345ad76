"""Tables from the cached cells of :mod:`bayes_simrmf.evaluate.runner`: mean ± sd over seeds, noise floors, and
paired differences against a reference method with 95% intervals over seeds.

Used by ``experiments/run_protocol.py`` after each run; ``load_cells`` is also what the README generator and
its test read, so a number in the README always comes from the cells.
"""

from __future__ import annotations

import itertools

import json
import os
import platform
from pathlib import Path

import numpy as np
import pandas as pd
from bayes_simrmf.evaluate.study import check_provenance, paired_interval

SPLITS = ("A", "B", "C", "D")
METRICS = ("rmse_p", "rmse_m", "rmse_x")
DEFAULT_PAIRED = ("B rmse_m", "B rmse_x", "C rmse_m", "C rmse_x", "A rmse_p")


def read_cells(cells: Path, config: dict | None = None) -> list[tuple[str, dict]]:
    """``(name, payload)`` of every method cell (of ``config``'s methods, if given) under ``cells``."""
    found = []
    for path in sorted(cells.glob("*/T*/seed*/*.json")):
        if path.name == "split.json":
            continue
        payload = json.loads(path.read_text())
        if config is not None and payload["method"] not in config["methods"]:
            continue
        found.append((path.relative_to(cells).with_suffix("").as_posix(), payload))
    return found


def load_cells(cells: Path, config: dict | None = None, *, allow_mixed: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(scores, splits)``: one row per dataset × T × seed × method × split, and one per
    dataset × T × seed with the split's known counts, degrees and noise floors. Each score row has
    ``mark`` ("" or why its provenance differs from the majority's: other code, dirty, none);
    without ``allow_mixed`` such cells raise :class:`bayes_simrmf.evaluate.study.StudyError`."""
    checked = check_provenance(read_cells(cells, config), allow_mixed=allow_mixed)
    rows, split_rows = [], []
    for path in sorted(cells.glob("*/T*/seed*/*.json")):
        dataset, t_part, seed_part = path.parts[-4:-1]
        key = {"dataset": dataset, "T": int(t_part[1:]), "seed": int(seed_part[4:])}
        payload = json.loads(path.read_text())
        if path.name == "split.json":
            report = payload.get("degree_report", {})
            floors = payload.get("noise_floor", {})
            split_rows.append({**key, "n_known_llms": payload["n_known_llms"], "n_known_items": payload["n_known_items"],
                               "llm_degree_min": report.get("llm_degree", {}).get("min"),
                               "llm_degree_max": report.get("llm_degree", {}).get("max"),
                               "item_degree_min": report.get("item_degree", {}).get("min"),
                               "item_degree_max": report.get("item_degree", {}).get("max"),
                               "t_regular": report.get("t_regular"),
                               **{f"{s}_{k}": v for s, values in floors.items() for k, v in values.items()}})
            continue
        if config is not None and payload["method"] not in config["methods"]:
            continue
        mark = checked.mark(path.relative_to(cells).with_suffix("").as_posix())
        edges = payload.get("edges", {})
        for split_name, metrics in payload["scores"].items():
            rows.append({**key, "method": payload["method"], "split": split_name, **metrics, "mark": mark,
                         "commit": (payload.get("provenance") or {}).get("commit"),
                         "at_edge": json.dumps(sorted(n for n, s in edges.items() if s == "edge")),
                         "at_bound": json.dumps(sorted(n for n, s in edges.items() if s == "bound")),
                         "paper_form": payload.get("paper_form", False), "embedding_model": payload.get("embedding_model"),
                         "fit_seconds": payload["fit_seconds"], "tune_seconds": payload["tune_seconds"],
                         "converged": payload.get("converged", True), "chosen": json.dumps(payload["chosen"], sort_keys=True)})
    return pd.DataFrame(rows), pd.DataFrame(split_rows)


def markdown_table(frame: pd.DataFrame, digits: int = 2) -> str:
    """A GitHub markdown table of ``frame`` (numbers right-aligned, floats to ``digits`` decimals)."""
    def cell(value: object) -> str:
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    # Right-align numbers, also those already formatted as text ("1,560", "0 / 0").
    numeric = [
        pd.api.types.is_numeric_dtype(frame[column])
        or frame[column].astype(str).str.fullmatch(r"[\d,./ ]+").all()
        for column in frame.columns
    ]
    lines = [
        "| " + " | ".join(str(column) for column in frame.columns) + " |",
        "|" + "|".join("---:" if is_number else "---" for is_number in numeric) + "|",
    ]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def mean_sd(values: np.ndarray) -> str:
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return "—"
    sd = values.std(ddof=1) if len(values) > 1 else 0.0
    return f"{values.mean():.4f} ± {sd:.4f}"


def paired_difference(frame: pd.DataFrame, method: str, reference: str, split: str, metric: str) -> dict | None:
    """Mean of ``method − reference`` over the seeds both have, its 95% t interval, and the
    relative change of the means."""
    rows = frame[(frame["split"] == split) & frame["method"].isin((method, reference))]
    part = rows.groupby(["seed", "method"])[metric].mean().unstack("method")
    if method not in part or reference not in part:
        return None
    pair = part[[method, reference]].dropna()
    if len(pair) < 2:
        return None
    diff = (pair[method] - pair[reference]).to_numpy()
    mean, lower, upper = paired_interval(diff)
    base = pair[reference].mean()
    return {"n": len(diff), "diff": mean, "lower": lower, "upper": upper,
            "relative": mean / base if base else np.nan, "wins": int((diff < 0).sum())}


def references_of(method: str, config: dict) -> list[str]:
    """The methods a compared method is paired against, its own base first: ``config["references"][method]``
    (a name or a list of names: a variant against the method it inherits from, then further references)
    where the config names them, else ``config["reference"]``."""
    named = config.get("references", {}).get(method, config.get("reference"))
    return [named] if isinstance(named, str) else list(named or [])


def reference_of(method: str, config: dict) -> str:
    """The first of :func:`references_of`: the method's own base."""
    references = references_of(method, config)
    return references[0] if references else None


def results_table(part: pd.DataFrame, methods: list[str], floors: pd.DataFrame) -> list[str]:
    header = ["T", "method", "seeds"] + [f"{s} {m.replace('rmse_', 'RMSE_')}" for s in SPLITS for m in METRICS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for T in sorted(part["T"].unique()):
        for method in methods:
            sel = part[(part["T"] == T) & (part["method"] == method)]
            if sel.empty:
                continue
            marked = sel[sel["mark"] != ""]["seed"].nunique() if "mark" in sel else 0
            cells = [str(T), method + (f" †{marked}" if marked else ""), str(sel["seed"].nunique())]
            for split in SPLITS:
                sub = sel[sel["split"] == split]
                cells += [mean_sd(sub[metric].to_numpy(dtype=float)) for metric in METRICS]
            lines.append("| " + " | ".join(cells) + " |")
        floor = floors[floors["T"] == T]
        if not floor.empty:
            cells = [str(T), "*noise floor*", str(len(floor))]
            for split in SPLITS:
                cells += ["—"] + [f"{floor[f'{split}_{k}'].mean():.4f}" if f"{split}_{k}" in floor else "—"
                                  for k in ("floor_m", "floor_x")]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def chosen_table(part: pd.DataFrame, methods: list[str]) -> list[str]:
    """Each tuned method's chosen hyper-parameters per seed; ⚠ marks a value still at an edge of what
    was tried (the grid could not be extended past it)."""
    lines = ["Chosen hyper-parameters per seed (⚠: still at an edge of the values tried, not a result; ⊣: at a "
             "natural bound or documented cap of `bayes_simrmf.evaluate.tuning.GRID_BOUNDS`, e.g. a similarity weight "
             "of 1e-5 or a fold-in ridge of 1e5, i.e. the similarity term switched off; values past the configured grid "
             "were added by the grid extension):", "", "| T | method | seed: chosen |", "|---|---|---|"]
    rows = 0
    for T in sorted(part["T"].unique()):
        for method in methods:
            sel = part[(part["T"] == T) & (part["method"] == method)].drop_duplicates("seed").sort_values("seed")
            if sel.empty or all(c == "{}" for c in sel["chosen"]):
                continue
            entries = []
            for _, row in sel.iterrows():
                chosen, edge = json.loads(row["chosen"]), set(json.loads(row.get("at_edge", "[]") or "[]"))
                bound = set(json.loads(row.get("at_bound", "[]") or "[]"))
                entries.append(f"{row['seed']}: " + ", ".join(f"{k}={v:g}{'⚠' if k in edge else '⊣' if k in bound else ''}"
                                                              if isinstance(v, (int, float))
                                                              else f"{k}={v}" for k, v in sorted(chosen.items())))
            lines.append(f"| {T} | {method} | " + "; ".join(entries) + " |")
            rows += 1
    return lines if rows else []


def log_loss_table(part: pd.DataFrame, methods: list[str]) -> list[str]:
    lines = ["| T | method | " + " | ".join(f"{s} log loss" for s in SPLITS) + " | fit s |", "|---|---|" + "---|" * 5]
    for T in sorted(part["T"].unique()):
        for method in methods:
            sel = part[(part["T"] == T) & (part["method"] == method)]
            if sel.empty:
                continue
            cells = [mean_sd(sel[sel["split"] == s]["log_loss"].to_numpy(dtype=float)) for s in SPLITS]
            fit = sel.drop_duplicates("seed")["fit_seconds"].mean()
            lines.append(f"| {T} | {method} | " + " | ".join(cells) + f" | {fit:.1f} |")
    return lines


def paired_table(part: pd.DataFrame, config: dict) -> list[str]:
    reference = config.get("reference")
    present = set(part["method"])
    compare = [m for m in config.get("compare", []) if m in present and reference_of(m, config) in present]
    if not reference or not compare:
        return []
    paired = config.get("paired", DEFAULT_PAIRED)
    lines = [f"Paired differences against **{reference}** (method − {reference}, or against the method named in "
             "brackets; mean over seeds, 95% t interval; negative is better; *wins* = seeds where the method is lower):", "",
             "| T | method | " + " | ".join(paired) + " |", "|---|---|" + "---|" * len(paired)]
    for T in sorted(part["T"].unique()):
        sub = part[part["T"] == T]
        for method in compare:
            for against in references_of(method, config):
                if against not in present:
                    continue
                cells = []
                for entry in paired:
                    split, metric = entry.split()
                    result = paired_difference(sub, method, against, split, metric)
                    if result is None:
                        cells.append("—")
                        continue
                    flag = "**" if result["upper"] < 0 or result["lower"] > 0 else ""
                    cells.append(f"{flag}{100 * result['relative']:+.1f}%{flag} ({result['diff']:+.4f} "
                                 f"[{result['lower']:+.4f}, {result['upper']:+.4f}], {result['wins']}/{result['n']})")
                if all(cell == "—" for cell in cells):
                    continue
                label = method if against == reference else f"{method} (− {against})"
                lines.append(f"| {T} | {label} | " + " | ".join(cells) + " |")
    lines += ["", "Bold: the 95% interval excludes zero."]
    return lines


def goal_rows(part: pd.DataFrame, floors: pd.DataFrame, config: dict) -> list[dict]:
    """The paper's headline goal, checked per T × method against ``config["reference"]``.

    ``config["goal"]`` maps "split metric" to the largest allowed relative change (e.g. -0.20:
    at least 20% lower, with the 95% interval excluding zero; +0.01: at most 1% higher). Beside each
    change stand two measured limits on what any method could reach: the *headroom* (how far the
    reference is above the noise floor, as a share of the reference: a larger reduction is
    impossible for any predictor of the per-pair probabilities) and the change the
    ``config["goal_bound"]`` method (the oracle similarity) reaches.
    """
    goal = config.get("goal", {})
    present = set(part["method"])
    methods = [m for m in config.get("goal_methods", []) if m in present and reference_of(m, config) in present]
    if not goal or not methods:
        return []
    rows = []
    for T in sorted(part["T"].unique()):
        sub, floor = part[part["T"] == T], floors[floors["T"] == T]
        for method in methods:
            reference = reference_of(method, config)
            bound = config.get("goal_bounds", {}).get(method, config.get("goal_bound"))
            row = {"T": int(T), "method": method, "reference": reference, "bound": bound}
            met_all = True
            for entry, limit in goal.items():
                split, metric = entry.split()
                result = paired_difference(sub, method, reference, split, metric)
                if result is None:
                    met_all = False
                    row[entry] = None
                    continue
                if limit < 0:
                    met = result["relative"] <= limit and result["upper"] < 0
                else:
                    met = result["relative"] <= limit
                met_all &= met
                ref = sub[(sub["method"] == reference) & (sub["split"] == split)].set_index("seed")[metric]
                column = f"{split}_floor_{metric[-1]}"
                headroom = None
                if metric != "rmse_p" and column in floor:
                    per_seed = floor.set_index("seed")[column].reindex(ref.index)
                    headroom = float(np.nanmean(1 - per_seed / ref))
                bound_result = paired_difference(sub, bound, reference, split, metric) if bound else None
                row[entry] = {**result, "met": met, "limit": limit, "headroom": headroom,
                              "bound": None if bound_result is None else bound_result["relative"]}
            row["met"] = met_all
            if any(row[entry] is not None for entry in goal):
                rows.append(row)
    return rows


def goal_table(part: pd.DataFrame, floors: pd.DataFrame, config: dict) -> list[str]:
    rows = goal_rows(part, floors, config)
    if not rows:
        return []
    goal = config["goal"]
    lines = [f"Goal (the paper's headline) against **{config['reference']}** (or the method in brackets): "
             + "; ".join(f"{k.replace('rmse_', 'RMSE_')} {100 * v:+.0f}%" + (" or lower, 95% interval below 0" if v < 0 else " or lower")
                         for k, v in goal.items())
             + ". *headroom*: the reference's distance above the noise floor as a share of it (no predictor of the "
             "per-pair probabilities can reduce the metric by more); *bound*: the change the row's oracle method (named "
             "in brackets after the method) reaches against the same reference.", "",
             "| T | method | " + " | ".join(k.replace("rmse_", "RMSE_") for k in goal) + " | met |",
             "|---|---|" + "---|" * (len(goal) + 1)]
    for row in rows:
        cells = []
        for entry in goal:
            r = row[entry]
            if r is None:
                cells.append("—")
                continue
            extra = [f"headroom {100 * r['headroom']:.0f}%"] if r["headroom"] is not None else []
            extra += [f"bound {100 * r['bound']:+.1f}%"] if r["bound"] is not None else []
            cells.append(f"{100 * r['relative']:+.1f}% {'✓' if r['met'] else '✗'}" + (f" ({', '.join(extra)})" if extra else ""))
        label = row["method"] if row["reference"] == config.get("reference") else f"{row['method']} (− {row['reference']})"
        label += f" [bound: {row['bound']}]" if row.get("bound") else ""
        lines.append(f"| {row['T']} | {label} | " + " | ".join(cells) + f" | {'yes' if row['met'] else 'no'} |")
    return lines


def peer_rows(part: pd.DataFrame, config: dict) -> list[dict]:
    """``config["peers"] = {"ours": method or [methods], "peers": [...]}``: for each T, ours and peer, ``ours − peer`` on
    every split × metric (paired over the seeds both have; with one shared seed, the difference
    alone), how many of those cells ours is at least as low as the peer, and the ratio of the
    peers' wall time (tuning + final fit) to ours."""
    spec = config.get("peers")
    present = set(part["method"]) if not part.empty else set()
    if not spec:
        return []
    rows = []
    ours_list = [spec["ours"]] if isinstance(spec["ours"], str) else spec["ours"]
    for T, ours, peer in itertools.product(sorted(part["T"].unique()), [m for m in ours_list if m in present],
                                           spec["peers"]):
        sub = part[part["T"] == T]
        seeds = sorted(set(sub[sub["method"] == ours]["seed"]) & set(sub[sub["method"] == peer]["seed"]))
        if not seeds:
            continue
        shared = sub[sub["seed"].isin(seeds)]
        cells, ahead = {}, 0
        for split in SPLITS:
            for metric in METRICS:
                means = shared[shared["split"] == split].groupby("method")[metric].mean()
                if ours not in means or peer not in means or np.isnan(means[peer]):
                    continue
                result = paired_difference(shared, ours, peer, split, metric)
                diff = means[ours] - means[peer]
                cells[f"{split} {metric}"] = {"relative": diff / means[peer] if means[peer] else np.nan,
                                              "lower": None if result is None else result["lower"],
                                              "upper": None if result is None else result["upper"]}
                ahead += int(diff <= 0)
        seconds = shared.drop_duplicates(["seed", "method"]).assign(
            total=lambda f: f["fit_seconds"] + f["tune_seconds"]).groupby("method")["total"].mean()
        rows.append({"T": int(T), "ours": ours, "peer": peer, "seeds": len(seeds), "cells": cells,
                     "ahead": ahead, "n_cells": len(cells), "time_ratio": seconds[peer] / seconds[ours]})
    return rows


def peer_table(part: pd.DataFrame, config: dict) -> list[str]:
    rows = peer_rows(part, config)
    if not rows:
        return []
    columns = [f"{s} {m}" for s in SPLITS for m in METRICS]
    lines = ["Ours against the peers (*ours* − peer on every split and metric, relative to the peer, "
             "over the seeds both have; ✓ = 95% interval below 0, ✗ = above 0, blank = interval crosses 0 or one seed only; "
             "*time*: the peer's wall time, tuning + final fit, over ours, as the cells recorded it on 2 cores often "
             "shared with other runs):", "",
             "| T | ours | peer | seeds | " + " | ".join(c.replace("rmse_", "RMSE_") for c in columns)
             + " | ours ≤ peer | time |",
             "|---|---|---|---|" + "---|" * (len(columns) + 2)]
    for row in rows:
        cells = []
        for column in columns:
            r = row["cells"].get(column)
            if r is None:
                cells.append("—")
                continue
            mark = "" if r["upper"] is None else " ✓" if r["upper"] < 0 else " ✗" if r["lower"] > 0 else ""
            cells.append(f"{100 * r['relative']:+.1f}%{mark}")
        lines.append(f"| {row['T']} | {row['ours']} | {row['peer']} | {row['seeds']} | " + " | ".join(cells)
                     + f" | {row['ahead']}/{row['n_cells']} | {row['time_ratio']:.1f}× |")
    return lines


def losses_to_baseline(part: pd.DataFrame, config: dict) -> list[str]:
    """Where a factor model is worse than the counting baseline (mean over shared seeds)."""
    baseline = config.get("counting_baseline")
    if not baseline or baseline not in set(part["method"]):
        return []
    factor_methods = [m for m in config.get("factor_methods", []) if m in set(part["method"])]
    losses = []
    for T in sorted(part["T"].unique()):
        sub = part[part["T"] == T]
        for method in factor_methods:
            for split in SPLITS:
                for metric in METRICS:
                    result = paired_difference(sub, method, baseline, split, metric)
                    if result is not None and result["diff"] > 0:
                        significant = " (95% interval excludes 0)" if result["lower"] > 0 else ""
                        losses.append(f"T={T} {method} {split} {metric.replace('rmse_', 'RMSE_')}: "
                                      f"{result['diff']:+.4f} ({100 * result['relative']:+.1f}%){significant}")
    header = f"Where a factor model is worse than {baseline} (mean over seeds):"
    return [header, ""] + ([f"- {line}" for line in losses] or ["- nowhere"])


def write_tables(config: dict, cells: Path, out: Path, command: str, allow_mixed: bool = False) -> None:
    report = check_provenance(read_cells(cells, config), allow_mixed=allow_mixed)
    scores, splits = load_cells(cells, config)
    out.parent.mkdir(parents=True, exist_ok=True)
    scores.to_csv(out.with_suffix(".csv"), index=False)
    methods = list(config["methods"])
    expected = len(config["T"]) * len(config["seeds"]) * len(methods)
    sections = [f"# {config.get('description', 'Protocol results')}", "",
                f"Command: `{command}` (resumable: one cached cell per dataset × T × seed × method in "
                f"`{cells.as_posix()}`)  ",
                f"Machine of the last aggregation: {platform.machine()}, {os.cpu_count()} cores, JAX on CPU.  ",
                "Cells: mean ± sd over the seeds done; hyper-parameters tuned per seed on validation pairs carved from "
                f"that seed's own training pairs ({config['tuning']}), never on test pairs.  ",
                f"Question embeddings: {_embedding_note(scores)} (the paper's multilingual E5 is not reachable here).  ",
                "Noise floor: RMSE_m / RMSE_x that the true per-pair probabilities would still show, from the binomial "
                "variance of each LLM's / item's observed mean on the split.  ", *report.header(), "", "Methods:", ""]
    for label, spec in config["methods"].items():
        form = ("the paper's form" if spec.get("paper") else "ours" if spec["method"] in ("simrmf", "oracle")
                else f"peer: {spec['peer']}, features = our similarity factors + benchmark indicators"
                if spec["method"] == "peer" else "baseline")
        sections.append(f"- {label} ({form}): `{json.dumps({k: v for k, v in spec.items() if k not in ('tune', 'stages')})}`"
                        + (f"; tuned over `{json.dumps(spec.get('tune') or [s['grid'] for s in spec.get('stages', [])])}`"
                           if spec.get("tune") or spec.get("stages") else ""))
    for dataset in config["datasets"]:
        part = scores[scores["dataset"] == dataset] if not scores.empty else scores
        if part.empty:
            sections += ["", f"## {dataset}", "", "No cells yet."]
            continue
        done = part.drop_duplicates(["T", "seed", "method"]).shape[0]
        floors = splits[splits["dataset"] == dataset]
        known = floors.iloc[0]
        sections += ["", f"## {dataset} ({int(known['n_known_llms'])} known LLMs × {int(known['n_known_items'])} known items, "
                         f"seed {int(known['seed'])})", "",
                     f"Cells done: {done} of {expected}{'' if done == expected else ' (PARTIAL)'}.  ",
                     "Training degrees (min–max over seeds): " + "; ".join(
                         f"T={T}: LLM {int(g['llm_degree_min'].min())}–{int(g['llm_degree_max'].max())}, "
                         f"item {int(g['item_degree_min'].min())}–{int(g['item_degree_max'].max())}"
                         + ("" if g["t_regular"].isna().all() else f", T-regular in {int(g['t_regular'].fillna(False).sum())}/{len(g)} seeds")
                         for T, g in floors.groupby("T")), "",
                     *results_table(part, methods, floors), "", *log_loss_table(part, methods), ""]
        chosen = chosen_table(part, methods)
        sections += chosen + ([""] if chosen else [])
        sections += paired_table(part, config) + [""]
        goal = goal_table(part, floors, config)
        sections += goal + ([""] if goal else [])
        peers = peer_table(part, config)
        sections += peers + ([""] if peers else []) + losses_to_baseline(part, config)
    out.with_suffix(".md").write_text("\n".join(sections) + "\n")


def _embedding_note(scores: pd.DataFrame) -> str:
    if scores.empty or scores["embedding_model"].dropna().empty:
        return "none used"
    return ", ".join(sorted(set(scores["embedding_model"].dropna())))
