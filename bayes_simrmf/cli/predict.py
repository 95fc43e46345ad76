"""`bayes-simrmf predict` and `bayes-simrmf next-questions`: a new LLM's scores before and while you run it.

An evaluation team works in rounds: ``predict`` (from leaderboard metadata alone, or with the answers so
far), ``next-questions`` (which questions to run next), run them, append the answers, predict again.
Nothing is written to the model folder: new LLMs and questions are folded in in memory.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import click

from bayes_simrmf.cli.common import SEED, _friendly_errors, _say
from bayes_simrmf.cli.entities import (
    _check_out,
    _fitted_dataset,
    _id_column,
    _items_file,
    _optional_dataset,
    _read_table_file,
    _with_dataset_columns,
    _write_table,
    OVERWRITE_TABLE_OPTION,
)
from bayes_simrmf.options import DEFAULT_EMBEDDING_MODEL

BY = ("benchmark", "subtask", "item")


def _load_factor_model(model_dir: str, command: str):
    """The saved model folder and its estimator; refuses a baseline (it has no LLM to fold in)."""
    from bayes_simrmf.errors import ConfigError
    from bayes_simrmf.saving import load_model

    saved = load_model(model_dir)
    for note in saved.notes:
        click.echo(f"note: {note}")
    if not hasattr(saved.estimator, "fold_in"):
        method = saved.config["estimator"].get("method")
        raise ConfigError(f"--model {model_dir} holds a {method} model; {command} needs one fitted with "
                          "--method mf or simrmf")
    return saved, saved.estimator


def _read_answers(path: str, llm_id: str, model):
    """The --answers file as (llm, item, correct) rows of ``llm_id`` on questions the model was fitted on."""
    import numpy as np
    import pandas as pd

    from bayes_simrmf.errors import ConfigError

    frame = _read_table_file(path, "--answers")
    items = _id_column(frame, f"--answers {path}", "item", "needs columns item and correct (and optionally llm)")
    if "correct" not in frame.columns:
        raise ConfigError(f"--answers {path}: needs columns item and correct; has {list(frame.columns)}")
    if "llm" in frame.columns:
        mine = frame["llm"].astype(str).to_numpy() == llm_id
        if not mine.any():
            raise ConfigError(f"--answers {path}: no row has llm {llm_id!r} (the --llm given)")
        frame, items = frame[mine], items[mine]
    correct = pd.to_numeric(frame["correct"], errors="coerce")
    bad = ~correct.isin([0, 1]).to_numpy()
    if bad.any():
        rows = np.flatnonzero(bad)[:5].tolist()
        raise ConfigError(f"--answers {path}: correct must be 0 or 1; rows {rows} are not")
    if items.duplicated().any():
        raise ConfigError(f"--answers {path}: questions answered twice, e.g. {items[items.duplicated()].head(3).tolist()}")
    fitted = np.asarray(model.items_[: model.n_fitted_items_], dtype=str)
    unknown = ~items.isin(fitted).to_numpy()
    if unknown.any():
        raise ConfigError(
            f"--answers {path}: {int(unknown.sum())} question(s) are not among the questions the model was fitted on, "
            f"e.g. {items[unknown].head(3).tolist()}; answers count only on those"
        )
    result = pd.DataFrame({"llm": llm_id, "item": items.to_numpy(), "correct": correct.astype(int).to_numpy()})
    if "round" in frame.columns:
        rounds = pd.to_numeric(frame["round"], errors="coerce")
        bad = ~(rounds.notna() & (rounds >= 1) & (rounds == rounds.round())).to_numpy()
        if bad.any():
            raise ConfigError(f"--answers {path}: round must be a whole number >= 1; rows "
                              f"{np.flatnonzero(bad)[:5].tolist()} are not")
        result["round"] = rounds.astype(int).to_numpy()
    return result


def _metadata_row(llms_file: str | None, llm_id: str, dataset):
    """The new LLM's metadata: its row of --llms, else of the dataset's llms table, else None."""
    from bayes_simrmf.errors import ConfigError

    if llms_file is not None:
        frame = _read_table_file(llms_file, "--llms")
        ids = _id_column(frame, f"--llms {llms_file}", "llm", "needs an llm column and leaderboard metadata columns")
        if not (ids == llm_id).any():
            raise ConfigError(f"--llms {llms_file}: no row has llm {llm_id!r} (the --llm given)")
        rows = frame[(ids == llm_id).to_numpy()].assign(llm=llm_id).reset_index(drop=True)
        if len(rows) > 1:
            differ = [column for column in rows.columns if rows[column].astype(str).nunique(dropna=False) > 1]
            if differ:
                raise ConfigError(f"--llms {llms_file}: {len(rows)} rows have llm {llm_id!r} and they differ in "
                                  f"{', '.join(differ[:5])}; keep one row per LLM")
        return _with_dataset_columns(rows.head(1), dataset, f"--llms {llms_file}")
    if dataset is not None and llm_id in set(dataset.llm_ids()):
        return dataset.llms[dataset.llms["llm"].astype(str) == llm_id].reset_index(drop=True)
    return None


def _warn_unusable_metadata(metadata, llm_id: str) -> None:
    """Say so for each metadata value that cannot be read, and when none of the fields the LLM similarity reads
    could be read from the new LLM's metadata."""
    from bayes_simrmf.similarity import llm_feature_matrix, unreadable_metadata

    for _, column, value in unreadable_metadata(metadata):
        click.echo(f"warning: the metadata of {llm_id} has {column}={value!r}, which cannot be read; it is left out "
                   "of the LLM similarity")

    report = llm_feature_matrix(metadata)[2]
    if report.n_usable == 0:
        click.echo(f"warning: the metadata of {llm_id} has no readable architecture, model_type or params_billions, "
                   "so it tells the model little (the LLM's prior stays close to the fitted LLMs' population)")


def _train_answers(saved, llm_id: str) -> int | None:
    """How many training answers of ``llm_id`` the saved split holds (None without a split)."""
    import numpy as np

    if saved.split is None:
        return None
    code = np.flatnonzero(np.asarray(saved.split.llms, dtype=str) == llm_id)
    return int((saved.split.pairs["train"].llm == code[0]).sum()) if len(code) else 0


def _say_if_a_typo(llm_id: str, held) -> None:
    """Warn when ``llm_id``, not in the model, looks like a mistyped id of one that is (the same but for case, or a
    close spelling): it is folded in as a new LLM, which the user may not mean."""
    import difflib

    same_case = [name for name in held if name.lower() == llm_id.lower()]
    close = same_case or difflib.get_close_matches(llm_id, list(held), n=3, cutoff=0.9)
    if close:
        click.echo(f"warning: --llm {llm_id} is not in the model, so it is treated as a new LLM; did you mean "
                   f"{' or '.join(close)} (in the model)?")


def _fold_in_llm(saved, model, llm_id: str, *, llms_file, answers, data, temperature: float, new_items) -> str:
    """Fold ``llm_id`` (if new) and the new questions into ``model``; a line saying what its estimate rests on."""
    import numpy as np

    from bayes_simrmf.errors import ConfigError
    from bayes_simrmf.predict import fold_in_new_entities

    extra = saved.config.get("extra", {})
    options = dict(alpha=extra.get("alpha", 0.5), embeddings=extra.get("embeddings"),
                   embedding_model=extra.get("embedding_model") or DEFAULT_EMBEDDING_MODEL,
                   energy=extra.get("similarity_energy"), log=_say)
    held = np.asarray(model.llms_, dtype=str)
    known = llm_id in set(held)
    if not known:
        _say_if_a_typo(llm_id, held)
    if known and answers is not None:
        raise ConfigError(f"--llm {llm_id} is in the model (fitted on its training answers); --answers is for an LLM "
                          "the model does not hold")
    parts = ([f"{len(new_items)} question(s) of --items"] if len(new_items) else []) + ([] if known else [
        f"the LLM {llm_id}"])
    what = " and ".join(parts) + (" is" if parts == [f"the LLM {llm_id}"] else " are")
    items = bool(len(new_items))  # the items table is read only for new questions
    dataset = _fitted_dataset(data, saved, what, items=items) if items or (not known and llms_file) else (
        None if known else _optional_dataset(data, saved, items=items))
    metadata = None if known else _metadata_row(llms_file, llm_id, dataset)
    if metadata is not None:
        _warn_unusable_metadata(metadata, llm_id)
    if len(new_items) or metadata is not None:
        fold_in_new_entities(model, dataset, items=new_items if len(new_items) else None, llms=metadata,
                             answers=answers, temperature=temperature, **options)
    if known:
        code = int(np.flatnonzero(np.asarray(model.llms_, dtype=str) == llm_id)[0])
        if code >= model.n_warm_llms_:
            return f"{llm_id}: in the model without answers (placed by its similarity to the fitted LLMs)"
        count = _train_answers(saved, llm_id)
        return f"{llm_id}: in the model" + (f", fitted on {count} training answers" if count is not None else "")
    if metadata is None:
        model.fold_in("llm", [llm_id], answers=answers, temperature=temperature)
    n_answers = 0 if answers is None else len(answers)
    source = "leaderboard metadata" if metadata is not None else "no metadata (prior: the fitted LLMs' population)"
    return f"{llm_id}: new, folded in from {source} and {n_answers} answer(s) (temperature {temperature:g})"


def _labels(by: str, items, model, saved, data, new_items):
    """One label per question: its benchmark or subtask (from the model's groups, the --items file or the
    dataset), or the question itself."""
    import numpy as np
    import pandas as pd

    if by == "item":
        return np.asarray(items, dtype=str)
    labels = pd.Series(np.nan, index=pd.Index(np.asarray(items, dtype=str)), dtype=object)
    if by == "benchmark" and model.item_groups_:
        labels[:] = model.item_groups_.labels_of(labels.index)
    if len(new_items) and by in new_items.columns:
        labels.update(new_items.set_index("item")[by].astype(str))
    missing = labels.isna() | (labels == "(none)")
    if missing.any():
        dataset = _optional_dataset(data, saved)
        if dataset is not None and by in dataset.items.columns:
            table = dataset.items.assign(item=dataset.items["item"].astype(str)).set_index("item")[by]
            labels[missing] = table.reindex(labels.index[missing]).astype(object).to_numpy()
    return labels.fillna("(none)").astype(str).to_numpy()


def _accuracy_table(model, llm_id: str, items, labels, answers, *, level: float, n_draws: int, seed: int, by: str):
    """Per label: the predicted accuracy of ``llm_id`` on its questions (answered ones count as answered) with a
    ``level`` interval; per question (``by="item"``) the probability of a correct answer."""
    import numpy as np
    import pandas as pd

    from bayes_simrmf.predict.queries import quantile_standard_error

    items = np.asarray(items, dtype=str)
    given = pd.Series(dtype=float) if answers is None else answers.set_index("item")["correct"].astype(float)
    answered = np.isin(items, given.index)
    names = pd.Index(pd.unique(labels))
    totals = np.zeros((n_draws, len(names)))
    counts = np.zeros(len(names))
    if (~answered).any():
        group_ids, means, n_pairs = model.group_draws(
            np.full(int((~answered).sum()), llm_id), items[~answered], by=labels[~answered], n_draws=n_draws,
            observed=by != "item", seed=seed)
        columns = names.get_indexer(group_ids)
        totals[:, columns] += means * n_pairs
        counts[columns] += n_pairs
    if answered.any():
        known = pd.Series(given.reindex(items[answered]).to_numpy()).groupby(labels[answered]).agg(["sum", "size"])
        columns = names.get_indexer(known.index)
        totals[:, columns] += known["sum"].to_numpy()
        counts[columns] += known["size"].to_numpy()
    accuracy = totals / counts
    tail = (1.0 - level) / 2.0
    n_answered = pd.Series(answered).groupby(labels).sum().reindex(names).to_numpy()
    table = pd.DataFrame({
        by: names, "accuracy" if by != "item" else "prob": accuracy.mean(axis=0),
        "lower": np.quantile(accuracy, tail, axis=0), "upper": np.quantile(accuracy, 1.0 - tail, axis=0),
        "n_items": counts.astype(int), "n_answered": n_answered.astype(int),
    })
    # The largest Monte Carlo standard errors of the estimates and of the interval ends (see _monte_carlo_note).
    ends = np.maximum(quantile_standard_error(accuracy, tail), quantile_standard_error(accuracy, 1.0 - tail))
    table.attrs["monte_carlo"] = (n_draws, float(np.max(accuracy.std(axis=0) / np.sqrt(n_draws))), float(np.max(ends)))
    return table


def _monte_carlo_note(table) -> str:
    """One line: how far the table's figures may move with another --seed (one Monte Carlo standard error)."""
    n_draws, estimate, ends = table.attrs["monte_carlo"]
    return (f"Monte Carlo error ({n_draws} draws, one standard error): estimates ±{estimate:.4f}, interval ends "
            f"±{ends:.4f} at most; more --n-draws shrink it")


def _echo_table(frame, out: str | None, show: int = 60, overwrite: bool = False) -> None:
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_colwidth", 60, "display.float_format", "{:.4f}".format):
        click.echo(frame.head(show).to_string(index=False))
    if len(frame) > show:
        click.echo(f"... {len(frame) - show} more rows" + (f" in {out}" if out else " (--out FILE writes all)"))
    if out is not None:
        _write_table(frame, out, overwrite)
        click.echo(f"written to {out}")


#: The figure formats --plot writes.
PLOT_SUFFIXES = (".png", ".pdf", ".svg")

_MODEL = click.option("--model", "model_dir", required=True, type=click.Path(file_okay=False),
                      help="Saved model folder (from `fit`, --method mf or simrmf).")
_LLM = click.option("--llm", "llm_id", required=True,
                    help="The LLM: one the model holds, or a new one (folded in from metadata and answers).")
_LLMS = click.option("--llms", "llms_file", type=click.Path(dir_okay=False, exists=True), default=None,
                     help="CSV/parquet with a row for the new LLM: llm and leaderboard metadata columns (params_billions, "
                          "architecture, model_type, base_model, ...). [default: its row of the data's llms table, if any]")
_ANSWERS = click.option("--answers", "answers_file", type=click.Path(dir_okay=False, exists=True), default=None,
                        help="CSV/parquet of the new LLM's answers so far: item, correct (0/1), optionally llm.")
_DATA = click.option("--data", "data", default=None, metavar="DIR",
                     help="The dataset the model was fitted on (texts and metadata for folding in). [default: the "
                          "folder recorded in the model, or the shared data folder of its name]")
_TEMPERATURE = click.option("--temperature", type=float, default=1.0,
                            help="Fold-in temperature: > 1 widens the posterior the answers give (the estimate stays).")
_OUT = click.option("--out", type=click.Path(dir_okay=False), default=None,
                    help="Write the table to FILE.csv or FILE.parquet. [default: print only]")


@click.command()
@_MODEL
@_LLM
@_LLMS
@_ANSWERS
@click.option("--items", "items_file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="CSV/parquet of the questions to predict (item; text for questions the model does not hold; "
                   "optional benchmark / subtask). [default: every question the model was fitted on]")
@_DATA
@click.option("--by", type=click.Choice(BY), default="benchmark", help="Report accuracy per benchmark, per subtask, "
              "or the probability per question.")
@click.option("--level", type=float, default=0.9, help="Credible level of the intervals.")
@_TEMPERATURE
@click.option("--n-draws", type=int, default=500, help="Posterior predictive draws.")
@click.option("--seed", type=SEED, default=0, help="Seed of the draws.")
@_OUT
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False), default=None,
              help="Also draw each benchmark's (or subtask's) accuracy with its interval to FILE.png, .pdf or .svg; "
                   "where --answers has a round column, also the estimates after each round (round 0: no answers).")
@OVERWRITE_TABLE_OPTION
@_friendly_errors
def predict(model_dir, llm_id, llms_file, answers_file, items_file, data, by, level, temperature, n_draws, seed, out,
            plot_file, overwrite):
    """Predict an LLM's accuracy per benchmark (or per question), with credible intervals.

    For a new LLM the estimate rests on its leaderboard metadata (SimRMF's LLM similarity) and on the answers
    given; questions it answered count as answered, the rest are predicted. The interval is for the accuracy
    you would measure by running every question.

    \b
    Example:
      bayes-simrmf predict --model models/v2-simrmf --llm org/new-7b --llms new.csv --answers so_far.csv
    """
    from bayes_simrmf.errors import ConfigError

    _check_out(out, overwrite)
    _check_plot(plot_file, by, overwrite)
    if not 0 < level < 1:
        raise ConfigError(f"--level must be in (0, 1), got {level}")
    if n_draws < 2:
        raise ConfigError(f"--n-draws must be >= 2, got {n_draws}")
    saved, model = _load_factor_model(model_dir, "predict")
    answers = None if answers_file is None else _read_answers(answers_file, llm_id, model)
    if items_file is not None:
        items, new_items = _items_file(items_file, model)
        items = items.to_numpy()
    else:
        import pandas as pd

        items, new_items = model.items_[: model.n_fitted_items_], pd.DataFrame({"item": []})
    click.echo(_fold_in_llm(saved, model, llm_id, llms_file=llms_file, answers=answers, data=data,
                            temperature=temperature, new_items=new_items))
    labels = _labels(by, items, model, saved, data, new_items)
    table = _accuracy_table(model, llm_id, items, labels, answers, level=level, n_draws=n_draws, seed=seed, by=by)
    if model.guide == "delta" and model.inference != "gibbs" and llm_id in set(model.llms_[: model.n_fitted_llms_]):
        click.echo("note: the model has a delta guide, so for an LLM it was fitted on the interval holds only the "
                   "answers' Bernoulli noise, not the uncertainty of its parameters")
    _echo_table(table, out, overwrite=overwrite)
    click.echo(_monte_carlo_note(table))
    if plot_file is not None:
        path = []
        if answers is not None and "round" in answers.columns:
            for last in [0, *sorted(answers["round"].unique())]:  # each round's estimate from a fresh copy of the model
                so_far = answers[answers["round"] <= last] if last else None
                with contextlib.redirect_stdout(io.StringIO()):  # its notes and warnings were printed above
                    saved, fresh = _load_factor_model(model_dir, "predict")
                    _fold_in_llm(saved, fresh, llm_id, llms_file=llms_file, answers=so_far, data=data,
                                 temperature=temperature, new_items=new_items)
                path.append((int(last), _accuracy_table(fresh, llm_id, items, labels, so_far, level=level,
                                                        n_draws=n_draws, seed=seed, by=by)))
        _write_plot(plot_file, llm_id, table, path, by=by, level=level, overwrite=overwrite)
        click.echo(f"plot written to {plot_file}")


def _check_plot(plot_file: str | None, by: str, overwrite: bool) -> None:
    """Refuse, before any work, a --plot that is not FILE.png/.pdf/.svg, one that exists without --overwrite, and a
    plot per question."""
    from bayes_simrmf.errors import ConfigError
    from bayes_simrmf.outputs import check_file_target

    if plot_file is None:
        return
    if Path(plot_file).suffix.lower() not in PLOT_SUFFIXES:
        raise ConfigError(f"--plot {plot_file} must end in {', '.join(PLOT_SUFFIXES)}")
    if by == "item":
        raise ConfigError("--plot draws accuracies per benchmark or subtask; use --by benchmark or --by subtask")
    check_file_target(plot_file, overwrite)


def _write_plot(plot_file: str, llm_id: str, table, path: list, *, by: str, level: float, overwrite: bool) -> None:
    """Each label's accuracy and interval (left); with rounds, the estimate and interval after each (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bayes_simrmf.outputs import write_file

    panels = 2 if path else 1
    figure, axes = plt.subplots(1, panels, figsize=(6 * panels, 0.4 * len(table) + 2.0), squeeze=False)
    left = axes[0, 0]
    rows = range(len(table))
    left.errorbar(table["accuracy"], rows, xerr=[table["accuracy"] - table["lower"], table["upper"] - table["accuracy"]],
                  fmt="o", capsize=3)
    left.set_yticks(list(rows), table[by].tolist())
    left.invert_yaxis()
    left.set_xlim(0, 1)
    left.set_xlabel(f"accuracy ({level:.0%} interval)")
    left.set_title(llm_id)
    if path:
        right = axes[0, 1]
        rounds = [round_ for round_, _ in path]
        for label in table[by]:
            steps = [frame.set_index(by).loc[label] for _, frame in path]
            line, = right.plot(rounds, [step["accuracy"] for step in steps], marker="o", label=label)
            right.fill_between(rounds, [step["lower"] for step in steps], [step["upper"] for step in steps],
                               color=line.get_color(), alpha=0.15)
        right.set_xticks(rounds)
        right.set_xlabel("after round (0: no answers)")
        right.set_ylabel("accuracy")
        right.set_ylim(0, 1)
        right.legend(fontsize="small")
    figure.tight_layout()
    write_file(plot_file, lambda target: figure.savefig(target, format=Path(plot_file).suffix[1:].lower()),
               overwrite=overwrite)
    plt.close(figure)


@click.command("next-questions")
@_MODEL
@_LLM
@_LLMS
@_ANSWERS
@_DATA
@click.option("--k", "k", type=int, default=10, help="How many questions to propose.")
@_TEMPERATURE
@_OUT
@OVERWRITE_TABLE_OPTION
@_friendly_errors
def next_questions(model_dir, llm_id, llms_file, answers_file, data, k, temperature, out, overwrite):
    """Propose the questions to run next on a new LLM: those expected to shrink the uncertainty of its benchmark
    accuracies most (greedy expected variance reduction; see docs/adaptive_testing.md).

    \b
    Rounds: predict -> next-questions -> run them -> append to --answers -> predict ...
    Example:
      bayes-simrmf next-questions --model models/v2-simrmf --llm org/new-7b --llms new.csv --answers so_far.csv --k 20
    """
    import pandas as pd

    from bayes_simrmf.predict.adaptive import next_questions as choose

    _check_out(out, overwrite)
    saved, model = _load_factor_model(model_dir, "next-questions")
    answers = None if answers_file is None else _read_answers(answers_file, llm_id, model)
    click.echo(_fold_in_llm(saved, model, llm_id, llms_file=llms_file, answers=answers, data=data,
                            temperature=temperature, new_items=pd.DataFrame({"item": []})))
    items = model.items_[: model.n_fitted_items_]
    groups = None
    if not model.item_groups_:
        groups = dict(zip(items, _labels("benchmark", items, model, saved, data, pd.DataFrame({"item": []}))))
    chosen = choose(model, llm_id, k, answered=() if answers is None else answers["item"], item_groups=groups,
                    temperature=temperature)
    _echo_table(chosen, out, overwrite=overwrite)
