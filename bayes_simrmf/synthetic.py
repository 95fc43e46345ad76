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
