"""Command-line interface: ``bayes-simrmf fit``, ``tune``, ``evaluate``, ``route``, ``data pull``.

Commands are verbs, every option shows its default in ``--help``, errors are one line a
person can act on. Exit codes: 0 success, 1 a bayes-simrmf error (bad data, bad option
value, failed fit), 2 a usage error (unknown option, missing argument).
"""

from __future__ import annotations

import functools
import json
import shlex
import sys
import time
from pathlib import Path

import click

from bayes_simrmf.errors import BayesSimRMFError
from bayes_simrmf.options import (
    DEFAULT_EMBEDDING_MODEL,
    DEVICES,
    FACTOR_METHODS,
    GUIDES,
    METHODS,
    POLICIES,
    SIMILARITY_MODES,
    UNKNOWN_ENTITY_POLICIES,
)

SYNTHETIC = "synthetic"
EXIT_ERROR = 1


def _friendly_errors(command):
    """Turn package errors into one line on stderr and exit code 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except BayesSimRMFError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(EXIT_ERROR)

    return wrapper


def _invoked_command() -> str:
    """The command as click parsed it (every option with its value), for provenance."""
    context = click.get_current_context()
    words = context.command_path.split()
    for parameter in context.command.params:
        value = context.params.get(parameter.name)
        if not isinstance(parameter, click.Option) or value is None:
            continue
        if parameter.is_flag:
            if value is True:
                words.append(max(parameter.opts, key=len))
            elif parameter.secondary_opts:
                words.append(max(parameter.secondary_opts, key=len))
        else:
            words += [max(parameter.opts, key=len), str(value)]
    return shlex.join(words)


def _read_hyper(path: str, method: str, paper: bool = False) -> dict:
    """Chosen hyper-parameters from a `tune` JSON file, checked against the method."""
    from bayes_simrmf.errors import ConfigError

    try:
        payload = json.loads(Path(path).read_text())
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path} is not valid JSON: {error}") from None
    if payload.get("method") != method:
        raise ConfigError(f"{path} holds hyper-parameters for method {payload.get('method')!r}, not {method!r}")
    if bool(payload.get("paper_form", False)) != bool(paper):
        tuned = "with --paper" if payload.get("paper_form") else "without --paper"
        raise ConfigError(f"{path} was tuned {tuned}; pass the same to fit ({'add' if payload.get('paper_form') else 'drop'} --paper)")
    click.echo(f"hyper-parameters from {path}: {payload['chosen']}")
    return dict(payload["chosen"])


def _load_data(data: str | None, unknown_entities: str, seed: int):
    from bayes_simrmf.data import load_dataset
    from bayes_simrmf.synthetic import make_synthetic_dataset

    if data is None or data == SYNTHETIC:
        if data is None:
            click.echo(
                "No --data given: using a generated demo dataset (300 LLMs x 600 items drawn from the model).\n"
                "For real leaderboard data pass --data DIR, a folder with responses/items/llms as parquet or CSV "
                "(see README, 'Data')."
            )
        dataset, _ = make_synthetic_dataset(seed_value=seed)
        return dataset
    return load_dataset(data, unknown_entities=unknown_entities, log=click.echo)


def _option_group(*options):
    """Several click options applied as one decorator, so commands that share them define them once."""
    def apply(function):
        for option in reversed(options):
            function = option(function)
        return function
    return apply


#: Where the data come from (fit, tune).
DATA_OPTIONS = _option_group(
    click.option("--data", "data", default=None, metavar="DIR|synthetic",
                 help="Dataset folder (responses, items, llms as parquet/CSV) or 'synthetic'. [default: synthetic demo]"),
    click.option("--unknown-entities", type=click.Choice(UNKNOWN_ENTITY_POLICIES), default="error",
                 help="Responses whose LLM/item is missing from llms/items: fail, drop them, or add the id without "
                      "metadata."),
)
#: The evaluation protocol's split (fit, tune).
SPLIT_OPTIONS = _option_group(
    click.option("--T", "T", type=int, default=300, help="Training pairs per known LLM and per known item."),
    click.option("--n-known-llms", type=int, default=None,
                 help="Known LLMs, drawn among those that answered at least a quarter of the items. [default: 1000, or "
                      "2/3 of the eligible LLMs if fewer than 1500, at most 10x the known items]"),
    click.option("--n-known-items", type=int, default=None,
                 help="Known items, drawn among those answered by at least a quarter of the LLMs. [default: 1000, or "
                      "2/3 of the eligible items if fewer than 1500, at most 10x the known LLMs]"),
    click.option("--seed", type=int, default=0, help="Seed of the split and of every fit (and of tune's validation carve)."),
)
#: Side information: question embeddings and LLM similarity (fit, tune).
SIDE_OPTIONS = _option_group(
    click.option("--alpha", type=float, default=0.5, help="Weight of metadata features vs lineage in the LLM similarity."),
    click.option("--embeddings", type=click.Path(dir_okay=False), default=None,
                 help="Precomputed question embeddings (parquet: item, text_sha256_16, embedding). "
                      "[default: item_embeddings.<model>.parquet in --data if present, else computed]"),
    click.option("--embedding-model", default=DEFAULT_EMBEDDING_MODEL,
                 help="sentence-transformers model for question texts: the bundled default, "
                      "'e5-multilingual-base' (the paper's), a hub id or a local path."),
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(package_name="bayes-simrmf")
def main() -> None:
    """Predict whether an LLM solves a question, for LLMs and questions never evaluated."""


@main.command()
@DATA_OPTIONS
@click.option("--method", type=click.Choice(METHODS), default="mf",
              help="mf: factorisation; simrmf: plus similarity from question texts and LLM metadata; "
                   "oracle: plus the ideal similarity from the true scores (an upper bound, uses test data); "
                   "counting: each LLM's training accuracy per --item-groups group, shrunk to the group mean.")
@click.option("--shrinkage", type=float, default=10.0, help="Pseudo-count of --method counting's shrinkage.")
@SPLIT_OPTIONS
@click.option("--guide", type=click.Choice(GUIDES), default="delta",
              help="Variational family: delta = MAP (the paper's point estimate).")
@click.option("--rank", "lowrank_rank", type=int, default=8, help="Rank of the low-rank guide's covariance (--guide lowrank).")
@click.option("--dim", type=int, default=8, help="Latent dimension d.")
@click.option("--lambda-reg", type=float, default=1.0, help="L2 weight (prior sd of factors = 1/sqrt(2*lambda_reg)).")
@click.option("--bias-scale", type=float, default=2.0, help="Prior sd of the LLM and item biases (logit units).")
@click.option("--llm-bias-scale", type=float, default=None,
              help="Prior sd of the LLM biases alone; smaller when each LLM has few training answers. [default: --bias-scale]")
@click.option("--n-test-pairs", type=int, default=1_000_000, help="At most this many pairs per test split.")
@click.option("--learning-rate", type=float, default=0.05, help="Adam step size.")
@click.option("--max-steps", type=int, default=3000, help="Upper bound on SVI steps.")
@click.option("--tol", type=float, default=1e-5, help="Stop when the relative loss change per 50 steps is below this.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Training pairs per SVI step (minibatch SVI, log-likelihood scaled by pairs / batch size) for "
                   "observed sets too large for full-batch steps. [default: full batch]")
@click.option("--device", type=click.Choice(DEVICES), default="auto",
              help="Where JAX runs the fit: auto = JAX's default backend (a GPU when a CUDA build of JAX sees one).")
@click.option("--similarity-weight-items", type=float, default=1.0,
              help="kappa_X: question-similarity weight (lambda_X = kappa_X * pairs / items^2); simrmf/oracle.")
@click.option("--similarity-weight-llms", type=float, default=1.0,
              help="kappa_M: LLM-similarity weight (lambda_M = kappa_M * pairs / LLMs^2); simrmf/oracle.")
@click.option("--similarity-mode", type=click.Choice(SIMILARITY_MODES), default="kernel",
              help="kernel: fold LLMs/questions without data in by GP regression on the similarity; cold: the Gram "
                   "potential moving only those; joint: the paper's Gram potential on all.")
@click.option("--paper", is_flag=True,
              help="SimRMF as the paper writes it (with --method simrmf/oracle): the joint Gram potential on the factors "
                   "alone, uncentred similarity at scale 1 (overrides --similarity-mode); intercept and biases stay.")
@click.option("--fold-in-ridge-items", type=float, default=1.0, help="GP nugget of the question fold-in (kernel mode).")
@click.option("--fold-in-ridge-llms", type=float, default=1.0, help="GP nugget of the LLM fold-in (kernel mode).")
@click.option("--item-groups", default=None, metavar="COLUMN",
              help="Column of the items table (e.g. benchmark) whose groups get their own mean question difficulty. "
                   "[default: none]")
@SIDE_OPTIONS
@click.option("--hyper", type=click.Path(dir_okay=False, exists=True), default=None,
              help="JSON written by `bayes-simrmf tune`; its values replace the defaults of the options above. [default: none]")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Model folder to write. [default: models/<data>-<method>-T<T>-seed<seed>-<date-time>]")
@click.option("--overwrite", is_flag=True, help="Replace an existing model folder.")
@click.option("--baseline/--no-baseline", default=True, help="Also score MeanScore on the same split for comparison.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_friendly_errors
def fit(data, unknown_entities, method, shrinkage, T, guide, lowrank_rank, dim, lambda_reg, bias_scale, llm_bias_scale, n_known_llms, n_known_items, n_test_pairs, seed,
        learning_rate, max_steps, tol, batch_size, device, similarity_weight_items, similarity_weight_llms, similarity_mode,
        paper, fold_in_ridge_items, fold_in_ridge_llms, alpha, item_groups,
        embeddings, embedding_model, hyper, out, overwrite, baseline, quiet):
    """Fit a model on a split of the data, evaluate it on splits A-D and save it.

    \b
    Example:
      bayes-simrmf fit --data ../shared/data/openllm-v2-mmlupro-math \\
          --T 300 --guide delta --method mf --dim 8 --seed 0 --out models/mmlupro-mf
    """
    from bayes_simrmf.errors import ConfigError
    from bayes_simrmf.estimators import PAPER_FORM, PAPER_SIDE, MeanScore, make_estimator
    from bayes_simrmf.evaluate import evaluate_on_split, fit_on_split, format_metrics
    from bayes_simrmf.saving import save_model
    from bayes_simrmf.splits import Protocol

    baseline_method = method in ("meanscore", "counting")
    if baseline_method and guide != "delta":
        raise ConfigError(f"--guide applies to mf, simrmf and oracle; --method {method} has no posterior")
    if paper and method not in ("simrmf", "oracle"):
        raise ConfigError(f"--paper applies to --method simrmf or oracle, not {method}")
    if out is not None and Path(out).exists() and not overwrite:
        raise ConfigError(f"{out} already exists; choose another --out or pass --overwrite")
    import jax

    from bayes_simrmf.inference import select_device

    # Checked before loading data, so a missing GPU fails in a second, not after the split.
    fit_device = select_device(device)
    dataset = _load_data(data, unknown_entities, seed)
    click.echo(dataset.summary())
    protocol = Protocol(n_known_llms=n_known_llms, n_known_items=n_known_items, T=T, n_test_pairs=n_test_pairs, seed=seed)
    split = protocol.split(dataset, log=click.echo)
    click.echo(split.summary())
    options = {"shrinkage": shrinkage} if method == "counting" else {} if method == "meanscore" else dict(
        dim=dim, lambda_reg=lambda_reg, bias_scale=bias_scale, llm_bias_scale=llm_bias_scale, guide=guide,
        learning_rate=learning_rate, max_steps=max_steps, tol=tol, lowrank_rank=lowrank_rank, seed=seed, progress=not quiet, similarity_weight_items=similarity_weight_items,
        similarity_weight_llms=similarity_weight_llms, similarity_mode=similarity_mode,
        fold_in_ridge_items=fold_in_ridge_items, fold_in_ridge_llms=fold_in_ridge_llms, batch_size=batch_size,
    )
    if paper:
        options.update({key: value for key, value in PAPER_FORM.items() if key != "method"})
    if hyper is not None and not baseline_method:
        options.update(_read_hyper(hyper, method, paper))
    side = None
    if method in ("simrmf", "oracle"):
        from bayes_simrmf.sideinfo import build_side_information

        side = build_side_information(
            dataset, split.llms, split.items, kind="oracle" if method == "oracle" else "similarity", alpha=alpha,
            embeddings=embeddings, embedding_model=embedding_model, log=click.echo, **(PAPER_SIDE if paper else {}),
        )
    groups = None
    if item_groups is not None:
        if item_groups not in dataset.items.columns:
            raise ConfigError(
                f"--item-groups {item_groups!r} is not a column of the items table; it has {list(dataset.items.columns)}"
            )
        groups = dataset.items.set_index("item")[item_groups].fillna("(none)").astype(str)
    if method == "counting" and groups is None:
        click.echo("note: --method counting without --item-groups puts every item in one group (each LLM's overall accuracy)")
    estimator = make_estimator(method, **options)
    with jax.default_device(fit_device):
        fit_on_split(estimator, split, side=side, item_groups=groups)
    if not baseline_method:
        steps = len(estimator.losses_)
        click.echo(
            f"fitted {method} ({guide}) in {estimator.fit_seconds_:.1f} s: {steps} steps, "
            f"{'converged' if estimator.converged_ else 'NOT converged (raise --max-steps)'}, "
            f"final loss {estimator.losses_[-1]:.6g}, layout {estimator.layout_}"
        )
    results = {method: evaluate_on_split(estimator, split)}
    if baseline and method != "meanscore":
        results["meanscore"] = evaluate_on_split(fit_on_split(MeanScore(), split), split)
    click.echo(format_metrics(results))
    # Without --out every run gets its own folder, so re-running the same command never collides.
    name = out or f"models/{Path(dataset.name).name}-{method}-T{T}-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    if Path(name).exists() and not overwrite:
        raise ConfigError(f"{name} already exists; choose another --out or pass --overwrite")
    folder = save_model(
        name,
        estimator,
        data_fingerprint=dataset.fingerprint(),
        split=split,
        metrics=results[method],
        extra_config={"data": dataset.name, "data_source": dataset.source, "unknown_entities": unknown_entities, "alpha": alpha,
                      "paper_form": bool(paper),
                      "embedding_model": embedding_model, "embeddings": embeddings},
        command=_invoked_command(),
        overwrite=overwrite,
    )
    click.echo(f"saved to {folder}")


@main.command()
@DATA_OPTIONS
@click.option("--method", type=click.Choice(FACTOR_METHODS), default="mf", help="Model to tune.")
@SPLIT_OPTIONS
@click.option("--share", type=float, default=0.1, help="Share of training pairs (or LLMs / items) held out for validation.")
@SIDE_OPTIONS
@click.option("--paper", is_flag=True,
              help="Tune SimRMF as the paper writes it (see fit --paper): d and lambda_reg, then lambda_X and lambda_M "
                   "(kappa grids) on held-out questions and LLMs.")
@click.option("--out", type=click.Path(dir_okay=False), default="hyper.json", help="Where to write the chosen values.")
@_friendly_errors
def tune(data, unknown_entities, method, T, n_known_llms, n_known_items, seed, share, alpha, embeddings,
         embedding_model, paper, out):
    """Choose hyper-parameters on validation pairs carved from the training pairs (never test pairs).

    Stages: d and lambda_reg with random training pairs held out; then (simrmf/oracle) the question-similarity
    weight with whole training questions held out, and the LLM-similarity weight with whole LLMs held out.
    Writes the chosen values and every candidate's validation scores to --out, for `fit --hyper`.

    \b
    Example:
      bayes-simrmf tune --data ../shared/data/openllm-v2-mmlupro-math --method simrmf --T 300 --out hyper.json
      bayes-simrmf fit --data ../shared/data/openllm-v2-mmlupro-math --method simrmf --T 300 --hyper hyper.json
    """
    from bayes_simrmf.errors import ConfigError
    from bayes_simrmf.estimators import PAPER_FORM, PAPER_SIDE, make_estimator
    from bayes_simrmf.splits import Protocol
    from bayes_simrmf.tuning import DEFAULT_STAGES, PAPER_STAGES, staged_search

    if paper and method not in ("simrmf", "oracle"):
        raise ConfigError(f"--paper applies to --method simrmf or oracle, not {method}")

    dataset = _load_data(data, unknown_entities, seed)
    split = Protocol(n_known_llms=n_known_llms, n_known_items=n_known_items, T=T, seed=seed).split(dataset, log=click.echo)
    train = split.pairs["train"]
    fit_kwargs = None
    if method in ("simrmf", "oracle"):
        from bayes_simrmf.sideinfo import build_side_information

        side = build_side_information(
            dataset, split.llms, split.items, kind="oracle" if method == "oracle" else "similarity", alpha=alpha,
            embeddings=embeddings, embedding_model=embedding_model, log=click.echo, **(PAPER_SIDE if paper else {}),
        )
        fit_kwargs = {"side": side, "llms": split.llms, "items": split.items}
    preset = {key: value for key, value in PAPER_FORM.items() if key != "method"} if paper else {}

    def build(method=method, **options):
        return make_estimator(method, seed=seed, progress=False, **{**preset, **options})

    chosen, results = staged_search(
        build, PAPER_STAGES if paper else DEFAULT_STAGES[method], split.llms[train.llm], split.items[train.item], train.correct,
        share=share, seed=seed, fit_kwargs=fit_kwargs, log=click.echo,
    )
    payload = {
        "method": method,
        "paper_form": bool(paper),
        "chosen": {**preset, **chosen},
        "data": dataset.name,
        "data_fingerprint": dataset.fingerprint(),
        "protocol": {"T": T, "n_known_llms": split.n_known_llms, "n_known_items": split.n_known_items, "seed": seed},
        "stages": [
            {"holdout": result.holdout, "metric": result.metric, "share": result.share, "best": result.best,
             "table": result.table.to_dict(orient="records")}
            for result in results
        ],
    }
    Path(out).write_text(json.dumps(payload, indent=2, default=float))
    click.echo(f"chosen {chosen}; written to {out}")


@main.command()
@click.argument("model_dir", type=click.Path(file_okay=False))
@click.option("--data", "data", default=None, metavar="DIR",
              help="Check that the model was fitted on this dataset (fingerprint). The saved split holds the test pairs.")
@click.option("--unknown-entities", type=click.Choice(UNKNOWN_ENTITY_POLICIES), default="error",
              help="As for fit, when --data is given.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@_friendly_errors
def evaluate(model_dir, data, unknown_entities, as_json):
    """Re-score a saved model on its saved test splits A-D.

    \b
    Example:
      bayes-simrmf evaluate models/mmlupro-mf
    """
    from bayes_simrmf.errors import ModelFormatError
    from bayes_simrmf.evaluate import evaluate_on_split, format_metrics
    from bayes_simrmf.saving import load_model

    fingerprint = None
    if data is not None:
        fingerprint = _load_data(data, unknown_entities, 0).fingerprint()
    saved = load_model(model_dir, data_fingerprint=fingerprint)
    if saved.split is None:
        raise ModelFormatError(f"{model_dir} holds no split/ folder, so there are no test pairs to score")
    method = saved.config["estimator"]["method"]
    results = {method: evaluate_on_split(saved.estimator, saved.split)}
    if as_json:
        click.echo(json.dumps(results, indent=2, default=float))
    else:
        click.echo(format_metrics(results))


def _read_table_file(path: str, what: str):
    """A CSV or parquet file as a DataFrame (ConfigError naming the file otherwise)."""
    import pandas as pd

    from bayes_simrmf.errors import ConfigError

    suffix = Path(path).suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except (OSError, ValueError) as error:
        raise ConfigError(f"{what} file {path} could not be read: {error}") from None
    raise ConfigError(f"{what} file {path} must end in .csv or .parquet")


def _id_column(frame, where: str, column: str, requirement: str):
    """``frame[column]`` as str ids; ConfigError naming ``where`` if the column is absent or has gaps."""
    import numpy as np

    from bayes_simrmf.errors import ConfigError

    if column not in frame.columns:
        raise ConfigError(f"{where}: {requirement}; has {list(frame.columns)}")
    if frame[column].isna().any():
        rows = np.flatnonzero(frame[column].isna().to_numpy())[:5].tolist()
        raise ConfigError(f"{where}: {'LLM' if column == 'llm' else column} ids are missing in rows {rows}")
    return frame[column].astype(str)


def _route_items(path: str, model):
    """The items file: question ids, and the rows of questions the model does not hold (to fold in from their
    text; without a text column they stop with what to do)."""
    import numpy as np

    from bayes_simrmf.errors import ConfigError, UnknownEntityError

    frame = _read_table_file(path, "--items")
    ids = _id_column(frame, f"--items {path}", "item", "needs an item column")
    repeated = ids.duplicated().to_numpy()
    if repeated.any():
        raise ConfigError(f"--items {path}: item ids repeat, e.g. {ids[repeated].head(5).tolist()} "
                          f"(rows {np.flatnonzero(repeated)[:5].tolist()})")
    new = ~ids.isin(np.asarray(model.items_, dtype=str)).to_numpy()
    if new.any() and "text" not in frame.columns:
        raise UnknownEntityError(
            f"--items {path}: {int(new.sum())} question id(s) are not in the model, e.g. {ids[new].head(5).tolist()}; "
            "add a text column to fold them in from their text, or route questions the model holds"
        )
    if new.any() and frame.loc[new, "text"].isna().any():
        rows = np.flatnonzero(new & frame["text"].isna().to_numpy())[:5].tolist()
        raise ConfigError(f"--items {path}: new questions need a text to be folded in; rows {rows} have none")
    new_items = frame.loc[new].assign(item=ids[new].to_numpy()).reset_index(drop=True)
    return ids, new_items


def _new_llms(frame, model, dataset, path: str):
    """Rows of the candidates the model does not hold, with metadata from the --llms file's own columns
    (beyond llm and cost) or else from the dataset's llms table."""
    import numpy as np

    from bayes_simrmf.errors import UnknownEntityError

    ids = frame["llm"].astype(str)
    new = ~ids.isin(np.asarray(model.llms_, dtype=str)).to_numpy()
    if not new.any():
        return None
    metadata_columns = [column for column in frame.columns if column not in ("llm", "cost")]
    if metadata_columns:
        return frame.loc[new, ["llm", *metadata_columns]].assign(llm=ids[new].to_numpy()).reset_index(drop=True)
    if dataset is not None:
        known = dataset.llms.assign(llm=dataset.llms["llm"].astype(str)).set_index("llm")
        found = ids[new][ids[new].isin(known.index)]
        if len(found) == new.sum():
            return known.loc[found.to_numpy()].reset_index()
    raise UnknownEntityError(
        f"--llms {path}: {int(new.sum())} LLM id(s) are not in the model, e.g. {ids[new].head(5).tolist()}, and no "
        "metadata was found for them; add leaderboard metadata columns (e.g. params_billions, architecture, "
        "model_type, base_model) to the file to fold them in, or route among the model's LLMs"
    )


def _route_dataset(data: str | None, saved, what: str):
    """The dataset the model was fitted on: --data, else the folder its config records, else the shared data
    folder of that name."""
    from bayes_simrmf.data import default_data_dir, load_dataset
    from bayes_simrmf.errors import ConfigError

    extra = saved.config.get("extra", {})
    recorded = extra.get("data_source") or ""
    name = extra.get("data") or ""
    for candidate in ([data] if data else [recorded, str(default_data_dir() / name) if name else ""]):
        if candidate and Path(candidate).is_dir():
            return load_dataset(candidate, unknown_entities=extra.get("unknown_entities", "error"), log=None)
    if data:
        raise ConfigError(f"--data {data} is not a folder")
    raise ConfigError(
        f"{what} not in the model; they are folded in with the texts and metadata of the data the model was fitted "
        f"on ({name or 'not recorded'}): pass that folder with --data DIR"
    )


@main.command()
@click.option("--model", "model_dir", required=True, type=click.Path(file_okay=False),
              help="Saved model folder (from `fit`); a posterior guide (normal, lowrank) gives uncertainty.")
@click.option("--items", "items_file", required=True, type=click.Path(dir_okay=False, exists=True),
              help="CSV/parquet with an `item` column: the questions to route. Questions the model does not hold "
                   "are folded in from a `text` column (in memory: the model folder is not changed).")
@click.option("--llms", "llms_file", required=True, type=click.Path(dir_okay=False, exists=True),
              help="CSV/parquet with columns `llm` and `cost` (per call): the candidate LLMs. LLMs the model does not "
                   "hold are folded in from leaderboard metadata columns in the file, or from --data's llms table.")
@click.option("--data", "data", default=None, metavar="DIR",
              help="The dataset the model was fitted on, for folding in new questions / LLMs (their similarity to "
                   "the fitted ones). [default: the folder recorded in the model, or the shared data folder of its name]")
@click.option("--policy", type=click.Choice(POLICIES),
              default="greedy",
              help="greedy: highest mean; risk-averse: highest lower credible bound; thompson: best in one posterior "
                   "draw; cost-aware: highest mean - lam*cost; threshold: cheapest LLM with "
                   "P(p >= threshold) >= confidence.")
@click.option("--level", type=float, default=0.9, help="Credible level of the intervals (and of risk-averse's bound).")
@click.option("--lam", type=float, default=None,
              help="Success probability traded per unit of cost (cost-aware, thompson). [default: 0]")
@click.option("--threshold", type=float, default=None,
              help="Success probability to clear: the threshold policy's bar; with another policy, questions whose "
                   "chosen LLM does not clear it are abstained (or sent to --fallback). [default: none]")
@click.option("--confidence", type=float, default=0.9,
              help="Posterior probability with which --threshold must be cleared.")
@click.option("--fallback", default=None, metavar="LLM",
              help="Candidate to escalate to when no LLM clears --threshold. [default: abstain]")
@click.option("--budget", type=float, default=None,
              help="Total cost allowed for all questions: cost-aware's lam is chosen as the smallest that fits. "
                   "[default: none]")
@click.option("--n-draws", type=int, default=200, help="Posterior draws per question and LLM.")
@click.option("--seed", type=int, default=0, help="Seed of the posterior draws and of Thompson sampling.")
@click.option("--batch-items", type=int, default=1000, help="Questions per batch (memory: n_draws x batch x LLMs).")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Write the decisions to FILE.csv or FILE.parquet. [default: print only]")
@click.option("--show", type=int, default=20, help="Rows of the decision table to print.")
@_friendly_errors
def route(model_dir, items_file, llms_file, data, policy, level, lam, threshold, confidence, fallback, budget, n_draws,
          seed, batch_items, out, show):
    """Choose an LLM for each question from the model's posterior, with costs.

    Prints the chosen LLM per question with its predicted success probability and credible interval, and the
    expected accuracy and total cost; --out writes the full table.

    \b
    Example:
      bayes-simrmf route --model models/mmlupro-normal --items questions.csv --llms candidates.csv \\
          --policy threshold --threshold 0.7 --confidence 0.9 --out routes.csv
    """
    import numpy as np
    import pandas as pd

    from bayes_simrmf import routing
    from bayes_simrmf.errors import ConfigError
    from bayes_simrmf.saving import load_model

    if out is not None and Path(out).suffix.lower() not in (".csv", ".parquet"):
        raise ConfigError(f"--out {out} must end in .csv or .parquet")
    if budget is not None and policy != "cost-aware":
        raise ConfigError("--budget chooses cost-aware's lam; use it with --policy cost-aware")
    if budget is not None and lam is not None:
        raise ConfigError("--budget chooses lam itself; pass either --budget or --lam, not both")
    if lam is not None and policy not in ("cost-aware", "thompson"):
        raise ConfigError(f"--lam applies to cost-aware and thompson, not {policy}")
    saved = load_model(model_dir)
    model = saved.estimator
    if not hasattr(model, "sample_posterior"):
        raise ConfigError(f"{model_dir} holds a {saved.config['estimator'].get('method')} model; routing needs mf/simrmf")
    items, new_items = _route_items(items_file, model)
    llms_frame = _read_table_file(llms_file, "--llms")
    llm_ids = _id_column(llms_frame, f"--llms {llms_file}", "llm", "needs columns llm and cost")
    dataset = None
    unknown_llms = ~llm_ids.isin(np.asarray(model.llms_, dtype=str))
    if len(new_items) or unknown_llms.any():
        from bayes_simrmf.fold_in import fold_in_new_entities

        new_ids = [f"{len(new_items)} question(s), e.g. {new_items['item'].head(3).tolist()}"] if len(new_items) else []
        if unknown_llms.any():
            new_ids.append(f"{int(unknown_llms.sum())} LLM(s), e.g. "
                           f"{llm_ids[unknown_llms].head(3).tolist()}")
        dataset = _route_dataset(data, saved, " and ".join(new_ids) + (" is" if len(new_ids) == 1 else " are"))
        extra = saved.config.get("extra", {})
        fold_in_new_entities(
            model, dataset, items=new_items if len(new_items) else None,
            llms=_new_llms(llms_frame, model, dataset, llms_file),
            alpha=extra.get("alpha", 0.5), embeddings=extra.get("embeddings"),
            embedding_model=extra.get("embedding_model") or DEFAULT_EMBEDDING_MODEL, log=click.echo,
        )
    candidates = routing.Candidates.from_frame(llms_frame[[c for c in ("llm", "cost") if c in llms_frame.columns]],
                                               model=model, source=f"--llms {llms_file}")
    chosen = routing.make_policy(policy, level=level, lam=lam or 0.0, threshold=threshold, confidence=confidence,
                                 fallback=fallback)
    if budget is not None:
        solved = routing.cost_aware_for_budget(model, items, candidates, budget, n_draws=n_draws, seed=seed,
                                               batch_items=batch_items)
        chosen = solved if threshold is None else routing.make_policy(
            "cost-aware", lam=solved.lam, threshold=threshold, confidence=confidence, fallback=fallback)
        click.echo(f"budget {budget:g}: lam = {solved.lam:.6g}")
    if model.guide == "delta":
        click.echo("note: the model has a delta guide (a point estimate): intervals are degenerate and risk-averse / "
                   "thompson routing equals greedy, except for entities added by fold_in")
    result = routing.route(model, items, candidates, chosen, n_draws=n_draws, level=level, seed=seed,
                           batch_items=batch_items)
    decisions = result.decisions
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        if Path(out).suffix.lower() == ".csv":
            decisions.to_csv(out, index=False)
        else:
            decisions.to_parquet(out, index=False)
    shown = decisions.head(max(show, 0)).copy()
    shown["llm"] = shown["llm"].fillna("(abstain)")
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_colwidth", 60,
                           "display.float_format", "{:.3f}".format):
        click.echo(f"policy {result.policy}, {len(candidates)} candidate LLMs, {len(decisions)} questions")
        if len(shown):
            click.echo(shown.to_string(index=False))
        if len(decisions) > len(shown):
            click.echo(f"... {len(decisions) - len(shown)} more rows" + (f" in {out}" if out else " (--out FILE writes all)"))
    summary = result.summary()
    percent = int(round(100 * level))
    click.echo(
        f"routed {summary['n_routed']} of {summary['n_questions']} questions (abstained {summary['abstain_rate']:.1%}); "
        f"expected accuracy on routed {summary['expected_accuracy']:.3f} "
        f"[{percent}% interval {summary['expected_accuracy_lower']:.3f}, {summary['expected_accuracy_upper']:.3f}]"
    )
    shares = ", ".join(f"{llm} {count}" for llm, count in result.share_by_llm().items())
    click.echo(f"questions per LLM: {shares}")
    click.echo(f"expected total cost {summary['total_cost']:.6g} (mean {summary['mean_cost']:.4g} per question)")
    if out is not None:
        click.echo(f"written to {out}")


from bayes_simrmf.cli_data import data  # noqa: E402  (the `data` command group lives in its own module)

main.add_command(data)


if __name__ == "__main__":  # pragma: no cover
    main()
