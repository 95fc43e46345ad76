"""`bayes-simrmf tune`: choose hyper-parameters on validation pairs carved from the training pairs."""

from __future__ import annotations

import json
import click

from bayes_simrmf.options import (
    FACTOR_METHODS,
)
from bayes_simrmf.cli.common import (
    DATA_OPTIONS,
    SIDE_OPTIONS,
    SPLIT_OPTIONS,
    _friendly_errors,
    _load_data,
    _say,
    _side_information,
)


@click.command()
@DATA_OPTIONS
@click.option("--method", type=click.Choice(FACTOR_METHODS), default="mf", help="Model to tune.")
@SPLIT_OPTIONS
@click.option("--share", type=float, default=0.1, help="Share of training pairs (or LLMs / items) held out for validation.")
@SIDE_OPTIONS
@click.option("--paper", is_flag=True,
              help="Tune SimRMF as the paper writes it (see fit --paper): d and lambda_reg, then lambda_X and lambda_M "
                   "(kappa grids) on held-out questions and LLMs.")
@click.option("--max-steps", type=click.IntRange(min=1), default=None,
              help="SVI step cap of every candidate's fit (default: the estimator's own); a lower cap makes a quick, "
                   "rougher tuning.")
@click.option("--try-asymptotes", is_flag=True,
              help="After the other stages, choose --asymptotes (a guessing floor and ceiling per question group) on "
                   "or off on the validation pairs.")
@click.option("--out", type=click.Path(dir_okay=False), default="hyper.json", help="Where to write the chosen values.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")
@_friendly_errors
def tune(data, unknown_entities, method, T, n_known_llms, n_known_items, seed, min_answer_share, new_llms, share, alpha,
         embeddings,
         embedding_model, similarity_energy, paper, max_steps, try_asymptotes, out, overwrite):
    """Choose hyper-parameters on validation pairs carved from the training pairs (never test pairs).

    Stages, each with its winner fixed for the next: d and lambda_reg, then the LLM biases' scale, then the
    questions' (random training pairs held out); for simrmf/oracle then the fold-in ridge of new questions (whole
    training questions held out) and of new LLMs (whole LLMs held out). With --paper: d and lambda_reg, then the
    question-similarity weight (questions held out) and the LLM-similarity weight (LLMs held out). With
    --try-asymptotes, last, the guessing floor and ceiling on or off (training pairs held out).
    A value chosen at a grid's edge is extended geometrically until interior or at a documented cap (each stage's
    "edges" in --out says which). Writes the chosen values and every candidate's validation scores to --out, for
    `fit --hyper`.

    \b
    Example:
      bayes-simrmf tune --data ../shared/data/openllm-v2-mmlupro-math --method simrmf --T 300 --out hyper.json
      bayes-simrmf fit --data ../shared/data/openllm-v2-mmlupro-math --method simrmf --T 300 --hyper hyper.json
    """
    from bayes_simrmf.errors import ConfigError
    from bayes_simrmf.outputs import check_file_target, write_file

    # Option errors first, before the heavy imports (JAX and the estimators take seconds).
    if paper and method not in ("simrmf", "oracle"):
        raise ConfigError(f"--paper applies to --method simrmf or oracle, not {method}")
    check_file_target(out, overwrite)
    from bayes_simrmf.predict import PAPER_FORM, make_estimator
    from bayes_simrmf.splits import Protocol
    from bayes_simrmf.evaluate.tuning import ASYMPTOTE_STAGE, DEFAULT_STAGES, PAPER_STAGES, staged_search

    dataset = _load_data(data, unknown_entities, seed)
    split = Protocol(n_known_llms=n_known_llms, n_known_items=n_known_items, T=T, seed=seed,
                     min_answer_share=min_answer_share, new_llms=new_llms).split(dataset, log=_say)
    train = split.pairs["train"]
    fit_kwargs = None
    if method in ("simrmf", "oracle"):
        side = _side_information(method, dataset, split, alpha=alpha, embeddings=embeddings,
                                 embedding_model=embedding_model, paper=paper, energy=similarity_energy)
        fit_kwargs = {"side": side, "llms": split.llms, "items": split.items}
    preset = {key: value for key, value in PAPER_FORM.items() if key != "method"} if paper else {}
    capped = {} if max_steps is None else {"max_steps": max_steps}

    def build(method=method, **options):
        return make_estimator(method, seed=seed, progress=False, **{**preset, **capped, **options})

    stages = [*(PAPER_STAGES if paper else DEFAULT_STAGES[method]), *([ASYMPTOTE_STAGE] if try_asymptotes else [])]
    chosen, results = staged_search(
        build, stages, split.llms[train.llm], split.items[train.item], train.correct,
        share=share, seed=seed, fit_kwargs=fit_kwargs, log=_say,
    )
    payload = {
        "method": method,
        "paper_form": bool(paper),
        "similarity_energy": similarity_energy,
        "max_steps": max_steps,
        "chosen": {**preset, **chosen},
        "data": dataset.name,
        "data_fingerprint": dataset.fingerprint(),
        "protocol": {"T": T, "n_known_llms": split.n_known_llms, "n_known_items": split.n_known_items, "seed": seed,
                     "min_answer_share": min_answer_share, "new_llms": new_llms},
        "stages": [
            {"holdout": result.holdout, "metric": result.metric, "share": result.share, "best": result.best,
             "edges": result.edges, "table": result.table.to_dict(orient="records")}
            for result in results
        ],
    }
    text = json.dumps(payload, indent=2, default=float)
    write_file(out, lambda path: path.write_text(text), overwrite=overwrite)
    click.echo(f"chosen {chosen}; written to {out}")


