"""`bayes-simrmf predict` and `next-questions` on real data: a new LLM described by leaderboard metadata, with and
without answers, in rounds; and their one-line errors."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bayes_simrmf.cli import main
from bayes_simrmf.data.locations import default_data_dir
from bayes_simrmf.saving import load_model

DATA = default_data_dir() / "openllm-v2-mmlupro-math"  # no error at import where ../shared is absent
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="needs ../shared/data/openllm-v2-mmlupro-math")


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="module")
def setup(runner, tmp_path_factory):
    """A small MF fit on mmlupro-math, and a new LLM: a test LLM's metadata and 40 of its answers under a new id."""
    folder = tmp_path_factory.mktemp("predict")
    model = folder / "model"
    result = runner.invoke(main, ["fit", "--data", str(DATA), "--method", "mf", "--n-known-llms", "120",
                                  "--n-known-items", "300", "--T", "60", "--dim", "3", "--max-steps", "400",
                                  "--n-test-pairs", "2000", "--quiet", "--out", str(model)])
    assert result.exit_code == 0, result.output
    saved = load_model(model)
    source = saved.split.new_llms[0]
    llms = pd.read_parquet(DATA / "llms.parquet")
    llms[llms.llm == source].assign(llm="me/new-llm").to_csv(folder / "new.csv", index=False)
    responses = pd.read_parquet(DATA / "responses.parquet")
    fitted = saved.estimator.items_[: saved.estimator.n_fitted_items_]
    mine = responses[(responses.llm == source) & responses.item.isin(fitted)]
    mine.head(40).assign(llm="me/new-llm")[["llm", "item", "correct"]].to_csv(folder / "answers.csv", index=False)
    return folder, model, mine


def _table(output: str, first: str) -> pd.DataFrame:
    lines = output.splitlines()
    start = next(index for index, line in enumerate(lines) if line.split()[:1] == [first])
    rows = [line.split() for line in lines[start + 1:] if line and not line.startswith(("...", "written", "Monte Carlo"))]
    return pd.DataFrame(rows, columns=lines[start].split())


def test_predict_a_new_llm_from_metadata_then_with_answers(runner, setup):
    folder, model, mine = setup
    before = runner.invoke(main, ["predict", "--model", str(model), "--llm", "me/new-llm",
                                  "--llms", str(folder / "new.csv")])
    assert before.exit_code == 0, before.output
    assert "new, folded in from leaderboard metadata and 0 answer(s)" in before.output
    row = _table(before.output, "benchmark").iloc[0]
    assert row["benchmark"] == "MMLU-Pro" and int(row["n_items"]) == 300 and int(row["n_answered"]) == 0
    # The Monte Carlo error of the figures is stated, and it shrinks with more draws.
    errors = {}
    for n_draws in (100, 1600):
        result = runner.invoke(main, ["predict", "--model", str(model), "--llm", "me/new-llm", "--llms",
                                      str(folder / "new.csv"), "--n-draws", str(n_draws)])
        found = re.search(r"Monte Carlo error \((\d+) draws, one standard error\): estimates ±([0-9.]+), interval ends "
                          r"±([0-9.]+) at most", result.output)
        assert found and int(found.group(1)) == n_draws, result.output
        errors[n_draws] = (float(found.group(2)), float(found.group(3)))
    assert 0 < errors[1600][0] < errors[100][0] / 2 and 0 < errors[1600][1] < errors[100][1] / 2, errors
    assert errors[100][1] < (float(row["upper"]) - float(row["lower"])) / 4
    out = folder / "after.csv"
    after = runner.invoke(main, ["predict", "--model", str(model), "--llm", "me/new-llm", "--llms",
                                 str(folder / "new.csv"), "--answers", str(folder / "answers.csv"), "--out", str(out)])
    assert after.exit_code == 0, after.output
    table = pd.read_csv(out)
    assert table.loc[0, "n_answered"] == 40 and table.loc[0, "lower"] <= table.loc[0, "accuracy"] <= table.loc[0, "upper"]
    width_before = float(row["upper"]) - float(row["lower"])
    assert table.loc[0, "upper"] - table.loc[0, "lower"] < width_before
    assert abs(table.loc[0, "accuracy"] - mine.correct.mean()) < 0.1


def test_predict_per_question_keeps_the_answers_given(runner, setup):
    folder, model, mine = setup
    out = folder / "items.parquet"
    result = runner.invoke(main, ["predict", "--model", str(model), "--llm", "me/other", "--by", "item",
                                  "--answers", str(folder / "answers.csv"), "--out", str(out)])
    assert result.exit_code == 1 and "no row has llm 'me/other'" in result.output
    answers = pd.read_csv(folder / "answers.csv").assign(llm="me/other")
    answers.to_csv(folder / "other.csv", index=False)
    result = runner.invoke(main, ["predict", "--model", str(model), "--llm", "me/other", "--by", "item",
                                  "--answers", str(folder / "other.csv"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "no metadata (prior: the fitted LLMs' population)" in result.output
    table = pd.read_parquet(out).set_index("item")
    answered = table.loc[answers.item]
    np.testing.assert_array_equal(answered["prob"], answers.correct)
    assert (answered["lower"] == answered["upper"]).all() and len(table) == 300
    assert table["prob"].between(0, 1).all() and (table["n_answered"].sum() == len(answers))


def test_next_questions_then_predict_in_rounds(runner, setup):
    folder, model, mine = setup
    out = folder / "next.csv"
    result = runner.invoke(main, ["next-questions", "--model", str(model), "--llm", "me/new-llm", "--llms",
                                  str(folder / "new.csv"), "--answers", str(folder / "answers.csv"), "--k", "12",
                                  "--out", str(out)])
    assert result.exit_code == 0, result.output
    chosen = pd.read_csv(out)
    answers = pd.read_csv(folder / "answers.csv")
    assert len(chosen) == 12 and chosen.item.is_unique and not set(chosen.item) & set(answers.item)
    assert (np.diff(chosen.sd_after) < 0).all()
    ran = mine[mine.item.isin(chosen.item)].assign(llm="me/new-llm")[["llm", "item", "correct"]]
    pd.concat([answers, ran]).to_csv(folder / "round2.csv", index=False)
    round2 = runner.invoke(main, ["predict", "--model", str(model), "--llm", "me/new-llm", "--llms",
                                  str(folder / "new.csv"), "--answers", str(folder / "round2.csv")])
    assert round2.exit_code == 0 and int(_table(round2.output, "benchmark").iloc[0]["n_answered"]) == 40 + len(ran)


def test_predict_errors_are_one_line_and_speak_cli(runner, setup, tmp_path):
    folder, model, mine = setup
    bad = pd.read_csv(folder / "answers.csv").assign(correct=2)
    bad.to_csv(tmp_path / "bad.csv", index=False)
    bad[["item"]].to_csv(tmp_path / "nollm.csv", index=False)
    known = load_model(model).estimator.llms_[0]
    cases = [
        (["--llm", "me/new-llm", "--answers", str(tmp_path / "bad.csv")], "correct must be 0 or 1; rows [0, 1, 2"),
        (["--llm", known, "--answers", str(folder / "answers.csv")], "no row has llm"),
        (["--llm", "me/new-llm", "--llms", str(tmp_path / "nollm.csv")], "needs an llm column"),
        (["--llm", "me/new-llm", "--level", "1.5"], "--level must be in (0, 1)"),
        (["--llm", "me/new-llm", "--out", str(tmp_path / "x.txt")], "must end in .csv or .parquet"),
    ]
    for arguments, message in cases:
        result = runner.invoke(main, ["predict", "--model", str(model), *arguments])
        assert result.exit_code == 1, (arguments, result.output)
        assert message in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
    known_answers = pd.read_csv(folder / "answers.csv").assign(llm=known)
    known_answers.to_csv(tmp_path / "known.csv", index=False)
    result = runner.invoke(main, ["predict", "--model", str(model), "--llm", known, "--answers",
                                  str(tmp_path / "known.csv")])
    assert result.exit_code == 1 and "is in the model" in result.output and "--answers is for" in result.output
    result = runner.invoke(main, ["next-questions", "--model", str(model), "--llm", known])
    assert result.exit_code == 1 and "fitted with the model" in result.output


def test_unusable_metadata_is_reported(runner, setup, tmp_path):
    folder, model, _ = setup
    garbage = pd.DataFrame({"llm": ["me/garbage"], "params_billions": ["lots"], "architecture": [None],
                            "model_type": ["???"], "base_model": ["me/garbage"], "is_merged": [None], "is_moe": [None],
                            "weight_type": [None], "has_chat_template": [None]})
    garbage.to_csv(tmp_path / "garbage.csv", index=False)
    result = runner.invoke(main, ["predict", "--model", str(model), "--llm", "me/garbage", "--llms",
                                  str(tmp_path / "garbage.csv")])
    assert result.exit_code == 0, result.output
    assert "warning: the metadata of me/garbage has no readable architecture, model_type or params_billions" in result.output


def test_side_information_warns_about_unusable_metadata_and_blank_texts():
    from bayes_simrmf.data import load_dataset
    from bayes_simrmf.data.dataset import Dataset
    from bayes_simrmf.similarity import build_side_information, side_information_warnings

    dataset = load_dataset(DATA)
    llms = dataset.llms.assign(architecture=None, model_type="???", params_billions=np.nan, base_model=None)
    items = dataset.items.assign(text=dataset.items["text"].where(np.arange(len(dataset.items)) >= 7, "  "))
    broken = Dataset(dataset.responses, items, llms, name="broken")
    lines: list[str] = []
    side = build_side_information(broken, broken.llm_ids()[:40], broken.item_ids()[:50], log=lines.append)
    warnings = side_information_warnings(side.report)
    assert warnings and all(line in lines for line in warnings)
    assert "LLM metadata is unusable for 40 of 40 LLMs" in warnings[0] and "carries no metadata" in warnings[0]
    assert any("lineage part" in line for line in warnings) and any("7 question text(s) are blank" in line
                                                                    for line in warnings)
    clean = build_side_information(dataset, dataset.llm_ids(), dataset.item_ids()[:50])
    assert side_information_warnings(clean.report) == []


def test_a_new_llm_is_looked_up_by_id_in_a_leaderboard_contents_table(runner, setup):
    contents = default_data_dir() / "leaderboard-contents" / "llms.parquet"
    if not contents.is_file():
        pytest.skip(f"{contents} is absent")
    folder, model, _ = setup
    table = pd.read_parquet(contents)
    held = set(load_model(model).estimator.llms_)
    llm = next(name for name in table.llm if name not in held and isinstance(name, str))
    result = runner.invoke(main, ["predict", "--model", str(model), "--llm", llm, "--llms", str(contents)])
    assert result.exit_code == 0, result.output
    assert f"{llm}: new, folded in from leaderboard metadata" in result.output
    row = _table(result.output, "benchmark").iloc[0]
    assert 0 <= float(row["lower"]) <= float(row["accuracy"]) <= float(row["upper"]) <= 1


def test_predict_plots_the_intervals_and_the_path_over_rounds(runner, setup, tmp_path):
    folder, model, _ = setup
    answers = pd.read_csv(folder / "answers.csv")
    answers.assign(round=[1] * 10 + [2] * 30).to_csv(tmp_path / "rounds.csv", index=False)
    plot = tmp_path / "new.png"
    args = ["predict", "--model", str(model), "--llm", "me/new-llm", "--llms", str(folder / "new.csv"), "--answers",
            str(tmp_path / "rounds.csv"), "--n-draws", "100", "--plot", str(plot)]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert f"plot written to {plot}" in result.output
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    height, width = matplotlib.image.imread(plot).shape[:2]
    assert width > 1.5 * 600  # two panels: the intervals and the three rounds (0, 1, 2)
    again = runner.invoke(main, args)  # an existing plot is kept without --overwrite
    assert again.exit_code == 1 and "exists" in again.output
    bad = runner.invoke(main, [*args[:-1], str(tmp_path / "new.jpg")])
    assert bad.exit_code == 1 and ".png, .pdf, .svg" in bad.output
    per_item = runner.invoke(main, [*args[:-1], str(tmp_path / "x.png"), "--by", "item"])
    assert per_item.exit_code == 1 and "--by benchmark" in per_item.output
    answers.assign(round=0).to_csv(tmp_path / "zero.csv", index=False)
    zero = runner.invoke(main, [*args[:7], "--answers", str(tmp_path / "zero.csv")])
    assert zero.exit_code == 1 and "round must be a whole number >= 1" in zero.output


def test_two_conflicting_metadata_rows_for_the_new_llm_are_refused(runner, setup, tmp_path):
    folder, model, _ = setup
    row = pd.read_csv(folder / "new.csv")
    pd.concat([row, row.assign(params_billions=row["params_billions"] * 2 + 1)]).to_csv(tmp_path / "two.csv", index=False)
    result = runner.invoke(main, ["predict", "--model", str(model), "--llm", "me/new-llm", "--llms", str(tmp_path / "two.csv")])
    assert result.exit_code == 1 and "2 rows have llm 'me/new-llm' and they differ in params_billions" in result.output
    pd.concat([row, row]).to_csv(tmp_path / "same.csv", index=False)  # the same row twice is one LLM
    result = runner.invoke(main, ["predict", "--model", str(model), "--llm", "me/new-llm", "--llms", str(tmp_path / "same.csv"),
                                  "--n-draws", "50"])
    assert result.exit_code == 0, result.output


def test_other_data_than_the_model_was_fitted_on_is_refused(runner, setup):
    folder, model, _ = setup
    other = DATA.parent / "openllm-v2-bbh-tso5"
    if not other.is_dir():
        pytest.skip(f"{other} not available")
    result = runner.invoke(main, ["predict", "--model", str(model), "--llm", "me/new-llm", "--llms",
                                  str(folder / "new.csv"), "--data", str(other)])
    assert result.exit_code == 1 and "is not the data the model was fitted on (openllm-v2-mmlupro-math)" in result.output
    result = runner.invoke(main, ["predict", "--model", str(model), "--llm", "me/new-llm", "--llms",
                                  str(folder / "new.csv"), "--data", str(DATA), "--n-draws", "50"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("table", ["llms", "items"])
def test_a_copy_of_the_data_with_edited_metadata_is_refused_naming_the_table(runner, setup, tmp_path, table):
    import shutil

    folder, model, _ = setup
    copy = tmp_path / "copy"
    shutil.copytree(DATA, copy)
    args = ["predict", "--model", str(model), "--llm", "me/new-llm", "--llms", str(folder / "new.csv"), "--n-draws", "50"]
    # Rows in another order are the same tables.
    frame = pd.read_parquet(copy / f"{table}.parquet")
    frame.iloc[::-1].to_parquet(copy / f"{table}.parquet", index=False)
    result = runner.invoke(main, [*args, "--data", str(copy)])
    assert result.exit_code == 0, result.output
    if table == "llms":
        frame.loc[frame.index[3], "params_billions"] = frame["params_billions"].iloc[3] * 2 + 1
    else:
        frame.loc[frame.index[3], "text"] = frame["text"].iloc[3] + " (edited)"
    frame.to_parquet(copy / f"{table}.parquet", index=False)
    result = runner.invoke(main, [*args, "--data", str(copy)])
    assert result.exit_code == 1 and f"has the answers the model was fitted on, but its {table} table differs" in \
        result.output, result.output


def test_a_mistyped_known_llm_gets_a_did_you_mean(runner, setup):
    folder, model, _ = setup
    known = str(load_model(model).estimator.llms_[0])
    typo = known.upper() if known.upper() != known else known.lower()
    result = runner.invoke(main, ["predict", "--model", str(model), "--llm", typo, "--n-draws", "50"])
    assert f"did you mean {known} (in the model)?" in result.output


def test_unreadable_metadata_values_are_warned_one_by_one(runner, setup, tmp_path):
    folder, model, _ = setup
    pd.read_csv(folder / "new.csv").assign(params_billions="seven billion", is_merged="maybe").to_csv(
        tmp_path / "odd.csv", index=False)
    result = runner.invoke(main, ["predict", "--model", str(model), "--llm", "me/new-llm", "--llms",
                                  str(tmp_path / "odd.csv"), "--n-draws", "50"])
    assert result.exit_code == 0, result.output
    assert "has params_billions='seven billion', which cannot be read" in result.output
    assert "has is_merged='maybe', which cannot be read" in result.output


def test_a_metadata_file_with_some_columns_folds_in_with_the_others_unknown(runner, setup, tmp_path):
    folder, model, _ = setup
    row = pd.read_csv(folder / "new.csv")[["llm", "params_billions", "architecture"]]
    row.to_csv(tmp_path / "few.csv", index=False)
    result = runner.invoke(main, ["predict", "--model", str(model), "--llm", "me/new-llm", "--llms",
                                  str(tmp_path / "few.csv"), "--n-draws", "50"])
    assert result.exit_code == 0, result.output
    note = next(line for line in result.output.splitlines() if line.startswith("note: --llms"))
    assert "has no column(s)" in note and "model_type" in note and "params_billions" not in note
    assert "new, folded in from leaderboard metadata" in result.output


def test_a_new_llm_reads_only_the_llms_table_where_the_responses_file_is_the_fitted_one(runner, setup, tmp_path,
                                                                                          monkeypatch):
    import importlib
    import shutil

    folder, model, _ = setup
    entities = importlib.import_module("bayes_simrmf.cli.entities")
    original, read = entities._load_dataset_at.__wrapped__, []

    def spy(data, policy, tables, stamps):
        read.append(tables)
        return original(data, policy, tables, stamps)

    monkeypatch.setattr(entities, "_load_dataset_at", spy)
    args = ["predict", "--model", str(model), "--llm", "me/new-llm", "--llms", str(folder / "new.csv"), "--by", "item",
            "--n-draws", "50"]
    fast = runner.invoke(main, [*args, "--data", str(DATA)])
    assert fast.exit_code == 0 and read == [("llms",)], (fast.output, read)
    # The same responses written with other bytes: read in full, checked against the model's fingerprint, and the
    # figures are the same.
    copy = tmp_path / "copy"
    shutil.copytree(DATA, copy)
    pd.read_parquet(copy / "responses.parquet").to_parquet(copy / "responses.parquet", index=False, compression="gzip")
    read.clear()
    full = runner.invoke(main, [*args, "--data", str(copy)])
    assert full.exit_code == 0 and read == [("responses", "items", "llms")], (full.output, read)
    assert _table(full.output, "item").equals(_table(fast.output, "item"))
    assert load_model(model).config["extra"]["responses_digest"]
