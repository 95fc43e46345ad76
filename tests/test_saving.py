"""Tests of bayes_simrmf.saving: a fitted model is a folder that round-trips exactly, refuses tampering,
other data and other format versions with a message naming what does not match, and is written atomically.
"""

from __future__ import annotations

import json
import stat

import numpy as np
import pytest

from bayes_simrmf.errors import ConfigError, ModelFormatError
from bayes_simrmf.predict import MeanScore, SimRMF
from bayes_simrmf.evaluate import TEST_SPLITS, evaluate_on_split, fit_on_split
from bayes_simrmf.saving import FORMAT_VERSION, HASHED_FIELDS, config_hash, load_model, save_model
from bayes_simrmf.splits import SPLIT_NAMES, Protocol, Split
from bayes_simrmf.synthetic import make_synthetic_dataset

# A 120 x 200 known block, as in test_estimators.py / test_inference.py (one compiled shape).
N_KNOWN_LLMS, N_KNOWN_ITEMS, DIM = 120, 200, 3


@pytest.fixture(scope="module")
def fitted():
    """(dataset, split, fitted MF, its metrics), fitted once for the module."""
    dataset, _ = make_synthetic_dataset(180, 300, dim=DIM, seed_value=1)
    split = Protocol(n_known_llms=N_KNOWN_LLMS, n_known_items=N_KNOWN_ITEMS, T=60, n_test_pairs=3000, seed=0).split(
        dataset, log=None
    )
    estimator = fit_on_split(SimRMF(dim=DIM, max_steps=100, progress=False), split)
    return dataset, split, estimator, evaluate_on_split(estimator, split)


@pytest.fixture
def saved(tmp_path, fitted):
    dataset, split, estimator, metrics = fitted
    folder = save_model(
        tmp_path / "models" / "mf",
        estimator,
        data_fingerprint=dataset.fingerprint(),
        split=split,
        metrics=metrics,
        extra_config={"data": "synthetic"},
        command="bayes-simrmf fit --dim 3",
    )
    return folder


def _all_test_pairs(split: Split) -> tuple[np.ndarray, np.ndarray]:
    llm = np.concatenate([split.llms[split.pairs[name].llm] for name in TEST_SPLITS])
    item = np.concatenate([split.items[split.pairs[name].item] for name in TEST_SPLITS])
    return llm, item


def _rewrite_config(folder, edit) -> None:
    path = folder / "config.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config, indent=2))


# --------------------------------------------------------------------------------------------------
# round trip
# --------------------------------------------------------------------------------------------------


def test_save_load_round_trip_gives_identical_predictions(saved, fitted):
    dataset, split, estimator, metrics = fitted
    assert sorted(p.name for p in saved.iterdir()) == [
        "config.json", "metrics.json", "provenance.json", "split", "state.npz"
    ]
    loaded = load_model(saved, data_fingerprint=dataset.fingerprint())
    assert isinstance(loaded.estimator, SimRMF)
    assert loaded.estimator.get_config() == estimator.get_config()
    llm, item = _all_test_pairs(split)  # known and new LLMs and items: every prediction path
    np.testing.assert_array_equal(
        loaded.estimator.predict(llm, item, unknown="population"), estimator.predict(llm, item, unknown="population")
    )
    for name, value in estimator.params_.items():
        np.testing.assert_array_equal(loaded.estimator.params_[name], value, err_msg=name)
    for name in SPLIT_NAMES:
        assert loaded.split.pairs[name].equals(split.pairs[name]), name
    np.testing.assert_array_equal(loaded.split.llms, split.llms)
    assert loaded.metrics == json.loads(json.dumps(metrics, default=float))
    assert loaded.config["format_version"] == FORMAT_VERSION
    assert loaded.config["data_fingerprint"] == dataset.fingerprint()
    assert loaded.config["extra"] == {"data": "synthetic"}
    assert loaded.provenance["command"] == "bayes-simrmf fit --dim 3"
    assert "numpyro" in loaded.provenance and "jax" in loaded.provenance


def test_the_split_is_read_on_first_use_only(saved, monkeypatch):
    calls = []
    original = Split.load
    monkeypatch.setattr(Split, "load", staticmethod(lambda folder: calls.append(folder) or original(folder)))
    loaded = load_model(saved)
    assert calls == []  # a prediction never pays for the split's pairs
    assert loaded.split.protocol.T == 60 and loaded.split is loaded.split
    assert calls == [saved / "split"]


def test_mean_score_round_trip(tmp_path):
    estimator = MeanScore().fit(["a", "b", "c"], ["x", "x", "y"], [1, 0, 0])
    folder = save_model(tmp_path / "mean", estimator, data_fingerprint=None)
    loaded = load_model(folder, data_fingerprint="anything: none was recorded")
    assert isinstance(loaded.estimator, MeanScore)
    assert loaded.estimator.predict(["q"], ["r"])[0] == pytest.approx(1 / 3)
    assert loaded.split is None and loaded.metrics is None


# --------------------------------------------------------------------------------------------------
# overwrite
# --------------------------------------------------------------------------------------------------


def test_existing_folder_is_refused_without_overwrite_and_replaced_with_it(tmp_path, saved, fitted):
    before = (saved / "config.json").read_text()
    with pytest.raises(ConfigError, match="already exists") as error:
        save_model(saved, MeanScore().fit(["a"], ["x"], [1]), data_fingerprint=None)
    assert str(saved) in str(error.value) and "overwrite" in str(error.value)
    assert (saved / "config.json").read_text() == before  # untouched

    save_model(saved, MeanScore().fit(["a"], ["x"], [1]), data_fingerprint=None, overwrite=True)
    assert isinstance(load_model(saved).estimator, MeanScore)
    assert not (saved / "split").exists()  # the old folder's contents are gone, not merged
    assert sorted(p.name for p in saved.parent.iterdir()) == ["mf"]  # no trash or staging folder left


# --------------------------------------------------------------------------------------------------
# tampering and mismatches
# --------------------------------------------------------------------------------------------------


def test_edited_config_is_refused_by_the_config_hash(saved):
    _rewrite_config(saved, lambda config: config["estimator"].update(dim=DIM + 5))
    with pytest.raises(ModelFormatError, match="config_hash") as error:
        load_model(saved)
    assert "config.json" in str(error.value)


def test_edited_data_fingerprint_in_config_is_refused_by_the_config_hash(saved):
    _rewrite_config(saved, lambda config: config.update(data_fingerprint="0" * 16))
    with pytest.raises(ModelFormatError, match="config_hash"):
        load_model(saved)


def test_altered_state_is_refused_by_its_sha256(saved):
    with np.load(saved / "state.npz") as archive:
        state = {key: archive[key] for key in archive.files}
    key = next(name for name in state if name.startswith("param/"))
    state[key] = state[key] + np.float32(0.25)
    np.savez(saved / "state.npz", **state)
    with pytest.raises(ModelFormatError, match="sha256") as error:
        load_model(saved)
    assert "state.npz" in str(error.value)


@pytest.mark.parametrize("version", [FORMAT_VERSION + 1, 0, None])
def test_other_format_version_is_refused(saved, version):
    _rewrite_config(saved, lambda config: config.update(format_version=version))
    with pytest.raises(ModelFormatError, match="format version") as error:
        load_model(saved)
    assert repr(version) in str(error.value) and str(FORMAT_VERSION) in str(error.value)


def test_data_fingerprint_mismatch_names_both_fingerprints(saved, fitted):
    dataset = fitted[0]
    other = "feedfacecafebeef"
    with pytest.raises(ModelFormatError) as error:
        load_model(saved, data_fingerprint=other)
    assert dataset.fingerprint() in str(error.value) and other in str(error.value)
    assert load_model(saved, data_fingerprint=dataset.fingerprint()).estimator is not None


@pytest.mark.parametrize("missing", ["state.npz", "config.json"])
def test_missing_file_is_named(saved, missing):
    (saved / missing).unlink()
    with pytest.raises(ModelFormatError, match=f"missing {missing}"):
        load_model(saved)


def test_missing_folder_and_invalid_json_are_refused(tmp_path, saved):
    with pytest.raises(ModelFormatError, match="no-such-model"):
        load_model(tmp_path / "no-such-model")
    (saved / "config.json").write_text("{not json")
    with pytest.raises(ModelFormatError, match="not valid JSON"):
        load_model(saved)


def test_state_missing_an_array_is_refused_naming_it(saved):
    import hashlib

    with np.load(saved / "state.npz") as archive:
        state = {key: archive[key] for key in archive.files if key != "llms"}
    np.savez(saved / "state.npz", **state)
    digest = hashlib.sha256((saved / "state.npz").read_bytes()).hexdigest()
    _rewrite_config(saved, lambda config: config.update(state_sha256=digest))  # consistent, just incomplete
    with pytest.raises(ModelFormatError, match="llms"):
        load_model(saved)


# --------------------------------------------------------------------------------------------------
# atomic writes
# --------------------------------------------------------------------------------------------------


class _Interrupted(RuntimeError):
    pass


def _raise_interrupted(*args, **kwargs):
    raise _Interrupted("simulated crash during save")


@pytest.mark.parametrize("where", ["bayes_simrmf.saving._versions", "bayes_simrmf.splits.Split.save"])
def test_a_save_failing_midway_leaves_neither_target_nor_staging(tmp_path, fitted, monkeypatch, where):
    dataset, split, estimator, metrics = fitted
    parent = tmp_path / "models"
    parent.mkdir()
    (parent / "other-model").mkdir()
    listing_at_crash = []

    def crash(*args, **kwargs):
        listing_at_crash.extend(sorted(p.name for p in parent.iterdir()))
        raise _Interrupted("simulated crash during save")

    monkeypatch.setattr(where, crash)
    with pytest.raises(_Interrupted):
        save_model(parent / "mf", estimator, data_fingerprint=dataset.fingerprint(), split=split, metrics=metrics)
    # The crash happened while a staging folder beside the target existed, and the target did not yet exist ...
    assert "mf" not in listing_at_crash
    assert any(name.startswith(".mf.") for name in listing_at_crash), listing_at_crash
    # ... and afterwards neither exists.
    assert sorted(p.name for p in parent.iterdir()) == ["other-model"]


def test_a_failed_overwrite_keeps_the_previous_model(saved, fitted, monkeypatch):
    before = {p.name: p.read_bytes() for p in saved.iterdir() if p.is_file()}
    monkeypatch.setattr("bayes_simrmf.saving._versions", _raise_interrupted)
    with pytest.raises(_Interrupted):
        save_model(saved, MeanScore().fit(["a"], ["x"], [1]), data_fingerprint=None, overwrite=True)
    assert {p.name: p.read_bytes() for p in saved.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in saved.parent.iterdir()) == ["mf"]
    assert isinstance(load_model(saved).estimator, SimRMF)


def test_saved_folder_has_the_permissions_of_an_ordinary_folder(tmp_path, saved):
    reference = tmp_path / "reference"
    reference.mkdir()
    assert stat.S_IMODE(saved.stat().st_mode) == stat.S_IMODE(reference.stat().st_mode)


# --------------------------------------------------------------------------------------------------
# the split and metrics are covered by the hashes
# --------------------------------------------------------------------------------------------------


def _flip_correct(path) -> None:
    import pandas as pd

    pairs = pd.read_parquet(path)
    pairs["correct"] = (1 - pairs["correct"]).astype("int8")
    pairs.to_parquet(path, index=False)


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete", "add", "metrics"])
def test_a_tampered_or_truncated_split_is_refused_like_a_tampered_state(saved, damage):
    pairs = saved / "split" / "pairs.parquet"
    if damage == "flip":
        _flip_correct(pairs)
    elif damage == "truncate":
        pairs.write_bytes(pairs.read_bytes()[: pairs.stat().st_size // 2])
    elif damage == "delete":
        pairs.unlink()
    elif damage == "add":
        (saved / "split" / "extra.parquet").write_bytes(b"x")
    else:
        (saved / "metrics.json").write_text("{}")
    expected = {"delete": "missing", "add": "not recorded"}.get(damage, "does not match the sha256")
    with pytest.raises(ModelFormatError, match=expected):
        load_model(saved)


def test_evaluate_refuses_a_flipped_split_in_one_line(saved):
    from click.testing import CliRunner

    from bayes_simrmf.cli import main

    _flip_correct(saved / "split" / "pairs.parquet")
    result = CliRunner().invoke(main, ["evaluate", str(saved)])
    assert result.exit_code == 1 and "pairs.parquet does not match the sha256" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_version_1_folder_still_loads_with_a_note_that_its_split_is_unchecked(saved, fitted):
    def as_version_1(config):  # what a version-1 writer wrote: no files_sha256, the format outside the hash
        config.update(format_version=1)
        del config["files_sha256"]
        config["config_hash"] = config_hash({key: config[key] for key in HASHED_FIELDS[1]})

    _rewrite_config(saved, as_version_1)
    loaded = load_model(saved)
    assert loaded.notes and "format version 1" in loaded.notes[0] and "split/" in loaded.notes[0]
    assert loaded.split.pairs["A"].equals(fitted[1].pairs["A"])
    assert load_model(save_model(saved.parent / "new", fitted[2], data_fingerprint=None, split=fitted[1])).notes == []


def test_files_an_os_or_editor_drops_are_ignored_with_a_note(saved):
    (saved / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (saved / "split" / "Thumbs.db").write_bytes(b"x")
    (saved / "metrics.json~").write_text("{}")
    (saved / ".ipynb_checkpoints").mkdir()
    (saved / ".ipynb_checkpoints" / "notes-checkpoint.ipynb").write_text("{}")
    loaded = load_model(saved)
    assert isinstance(loaded.estimator, SimRMF)
    assert len(loaded.notes) == 1 and "ignored 4 file(s)" in loaded.notes[0] and ".DS_Store" in loaded.notes[0]
    from bayes_simrmf.outputs import is_model_folder

    assert is_model_folder(saved)  # so --overwrite still replaces it
    (saved / "notes.txt").write_text("mine")  # anything else still counts as a change to the folder
    with pytest.raises(ModelFormatError, match="notes.txt, not recorded"):
        load_model(saved)


@pytest.mark.parametrize("version", [1, 2])
def test_editing_the_format_version_to_skip_checks_is_found(saved, version):
    _rewrite_config(saved, lambda config: config.update(format_version=version))
    with pytest.raises(ModelFormatError, match="was edited after saving"):
        load_model(saved)
