"""`bayes-simrmf fit`: fit a model on a split of the data, evaluate it on splits A–D and save it."""

from __future__ import annotations

import time
from pathlib import Path

import click

from bayes_simrmf.options import DEVICES, METHODS
from bayes_simrmf.params import CountingParams, SimRMFParams, cli_params, click_options
from bayes_simrmf.cli.common import (
    DATA_OPTIONS,
    SIDE_OPTIONS,
    SPLIT_OPTIONS,
    SYNTHETIC,
    _friendly_errors,
    _invoked_command,
    _load_data,
    _read_hyper,
    _say,
    _side_information,
    _warn_empty_test_splits,
)


def _check_fit_options(*, method: str, guide: str, paper: bool, out: str | None, overwrite: bool) -> None:
    """Raise ConfigError, before any data is loaded, for a posterior guide or --paper with a method without them,
    and for an existing --out folder without --overwrite."""
    from bayes_simrmf.errors import ConfigError

    if method in ("meanscore", "counting") and guide != "delta":
        raise ConfigError(f"--guide applies to mf, simrmf and oracle; --method {method} has no posterior")
    if paper and method not in (None, "simrmf", "oracle"):
        raise ConfigError(f"--paper applies to --method simrmf or oracle, not {method}")
    if out is not None:
        from bayes_simrmf.outputs import check_model_target

        check_model_target(out, overwrite)


def _item_groups(dataset, item_groups: str | None, method: str):
    """The --item-groups column of the items table as str group labels indexed by item id (missing ones
    "(none)"), or None without the option; notes that counting without groups counts each LLM's overall
    accuracy."""
    from bayes_simrmf.errors import ConfigError

    groups = None
    if item_groups is not None:
        if item_groups not in dataset.items.columns:
            raise ConfigError(
                f"--item-groups {item_groups!r} is not a column of the items table; it has {list(dataset.items.columns)}"
            )
        groups = dataset.items.set_index("item")[item_groups].fillna("(none)").astype(str)
    if method == "counting" and groups is None:
        click.echo("note: --method counting without --item-groups puts every item in one group (each LLM's overall accuracy)")
    return groups


def _default_method(dataset, paper: bool) -> str:
    """simrmf where the data carry question texts and LLM metadata (its side information), else mf; said in one
    line either way."""
    from bayes_simrmf.errors import ConfigError
    from bayes_simrmf.similarity.llm_features import LLM_COLUMNS_NEEDED

    texts = "text" in dataset.items.columns and dataset.items["text"].notna().any()
    metadata = all(column in dataset.llms.columns for column in LLM_COLUMNS_NEEDED)
    if texts and metadata:
        click.echo("method: simrmf (the data carry question texts and LLM metadata); --method mf fits without them")
        return "simrmf"
    missing = " and ".join(part for part, present in (("question texts", texts), ("LLM metadata", metadata))
                           if not present)
    if paper:
        raise ConfigError(f"--paper needs --method simrmf, and the data have no {missing} for it")
    click.echo(f"method: mf (the data have no {missing}, which simrmf needs)")
    return "mf"


def _demo_new_entities(estimator, split) -> None:
    """On the demo data: a new LLM's and a new question's predicted accuracy with a 90% interval, beside the
    accuracy they actually have on their test pairs."""
    import numpy as np

    for kind, part, label in (("llm", "C", "a new LLM"), ("item", "B", "a new question")):
        pairs = split.pairs[part]
        if len(pairs) == 0:
            continue
        codes = pairs.llm if kind == "llm" else pairs.item
        mine = codes == codes[0]
        llms, items = split.llms[pairs.llm[mine]], split.items[pairs.item[mine]]
        interval = estimator.predict_group_interval(llms, items, by=kind, n_draws=400, level=0.9, unknown="population")
        row = interval.iloc[0]
        other = "questions" if kind == "llm" else "known LLMs"
        click.echo(f"{label}, {interval.index[0]} (no answers in the fit): predicted accuracy on its {int(row.n_pairs)} "
                   f"test pairs with {other} {row['mean']:.3f}, 90% interval [{row.lower:.3f}, {row.upper:.3f}]; "
                   f"actual {np.mean(pairs.correct[mine]):.3f}")


def _report_fit(estimator, method: str, guide: str) -> None:
    """Print the fit's time, steps, convergence, final loss and layout (a sampler: draws and R-hat)."""
    if int(getattr(estimator, "dim", 1)) == 0:
        click.echo("note: --dim 0 fits no latent factors: each LLM's ability and each question's difficulty only "
                   "(biases), so every LLM ranks the questions alike")
    if getattr(estimator, "inference", "svi") == "gibbs":
        result, diagnostics = estimator.gibbs_result_, estimator.sampler_diagnostics_
        posterior = estimator.posterior_
        click.echo(
            f"sampled {method} (gibbs) in {estimator.fit_seconds_:.1f} s: {posterior.chains} chains x "
            f"{posterior.draws_per_chain} kept draws ({result.sweeps} sweeps each), draws {posterior.nbytes / 2**20:.1f} "
            f"MiB; max R-hat {diagnostics['max_rhat']:.4f} and min bulk ESS {diagnostics['min_ess_bulk']:.0f} over "
            f"{diagnostics['n_summaries']} prediction summaries"
            + ("" if estimator.converged_ else " (NOT converged: raise --warmup / --samples)")
        )
        if not estimator.converged_:
            click.echo("R-hat above 1.01: " + ", ".join(
                f"{part['n_above']} of {part['n']} {kind} summaries (max {part['max_rhat']:.3f})"
                for kind, part in diagnostics["by_kind"].items()))
        return
    steps = len(estimator.losses_)
    learned = getattr(estimator, "prior", None) == "learned"
    click.echo(
        f"fitted {method} ({guide}{', learned priors' if learned else ''}) in {estimator.fit_seconds_:.1f} s: "
        f"{steps} steps, {'converged' if estimator.converged_ else 'NOT converged (raise --max-steps)'}, "
        f"final loss {estimator.losses_[-1]:.6g}, layout {estimator.layout_}"
        + (f"; {estimator.posterior_.n_draws} posterior draws kept, {estimator.posterior_.nbytes / 2**20:.1f} MiB"
           if learned else "")
    )


def _check_divergence(estimator, learning_rate: float, save_diverged: bool) -> dict:
    """FitError if the fit's loss diverged (see inference.stopping.divergence), unless --save-diverged, which
    only warns; the entry for the saved config either way (empty when it did not diverge)."""
    from bayes_simrmf.errors import FitError
    from bayes_simrmf.inference.stopping import divergence

    problem = divergence(estimator.losses_)
    if problem is None:
        return {}
    if not save_diverged:
        raise FitError(f"the fit diverged: {problem}; nothing was saved. Lower --learning-rate (now {learning_rate:g}), "
                       "or pass --save-diverged to evaluate and save it anyway")
    click.echo(f"warning: the fit diverged: {problem}; saving it because of --save-diverged", err=True)
    return {"diverged": problem}


def _evaluate(estimator, split, method: str, baseline: bool) -> dict:
    """Metrics on splits A-D of the fitted estimator, and of MeanScore fitted on the same split with --baseline."""
    from bayes_simrmf.predict import MeanScore
    from bayes_simrmf.evaluate import evaluate_on_split, fit_on_split

    results = {method: evaluate_on_split(estimator, split)}
    if baseline and method != "meanscore":
        results["meanscore"] = evaluate_on_split(fit_on_split(MeanScore(), split), split)
    return results


def _check_room(out: str | None, split, dim: int) -> None:
    """ConfigError, before the fit, unless the model folder can be written and its file system has room for it: about
    8 bytes per pair of the split and, per LLM and question, its Gaussian ((d + 1)² float64) and its ids."""
    from bayes_simrmf.outputs import check_writable

    n_pairs = sum(len(pairs) for pairs in split.pairs.values())
    n_entities = len(split.llms) + len(split.items)
    needed = 8 * n_pairs + n_entities * (8 * (dim + 1) ** 2 + 16 * (dim + 1) + 400)
    check_writable(Path(out) if out else Path("models") / "new-model", "--out", needed_bytes=needed)


def _model_folder(out: str | None, data_name: str, method: str, T: int, seed: int, overwrite: bool) -> str:
    """--out, or else a folder of its own under models/ named after the data, method, T, seed and the time (so
    re-running the same command never collides); ConfigError if it exists without --overwrite, or is not a model
    folder (see bayes_simrmf.outputs.check_model_target)."""
    from bayes_simrmf.outputs import check_model_target

    name = out or f"models/{Path(data_name).name}-{method}-T{T}-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    check_model_target(name, overwrite)
    return name


@click.command()
@DATA_OPTIONS
@click.option("--method", type=click.Choice(METHODS), default=None,
              help="[default: simrmf where the data carry question texts and LLM metadata, else mf] "
                   "mf: factorisation; simrmf: plus similarity from question texts and LLM metadata; "
                   "oracle: plus the ideal similarity from the true scores (an upper bound, uses test data); "
                   "counting: each LLM's training accuracy per --item-groups group, shrunk to the group mean.")
@click_options(CountingParams)
@SPLIT_OPTIONS
@click_options(SimRMFParams)
@click.option("--n-test-pairs", type=int, default=1_000_000, help="At most this many pairs per test split.")
@click.option("--device", type=click.Choice(DEVICES), default="auto",
              help="Where JAX runs the fit: auto = JAX's default backend (a GPU when a CUDA build of JAX sees one).")
@click.option("--paper", is_flag=True,
              help="SimRMF as the paper writes it (with --method simrmf/oracle): the joint Gram potential on the factors "
                   "alone, uncentred similarity at scale 1 (overrides --similarity-mode); intercept and biases stay.")
@click.option("--item-groups", default=None, metavar="COLUMN",
              help="Column of the items table (e.g. benchmark) whose groups get their own mean question difficulty. "
                   "[default: none]")
@SIDE_OPTIONS
@click.option("--hyper", type=click.Path(dir_okay=False, exists=True), default=None,
              help="JSON written by `bayes-simrmf tune`; its values replace the defaults of the options above. [default: none]")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Model folder to write. [default: models/<data>-<method>-T<T>-seed<seed>-<date-time>]")
@click.option("--overwrite", is_flag=True,
              help="Replace an existing model folder written by bayes-simrmf (any other folder is refused).")
@click.option("--save-diverged", is_flag=True,
              help="Evaluate and save a fit whose loss diverged (ended far above where it started); by default it "
                   "is refused.")
@click.option("--baseline/--no-baseline", default=True, help="Also score MeanScore on the same split for comparison.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_friendly_errors
def fit(data, unknown_entities, method, T, n_known_llms, n_known_items, n_test_pairs, seed, min_answer_share, new_llms,
        device, paper,
        alpha,
        item_groups, embeddings, embedding_model, similarity_energy, hyper, out, overwrite, save_diverged, baseline, quiet,
        **values):
    """Fit a model on a split of the data, evaluate it on splits A-D and save it.

    \b
    Example:
      bayes-simrmf fit --data ../shared/data/openllm-v2-mmlupro-math \\
          --T 300 --guide delta --method mf --dim 8 --seed 0 --out models/mmlupro-mf
    """
    guide = values["guide"]
    # Option errors first, before the heavy imports (JAX and the estimators take seconds).
    _check_fit_options(method=method, guide=guide, paper=paper, out=out, overwrite=overwrite)
    from bayes_simrmf.data import responses_digest as data_files_digest
    from bayes_simrmf.predict import PAPER_FORM, GroupAccuracy, SimRMF, make_estimator
    from bayes_simrmf.evaluate import fit_on_split, format_metrics
    from bayes_simrmf.saving import save_model
    from bayes_simrmf.similarity import report_summary
    from bayes_simrmf.splits import Protocol
    factor = {**cli_params(SimRMFParams, values), "seed": seed, "progress": not quiet}
    if paper:
        factor.update({key: value for key, value in PAPER_FORM.items() if key != "method"})
    # Every option checked before any data is loaded (the factor model's also where --method is not yet known).
    GroupAccuracy(**cli_params(CountingParams, values))._validate()
    if method not in ("meanscore", "counting"):
        SimRMF(**factor).check_params()
    import jax

    from bayes_simrmf.inference import select_device

    # Checked before loading data, so a missing GPU fails in a second, not after the split.
    fit_device = select_device(device)
    dataset = _load_data(data, unknown_entities, seed)
    # The bytes of the responses file fitted on: predict, next-questions and route then trust a folder with the
    # same file without reading its responses (they need only the side tables).
    responses_digest = None if data in (None, SYNTHETIC) else data_files_digest(data)
    click.echo(dataset.summary())
    method = method or _default_method(dataset, paper)
    baseline_method = method in ("meanscore", "counting")
    protocol = Protocol(n_known_llms=n_known_llms, n_known_items=n_known_items, T=T, n_test_pairs=n_test_pairs, seed=seed,
                        min_answer_share=min_answer_share, new_llms=new_llms)
    split = protocol.split(dataset, log=_say)
    click.echo(split.summary())
    _warn_empty_test_splits(split, n_test_pairs)
    _check_room(out, split, factor.get("dim", 0))
    options = (cli_params(CountingParams, values) if method == "counting" else {} if baseline_method else
               {**factor, **(_read_hyper(hyper, method, paper) if hyper is not None else {})})
    side = _side_information(method, dataset, split, alpha=alpha, embeddings=embeddings,
                             embedding_model=embedding_model, paper=paper, energy=similarity_energy)
    groups = _item_groups(dataset, item_groups, method)
    estimator = make_estimator(method, **options)
    with jax.default_device(fit_device):
        fit_on_split(estimator, split, side=side, item_groups=groups)
    diverged = {}
    if not baseline_method:
        _report_fit(estimator, method, guide)
        diverged = _check_divergence(estimator, estimator.learning_rate, save_diverged)
    results = _evaluate(estimator, split, method, baseline)
    click.echo(format_metrics(results))
    if data is None and not baseline_method:
        _demo_new_entities(estimator, split)
    folder = save_model(
        _model_folder(out, dataset.name, method, T, seed, overwrite),
        estimator,
        data_fingerprint=dataset.fingerprint(),
        split=split,
        metrics=results[method],
        extra_config={"data": dataset.name, "data_source": dataset.source, "unknown_entities": unknown_entities,
                      "metadata_fingerprints": dataset.metadata_fingerprints(), "responses_digest": responses_digest,
                      "alpha": alpha,
                      "paper_form": bool(paper),
                      "embedding_model": embedding_model, "embeddings": embeddings, **diverged,
                      "similarity_energy": similarity_energy,
                      **({"similarity_report": report_summary(side.report)} if side is not None else {})},
        command=_invoked_command(),
        overwrite=overwrite,
    )
    click.echo(f"saved to {folder}")
