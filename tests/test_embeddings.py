"""Tests of the question embeddings (bayes_simrmf.similarity: embed, embedding_models, embedding_cache,
precomputed_embeddings): text hashes, the real default model against the shipped precomputed vectors,
the on-disk cache (hits, interruption safety), fail-fast model resolution, and the precomputed-vector loader.

Most cache tests use a fake sentence model (fast, counts what it embeds); one test loads the real default model on
~20 real texts (~15 s on 2 CPU cores)."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bayes_simrmf.errors import BayesSimRMFError, ConfigError, DataError
from bayes_simrmf.similarity import (
    DEFAULT_EMBEDDING_MODEL,
    E5_QUERY_PROMPT,
    EmbeddingModelSpec,
    default_cache_dir,
    embed_texts,
    load_precomputed_embeddings,
    resolve_embedding_model,
    text_sha256_16,
)
from bayes_simrmf.similarity import embed, embedding_cache, embedding_models

DATASET = "openllm-v2-mmlupro-math"
PRECOMPUTED_NAME = "item_embeddings.all-MiniLM-L6-v2.parquet"


def _shared_dataset(name: str) -> Path:
    """Real data folder: $BAYES_SIMRMF_DATA/<name> or <repo>/../shared/data/<name>; skip the test if absent."""
    root = os.environ.get("BAYES_SIMRMF_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data"
    folder = Path(root) / name
    if not (folder / "items.parquet").is_file():
        pytest.skip(f"real data folder {folder} not available")
    return folder


class FakeSentenceModel:
    """Deterministic stand-in for a SentenceTransformer: a vector per (prompt, text); counts texts embedded."""

    dim = 8

    def __init__(self) -> None:
        self.n_texts_embedded = 0
        self.fail_on_call: int | None = None
        self.n_calls = 0

    def encode(self, texts: list[str], *, batch_size: int, prompt: str | None, **_: Any) -> np.ndarray:
        self.n_calls += 1
        if self.fail_on_call is not None and self.n_calls == self.fail_on_call:
            raise KeyboardInterrupt("simulated Ctrl-C during embedding")
        assert len(texts) <= batch_size
        self.n_texts_embedded += len(texts)
        vectors = []
        for text in texts:
            seed = int(hashlib.sha256(((prompt or "") + text).encode()).hexdigest()[:8], 16)
            vectors.append(np.random.default_rng(seed).normal(size=self.dim))
        vectors = np.asarray(vectors, dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Replace model loading by a counter + fake model; returns the counters."""
    state: dict[str, Any] = {"loads": 0, "model": FakeSentenceModel()}

    def fake_loader(spec: EmbeddingModelSpec) -> FakeSentenceModel:
        state["loads"] += 1
        return state["model"]

    monkeypatch.setattr(embed, "_load_sentence_transformer", fake_loader)
    return state


def _chunk_files(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.rglob("emb-*.npz"))


def _temp_files(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.rglob(".tmp-*"))


# ------------------------------------------------------------------------------------------------- text hashes
def test_text_sha256_16_is_the_hash_of_the_shared_precomputed_files() -> None:
    folder = _shared_dataset(DATASET)
    items = pd.read_parquet(folder / "items.parquet")
    precomputed = pd.read_parquet(folder / PRECOMPUTED_NAME, columns=["item", "text_sha256_16"])
    merged = items.merge(precomputed, on="item", validate="one_to_one")
    assert len(merged) == len(items)
    assert (merged["text"].map(text_sha256_16) == merged["text_sha256_16"]).all()
    assert text_sha256_16("é") == hashlib.sha256("é".encode("utf-8")).hexdigest()[:16]
    assert len(text_sha256_16("")) == 16


# --------------------------------------------------------------------------------------------- the real model
@pytest.mark.slow
def test_default_model_reproduces_shipped_embeddings_and_caches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _shared_dataset(DATASET)
    items = pd.read_parquet(folder / "items.parquet").iloc[::67].head(20)  # spread over the file, ~20 texts
    texts = items["text"].tolist()

    vectors = embed_texts(texts, cache_dir=tmp_path, progress=False)
    assert vectors.shape == (len(texts), 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)

    shipped = load_precomputed_embeddings(folder / PRECOMPUTED_NAME, items["item"].tolist(), texts)
    cosine = np.sum(vectors * shipped, axis=1)
    assert cosine.min() > 0.999, cosine

    # Second call: everything comes from the cache, the model is not even loaded.
    def must_not_load(spec: EmbeddingModelSpec) -> None:
        raise AssertionError("model loaded although every text is cached")

    monkeypatch.setattr(embed, "_load_sentence_transformer", must_not_load)
    again = embed_texts(list(reversed(texts)), cache_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(again, vectors[::-1])


def test_default_model_identity_is_pinned() -> None:
    spec = resolve_embedding_model(DEFAULT_EMBEDDING_MODEL)
    assert spec.revision == "sha256:53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    assert spec.max_seq_length == 256 and spec.prompt == ""
    assert resolve_embedding_model("sentence-transformers/all-MiniLM-L6-v2").revision == spec.revision


def test_default_model_with_wrong_weights_hash_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedding_models, "_DEFAULT_MODEL_WEIGHTS_SHA256", "0" * 64)
    with pytest.raises(ConfigError, match="sha256"):
        resolve_embedding_model(DEFAULT_EMBEDDING_MODEL)


# ------------------------------------------------------------------------------------------------- model names
def test_missing_hub_model_fails_fast_with_instructions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty_hf_home"))  # certainly not cached here
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty_hf_home" / "hub"))
    start = time.monotonic()
    with pytest.raises(BayesSimRMFError) as caught:
        embed_texts(["a question"], model="e5-multilingual-base", cache_dir=tmp_path / "cache", progress=False)
    assert time.monotonic() - start < 10.0
    message = str(caught.value)
    assert "embaas/sentence-transformers-multilingual-e5-base" in message
    assert "not in the local Hugging Face cache" in message
    assert "huggingface-cli download" in message


def test_local_folder_models_get_e5_prompt_and_content_revision(tmp_path: Path) -> None:
    e5_folder = tmp_path / "my-e5-small"
    e5_folder.mkdir()
    (e5_folder / "model.safetensors").write_bytes(b"weights v1")
    (e5_folder / "config.json").write_text("{}")
    spec = resolve_embedding_model(str(e5_folder))
    assert spec.prompt == E5_QUERY_PROMPT and spec.load_path == e5_folder.resolve()
    assert resolve_embedding_model(str(e5_folder), prompt="").prompt == ""

    plain_folder = tmp_path / "bge5-like"  # "e5" inside another word: no prompt
    plain_folder.mkdir()
    (plain_folder / "model.safetensors").write_bytes(b"weights")
    assert resolve_embedding_model(str(plain_folder)).prompt == ""

    (e5_folder / "model.safetensors").write_bytes(b"weights v2")  # new weights -> new cache identity
    assert resolve_embedding_model(str(e5_folder)).revision != spec.revision

    empty_folder = tmp_path / "no-weights"
    empty_folder.mkdir()
    with pytest.raises(ConfigError, match="no weights"):
        resolve_embedding_model(str(empty_folder))


def test_bad_arguments_are_named(fake_model: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(DataError, match="texts"):
        embed_texts("one string", cache_dir=tmp_path)
    with pytest.raises(DataError, match="not strings"):
        embed_texts(["ok", 3], cache_dir=tmp_path)  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="batch_size"):
        embed_texts(["ok"], batch_size=0, cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="model"):
        embed_texts(["ok"], model="  ", cache_dir=tmp_path)


# -------------------------------------------------------------------------------------------------------- cache
def test_second_call_embeds_nothing_and_duplicates_are_embedded_once(
    fake_model: dict[str, Any], tmp_path: Path
) -> None:
    texts = [f"question {i}" for i in range(10)] + ["question 3", "question 4"]
    first = embed_texts(texts, batch_size=4, cache_dir=tmp_path, progress=False)
    assert first.shape == (12, FakeSentenceModel.dim)
    assert fake_model["model"].n_texts_embedded == 10 and fake_model["loads"] == 1
    np.testing.assert_array_equal(first[10], first[3])

    second = embed_texts(texts[::-1], batch_size=4, cache_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(second, first[::-1])
    assert fake_model["model"].n_texts_embedded == 10 and fake_model["loads"] == 1  # nothing new, no load

    embed_texts(texts + ["new one"], cache_dir=tmp_path, progress=False)
    assert fake_model["model"].n_texts_embedded == 11  # only the new text

    # A different prompt is a different cache identity.
    embed_texts(texts[:2], cache_dir=tmp_path, prompt="query: ", progress=False)
    assert fake_model["model"].n_texts_embedded == 13
    assert embed_texts([], cache_dir=tmp_path, progress=False).shape[0] == 0


def test_cache_dir_defaults_to_environment(
    fake_model: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BAYES_SIMRMF_CACHE", str(tmp_path / "env_cache"))
    assert default_cache_dir() == tmp_path / "env_cache"
    embed_texts(["a", "b"], progress=False)
    assert len(_chunk_files(tmp_path / "env_cache")) == 1
    monkeypatch.delenv("BAYES_SIMRMF_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "bayes_simrmf" / "embeddings"


def test_interrupted_cache_write_leaves_no_corrupt_entry(
    fake_model: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = [f"text {i}" for i in range(5)]

    def crash_mid_write(handle: Any, **arrays: Any) -> None:
        handle.write(b"PK\x03\x04 half a zip file")  # the process dies after a partial write
        raise KeyboardInterrupt("simulated Ctrl-C while writing")

    monkeypatch.setattr(embedding_cache.np, "savez", crash_mid_write)
    with pytest.raises(KeyboardInterrupt):
        embed_texts(texts, cache_dir=tmp_path, progress=False)
    monkeypatch.undo()  # restores np.savez (and the fake model fixture's patch, re-applied below)
    monkeypatch.setattr(embed, "_load_sentence_transformer", lambda spec: fake_model["model"])

    assert _chunk_files(tmp_path) == [] and _temp_files(tmp_path) == []
    recovered = embed_texts(texts, cache_dir=tmp_path, progress=False)
    assert fake_model["model"].n_texts_embedded == 10  # embedded again: nothing half-written was trusted
    again = embed_texts(texts, cache_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(again, recovered)
    assert fake_model["model"].n_texts_embedded == 10


def test_interrupted_embedding_keeps_finished_chunks(fake_model: dict[str, Any], tmp_path: Path) -> None:
    texts = [f"item {i}" for i in range(10)]
    fake_model["model"].fail_on_call = 4  # batches of 2: four texts make a chunk; Ctrl-C on the 4th batch
    with pytest.raises(KeyboardInterrupt):
        embed_texts(texts, batch_size=2, cache_chunk_size=4, cache_dir=tmp_path, progress=False)
    assert len(_chunk_files(tmp_path)) == 1 and _temp_files(tmp_path) == []
    fake_model["model"].fail_on_call = None
    done_before = fake_model["model"].n_texts_embedded
    embed_texts(texts, batch_size=2, cache_chunk_size=4, cache_dir=tmp_path, progress=False)
    assert fake_model["model"].n_texts_embedded - done_before == 6  # the 4 saved texts are not redone


def test_leftover_temp_and_foreign_files_are_ignored(fake_model: dict[str, Any], tmp_path: Path) -> None:
    embed_texts(["x", "y"], cache_dir=tmp_path, progress=False)
    entry_dir = _chunk_files(tmp_path)[0].parent
    (entry_dir / ".tmp-killed.npz").write_bytes(b"PK\x03\x04 truncated by kill -9")
    (entry_dir / "emb-garbage.npz").write_bytes(b"not a zip file")
    with pytest.warns(UserWarning, match="unreadable embedding cache file"):
        vectors = embed_texts(["x", "y"], cache_dir=tmp_path, progress=False)
    assert vectors.shape == (2, FakeSentenceModel.dim)
    assert fake_model["model"].n_texts_embedded == 2


# -------------------------------------------------------------------------------------- precomputed embeddings
def _write_precomputed(path: Path, items: list[str], texts: list[str], vectors: list[Any]) -> Path:
    pd.DataFrame(
        {"item": items, "text_sha256_16": [text_sha256_16(t) for t in texts], "embedding": vectors}
    ).to_parquet(path)
    return path


def test_load_precomputed_embeddings_on_real_file() -> None:
    folder = _shared_dataset(DATASET)
    items = pd.read_parquet(folder / "items.parquet")
    wanted = items.iloc[[5, 0, 1000, 17]]
    vectors = load_precomputed_embeddings(folder / PRECOMPUTED_NAME, wanted["item"], wanted["text"].tolist())
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    raw = pd.read_parquet(folder / PRECOMPUTED_NAME).set_index("item").loc[wanted["item"], "embedding"]
    np.testing.assert_allclose(vectors, np.stack(raw.to_list()), atol=1e-5)


def test_load_precomputed_embeddings_errors(tmp_path: Path) -> None:
    items, texts = ["q/1", "q/2", "q/3"], ["one", "two", "three"]
    good = _write_precomputed(tmp_path / "good.parquet", items, texts, [[3.0, 4.0], [1.0, 0.0], [0.0, 2.0]])
    vectors = load_precomputed_embeddings(good, ["q/3", "q/1"], ["three", "one"])
    np.testing.assert_allclose(vectors, [[0.0, 1.0], [0.6, 0.8]])  # order of item_ids, re-normalised

    with pytest.raises(DataError, match=r"no embedding for 2 of 3 items.*'q/9'"):
        load_precomputed_embeddings(good, ["q/1", "q/9", "q/8"])
    with pytest.raises(DataError, match=r"stale.*'q/2'"):
        load_precomputed_embeddings(good, ["q/1", "q/2"], ["one", "two, edited"])
    with pytest.raises(DataError, match="expected_dim=3"):
        load_precomputed_embeddings(good, ["q/1"], expected_dim=3)
    with pytest.raises(DataError, match="texts"):
        load_precomputed_embeddings(good, ["q/1"], ["one", "two"])

    ragged = _write_precomputed(tmp_path / "ragged.parquet", items, texts, [[1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0]])
    with pytest.raises(DataError, match=r"different lengths.*'q/2'"):
        load_precomputed_embeddings(ragged, items)

    non_finite = _write_precomputed(tmp_path / "nan.parquet", items, texts, [[1.0, 0.0], [np.nan, 0.0], [0.0, 1.0]])
    with pytest.raises(DataError, match=r"NaN or inf.*'q/2'"):
        load_precomputed_embeddings(non_finite, items)

    zeros = _write_precomputed(tmp_path / "zero.parquet", items, texts, [[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])
    with pytest.raises(DataError, match=r"all zeros.*'q/2'"):
        load_precomputed_embeddings(zeros, items)

    duplicated = _write_precomputed(tmp_path / "dup.parquet", ["q/1", "q/1"], ["a", "b"], [[1.0], [1.0]])
    with pytest.raises(DataError, match=r"more than once.*'q/1'"):
        load_precomputed_embeddings(duplicated, ["q/1"])

    pd.DataFrame({"item": items, "embedding": [[1.0]] * 3}).to_parquet(tmp_path / "nohash.parquet")
    with pytest.raises(DataError, match="text_sha256_16"):
        load_precomputed_embeddings(tmp_path / "nohash.parquet", items)
    with pytest.raises(DataError, match="not found"):
        load_precomputed_embeddings(tmp_path / "absent.parquet", items)
