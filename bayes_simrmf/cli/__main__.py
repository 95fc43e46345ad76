"""``python -m bayes_simrmf.cli``: the same as the ``bayes-simrmf`` command."""

from bayes_simrmf.cli import main

main()
