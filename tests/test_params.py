"""The estimator interface every model shares (bayes_simrmf.params): scikit-learn's conventions, one
validation wording, one not-fitted error, and CLI options generated from the fields."""

from __future__ import annotations


import numpy as np
import pytest
from click.testing import CliRunner

from bayes_simrmf.errors import ConfigError, NotFittedError
from bayes_simrmf.params import CountingParams, SimRMFParams, clone
from bayes_simrmf.predict import GroupAccuracy, MeanScore, SimRMF
from bayes_simrmf.predict.peers import PeerEstimator

ESTIMATORS = [
    lambda: SimRMF(dim=3, guide="normal", fold_in_ridge_llms=0.25),
    lambda: GroupAccuracy(shrinkage=4.0),
    lambda: MeanScore(),
    lambda: PeerEstimator(peer="smurff", seed=2, options={"num_latent": 4}),
]


@pytest.mark.parametrize("make", ESTIMATORS)
def test_get_params_round_trips_through_the_constructor(make):
    estimator = make()
    params = estimator.get_params()
    again = type(estimator)(**params)
    assert again.get_params() == params
    assert again is not estimator


@pytest.mark.parametrize("make", ESTIMATORS)
def test_clone_copies_the_parameters_and_not_the_fit(make):
    estimator = make()
    estimator.fitted_marker_ = 1
    copy = clone(estimator)
    assert copy.get_params() == estimator.get_params()
    assert not hasattr(copy, "fitted_marker_")
    if isinstance(estimator, PeerEstimator):
        copy.options["num_latent"] = 99  # a nested value is copied, not shared
        assert estimator.options["num_latent"] == 4


@pytest.mark.parametrize("make", ESTIMATORS)
def test_scikit_learn_clone_accepts_every_estimator(make):
    sklearn_base = pytest.importorskip("sklearn.base")
    estimator = make()
    assert sklearn_base.clone(estimator).get_params() == estimator.get_params()


@pytest.mark.parametrize("make", ESTIMATORS)
def test_set_params_sets_and_refuses_unknown_names_naming_them(make):
    estimator = make()
    for name, value in estimator.get_params().items():  # MeanScore has none
        assert estimator.set_params(**{name: value}) is estimator
        assert estimator.get_params()[name] is value
    with pytest.raises(ConfigError, match=r"unknown \w+ option\(s\) \['nonsense'\]; it takes \["):
        estimator.set_params(nonsense=1)


def test_set_params_changes_what_fit_uses():
    model = SimRMF().set_params(dim=5, lambda_reg=0.5)
    assert model.model_config().dim == 5 and model.model_config().lambda_reg == 0.5


@pytest.mark.parametrize("make", ESTIMATORS)
def test_every_estimator_raises_not_fitted_error_before_fit(make):
    estimator = make()
    with pytest.raises(NotFittedError, match=f"this {type(estimator).__name__} is not fitted yet"):
        estimator.predict(np.array(["m0"]), np.array(["q0"]))


def test_repr_lists_the_parameters_that_differ_from_their_defaults():
    assert repr(SimRMF(dim=3, guide="normal")) == "SimRMF(dim=3, guide='normal')"
    assert repr(GroupAccuracy()) == "GroupAccuracy()"


def test_config_round_trip_and_refusals():
    model = SimRMF(method="simrmf", dim=4, llm_bias_scale=0.5)
    config = model.get_config()
    assert config["method"] == "simrmf" and "progress" not in config
    assert SimRMF.from_config(config).get_params() == {**model.get_params(), "progress": True}
    assert GroupAccuracy.from_config(GroupAccuracy(shrinkage=2).get_config()).shrinkage == 2.0
    with pytest.raises(ConfigError, match=r"unknown SimRMF option\(s\) \['bogus'\]"):
        SimRMF.from_config({**config, "bogus": 1})
    with pytest.raises(ConfigError, match="has method 'counting', not 'meanscore'"):
        GroupAccuracy.from_config({"method": "meanscore"})


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "3", True])
def test_one_wording_for_a_bound_in_every_estimator(bad):
    with pytest.raises(ConfigError, match=r"shrinkage must be a finite number >= 0, got"):
        GroupAccuracy(shrinkage=bad).fit(np.array(["m"]), np.array(["q"]), np.array([1]))
    with pytest.raises(ConfigError, match=r"fold_in_ridge_items must be a finite number >= 0, got"):
        SimRMF(fold_in_ridge_items=bad).check_params()


def test_a_choice_outside_its_literal_is_refused_with_the_choices():
    with pytest.raises(ConfigError, match="fold_in_spread must be one of 'gaussian', 'empirical'; got 'skewed'"):
        SimRMF(fold_in_spread="skewed").check_params()


def test_fit_command_options_come_from_the_fields_with_their_defaults():
    """Every hyper-parameter with a CLI name is an option of `fit`, with the field's default and help: the
    command repeats none of them."""
    from bayes_simrmf.cli.fit import fit

    options = {param.name: param for param in fit.params}
    for params in (SimRMFParams, CountingParams):
        for name, spec in params._fields().items():
            if spec.metadata["cli"] is None:
                assert name not in options or name in ("seed", "method"), name  # set by the split / --method
                continue
            assert options[name].default == spec.default, name
            assert options[name].help == spec.metadata["help"], name
    assert options["lowrank_rank"].opts == ["--rank"]


def test_fit_command_refuses_a_bad_option_before_loading_data(tmp_path):
    from bayes_simrmf.cli import main

    result = CliRunner().invoke(main, ["fit", "--data", str(tmp_path / "absent"), "--fold-in-ridge-llms", "-1"])
    assert result.exit_code == 1
    assert "fold_in_ridge_llms" in result.output or "--fold-in-ridge-llms" in result.output
    assert "absent" not in result.output  # the data folder was never read
