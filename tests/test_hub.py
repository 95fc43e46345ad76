"""Tests of the leaderboard pull (bayes_simrmf.hub, bayes_simrmf.cli.data) without the network.

Every test reads a small mirror built in tmp_path in the hub's own layout
(ROOT/datasets/open-llm-leaderboard/<org>__<name>-details/<org>__<name>/samples_leaderboard_<task>_<ts>.jsonl and
ROOT/datasets/open-llm-leaderboard/contents/data/train-00000-of-00001.parquet), through LocalHubMirror or a
wrapper around it that injects the hub's failures (429, gated, missing, crash). Records are shaped like the
leaderboard's lm-evaluation-harness samples: doc_id, doc, target, arguments, resps, filtered_resps, filter,
metrics, *_hash and the per-question metric fields. Multiple-choice records carry a decoy metric with the
opposite value, so the tests check that each benchmark is scored by the right field.
"""

from __future__ import annotations

import json
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bayes_simrmf import hub
from bayes_simrmf.hub.benchmarks import _benchmark_of_task
from bayes_simrmf.hub.files import _write_parquet_atomic
from bayes_simrmf.cli.data import data as data_group
from bayes_simrmf.data import default_data_dir, load_dataset
from bayes_simrmf.errors import ConfigError, DataError

RUN_OLD = "2024-06-26T16-23-08.343424"
RUN_NEW = "2025-01-27T10-10-36.877664"
LLMS = ("alpha-org/model-a", "beta-org/model-b", "gamma/Model_C.v2")
# task -> docs per task (MMLU-Pro's docs span two categories)
TASKS = {
    "leaderboard_bbh_navigate": 4,
    "leaderboard_bbh_boolean_expressions": 3,
    "leaderboard_gpqa_diamond": 3,
    "leaderboard_math_algebra_hard": 3,
    "leaderboard_mmlu_pro": 4,
    "leaderboard_musr_team_allocation": 2,
}
METRIC = {"bbh": "acc_norm", "gpqa": "acc_norm", "math": "exact_match", "mmlu_pro": "acc", "musr": "acc_norm"}
DECOY = {"acc_norm": "acc", "acc": "acc_norm", "exact_match": None}


# ----------------------------------------------------------------------------- fixture mirror


def _doc(task: str, doc_id: int) -> dict:
    if task.startswith("leaderboard_bbh_"):
        return {"input": f"{task[16:]} question {doc_id}?\nOptions:\n- Yes\n- No", "target": "Yes"}
    if task.startswith("leaderboard_math_"):
        return {"problem": f"Compute $x_{doc_id}$.", "solution": f"$\\boxed{{{doc_id}}}$", "answer": str(doc_id)}
    if task == "leaderboard_mmlu_pro":
        return {"question_id": 70 + doc_id, "question": f"MMLU-Pro question {doc_id}",
                "options": ["first", "second", "third"], "answer": "B", "answer_index": 1, "cot_content": "",
                "category": "math" if doc_id % 2 == 0 else "computer science", "src": "ori_mmlu-test"}
    if task.startswith("leaderboard_musr_"):
        return {"narrative": f"A story {doc_id}.", "question": "Who does what?",
                "choices": "['Ana does A', 'Bo does B']", "answer_index": 0, "answer_choice": "Ana does A"}
    if task.startswith("leaderboard_gpqa_"):
        return {"Question": f"  GPQA question {doc_id}?  ", "Correct Answer": "c", "Incorrect Answer 1": "x",
                "Incorrect Answer 2": "y", "Incorrect Answer 3": "z", "choice1": "x", "choice2": "c",
                "choice3": "y", "choice4": "z", "answer": "(B)"}
    if task == "leaderboard_ifeval":
        return {"key": doc_id, "prompt": "Write a poem."}
    raise AssertionError(task)


def _expected_correct(llm_index: int, task: str, doc_id: int, run: str) -> int:
    """The fixture's truth: differs by LLM, task, document and run."""
    return int((llm_index + doc_id + len(task) + (1 if run == RUN_OLD else 0)) % 2 == 0)


def _record(task: str, doc_id: int, value: int) -> dict:
    benchmark = _benchmark_of_task(task)
    record = {
        "doc_id": doc_id, "doc": _doc(task, doc_id), "target": "B",
        "arguments": {"gen_args_0": {"arg_0": "prompt", "arg_1": " (A)"}},
        "resps": [[["-1.25", "False"]]], "filtered_resps": [["-1.25", "False"]], "filter": "none",
        "doc_hash": "0" * 64, "prompt_hash": "1" * 64, "target_hash": "2" * 64,
    }
    if benchmark is None:  # ifeval: not pulled
        record.update({"prompt_level_strict_acc": True, "metrics": ["prompt_level_strict_acc"]})
        return record
    metric = benchmark.metric
    record[metric] = float(value) if metric != "exact_match" else int(value)
    record["metrics"] = [metric]
    if DECOY[metric]:
        record[DECOY[metric]] = float(1 - value)
    return record


def write_samples(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")


def contents_row(llm: str, index: int, **overrides) -> dict:
    row = {
        "eval_name": f"{llm.replace('/', '_')}_bfloat16", "Precision": "bfloat16",
        "Type": ["💬 chat models (RLHF, DPO, IFT, ...)", "🔶 fine-tuned on domain-specific datasets",
                 "🤝 base merges and moerges"][index % 3],
        "T": "💬", "Weight type": "Original", "Architecture": "LlamaForCausalLM",
        "Model": f'<a href="https://huggingface.co/{llm}">{llm}</a>', "fullname": llm, "Model sha": "abc",
        "Average ⬆️": 20.0 + index, "Hub License": "apache-2.0" if index != 1 else "", "Hub ❤️": 3 + index,
        "#Params (B)": 7.24 + index, "Available on the hub": True, "MoE": False, "Flagged": False,
        "Chat Template": index % 2 == 0, "CO₂ cost (kg)": 1.2, "IFEval Raw": 0.5, "IFEval": 50.0,
        "BBH Raw": 0.4, "BBH": 40.0, "MATH Lvl 5 Raw": 0.1, "MATH Lvl 5": 10.0, "GPQA Raw": 0.3, "GPQA": 5.0,
        "MUSR Raw": 0.35, "MUSR": 4.0, "MMLU-PRO Raw": 0.25, "MMLU-PRO": 20.0, "Merged": index == 2,
        "Official Providers": index == 0, "Upload To Hub Date": "2024-04-13", "Submission Date": "2024-08-05",
        "Generation": index, "Base Model": None if index == 0 else f"{llm} (Merge)" if index == 2 else "base/x",
    }
    row.update(overrides)
    return row


def build_mirror(root: Path, llms=LLMS, tasks=TASKS, runs=(RUN_NEW,), extra_contents=()) -> Path:
    """A hub mirror with the contents table and one details dataset per LLM."""
    contents_dir = root / "datasets" / "open-llm-leaderboard" / "contents" / "data"
    contents_dir.mkdir(parents=True, exist_ok=True)
    rows = [contents_row(llm, index) for index, llm in enumerate(llms)] + list(extra_contents)
    pd.DataFrame(rows).to_parquet(contents_dir / "train-00000-of-00001.parquet")
    for index, llm in enumerate(llms):
        key = llm.replace("/", "__")
        repo = root / "datasets" / "open-llm-leaderboard" / f"{key}-details"
        (repo / "README.md").parent.mkdir(parents=True, exist_ok=True)
        (repo / "README.md").write_text("---\nconfigs: []\n---\n")
        for run in runs:
            (repo / key / f"results_{run}.json").parent.mkdir(parents=True, exist_ok=True)
            (repo / key / f"results_{run}.json").write_text("{}")
            for task, n_docs in {**tasks, "leaderboard_ifeval": 2}.items():
                records = [_record(task, doc_id, _expected_correct(index, task, doc_id, run))
                           for doc_id in range(n_docs)]
                write_samples(repo / key / f"samples_{task}_{run}.jsonl", records)
    return root


@pytest.fixture()
def mirror(tmp_path) -> Path:
    return build_mirror(tmp_path / "hub")


class ScriptedClient(hub.HubClient):
    """A mirror with injected failures; records every call."""

    def __init__(self, inner: hub.HubClient, *, on_list=None, on_download=None) -> None:
        self.inner, self.on_list, self.on_download = inner, on_list, on_download
        self.listed: list[str] = []
        self.downloaded: list[tuple[str, str]] = []

    def list_files(self, repo_id):
        self.listed.append(repo_id)
        if self.on_list is not None:
            self.on_list(repo_id, len(self.listed))
        return self.inner.list_files(repo_id)

    def download(self, repo_id, filename):
        self.downloaded.append((repo_id, filename))
        if self.on_download is not None:
            self.on_download(repo_id, filename, len(self.downloaded))
        return self.inner.download(repo_id, filename)

    def describe(self):
        return "scripted " + self.inner.describe()


def fake_response(status: int, headers: dict | None = None):
    return types.SimpleNamespace(status_code=status, headers=headers or {}, request=None)


def http_error(status: int, headers: dict | None = None, cls=None):
    from huggingface_hub.errors import HfHubHTTPError

    return (cls or HfHubHTTPError)(f"{status} Client Error", response=fake_response(status, headers))


def gated_error():
    from huggingface_hub.errors import GatedRepoError

    return GatedRepoError("403 Client Error. Cannot access gated repo", response=fake_response(403))


def no_sleep_policy(**kwargs) -> tuple[hub.RetryPolicy, list[float]]:
    sleeps: list[float] = []
    return hub.RetryPolicy(sleep=sleeps.append, **kwargs), sleeps


def run_pull(out: Path, client: hub.HubClient, **kwargs) -> hub.PullSummary:
    kwargs.setdefault("workers", 1)
    kwargs.setdefault("retry", no_sleep_policy()[0])
    return hub.pull(out, client, log=None, **kwargs)


def read_tables(folder: Path) -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(folder / f"{name}.parquet") for name in ("responses", "items", "llms")}


# ----------------------------------------------------------------------------- metric mapping, one test per benchmark


@pytest.mark.parametrize(
    ("key", "task", "doc_id", "item", "text"),
    [
        ("bbh", "leaderboard_bbh_navigate", 3, "BBH/navigate/3", "navigate question 3?\nOptions:\n- Yes\n- No"),
        ("gpqa", "leaderboard_gpqa_diamond", 2, "GPQA/diamond/2", "GPQA question 2?"),
        ("math", "leaderboard_math_algebra_hard", 1, "MATH_L5/algebra_hard/1", "Compute $x_1$."),
        ("mmlu_pro", "leaderboard_mmlu_pro", 3, "MMLU-Pro/computer science/3",
         "MMLU-Pro question 3\nA. first\nB. second\nC. third"),
        ("musr", "leaderboard_musr_team_allocation", 1, "MuSR/team_allocation/1",
         "A story 1.\n\nWho does what?\n\n1 - Ana does A\n2 - Bo does B\nAnswer:"),
    ],
)
def test_each_benchmark_is_scored_by_its_leaderboard_metric(tmp_path, key, task, doc_id, item, text):
    metric = METRIC[key]
    records = [_record(task, doc, value) for doc, value in ((0, 1), (1, 0), (2, 1), (3, 0))]
    path = tmp_path / f"samples_{task}_{RUN_NEW}.jsonl"
    write_samples(path, records)
    frame, duplicates = hub.read_samples(path, task)
    assert duplicates == 0
    assert hub.BENCHMARKS[key].metric == metric
    # the benchmark's metric, not the decoy (which holds the opposite value)
    assert frame["correct"].tolist() == [1, 0, 1, 0]
    assert frame["correct"].dtype == np.int8
    row = frame.set_index("item").loc[item]
    assert row["text"] == text
    assert row["benchmark"] == hub.BENCHMARKS[key].name
    assert row["subtask"] == item.split("/")[1]


def test_metric_values_must_be_zero_or_one_and_booleans_count(tmp_path):
    task = "leaderboard_math_algebra_hard"
    good = [_record(task, 0, 1), _record(task, 1, 0)]
    good[0]["exact_match"], good[1]["exact_match"] = True, False
    path = tmp_path / f"samples_{task}_{RUN_NEW}.jsonl"
    write_samples(path, good)
    assert hub.read_samples(path, task)[0]["correct"].tolist() == [1, 0]
    bad = [_record(task, 0, 1)]
    bad[0]["exact_match"] = 0.5
    write_samples(path, bad)
    with pytest.raises(hub.MalformedSamplesError, match=r":1: 'exact_match' is 0.5; expected 0 or 1"):
        hub.read_samples(path, task)


def test_a_doc_id_logged_under_several_filters_keeps_the_none_filter(tmp_path):
    task = "leaderboard_bbh_navigate"
    first = {**_record(task, 0, 0), "filter": "strict-match"}
    second = {**_record(task, 0, 1), "filter": "none"}
    path = tmp_path / f"samples_{task}_{RUN_NEW}.jsonl"
    write_samples(path, [first, second, _record(task, 1, 1)])
    frame, duplicates = hub.read_samples(path, task)
    assert duplicates == 1
    assert frame["correct"].tolist() == [1, 1]


def test_old_runs_in_json_array_files_are_read(tmp_path):
    task = "leaderboard_musr_team_allocation"
    path = tmp_path / f"samples_{task}_{RUN_OLD}.json"
    path.write_text(json.dumps([_record(task, 0, 1), _record(task, 1, 0)], indent=2))
    assert hub.read_samples(path, task)[0]["correct"].tolist() == [1, 0]


# ----------------------------------------------------------------------------- file names and the latest run


def test_samples_file_names_are_parsed():
    assert hub.parse_samples_filename(f"a__b/samples_leaderboard_bbh_navigate_{RUN_NEW}.jsonl") == (
        "leaderboard_bbh_navigate", RUN_NEW)
    assert hub.parse_samples_filename(f"a__b/samples_leaderboard_mmlu_pro_{RUN_OLD}.json") == (
        "leaderboard_mmlu_pro", RUN_OLD)
    assert hub.parse_samples_filename("a__b/samples_leaderboard_math_hard_2024-06-26T16-23-08.jsonl") == (
        "leaderboard_math_hard", "2024-06-26T16-23-08")
    assert hub.parse_samples_filename(f"a__b/results_{RUN_NEW}.json") is None
    assert hub.parse_samples_filename("README.md") is None


def test_the_latest_run_of_each_task_is_chosen():
    files = [
        (f"m/samples_leaderboard_bbh_navigate_{RUN_OLD}.jsonl", 10),
        (f"m/samples_leaderboard_bbh_navigate_{RUN_NEW}.jsonl", 20),
        # MATH re-run only in the old run's "day": per task, its own newest file
        (f"m/samples_leaderboard_math_algebra_hard_{RUN_OLD}.jsonl", 30),
        ("m/samples_leaderboard_musr_team_allocation_2024-06-26T16-23-08.jsonl", 5),
        ("m/samples_leaderboard_musr_team_allocation_2024-06-26T16-23-08.5.jsonl", 6),
        (f"m/samples_leaderboard_ifeval_{RUN_NEW}.jsonl", 40),
        (f"m/results_{RUN_NEW}.json", 1),
    ]
    chosen = {f.task: f for f in hub.latest_samples_files(files, ["bbh", "math", "musr"])}
    assert set(chosen) == {"leaderboard_bbh_navigate", "leaderboard_math_algebra_hard",
                           "leaderboard_musr_team_allocation"}
    assert chosen["leaderboard_bbh_navigate"].timestamp == RUN_NEW
    assert chosen["leaderboard_bbh_navigate"].size == 20
    assert chosen["leaderboard_math_algebra_hard"].timestamp == RUN_OLD
    assert chosen["leaderboard_musr_team_allocation"].timestamp == "2024-06-26T16-23-08.5"
    assert hub.latest_samples_files(files, ["gpqa"]) == []


def test_a_pull_uses_only_the_latest_run(tmp_path):
    root = build_mirror(tmp_path / "hub", llms=LLMS[:1], runs=(RUN_OLD, RUN_NEW))
    client = ScriptedClient(hub.LocalHubMirror(root))
    run_pull(tmp_path / "out", client)
    assert all(RUN_NEW in filename for _, filename in client.downloaded if "samples_" in filename)
    responses = read_tables(tmp_path / "out")["responses"]
    for row in responses.itertuples():
        benchmark, subtask, doc_id = row.item.split("/")
        task = next(t for t in TASKS if _benchmark_of_task(t).name == benchmark
                    and (t.endswith(subtask) or t == "leaderboard_mmlu_pro"))
        assert row.correct == _expected_correct(0, task, int(doc_id), RUN_NEW)


# ----------------------------------------------------------------------------- the written folder


def test_pull_writes_a_folder_that_load_dataset_reads(mirror, tmp_path):
    out = tmp_path / "out"
    summary = run_pull(out, hub.LocalHubMirror(mirror))
    dataset = load_dataset(out, log=None)
    n_items = sum(TASKS.values())
    assert dataset.n_llms == len(LLMS)
    assert dataset.n_items == n_items
    assert dataset.n_responses == len(LLMS) * n_items  # dense: every LLM answered every question
    assert summary.tables == {"responses": len(LLMS) * n_items, "items": n_items, "llms": len(LLMS)}
    items = dataset.items.set_index("item")
    assert set(items["benchmark"]) == {"BBH", "GPQA", "MATH_L5", "MMLU-Pro", "MuSR"}
    assert items.loc["MMLU-Pro/math/0", "subtask"] == "math"
    assert items.loc["BBH/boolean_expressions/2", "text"].startswith("boolean_expressions question 2?")
    assert not any(item.startswith("IFEval") for item in items.index)  # IFEval is not pulled
    # the summary file says what happened
    written = json.loads((out / hub.SUMMARY_FILE).read_text())
    assert written["pulled_llms"] == sorted(LLMS)
    assert written["per_benchmark"]["BBH"] == {"llms": 3, "items": 7, "responses": 21}
    assert written["runs"][LLMS[0]] == [RUN_NEW]
    assert "acc_norm" in written["metric_rules"]["BBH"]
    # no temporary files anywhere
    assert not [path for path in out.rglob("*.tmp")]


def test_llms_table_has_the_shared_leaderboard_contents_columns(mirror, tmp_path):
    run_pull(tmp_path / "out", hub.LocalHubMirror(mirror))
    llms = read_tables(tmp_path / "out")["llms"].set_index("llm")
    assert ["llm", *llms.columns] == list(hub.CONTENTS_COLUMNS)
    shared = default_data_dir() / "leaderboard-contents" / "llms.parquet"
    if shared.is_file():  # the reference the lead engineer's loaders use
        import pyarrow.parquet as pq

        assert pq.read_schema(shared).names == list(hub.CONTENTS_COLUMNS)
    a, b, c = LLMS
    assert llms.loc[a, "model_type"] == "chatmodels"
    assert llms.loc[b, "model_type"] == "fine-tunedondomain-specificdatasets"
    assert llms.loc[c, "model_type"] == "basemergesandmoerges"
    assert llms.loc[a, "base_model"] == a  # no parent: the LLM itself
    assert llms.loc[c, "base_model"] == f"{c} (Merge)"
    assert pd.isna(llms.loc[b, "license"])
    assert llms.loc[a, "is_official_provider"] and not llms.loc[b, "is_official_provider"]
    assert llms.loc[c, "score_bbh"] == pytest.approx(0.4)
    assert llms.loc[a, "params_billions"] == pytest.approx(7.24)
    assert llms.loc[b, "submission_date"] == "2024-08-05"


def test_contents_keep_the_latest_submission_per_llm():
    raw = pd.DataFrame([
        contents_row("o/m", 0, Precision="float16", **{"Submission Date": "2024-06-12", "BBH Raw": 0.1}),
        contents_row("o/m", 0, Precision="bfloat16", **{"Submission Date": "2024-09-01T10:00:00", "BBH Raw": 0.2}),
        contents_row("o/n", 1, Type="❓ other"),
    ])
    llms, notes = hub.normalise_contents(raw)
    assert notes == []
    assert llms["llm"].tolist() == ["o/m", "o/n"]
    first = llms.iloc[0]
    assert (first["precision"], first["score_bbh"], first["submission_date"]) == ("bfloat16", 0.2, "2024-09-01")
    assert llms.iloc[1]["model_type"] == "❓other"
    lacking, notes = hub.normalise_contents(raw.drop(columns=["MoE"]))
    assert any("'MoE'" in note for note in notes) and not lacking["is_moe"].any()
    with pytest.raises(DataError, match="no 'fullname' column"):
        hub.normalise_contents(raw.drop(columns=["fullname"]))


# ----------------------------------------------------------------------------- resume


def test_resume_after_interruption_fetches_only_the_missing_llms(mirror, tmp_path):
    files_per_llm = len(TASKS)

    def crash(repo_id, filename, n):
        if n > files_per_llm + 2:  # the first LLM completes, the second crashes part-way
            raise RuntimeError("simulated crash")

    crashing = ScriptedClient(hub.LocalHubMirror(mirror), on_download=crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_pull(tmp_path / "out", crashing)
    staged = sorted(path.stem for path in (tmp_path / "out" / ".pull" / "models").glob("*.parquet"))
    assert staged == ["alpha-org__model-a"]
    assert not (tmp_path / "out" / "responses.parquet").exists()
    assert not [path for path in (tmp_path / "out").rglob("*.tmp")]

    resumed = ScriptedClient(hub.LocalHubMirror(mirror))
    summary = run_pull(tmp_path / "out", resumed)
    fetched = {repo for repo, filename in resumed.downloaded if "-details" in repo}
    assert fetched == {hub.details_repo_id(LLMS[1]), hub.details_repo_id(LLMS[2])}
    assert summary.already_complete == [LLMS[0]]
    assert sorted(summary.pulled_llms) == sorted(LLMS[1:])

    run_pull(tmp_path / "straight", hub.LocalHubMirror(mirror))
    for name, frame in read_tables(tmp_path / "out").items():
        pd.testing.assert_frame_equal(frame, read_tables(tmp_path / "straight")[name], obj=name)

    again = ScriptedClient(hub.LocalHubMirror(mirror))
    summary = run_pull(tmp_path / "out", again)
    assert again.downloaded == [] and again.listed == []  # complete: nothing fetched (contents cached)
    assert summary.already_complete == list(LLMS)


def test_adding_a_benchmark_later_fetches_only_that_benchmark(mirror, tmp_path):
    run_pull(tmp_path / "out", hub.LocalHubMirror(mirror), benchmarks="bbh")
    assert set(read_tables(tmp_path / "out")["items"]["benchmark"]) == {"BBH"}
    client = ScriptedClient(hub.LocalHubMirror(mirror))
    run_pull(tmp_path / "out", client, benchmarks="bbh,musr")
    assert {filename.split("samples_")[1].split("_2")[0] for _, filename in client.downloaded} == {
        "leaderboard_musr_team_allocation"}
    run_pull(tmp_path / "both", hub.LocalHubMirror(mirror), benchmarks=["musr", "bbh"])
    for name, frame in read_tables(tmp_path / "out").items():
        pd.testing.assert_frame_equal(frame, read_tables(tmp_path / "both")[name], obj=name)


def test_a_failed_parquet_write_leaves_no_file(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    def broken(table, where, **kwargs):
        Path(where).write_bytes(b"PAR1 half")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", broken)
    with pytest.raises(OSError, match="disk full"):
        _write_parquet_atomic(pd.DataFrame({"a": [1]}), tmp_path / "x.parquet")
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- missing, renamed, gated


def test_a_missing_llm_is_skipped_and_reported(mirror, tmp_path):
    summary = run_pull(tmp_path / "out", hub.LocalHubMirror(mirror), models=[LLMS[0], "ghost/renamed-model"])
    assert list(summary.skipped_llms) == ["ghost/renamed-model"]
    assert "not found" in summary.skipped_llms["ghost/renamed-model"]
    assert summary.not_in_contents == []
    tables = read_tables(tmp_path / "out")
    assert tables["llms"]["llm"].tolist() == [LLMS[0]]
    written = json.loads((tmp_path / "out" / hub.SUMMARY_FILE).read_text())
    assert "ghost/renamed-model" in written["skipped_llms"]


def test_an_llm_missing_from_the_contents_table_gets_empty_metadata(tmp_path):
    root = build_mirror(tmp_path / "hub")
    # drop one LLM's contents row: its details still exist
    contents = root / "datasets/open-llm-leaderboard/contents/data/train-00000-of-00001.parquet"
    pd.read_parquet(contents).iloc[:2].to_parquet(contents)
    summary = run_pull(tmp_path / "out", hub.LocalHubMirror(root), models=list(LLMS))
    assert summary.not_in_contents == [LLMS[2]]
    llms = load_dataset(tmp_path / "out", log=None).llms.set_index("llm")
    assert pd.isna(llms.loc[LLMS[2], "architecture"])


def test_a_file_that_vanished_after_listing_leaves_its_benchmark_incomplete(mirror, tmp_path):
    from huggingface_hub.errors import EntryNotFoundError

    def vanish(repo_id, filename, n):
        if "musr" in filename and LLMS[1].replace("/", "__") in repo_id:
            raise EntryNotFoundError(f"404: {filename} not found")

    summary = run_pull(tmp_path / "out", ScriptedClient(hub.LocalHubMirror(mirror), on_download=vanish))
    assert [(e["llm"], e["benchmark"], e["kind"]) for e in summary.incomplete] == [(LLMS[1], "MuSR", "file_missing")]
    responses = read_tables(tmp_path / "out")["responses"]
    assert not responses[(responses["llm"] == LLMS[1]) & responses["item"].str.startswith("MuSR/")].shape[0]
    # the next run fetches just that benchmark
    retry_client = ScriptedClient(hub.LocalHubMirror(mirror))
    summary = run_pull(tmp_path / "out", retry_client)
    assert [filename for _, filename in retry_client.downloaded] == [
        f"{LLMS[1].replace('/', '__')}/samples_leaderboard_musr_team_allocation_{RUN_NEW}.jsonl"]
    assert summary.incomplete == []


def test_a_gated_benchmark_is_skipped_with_advice_and_the_rest_pulled(mirror, tmp_path):
    def gate_gpqa(repo_id, filename, n):
        if "gpqa" in filename:
            raise gated_error()

    messages: list[str] = []
    client = ScriptedClient(hub.LocalHubMirror(mirror), on_download=gate_gpqa)
    summary = hub.pull(tmp_path / "out", client, workers=2, retry=no_sleep_policy()[0], log=messages.append)
    gated_messages = [m for m in messages if m.startswith("gated:")]
    assert len(gated_messages) == 1  # said once, not once per LLM
    assert "hf auth login" in gated_messages[0] and "HF_TOKEN" in gated_messages[0]
    assert "huggingface.co/datasets/open-llm-leaderboard/" in gated_messages[0]
    assert sorted(e["llm"] for e in summary.incomplete) == sorted(LLMS)
    assert {e["benchmark"] for e in summary.incomplete} == {"GPQA"}
    assert sum(1 for _, filename in client.downloaded if "gpqa" in filename) == len(LLMS)  # no retry on gated
    items = read_tables(tmp_path / "out")["items"]
    assert "GPQA" not in set(items["benchmark"]) and "BBH" in set(items["benchmark"])
    assert sorted(summary.pulled_llms) == sorted(LLMS)
    # with access granted, a re-run fetches GPQA only
    granted = ScriptedClient(hub.LocalHubMirror(mirror))
    run_pull(tmp_path / "out", granted)
    assert granted.downloaded and all("gpqa" in filename for _, filename in granted.downloaded)
    assert "GPQA" in set(read_tables(tmp_path / "out")["items"]["benchmark"])


def test_a_gated_details_dataset_skips_the_llm(mirror, tmp_path):
    def gate(repo_id, n):
        if LLMS[0].replace("/", "__") in repo_id:
            raise gated_error()

    summary = run_pull(tmp_path / "out", ScriptedClient(hub.LocalHubMirror(mirror), on_list=gate))
    assert list(summary.skipped_llms) == [LLMS[0]]
    assert "gated" in summary.skipped_llms[LLMS[0]] and "hf auth login" in summary.skipped_llms[LLMS[0]]
    assert sorted(read_tables(tmp_path / "out")["llms"]["llm"]) == sorted(LLMS[1:])


# ----------------------------------------------------------------------------- retries


def test_rate_limits_are_retried_with_exponential_backoff(mirror, tmp_path):
    failures = {"left": 2}

    def rate_limited(repo_id, filename, n):
        if failures["left"] and repo_id.endswith("-details"):
            failures["left"] -= 1
            raise http_error(429)

    policy, sleeps = no_sleep_policy(base_delay=2.0)
    client = ScriptedClient(hub.LocalHubMirror(mirror), on_download=rate_limited)
    summary = run_pull(tmp_path / "out", client, models=[LLMS[0]], retry=policy)
    assert len(sleeps) == 2
    assert 1.0 <= sleeps[0] <= 2.0 and 2.0 <= sleeps[1] <= 4.0  # base * 2**attempt, jitter in [1/2, 1]
    assert summary.retries == 2 and summary.incomplete == [] and summary.skipped_llms == {}
    details = [call for call in client.downloaded if call[0].endswith("-details")]
    assert details[0] == details[1] == details[2] != details[3]  # the same file, three tries
    assert summary.tables["responses"] == sum(TASKS.values())


def test_retry_after_and_connection_errors(mirror, tmp_path):
    errors = [http_error(503, {"Retry-After": "30"}), ConnectionError("connection reset")]

    def flaky(repo_id, n):
        if errors:
            raise errors.pop(0)

    policy, sleeps = no_sleep_policy(base_delay=1.0)
    run_pull(tmp_path / "out", ScriptedClient(hub.LocalHubMirror(mirror), on_list=flaky), models=[LLMS[0]],
             retry=policy)
    assert sleeps[0] == 30.0  # the server's Retry-After wins over a shorter backoff
    assert 1.0 <= sleeps[1] <= 2.0


def test_retries_give_up_and_leave_the_benchmark_for_the_next_run(mirror, tmp_path):
    def down(repo_id, filename, n):
        if "math" in filename:
            raise http_error(502)

    policy, sleeps = no_sleep_policy(max_attempts=3)
    summary = run_pull(tmp_path / "out", ScriptedClient(hub.LocalHubMirror(mirror), on_download=down),
                       models=[LLMS[0]], retry=policy)
    assert len(sleeps) == 2
    assert [(e["benchmark"], e["kind"]) for e in summary.incomplete] == [("MATH_L5", "transient")]
    assert "3 attempts" in summary.incomplete[0]["reason"]


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda: http_error(429), "transient"),
        (lambda: http_error(500), "transient"),
        (lambda: http_error(403), "gated"),
        (lambda: http_error(400), None),
        (gated_error, "gated"),
        (lambda: http_error(401, cls=__import__("huggingface_hub.errors", fromlist=["_"]).RepositoryNotFoundError),
         "repo_missing"),
        (lambda: __import__("huggingface_hub.errors", fromlist=["_"]).EntryNotFoundError("gone"), "file_missing"),
        (lambda: ConnectionError("reset"), "transient"),
        (lambda: TimeoutError("slow"), "transient"),
        (lambda: type("ConnectTimeout", (Exception,), {})("x"), "transient"),
        (lambda: hub.HubNotFoundError("x", what="file"), "file_missing"),
        (lambda: ValueError("a bug"), None),
    ],
)
def test_errors_are_classified(make, kind):
    assert hub.classify_error(make()) == kind


# ----------------------------------------------------------------------------- malformed files


def _corrupt(mirror: Path, llm: str, task: str, line: int, text: str) -> Path:
    key = llm.replace("/", "__")
    path = mirror / "datasets/open-llm-leaderboard" / f"{key}-details" / key / f"samples_{task}_{RUN_NEW}.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    lines[line - 1] = text
    path.write_text("".join(lines))
    return path


def test_a_bad_json_line_skips_that_file_and_is_reported(mirror, tmp_path):
    _corrupt(mirror, LLMS[1], "leaderboard_bbh_navigate", 2, '{"doc_id": 1, "doc": {"input": \n')
    summary = run_pull(tmp_path / "out", hub.LocalHubMirror(mirror))
    reports = [r for r in summary.file_reports if r["file"]]
    assert len(reports) == 1
    assert reports[0]["llm"] == LLMS[1]
    assert f"samples_leaderboard_bbh_navigate_{RUN_NEW}.jsonl:2: not valid JSON" in reports[0]["problem"]
    responses = read_tables(tmp_path / "out")["responses"]
    model_b = responses[responses["llm"] == LLMS[1]]
    assert not model_b["item"].str.startswith("BBH/navigate/").any()  # that file only
    n_boolean = TASKS["leaderboard_bbh_boolean_expressions"]
    assert model_b["item"].str.startswith("BBH/boolean_expressions/").sum() == n_boolean
    with pytest.raises(hub.MalformedSamplesError, match=r"bbh_navigate_.*\.jsonl:2: not valid JSON"):
        run_pull(tmp_path / "strict", hub.LocalHubMirror(mirror), strict=True)


def test_a_missing_metric_field_names_file_line_and_field(mirror, tmp_path):
    record = _record("leaderboard_mmlu_pro", 2, 1)
    del record["acc"]
    path = _corrupt(mirror, LLMS[0], "leaderboard_mmlu_pro", 3, json.dumps(record) + "\n")
    with pytest.raises(hub.MalformedSamplesError) as caught:
        hub.read_samples(path, "leaderboard_mmlu_pro", label="X.jsonl")
    assert str(caught.value).startswith("X.jsonl:3: no 'acc' field, which scores MMLU-Pro")
    missing_text = _record("leaderboard_bbh_navigate", 0, 1)
    del missing_text["doc"]["input"]
    path = tmp_path / "bbh.jsonl"
    write_samples(path, [missing_text])
    with pytest.raises(hub.MalformedSamplesError, match=r"bbh.jsonl:1: 'doc' lacks field 'input'"):
        hub.read_samples(path, "leaderboard_bbh_navigate")


# ----------------------------------------------------------------------------- selection and options


def test_llm_selection_is_seeded_and_checked(tmp_path):
    pool = [f"o/m{i}" for i in range(50)]
    first = hub.select_llms(pool, n_models=5, seed=3)
    assert first == hub.select_llms(list(reversed(pool)), n_models=5, seed=3) and first == sorted(first)
    assert first != hub.select_llms(pool, n_models=5, seed=4)
    assert hub.select_llms(pool, n_models=500) == sorted(pool)
    assert hub.select_llms(pool, models=["b/x", "a/y", "b/x"]) == ["b/x", "a/y"]
    with pytest.raises(ConfigError):
        hub.select_llms(pool, models=["a/b"], n_models=2)
    with pytest.raises(ConfigError):
        hub.select_llms(pool, n_models=0)
    listing = tmp_path / "llms.txt"
    listing.write_text("# chosen\norg/a\n\norg/b  # note\norg/a\n")
    assert hub.read_models_file(listing) == ["org/a", "org/b"]
    listing.write_text("org/a\nnot an id\n")
    with pytest.raises(DataError, match=r"llms.txt:2: 'not an id'"):
        hub.read_models_file(listing)
    assert hub.parse_benchmarks("MATH, bbh") == ("bbh", "math")
    with pytest.raises(ConfigError, match="unknown benchmark"):
        hub.parse_benchmarks("bbh,ifeval")


def test_pull_with_a_random_subset(mirror, tmp_path):
    summary = run_pull(tmp_path / "out", hub.LocalHubMirror(mirror), n_models=2, seed=1)
    assert summary.requested_llms == 2
    assert sorted(summary.pulled_llms) == hub.select_llms(list(LLMS), n_models=2, seed=1)


def test_nothing_pulled_is_an_error_with_a_summary(mirror, tmp_path):
    with pytest.raises(DataError, match="nothing pulled"):
        run_pull(tmp_path / "out", hub.LocalHubMirror(mirror), models=["ghost/a", "ghost/b"])
    written = json.loads((tmp_path / "out" / hub.SUMMARY_FILE).read_text())
    assert written["skipped_llms"].keys() == {"ghost/a", "ghost/b"}


# ----------------------------------------------------------------------------- dry run


def test_dry_run_lists_files_and_sizes_without_downloading_samples(mirror):
    client = ScriptedClient(hub.LocalHubMirror(mirror))
    report = hub.dry_run(client, models=[*LLMS, "ghost/x"], retry=no_sleep_policy()[0])
    assert all(repo == hub.CONTENTS_REPO_ID for repo, _ in client.downloaded)
    assert list(report.skipped_llms) == ["ghost/x"]
    assert [len(files) for files in report.files.values()] == [len(TASKS)] * len(LLMS)
    on_disk = sum(path.stat().st_size for path in mirror.rglob("samples_leaderboard_*.jsonl")
                  if "ifeval" not in path.name)
    assert report.total_bytes == on_disk
    by_benchmark = report.bytes_by_benchmark()
    assert by_benchmark["BBH"][0] == 2 * len(LLMS)
    text = report.to_text()
    assert "BBH: 6 files" in text and "skipped ghost/x" in text
    assert json.loads(json.dumps(report.to_dict()))["listed_llms"] == len(LLMS)


# ----------------------------------------------------------------------------- command line


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


def test_cli_pull_and_resume(runner, mirror, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(data_group, ["pull", "--out", str(out), "--hub-root", str(mirror), "--quiet",
                                        "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert "pulled 3 LLMs this run" in result.output and "written to" in result.output
    assert load_dataset(out, log=None).n_llms == 3
    again = runner.invoke(data_group, ["pull", "--out", str(out), "--hub-root", str(mirror), "--quiet"])
    assert again.exit_code == 0 and "3 already complete" in again.output


def test_cli_registered_under_a_main_group(runner, mirror, tmp_path):
    import click

    @click.group()
    def main():
        pass

    main.add_command(data_group)
    result = runner.invoke(main, ["data", "pull", "--dry-run", "--hub-root", str(mirror), "--models", "2",
                                  "--benchmarks", "bbh,math", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "2 LLMs requested" in result.output and "MATH_L5: 2 files" in result.output
    assert "GPQA" not in result.output


def test_cli_help_shows_defaults(runner):
    result = runner.invoke(data_group, ["pull", "--help"])
    assert result.exit_code == 0
    for text in ("--hub-root", "a mirror in the hub's layout", "[default: 4", "[default: bbh,gpqa,math,mmlu_pro,musr]",
                 "--dry-run", "--models-file", "[default: 0;"):
        assert text.lower() in " ".join(result.output.split()).lower(), text


def test_cli_errors_are_one_line(runner, mirror, tmp_path):
    bad = runner.invoke(data_group, ["pull", "--out", str(tmp_path / "o"), "--hub-root", str(mirror),
                                     "--benchmarks", "bbh,ifeval"])
    assert bad.exit_code == 1
    assert bad.output.strip().splitlines() == [
        "Error: unknown benchmark(s) ['ifeval']; choose from bbh, gpqa, math, mmlu_pro, musr"]
    usage = runner.invoke(data_group, ["pull", "--hub-root", str(mirror)])
    assert usage.exit_code == 2 and "--out DIR is required" in usage.output
    both = tmp_path / "l.txt"
    both.write_text("a/b\n")
    usage = runner.invoke(data_group, ["pull", "--out", "x", "--models", "2", "--models-file", str(both)])
    assert usage.exit_code == 2
    nothing = runner.invoke(data_group, ["pull", "--out", str(tmp_path / "n"), "--hub-root", str(mirror),
                                         "--models-file", str(both), "--quiet"])
    assert nothing.exit_code == 1 and "nothing pulled" in nothing.output


# ----------------------------------------------------------------------------- the real client, offline


def test_hf_client_calls_huggingface_hub_and_deletes_parsed_files(tmp_path, monkeypatch):
    import huggingface_hub

    calls = {}

    def fake_download(**kwargs):
        calls["download"] = kwargs
        target = Path(kwargs["local_dir"]) / kwargs["filename"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("{}")
        return str(target)

    class FakeApi:
        def __init__(self, endpoint=None, token=None):
            calls["api"] = (endpoint, token)

        def list_repo_tree(self, repo_id, **kwargs):
            calls["tree"] = (repo_id, kwargs)
            folder = types.SimpleNamespace(path="org__m", tree_id="t")
            return iter([folder, types.SimpleNamespace(path="org__m/samples_x.jsonl", size=123)])

    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr("bayes_simrmf.hub.client.check_reachable", lambda endpoint: None)  # no network here
    client = hub.HfHubClient(download_dir=tmp_path / "scratch", token="t0k")
    assert client.list_files("open-llm-leaderboard/org__m-details") == [("org__m/samples_x.jsonl", 123)]
    assert calls["tree"] == ("open-llm-leaderboard/org__m-details", {"repo_type": "dataset", "recursive": True})
    path = client.download("open-llm-leaderboard/org__m-details", "org__m/samples_x.jsonl")
    assert path.is_file() and calls["download"]["repo_type"] == "dataset" and calls["download"]["token"] == "t0k"
    client.release(path)
    assert not path.exists()
    outside = tmp_path / "mine.txt"
    outside.write_text("keep")
    client.release(outside)
    assert outside.exists()
    client.close()
    assert not (tmp_path / "scratch").exists()


def test_hf_client_offline_fails_fast_with_advice(tmp_path, monkeypatch):
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    policy, sleeps = no_sleep_policy()
    with pytest.raises(hub.HubError, match="HF_HUB_OFFLINE is set.*--hub-root"):
        hub.pull(tmp_path / "out", hub.HfHubClient(download_dir=tmp_path / "scratch"), retry=policy, log=None)
    assert sleeps == []
    result = CliRunner().invoke(data_group, ["pull", "--out", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 1 and result.output.startswith("Error: HF_HUB_OFFLINE is set")
