"""`bayes-simrmf evaluate`: re-score a saved model on its saved split."""

from __future__ import annotations

import json

import click

from bayes_simrmf.options import (
    UNKNOWN_ENTITY_POLICIES,
)
from bayes_simrmf.cli.common import _friendly_errors, _load_data, _warn_empty_test_splits


@click.command()
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
    for note in saved.notes:
        click.echo(f"warning: {note}", err=True)
    if saved.split is None:
        raise ModelFormatError(f"{model_dir} holds no split/ folder, so there are no test pairs to score")
    _warn_empty_test_splits(saved.split, saved.split.protocol.n_test_pairs)
    method = saved.config["estimator"]["method"]
    results = {method: evaluate_on_split(saved.estimator, saved.split)}
    if as_json:
        click.echo(json.dumps(results, indent=2, default=float))
    else:
        click.echo(format_metrics(results))


