"""Command-line interface: ``bayes-simrmf fit``, ``bayes-simrmf evaluate``.

Commands are verbs, every option shows its default in ``--help``, errors are one line a
person can act on. Exit codes: 0 success, 1 a bayes-simrmf error (bad data, bad option
value, failed fit), 2 a usage error (unknown option, missing argument).
"""

from __future__ import annotations

import functools
import json
import shlex
import sys
from pathlib import Path

import click

from bayes_simrmf.errors import BayesSimRMFError

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


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(package_name="bayes-simrmf")
def main() -> None:
    """Predict whether an LLM solves a question, for LLMs and questions never evaluated."""


@main.command()
@click.option("--data", "data", default=None, metavar="DIR|synthetic",
              help="Dataset folder (responses, items, llms as parquet/CSV) or 'synthetic'. [default: synthetic demo]")
@click.option("--unknown-entities", type=click.Choice(["error", "drop", "add"]), default="error",
              help="Responses whose LLM/item is missing from llms/items: fail, drop them, or add the id without metadata.")
@click.option("--method", type=click.Choice(["mf", "meanscore"]), default="mf", help="Model to fit.")
@click.option("--T", "T", type=int, default=300, help="Training pairs per known LLM and per known item.")
@click.option("--guide", type=click.Choice(["delta", "normal", "lowrank"]), default="delta",
              help="Variational family: delta = MAP (the paper's point estimate).")
@click.option("--dim", type=int, default=8, help="Latent dimension d.")
@click.option("--lambda-reg", type=float, default=1.0, help="L2 weight (prior sd of factors = 1/sqrt(2*lambda_reg)).")
@click.option("--n-known-llms", type=int, default=None, help="Known LLMs. [default: 1000, or 2/3 of the LLMs if fewer than 1500]")
@click.option("--n-known-items", type=int, default=None, help="Known items. [default: 1000, or 2/3 of the items if fewer than 1500]")
@click.option("--n-test-pairs", type=int, default=1_000_000, help="At most this many pairs per test split.")
@click.option("--seed", type=int, default=0, help="Seed of the split and of the fit.")
@click.option("--learning-rate", type=float, default=0.05, help="Adam step size.")
@click.option("--max-steps", type=int, default=3000, help="Upper bound on SVI steps.")
@click.option("--tol", type=float, default=1e-5, help="Stop when the relative loss change per 50 steps is below this.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Model folder to write. [default: models/<data>-<method>-T<T>-seed<seed>]")
@click.option("--overwrite", is_flag=True, help="Replace an existing model folder.")
@click.option("--baseline/--no-baseline", default=True, help="Also score MeanScore on the same split for comparison.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_friendly_errors
def fit(data, unknown_entities, method, T, guide, dim, lambda_reg, n_known_llms, n_known_items, n_test_pairs, seed,
        learning_rate, max_steps, tol, out, overwrite, baseline, quiet):
    """Fit a model on a split of the data, evaluate it on splits A-D and save it.

    \b
    Example:
      bayes-simrmf fit --data ../shared/data/openllm-v2-mmlupro-math \\
          --T 300 --guide delta --method mf --dim 8 --seed 0 --out models/mmlupro-mf
    """
    from bayes_simrmf.errors import ConfigError
    from bayes_simrmf.estimators import MeanScore, make_estimator
    from bayes_simrmf.evaluate import evaluate_on_split, fit_on_split, format_metrics
    from bayes_simrmf.saving import save_model
    from bayes_simrmf.splits import Protocol

    if method == "meanscore" and guide != "delta":
        raise ConfigError("--guide applies to mf only; MeanScore has no posterior")
    if out is not None and Path(out).exists() and not overwrite:
        raise ConfigError(f"{out} already exists; choose another --out or pass --overwrite")
    dataset = _load_data(data, unknown_entities, seed)
    click.echo(dataset.summary())
    protocol = Protocol(n_known_llms=n_known_llms, n_known_items=n_known_items, T=T, n_test_pairs=n_test_pairs, seed=seed)
    split = protocol.split(dataset, log=click.echo)
    click.echo(split.summary())
    options = {} if method == "meanscore" else dict(
        dim=dim, lambda_reg=lambda_reg, guide=guide, learning_rate=learning_rate, max_steps=max_steps, tol=tol,
        seed=seed, progress=not quiet,
    )
    estimator = make_estimator(method, **options)
    fit_on_split(estimator, split)
    if method != "meanscore":
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
    name = out or f"models/{Path(dataset.name).name}-{method}-T{T}-seed{seed}"
    if Path(name).exists() and not overwrite:
        raise ConfigError(f"{name} already exists; choose another --out or pass --overwrite")
    folder = save_model(
        name,
        estimator,
        data_fingerprint=dataset.fingerprint(),
        split=split,
        metrics=results[method],
        extra_config={"data": dataset.name, "unknown_entities": unknown_entities},
        command=_invoked_command(),
        overwrite=overwrite,
    )
    click.echo(f"saved to {folder}")


@main.command()
@click.argument("model_dir", type=click.Path(file_okay=False))
@click.option("--data", "data", default=None, metavar="DIR",
              help="Check that the model was fitted on this dataset (fingerprint). The saved split holds the test pairs.")
@click.option("--unknown-entities", type=click.Choice(["error", "drop", "add"]), default="error",
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


if __name__ == "__main__":  # pragma: no cover
    main()
