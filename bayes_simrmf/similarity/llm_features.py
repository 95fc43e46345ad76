"""LLM similarity from leaderboard metadata: parsing the fields and the feature kernel."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from bayes_simrmf.errors import DataError


ARCHITECTURE_FAMILIES: tuple[str, ...] = (
    "llama", "qwen", "mistral", "gemma", "phi", "gpt2", "gpt_neox", "gpt_neo", "gptj", "falcon", "mamba", "bloom",
    "opt", "t5", "mpt", "stablelm", "starcoder", "granite", "internlm", "cohere", "nemotron", "olmo", "deepseek",
    "exaone", "glm", "rwkv", "jamba", "dbrx", "other",
)
"""Architecture families of the one-hot block; anything unrecognised, ``"?"`` or missing falls in ``"other"``."""

# Lower-cased prefix of the architecture class name -> family; the first matching prefix wins, so longer or more
# specific prefixes (falconmamba, gptneox, olmoe, recurrentgemma) come before their shorter look-alikes.
_FAMILY_PREFIXES: tuple[tuple[str, str], ...] = (
    ("falconmamba", "mamba"), ("mamba", "mamba"),
    ("mllama", "llama"), ("llama", "llama"),
    ("qwen", "qwen"),
    ("mixtral", "mistral"), ("mistral", "mistral"),
    ("recurrentgemma", "gemma"), ("paligemma", "gemma"), ("gemma", "gemma"),
    ("phi", "phi"),
    ("gpt2", "gpt2"), ("gptneox", "gpt_neox"), ("gptneo", "gpt_neo"), ("gptj", "gptj"),
    ("falcon", "falcon"), ("rw", "falcon"),
    ("bloom", "bloom"), ("opt", "opt"),
    ("switchtransformers", "t5"), ("umt5", "t5"), ("mt5", "t5"), ("t5", "t5"),
    ("mpt", "mpt"), ("stablelm", "stablelm"), ("starcoder", "starcoder"), ("gptbigcode", "starcoder"),
    ("granite", "granite"), ("internlm", "internlm"), ("cohere", "cohere"), ("nemotron", "nemotron"),
    ("olmo", "olmo"), ("deepseek", "deepseek"), ("exaone", "exaone"), ("chatglm", "glm"), ("glm", "glm"),
    ("rwkv", "rwkv"), ("jamba", "jamba"), ("dbrx", "dbrx"),
)

PURPOSES: tuple[str, ...] = ("causal_lm", "masked_lm", "seq2seq", "vision_language", "classifier_or_reward", "other")
"""Purpose one-hot block, read from the architecture class name's head (``...ForCausalLM`` -> causal_lm)."""

# Families whose ``...ForConditionalGeneration`` is an encoder-decoder text model; for the rest it is an
# image+text model (Mllama, Qwen2VL, Aria, PaliGemma, Llava, ...).
_SEQ2SEQ_FAMILY_PREFIXES = ("t5", "mt5", "umt5", "switchtransformers", "bart", "mbart", "pegasus", "marian", "led")

MODEL_TYPES: tuple[str, ...] = (
    "pretrained", "continuously_pretrained", "fine_tuned", "chat", "merge", "multimodal", "other",
)
"""Model-type one-hot block (the leaderboard's model_type with emoji and spaces stripped)."""

# Substring of the normalised model_type -> category; first match wins ("continuously" before "pretrained").
_MODEL_TYPE_PATTERNS: tuple[tuple[str, str], ...] = (
    ("continuous", "continuously_pretrained"),
    ("pretrain", "pretrained"),
    ("finetun", "fine_tuned"),
    ("chat", "chat"),
    ("merge", "merge"),  # "basemergesandmoerges"
    ("moerge", "merge"),
    ("multimodal", "multimodal"),
    ("other", "other"),  # "❓other": the leaderboard's own "other", a parsed value
)

_FLAG_COLUMNS: tuple[str, ...] = ("is_merged", "is_moe", "adapter_or_delta", "has_chat_template")
_UNKNOWN_INDICATOR = "metadata_unknown"
_PARAMS_FEATURE = "log10_params_over_12"

_FEATURE_COLUMNS_REQUIRED = (
    "llm", "architecture", "model_type", "params_billions", "is_merged", "is_moe", "weight_type", "has_chat_template",
)
_LINEAGE_COLUMNS_REQUIRED = ("llm", "base_model", "model_type", "is_merged")
#: The columns of the llms table the LLM similarity reads (features, then lineage).
LLM_COLUMNS_NEEDED = tuple(dict.fromkeys(_FEATURE_COLUMNS_REQUIRED + _LINEAGE_COLUMNS_REQUIRED))

_MISSING_ARCHITECTURE_VALUES = frozenset({"", "?", "unknown", "nan", "none", "null", "n/a"})
_TRUE_STRINGS = frozenset({"true", "t", "yes", "y", "1"})
_FALSE_STRINGS = frozenset({"false", "f", "no", "n", "0"})


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, (float, np.floating)) and bool(np.isnan(value))


def _parse_architecture(value: Any) -> tuple[str, str] | None:
    """``"Qwen2MoeForCausalLM"`` -> ``("qwen", "causal_lm")``; ``None`` when the value says nothing (?, NaN)."""
    if _is_missing(value):
        return None
    name = str(value).strip()
    if name.casefold() in _MISSING_ARCHITECTURE_VALUES:
        return None
    head_match = re.search(r"For[A-Z]", name)
    if head_match:
        prefix, head = name[:head_match.start()], name[head_match.start():]
    elif name.endswith("LMHeadModel"):  # GPT2LMHeadModel
        prefix, head = name[: -len("LMHeadModel")], "ForCausalLM"
    elif re.search(r"Model[A-Z]?$", name):
        # Bare backbones (Qwen2Model, GemmaModel, ChatGLMModel): the leaderboard only evaluates generative models,
        # so the class name reflects the config's `architectures` entry, not a different purpose.
        prefix, head = re.sub(r"Model[A-Z]?$", "", name), "ForCausalLM"
    else:
        prefix, head = name, ""
    prefix_key = re.sub(r"[^a-z0-9]", "", prefix.casefold())
    family = next((fam for start, fam in _FAMILY_PREFIXES if prefix_key.startswith(start)), "other")
    head_key = head.casefold()
    if "reward" in head_key or "classification" in head_key or "regression" in head_key or head_key.endswith("rm"):
        purpose = "classifier_or_reward"
    elif head_key.startswith("forcausallm"):
        purpose = "causal_lm"
    elif head_key.startswith("formaskedlm"):
        purpose = "masked_lm"
    elif head_key.startswith("forconditionalgeneration") or head_key.startswith("forseq2seq"):
        purpose = "seq2seq" if prefix_key.startswith(_SEQ2SEQ_FAMILY_PREFIXES) else "vision_language"
    else:
        purpose = "other"
    return family, purpose


def _parse_model_type(value: Any) -> str | None:
    """Leaderboard model_type (emoji/spaces stripped, e.g. "fine-tunedondomain-specificdatasets") -> category."""
    if _is_missing(value):
        return None
    key = re.sub(r"[^a-z]", "", str(value).casefold())
    if not key:
        return None
    return next((category for pattern, category in _MODEL_TYPE_PATTERNS if pattern in key), None)


def _parse_flag(value: Any) -> float | None:
    """Booleans as the leaderboard wrote them (bool, 0/1, "True"/"false") -> 1.0 / 0.0; ``None`` if unreadable."""
    if _is_missing(value):
        return None
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    if isinstance(value, (int, float, np.integer, np.floating)) and float(value) in (0.0, 1.0):
        return float(value)
    key = str(value).strip().casefold()
    if key in _TRUE_STRINGS:
        return 1.0
    if key in _FALSE_STRINGS:
        return 0.0
    return None


def _parse_weight_type(value: Any) -> float | None:
    """weight_type Original -> 0, Adapter / Delta (weights that need a base model) -> 1, else unreadable."""
    if _is_missing(value):
        return None
    key = str(value).strip().casefold()
    if key == "original":
        return 0.0
    if key in {"adapter", "delta"}:
        return 1.0
    return None


def _parse_params(value: Any) -> float | None:
    """params_billions -> number of parameters; ``None`` when missing or not positive (the leaderboard writes -1/0)."""
    try:
        billions = float(value)
    except (TypeError, ValueError):
        return None
    if not np.isfinite(billions) or billions <= 0:
        return None
    return billions * 1e9


def unreadable_metadata(llms: pd.DataFrame) -> list[tuple[int, str, Any]]:
    """``(row, column, value)`` of every metadata value that is present but cannot be read, so the LLM similarity
    would drop it silently: a ``params_billions`` that is not a number, a flag (``is_merged``, ``is_moe``,
    ``has_chat_template``) that is not a boolean, a ``weight_type`` other than Original / Adapter / Delta, an
    ``architecture`` without a letter."""
    readers = {"params_billions": _is_number,  # -1 and 0 are the leaderboard's "unknown", not unreadable
               "weight_type": lambda value: _parse_weight_type(value) is not None,
               "architecture": lambda value: (str(value).strip().casefold() in _MISSING_ARCHITECTURE_VALUES
                                              or bool(re.search(r"[A-Za-z]", str(value))))}
    readers.update({column: (lambda value: _parse_flag(value) is not None)
                    for column in ("is_merged", "is_moe", "has_chat_template")})
    found = []
    for row, record in enumerate(llms.to_dict("records")):
        for column, readable in readers.items():
            value = record.get(column)
            if column in record and not _is_missing(value) and not readable(value):
                found.append((row, column, value))
    return found


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _require_columns(llms: pd.DataFrame, columns: Iterable[str], purpose: str) -> None:
    if not isinstance(llms, pd.DataFrame):
        raise DataError(f"llms: expected a pandas DataFrame, got {type(llms).__name__}")
    absent = [c for c in columns if c not in llms.columns]
    if absent:
        raise DataError(f"llms: missing column(s) {absent} needed for {purpose}; found {list(llms.columns)}")
    ids = llms["llm"].astype(str)
    duplicated = ids[ids.duplicated()].unique().tolist()
    if duplicated:
        raise DataError(f"llms: column 'llm' has {len(duplicated)} duplicated ids (e.g. {duplicated[:5]})")


def _counter_top(values: Iterable[Any], limit: int = 10) -> dict[str, int]:
    series = pd.Series([str(v) for v in values], dtype=object)
    return series.value_counts().head(limit).to_dict() if len(series) else {}


@dataclasses.dataclass(frozen=True)
class LLMFeatureReport:
    """What :func:`llm_feature_matrix` could and could not read from the metadata.

    Attributes:
        n_llms: rows of the table.
        n_usable: LLMs with at least one of architecture, model_type, parameter count parsed.
        n_complete: LLMs with every field parsed.
        n_fallback: LLMs with none of those parsed: their feature row is the ``metadata_unknown`` indicator alone.
        n_params_missing, n_architecture_unparsed, n_model_type_unparsed, n_flags_unparsed: per-field failures.
        unparsed_architectures, unparsed_model_types: the raw values that could not be read, with counts.
        family_counts, model_type_counts: parsed category counts.
    """

    n_llms: int
    n_usable: int
    n_complete: int
    n_fallback: int
    n_params_missing: int
    n_architecture_unparsed: int
    n_model_type_unparsed: int
    n_flags_unparsed: int
    unparsed_architectures: dict[str, int]
    unparsed_model_types: dict[str, int]
    family_counts: dict[str, int]
    model_type_counts: dict[str, int]

    def __str__(self) -> str:
        return (
            f"LLM features: {self.n_usable}/{self.n_llms} usable, {self.n_complete} complete, "
            f"{self.n_fallback} fallback rows; missing params {self.n_params_missing}, unparsed architecture "
            f"{self.n_architecture_unparsed} {self.unparsed_architectures}, unparsed model_type "
            f"{self.n_model_type_unparsed} {self.unparsed_model_types}, unparsed flags {self.n_flags_unparsed}"
        )


class _ParsedMetadata(NamedTuple):
    """The fields of one LLM's metadata that :func:`llm_feature_matrix` reads; ``None`` where unreadable."""

    params: float | None
    architecture: tuple[str, str] | None
    model_type: str | None
    flags: dict[str, float | None]

    @property
    def flags_unparsed(self) -> bool:
        return any(value is None for value in self.flags.values())

    @property
    def is_fallback(self) -> bool:
        """No architecture, model_type or parameter count: the row is the ``metadata_unknown`` indicator alone."""
        return self.params is None and self.architecture is None and self.model_type is None

    @property
    def is_complete(self) -> bool:
        return (
            self.params is not None
            and self.architecture is not None
            and self.model_type is not None
            and not self.flags_unparsed
        )


def _parse_metadata(record: dict[str, Any]) -> _ParsedMetadata:
    return _ParsedMetadata(
        params=_parse_params(record["params_billions"]),
        architecture=_parse_architecture(record["architecture"]),
        model_type=_parse_model_type(record["model_type"]),
        flags={
            "is_merged": _parse_flag(record["is_merged"]),
            "is_moe": _parse_flag(record["is_moe"]),
            "adapter_or_delta": _parse_weight_type(record["weight_type"]),
            "has_chat_template": _parse_flag(record["has_chat_template"]),
        },
    )


def _feature_names() -> list[str]:
    return (
        [_PARAMS_FEATURE]
        + [f"family={f}" for f in ARCHITECTURE_FAMILIES]
        + [f"purpose={p}" for p in PURPOSES]
        + [f"model_type={t}" for t in MODEL_TYPES]
        + list(_FLAG_COLUMNS)
        + [_UNKNOWN_INDICATOR]
    )


def _feature_row(metadata: _ParsedMetadata, column_of: dict[str, int]) -> np.ndarray:
    """One LLM's feature vector (float64, not yet normalised); unreadable parts fall in "other" or 0."""
    row = np.zeros(len(column_of), dtype=np.float64)
    if metadata.is_fallback:
        row[column_of[_UNKNOWN_INDICATOR]] = 1.0
        return row
    if metadata.params is not None:
        row[column_of[_PARAMS_FEATURE]] = np.log10(max(metadata.params, 1.0)) / 12.0
    family, purpose = metadata.architecture if metadata.architecture is not None else ("other", "other")
    row[column_of[f"family={family}"]] = 1.0
    row[column_of[f"purpose={purpose}"]] = 1.0
    row[column_of[f"model_type={metadata.model_type or 'other'}"]] = 1.0
    for flag_name, flag_value in metadata.flags.items():
        row[column_of[flag_name]] = flag_value or 0.0
    return row


def _feature_report(records: list[dict[str, Any]], parsed: list[_ParsedMetadata]) -> LLMFeatureReport:
    """What could and could not be read, from the raw records and their parsed fields (same order)."""
    unparsed_architectures = [r["architecture"] for r, m in zip(records, parsed) if m.architecture is None]
    unparsed_model_types = [r["model_type"] for r, m in zip(records, parsed) if m.model_type is None]
    usable = [m for m in parsed if not m.is_fallback]
    families = [m.architecture[0] if m.architecture is not None else "other" for m in usable]
    model_types = [m.model_type or "other" for m in usable]
    return LLMFeatureReport(
        n_llms=len(parsed),
        n_usable=len(usable),
        n_complete=sum(m.is_complete for m in parsed),
        n_fallback=len(parsed) - len(usable),
        n_params_missing=sum(m.params is None for m in parsed),
        n_architecture_unparsed=len(unparsed_architectures),
        n_model_type_unparsed=len(unparsed_model_types),
        n_flags_unparsed=sum(m.flags_unparsed for m in parsed),
        unparsed_architectures=_counter_top(unparsed_architectures),
        unparsed_model_types=_counter_top(unparsed_model_types),
        family_counts=_counter_top(families, limit=len(ARCHITECTURE_FAMILIES)),
        model_type_counts=_counter_top(model_types, limit=len(MODEL_TYPES)),
    )


def llm_feature_matrix(llms: pd.DataFrame) -> tuple[np.ndarray, list[str], LLMFeatureReport]:
    """Per-LLM feature vectors for ``S_feature`` (PAPER.md "Side information"), L2-normalised.

    Columns, in order (``feature_names``):
      - ``log10_params_over_12``: ``log10(max(params, 1)) / 12`` with params in parameters (``params_billions·1e9``);
        0 when the count is missing or ≤ 0 (the leaderboard writes -1 / 0 for unknown).
      - ``family=<f>`` one-hot over :data:`ARCHITECTURE_FAMILIES`, from the architecture class name
        (Qwen2MoeForCausalLM -> qwen, MixtralForCausalLM -> mistral, ...); unknown / ``"?"`` / missing -> other.
      - ``purpose=<p>`` one-hot over :data:`PURPOSES`, from the class name's head (ForCausalLM, ForMaskedLM,
        ForConditionalGeneration, ForSequenceClassification / reward heads); unknown -> other.
      - ``model_type=<t>`` one-hot over :data:`MODEL_TYPES`; an unreadable value -> other.
      - 0/1 flags ``is_merged``, ``is_moe``, ``adapter_or_delta`` (weight_type Adapter/Delta), ``has_chat_template``;
        unreadable -> 0.
      - ``metadata_unknown``: the fallback. An LLM with no readable architecture, model_type or parameter count gets
        this indicator alone, so its cosine is 0 with every LLM that has metadata (and 1 with other such LLMs),
        instead of pretending to be an "other"-family model.

    Args:
        llms: leaderboard metadata, one row per LLM (columns as in the leaderboard-contents README).

    Returns:
        ``F`` float32 ``(n_llms, n_features)`` with unit-norm rows (rows in table order), the feature names, and a
        report of what could not be parsed.
    """
    _require_columns(llms, _FEATURE_COLUMNS_REQUIRED, "LLM features")
    feature_names = _feature_names()
    column_of = {name: j for j, name in enumerate(feature_names)}
    records = llms[list(_FEATURE_COLUMNS_REQUIRED)].to_dict("records")
    parsed = [_parse_metadata(record) for record in records]
    features = np.zeros((len(llms), len(feature_names)), dtype=np.float64)
    for row, metadata in enumerate(parsed):
        features[row] = _feature_row(metadata, column_of)
    features /= np.linalg.norm(features, axis=1, keepdims=True).clip(min=1e-12)
    return features.astype(np.float32), feature_names, _feature_report(records, parsed)
