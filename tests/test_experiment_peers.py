"""The peers' estimator wrapper (bayes_simrmf.predict.peers), on small generated data.

A recording stand-in for a peer checks what the wrapper hands over (codes, features, group indicators); the
real cmfrec runs when it is installed (the optional ``peers`` extra).
"""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

from bayes_simrmf.errors import ConfigError, NotFittedError
from bayes_simrmf.similarity import SideInformation

from bayes_simrmf.predict.peers import PeerEstimator, group_indicators


class RecordingPeer:
    """Keeps what ``fit`` got; predicts the first LLM feature times the last question feature."""

    def __init__(self, seed=0, **options):
        self.seed, self.options = seed, options

    def fit(self, llm, item, correct, llm_features, item_features):
        self.got = dict(llm=llm, item=item, correct=correct, llm_features=llm_features, item_features=item_features)
        return self

    def predict_codes(self, llm, item):
        return self.got["llm_features"][llm, 0] * self.got["item_features"][item, -1]


@pytest.fixture
def side():
    rng = np.random.default_rng(0)
    llms, items = np.array(["m0", "m1", "m2"]), np.array(["q0", "q1", "q2", "q3"])
    return SideInformation(llms=llms, llm_factor=rng.normal(size=(3, 2)), items=items,
                           item_factor=rng.normal(size=(4, 3)))


def test_group_indicators_one_column_per_group_and_zero_rows_without_group():
    groups = pd.Series({"q0": "arc", "q1": "gsm", "q2": "arc"})
    got = group_indicators(groups, np.array(["q2", "q3", "q1", "q0"]))
    assert got.shape == (4, 2)
    np.testing.assert_array_equal(got.sum(axis=1), [1, 0, 1, 1])
    np.testing.assert_array_equal(got[0], got[3])  # q2 and q0 share "arc"
    assert not np.array_equal(got[0], got[2])


def test_wrapper_codes_pairs_and_appends_group_indicators(side):
    groups = pd.Series({"q0": "a", "q1": "b", "q2": "a", "q3": "b"})
    model = PeerEstimator(peer=RecordingPeer, seed=3, options={"num_latent": 4}).fit(
        np.array(["m2", "m0"]), np.array(["q1", "q3"]), np.array([1, 0]), side=side,
        llms=np.array(["m0", "m1", "m2"]), items=np.array(["q0", "q1", "q2", "q3"]), item_groups=groups)
    got = model.model_.got
    np.testing.assert_array_equal(got["llm"], [2, 0])
    np.testing.assert_array_equal(got["item"], [1, 3])
    np.testing.assert_array_equal(got["llm_features"], side.llm_factor)
    assert got["item_features"].shape == (4, 3 + 2)
    np.testing.assert_array_equal(got["item_features"][:, :3], side.item_factor)
    np.testing.assert_array_equal(got["item_features"][:, 3:].sum(axis=1), 1)
    assert model.model_.seed == 3 and model.model_.options == {"num_latent": 4}
    prob = model.predict(np.array(["m1"]), np.array(["q2"]))
    np.testing.assert_allclose(prob, side.llm_factor[1, 0] * got["item_features"][2, -1])


def test_wrapper_errors_name_the_problem(side):
    with pytest.raises(NotFittedError, match="not fitted"):
        PeerEstimator(peer=RecordingPeer).predict(np.array(["m0"]), np.array(["q0"]))
    with pytest.raises(ConfigError, match="unknown peer"):
        PeerEstimator(peer="macau").fit(np.array(["m0"]), np.array(["q0"]), np.array([1]), side=side,
                                        llms=side.llms, items=side.items)
    with pytest.raises(ValueError, match="side information"):
        PeerEstimator(peer=RecordingPeer).fit(np.array(["m0"]), np.array(["q0"]), np.array([1]), side=None,
                                              llms=side.llms, items=side.items)
    model = PeerEstimator(peer=RecordingPeer).fit(np.array(["m0"]), np.array(["q0"]), np.array([1]), side=side,
                                                  llms=side.llms, items=side.items)
    with pytest.raises(ValueError, match="1 LLM id.*'m9'"):
        model.predict(np.array(["m9", "m0"]), np.array(["q0", "q0"]))


def test_cmfrec_through_the_wrapper_learns_a_block_pattern():
    pytest.importorskip("cmfrec")
    rng = np.random.default_rng(1)
    n_llms, n_items = 40, 30
    strong = np.arange(n_llms) < n_llms // 2
    truth = np.where(strong[:, None], 0.9, 0.2) * np.ones((1, n_items))
    llm, item = np.meshgrid(np.arange(n_llms), np.arange(n_items), indexing="ij")
    llm, item = llm.ravel(), item.ravel()
    correct = (rng.random(len(llm)) < truth[llm, item]).astype(float)
    llms = np.array([f"m{i}" for i in range(n_llms)])
    items = np.array([f"q{j}" for j in range(n_items)])
    side = SideInformation(llms=llms, llm_factor=np.c_[strong.astype(float), rng.normal(size=n_llms) * 0.01],
                           items=items, item_factor=rng.normal(size=(n_items, 2)))
    model = PeerEstimator(peer="cmfrec", options={"k": 2, "lambda_": 1.0, "threads": 1}).fit(
        llms[llm], items[item], correct, side=side, llms=llms, items=items)
    prob = model.predict(llms[llm], items[item])
    assert prob[strong[llm]].mean() > prob[~strong[llm]].mean() + 0.4
