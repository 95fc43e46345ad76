"""Command-line interface: ``bayes-simrmf fit``, ``tune``, ``evaluate``, ``predict``, ``next-questions``, ``route``,
``data pull``.

Commands are verbs, every option shows its default in ``--help``, errors are one line a
person can act on. Exit codes: 0 success, 1 a bayes-simrmf error (bad data, bad option
value, failed fit), 2 a usage error (unknown option, missing argument), 130 / 143 stopped by Ctrl-C / SIGTERM.

One file per command (``fit``, ``tune``, ``evaluate``, ``predict`` with ``next-questions``, ``route``, ``data``);
what they share is in ``common`` (error handling, data loading, option groups) and ``entities`` (id tables, folding
in). Heavy modules (JAX, the estimators) are imported inside the commands, so ``--help`` stays fast.
"""

from __future__ import annotations

from bayes_simrmf.runtime import configure_process

# One OpenBLAS thread and two malloc arenas unless the user chose (see bayes_simrmf.runtime): set before NumPy
# loads (the commands import it lazily) and before JAX starts its threads.
configure_process()

import click  # noqa: E402

from bayes_simrmf.cli.data import data  # noqa: E402
from bayes_simrmf.cli.evaluate import evaluate  # noqa: E402
from bayes_simrmf.cli.fit import fit  # noqa: E402
from bayes_simrmf.cli.predict import next_questions, predict  # noqa: E402
from bayes_simrmf.cli.route import route  # noqa: E402
from bayes_simrmf.cli.tune import tune  # noqa: E402

__all__ = ["main"]


class _Main(click.Group):
    """The command group; run as a program (``bayes-simrmf ...``, ``python -m bayes_simrmf.cli``) it first installs
    the handlers that stop on Ctrl-C / SIGTERM in one line, removing what is being written
    (:mod:`bayes_simrmf.interrupts`). Tests that call ``main.main(...)`` through click's runner keep Python's
    handlers."""

    def __call__(self, *args, **kwargs):
        from bayes_simrmf import interrupts

        interrupts.install()
        return super().__call__(*args, **kwargs)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(package_name="bayes-simrmf")
def main() -> None:
    """Predict whether an LLM solves a question, for LLMs and questions never evaluated."""


for _command in (fit, tune, evaluate, predict, next_questions, route, data):
    main.add_command(_command)
