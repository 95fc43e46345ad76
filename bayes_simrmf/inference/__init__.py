"""Stochastic variational inference for :func:`bayes_simrmf.model.simrmf_model`.

* ``guide="delta"``: :class:`numpyro.infer.autoguide.AutoDelta`, i.e. MAP, the paper's point estimate;
* ``guide="normal"``: mean-field Gaussian (:class:`AutoNormal`);
* ``guide="lowrank"``: low-rank multivariate normal (:class:`AutoLowRankMultivariateNormal`).

Steps are jit-compiled and run in chunks through ``lax.scan`` (one Python round trip per
chunk, not per step); a progress bar shows the loss; the run stops at ``max_steps`` or once
the relative change of the chunk-mean loss falls below ``tol``. A NaN or infinite loss
stops the run with :class:`~bayes_simrmf.errors.FitError` naming the step.

Noisy losses. The Gaussian guides (``normal``, ``lowrank``) estimate the ELBO from a draw per step,
and minibatches estimate the likelihood from a sample of pairs; either way the step loss is noisy,
a constant-rate run jitters around the optimum, and a plain relative-change test never passes
(the calibration runs of the Gaussian guides ended unconverged at the step cap). Both rules below
therefore apply to every noisy run, not only to minibatches.

Minibatches (``InferenceConfig.batch_size``). For observed sets too large for a full-batch step
(10^7 pairs), each step draws ``batch_size`` of the ``n_pairs`` observed pairs uniformly at random
(with replacement, inside the compiled scan, from a key derived from the seed) and scales their
Bernoulli log-likelihood by ``n_pairs / batch_size``, so the step's loss and gradient are unbiased
estimates of the full-batch ones; priors and similarity potentials are global terms, computed once
per step and never scaled. Two rules change because the loss is noisy (minibatch or Gaussian guide):

* learning rate: the gradient's noise keeps a constant-rate run jittering around the optimum (2-3 %
  above the full-batch loss in experiments/results/bench_minibatch.md), so by default
  (``lr_decay=None``) the rate decays exponentially to 1 % of ``learning_rate`` at ``max_steps``
  (``optax.exponential_decay``; a Gaussian guide in full batch holds the rate for the first half of
  the run, see :func:`learning_rate_schedule`); a full-batch MAP (delta guide) keeps a constant rate
  unless ``lr_decay`` is set.
* stopping: the smoothed loss is the mean over each chunk of steps, with standard error
  ``sd / sqrt(chunk)``. The run stops early only when the change between two chunk means plus
  twice its standard error is below ``tol`` times the loss (so noise cannot stop it by chance);
  usually it runs to ``max_steps``, where the schedule has brought the rate down, and counts as
  converged when the last change is within twice its standard error plus ``tol`` (the smoothed
  loss no longer moves measurably).

:func:`select_device` picks the JAX device (CPU or GPU) a fit runs on.
"""

from __future__ import annotations

from bayes_simrmf.options import DEVICES, GUIDES, LAYOUTS
from bayes_simrmf.inference.config import (
    InferenceConfig,
    MINIBATCH_LR_DECAY,
    SVIResult,
)
from bayes_simrmf.inference.setup import (
    choose_layout,
    initial_values,
)
from bayes_simrmf.inference.device import (
    select_device,
)
from bayes_simrmf.inference.schedule import (
    draw_minibatch,
    learning_rate_schedule,
)
from bayes_simrmf.inference.svi import (
    negative_log_joint,
    run_svi,
)
from bayes_simrmf.inference.guides import (
    make_guide,
)
from bayes_simrmf.inference.posterior import GaussianPosterior

__all__ = [
    "DEVICES",
    "GaussianPosterior",
    "GUIDES",
    "LAYOUTS",
    "InferenceConfig",
    "MINIBATCH_LR_DECAY",
    "SVIResult",
    "choose_layout",
    "draw_minibatch",
    "initial_values",
    "learning_rate_schedule",
    "make_guide",
    "negative_log_joint",
    "run_svi",
    "select_device",
]
