"""Tests of what the package may write over (bayes_simrmf.outputs): --overwrite replaces only model folders it
wrote, never the working directory or a folder above it; files are replaced only with --overwrite; a pull
writes only into new, empty or pull folders; staging left by a killed save is removed by the next save.

Every command here is refused before any data is loaded or any model fitted, so the tests take seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bayes_simrmf.cli import main
from bayes_simrmf.errors import ConfigError
from bayes_simrmf.outputs import check_model_target, is_model_folder, remove_stale_staging
from bayes_simrmf.predict import MeanScore
from bayes_simrmf.saving import load_model, save_model

FIT = ["fit", "--method", "meanscore", "--T", "10", "--n-known-llms", "20", "--n-known-items", "30", "--quiet"]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def no_fit(monkeypatch):
    """Make any fit fail loudly: the refusals below must come before fitting."""
    def refuse(*args, **kwargs):
        raise AssertionError("the command fitted a model although its --out was refused")

    monkeypatch.setattr("bayes_simrmf.evaluate.fit_on_split", refuse)


def _mean_score() -> MeanScore:
    return MeanScore().fit(["a", "b"], ["x", "y"], [1, 0])


def test_overwrite_refuses_a_folder_that_is_not_a_model_folder_and_keeps_its_files(runner, tmp_path, no_fit):
    out = tmp_path / "x"
    out.mkdir()
    (out / "notes.txt").write_text("keep")
    result = runner.invoke(main, [*FIT, "--out", str(out), "--overwrite"])
    assert result.exit_code == 1
    assert "is not a model folder written by bayes-simrmf" in result.stderr and "notes.txt" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert (out / "notes.txt").read_text() == "keep"


@pytest.mark.parametrize("target", [".", "..", "PARENT", "ROOT"])
def test_the_working_directory_and_the_folders_above_it_are_refused_always(runner, tmp_path, monkeypatch, target,
                                                                             no_fit):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    out = {"PARENT": str(tmp_path / "a"), "ROOT": "/"}.get(target, target)
    result = runner.invoke(main, [*FIT, "--out", out, "--overwrite"])
    assert result.exit_code == 1, result.output
    assert "working directory" in result.stderr and "Traceback" not in result.output
    assert work.is_dir()
    with pytest.raises(ConfigError, match="working directory"):
        save_model(out, _mean_score(), data_fingerprint=None, overwrite=True)


def test_overwrite_replaces_a_model_folder_but_not_one_with_foreign_files(tmp_path):
    folder = save_model(tmp_path / "m", _mean_score(), data_fingerprint=None)
    assert is_model_folder(folder)
    save_model(folder, _mean_score(), data_fingerprint=None, overwrite=True)
    (folder / "my-notes.md").write_text("mine")
    assert not is_model_folder(folder)
    with pytest.raises(ConfigError, match="my-notes.md"):
        save_model(folder, _mean_score(), data_fingerprint=None, overwrite=True)
    assert (folder / "my-notes.md").read_text() == "mine"


def test_a_file_or_a_link_is_never_a_model_target(tmp_path):
    file = tmp_path / "model"
    file.write_text("not a folder")
    link = tmp_path / "link"
    link.symlink_to(save_model(tmp_path / "real", _mean_score(), data_fingerprint=None))
    for target, kind in ((file, "a file"), (link, "a symbolic link")):
        with pytest.raises(ConfigError, match=kind):
            check_model_target(target, overwrite=True)
    assert file.read_text() == "not a folder" and load_model(link).estimator is not None


def test_an_empty_folder_may_be_replaced_with_overwrite(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="already exists"):
        save_model(tmp_path / "empty", _mean_score(), data_fingerprint=None)
    assert load_model(save_model(tmp_path / "empty", _mean_score(), data_fingerprint=None, overwrite=True))


def test_tune_refuses_an_existing_out_file_without_overwrite(runner, tmp_path, monkeypatch):
    out = tmp_path / "hyper.json"
    out.write_text("my own notes")
    monkeypatch.setattr("bayes_simrmf.cli.common._load_data",
                        lambda *args: (_ for _ in ()).throw(AssertionError("data loaded")))
    result = runner.invoke(main, ["tune", "--out", str(out)])
    assert result.exit_code == 1 and "already exists" in result.stderr and "--overwrite" in result.stderr
    assert out.read_text() == "my own notes"


@pytest.mark.parametrize("command", ["route", "predict", "next-questions"])
def test_table_outputs_refuse_an_existing_file_without_overwrite(runner, tmp_path, command):
    out = tmp_path / "mine.csv"
    out.write_text("my,own\n1,2\n")
    (tmp_path / "items.csv").write_text("item\nq1\n")
    (tmp_path / "llms.csv").write_text("llm,cost\nm1,1\n")
    arguments = {"route": ["--items", str(tmp_path / "items.csv"), "--llms", str(tmp_path / "llms.csv")]}.get(
        command, ["--llm", "m1"])
    result = runner.invoke(main, [command, "--model", str(tmp_path / "no-model"), *arguments, "--out", str(out)])
    assert result.exit_code == 1 and "already exists" in result.stderr and "--overwrite" in result.stderr
    assert out.read_text() == "my,own\n1,2\n"


def test_table_outputs_are_written_whole_and_replaced_with_overwrite(tmp_path):
    from bayes_simrmf.cli.entities import _write_table

    frame = pd.DataFrame({"a": np.arange(3)})
    _write_table(frame, str(tmp_path / "t.parquet"))
    with pytest.raises(ConfigError, match="already exists"):
        _write_table(frame, str(tmp_path / "t.parquet"))
    _write_table(frame.assign(a=7), str(tmp_path / "t.parquet"), overwrite=True)
    assert pd.read_parquet(tmp_path / "t.parquet")["a"].tolist() == [7, 7, 7]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet"]


def test_data_pull_refuses_a_folder_it_did_not_write(runner, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "responses.parquet").write_text("someone else's")
    result = runner.invoke(main, ["data", "pull", "--out", str(out), "--hub-root", str(tmp_path), "--models", "1"])
    assert result.exit_code == 1 and "not written by a pull" in result.output
    assert (out / "responses.parquet").read_text() == "someone else's"


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_staging_left_by_a_killed_save_is_removed_by_the_next_save(tmp_path):
    target = tmp_path / "mk"
    stale = tmp_path / f".mk.staging-{_dead_pid()}-0123abcd"
    legacy = tmp_path / ".mk.ab12_x9z"  # an older version's mkdtemp staging, with what a save writes
    for folder in (stale, legacy):
        folder.mkdir()
        (folder / "state.npz").write_bytes(b"partial")
    users = tmp_path / ".mk.backup"  # a user's own hidden folder: never touched
    users.mkdir()
    (users / "notes.txt").write_text("mine")
    live = tmp_path / f".mk.staging-{__import__('os').getpid()}-0123abcd"  # a save still running: kept
    live.mkdir()
    save_model(target, _mean_score(), data_fingerprint=None)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".mk.backup", live.name, "mk"])
    assert remove_stale_staging(target) == []


def test_a_model_folder_is_recognised_by_its_config(tmp_path):
    folder = save_model(tmp_path / "m", _mean_score(), data_fingerprint=None)
    config = json.loads((folder / "config.json").read_text())
    del config["config_hash"]
    (folder / "config.json").write_text(json.dumps(config))
    assert not is_model_folder(folder)
    with pytest.raises(ConfigError, match="not one a model save writes"):
        check_model_target(folder, overwrite=True)


def _read_only(monkeypatch, folder):
    """Make creating any file directly in ``folder`` fail as a read-only file system does (root ignores mode bits)."""
    import errno
    from pathlib import Path

    write_bytes = Path.write_bytes

    def refuse(self, data):
        if self.parent == folder:
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", refuse)


@pytest.mark.parametrize("command", ["fit", "tune", "predict"])
def test_an_unwritable_out_is_refused_in_one_line_before_any_work(runner, tmp_path, monkeypatch, no_fit, command):
    locked = tmp_path / "locked"
    locked.mkdir()
    _read_only(monkeypatch, locked)
    monkeypatch.setattr("bayes_simrmf.cli.common._load_data",
                        lambda *args: (_ for _ in ()).throw(AssertionError("data loaded")))
    arguments = {"fit": [*FIT, "--out", str(locked / "model" / "deep")], "tune": ["tune", "--out", str(locked / "h.json")],
                 "predict": ["predict", "--model", str(tmp_path / "no-model"), "--llm", "m1", "--out",
                             str(locked / "p.csv")]}[command]
    result = runner.invoke(main, arguments)
    assert result.exit_code == 1, result.output
    assert f"cannot write in {locked} (Read-only file system)" in result.stderr and len(result.stderr.splitlines()) == 1
    assert list(locked.iterdir()) == []


def test_a_full_disk_is_refused_before_the_fit_with_the_space_needed(runner, tmp_path, monkeypatch, no_fit):
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 4096, 4096))
    result = runner.invoke(main, [*FIT, "--out", str(tmp_path / "model")])
    assert result.exit_code == 1
    assert "has 0.0 MiB free" in result.stderr and "the output needs about" in result.stderr
    assert not (tmp_path / "model").exists()


def test_a_disk_filling_up_during_a_save_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    import errno

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("bayes_simrmf.saving.np.savez", full)
    with pytest.raises(ConfigError, match="cannot write the model folder: No space left on device; nothing was written"):
        save_model(tmp_path / "m", _mean_score(), data_fingerprint=None)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("arguments", [["tune", "--out", "{locked}/h.json"], ["fit", "--out", "{locked}/model"],
                                       ["fit", "--method", "counting", "--guide", "normal"]])
def test_option_errors_come_before_the_heavy_imports(tmp_path, arguments):
    locked = tmp_path / "a-file"
    locked.write_text("not a folder")
    program = ("import sys\nfrom bayes_simrmf.cli import main\ntry:\n    main.main(sys.argv[1:], standalone_mode=False)\n"
               "except SystemExit as exit:\n    print('exit', exit.code)\n"
               "print('heavy:', sorted(name for name in ('jax', 'numpyro', 'pandas') if name in sys.modules))")
    done = subprocess.run([sys.executable, "-c", program, *(a.format(locked=locked) for a in arguments)],
                          capture_output=True, text=True, timeout=120)
    assert "heavy: []" in done.stdout and "exit 1" in done.stdout and done.stderr.startswith("error: "), (done.stdout,
                                                                                                       done.stderr)
