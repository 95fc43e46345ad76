"""Package-wide conventions: the library is silent unless asked (every ``log`` parameter defaults to None;
the CLI passes ``click.echo`` itself), and docs/architecture.md names every module."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import bayes_simrmf
from bayes_simrmf.log import sink, silent
from bayes_simrmf.splits import Protocol
from bayes_simrmf.synthetic import make_synthetic_dataset


def _callables():
    for info in pkgutil.walk_packages(bayes_simrmf.__path__, prefix="bayes_simrmf."):
        if info.name.startswith("bayes_simrmf.cli"):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if getattr(value, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(value):
                yield f"{info.name}.{name}", value
            elif inspect.isclass(value):
                for attr, member in vars(value).items():
                    if inspect.isfunction(member):
                        yield f"{info.name}.{name}.{attr}", member


def test_every_log_parameter_of_the_library_defaults_to_silence():
    seen, loud = [], []
    for name, function in _callables():
        parameter = inspect.signature(function).parameters.get("log")
        if parameter is None or parameter.default is inspect.Parameter.empty:
            continue
        seen.append(name)
        if parameter.default is not None:
            loud.append(f"{name} (log={parameter.default!r})")
    assert len(seen) >= 5, seen  # the data, hub, split, side-information and tuning entry points
    assert not loud, f"library functions that print unless told not to: {loud}"


def test_a_split_with_default_options_prints_nothing(capsys):
    dataset, _ = make_synthetic_dataset(n_llms=30, n_items=40, seed_value=0)
    lines: list[str] = []
    Protocol(n_known_llms=20, n_known_items=30, T=10, seed=0).split(dataset)
    assert capsys.readouterr().out == ""
    Protocol(n_known_llms=20, n_known_items=30, T=10, seed=0).split(dataset, log=lines.append)
    assert lines and capsys.readouterr().out == ""
    assert sink(None) is silent and sink(lines.append) == lines.append


def test_the_architecture_doc_names_every_module_of_the_package():
    import re
    from pathlib import Path

    root = Path(bayes_simrmf.__file__).parent
    text = (root.parent / "docs" / "architecture.md").read_text()
    words = set(re.findall(r"[a-z_]+", text))
    modules = {path.stem for path in root.rglob("*.py") if path.stem != "__init__"}
    assert not modules - words, f"docs/architecture.md does not mention: {sorted(modules - words)}"
