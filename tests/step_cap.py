"""Code prepended to the README's examples and to the notebooks when the tests run them: every SimRMF fit stops
after ``steps`` SVI steps (the examples as written allow more), and ``to_inference_data`` converts at most
``pairs`` pairs. What they print and the tests assert is unchanged; only the work is smaller."""

from __future__ import annotations


def step_cap_code(steps: int, pairs: int) -> str:
    return f"""
import bayes_simrmf
import bayes_simrmf.predict.estimator as _estimator
_fit = _estimator.SimRMF.fit
def _capped_fit(self, *args, **kwargs):
    self.max_steps = min(int(self.max_steps), {steps})
    return _fit(self, *args, **kwargs)
_estimator.SimRMF.fit = _capped_fit
_to_inference_data = bayes_simrmf.to_inference_data
def _capped_to_inference_data(*args, max_pairs=None, **kwargs):
    return _to_inference_data(*args, max_pairs=min(max_pairs or {pairs}, {pairs}), **kwargs)
bayes_simrmf.to_inference_data = _capped_to_inference_data
"""
