"""The field's own IRT tools as peers for a new LLM's benchmark scores (issue 25): py-irt fits the item parameters
on the known LLMs' answers, catsim estimates a new LLM's ability from its answers and picks the next question.

- :func:`fit_py_irt` runs py-irt (2PL, or its "4PL": a ceiling per question, ``λ σ(a (θ − b))``) in its own
  virtual environment (py-irt 0.7 needs pandas < 3; :func:`py_irt_python` makes it on first use) through
  ``py_irt_fit.py``.
- :class:`IrtPeer` scores a new LLM as an evaluation team using these tools would: its ability is catsim's
  maximum-likelihood estimate (``NumericalSearchEstimator``, Dodd's step while the answers are all right or all
  wrong; before any answer, the known LLMs' mean ability), the questions are drawn at random or chosen by
  catsim's ``MaxInfoSelector`` one at a time, and a benchmark's accuracy is the answered questions' answers plus
  the predicted probabilities of the rest. Its 90% interval takes θ̂ ± 1.645 SEE (catsim's test information;
  before any answer, the known LLMs' 5% and 95% ability quantiles) through the benchmark's mean probability, plus
  the binomial spread of the unanswered questions' answers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
#: Where the py-irt environment lives (override with this environment variable).
VENV_ENV_VAR = "BAYES_SIMRMF_PY_IRT_VENV"
PY_IRT = "py-irt==0.7.1"
TORCH = "torch==2.13.0"  # the CPU build this machine holds on disk (see README, set-up)
Z90 = 1.6448536269514722


def py_irt_python() -> Path:
    """The Python of the py-irt environment, made (``python -m venv`` and ``pip install py-irt``) if absent."""
    venv = Path(os.environ.get(VENV_ENV_VAR, Path.home() / ".cache" / "bayes-simrmf" / "py-irt-venv"))
    python = venv / "bin" / "python"
    if not python.is_file() or subprocess.run([python, "-c", "import py_irt"], capture_output=True).returncode:
        print(f"making the py-irt environment in {venv} ({PY_IRT}, {TORCH})", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", TORCH, PY_IRT], check=True)
    return python


@dataclass(frozen=True)
class IrtFit:
    """py-irt's parameters: each known LLM's ability, each question's (discrimination, difficulty, ceiling)."""

    model: str
    ability: pd.Series
    items: pd.DataFrame  # index: item id; columns a, b, d
    seconds: float


def fit_py_irt(responses: pd.DataFrame, model: str = "2pl", *, epochs: int = 2000, lr: float = 0.1,
               seed: int = 0) -> IrtFit:
    """py-irt's fit of ``model`` to ``responses`` (columns llm, item, correct)."""
    llm_codes, llm_ids = pd.factorize(responses.llm.astype(str), sort=True)
    item_codes, item_ids = pd.factorize(responses.item.astype(str), sort=True)
    with tempfile.TemporaryDirectory(prefix="py-irt-") as folder:
        answers, out = Path(folder) / "answers.npz", Path(folder) / "fit.json"
        np.savez(answers, subject=llm_codes, item=item_codes, correct=responses.correct.to_numpy(np.int8),
                 subject_ids=np.asarray(llm_ids, dtype=str), item_ids=np.asarray(item_ids, dtype=str))
        done = subprocess.run([py_irt_python(), HERE / "py_irt_fit.py", answers, out, "--model", model, "--epochs",
                               str(epochs), "--lr", str(lr), "--seed", str(seed)], capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"py-irt failed ({done.returncode}): {done.stderr[-2000:]}")
        result = json.loads(out.read_text())
    items = pd.DataFrame.from_dict(result["items"], orient="index", columns=["a", "b", "d"])
    return IrtFit(model, pd.Series(result["ability"], dtype=float), items, result["seconds"])


class IrtPeer:
    """A new LLM's benchmark accuracies from a py-irt fit with catsim (module docstring)."""

    def __init__(self, fit: IrtFit, items: np.ndarray, codes: np.ndarray, n_benchmarks: int):
        from catsim.estimation import NumericalSearchEstimator

        self.fit, self.codes, self.n_benchmarks = fit, codes, n_benchmarks
        params = fit.items.reindex(pd.Index(np.asarray(items, dtype=str)))
        # A question no training LLM answered has no parameters: a flat one that tells nothing.
        self.params = np.column_stack([params.a.fillna(1e-3), params.b.fillna(0.0), np.zeros(len(params)),
                                       params.d.fillna(1.0).clip(1e-3, 1.0)])
        self.counts = np.bincount(codes, minlength=n_benchmarks).astype(float)
        self.start = float(fit.ability.mean())
        self.prior_band = np.quantile(fit.ability.to_numpy(), [0.05, 0.95])
        self.estimator = NumericalSearchEstimator()

    def probabilities(self, theta: float) -> np.ndarray:
        a, b, c, d = self.params.T
        return c + (d - c) / (1.0 + np.exp(-a * (theta - b)))

    def estimate(self, rows: np.ndarray, y: np.ndarray) -> float:
        """catsim's ability estimate from answers ``y`` to the questions ``rows`` (the known mean before any)."""
        if len(rows) == 0:
            return self.start
        from catsim.item_bank import ItemBank

        bank = ItemBank(self.params[rows], validate=False)
        return float(self.estimator.estimate(item_bank=bank, administered_items=list(range(len(rows))),
                                             response_vector=[bool(v) for v in y], est_theta=self.start))

    def select(self, theta: float, allowed: np.ndarray) -> int:
        """catsim's most informative question at ``theta`` among the ``allowed`` rows."""
        from catsim.item_bank import ItemBank
        from catsim.selection import MaxInfoSelector

        candidates = np.flatnonzero(allowed)
        bank = ItemBank(self.params[candidates], validate=False)
        return int(candidates[MaxInfoSelector().select(item_bank=bank, administered_items=[], est_theta=theta)])

    def scores(self, rows: np.ndarray, y: np.ndarray) -> dict:
        """``{"model", "lower", "upper"}`` per benchmark from the answers ``y`` to ``rows``."""
        from catsim.irt import see

        theta = self.estimate(rows, y)
        done = np.zeros(len(self.params), bool)
        values = np.zeros(len(self.params))
        done[rows], values[rows] = True, y
        known = np.bincount(self.codes, weights=np.where(done, values, 0.0), minlength=self.n_benchmarks)

        def accuracy(value: float) -> tuple[np.ndarray, np.ndarray]:
            prob = np.where(done, 0.0, self.probabilities(value))
            expected = np.bincount(self.codes, weights=prob, minlength=self.n_benchmarks)
            spread = np.bincount(self.codes, weights=prob * (1 - prob), minlength=self.n_benchmarks)
            return (known + expected) / self.counts, spread / self.counts ** 2

        centre, _ = accuracy(theta)
        if len(rows):
            error = see(theta, self.params[rows])
            band = (theta - Z90 * error, theta + Z90 * error) if np.isfinite(error) else (-np.inf, np.inf)
        else:
            band = tuple(self.prior_band)
        low, low_var = accuracy(max(band[0], -20.0))
        high, high_var = accuracy(min(band[1], 20.0))
        return {"model": centre, "lower": np.clip(low - Z90 * np.sqrt(low_var), 0, 1),
                "upper": np.clip(high + Z90 * np.sqrt(high_var), 0, 1), "theta": np.full(self.n_benchmarks, theta)}
