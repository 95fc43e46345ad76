"""Fitted-model folders: configuration with a hash, parameters, split, metrics, provenance.

Layout of ``models/NAME/``::

    config.json      format version, estimator config, data fingerprint, split protocol,
                     config_hash (over all of these), state_sha256 (of state.npz) and
                     files_sha256 (of every other file: split/*, metrics.json, provenance.json)
    state.npz        fitted arrays (parameters, entity ids, loss trace)
    split/           the train/test split (split.json + pairs.parquet)
    metrics.json     metrics per test split
    provenance.json  package versions, time, command line

Writes are atomic: the folder is assembled under a temporary name beside the target
(``.NAME.staging-PID-RANDOM``) and moved into place with one rename, so an interrupted save never leaves a
half-written model; staging left by a killed save is removed by the next save to the same folder. An existing
folder is replaced only on request and only if it is a model folder (:mod:`bayes_simrmf.outputs`). Loading
checks the format version and every hash and says what does not match."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from bayes_simrmf import interrupts
from bayes_simrmf.errors import ConfigError, ModelFormatError
from bayes_simrmf.outputs import check_model_target, is_debris, os_error_message, remove_stale_staging, staging_name
from bayes_simrmf.splits import Split

FORMAT_VERSION = 3
#: Versions load_model reads. Version 1 did not record the hashes of split/ and metrics.json (files_sha256);
#: such a folder loads with a note saying so in ``SavedModel.notes``. Version 3 puts the format version itself
#: inside ``config_hash``, so editing it (to skip the checks of version 2) is found.
READABLE_VERSIONS = (1, 2, 3)
#: The fields of config.json that config_hash covers, per format version.
HASHED_FIELDS = {1: ("estimator", "data_fingerprint", "split_protocol", "extra"),
                 2: ("estimator", "data_fingerprint", "split_protocol", "extra"),
                 3: ("format_version", "estimator", "data_fingerprint", "split_protocol", "extra")}
REQUIRED_FILES = ("config.json", "state.npz")


def config_hash(payload: dict[str, Any]) -> str:
    """sha256 (hex, 16 chars) of the canonical JSON of ``payload``."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def split_protocol(split: Split | None) -> dict | None:
    """The protocol that drew ``split`` with its resolved known counts (JSON-ready), or None."""
    if split is None:
        return None
    return {**asdict(split.protocol), "n_known_llms": int(split.n_known_llms), "n_known_items": int(split.n_known_items)}


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    import jax
    import numpyro

    from bayes_simrmf import __version__

    return {
        "bayes_simrmf": __version__,
        "python": sys.version.split()[0],
        "jax": jax.__version__,
        "numpyro": numpyro.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
    }


@dataclass
class SavedModel:
    """What :func:`load_model` returns. ``split`` is read from ``split/`` on first use (its files were checked
    against their hashes at load): most commands never need its million pairs."""

    estimator: Any
    config: dict
    metrics: dict | None
    provenance: dict
    folder: Path
    notes: list[str] = field(default_factory=list)

    @cached_property
    def split(self) -> Split | None:
        """The saved train/test split, None for a folder without one."""
        return Split.load(self.folder / "split") if (self.folder / "split").is_dir() else None


def save_model(
    folder: str | os.PathLike,
    estimator,
    *,
    data_fingerprint: str | None,
    split: Split | None = None,
    metrics: dict | None = None,
    extra_config: dict | None = None,
    command: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a fitted estimator to ``folder`` atomically; returns the folder path.

    An existing ``folder`` is replaced only with ``overwrite`` and only if it is a model folder written by this
    package (:func:`bayes_simrmf.outputs.check_model_target`); staging folders left by a killed save to the same
    folder are removed first.
    """
    folder = check_model_target(folder, overwrite)
    staging = staging_name(folder, "staging")
    with interrupts.cleanup_on_interrupt(staging):
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_staging(folder)
            staging.mkdir()
            _write_contents(staging, estimator, data_fingerprint, split, metrics, extra_config, command)
            _move_into_place(staging, folder)
        except BaseException as error:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(error, OSError):  # a full disk or a folder made read-only meanwhile: one line, no staging name
                raise ConfigError(f"{folder}: {os_error_message(error, 'the model folder')}; nothing was written") from None
            raise
    return folder


def _write_contents(staging: Path, estimator, data_fingerprint, split, metrics, extra_config, command) -> None:
    """The files of a model folder, written into ``staging``; config.json last, with the hashes of the others."""
    np.savez(staging / "state.npz", **estimator.get_state())
    if split is not None:
        split.save(staging / "split")
    if metrics is not None:
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float))
    provenance = {"saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "command": command, **_versions()}
    (staging / "provenance.json").write_text(json.dumps(provenance, indent=2))
    payload = {
        "format_version": FORMAT_VERSION,
        "estimator": estimator.get_config(),
        "data_fingerprint": data_fingerprint,
        "split_protocol": split_protocol(split),
        "extra": extra_config or {},
    }
    config = {
        **payload,
        "config_hash": config_hash(payload),
        "state_sha256": _file_sha256(staging / "state.npz"),
        "files_sha256": _files_sha256(staging),
    }
    (staging / "config.json").write_text(json.dumps(config, indent=2, default=str))


def _move_into_place(staging: Path, folder: Path) -> None:
    """Rename ``staging`` to ``folder`` (the old folder, if any, first to a trash name, then removed), with
    interrupts held so that the two renames are never cut apart."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # the permissions of any new folder
    if not folder.exists():
        os.replace(staging, folder)
        interrupts.completed(folder)
        return
    trash = staging_name(folder, "old")
    with interrupts.cleanup_on_interrupt(trash), interrupts.deferred():
        os.replace(folder, trash)
        os.replace(staging, folder)
        interrupts.completed(folder)
    shutil.rmtree(trash, ignore_errors=True)


def _files_sha256(folder: Path) -> dict[str, str]:
    """sha256 of every file of ``folder`` but config.json and state.npz (which config.json covers itself), by
    path relative to ``folder`` (posix)."""
    return {
        path.relative_to(folder).as_posix(): _file_sha256(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.relative_to(folder).as_posix() not in REQUIRED_FILES
    }


def load_model(folder: str | os.PathLike, *, data_fingerprint: str | None = None) -> SavedModel:
    """Read a model folder written by :func:`save_model`, checking version and hashes.

    Args:
        data_fingerprint: if given, the dataset the caller has; a model fitted on other data
            is refused with both fingerprints in the message.
    """
    from bayes_simrmf.predict import MeanScore, SimRMF

    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFormatError(f"{folder} is not a model folder (no such directory)")
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if len(missing) == len(REQUIRED_FILES) and any(folder.iterdir()):
        raise ModelFormatError(f"{folder} is not a model folder: it has neither {' nor '.join(REQUIRED_FILES)}")
    if missing:
        raise ModelFormatError(f"{folder} is incomplete: missing {', '.join(missing)}")
    try:
        config = json.loads((folder / "config.json").read_text())
    except json.JSONDecodeError as error:
        raise ModelFormatError(f"{folder / 'config.json'} is not valid JSON: {error}") from None
    version = config.get("format_version")
    if version not in READABLE_VERSIONS:
        raise ModelFormatError(
            f"{folder} has format version {version!r}; this bayes-simrmf reads version {FORMAT_VERSION}"
            f" (and {', '.join(map(str, READABLE_VERSIONS[:-1]))})"
        )
    payload = {key: config.get(key) for key in HASHED_FIELDS[version]}
    if config_hash(payload) != config.get("config_hash"):
        raise ModelFormatError(
            f"{folder / 'config.json'} was edited after saving: its config_hash {config.get('config_hash')!r} "
            f"does not match its contents ({config_hash(payload)!r})"
        )
    actual_state = _file_sha256(folder / "state.npz")
    if actual_state != config.get("state_sha256"):
        raise ModelFormatError(
            f"{folder / 'state.npz'} does not match the sha256 recorded in config.json "
            f"(recorded {str(config.get('state_sha256'))[:16]}..., found {actual_state[:16]}...): the file changed or is corrupt"
        )
    notes = _check_files(folder, config) if version >= 2 else [
        f"{folder} was saved in format version {version}, whose hashes do not cover split/ and metrics.json: they "
        "are read unchecked; fit again to save it in the current format"]
    if data_fingerprint is not None and config.get("data_fingerprint") not in (None, data_fingerprint):
        raise ModelFormatError(
            f"{folder} was fitted on data with fingerprint {config['data_fingerprint']}, "
            f"but the data given have fingerprint {data_fingerprint}"
        )
    with np.load(folder / "state.npz", allow_pickle=False) as archive:
        state = {key: archive[key] for key in archive.files}
    estimator_config = dict(config["estimator"])
    method = estimator_config.get("method")
    try:
        if method == "meanscore":
            estimator = MeanScore().set_state(state)
        elif method == "counting":
            from bayes_simrmf.predict import GroupAccuracy

            estimator = GroupAccuracy.from_config(estimator_config).set_state(state)
        else:
            estimator = SimRMF.from_config(estimator_config).set_state(state)
    except KeyError as error:
        raise ModelFormatError(
            f"{folder / 'state.npz'} lacks the array {error.args[0]!r} that a {method!r} model needs "
            f"(arrays present: {sorted(state)})"
        ) from None
    metrics = json.loads((folder / "metrics.json").read_text()) if (folder / "metrics.json").is_file() else None
    provenance = json.loads((folder / "provenance.json").read_text()) if (folder / "provenance.json").is_file() else {}
    return SavedModel(estimator, config, metrics, provenance, folder, notes)


def _check_files(folder: Path, config: dict) -> list[str]:
    """ModelFormatError unless the files beside config.json and state.npz are exactly those config.json records
    in ``files_sha256``, each with its recorded sha256, apart from OS and editor debris
    (:data:`bayes_simrmf.outputs.DEBRIS_PATTERNS`), which is ignored; the notes name what was ignored."""
    recorded = config.get("files_sha256")
    if not isinstance(recorded, dict):
        raise ModelFormatError(f"{folder / 'config.json'} lacks files_sha256, the hashes of split/ and metrics.json")
    files = {path.relative_to(folder): path for path in sorted(folder.rglob("*")) if path.is_file()}
    debris = [relative.as_posix() for relative in files if is_debris(relative)]
    present = {relative.as_posix(): path for relative, path in files.items()
               if relative.as_posix() not in REQUIRED_FILES and not is_debris(relative)}
    missing = sorted(set(recorded) - set(present))
    if missing:
        raise ModelFormatError(f"{folder} is incomplete: {', '.join(missing)} recorded in config.json is missing")
    added = sorted(set(present) - set(recorded))
    if added:
        raise ModelFormatError(f"{folder} holds {', '.join(added)}, not recorded in config.json: "
                               "a file was added after saving")
    for name, path in present.items():
        actual = _file_sha256(path)
        if actual != recorded[name]:
            raise ModelFormatError(
                f"{path} does not match the sha256 recorded in config.json (recorded {str(recorded[name])[:16]}..., "
                f"found {actual[:16]}...): the file changed or is corrupt"
            )
    if debris:
        return [f"ignored {len(debris)} file(s) that an operating system or editor left in {folder}: "
                f"{', '.join(debris[:5])}"]
    return []
