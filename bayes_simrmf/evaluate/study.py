"""Studies that can be rerun and trusted: one cell store with provenance, one paired interval.

A study (Table 2, calibration, adaptive testing, ...) is a grid of independent cells, one per
dataset × T × seed × method (or the study's own key parts). Each cell is one JSON file, written
whole or not at all, that carries a ``provenance`` block:

* ``commit`` (HEAD when it ran) and ``dirty`` (whether the code it depends on had uncommitted changes);
* ``code_tree``: sha256 of the ``git ls-tree`` listing of the code the study depends on: its scripts
  and every package module they can import (:func:`import_closure`, read from the source, lazy and
  in-function imports included), never ``experiments/results``. Commits that touch only tests, docs,
  results or modules the study cannot reach (the CLI, the hub client) leave it unchanged; any change
  of code it runs changes it;
* ``package_version``, library versions, ``config_hash`` (the cell's method spec, dataset options,
  T, seed and tuning settings) and ``data_hash`` (the dataset's fingerprint).

Aggregation (:func:`check_provenance`) refuses cells from different code, dirty cells and cells
without provenance unless asked; when asked, the tables mark such cells. A cell from other code is
brought to the current code only by re-computing it (:func:`max_difference` says whether it moved).
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bayes_simrmf import interrupts
from bayes_simrmf.errors import BayesSimRMFError

#: The repository root (the package's parent); git is asked about it.
REPO_ROOT = Path(__file__).resolve().parents[2]
#: The package: what a study depends on when it names no import closure.
PACKAGE_PATHS = ("bayes_simrmf",)
#: The study framework's own results folder, never part of a code hash.
RESULTS_PATH = "experiments/results"


class StudyError(BayesSimRMFError):
    """Cells that cannot be aggregated or written as asked (mixed code, dirty tree, no provenance)."""


def _git(*args: str, root: Path = REPO_ROOT) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout


_MODULE_NAME = re.compile(r"^bayes_simrmf(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def _module_file(name: str, root: Path) -> Path | None:
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def import_closure(scripts: Sequence[str], root: Path = REPO_ROOT) -> list[str]:
    """Paths (relative to ``root``) of ``scripts`` and of every ``bayes_simrmf`` module they can import,
    followed through the package: ``import``/``from`` statements anywhere in a file (functions
    included) and strings naming a module (the package's lazy-import tables), with each module's
    parent packages. An over-approximation of what a run executes, never an under-approximation
    of the package code it reaches by import."""
    seen: set[Path] = set()
    queue = [root / script for script in scripts]
    while queue:
        path = queue.pop()
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        if path.suffix != ".py":
            continue
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _MODULE_NAME.match(node.value):
                names.add(node.value)
        for name in names:
            if not name.startswith("bayes_simrmf"):
                continue
            parts = name.split(".")
            for end in range(1, len(parts) + 1):
                module = _module_file(".".join(parts[:end]), root)
                if module is not None:
                    queue.append(module)
    return sorted(path.relative_to(root).as_posix() for path in seen)


def code_state(paths: Sequence[str] = (), root: Path = REPO_ROOT, *, whole_package: bool = True) -> dict:
    """``{"commit", "code_tree", "dirty", "dirty_paths"}`` of ``paths`` (relative to ``root``), plus the
    whole package unless ``whole_package`` is off (then pass :func:`import_closure`'s paths). The
    install metadata is left out: the provenance block records the library versions themselves.
    Outside a git checkout every field is None (``dirty`` too: unknown)."""
    tracked = sorted(set(PACKAGE_PATHS if whole_package else ()) | set(paths))
    commit = _git("rev-parse", "HEAD", root=root)
    if commit is None:
        return {"commit": None, "code_tree": None, "dirty": None, "dirty_paths": None}
    listing = _git("ls-tree", "-r", "HEAD", "--", *tracked, root=root) or ""
    lines = [line for line in listing.splitlines() if not line.split("\t", 1)[-1].startswith(RESULTS_PATH)]
    status = _git("status", "--porcelain", "--untracked-files=all", "--", *tracked,
                  f":(exclude){RESULTS_PATH}", root=root) or ""
    dirty_paths = sorted(line[3:] for line in status.splitlines() if line.strip())
    return {
        "commit": commit.strip(),
        "code_tree": hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16],
        "dirty": bool(dirty_paths),
        "dirty_paths": dirty_paths,
    }


def _check_same_checkout(cells: Path, repo: Path) -> None:
    """Refuse a cell store inside another git checkout than the one the package is imported from: the provenance
    (commit, code tree) is read from the package's checkout, so a study started in a second worktree while an
    editable install points at the first would record code it did not run."""
    probe = next((folder for folder in (cells, *cells.parents) if folder.exists()), None)
    top = None if probe is None else _git("rev-parse", "--show-toplevel", root=probe)
    if top is not None and Path(top.strip()).resolve() != repo.resolve():
        raise StudyError(
            f"this study's cells are in the checkout {top.strip()}, but bayes_simrmf is imported from {repo}: its "
            f"cells would record that checkout's code; run the study from {repo}, or install the package from "
            f"{top.strip()} (pip install -e .)")


def config_hash(payload) -> str:
    """sha256 (hex, 16 chars) of the canonical JSON of ``payload``."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries a result depends on."""
    import jax
    import numpyro

    from bayes_simrmf import __version__

    return {"bayes_simrmf": __version__, "python": sys.version.split()[0], "jax": jax.__version__,
            "numpyro": numpyro.__version__, "numpy": np.__version__}


def provenance(code: dict, *, config: dict, data_hash: str | None) -> dict:
    """The provenance block of one cell: ``code`` (from :func:`code_state`, taken once per run), the
    hash of the cell's ``config`` and the dataset's fingerprint."""
    versions = library_versions()
    return {
        "commit": code["commit"],
        "dirty": code["dirty"],
        "code_tree": code["code_tree"],
        "package_version": versions["bayes_simrmf"],
        "versions": versions,
        "config_hash": config_hash(config),
        "data_hash": data_hash,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


class CellStore:
    """A folder of JSON cells, one file per key: ``root/part/part/.../last.json``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, *parts: object) -> Path:
        *folders, name = (str(part) for part in parts)
        return self.root.joinpath(*folders, f"{name}.json")

    def has(self, *parts: object) -> bool:
        return self.path(*parts).is_file()

    def read(self, *parts: object) -> dict:
        return read_cell(self.path(*parts))

    def write(self, payload: dict, *parts: object) -> Path:
        """Write ``payload`` whole (a temporary file renamed into place, removed on error or interrupt)."""
        path = self.path(*parts)
        write_json(path, payload)
        return path

    def cells(self, pattern: str = "**/*.json") -> Iterator[tuple[Path, dict]]:
        for path in sorted(self.root.glob(pattern)):
            yield path, read_cell(path)


class StudyCells:
    """One study's cells at the code it runs now: resume, provenance and re-computation in one place.

    :meth:`get` reads a cell that exists (a large study fills over several sessions) and computes one
    that is missing; with ``rerun_stale`` it also recomputes a cell from other code, another config, a
    dirty tree or without provenance, and records how far its ``compare`` key moved. Every cell it
    writes carries a :func:`provenance` block. The code state is taken once, from the import closure of
    ``code_paths`` (relative to ``repo``); a dirty tree is refused unless ``allow_dirty`` (a trial run:
    its cells say so). ``read_only`` (rebuilding tables) computes nothing: :meth:`get` gives the stored
    cell or None."""

    @classmethod
    def from_args(cls, root: str | Path, code_paths: Sequence[str], args, log=print) -> "StudyCells":
        """The cells of a driver whose parser came from :func:`study_parser`."""
        return cls(root, code_paths, rerun_stale=args.rerun_stale, allow_dirty=args.allow_dirty,
                   read_only=args.aggregate_only, log=log)

    def __init__(self, root: str | Path, code_paths: Sequence[str], *, rerun_stale: bool = False,
                 allow_dirty: bool = False, read_only: bool = False, log=None, repo: Path = REPO_ROOT) -> None:
        self.store = CellStore(root)
        self.read_only = read_only
        _check_same_checkout(Path(root), repo)
        self.code = code_state(import_closure(code_paths, root=repo), root=repo, whole_package=False)
        if self.code["dirty"] and not (allow_dirty or read_only):
            raise StudyError(f"the code has uncommitted changes ({', '.join(self.code['dirty_paths'][:5])}): commit "
                             "them so every cell can be traced to a commit, or pass --allow-dirty for a trial run")
        self.rerun_stale = rerun_stale
        self.log = log or (lambda message: None)

    def is_stale(self, cell: dict, config: dict) -> bool:
        """A cell from other code, another config, a dirty tree, or without provenance."""
        block = cell.get("provenance") or {}
        return (block.get("code_tree") != self.code["code_tree"] or block.get("config_hash") != config_hash(config)
                or block.get("dirty") is not False)

    def needs(self, parts: Sequence[object], config: dict) -> bool:
        """Whether :meth:`get` would compute the cell ``parts``."""
        if self.read_only:
            return False
        if not self.store.has(*parts):
            return True
        return self.rerun_stale and self.is_stale(self.store.read(*parts), config)

    def get(self, parts: Sequence[object], config: dict, compute, *, data_hash, compare: str = "scores",
            name: str | None = None) -> dict | None:
        """The cell ``parts``: read, or ``compute()`` (a JSON-like dict) stamped with its provenance and
        written whole. ``data_hash`` is the dataset's fingerprint or a callable giving it (called only when
        the cell is computed). A recomputed cell records ``recomputed``: the commit it replaced and the
        largest difference of its ``compare`` value (logged under ``name``, by default the cell's path)."""
        if not self.needs(parts, config):
            return self.store.read(*parts) if self.store.has(*parts) else None
        previous = self.store.read(*parts) if self.store.has(*parts) else None
        cell = json.loads(json.dumps(compute(), default=_plain))
        cell["provenance"] = provenance(self.code, config=config,
                                        data_hash=data_hash() if callable(data_hash) else data_hash)
        if previous is not None:
            moved = max_difference(previous.get(compare), cell.get(compare))
            cell["recomputed"] = {"from_commit": (previous.get("provenance") or {}).get("commit"),
                                  "max_score_difference": moved}
            self.log(f"{name or '/'.join(map(str, parts))}: recomputed; {compare} moved by at most {moved:.3g}")
        self.store.write(cell, *parts)
        return cell

    def write(self, payload: dict, parts: Sequence[object], config: dict, *, data_hash: str | None) -> dict:
        """Write ``payload`` (stamped with its provenance) as the cell ``parts`` unconditionally: a
        by-product of a cell (e.g. a split's counts), rewritten whenever its cells are computed."""
        payload = {**payload, "provenance": provenance(self.code, config=config, data_hash=data_hash)}
        self.store.write(payload, *parts)
        return payload

    def report(self, pattern: str = "**/*.json", *, allow_mixed: bool = False) -> "ProvenanceReport":
        """:func:`check_provenance` over the cells under the store matching ``pattern``."""
        return check_provenance(((str(path.relative_to(self.store.root)), cell) for path, cell in self.store.cells(pattern)),
                                allow_mixed=allow_mixed)


def study_parser(description: str, config: Path | None = None):
    """An ``argparse`` parser with the options every study driver shares: ``--config`` (default
    ``config``), ``--rerun-stale``, ``--allow-dirty``, ``--allow-mixed`` and ``--aggregate-only``."""
    import argparse

    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=config, required=config is None, help="the study's JSON config")
    parser.add_argument("--rerun-stale", action="store_true", help="recompute cells from other code or another config "
                        "(each records how far it moved)")
    parser.add_argument("--allow-dirty", action="store_true", help="run with uncommitted code changes (a trial: its "
                        "cells say so and aggregation refuses them unless --allow-mixed)")
    parser.add_argument("--allow-mixed", action="store_true", help="aggregate cells of different code, dirty or "
                        "without provenance, marked in the tables")
    parser.add_argument("--aggregate-only", action="store_true", help="rebuild the tables from the cells on disk")
    return parser


def parse_study(parser, script: str) -> tuple:
    """``(args, config, command)``: the parsed options, the JSON config ``--config`` names, and the command line
    (``python <script> ...``, less ``--aggregate-only``: the command that computes the cells) that the reports quote.

    Raises:
        StudyError: naming the config file when it is missing or not valid JSON.
    """
    import shlex

    args = parser.parse_args()
    try:
        config = json.loads(Path(args.config).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise StudyError(f"cannot read the study config {args.config}: {error}") from error
    return args, config, shlex.join(["python", script, *(arg for arg in sys.argv[1:] if arg != "--aggregate-only")])


def run_driver(name: str, main) -> None:
    """Run a study driver's ``main()``, turning the package's errors into a one-line exit message."""
    try:
        main()
    except BayesSimRMFError as error:
        raise SystemExit(f"{name}: {error}") from None


def write_json(path: str | Path, payload: dict) -> None:
    """Write ``payload`` as indented JSON to ``path``, whole or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(payload, indent=1, default=_plain)
    with interrupts.written_into_place(path.with_name(f".{path.name}.partial"), path) as temporary:
        temporary.write_text(text)


def read_cell(path: str | Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise StudyError(f"cannot read the cell {path}: {error}") from error


def _plain(value):
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return float(value)


@dataclass
class ProvenanceReport:
    """What :func:`check_provenance` found: the code tree the cells agree on (the most common one),
    and the cells that differ from it, are dirty, or have no provenance."""

    code_tree: str | None
    commits: list[str]
    n_cells: int
    other_code: list[str] = field(default_factory=list)
    dirty: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.other_code or self.dirty or self.missing)

    def mark(self, name: str) -> str:
        """A table marker for the cell ``name``: ``""`` when it is from the report's code, clean."""
        marks = []
        if name in self.missing:
            marks.append("no provenance")
        if name in self.other_code:
            marks.append("other code")
        if name in self.dirty:
            marks.append("dirty")
        return ", ".join(marks)

    def header(self) -> list[str]:
        """Markdown lines for a results file: where the cells ran."""
        commits = ", ".join(f"`{commit[:10]}`" for commit in self.commits) or "unknown"
        lines = [f"Provenance: {self.n_cells} cells, code tree `{self.code_tree}` (commit{'s' if len(self.commits) > 1 else ''} "
                 f"{commits}; a commit that changes no code the study depends on keeps the code tree)."]
        if not self.clean:
            lines.append(f"**Mixed provenance**: {len(self.other_code)} cells from other code, {len(self.dirty)} from a "
                         f"dirty tree, {len(self.missing)} without provenance; they are marked † in the tables.")
        return lines


def check_provenance(cells: Iterable[tuple[str, dict]], *, allow_mixed: bool = False) -> ProvenanceReport:
    """Check that the cells ``(name, payload)`` ran on one code tree from a clean checkout.

    Raises:
        StudyError: naming the cells that differ, unless ``allow_mixed`` (then the report lists them).
    """
    cells = list(cells)
    trees = Counter(cell.get("provenance", {}).get("code_tree") for _, cell in cells if cell.get("provenance"))
    code_tree = trees.most_common(1)[0][0] if trees else None
    report = ProvenanceReport(code_tree=code_tree, commits=[], n_cells=len(cells))
    commits = []
    for name, cell in cells:
        block = cell.get("provenance")
        if not block:
            report.missing.append(name)
            continue
        if block.get("code_tree") != code_tree:
            report.other_code.append(name)
        elif block.get("commit") and block["commit"] not in commits:
            commits.append(block["commit"])
        if block.get("dirty") is not False:
            report.dirty.append(name)
    report.commits = commits
    if not report.clean and not allow_mixed:
        parts = []
        for label, names in (("without provenance", report.missing), ("from code other than " + str(code_tree), report.other_code),
                             ("from a dirty tree", report.dirty)):
            if names:
                parts.append(f"{len(names)} cells {label} (e.g. {', '.join(names[:3])})")
        raise StudyError("cells of mixed provenance: " + "; ".join(parts) + ". Re-run them at one commit "
                         "(--rerun-stale), or pass --allow-mixed to aggregate them marked †")
    return report


class Report:
    """A Markdown results file written as it is printed: a title, the command that made it, the code state and the
    machine, then whatever the study says (:meth:`say`), written with :meth:`write`."""

    def __init__(self, title: str, command: str, code: dict | None = None) -> None:
        from bayes_simrmf.machine import machine_line

        code = code_state() if code is None else code
        self.lines: list[str] = []
        self.say(f"# {title}")
        self.say()
        self.say(f"Command: `{command}`  ")
        self.say(f"Code: {code['commit']}{' (dirty)' if code['dirty'] else ''}  ")
        self.say(machine_line() + "  ")

    def say(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.append(text)

    def write(self, path: str | Path) -> None:
        Path(path).write_text("\n".join(self.lines) + "\n")


def paired_interval(diff: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean of paired differences and its two-sided t interval ``(mean, lower, upper)``; NaN bounds
    with fewer than two pairs."""
    from scipy import stats

    diff = np.asarray(diff, dtype=float)
    diff = diff[~np.isnan(diff)]
    if len(diff) == 0:
        return math.nan, math.nan, math.nan
    mean = float(diff.mean())
    if len(diff) < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff)))
    return mean, mean - half, mean + half


def max_difference(first, second) -> float:
    """Largest absolute difference between the numbers of two JSON-like values of the same shape
    (``inf`` where their shapes or non-numeric leaves differ)."""
    if isinstance(first, dict) and isinstance(second, dict):
        if set(first) != set(second):
            return math.inf
        return max((max_difference(first[key], second[key]) for key in first), default=0.0)
    if isinstance(first, list) and isinstance(second, list):
        if len(first) != len(second):
            return math.inf
        return max((max_difference(a, b) for a, b in zip(first, second)), default=0.0)
    numbers = (int, float)
    if isinstance(first, numbers) and isinstance(second, numbers) and not isinstance(first, bool):
        if math.isnan(first) and math.isnan(second):
            return 0.0
        return abs(float(first) - float(second))
    return 0.0 if first == second else math.inf
