"""Bad inputs the command line must answer in one plain line, naming CLI options, and never silently: texts
stored as bytes, a fit whose loss diverges, empty test splits, tiny validation sets, texts longer than the
embedding model reads, and messages that used to name Python functions."""

from __future__ import annotations

import re
import sys

import click
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bayes_simrmf.cli import main
from bayes_simrmf.data import load_dataset
from bayes_simrmf.errors import DataError
from bayes_simrmf.inference.stopping import divergence

TINY = ["--T", "10", "--n-known-llms", "20", "--n-known-items", "30", "--dim", "2", "--quiet", "--no-baseline"]


def _write_dataset(folder, texts) -> None:
    rng = np.random.default_rng(0)
    llms, items = [f"m{i}" for i in range(30)], [f"q{j}" for j in range(len(texts))]
    folder.mkdir(exist_ok=True)
    pd.DataFrame([(m, q, int(rng.random() < 0.5)) for m in llms for q in items],
                 columns=["llm", "item", "correct"]).to_parquet(folder / "responses.parquet")
    pd.DataFrame({"llm": llms}).to_parquet(folder / "llms.parquet")
    pd.DataFrame({"item": items, "text": texts}).to_parquet(folder / "items.parquet")


def test_texts_stored_as_invalid_utf8_bytes_are_refused_naming_rows_and_items(tmp_path):
    texts = [f"question {j}".encode() for j in range(40)]
    texts[3], texts[17] = b"\xff\xfe broken", b"caf\xe9"
    _write_dataset(tmp_path / "bad", texts)
    result = CliRunner().invoke(main, ["fit", "--data", str(tmp_path / "bad"), "--method", "simrmf", *TINY])
    assert result.exit_code == 1 and result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1 and "not UTF-8" in line and "rows 3, 17" in line and "'q3'" in line


def test_texts_stored_as_utf8_bytes_are_decoded(tmp_path):
    _write_dataset(tmp_path / "ok", [f"café {j}".encode() for j in range(40)])
    texts = load_dataset(tmp_path / "ok").items["text"]
    assert texts.map(type).eq(str).all() and texts.iloc[0] == "café 0"


def test_an_items_file_with_bad_bytes_is_refused_by_predict_and_route():
    from bayes_simrmf.data.tables import decode_text_column

    frame = pd.DataFrame({"item": ["a", "b"], "text": [b"fine", b"\x80"]})
    with pytest.raises(DataError, match=r"--items f.csv: column 'text' holds bytes.*rows 1 \(items 'b'\)"):
        decode_text_column(frame, "text", "--items f.csv")


def test_divergence_is_told_from_a_fit_that_went_down_or_stayed():
    assert divergence(np.array([5057.0, 6e15, 4e14, 5e7])) is not None
    assert "nan" in divergence(np.array([10.0, np.nan]))
    assert divergence(np.array([5057.0, 4000.0, 3800.0])) is None
    assert divergence(np.array([100.0, 150.0, 180.0])) is None  # worse, but not far: a note elsewhere, not a refusal
    assert divergence(np.array([-50.0, 20.0])) is not None  # negative losses: rose by more than their size
    assert divergence(np.array([-50.0, -10.0])) is None
    assert divergence(np.array([])) is None


def test_a_diverged_fit_is_not_saved_unless_asked(tmp_path):
    runner = CliRunner()
    arguments = ["fit", "--method", "mf", *TINY, "--max-steps", "50", "--learning-rate", "1e6", "--n-test-pairs", "200"]
    refused = runner.invoke(main, [*arguments, "--out", str(tmp_path / "m")])
    assert refused.exit_code == 1, refused.output
    assert "diverged" in refused.stderr and "--learning-rate" in refused.stderr and "--save-diverged" in refused.stderr
    assert not (tmp_path / "m").exists()
    kept = runner.invoke(main, [*arguments, "--save-diverged", "--out", str(tmp_path / "m")])
    assert kept.exit_code == 0, kept.output
    assert "warning: the fit diverged" in kept.stderr and (tmp_path / "m" / "state.npz").is_file()


def test_empty_test_splits_are_warned_in_fit_and_evaluate(tmp_path):
    runner = CliRunner()
    fitted = runner.invoke(main, ["fit", "--method", "meanscore", *TINY, "--n-test-pairs", "0", "--out",
                                  str(tmp_path / "m")])
    assert fitted.exit_code == 0, fitted.output
    assert "test splits A, B, C, D have no pairs (--n-test-pairs 0" in fitted.stderr
    evaluated = runner.invoke(main, ["evaluate", str(tmp_path / "m")])
    assert evaluated.exit_code == 0 and "have no pairs" in evaluated.stderr


def test_tuning_on_a_tiny_validation_set_is_warned_in_cli_wording():
    from bayes_simrmf.cli.common import _cli_wording
    from bayes_simrmf.evaluate.tuning import grid_search
    from bayes_simrmf.predict import MeanScore

    rng = np.random.default_rng(0)
    llm = np.repeat([f"m{i}" for i in range(5)], 4)
    item = np.tile([f"q{j}" for j in range(4)], 5)
    lines: list[str] = []
    grid_search(lambda **options: MeanScore(), {"unused": [1]}, llm, item, rng.integers(0, 2, 20), log=lines.append)
    warning = next(line for line in lines if line.startswith("warning:"))
    assert int(re.search(r"only (\d+) pairs", warning).group(1)) == 4  # 20 pairs, 10% held out rounds up
    with click.Context(click.Command("tune", params=[click.Option(["--share"], type=float)])):
        assert "--share 0.1" in _cli_wording(warning)


def test_texts_longer_than_the_embedding_model_reads_are_reported(tmp_path):
    from bayes_simrmf.similarity import embed_texts

    lines: list[str] = []
    vectors = embed_texts(["a short question", "word " * 2000, "x"], cache_dir=tmp_path, progress=False,
                          log=lines.append)
    assert vectors.shape[0] == 3
    assert len(lines) == 1 and "1 of 3 question texts" in lines[0] and "truncated to 256 tokens" in lines[0]


def test_messages_reachable_from_the_cli_name_no_python_functions(tmp_path):
    from bayes_simrmf.similarity.precomputed_embeddings import load_precomputed_embeddings

    (tmp_path / "file").write_text("not a folder")
    result = CliRunner().invoke(main, ["fit", "--data", str(tmp_path / "file"), "--method", "mf", *TINY])
    assert result.exit_code == 1 and "load_dataset" not in result.stderr and "is a file" in result.stderr
    path = tmp_path / "emb.parquet"
    pd.DataFrame({"item": ["q"], "text_sha256_16": ["0" * 16], "embedding": [np.ones(3, np.float32)]}).to_parquet(path)
    with pytest.raises(DataError) as stale:
        load_precomputed_embeddings(path, ["q"], texts=["a text of another hash"])
    assert "embed_texts" not in str(stale.value) and "--embeddings" in str(stale.value)


def test_the_bad_inputs_doc_is_the_output_of_its_script_for_every_case(monkeypatch):
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("bad_inputs", root / "experiments" / "bad_inputs.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bad_inputs", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    doc = (root / "docs" / "bad_inputs.md").read_text()
    assert "python experiments/bad_inputs.py --out docs/bad_inputs.md" in doc
    rows = [line for line in doc.splitlines() if re.match(r"\| \d+ \|", line)]
    assert len(rows) == len(module.cases())
    assert not any("TRACEBACK" in row or "| 139 |" in row for row in rows)


def test_python_names_in_messages_become_the_options_of_the_command(tmp_path):
    from click.testing import CliRunner

    from bayes_simrmf.cli import main
    from bayes_simrmf.cli.common import _cli_wording

    result = CliRunner().invoke(main, ["fit", "--n-known-llms", "100000", "--T", "20", "--out", str(tmp_path / "m")])
    assert result.exit_code == 1 and "error: --n-known-llms=100000 exceeds the" in result.output
    params = [click.Option(["--n-known-llms"], type=int), click.Option(["--min-answer-share"], type=float)]
    with click.Context(click.Command("fit", params=params)):
        message = _cli_wording("n_known_llms=900 exceeds the 800 eligible llms; lower n_known_llms or min_answer_share")
    assert message == ("--n-known-llms=900 exceeds the 800 eligible llms; lower --n-known-llms or --min-answer-share")
    with click.Context(click.Command("fit", params=params)):  # a word that merely contains the name is left
        assert _cli_wording("my_n_known_llms_x stays") == "my_n_known_llms_x stays"
    with click.Context(click.Command("next-questions", params=[click.Option(["--k"], type=int)])):
        assert _cli_wording("k must be a whole number >= 1, got 0") == "--k must be a whole number >= 1, got 0"
        assert _cli_wording("a k must be") == "a k must be"  # only a message that starts with the name


def test_min_answer_share_is_an_option_with_its_range():
    from click.testing import CliRunner

    from bayes_simrmf.cli import main

    result = CliRunner().invoke(main, ["fit", "--min-answer-share", "1.5"])
    assert result.exit_code == 2 and "--min-answer-share" in result.output and "0<x<=1" in result.output
