"""What the commands share: error handling, data loading, `tune` results, and the option groups."""

from __future__ import annotations

import functools
import json
import re
import shlex
import sys
from pathlib import Path

import click

from bayes_simrmf.errors import BayesSimRMFError
from bayes_simrmf.options import (
    DEFAULT_EMBEDDING_MODEL,
    NEW_LLM_CHOICES,
    UNKNOWN_ENTITY_POLICIES,
)


SYNTHETIC = "synthetic"
#: What --seed takes: what every random generator of the package accepts (JAX keys take 32-bit seeds here).
SEED = click.IntRange(0, 2**32 - 1)
EXIT_ERROR = 1


def _cli_wording(message: str) -> str:
    """``message`` as a shell user reads it: a library hint ``name='value'`` whose ``name`` is an option of the
    running command becomes ``--the-option value`` (unquoted ``name=value`` is left: it states a value, e.g. T=300)."""
    context = click.get_current_context(silent=True)
    if context is None:
        return message
    for parameter in context.command.params:
        long_names = [opt for opt in parameter.opts if opt.startswith("--")]
        if isinstance(parameter, click.Option) and long_names and parameter.name:
            pattern = rf"\b{re.escape(parameter.name)}=(['\"])([\w.-]+)\1"
            message = re.sub(pattern, lambda match: f"{long_names[0]} {match.group(2)}", message)
            if "_" in parameter.name:  # a Python name (n_known_llms) never reads as prose: the option it is
                message = re.sub(rf"(?<![\w-]){re.escape(parameter.name)}\b", long_names[0], message)
            # "k must be ...": a message about one parameter names it first
            message = re.sub(rf"^{re.escape(parameter.name)} must be\b", f"{long_names[0]} must be", message)
    return message


def _say(line: str) -> None:
    """Print a library log line in CLI wording (see :func:`_cli_wording`); the ``log`` the commands pass."""
    click.echo(_cli_wording(line))


def _friendly_errors(command):
    """Turn package errors into one line on stderr (in CLI wording) and exit code 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except BayesSimRMFError as error:
            click.echo(f"error: {_cli_wording(str(error))}", err=True)
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


def _warn_empty_test_splits(split, n_test_pairs: int) -> None:
    """One warning line per test split without pairs (its metrics are then NaN), saying why where it can."""
    from bayes_simrmf.evaluate import TEST_SPLITS

    empty = [name for name in TEST_SPLITS if len(split.pairs[name]) == 0]
    if not empty:
        return
    why = "--n-test-pairs 0 asks for none" if n_test_pairs == 0 else "the data hold no pairs of that kind"
    click.echo(f"warning: test split{'s' if len(empty) > 1 else ''} {', '.join(empty)} "
               f"{'have' if len(empty) > 1 else 'has'} no pairs ({why}): {'their' if len(empty) > 1 else 'its'} "
               "metrics are NaN", err=True)


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
    return load_dataset(data, unknown_entities=unknown_entities, log=_say)


def _side_information(method: str, dataset, split, *, alpha: float, embeddings: str | None, embedding_model: str,
                      paper: bool, energy: float | None = None):
    """Side information for the split's LLMs and items: the ideal similarity for oracle, the similarity from
    question texts and LLM metadata for simrmf (the paper's form with ``paper``), each √S truncated to the
    leading components holding ``energy`` of its trace (None: all); None for other methods."""
    if method not in ("simrmf", "oracle"):
        return None
    from bayes_simrmf.predict import PAPER_SIDE
    from bayes_simrmf.similarity import build_side_information

    side = build_side_information(
        dataset, split.llms, split.items, kind="oracle" if method == "oracle" else "similarity", alpha=alpha,
        embeddings=embeddings, embedding_model=embedding_model, energy=energy, log=_say, **(PAPER_SIDE if paper else {}),
    )
    click.echo(_rank_line(side.report, energy))
    return side


def _rank_line(report: dict, energy: float | None) -> str:
    """One line: the components of each √S factor kept, and the share of its trace they hold."""
    parts = []
    for label, key in (("question", "items"), ("LLM", "llms_sqrt")):
        kept = report.get(key)
        if hasattr(kept, "n_components_kept"):
            parts.append(f"{label} factor keeps {kept.n_components_kept} of {kept.n_components_total} components "
                         f"({kept.trace_share_kept:.1%} of the trace of its √S)")
    setting = "all components" if energy is None else f"{energy:g} of the trace"
    return f"similarity energy ({setting}): " + ("; ".join(parts) if parts else "no factor report")


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
    click.option("--seed", type=SEED, default=0, help="Seed of the split and of every fit (and of tune's validation carve)."),
    click.option("--min-answer-share", type=click.FloatRange(0, 1, min_open=True), default=0.25, show_default=True,
                 help="Only an LLM that answered at least this share of the items (and an item answered by at least "
                      "this share of the LLMs) can be known; the others are always new."),
    click.option("--new-llms", type=click.Choice(NEW_LLM_CHOICES), default="random", show_default=True,
                 help="Which LLMs are new (splits C, D): a random draw (the paper), the newest by submission date "
                      "(metadata submission_date, else upload_date), or the strongest by accuracy over all answers."),
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
    click.option("--similarity-energy", type=click.FloatRange(0.0, 1.0, min_open=True), default=None,
                 help="Keep the leading components of each square-root similarity holding this share of its trace "
                      "(e.g. 0.9): fewer columns, faster steps (see experiments/results/bench_energy.md). "
                      "[default: all components]"),
)


