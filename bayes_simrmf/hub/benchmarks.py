"""The leaderboard's benchmarks: their tasks, per-question metric and question text (:data:`BENCHMARKS`)."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bayes_simrmf.errors import ConfigError


def _bbh_text(doc: dict) -> str:
    return str(doc["input"])


def _math_text(doc: dict) -> str:
    return str(doc["problem"])


def _mmlu_pro_text(doc: dict) -> str:
    options = doc["options"]
    if not isinstance(options, list):
        raise KeyError("options")
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return str(doc["question"]) + "".join(f"\n{letters[i]}. {option}" for i, option in enumerate(options))


def _musr_text(doc: dict) -> str:
    choices = doc["choices"]
    if isinstance(choices, str):  # the MuSR dataset stores the list as its Python repr
        try:
            choices = ast.literal_eval(choices)
        except (ValueError, SyntaxError):
            raise KeyError("choices") from None
    if not isinstance(choices, (list, tuple)):
        raise KeyError("choices")
    numbered = "".join(f"{i + 1} - {choice}\n" for i, choice in enumerate(choices))
    return f"{doc['narrative']}\n\n{doc['question']}\n\n{numbered}Answer:"


def _gpqa_text(doc: dict) -> str:
    return str(doc["Question"]).strip()


@dataclass(frozen=True)
class Benchmark:
    """One leaderboard benchmark: which samples files belong to it and how a record becomes 0/1 and text.

    Attributes:
        key: the name on the command line (``--benchmarks bbh,...``).
        name: the ``benchmark`` column and first part of item ids.
        task_prefix: samples files of tasks named ``task_prefix + <subtask>`` belong here; for a
            single-task benchmark (``subtask_field`` set) the task name itself.
        metric: the record field holding the per-question score.
        text_fields: the ``doc`` fields the question text is built from (for messages).
        text: builds the question text from ``doc``.
        subtask_field: ``doc`` field naming the subtask (MMLU-Pro's ``category``), else ``None``
            and the subtask is the task name's suffix.
        rule: the 0/1 rule in words (documentation and summary).
    """

    key: str
    name: str
    task_prefix: str
    metric: str
    text_fields: tuple[str, ...]
    text: Callable[[dict], str]
    subtask_field: str | None = None
    rule: str = ""

    def owns(self, task: str) -> bool:
        """Whether samples of ``task`` (e.g. ``leaderboard_bbh_navigate``) belong to this benchmark."""
        if self.subtask_field is not None:
            return task == self.task_prefix
        return task.startswith(self.task_prefix) and len(task) > len(self.task_prefix)

    def subtask(self, task: str, doc: dict) -> str:
        """The subtask of a record: the task suffix, or the ``doc`` field for single-task benchmarks."""
        if self.subtask_field is None:
            return task[len(self.task_prefix):]
        value = doc[self.subtask_field]
        if not isinstance(value, str) or not value:
            raise KeyError(self.subtask_field)
        return value


BENCHMARKS: dict[str, Benchmark] = {
    "bbh": Benchmark(
        key="bbh", name="BBH", task_prefix="leaderboard_bbh_", metric="acc_norm", text_fields=("input",),
        text=_bbh_text,
        rule="multiple choice (3-shot); correct iff the answer with the highest length-normalised "
             "log-likelihood is the target: acc_norm == 1",
    ),
    "gpqa": Benchmark(
        key="gpqa", name="GPQA", task_prefix="leaderboard_gpqa_", metric="acc_norm", text_fields=("Question",),
        text=_gpqa_text,
        rule="multiple choice (0-shot, four options); acc_norm == 1",
    ),
    "math": Benchmark(
        key="math", name="MATH_L5", task_prefix="leaderboard_math_", metric="exact_match", text_fields=("problem",),
        text=_math_text,
        rule="generative (4-shot); correct iff the extracted final answer matches the reference: exact_match == 1",
    ),
    "mmlu_pro": Benchmark(
        key="mmlu_pro", name="MMLU-Pro", task_prefix="leaderboard_mmlu_pro", metric="acc",
        text_fields=("question", "options", "category"), text=_mmlu_pro_text, subtask_field="category",
        rule="multiple choice (5-shot, up to ten options) by unnormalised log-likelihood: acc == 1",
    ),
    "musr": Benchmark(
        key="musr", name="MuSR", task_prefix="leaderboard_musr_", metric="acc_norm",
        text_fields=("narrative", "question", "choices"), text=_musr_text,
        rule="multiple choice (0-shot); acc_norm == 1",
    ),
}
DEFAULT_BENCHMARKS: tuple[str, ...] = tuple(BENCHMARKS)


def parse_benchmarks(value: str | Iterable[str]) -> tuple[str, ...]:
    """``"bbh,math"`` or ``["bbh", "math"]`` -> ``("bbh", "math")`` in :data:`BENCHMARKS` order.

    Raises:
        ConfigError: an unknown name, or none given.
    """
    names = [part.strip().lower() for part in (value.split(",") if isinstance(value, str) else value)]
    names = [name for name in names if name]
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        raise ConfigError(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}")
    if not names:
        raise ConfigError(f"no benchmark given; choose from {', '.join(BENCHMARKS)}")
    return tuple(key for key in BENCHMARKS if key in names)


def _benchmark_of_task(task: str) -> Benchmark | None:
    for benchmark in BENCHMARKS.values():
        if benchmark.owns(task):
            return benchmark
    return None


