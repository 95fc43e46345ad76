"""Item groups (benchmarks) with their own mean difficulty."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayes_simrmf.errors import ConfigError
from bayes_simrmf.predict import SimRMF
from bayes_simrmf.inference import InferenceConfig, run_svi
from bayes_simrmf.model import ITEM_GROUP_MEAN, ModelConfig
from bayes_simrmf.saving import load_model, save_model


def _grouped_data(seed: int = 0):
    """Two benchmarks, one easy (base logit +1.5) and one hard (−2), rank-1 interaction."""
    rng = np.random.default_rng(seed)
    n_llms, n_items = 60, 240
    group = np.repeat([0, 1], n_items // 2)
    item_bias = np.where(group == 0, 1.5, -2.0) + 0.5 * rng.standard_normal(n_items)
    llm_bias = 0.8 * rng.standard_normal(n_llms)
    logits = llm_bias[:, None] + item_bias[None, :] + 0.5 * np.outer(rng.standard_normal(n_llms), rng.standard_normal(n_items))
    correct = (rng.random((n_llms, n_items)) < 1 / (1 + np.exp(-logits))).astype(np.int8)
    llm_ids = np.array([f"llm-{i}" for i in range(n_llms)])
    item_ids = np.array([f"item-{k}" for k in range(n_items)])
    frame = pd.DataFrame({"llm": np.repeat(llm_ids, n_items), "item": np.tile(item_ids, n_llms),
                          "correct": correct.ravel(), "p": (1 / (1 + np.exp(-logits))).ravel()})
    groups = pd.Series(np.where(group == 0, "easy", "hard"), index=item_ids)
    return frame, groups


def test_group_means_are_learnt_and_help_items_with_few_answers():
    frame, groups = _grouped_data()
    # Each item answered by only 4 LLMs: its difficulty must lean on its benchmark.
    train = frame.sample(frac=1.0, random_state=1).groupby("item").head(4)
    test = frame.drop(train.index)
    common = dict(dim=1, lambda_reg=1.0, max_steps=2000, progress=False, seed=0)
    grouped = SimRMF(**common).fit(train.llm, train.item, train.correct, item_groups=groups)
    plain = SimRMF(**common).fit(train.llm, train.item, train.correct)
    means = grouped.params_[ITEM_GROUP_MEAN]
    assert list(grouped.item_group_labels_) == ["easy", "hard"]
    assert means[0] - means[1] > 2.0, means  # planted gap 3.5 (shrunk, and the intercept takes a share)
    errors = {}
    for name, model in (("grouped", grouped), ("plain", plain)):
        prob = model.predict(test.llm, test.item)
        per_item = pd.DataFrame({"item": test.item, "pred": prob, "true": test.p}).groupby("item").mean()
        errors[name] = float(np.sqrt(np.mean((per_item.pred - per_item.true) ** 2)))
    assert errors["grouped"] < 0.85 * errors["plain"], errors


def test_item_groups_must_cover_every_item_and_need_codes():
    frame, groups = _grouped_data()
    with pytest.raises(ConfigError, match="no group for 1 item"):
        SimRMF(dim=1, max_steps=10, progress=False).fit(frame.llm, frame.item, frame.correct,
                                                        item_groups=groups.drop("item-3"))
    config = ModelConfig(dim=1, n_item_groups=2)
    with pytest.raises(ConfigError, match="one group code per item"):
        run_svi(2, 2, np.array([0, 1]), np.array([0, 1]), np.array([1, 0]), config,
                InferenceConfig(max_steps=10, progress=False))
    with pytest.raises(ConfigError, match=r"lie in \[0, 2\)"):
        run_svi(2, 2, np.array([0, 1]), np.array([0, 1]), np.array([1, 0]), config,
                InferenceConfig(max_steps=10, progress=False), item_group=np.array([0, 2]))
    with pytest.raises(ConfigError, match="biases=True"):
        ModelConfig(dim=1, biases=False, n_item_groups=2)


def test_grouped_model_round_trips(tmp_path):
    frame, groups = _grouped_data()
    model = SimRMF(dim=1, max_steps=200, progress=False).fit(frame.llm[:3000], frame.item[:3000],
                                                             frame.correct[:3000], item_groups=groups)
    loaded = load_model(save_model(tmp_path / "g", model, data_fingerprint="x"), data_fingerprint="x").estimator
    np.testing.assert_array_equal(loaded.item_group_labels_, model.item_group_labels_)
    np.testing.assert_allclose(loaded.predict(frame.llm[:50], frame.item[:50]), model.predict(frame.llm[:50], frame.item[:50]))
