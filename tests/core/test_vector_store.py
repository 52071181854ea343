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
    saved_generation,
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


def test_saved_collection_loads_at_its_generation_and_a_foreign_one_is_refused(tmp_path):
    path = tmp_path / "index.hnsw"
    index = new_index(LOCAL, tmp_path, 16, "sig")
    index.add(np.arange(50), unit_vectors(50))
    index.save(path, generation=3)
    assert saved_generation(path) == 3
    loaded = load_index(LOCAL, path, model_signature="sig", dim=16)
    assert isinstance(loaded, QdrantIndex) and len(loaded) == 50 and loaded.generation == 3
    index.add(np.arange(50, 60), unit_vectors(10, seed=2))  # vectors the header does not count: a killed run
    assert len(load_index(LOCAL, path, model_signature="sig", dim=16)) == 60, "caught up by its owner, not refused"
    with pytest.raises(IndexMismatch):
        load_index(LOCAL, path, model_signature="other", dim=16)
    with pytest.raises(IndexMismatch):  # an hnswlib header is not a Qdrant one, nor the reverse
        load_index(VectorStoreSetting(), path, model_signature="sig", dim=16)
    copy = tmp_path / "copied-library"
    copy.mkdir()
    (copy / "index.json").write_bytes((tmp_path / "index.json").read_bytes())
    with pytest.raises(IndexMismatch, match="another library"):  # it would change the original's collection
        QdrantIndex.load(copy / "index.hnsw", model_signature="sig", dim=16, client=index._client, url=None)

    hnsw = VectorIndex(16, "sig")
    hnsw.save(tmp_path / "other.hnsw", generation=7)
    assert saved_generation(tmp_path / "other.hnsw") == 7
    with pytest.raises(IndexMismatch):
        saved_generation(tmp_path / "none.hnsw")


def test_a_qdrant_collection_a_killed_run_left_is_caught_up_not_rebuilt(photo_folder, tmp_path):
    """The collection changes before its header is saved: reopened after a run that died, it holds
    vectors its header does not name, and lacks some the database has; the library mends it."""
    embedder = load_embedder("tiny-test")
    library_dir = tmp_path / "lib"
    library = Library.open(photo_folder, library_dir, vector_store=LOCAL)
    library.index(embedder, decode_workers=0, batch_size=4)
    library.close()
    reopened = Library.open(library_dir=library_dir)
    collection = reopened.search_space().index
    ids = collection.labels()
    collection.remove(ids[:1])  # committed in the database, never reached the collection
    collection.add(np.array([10_000]), unit_vectors(1, dim=collection.dim))  # a row deleted since
    reopened.close()

    library = Library.open(library_dir=library_dir)
    assert library.status().index_size == 12 and library.notices == []
    space = library.search_space()
    assert np.array_equal(space.index.labels(), ids)
    expected = space.project(np.stack([library.store.vectors(ids[:1])[int(ids[0])]]))
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.allclose(space.index.get_vectors(ids[:1]), expected, atol=1e-5), "the lost vector is back"
    library.close()


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
    said = capsys.readouterr().err
    assert "Qdrant (http://127.0.0.1:9) failed" in said
    # QA: the setting stays, so every later command failed the same way, and nothing said how to get out
    assert "without that server, index with --vector-store hnswlib" in said
    assert main(["status", "--library", str(library)]) == 2
    assert main([*args, "--vector-store", "hnswlib"]) == 0
    assert "added 0" in capsys.readouterr().out, "the vectors were in the database all along"
    assert main(["status", "--library", str(library)]) == 0
    with pytest.raises(SystemExit):
        main([*args, "--vector-store", "faiss"])
    assert "unknown vector store" in capsys.readouterr().err
