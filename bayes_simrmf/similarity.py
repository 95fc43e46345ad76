"""Side-information similarity for SimRMF, as low-rank square-root factors.

The model's similarity potential for a set of latent vectors ``X`` (n, d) is ``‖X Xᵀ − √S‖²_F``, with ``√S`` the
principal (PSD) square root of a similarity matrix ``S``. Items reach 10^5, so no code path here builds an
items × items matrix: ``√S`` is represented by a factor ``W`` (n, k) with ``√S = W Wᵀ``, and

    ‖X Xᵀ − W Wᵀ‖²_F = ‖XᵀX‖²_F − 2 ‖WᵀX‖²_F + ‖WᵀW‖²_F        (exact; O(n·d·k) time, O((d+k)²) memory)

is what :func:`gram_mismatch` evaluates.

Where the factors come from
---------------------------
- Items (``S_X``): cosine similarity of unit-norm text embeddings ``E`` (n, r), ``S = E Eᵀ``. With the thin SVD
  ``E = U s Vᵀ``, ``√S = U diag(s) Uᵀ``, so ``W = U diag(√s)`` (:func:`sqrt_psd_factor_from_embeddings`).
- LLMs (``S_M``): ``α·S_feature + (1−α)·S_lineage`` from leaderboard metadata (:func:`llm_feature_matrix`,
  :func:`llm_lineage_matrix`, :func:`llm_similarity`). LLM counts are ≤ ~5·10^3 here, so ``S_M`` is dense; it need
  not be PSD, so :func:`sqrt_psd_factor_from_dense` clips negative eigenvalues and reports how much was clipped.
- Oracle (experiments only, uses test data): ``S_X = ZᵀZ`` and ``S_M = Z Zᵀ`` from the full true score matrix
  ``Z`` (:func:`oracle_factors`).
- Diagnostic: :func:`similarity_alignment` correlates ``√S`` with the similarity of observed scores.

Every factor builder returns ``(W, report)``; the report says what was kept, clipped, or could not be parsed.
"""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from bayes_simrmf.errors import ConfigError, DataError

__all__ = [
    "ARCHITECTURE_FAMILIES",
    "AlignmentReport",
    "LINEAGE_WEIGHTS",
    "MODEL_TYPES",
    "PURPOSES",
    "LLMFeatureReport",
    "LLMSimilarityReport",
    "LineageReport",
    "OracleReport",
    "SqrtFactorReport",
    "gram_fro2",
    "gram_mismatch",
    "gram_mismatch_dense",
    "scaled_gram_mismatch",
    "llm_feature_matrix",
    "llm_lineage_matrix",
    "llm_similarity",
    "oracle_factors",
    "similarity_alignment",
    "sqrt_psd_factor_from_dense",
    "sqrt_psd_factor_from_embeddings",
]

# Relative eigenvalue cut-off below which a component is numerical noise, not part of the spectrum.
_RELATIVE_EIGENVALUE_TOLERANCE = 1e-12
# Rows / columns per block when streaming large float32 matrices through float64 products.
_BLOCK = 8192


# ================================================================================================ square-root factors
@dataclasses.dataclass(frozen=True)
class SqrtFactorReport:
    """What a square-root factor ``W`` (n, k) of a similarity ``S`` (n, n) keeps of ``√S``.

    Attributes:
        n: number of rows (items or LLMs).
        n_components_total: positive components of ``√S`` (its numerical rank).
        n_components_kept: columns ``k`` of ``W`` after the optional ``energy`` truncation.
        energy: the requested share of ``trace(√S)`` to keep, or ``None`` for all components.
        trace_share_kept: share of ``trace(√S)`` that ``W Wᵀ`` keeps, in [0, 1].
        frobenius_share_kept: share of ``‖√S‖²_F`` that ``W Wᵀ`` keeps (the scale the potential works on).
        clipped_negative_share: ``Σ|λ_neg| / Σ|λ|`` over the eigenvalues ``λ`` of the symmetrised ``S``: the
            spectral mass removed to make ``S`` PSD (0 for embeddings, whose ``S`` is PSD by construction).
        min_eigenvalue: smallest eigenvalue of the symmetrised ``S`` (0 when ``S`` is PSD by construction).
        max_asymmetry: ``max |S − Sᵀ|`` before symmetrising (0 for embeddings).
    """

    n: int
    n_components_total: int
    n_components_kept: int
    energy: float | None
    trace_share_kept: float
    frobenius_share_kept: float
    clipped_negative_share: float = 0.0
    min_eigenvalue: float = 0.0
    max_asymmetry: float = 0.0

    def __str__(self) -> str:
        return (
            f"sqrt-similarity factor: n={self.n}, kept {self.n_components_kept}/{self.n_components_total} "
            f"components ({self.trace_share_kept:.1%} of trace, {self.frobenius_share_kept:.1%} of ‖√S‖²_F); "
            f"clipped negative spectral share {self.clipped_negative_share:.2%}"
        )


def _check_energy(energy: float | None) -> None:
    if energy is not None and not (isinstance(energy, (int, float)) and 0.0 < float(energy) <= 1.0):
        raise ConfigError(f"energy={energy!r}: expected None or a share in (0, 1]")


def _n_components_for_energy(sqrt_eigenvalues_desc: np.ndarray, energy: float | None) -> int:
    """Smallest k whose top-k sqrt-eigenvalues hold ``energy`` of their sum (all of them when ``energy`` is None)."""
    if energy is None or len(sqrt_eigenvalues_desc) == 0:
        return len(sqrt_eigenvalues_desc)
    cumulative_share = np.cumsum(sqrt_eigenvalues_desc) / sqrt_eigenvalues_desc.sum()
    # The tolerance stops round-off from adding a component when the share is reached exactly.
    return int(min(np.searchsorted(cumulative_share, float(energy) - 1e-12) + 1, len(sqrt_eigenvalues_desc)))


def _shares(sqrt_eigenvalues_desc: np.ndarray, k: int) -> tuple[float, float]:
    if len(sqrt_eigenvalues_desc) == 0:
        return 1.0, 1.0
    trace_share = float(sqrt_eigenvalues_desc[:k].sum() / sqrt_eigenvalues_desc.sum())
    frobenius_share = float((sqrt_eigenvalues_desc[:k] ** 2).sum() / (sqrt_eigenvalues_desc**2).sum())
    return trace_share, frobenius_share


def _as_finite_matrix(matrix: Any, name: str) -> np.ndarray:
    array = np.asarray(matrix)
    if array.ndim != 2:
        raise DataError(f"{name}: expected a 2-D array, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number):
        raise DataError(f"{name}: expected numbers, got dtype {array.dtype}")
    bad_rows = np.flatnonzero(~np.isfinite(array).all(axis=1))
    if len(bad_rows):
        raise DataError(f"{name}: {len(bad_rows)} rows contain NaN or inf (e.g. rows {bad_rows[:5].tolist()})")
    return array


def sqrt_psd_factor_from_embeddings(
    embeddings: np.ndarray, *, energy: float | None = None
) -> tuple[np.ndarray, SqrtFactorReport]:
    """Factor ``W`` with ``W Wᵀ = √S`` for the cosine similarity ``S = E Eᵀ`` of embeddings, without forming ``S``.

    Rows of ``E`` are normalised to unit norm first (cosine similarity). With the thin SVD ``E = U s Vᵀ``,
    ``√S = U diag(s) Uᵀ`` and ``W = U diag(√s)``. ``U`` comes from the eigen-decomposition of the small Gram matrix
    ``EᵀE`` (r, r) in float64, streamed over row blocks, so memory stays ``O(n·r)`` in float32.

    Args:
        embeddings: ``(n, r)`` text embeddings (any finite, non-zero rows).
        energy: keep the fewest top components holding this share of ``trace(√S) = Σ s``; ``None`` keeps all.

    Returns:
        ``W`` float32 ``(n, k)`` with ``k ≤ min(n, r)``, columns by decreasing singular value, and its report.
    """
    _check_energy(energy)
    embedding_matrix = _as_finite_matrix(embeddings, "embeddings")
    n_rows, dim = embedding_matrix.shape
    norms = np.linalg.norm(embedding_matrix.astype(np.float64), axis=1)
    zero_rows = np.flatnonzero(norms == 0)
    if len(zero_rows):
        raise DataError(f"embeddings: {len(zero_rows)} rows are all zeros (e.g. rows {zero_rows[:5].tolist()})")
    if n_rows == 0:
        return np.zeros((0, 0), np.float32), SqrtFactorReport(0, 0, 0, energy, 1.0, 1.0)

    def unit_block(start: int) -> np.ndarray:
        block = embedding_matrix[start:start + _BLOCK].astype(np.float64)
        return block / norms[start:start + _BLOCK, None]

    if n_rows <= dim:
        # Few rows: the n × n Gram matrix is the small one.
        unit = unit_block(0) if n_rows <= _BLOCK else embedding_matrix.astype(np.float64) / norms[:, None]
        eigenvalues, eigenvectors = np.linalg.eigh(unit @ unit.T)
        order = np.argsort(eigenvalues)[::-1]
        squared_singular, left_vectors = eigenvalues[order], eigenvectors[:, order]
        positive = squared_singular > _RELATIVE_EIGENVALUE_TOLERANCE * max(squared_singular[0], 0.0) * n_rows
        singular = np.sqrt(squared_singular[positive])
        k = _n_components_for_energy(singular, energy)
        factor = left_vectors[:, positive][:, :k] * np.sqrt(singular[:k])
    else:
        gram = np.zeros((dim, dim))
        for start in range(0, n_rows, _BLOCK):
            block = unit_block(start)
            gram += block.T @ block
        eigenvalues, eigenvectors = np.linalg.eigh(gram)
        order = np.argsort(eigenvalues)[::-1]
        squared_singular, right_vectors = eigenvalues[order], eigenvectors[:, order]
        positive = squared_singular > _RELATIVE_EIGENVALUE_TOLERANCE * max(squared_singular[0], 0.0) * dim
        singular = np.sqrt(squared_singular[positive])
        k = _n_components_for_energy(singular, energy)
        # U diag(√s) = E V diag(s) s^{-1} diag(√s) = E V diag(s^{-1/2})
        projection = right_vectors[:, positive][:, :k] / np.sqrt(singular[:k])
        factor = np.empty((n_rows, k))
        for start in range(0, n_rows, _BLOCK):
            factor[start:start + _BLOCK] = unit_block(start) @ projection
    trace_share, frobenius_share = _shares(singular, k)
    report = SqrtFactorReport(
        n=n_rows,
        n_components_total=int(len(singular)),
        n_components_kept=int(k),
        energy=energy,
        trace_share_kept=trace_share,
        frobenius_share_kept=frobenius_share,
    )
    return factor.astype(np.float32), report


def sqrt_psd_factor_from_dense(
    similarity: np.ndarray, *, energy: float | None = None
) -> tuple[np.ndarray, SqrtFactorReport]:
    """Factor ``W`` with ``W Wᵀ = √S₊`` for a dense similarity ``S`` (n, n) that may not be PSD.

    ``S`` is symmetrised, ``S = V diag(λ) Vᵀ`` (float64 ``eigh``), negative eigenvalues are clipped to 0 (the
    nearest PSD matrix in Frobenius norm), and ``√S₊ = V diag(√λ₊) Vᵀ = W Wᵀ`` with ``W = V diag(λ₊^{1/4})``.
    Dense ``O(n²)`` memory and ``O(n³)`` time: meant for LLMs (n ≤ ~5·10^3), never for items.

    Args:
        similarity: ``(n, n)`` finite similarity matrix.
        energy: keep the fewest top components holding this share of ``trace(√S₊) = Σ √λ₊``; ``None`` keeps all.

    Returns:
        ``W`` float32 ``(n, k)`` (columns by decreasing eigenvalue) and a report with the clipped spectral share.
    """
    _check_energy(energy)
    matrix = _as_finite_matrix(similarity, "similarity").astype(np.float64)
    if matrix.shape[0] != matrix.shape[1]:
        raise DataError(f"similarity: expected a square matrix, got shape {matrix.shape}")
    n_rows = matrix.shape[0]
    if n_rows == 0:
        return np.zeros((0, 0), np.float32), SqrtFactorReport(0, 0, 0, energy, 1.0, 1.0)
    max_asymmetry = float(np.max(np.abs(matrix - matrix.T)))
    eigenvalues, eigenvectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues, eigenvectors = eigenvalues[order], eigenvectors[:, order]
    total_mass = float(np.abs(eigenvalues).sum())
    clipped_share = float(np.abs(eigenvalues[eigenvalues < 0]).sum() / total_mass) if total_mass > 0 else 0.0
    positive = eigenvalues > _RELATIVE_EIGENVALUE_TOLERANCE * max(eigenvalues[0], 0.0) * n_rows
    sqrt_eigenvalues = np.sqrt(eigenvalues[positive])
    k = _n_components_for_energy(sqrt_eigenvalues, energy)
    factor = eigenvectors[:, positive][:, :k] * np.sqrt(sqrt_eigenvalues[:k])  # V diag(λ^{1/4})
    trace_share, frobenius_share = _shares(sqrt_eigenvalues, k)
    report = SqrtFactorReport(
        n=n_rows,
        n_components_total=int(len(sqrt_eigenvalues)),
        n_components_kept=int(k),
        energy=energy,
        trace_share_kept=trace_share,
        frobenius_share_kept=frobenius_share,
        clipped_negative_share=clipped_share,
        min_eigenvalue=float(eigenvalues[-1]),
        max_asymmetry=max_asymmetry,
    )
    return factor.astype(np.float32), report


# ================================================================================================= the potential
# On GPUs JAX multiplies float32 matrices in TF32 (~1e-3 relative error) by default; the identity below subtracts
# large terms, so full float32 precision is requested explicitly.
_FULL_PRECISION = jax.lax.Precision.HIGHEST


def gram_fro2(sqrt_sim_factor: np.ndarray) -> float:
    """``‖WᵀW‖²_F = ‖W Wᵀ‖²_F = ‖√S‖²_F`` for a factor ``W`` (n, k), in float64: the constant of the potential."""
    factor = np.asarray(sqrt_sim_factor, dtype=np.float64)
    if factor.ndim != 2:
        raise DataError(f"sqrt_sim_factor: expected a 2-D array, got shape {factor.shape}")
    gram = np.zeros((factor.shape[1], factor.shape[1]))
    for start in range(0, factor.shape[0], _BLOCK):
        block = factor[start:start + _BLOCK]
        gram += block.T @ block
    return float(np.sum(gram**2))


def gram_mismatch(
    latent: jax.Array, sqrt_sim_factor: jax.Array, WtW_fro2: float | jax.Array | None = None
) -> jax.Array:
    """``‖X Xᵀ − W Wᵀ‖²_F`` through the low-rank identity, never forming an n × n matrix.

    ``‖XᵀX‖²_F − 2‖WᵀX‖²_F + ‖WᵀW‖²_F``: O(n·d·k) time, O((d+k)²) memory, float32, jit- and grad-able.

    Args:
        latent: ``X`` of shape ``(n, d)``.
        sqrt_sim_factor: ``W`` of shape ``(n, k)`` with ``W Wᵀ = √S``.
        WtW_fro2: the constant ``‖WᵀW‖²_F`` if precomputed (see :func:`gram_fro2`; saves the O(n·k²) term when
            the potential is evaluated many times), else computed here.

    Returns:
        A float32 scalar. Note: it is a difference of large terms, so its absolute float32 error scales with
        ``‖XᵀX‖²_F``, not with the (possibly small) mismatch itself.
    """
    latent_fro2, cross_fro2, factor_fro2 = _gram_terms(latent, sqrt_sim_factor, WtW_fro2)
    return latent_fro2 - 2.0 * cross_fro2 + factor_fro2


def _gram_terms(latent, sqrt_sim_factor, WtW_fro2=None) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(‖XᵀX‖²_F, ‖WᵀX‖²_F, ‖WᵀW‖²_F)`` in float32 at full matmul precision."""
    latent = jnp.asarray(latent, dtype=jnp.float32)
    sqrt_sim_factor = jnp.asarray(sqrt_sim_factor, dtype=jnp.float32)
    latent_gram = jnp.matmul(latent.T, latent, precision=_FULL_PRECISION)  # (d, d)
    cross = jnp.matmul(sqrt_sim_factor.T, latent, precision=_FULL_PRECISION)  # (k, d)
    if WtW_fro2 is None:
        factor_gram = jnp.matmul(sqrt_sim_factor.T, sqrt_sim_factor, precision=_FULL_PRECISION)  # (k, k)
        WtW_fro2 = jnp.sum(factor_gram**2)
    return jnp.sum(latent_gram**2), jnp.sum(cross**2), jnp.asarray(WtW_fro2, dtype=jnp.float32)


def scaled_gram_mismatch(latent: jax.Array, sqrt_sim_factor: jax.Array, WtW_fro2: float | jax.Array | None = None) -> jax.Array:
    """``min_{s ≥ 0} ‖X Xᵀ − s·W Wᵀ‖²_F = ‖XᵀX‖²_F − ‖WᵀX‖⁴_F / ‖WᵀW‖²_F`` (low-rank, exact).

    The scale ``s`` of the similarity is profiled out: its optimum ``‖WᵀX‖²/‖WᵀW‖²`` is closed
    form (the MAP of a scale with a flat prior), so only the *shape* of ``√S`` is matched, not
    its units, which are arbitrary (a cosine's square root has nothing to do with logits).
    """
    latent_fro2, cross_fro2, factor_fro2 = _gram_terms(latent, sqrt_sim_factor, WtW_fro2)
    return latent_fro2 - cross_fro2**2 / factor_fro2


def gram_mismatch_dense(latent: jax.Array, sqrt_sim: jax.Array) -> jax.Array:
    """Reference ``‖X Xᵀ − √S‖²_F`` with the dense ``√S`` (n, n): O(n²) memory, for tests and small n only."""
    latent = jnp.asarray(latent, dtype=jnp.float32)
    residual = jnp.matmul(latent, latent.T, precision=_FULL_PRECISION) - jnp.asarray(sqrt_sim, dtype=jnp.float32)
    return jnp.sum(residual**2)


# ============================================================================================ LLM metadata parsing
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
    feature_names = (
        [_PARAMS_FEATURE]
        + [f"family={f}" for f in ARCHITECTURE_FAMILIES]
        + [f"purpose={p}" for p in PURPOSES]
        + [f"model_type={t}" for t in MODEL_TYPES]
        + list(_FLAG_COLUMNS)
        + [_UNKNOWN_INDICATOR]
    )
    column_of = {name: j for j, name in enumerate(feature_names)}
    features = np.zeros((len(llms), len(feature_names)), dtype=np.float64)

    unparsed_architectures: list[Any] = []
    unparsed_model_types: list[Any] = []
    families: list[str] = []
    model_types: list[str] = []
    n_params_missing = n_flags_unparsed = n_complete = n_fallback = 0

    records = llms[list(_FEATURE_COLUMNS_REQUIRED)].to_dict("records")
    for row, record in enumerate(records):
        params = _parse_params(record["params_billions"])
        architecture = _parse_architecture(record["architecture"])
        model_type = _parse_model_type(record["model_type"])
        flags = {
            "is_merged": _parse_flag(record["is_merged"]),
            "is_moe": _parse_flag(record["is_moe"]),
            "adapter_or_delta": _parse_weight_type(record["weight_type"]),
            "has_chat_template": _parse_flag(record["has_chat_template"]),
        }
        n_params_missing += params is None
        if architecture is None:
            unparsed_architectures.append(record["architecture"])
        if model_type is None:
            unparsed_model_types.append(record["model_type"])
        flags_unparsed = any(value is None for value in flags.values())
        n_flags_unparsed += flags_unparsed
        n_complete += params is not None and architecture is not None and model_type is not None and not flags_unparsed

        if params is None and architecture is None and model_type is None:
            features[row, column_of[_UNKNOWN_INDICATOR]] = 1.0
            n_fallback += 1
            continue
        if params is not None:
            features[row, column_of[_PARAMS_FEATURE]] = np.log10(max(params, 1.0)) / 12.0
        family, purpose = architecture if architecture is not None else ("other", "other")
        features[row, column_of[f"family={family}"]] = 1.0
        features[row, column_of[f"purpose={purpose}"]] = 1.0
        features[row, column_of[f"model_type={model_type or 'other'}"]] = 1.0
        for flag_name, flag_value in flags.items():
            features[row, column_of[flag_name]] = flag_value or 0.0
        families.append(family)
        model_types.append(model_type or "other")

    features /= np.linalg.norm(features, axis=1, keepdims=True).clip(min=1e-12)
    report = LLMFeatureReport(
        n_llms=len(llms),
        n_usable=len(llms) - n_fallback,
        n_complete=n_complete,
        n_fallback=n_fallback,
        n_params_missing=n_params_missing,
        n_architecture_unparsed=len(unparsed_architectures),
        n_model_type_unparsed=len(unparsed_model_types),
        n_flags_unparsed=n_flags_unparsed,
        unparsed_architectures=_counter_top(unparsed_architectures),
        unparsed_model_types=_counter_top(unparsed_model_types),
        family_counts=_counter_top(families, limit=len(ARCHITECTURE_FAMILIES)),
        model_type_counts=_counter_top(model_types, limit=len(MODEL_TYPES)),
    )
    return features.astype(np.float32), feature_names, report


# ================================================================================================= LLM lineage
LINEAGE_WEIGHTS: dict[str, float] = {
    "fine_tune": 0.8,  # one was fine-tuned from the other, or both were fine-tuned from the same parent
    "merge_source": 0.7,  # one was merged from the other
    "same_base_model": 0.6,  # same root ancestor along fine-tune hops (e.g. cousins, grandparent / grandchild)
    "same_merge_source": 0.5,  # both were merged from the same parent
}
"""PAPER.md "Side information" lineage weights; a pair takes the largest weight among the relations that hold."""

# Hugging Face repositories renamed after the leaderboard started, so both names occur as base_model values.
_RENAMED_REPO_PREFIXES: tuple[tuple[str, str], ...] = (
    ("meta-llama/meta-llama-3.1-", "meta-llama/llama-3.1-"),
)
_MERGE_SUFFIX = re.compile(r"\s*\(merge\)\s*$", re.IGNORECASE)
_NO_PARENT_VALUES = frozenset({"", "removed", "nan", "none", "null", "?", "unknown"})


def _canonical_llm_id(raw: str) -> str:
    """Compare Hugging Face ids the way the hub resolves them: case-insensitively, following known renames."""
    key = raw.strip().casefold()
    for old_prefix, new_prefix in _RENAMED_REPO_PREFIXES:
        if key.startswith(old_prefix):
            key = new_prefix + key[len(old_prefix):]
    return key


@dataclasses.dataclass(frozen=True)
class LineageReport:
    """What :func:`llm_lineage_matrix` found in the base_model column.

    Attributes:
        n_llms: rows of the table.
        n_with_parent: LLMs whose base_model names another model (one lineage hop).
        n_parent_in_table: of those, parents that are rows of this table.
        n_with_relation: LLMs with a non-zero lineage similarity to at least one other LLM ("usable lineage").
        n_fine_tune_edges, n_merge_edges: parent hops by type (decided by the child, see the function doc).
        n_no_parent_self: base_model is the LLM itself (no known parent).
        n_self_merge: base_model is "<the LLM itself> (Merge)": a merge whose sources the table does not list.
        n_removed: base_model is "Removed" (or empty / missing).
        n_parent_marked_merge: parents written as "<parent> (Merge)": the parent is itself a merge.
        n_id_case_duplicates: rows whose llm id equals an earlier row's up to case (same hub repository).
        pair_counts: unordered LLM pairs whose final weight came from each relation.
    """

    n_llms: int
    n_with_parent: int
    n_parent_in_table: int
    n_with_relation: int
    n_fine_tune_edges: int
    n_merge_edges: int
    n_no_parent_self: int
    n_self_merge: int
    n_removed: int
    n_parent_marked_merge: int
    n_id_case_duplicates: int
    pair_counts: dict[str, int]

    def __str__(self) -> str:
        return (
            f"LLM lineage: {self.n_with_relation}/{self.n_llms} LLMs related to another; {self.n_with_parent} name a "
            f"parent ({self.n_parent_in_table} in the table; {self.n_fine_tune_edges} fine-tune, {self.n_merge_edges} "
            f"merge hops); no parent: {self.n_no_parent_self} self, {self.n_self_merge} self-merge, "
            f"{self.n_removed} removed; pairs by relation {self.pair_counts}"
        )


def llm_lineage_matrix(llms: pd.DataFrame) -> tuple[np.ndarray, LineageReport]:
    """Dense lineage similarity ``S_lineage`` (n_llms, n_llms) from the leaderboard's one-hop base_model column.

    Reading base_model (one hop per LLM, as the leaderboard wrote it):
      - the LLM itself, ``"Removed"``, empty or missing: no known parent;
      - ``"<X> (Merge)"``: the suffix marks X as a merge model. When X is the LLM itself, the LLM is a merge whose
        sources are not listed (no parent). When X is another model, X is the parent; the suffix says nothing about
        how the child was made (on the leaderboard such children are fine-tunes with is_merged False);
      - anything else: the parent's Hugging Face id. Ids are compared case-insensitively, with the
        meta-llama/Meta-Llama-3.1-* -> meta-llama/Llama-3.1-* rename followed.

    Fine-tune vs merge hop: decided by the child, since the column names only one parent. The hop is a merge when
    the child is a merge (model_type "basemergesandmoerges" or is_merged True), else a fine-tune (fine-tuned, chat,
    continuously pretrained, adapters, ...).

    Relations (:data:`LINEAGE_WEIGHTS`; a pair takes the largest weight that holds; diagonal 1; 0 otherwise):
      - fine_tune 0.8: one is the fine-tune parent of the other, or both are fine-tunes of the same parent
        ("same fine-tuning source"; the parent need not be in the table);
      - merge_source 0.7: one is the merge parent of the other;
      - same_base_model 0.6: the same root, where the root is found by following fine-tune hops upward through the
        table until a model with no parent, a merge, or a parent outside the table (that parent id is then the
        root). This links cousins and grandparent/grandchild pairs along fine-tune chains. Merge hops are not
        followed because a merge has several sources and the table names only one of them, so it has no single
        base model;
      - same_merge_source 0.5: both were merged from the same parent.

    Args:
        llms: leaderboard metadata with columns llm, base_model, model_type, is_merged.

    Returns:
        ``S_lineage`` float32 ``(n_llms, n_llms)``, symmetric, values in {0, 0.5, 0.6, 0.7, 0.8, 1}, and a report.
    """
    _require_columns(llms, _LINEAGE_COLUMNS_REQUIRED, "LLM lineage")
    n_llms = len(llms)
    own_keys = [_canonical_llm_id(str(v)) for v in llms["llm"]]
    # Hub ids are case-insensitive, so rows differing only in case are the same repository submitted twice (the
    # leaderboard has a few); the first such row stands for the repository when it is named as a parent.
    row_of_key: dict[str, int] = {}
    for row, key in enumerate(own_keys):
        row_of_key.setdefault(key, row)
    n_id_case_duplicates = n_llms - len(row_of_key)

    parent_key: list[str | None] = [None] * n_llms
    is_merge_child = np.zeros(n_llms, dtype=bool)
    n_no_parent_self = n_self_merge = n_removed = n_parent_marked_merge = 0
    for row, record in enumerate(llms[list(_LINEAGE_COLUMNS_REQUIRED)].to_dict("records")):
        is_merge_child[row] = (
            _parse_model_type(record["model_type"]) == "merge" or _parse_flag(record["is_merged"]) == 1.0
        )
        raw_base = record["base_model"]
        if _is_missing(raw_base) or str(raw_base).strip().casefold() in _NO_PARENT_VALUES:
            n_removed += 1
            continue
        base_text = str(raw_base)
        marked_merge = bool(_MERGE_SUFFIX.search(base_text))
        candidate = _canonical_llm_id(_MERGE_SUFFIX.sub("", base_text))
        if not candidate or candidate in _NO_PARENT_VALUES:
            n_removed += 1
        elif candidate == own_keys[row]:
            if marked_merge:
                n_self_merge += 1
            else:
                n_no_parent_self += 1
        else:
            parent_key[row] = candidate
            n_parent_marked_merge += marked_merge

    def root_of(row: int) -> str:
        # Walk fine-tune hops upward; the visited set guards against cycles in hand-edited tables.
        visited = {row}
        current = row
        while True:
            if is_merge_child[current] or parent_key[current] is None:
                return own_keys[current]
            parent = parent_key[current]
            parent_row = row_of_key.get(parent)
            if parent_row is None or parent_row in visited:
                return parent
            visited.add(parent_row)
            current = parent_row

    lineage = np.zeros((n_llms, n_llms), dtype=np.float32)
    # Which relation set each pair's weight (0 = none), for the report; int8 keeps it at n² bytes.
    relation_names = ("",) + tuple(LINEAGE_WEIGHTS)
    relation_of_pair = np.zeros((n_llms, n_llms), dtype=np.int8)

    def link_group(rows: Sequence[int], relation: str) -> None:
        if len(rows) < 2:
            return
        index = np.asarray(rows)
        block = np.ix_(index, index)
        stronger = lineage[block] < LINEAGE_WEIGHTS[relation]
        lineage[block] = np.where(stronger, LINEAGE_WEIGHTS[relation], lineage[block])
        relation_of_pair[block] = np.where(stronger, relation_names.index(relation), relation_of_pair[block])

    # Weakest relation first, so that a stronger one overwrites it.
    merge_children: dict[str, list[int]] = defaultdict(list)
    fine_tune_children: dict[str, list[int]] = defaultdict(list)
    roots: dict[str, list[int]] = defaultdict(list)
    for row in range(n_llms):
        roots[root_of(row)].append(row)
        if parent_key[row] is not None:
            (merge_children if is_merge_child[row] else fine_tune_children)[parent_key[row]].append(row)
    for rows in merge_children.values():
        link_group(rows, "same_merge_source")
    for rows in roots.values():
        link_group(rows, "same_base_model")
    for parent, rows in merge_children.items():
        if parent in row_of_key:
            for row in rows:
                link_group([row, row_of_key[parent]], "merge_source")
    for parent, rows in fine_tune_children.items():
        link_group(rows + ([row_of_key[parent]] if parent in row_of_key else []), "fine_tune")
        # (a parent linked to all its fine-tune children at 0.8, and the children to each other at 0.8)

    np.fill_diagonal(lineage, 1.0)
    off_diagonal = lineage.copy()
    np.fill_diagonal(off_diagonal, 0.0)
    upper_codes = relation_of_pair[np.triu_indices(n_llms, k=1)]
    pair_counts = {name: int((upper_codes == code).sum()) for code, name in enumerate(relation_names) if code}
    with_parent = [row for row in range(n_llms) if parent_key[row] is not None]
    report = LineageReport(
        n_llms=n_llms,
        n_with_parent=len(with_parent),
        n_parent_in_table=sum(parent_key[row] in row_of_key for row in with_parent),
        n_with_relation=int((off_diagonal > 0).any(axis=1).sum()),
        n_fine_tune_edges=sum(not is_merge_child[row] for row in with_parent),
        n_merge_edges=sum(bool(is_merge_child[row]) for row in with_parent),
        n_no_parent_self=n_no_parent_self,
        n_self_merge=n_self_merge,
        n_removed=n_removed,
        n_parent_marked_merge=n_parent_marked_merge,
        n_id_case_duplicates=n_id_case_duplicates,
        pair_counts=pair_counts,
    )
    return lineage, report


@dataclasses.dataclass(frozen=True)
class LLMSimilarityReport:
    """Report of :func:`llm_similarity`: its ``alpha`` and the feature and lineage reports."""

    alpha: float
    features: LLMFeatureReport
    lineage: LineageReport
    feature_names: list[str]

    def __str__(self) -> str:
        return f"LLM similarity (alpha={self.alpha}):\n  {self.features}\n  {self.lineage}"


def llm_similarity(llms: pd.DataFrame, alpha: float = 0.5) -> tuple[np.ndarray, LLMSimilarityReport]:
    """``S_M = α·S_feature + (1−α)·S_lineage`` (n_llms, n_llms), dense float32, rows in table order.

    ``S_feature = F Fᵀ`` is the cosine similarity of :func:`llm_feature_matrix` rows (PSD, in [0, 1]);
    ``S_lineage`` is :func:`llm_lineage_matrix`. The sum is symmetric with unit diagonal but need not be PSD:
    pass it to :func:`sqrt_psd_factor_from_dense`, which clips and reports the negative part.

    Args:
        llms: leaderboard metadata, one row per LLM.
        alpha: weight of the feature similarity, in [0, 1] (the paper uses 0.5).
    """
    if not isinstance(alpha, (int, float)) or not 0.0 <= float(alpha) <= 1.0:
        raise ConfigError(f"alpha={alpha!r}: expected a weight in [0, 1]")
    features, feature_names, feature_report = llm_feature_matrix(llms)
    lineage, lineage_report = llm_lineage_matrix(llms)
    feature_similarity = features.astype(np.float64) @ features.T.astype(np.float64)
    similarity = float(alpha) * feature_similarity + (1.0 - float(alpha)) * lineage
    similarity = (similarity + similarity.T) / 2.0  # exact symmetry despite float round-off
    np.fill_diagonal(similarity, 1.0)
    report = LLMSimilarityReport(float(alpha), feature_report, lineage_report, feature_names)
    return similarity.astype(np.float32), report


# ======================================================================================================= oracle
@dataclasses.dataclass(frozen=True)
class OracleReport:
    """Report of :func:`oracle_factors`.

    Attributes:
        n_llms, n_items: shape of the score matrix ``Z``.
        n_observations: score records given (duplicates of a cell are averaged).
        n_observed_cells: distinct (llm, item) cells observed.
        filled_share: share of ``Z``'s cells filled in (not observed).
        n_llms_without_scores: LLMs with no observed cell (filled with the global mean).
        n_components_total, n_components_kept: positive singular values of ``Z``, and those kept.
        trace_share_kept: share of ``Σ σ`` (= ``trace √(ZᵀZ)``) kept.
        top_singular_values: the largest singular values of ``Z`` (up to 10).
    """

    n_llms: int
    n_items: int
    n_observations: int
    n_observed_cells: int
    filled_share: float
    n_llms_without_scores: int
    n_components_total: int
    n_components_kept: int
    trace_share_kept: float
    top_singular_values: list[float]


def _as_index(values: Any, size: int, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise DataError(f"{name}: expected a 1-D array, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise DataError(f"{name}: expected integer indices, got dtype {array.dtype}")
    out_of_range = np.flatnonzero((array < 0) | (array >= size))
    if len(out_of_range):
        raise DataError(
            f"{name}: {len(out_of_range)} indices outside [0, {size}) (e.g. {array[out_of_range[:5]].tolist()} at "
            f"positions {out_of_range[:5].tolist()})"
        )
    return array.astype(np.int64)


def oracle_factors(
    llm_idx: np.ndarray,
    item_idx: np.ndarray,
    correct: np.ndarray,
    n_llms: int,
    n_items: int,
    *,
    energy: float | None = None,
) -> tuple[np.ndarray, np.ndarray, OracleReport]:
    """Square-root factors of the oracle similarities ``S_M = Z Zᵀ`` and ``S_X = ZᵀZ`` (experiments only).

    ``Z`` (n_llms, n_items) is the full true score matrix from *all* observed cells (this uses test data: an upper
    bound, not a usable predictor). With the thin SVD ``Z = U Σ Vᵀ``: ``√(ZᵀZ) = V Σ Vᵀ`` and
    ``√(Z Zᵀ) = U Σ Uᵀ``, so ``W_items = V Σ^{1/2}`` and ``W_llms = U Σ^{1/2}``. No items × items matrix is built:
    the SVD comes from the Gram matrix of the smaller side in float64.

    Missing cells are filled with the LLM's mean observed score (the global mean for an LLM with none): a zero
    fill would read "unobserved" as "wrong" and make sparsely observed LLMs look weak, while the LLM mean keeps each
    LLM's overall ability, the dominant direction of ``Z``, and adds nothing item-specific that was not observed.

    Memory: ``Z`` is float32 plus an int32 count per cell, ~8 bytes × n_llms × n_items (2,000 × 20,000: ~320 MB),
    plus the (min side)² float64 Gram matrix.

    Args:
        llm_idx, item_idx: ``(n_obs,)`` integer row / column indices of the observed scores.
        correct: ``(n_obs,)`` scores in [0, 1] (0/1 correctness).
        n_llms, n_items: shape of ``Z``.
        energy: keep the fewest top components holding this share of ``Σ σ``; ``None`` keeps all.

    Returns:
        ``W_llms`` float32 ``(n_llms, k)``, ``W_items`` float32 ``(n_items, k)``, and a report.
    """
    _check_energy(energy)
    for name, size in (("n_llms", n_llms), ("n_items", n_items)):
        if not isinstance(size, (int, np.integer)) or size < 1:
            raise ConfigError(f"{name}={size!r}: expected a positive integer")
    llm_idx = _as_index(llm_idx, int(n_llms), "llm_idx")
    item_idx = _as_index(item_idx, int(n_items), "item_idx")
    scores = np.asarray(correct, dtype=np.float64)
    if not (llm_idx.shape == item_idx.shape == scores.shape):
        raise DataError(
            f"llm_idx, item_idx, correct: lengths differ ({llm_idx.shape}, {item_idx.shape}, {scores.shape})"
        )
    if scores.size == 0:
        raise DataError("correct: no observed scores; the oracle needs the true score matrix")
    bad = np.flatnonzero(~np.isfinite(scores) | (scores < 0) | (scores > 1))
    if len(bad):
        raise DataError(f"correct: {len(bad)} scores outside [0, 1] or not finite (e.g. positions {bad[:5].tolist()})")

    n_llms, n_items = int(n_llms), int(n_items)
    score_sum = np.zeros((n_llms, n_items), dtype=np.float32)
    cell_count = np.zeros((n_llms, n_items), dtype=np.int32)
    np.add.at(score_sum, (llm_idx, item_idx), scores.astype(np.float32))
    np.add.at(cell_count, (llm_idx, item_idx), 1)
    observed = cell_count > 0
    llm_totals = np.bincount(llm_idx, weights=scores, minlength=n_llms)
    llm_counts = np.bincount(llm_idx, minlength=n_llms)
    llm_means = np.where(llm_counts > 0, llm_totals / np.maximum(llm_counts, 1), scores.mean())
    score_matrix = np.where(observed, score_sum / np.maximum(cell_count, 1), llm_means[:, None].astype(np.float32))
    score_matrix = score_matrix.astype(np.float32)
    n_observed_cells = int(observed.sum())
    del score_sum, cell_count, observed

    # Thin SVD through the Gram matrix of the smaller side, accumulated in float64 over blocks of the larger side.
    llms_are_smaller = n_llms <= n_items
    small = n_llms if llms_are_smaller else n_items
    gram = np.zeros((small, small))
    large = n_items if llms_are_smaller else n_llms
    for start in range(0, large, _BLOCK):
        block = (score_matrix[:, start:start + _BLOCK] if llms_are_smaller else score_matrix[start:start + _BLOCK].T)
        block = block.astype(np.float64)
        gram += block @ block.T
    eigenvalues, eigenvectors = np.linalg.eigh(gram)
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues, eigenvectors = eigenvalues[order], eigenvectors[:, order]
    positive = eigenvalues > _RELATIVE_EIGENVALUE_TOLERANCE * max(eigenvalues[0], 0.0) * small
    singular = np.sqrt(eigenvalues[positive])
    k = _n_components_for_energy(singular, energy)
    small_vectors = eigenvectors[:, positive][:, :k]  # U (llms smaller) or V (items smaller)
    small_factor = small_vectors * np.sqrt(singular[:k])
    # The other side: V Σ^{1/2} = Zᵀ U Σ^{-1/2} (or U Σ^{1/2} = Z V Σ^{-1/2}), streamed over blocks.
    projection = small_vectors / np.sqrt(singular[:k])
    large_factor = np.empty((large, k))
    for start in range(0, large, _BLOCK):
        block = (score_matrix[:, start:start + _BLOCK].T if llms_are_smaller else score_matrix[start:start + _BLOCK])
        large_factor[start:start + _BLOCK] = block.astype(np.float64) @ projection
    llm_factor, item_factor = (small_factor, large_factor) if llms_are_smaller else (large_factor, small_factor)

    trace_share, _ = _shares(singular, k)
    report = OracleReport(
        n_llms=n_llms,
        n_items=n_items,
        n_observations=int(scores.size),
        n_observed_cells=n_observed_cells,
        filled_share=1.0 - n_observed_cells / (n_llms * n_items),
        n_llms_without_scores=int((llm_counts == 0).sum()),
        n_components_total=int(len(singular)),
        n_components_kept=int(k),
        trace_share_kept=trace_share,
        top_singular_values=[float(s) for s in singular[:10]],
    )
    return llm_factor.astype(np.float32), item_factor.astype(np.float32), report


# ================================================================================================== diagnostics
@dataclasses.dataclass(frozen=True)
class AlignmentReport:
    """How well a similarity agrees with the similarity of observed scores, over sampled off-diagonal pairs.

    Attributes:
        n_pairs: distinct pairs ``(i, j), i < j`` compared.
        pearson: Pearson correlation between ``√S_ij`` and the score-row cosine ``cos(z_i, z_j)``.
        spearman: Spearman (rank) correlation of the same two quantities.
    """

    n_pairs: int
    pearson: float
    spearman: float


def _paired_dots(rows: np.ndarray, first: np.ndarray, second: np.ndarray, block_bytes: int = 256 << 20) -> np.ndarray:
    """``rows[first[p]] · rows[second[p]]`` for every pair p, gathering a block of pairs at a time
    (a whole gather of wide rows for 10^5 pairs would take gigabytes)."""
    per_block = max(1, block_bytes // max(1, 2 * rows.shape[1] * rows.itemsize))
    values = np.empty(len(first))
    for start in range(0, len(first), per_block):
        block = slice(start, start + per_block)
        values[block] = np.einsum("pj,pj->p", rows[first[block]], rows[second[block]])
    return values


def similarity_alignment(
    sqrt_sim: np.ndarray,
    scores: np.ndarray,
    *,
    dense: bool = False,
    n_pairs: int = 100_000,
    seed: int = 0,
) -> AlignmentReport:
    """Correlation between ``√S`` and the cosine similarity of the entities' score vectors (a diagnostic).

    The potential matches ``√S`` to the latent Gram matrix, which should track score similarity, so a side
    information whose ``√S`` correlates with ``cos(z_i, z_j)`` can help cold starts; one that does not cannot.
    Pairs are sampled, so it works for 10^5 items without an n × n matrix.

    Args:
        sqrt_sim: a factor ``W`` (n, k) with ``√S = W Wᵀ`` or, with ``dense=True``, ``√S`` itself (n, n).
        scores: ``(n, m)`` scores of the same n entities on rows (LLMs × items for LLMs, items × LLMs for items),
            fully observed or filled (e.g. with means) by the caller; rows are centred before the cosine.
        dense: whether ``sqrt_sim`` is the dense ``√S``.
        n_pairs: pairs to sample (all pairs when there are fewer).
        seed: seed of the pair sample.
    """
    matrix = _as_finite_matrix(sqrt_sim, "sqrt_sim").astype(np.float64)
    score_matrix = _as_finite_matrix(scores, "scores").astype(np.float64)
    n_rows = matrix.shape[0]
    if score_matrix.shape[0] != n_rows or (dense and matrix.shape[1] != n_rows):
        raise DataError(f"sqrt_sim {matrix.shape} and scores {score_matrix.shape}: row counts must match")
    if n_rows < 3:
        raise DataError(f"sqrt_sim: need at least 3 rows to correlate pairs, got {n_rows}")
    if not isinstance(n_pairs, int) or n_pairs < 2:
        raise ConfigError(f"n_pairs={n_pairs!r}: expected an integer ≥ 2")
    n_all_pairs = n_rows * (n_rows - 1) // 2
    rng = np.random.default_rng(seed)
    if n_all_pairs <= n_pairs:
        first, second = np.triu_indices(n_rows, k=1)
    else:
        # Distinct pairs: sample linear indices of the strict upper triangle without replacement, then unrank them.
        linear = rng.choice(n_all_pairs, size=n_pairs, replace=False).astype(np.int64)
        first = n_rows - 2 - np.floor(np.sqrt(4.0 * n_rows * (n_rows - 1) - 8.0 * linear - 7.0) / 2.0 - 0.5)
        first = first.astype(np.int64)
        second = linear + first + 1 - n_all_pairs + (n_rows - first) * (n_rows - first - 1) // 2
    centred = score_matrix - score_matrix.mean(axis=1, keepdims=True)
    centred /= np.linalg.norm(centred, axis=1, keepdims=True).clip(min=1e-12)  # constant rows: cosine 0
    score_cosine = _paired_dots(centred, first, second)
    sim_values = matrix[first, second] if dense else _paired_dots(matrix, first, second)
    pearson = float(np.corrcoef(sim_values, score_cosine)[0, 1])
    spearman = float(
        np.corrcoef(pd.Series(sim_values).rank().to_numpy(), pd.Series(score_cosine).rank().to_numpy())[0, 1]
    )
    return AlignmentReport(n_pairs=int(len(first)), pearson=pearson, spearman=spearman)
