"""The Qdrant vector store (local mode, no server) against the hnswlib index it stands in for."""

from __future__ import annotations

import numpy as np
import pytest

from vitgallery.cli import main
from vitgallery.core.index import IndexMismatch, VectorIndex
from vitgallery.core.library import Library
from vitgallery.core.models import load_embedder
from vitgallery.core.vector_store import (
    QdrantIndex,
    VectorStoreError,
    VectorStoreSetting,
    load_index,
    new_index,
)

pytest.importorskip("qdrant_client")

LOCAL = VectorStoreSetting.parse("qdrant")


def unit_vectors(count: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((count, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_setting_parses_and_words_mistakes():
    assert VectorStoreSetting.parse("hnswlib") == VectorStoreSetting()
    assert VectorStoreSetting.parse("qdrant") == VectorStoreSetting("qdrant")
    server = VectorStoreSetting.parse("qdrant:http://nas.local:6333")
    assert (server.kind, server.url, str(server)) == ("qdrant", "http://nas.local:6333", "qdrant:http://nas.local:6333")
    for bad in ("faiss", "hnswlib:x", "qdrant:nas.local:6333"):
        with pytest.raises(VectorStoreError):
            VectorStoreSetting.parse(bad)


def test_qdrant_answers_as_the_hnswlib_index_does(tmp_path):
    vectors = unit_vectors(200)
    labels = np.arange(10, 210, dtype=np.int64)
    hnsw = VectorIndex(16, "sig")
    qdrant = new_index(LOCAL, tmp_path, 16, "sig")
    for index in (hnsw, qdrant):
        index.add(labels, vectors)
        index.remove(labels[:5])
        index.add(labels[:2], vectors[:2])  # a removed label comes back
    assert len(qdrant) == len(hnsw) == 197
    assert np.array_equal(qdrant.labels(), hnsw.labels())
    queries = unit_vectors(5, seed=1)
    hnsw_labels, hnsw_sims = hnsw.query(queries, 10)
    qdrant_labels, qdrant_sims = qdrant.query(queries, 10)
    assert np.array_equal(qdrant_labels, hnsw_labels)
    assert np.allclose(qdrant_sims, hnsw_sims, atol=1e-5)
    assert np.allclose(qdrant.get_vectors(labels[10:12]), vectors[10:12], atol=1e-6)
    with pytest.raises(KeyError):
        qdrant.get_vectors(labels[2:3])
    assert qdrant.query(queries[0], 500)[0].shape == (1, 197)


def test_saved_collection_loads_and_a_stale_one_is_refused(tmp_path):
    path = tmp_path / "index.hnsw"
    index = new_index(LOCAL, tmp_path, 16, "sig")
    index.add(np.arange(50), unit_vectors(50))
    index.save(path, generation=3)
    loaded = load_index(LOCAL, path, model_signature="sig", dim=16, generation=3)
    assert isinstance(loaded, QdrantIndex) and len(loaded) == 50
    for signature, generation in (("other", 3), ("sig", 4)):
        with pytest.raises(IndexMismatch):
            load_index(LOCAL, path, model_signature=signature, dim=16, generation=generation)
    index.add(np.arange(50, 60), unit_vectors(10, seed=2))  # vectors the header does not count: a crash
    with pytest.raises(IndexMismatch):
        load_index(LOCAL, path, model_signature="sig", dim=16, generation=3)
    with pytest.raises(IndexMismatch):  # an hnswlib header is not a Qdrant one, nor the reverse
        load_index(VectorStoreSetting(), path, model_signature="sig", dim=16, generation=3)


def test_save_drops_the_collection_a_refit_replaced(tmp_path):
    path = tmp_path / "index.hnsw"
    old = new_index(LOCAL, tmp_path, 16, "sig|whitening:a")
    old.save(path, generation=1)
    new = new_index(LOCAL, tmp_path, 16, "sig|whitening:b")
    new.save(path, generation=1)
    names = [c.name for c in new._client.get_collections().collections]
    assert names == [new.collection]


def test_library_on_qdrant_finds_what_hnswlib_finds(photo_folder, tmp_path):
    embedder = load_embedder("tiny-test")
    photos = sorted(photo_folder.rglob("*.jpg"))
    results = {}
    for store in ("hnswlib", "qdrant"):
        library = Library.open(photo_folder, tmp_path / store, vector_store=VectorStoreSetting.parse(store))
        library.index(embedder, decode_workers=0, batch_size=4)
        results[store] = [[h.path.name for h in library.search(photo, k=5)] for photo in photos]
        library.close()
    assert results["qdrant"] == results["hnswlib"]
    reopened = Library.open(library_dir=tmp_path / "qdrant")
    assert str(reopened.vector_store) == "qdrant"
    assert reopened.search(photos[0], k=3)
    assert reopened.notices == [], "the saved collection is used as it is, not rebuilt"
    reopened.close()


def test_cli_index_on_qdrant_and_an_unreachable_server(photo_folder, tmp_path, capsys):
    library = tmp_path / "lib"
    args = ["index", str(photo_folder), "--library", str(library), "--model", "tiny-test", "--workers", "0"]
    assert main([*args, "--vector-store", "qdrant"]) == 0
    assert "added 12" in capsys.readouterr().out
    assert (library / "qdrant").is_dir()
    assert main([*args, "--vector-store", "qdrant:http://127.0.0.1:9"]) != 0  # nothing listens on port 9
    assert "Qdrant (http://127.0.0.1:9) failed" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*args, "--vector-store", "faiss"])
    assert "unknown vector store" in capsys.readouterr().err
