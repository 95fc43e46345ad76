"""The memory and start-up paths of a fit (issue 15): the compiled guide set-up and SVI initialisation, factors
shared with JAX instead of copied, and predictions in chunks of pairs giving the same numbers as all at once."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from bayes_simrmf.evaluate import evaluate_on_split
from bayes_simrmf.inference import InferenceConfig, initial_values, negative_log_joint, run_svi
from bayes_simrmf.model import ModelConfig
from bayes_simrmf.predict import SimRMF
from bayes_simrmf.similarity import SideInformation, centre_rows, gram_fro2
from bayes_simrmf.splits import Protocol
from bayes_simrmf.synthetic import make_synthetic_dataset


@pytest.fixture(scope="module")
def pairs():
    rng = np.random.default_rng(0)
    llm, item = np.divmod(rng.choice(30 * 40, 500, replace=False), 40)
    return llm.astype(np.int32), item.astype(np.int32), (rng.random(500) < 0.4).astype(np.int8)


@pytest.mark.parametrize("guide", ["delta", "normal", "lowrank"])
def test_compiled_set_up_keeps_concrete_initial_values_and_starts_where_asked(pairs, guide):
    llm, item, correct = pairs
    config = ModelConfig(dim=2)
    result = run_svi(30, 40, llm, item, correct, config, InferenceConfig(guide=guide, max_steps=50, progress=False))
    kept = [result.guide._init_locs, getattr(result.guide, "_init_latent", None)]
    leaves = [leaf for value in kept if value is not None for leaf in jax.tree_util.tree_leaves(value)]
    assert leaves and not any(isinstance(leaf, jax.core.Tracer) for leaf in leaves)
    # The guide still answers after the fit (its stored functions hold no traced values).
    assert set(result.guide.median(result.guide_params)) == set(result.point)
    if guide == "delta":
        # The first step's loss is the negative log joint at the initial values: the start is the one asked for.
        start = initial_values(30, 40, config, correct, InferenceConfig().init_scale, 0)
        assert result.losses[0] == pytest.approx(negative_log_joint(result, start), rel=1e-6)


def test_factors_are_aligned_and_shared_with_jax_not_copied():
    from bayes_simrmf.predict.estimator import _on_device

    factor = centre_rows(np.random.default_rng(1).normal(size=(1000, 37)).astype(np.float32))
    assert factor.dtype == np.float32 and factor.ctypes.data % 64 == 0
    on_device = _on_device(factor)
    if jax.default_backend() == "cpu":
        assert on_device.unsafe_buffer_pointer() == factor.ctypes.data
    np.testing.assert_array_equal(np.asarray(on_device), factor)
    # gram_fro2 reads float32 blocks in float64: the same constant as from a float64 copy.
    wide = factor.astype(np.float64)
    assert gram_fro2(factor) == pytest.approx(float(np.sum((wide.T @ wide) ** 2)), rel=1e-12)


def test_rows_in_the_side_informations_own_order_are_not_copied():
    factor = centre_rows(np.random.default_rng(2).normal(size=(5, 3)))
    ids = np.array(["a", "b", "c", "d", "e"], dtype=object)
    side = SideInformation(ids, factor, ids, factor)
    assert side.rows_for("item", ids.astype(str)) is factor
    np.testing.assert_array_equal(side.rows_for("item", np.array(["c", "a"])), factor[[2, 0]])


def test_predictions_in_chunks_equal_predictions_at_once(monkeypatch):
    import bayes_simrmf.evaluate.split as split_module
    import bayes_simrmf.predict.point as point_module

    dataset, _ = make_synthetic_dataset(60, 90, dim=2, seed_value=3)
    split = Protocol(n_known_llms=40, n_known_items=60, T=20, seed=0).split(dataset, log=None)
    rng = np.random.default_rng(4)
    side = SideInformation(split.llms, centre_rows(rng.normal(size=(len(split.llms), 6))),
                           split.items, centre_rows(rng.normal(size=(len(split.items), 9))))
    train = split.pairs["train"]
    model = SimRMF(method="simrmf", dim=2, max_steps=200, progress=False).fit(
        split.llms[train.llm], split.items[train.item], train.correct, llms=split.llms, items=split.items, side=side)
    at_once = evaluate_on_split(model, split)
    probabilities = {name: model.predict(split.llms[split.pairs[name].llm], split.items[split.pairs[name].item])
                     for name in "ABCD"}
    monkeypatch.setattr(point_module, "PAIR_CHUNK", 7)
    monkeypatch.setattr(split_module, "EVALUATE_CHUNK", 13)
    model._point_model = None
    # Per pair the same arithmetic; BLAS may sum a chunk's rows in another order (last-digit differences).
    chunked = evaluate_on_split(model, split)
    for name in "ABCD":  # D holds a folded-in LLM and question together
        assert chunked[name] == pytest.approx(at_once[name], rel=1e-12)
        pairs = split.pairs[name]
        np.testing.assert_allclose(model.predict(split.llms[pairs.llm], split.items[pairs.item]), probabilities[name],
                                   rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("user_value", [None, "2"])
def test_the_cli_starts_with_one_openblas_thread_unless_the_user_chose(user_value):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MALLOC_ARENA_MAX")}
    if user_value is not None:
        env["OPENBLAS_NUM_THREADS"] = user_value
    code = ("import os, sys, bayes_simrmf.cli; from bayes_simrmf.runtime import configure_process; "
            "print(os.environ.get('OPENBLAS_NUM_THREADS'), 'numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout.split()
    assert out == [user_value or "1", "False"]  # set before NumPy loads, and only when the user did not
