"""`bayes-simrmf route`: send questions to candidate LLMs with a routing policy on a saved model."""

from __future__ import annotations


import click

from bayes_simrmf.options import (
    POLICIES,
)
from bayes_simrmf.cli.common import SEED, _friendly_errors
from bayes_simrmf.cli.entities import (
    OVERWRITE_TABLE_OPTION,
    _check_out,
    _fold_in_unknown,
    _items_file,
    _read_llms_file,
    _write_table,
)


def _check_route_options(*, out: str | None, overwrite: bool, policy: str, lam: float | None,
                         budget: float | None) -> None:
    """Raise ConfigError for an --out that is not .csv/.parquet (or exists without --overwrite) and for --budget /
    --lam with a policy they do not apply to."""
    from bayes_simrmf.errors import ConfigError

    _check_out(out, overwrite)
    if budget is not None and policy != "cost-aware":
        raise ConfigError("--budget chooses cost-aware's lam; use it with --policy cost-aware")
    if budget is not None and lam is not None:
        raise ConfigError("--budget chooses lam itself; pass either --budget or --lam, not both")
    if lam is not None and policy not in ("cost-aware", "thompson"):
        raise ConfigError(f"--lam applies to cost-aware and thompson, not {policy}")


def _print_decisions(result, n_candidates: int, *, show: int, out: str | None) -> None:
    """Print the policy and the first ``show`` rows of the decision table (abstentions named)."""
    import pandas as pd

    decisions = result.decisions
    shown = decisions.head(max(show, 0)).copy()
    shown["llm"] = shown["llm"].fillna("(abstain)")
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_colwidth", 60,
                           "display.float_format", "{:.3f}".format):
        click.echo(f"policy {result.policy}, {n_candidates} candidate LLMs, {len(decisions)} questions")
        if len(shown):
            click.echo(shown.to_string(index=False))
        if len(decisions) > len(shown):
            click.echo(f"... {len(decisions) - len(shown)} more rows" + (f" in {out}" if out else " (--out FILE writes all)"))


def _print_summary(result, *, level: float, out: str | None) -> None:
    """Print the share routed, the expected accuracy with its credible interval, questions per LLM and the cost."""
    summary = result.summary()
    percent = int(round(100 * level))
    click.echo(
        f"routed {summary['n_routed']} of {summary['n_questions']} questions (abstained {summary['abstain_rate']:.1%}); "
        f"expected accuracy on routed {summary['expected_accuracy']:.3f} "
        f"[{percent}% interval {summary['expected_accuracy_lower']:.3f}, {summary['expected_accuracy_upper']:.3f}]; "
        f"realised accuracy, answer noise added: [{summary['realised_accuracy_lower']:.3f}, "
        f"{summary['realised_accuracy_upper']:.3f}]"
    )
    shares = ", ".join(f"{llm} {count}" for llm, count in result.share_by_llm().items())
    click.echo(f"questions per LLM: {shares}")
    click.echo(f"expected total cost {summary['total_cost']:.6g} (mean {summary['mean_cost']:.4g} per question)")
    if out is not None:
        click.echo(f"written to {out}")


@click.command()
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
@click.option("--seed", type=SEED, default=0, help="Seed of the posterior draws and of Thompson sampling.")
@click.option("--batch-items", type=int, default=1000, help="Questions per batch (memory: n_draws x batch x LLMs).")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Write the decisions to FILE.csv or FILE.parquet. [default: print only]")
@OVERWRITE_TABLE_OPTION
@click.option("--show", type=int, default=20, help="Rows of the decision table to print.")
@_friendly_errors
def route(model_dir, items_file, llms_file, data, policy, level, lam, threshold, confidence, fallback, budget, n_draws,
          seed, batch_items, out, overwrite, show):
    """Choose an LLM for each question from the model's posterior, with costs.

    Prints the chosen LLM per question with its predicted success probability and credible interval, and the
    expected accuracy and total cost; --out writes the full table.

    \b
    Example:
      bayes-simrmf route --model models/mmlupro-normal --items questions.csv --llms candidates.csv \\
          --policy threshold --threshold 0.7 --confidence 0.9 --out routes.csv
    """
    from bayes_simrmf import routing
    from bayes_simrmf.errors import ConfigError
    from bayes_simrmf.saving import load_model

    _check_route_options(out=out, overwrite=overwrite, policy=policy, lam=lam, budget=budget)
    saved = load_model(model_dir)
    model = saved.estimator
    if not hasattr(model, "sample_posterior"):
        raise ConfigError(f"{model_dir} holds a {saved.config['estimator'].get('method')} model; routing needs mf/simrmf")
    items, new_items = _items_file(items_file, model)
    llms = _read_llms_file(llms_file)
    _fold_in_unknown(model, saved, data, new_items, llms)
    candidates = routing.Candidates.from_frame(llms.frame[[c for c in ("llm", "cost") if c in llms.frame.columns]],
                                               model=model, source=f"--llms {llms_file}")
    chosen = routing.make_policy(policy, level=level, lam=lam or 0.0, threshold=threshold, confidence=confidence,
                                 fallback=fallback)
    if budget is not None:
        solved = routing.cost_aware_for_budget(model, items, candidates, budget, n_draws=n_draws, seed=seed,
                                               batch_items=batch_items)
        chosen = solved if threshold is None else routing.make_policy(
            "cost-aware", lam=solved.lam, threshold=threshold, confidence=confidence, fallback=fallback)
        click.echo(f"budget {budget:g}: lam = {solved.lam:.6g}")
    if model.guide == "delta" and model.inference != "gibbs":
        click.echo("note: the model has a delta guide (a point estimate): intervals are degenerate and risk-averse / "
                   "thompson routing equals greedy, except for questions and LLMs folded in from texts or metadata")
    result = routing.route(model, items, candidates, chosen, n_draws=n_draws, level=level, seed=seed,
                           batch_items=batch_items)
    _write_table(result.decisions, out, overwrite)
    _print_decisions(result, len(candidates), show=show, out=out)
    _print_summary(result, level=level, out=out)
