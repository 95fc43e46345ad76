"""Generated datasets with a planted structure, drawn from the model itself.

Used by the offline demo (``bayes-simrmf fit`` with no ``--data``) and by tests. The
responses are sampled by :func:`~bayes_simrmf.model.simrmf_model` conditioned on known
"true" parameters, the NumPyro way: the same function that is fitted also simulates.
Items get short texts and LLMs leaderboard-like metadata that follow the planted factors (a
question's topic, an LLM's family, size and base model), so SimRMF's side information has
something to find, as on real data.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from numpyro.handlers import condition, seed, trace

from bayes_simrmf.data import Dataset, from_frames
from bayes_simrmf.errors import ConfigError
from bayes_simrmf.model import (
    INTERCEPT,
    ITEM_BIAS,
    ITEM_FACTORS,
    LLM_BIAS,
    LLM_FACTORS,
    OBSERVED,
    DenseLayout,
    ModelConfig,
    simrmf_model,
)

_FAMILIES = ("LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM", "Gemma2ForCausalLM")
_TOPICS = ("algebra", "geometry", "probability", "number theory", "logic", "physics", "chemistry", "biology")


def planted_parameters(
    n_llms: int, n_items: int, dim: int, rng: np.random.Generator, *, intercept: float = -0.8
) -> dict[str, np.ndarray]:
    """True parameters: LLM abilities and item difficulties plus a ``dim``-rank interaction."""
    return {
        INTERCEPT: np.float32(intercept),
        LLM_BIAS: rng.normal(0.0, 1.0, n_llms).astype(np.float32),
        ITEM_BIAS: rng.normal(0.0, 1.5, n_items).astype(np.float32),
        LLM_FACTORS: rng.normal(0.0, 0.8, (n_llms, dim)).astype(np.float32),
        ITEM_FACTORS: rng.normal(0.0, 0.8, (n_items, dim)).astype(np.float32),
    }


def simulate_scores(params: dict[str, np.ndarray], dim: int, seed_value: int) -> np.ndarray:
    """Draw the full ``(n_llms, n_items)`` 0/1 matrix from the model given ``params``."""
    n_llms, n_items = len(params[LLM_BIAS]), len(params[ITEM_BIAS])
    layout = DenseLayout(mask=jnp.ones((n_llms, n_items), dtype=bool))
    conditioned = condition(simrmf_model, data={k: jnp.asarray(v) for k, v in params.items()})
    model_trace = trace(seed(conditioned, jax.random.PRNGKey(seed_value))).get_trace(
        n_llms, n_items, layout, ModelConfig(dim=dim)
    )
    return np.asarray(model_trace[OBSERVED]["value"]).astype(np.int8)


def _direction(factors: np.ndarray) -> np.ndarray:
    """Per row, the signed axis its factors point along most: ``2·argmax|f| + (that entry < 0)``."""
    axis = np.argmax(np.abs(factors), axis=1)
    return 2 * axis + (factors[np.arange(len(factors)), axis] < 0)


def make_synthetic_dataset(
    n_llms: int = 300,
    n_items: int = 600,
    dim: int = 4,
    observed_share: float = 1.0,
    seed_value: int = 0,
) -> tuple[Dataset, dict[str, np.ndarray]]:
    """A dataset sampled from the model, and the true parameters it was drawn with.

    Args:
        n_llms, n_items: shape of the score matrix.
        dim: rank of the planted interaction.
        observed_share: share of cells kept (at random), in (0, 1].
        seed_value: seeds everything.
    """
    if n_llms < 2 or n_items < 2:
        raise ConfigError(f"need at least 2 LLMs and 2 items, got n_llms={n_llms}, n_items={n_items}")
    if not 0 < observed_share <= 1:
        raise ConfigError(f"observed_share must be in (0, 1], got {observed_share!r}")
    rng = np.random.default_rng(seed_value)
    params = planted_parameters(n_llms, n_items, dim, rng)
    scores = simulate_scores(params, dim, seed_value)
    llm_ids = np.array([f"synthetic/llm-{i:05d}" for i in range(n_llms)])
    item_ids = np.array([f"synthetic/item-{k:06d}" for k in range(n_items)])
    keep = rng.random((n_llms, n_items)) < observed_share
    llm_idx, item_idx = np.nonzero(keep)
    responses = pd.DataFrame({"llm": llm_ids[llm_idx], "item": item_ids[item_idx], "correct": scores[llm_idx, item_idx]})
    # Side information that carries the planted structure, as real texts and metadata do: a question's topic is
    # the direction its factors point in most; an LLM's architecture family likewise, its size grows with its
    # ability, and the LLMs of a family are fine-tunes of the family's first LLM.
    topics = _direction(params[ITEM_FACTORS]) % len(_TOPICS)
    items = pd.DataFrame(
        {
            "item": item_ids,
            "benchmark": "synthetic",
            "subtask": [_TOPICS[t] for t in topics],
            "text": [f"Synthetic {_TOPICS[t]} question number {k}." for k, t in enumerate(topics)],
        }
    )
    family = _direction(params[LLM_FACTORS]) % len(_FAMILIES)
    first_of_family = {f: llm_ids[np.flatnonzero(family == f)[0]] for f in np.unique(family)}
    llms = pd.DataFrame(
        {
            "llm": llm_ids,
            "architecture": [_FAMILIES[f] for f in family],
            "params_billions": np.round(np.exp(2.0 + 0.8 * params[LLM_BIAS] + rng.normal(0.0, 0.3, n_llms)), 2),
            "model_type": rng.choice(["pretrained", "fine-tunedondomain-specificdatasets", "chatmodels"], n_llms),
            "base_model": [first_of_family[f] for f in family],
            "weight_type": "Original",
            "is_merged": False,
            "is_moe": False,
            "has_chat_template": rng.random(n_llms) < 0.5,
        }
    )
    dataset = from_frames(responses, items, llms, name="synthetic", log=None)
    return dataset, params


# Leaderboard-like side information at any scale (experiments/bench).
_ARCHITECTURES = (
    "LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM", "Gemma2ForCausalLM", "Phi3ForCausalLM",
    "GPT2LMHeadModel", "GPTNeoXForCausalLM", "Qwen2MoeForCausalLM", "MixtralForCausalLM", "T5ForConditionalGeneration",
)
_ARCHITECTURE_SHARES = np.array([30, 30, 15, 8, 5, 3, 3, 2, 2, 2]) / 100


def synthetic_llm_metadata(n: int, rng: np.random.Generator):
    """Leaderboard-like metadata for ``n`` LLMs (the columns ``llm_similarity`` reads) and a family code per LLM.

    One LLM in 12 is a pretrained root (architecture, parameter count); the others are fine-tunes (75%) or merges
    (25%) of a root or of an earlier LLM, inheriting its architecture and size: a random family tree.
    """
    import pandas as pd

    n_roots = max(4, n // 12)
    architecture = rng.choice(len(_ARCHITECTURES), n_roots, p=_ARCHITECTURE_SHARES)
    rows, family = [], np.empty(n, np.int64)
    for i in range(n):
        name = f"org{i % 97:02d}/model-{i:05d}"
        if i < n_roots:
            family[i] = i
            rows.append(dict(llm=name, architecture=_ARCHITECTURES[architecture[i]], model_type="pretrained",
                             params_billions=float(np.round(np.exp(rng.normal(2.0, 1.0)), 2)), is_merged=False,
                             is_moe=bool(architecture[i] in (7, 8)), weight_type="Original", has_chat_template=False,
                             base_model=name))
            continue
        parent = int(rng.integers(0, n_roots)) if rng.random() < 0.5 else int(rng.integers(0, i))
        family[i] = family[parent]
        merge = bool(rng.random() < 0.25)
        source = rows[parent]
        rows.append(dict(
            llm=name, architecture=source["architecture"],
            model_type="basemergesandmoerges" if merge else str(rng.choice(["fine-tunedondomain-specificdatasets", "chatmodels"])),
            params_billions=source["params_billions"], is_merged=merge, is_moe=source["is_moe"],
            weight_type="Adapter" if rng.random() < 0.05 else "Original", has_chat_template=bool(rng.random() < 0.6),
            base_model=source["llm"] + (" (Merge)" if merge else ""),
        ))
    return pd.DataFrame(rows), family


def synthetic_item_embeddings(n: int, dim: int, rng: np.random.Generator, n_clusters: int = 200):
    """Unit-norm ``(n, dim)`` float32 embeddings with a shared direction, topic clusters and a rank-16 style part.

    ``e = 1.2·μ + C[topic] + B u + 0.35·noise`` (then normalised): cosine similarities are all positive, like sentence
    embeddings of one benchmark, high within a topic, and the spectrum has a few strong directions over a full-rank
    floor. Returns the embeddings and each item's topic.
    """
    shared = rng.standard_normal(dim)
    shared /= np.linalg.norm(shared)
    centres = rng.standard_normal((n_clusters, dim)) / np.sqrt(dim)
    basis = rng.standard_normal((16, dim)) / np.sqrt(dim)
    topic = rng.integers(0, n_clusters, n)
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, 8192):
        rows = slice(start, min(n, start + 8192))
        m = rows.stop - rows.start
        block = (1.2 * shared + centres[topic[rows]] + 0.5 * rng.standard_normal((m, 16)) @ basis
                 + 0.35 * rng.standard_normal((m, dim)) / np.sqrt(dim))
        out[rows] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out, topic
