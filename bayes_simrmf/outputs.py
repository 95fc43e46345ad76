"""What the package may write over: model folders it wrote, files the user allowed, never anything else.

Rules shared by every command that writes (``fit --out``, ``tune --out``, ``route`` / ``predict`` /
``next-questions --out``, ``data pull --out``):

- the working directory, any folder above it and the file-system root are never a target;
- an existing model folder is replaced only with ``overwrite`` and only if it is a model folder this package
  wrote (a ``config.json`` with a format version and hashes, and nothing but the files a save writes);
  any other folder is refused, whatever the flags;
- an existing file is replaced only with ``overwrite``;
- writes go to a temporary name beside the target (registered with :mod:`bayes_simrmf.interrupts`) and are
  renamed into place, so a target is whole or absent; staging left by a killed process of this package is
  removed on the next write to the same target.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from bayes_simrmf import interrupts
from bayes_simrmf.errors import ConfigError

#: What a model folder holds (see bayes_simrmf.saving).
MODEL_ENTRIES = frozenset({"config.json", "state.npz", "split", "metrics.json", "provenance.json"})
_STAGING_TAGS = ("staging", "old", "partial")
# Staging names before they carried a tag: tempfile.mkdtemp's ".NAME." + 8 characters.
_LEGACY_STAGING = r"[a-z0-9_]{8}"


def refuse_unsafe_target(path: str | os.PathLike, option: str = "--out") -> Path:
    """``path`` as a Path; ConfigError if it is the working directory, a folder above it or the root."""
    path = Path(path)
    resolved = path.expanduser().resolve()
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents or resolved == Path(resolved.anchor):
        where = "the working directory" if resolved == cwd else f"a folder above the working directory ({resolved})"
        raise ConfigError(f"{option} {path} is {where}; give a new folder or file inside it, e.g. {option} models/NAME")
    return path


#: Files that operating systems and editors drop into folders: a model folder ignores them (load_model says so).
DEBRIS_PATTERNS = (".DS_Store", "._*", "Thumbs.db", "desktop.ini", "*~", ".*.swp", ".*.swo", "#*#")


def is_debris(relative: Path) -> bool:
    """Whether the path ``relative`` (inside a model folder) is OS or editor debris (:data:`DEBRIS_PATTERNS`, or
    inside ``.ipynb_checkpoints``)."""
    return (any(fnmatch.fnmatchcase(relative.name, pattern) for pattern in DEBRIS_PATTERNS)
            or ".ipynb_checkpoints" in relative.parts)


def foreign_entries(folder: Path) -> list[str]:
    """Entries of ``folder`` a model save would not have written, OS and editor debris aside (sorted; empty for a
    model folder)."""
    return sorted(entry.name for entry in folder.iterdir()
                  if entry.name not in MODEL_ENTRIES and not is_debris(Path(entry.name)))


def is_model_folder(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` is a model folder written by this package (any format version): a ``config.json``
    holding a format version, ``config_hash`` and ``state_sha256``, and no entry a save would not write."""
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir() or foreign_entries(folder):
        return False
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return (isinstance(config, dict) and isinstance(config.get("format_version"), int)
            and all(isinstance(config.get(key), str) for key in ("config_hash", "state_sha256")))


def check_writable(target: str | os.PathLike, option: str = "--out", needed_bytes: int = 0) -> Path:
    """ConfigError, before any work, unless ``target`` can be written: a probe file is created (and removed) in the
    nearest folder that exists at or above the folder ``target`` goes in (missing folders are created there), and
    its file system has ``needed_bytes`` free (with a margin of 1 MiB)."""
    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ConfigError(f"{option} {target}: {folder} is a file, so nothing can be written under it")
    probe = folder / f".{target.name}.probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        probe.write_bytes(b"")
    except OSError as error:
        raise ConfigError(f"{option} {target}: cannot write in {folder} ({error.strerror or error})") from None
    finally:
        probe.unlink(missing_ok=True)
    free = shutil.disk_usage(folder).free
    if free < needed_bytes + 2**20:
        raise ConfigError(f"{option} {target}: the output needs about {_megabytes(needed_bytes)} and {folder} has "
                          f"{_megabytes(free)} free; free some space or choose another {option}")
    return target


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


def os_error_message(error: OSError, what: str) -> str:
    """One line for an OSError met while writing ``what``: the reason and the path, no temporary names."""
    return f"cannot write {what}: {error.strerror or error}"


def check_model_target(folder: str | os.PathLike, overwrite: bool, option: str = "--out") -> Path:
    """ConfigError unless ``folder`` may receive a model: absent, or (with ``overwrite``) an empty folder or a
    model folder this package wrote."""
    folder = refuse_unsafe_target(folder, option)
    if not folder.exists() and not folder.is_symlink():
        return check_writable(folder, option)
    if folder.is_symlink() or not folder.is_dir():
        kind = "a symbolic link" if folder.is_symlink() else "a file"
        raise ConfigError(f"{option} {folder} is {kind}, not a model folder; choose another {option}")
    if not overwrite:
        raise ConfigError(f"{folder} already exists; choose another {option} or pass --overwrite, which replaces a "
                          "model folder written by bayes-simrmf")
    entries = sorted(entry.name for entry in folder.iterdir())
    if entries and not is_model_folder(folder):
        foreign = foreign_entries(folder)
        held = f"it holds {', '.join(foreign[:5])}{' ...' if len(foreign) > 5 else ''}" if foreign else \
            "its config.json is not one a model save writes"
        raise ConfigError(f"{option} {folder} is not a model folder written by bayes-simrmf ({held}); --overwrite "
                          f"replaces only model folders: choose another {option} or remove it yourself")
    return check_writable(folder, option)


def check_file_target(path: str | os.PathLike, overwrite: bool, option: str = "--out") -> Path:
    """ConfigError unless ``path`` may be written: absent, or an existing file with ``overwrite``."""
    path = refuse_unsafe_target(path, option)
    if path.is_dir():
        raise ConfigError(f"{option} {path} is a folder; give a file name")
    if path.exists() and not overwrite:
        raise ConfigError(f"{option} {path} already exists; choose another {option} or pass --overwrite to replace it")
    return check_writable(path, option)


def staging_name(target: Path, tag: str) -> Path:
    """A temporary name beside ``target``: ``.NAME.TAG-PID-RANDOM`` (see :func:`remove_stale_staging`)."""
    return target.with_name(f".{target.name}.{tag}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_stale(entry: Path, name: str) -> bool:
    """Whether ``entry`` is staging of ``name`` left by a process of this package that no longer runs."""
    tags = "|".join(_STAGING_TAGS)
    match = re.fullmatch(rf"\.{re.escape(name)}\.(?:{tags})-(\d+)-[0-9a-f]{{8}}", entry.name)
    if match:
        return not _pid_alive(int(match.group(1)))
    if re.fullmatch(rf"\.{re.escape(name)}\.{_LEGACY_STAGING}", entry.name) and entry.is_dir() \
            and not entry.is_symlink():
        return not foreign_entries(entry)  # an older version's staging: only what a save writes
    return False


def remove_stale_staging(target: Path) -> list[str]:
    """Remove staging of ``target`` left behind by a killed process of this package; the names removed."""
    parent = target.parent
    if not parent.is_dir():
        return []
    removed = []
    for entry in parent.glob(f".{glob_escape(target.name)}.*"):
        if _is_stale(entry, target.name):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry.name)
    return removed


def glob_escape(name: str) -> str:
    """``name`` with glob's special characters escaped."""
    return re.sub(r"([*?\[])", r"[\1]", name)


def write_file(path: str | os.PathLike, write: Callable[[Path], None], *, overwrite: bool,
               option: str = "--out") -> Path:
    """Write a file through ``write(temporary_path)`` and rename it to ``path`` (checked by
    :func:`check_file_target`); the temporary file is removed on an error or an interrupt."""
    path = check_file_target(path, overwrite, option)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_staging(path)
        with interrupts.written_into_place(staging_name(path, "partial"), path) as temporary:
            write(temporary)
    except OSError as error:
        raise ConfigError(f"{option} {path}: {os_error_message(error, 'the file')}") from None
    return path
