"""The adaptive-testing study's frontier protocols and its IRT peer (experiments/adaptive_testing.py,
experiments/peers/irt.py), on small generated data; catsim (the optional ``peers`` extra) where installed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from bayes_simrmf.data import from_frames
from bayes_simrmf.errors import ConfigError

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def _module(name: str, path: Path):
    if str(EXPERIMENTS) not in sys.path:
        sys.path.insert(0, str(EXPERIMENTS))  # the study imports its peers as the script would
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def study():
    return _module("adaptive_testing_under_test", EXPERIMENTS / "adaptive_testing.py")


@pytest.fixture(scope="module")
def dataset():
    """30 LLMs x 8 questions: LLM j is dated day j and answers the first j // 4 questions right."""
    llms = [f"m{j:02d}" for j in range(30)]
    rows = [(llm, f"q{k}", int(k < j // 4)) for j, llm in enumerate(llms) for k in range(8)]
    dates = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(30)[::-1], unit="D")  # m00 is the newest
    table = pd.DataFrame({"llm": llms, "submission_date": dates.strftime("%Y-%m-%d")})
    items = pd.DataFrame({"item": [f"q{k}" for k in range(8)], "benchmark": ["A"] * 4 + ["B"] * 4})
    return from_frames(pd.DataFrame(rows, columns=["llm", "item", "correct"]), items, table, log=None)


@pytest.mark.parametrize("protocol, expected_new", [("newest", [f"m{j:02d}" for j in range(9)]),
                                                    ("strongest", [f"m{j:02d}" for j in range(21, 30)])])
def test_frontier_protocols_make_the_frontier_new_and_validate_on_the_frontier_of_the_rest(study, dataset, protocol,
                                                                                            expected_new):
    args = SimpleNamespace(new_share=0.3, n_llms=4)
    new, held, tested = study.choose_llms(dataset, dataset.responses, protocol, args, np.random.default_rng(0))
    if protocol == "newest":
        assert list(new) == expected_new and list(held) == ["m09", "m10", "m11", "m12"]
    else:  # accuracy ties (four LLMs per level) are broken in a seeded order: only the levels are fixed
        accuracy = {f"m{j:02d}": j // 4 for j in range(30)}
        assert len(new) == 9 and min(accuracy[m] for m in new) >= max(accuracy[m] for m in set(dataset.llm_ids()) - set(new))
        rest = sorted(set(dataset.llm_ids()) - set(new), key=accuracy.get)
        assert min(accuracy[m] for m in held) >= accuracy[rest[-4]]
    assert len(tested) == 4 and set(tested) <= set(new) and not set(held) & set(new)
    again = study.choose_llms(dataset, dataset.responses, protocol, args, np.random.default_rng(0))
    assert all((a == b).all() for a, b in zip(again, (new, held, tested)))  # seeded


def test_random_protocol_is_the_seeded_draw_and_an_unknown_one_is_refused(study, dataset):
    args = SimpleNamespace(new_share=0.3, n_llms=4)
    draw = lambda seed: study.choose_llms(dataset, dataset.responses, "random", args, np.random.default_rng(seed))  # noqa: E731
    new, held, tested = draw(3)
    assert len(new) == 9 and len(held) == 4 and not set(held) & set(new)
    assert len(tested) == 4 and set(tested) <= set(new) and list(tested) == sorted(tested)
    assert all((a == b).all() for a, b in zip(draw(3), (new, held, tested)))  # seeded
    # the test LLMs are a draw from the new ones, not their alphabetically first
    assert any(list(draw(seed)[2]) != list(draw(seed)[0][:4]) for seed in range(5))
    with pytest.raises(ConfigError, match="protocol must be one of"):
        study.choose_llms(dataset, dataset.responses, "oldest", args, np.random.default_rng(3))


def test_the_irt_peer_recovers_an_ability_and_covers_a_benchmark_accuracy():
    pytest.importorskip("catsim")
    irt = _module("irt_under_test", EXPERIMENTS / "peers" / "irt.py")
    rng = np.random.default_rng(0)
    n_items = 400
    a, b = np.exp(rng.normal(0, 0.3, n_items)), rng.normal(0, 1, n_items)
    items = np.array([f"q{k:03d}" for k in range(n_items)])
    fit = irt.IrtFit("2pl", pd.Series(rng.normal(0, 1, 200)),
                     pd.DataFrame({"a": a, "b": b, "d": 1.0}, index=items), 0.0)
    codes = np.arange(n_items) % 2
    peer = irt.IrtPeer(fit, items, codes, 2)
    theta = 0.8
    answers = (rng.random(n_items) < 1 / (1 + np.exp(-a * (theta - b)))).astype(float)
    rows = rng.permutation(n_items)[:150]
    scores = peer.scores(rows, answers[rows])
    assert abs(scores["theta"][0] - theta) < 0.35
    truth = np.bincount(codes, weights=answers) / np.bincount(codes)
    assert ((scores["lower"] <= truth) & (truth <= scores["upper"])).all()
    assert np.all(scores["upper"] - scores["lower"] < peer.scores(rows[:10], answers[rows[:10]])["upper"]
                  - peer.scores(rows[:10], answers[rows[:10]])["lower"])  # more answers, narrower
    before = peer.scores(np.zeros(0, int), np.zeros(0))
    assert before["theta"][0] == pytest.approx(fit.ability.mean())
    # catsim's choice is the most informative allowed question at theta (2PL: a^2 p (1 - p)).
    allowed = np.ones(n_items, bool)
    allowed[:50] = False
    p = 1 / (1 + np.exp(-a * (theta - b)))
    information = np.where(allowed, a ** 2 * p * (1 - p), -np.inf)
    assert peer.select(theta, allowed) == int(np.argmax(information))


@pytest.mark.parametrize("protocol", ["random", "newest", "strongest"])
def test_the_kshot_study_takes_the_same_frontier_and_keeps_its_random_draw(dataset, protocol):
    kshot = _module("kshot_under_test", EXPERIMENTS / "kshot.py")
    args = SimpleNamespace(new_share=0.3, validation_share=0.25)
    new, held = kshot.choose_new(dataset, dataset.responses, protocol, args, np.random.default_rng(0))
    assert len(new) == 9 and len(held) == 5 and not set(held) & set(new)
    if protocol == "random":  # the draw the study made before it had protocols: its committed cells stay valid
        rng = np.random.default_rng(0)
        llms = np.sort(dataset.responses.llm.unique())
        old_new = np.sort(rng.choice(llms, 9, replace=False))
        old_held = np.sort(rng.choice(np.setdiff1d(llms, old_new), 5, replace=False))
        assert list(new) == list(old_new) and list(held) == list(old_held)
    elif protocol == "newest":
        assert list(new) == [f"m{j:02d}" for j in range(9)] and list(held) == [f"m{j:02d}" for j in range(9, 14)]
    else:
        accuracy = {f"m{j:02d}": j // 4 for j in range(30)}
        assert min(accuracy[m] for m in new) >= max(accuracy[m] for m in set(dataset.llm_ids()) - set(new))
    with pytest.raises(ConfigError, match="protocol must be one of"):
        kshot.choose_new(dataset, dataset.responses, "oldest", args, np.random.default_rng(0))
