from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from vitgallery.core.index import IndexMismatch, VectorIndex, _ReadWriteLock, header_path, labels_path

MODEL = "tiny-test@abc123"
DIM = 16


def random_vectors(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def normalised(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def filled_index(n: int = 100, seed: int = 0, **params: int) -> tuple[VectorIndex, np.ndarray]:
    vectors = random_vectors(n, seed=seed)
    index = VectorIndex(DIM, MODEL, threads=1, **params)
    index.add(np.arange(n), vectors)
    return index, vectors


def test_query_finds_each_vector_itself_with_similarity_one():
    index, vectors = filled_index(200)

    labels, similarities = index.query(vectors, k=5)

    assert labels.shape == similarities.shape == (200, 5)
    assert labels.dtype == np.int64 and similarities.dtype == np.float32
    np.testing.assert_array_equal(labels[:, 0], np.arange(200))
    np.testing.assert_allclose(similarities[:, 0], 1.0, atol=1e-5)
    assert np.all(np.diff(similarities, axis=1) <= 1e-6), "best first"
    assert len(index) == 200
    np.testing.assert_array_equal(index.labels(), np.arange(200))


def test_single_vector_query_returns_one_row():
    index, vectors = filled_index(10)
    labels, similarities = index.query(vectors[3], k=1)
    assert labels.tolist() == [[3]]
    assert similarities.shape == (1, 1)


def test_similarity_is_cosine():
    index = VectorIndex(2, MODEL)
    index.add(np.array([1, 2]), np.array([[1.0, 0.0], [0.0, 5.0]], np.float32))
    labels, similarities = index.query(np.array([3.0, 3.0], np.float32), k=2)
    assert set(labels[0].tolist()) == {1, 2}
    np.testing.assert_allclose(similarities[0], [np.sqrt(0.5)] * 2, atol=1e-6)


def test_empty_index_returns_empty_rows():
    index = VectorIndex(DIM, MODEL)
    labels, similarities = index.query(random_vectors(3), k=10)
    assert labels.shape == similarities.shape == (3, 0)
    assert len(index) == 0
    assert index.labels().shape == (0,)


def test_k_larger_than_count_returns_what_exists():
    index, vectors = filled_index(10)
    labels, _ = index.query(vectors[:2], k=50)
    assert labels.shape == (2, 10)
    assert sorted(labels[0].tolist()) == list(range(10))


def test_k_larger_than_live_count_after_deletions():
    index, vectors = filled_index(10)
    index.remove(np.array([0, 3, 5, 9]))

    labels, similarities = index.query(vectors[:3], k=50)

    assert labels.shape == similarities.shape == (3, 6)
    for row in labels:
        assert sorted(row.tolist()) == [1, 2, 4, 6, 7, 8]
    assert len(index) == 6

    index.remove(np.array([1, 2, 4, 6, 7, 8]))
    labels, _ = index.query(vectors[:3], k=5)
    assert labels.shape == (3, 0)


def test_k_equal_to_live_count_after_heavy_churn_returns_every_live_label():
    # Replacing and deleting many items (and duplicate vectors) leaves items that the graph walk cannot
    # reach; the index must still return all of them.
    rng = np.random.default_rng(7)
    for trial in range(20):
        n = int(rng.integers(20, 150))
        vectors = np.round(rng.standard_normal((n, 8))).astype(np.float32) + 0.01
        index = VectorIndex(8, MODEL, capacity=n, m=4, ef_construction=10, ef_search=4, threads=1)
        index.add(np.arange(n), vectors)
        for _ in range(4):
            replaced = rng.choice(n, n // 3, replace=False)
            index.add(replaced, vectors[rng.integers(0, n, len(replaced))])
            index.remove(rng.choice(n, n // 4, replace=False))
        live = index.labels()

        labels, similarities = index.query(rng.standard_normal((5, 8)).astype(np.float32), k=n)

        assert labels.shape == (5, len(live)), trial
        for row_labels, row_similarities in zip(labels, similarities, strict=True):
            assert sorted(row_labels.tolist()) == live.tolist(), trial
            assert np.all(np.diff(row_similarities) <= 1e-6), trial


def test_adding_an_existing_label_replaces_its_vector():
    index, vectors = filled_index(50)
    replacement = random_vectors(1, seed=99)

    index.add(np.array([7]), replacement)

    assert len(index) == 50
    labels, similarities = index.query(replacement, k=1)
    assert labels[0, 0] == 7
    assert similarities[0, 0] == pytest.approx(1.0, abs=1e-5)
    assert 7 not in index.query(vectors[7], k=1)[0][0]


def test_removed_label_disappears_and_can_be_added_again():
    index, vectors = filled_index(50)

    index.remove(np.array([7, 12345]))  # the unknown label is ignored
    index.remove(np.array([7]))  # removing twice is harmless

    assert len(index) == 49
    assert 7 not in index.labels()
    assert 7 not in index.query(vectors[7], k=49)[0]

    index.add(np.array([7]), vectors[7:8])

    assert len(index) == 50
    assert index.query(vectors[7], k=1)[0][0, 0] == 7
    np.testing.assert_array_equal(index.labels(), np.arange(50))


def test_growth_past_initial_capacity():
    index = VectorIndex(DIM, MODEL, capacity=8, threads=2)
    vectors = random_vectors(1000)
    for start in range(0, 1000, 100):
        index.add(np.arange(start, start + 100), vectors[start : start + 100])

    assert len(index) == 1000
    assert index.capacity >= 1000
    labels, _ = index.query(vectors[::10], k=1)
    assert np.mean(labels[:, 0] == np.arange(0, 1000, 10)) >= 0.99


@pytest.mark.parametrize(
    ("labels", "vectors", "message"),
    [
        (np.arange(3), random_vectors(3, dim=DIM + 1), "shape"),
        (np.arange(3), random_vectors(2), "labels for"),
        (np.arange(3), np.ones((3, DIM), np.int32), "floating"),
        (np.arange(3), np.full((3, DIM), np.nan, np.float32), "NaN"),
        (np.array([1, 1, 2]), random_vectors(3), "duplicate"),
        (np.array([-1, 0, 2]), random_vectors(3), "non-negative"),
        (np.array([0.5, 1, 2]), random_vectors(3), "integer"),
    ],
)
def test_add_rejects_bad_input(labels, vectors, message):
    index = VectorIndex(DIM, MODEL)
    with pytest.raises(ValueError, match=message):
        index.add(labels, vectors)
    assert len(index) == 0


def test_query_rejects_wrong_dimension():
    index, _ = filled_index(5)
    with pytest.raises(ValueError, match="shape"):
        index.query(random_vectors(1, dim=DIM - 1), k=1)


def saved_index(directory: Path, generation: int = 3, seed: int = 0) -> tuple[VectorIndex, np.ndarray, Path]:
    index, vectors = filled_index(300, seed=seed)
    index.remove(np.array([5, 6, 7]))
    path = directory / "index.hnsw"
    index.save(path, generation=generation)
    return index, vectors, path


def test_save_load_round_trip(tmp_path):
    index, vectors, path = saved_index(tmp_path)

    loaded = VectorIndex.load(path, model_signature=MODEL, dim=DIM, generation=3)

    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.hnsw", "index.json", "index.labels.npy"]
    assert len(loaded) == 297
    np.testing.assert_array_equal(loaded.labels(), index.labels())
    assert loaded.capacity == index.capacity
    for expected, got in zip(index.query(vectors, k=10), loaded.query(vectors, k=10), strict=True):
        np.testing.assert_array_equal(expected, got)
    # Deleted labels stay deleted and can be added again.
    assert 5 not in loaded.query(vectors[5], k=297)[0]
    loaded.add(np.array([5, 1000]), vectors[[5, 6]])
    assert loaded.query(vectors[5], k=1)[0][0, 0] == 5
    assert len(loaded) == 299
    header = json.loads(header_path(path).read_text())
    assert header["count"] == 297 and header["generation"] == 3 and header["metric"] == "cosine"


def test_save_overwrites_previous_save(tmp_path):
    index, vectors, path = saved_index(tmp_path, generation=1)
    index.add(np.array([5000]), random_vectors(1, seed=5))
    index.save(path, generation=2)

    loaded = VectorIndex.load(path, model_signature=MODEL, dim=DIM, generation=2)

    assert len(loaded) == 298
    assert len(list(tmp_path.iterdir())) == 3


def test_load_without_generation_accepts_any(tmp_path):
    _, _, path = saved_index(tmp_path, generation=42)
    assert len(VectorIndex.load(path, model_signature=MODEL, dim=DIM)) == 297


def overwrite_with_random_bytes(path: Path) -> None:
    path.write_bytes(np.random.default_rng(1).bytes(path.stat().st_size))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda path: truncate(path), "checksum mismatch: payload"),
        (lambda path: overwrite_with_random_bytes(path), "checksum mismatch: payload"),
        (lambda path: overwrite_with_random_bytes(header_path(path)), "corrupt header"),
        (lambda path: header_path(path).write_text('{"format": 1}'), "corrupt header"),
        (lambda path: header_path(path).unlink(), "missing header"),
        (lambda path: path.unlink(), "missing payload"),
        (lambda path: labels_path(path).unlink(), "missing labels"),
        (lambda path: truncate(labels_path(path)), "checksum mismatch: labels"),
    ],
    ids=[
        "truncated payload",
        "random payload",
        "random header",
        "incomplete header",
        "missing header",
        "missing payload",
        "missing labels",
        "truncated labels",
    ],
)
def test_damaged_files_are_rejected(tmp_path, damage, message):
    _, _, path = saved_index(tmp_path)
    damage(path)
    with pytest.raises(IndexMismatch, match=message):
        VectorIndex.load(path, model_signature=MODEL, dim=DIM, generation=3)


def test_nothing_saved_is_missing(tmp_path):
    with pytest.raises(IndexMismatch, match="missing"):
        VectorIndex.load(tmp_path / "index.hnsw", model_signature=MODEL, dim=DIM)


@pytest.mark.parametrize(
    ("expected", "message"),
    [
        (
            {"model_signature": "dinov2-s14@ffff"},
            f"model mismatch: file has {MODEL}, library uses dinov2-s14@ffff",
        ),
        ({"dim": 384}, "dimension mismatch"),
        ({"generation": 4}, "generation mismatch"),
    ],
)
def test_header_for_other_model_dimension_or_generation_is_rejected(tmp_path, expected, message):
    _, _, path = saved_index(tmp_path)
    arguments = {"model_signature": MODEL, "dim": DIM, "generation": 3} | expected
    with pytest.raises(IndexMismatch, match=message):
        VectorIndex.load(path, **arguments)


def test_payload_of_another_index_is_rejected(tmp_path):
    # What a crash between the payload rename and the header rename leaves behind.
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _, _, path_a = saved_index(tmp_path / "a", seed=0)
    _, _, path_b = saved_index(tmp_path / "b", seed=1)
    shutil.copyfile(path_b, path_a)

    with pytest.raises(IndexMismatch, match="checksum mismatch: payload"):
        VectorIndex.load(path_a, model_signature=MODEL, dim=DIM, generation=3)


def test_concurrent_adds_and_queries_give_valid_results():
    # Four threads query while one adds (growing the index from capacity 16) for about a second; once
    # every vector is in, the adder re-adds the same vectors, which replaces them in place.
    total, batch = 3000, 50
    vectors = random_vectors(total, seed=3)
    index = VectorIndex(DIM, MODEL, capacity=16, threads=2)
    index.add(np.arange(batch), vectors[:batch])
    added = [batch]  # only grows; read without a lock by the query threads
    stop = threading.Event()
    errors: list[BaseException] = []
    self_hits: list[bool] = []

    def add_repeatedly() -> None:
        deadline = time.monotonic() + 1.0
        try:
            start = batch
            while added[0] < total or time.monotonic() < deadline:
                index.add(np.arange(start, start + batch), vectors[start : start + batch])
                added[0] = max(added[0], start + batch)
                start = (start + batch) % total
        except BaseException as exc:
            errors.append(exc)
        finally:
            stop.set()

    def query_repeatedly(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            while not stop.is_set():
                picked = rng.integers(0, added[0], 8)
                labels, similarities = index.query(vectors[picked], k=10)
                assert labels.shape == similarities.shape == (8, 10)
                assert labels.min() >= 0 and labels.max() < total
                assert np.all(np.abs(similarities) <= 1.0 + 1e-5)
                self_hits.extend((labels[:, 0] == picked).tolist())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=query_repeatedly, args=(seed,)) for seed in range(4)]
    threads.append(threading.Thread(target=add_repeatedly))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not any(thread.is_alive() for thread in threads)
    assert not errors, errors
    assert len(index) == total
    np.testing.assert_array_equal(index.labels(), np.arange(total))
    assert len(self_hits) > 100
    assert np.mean(self_hits) >= 0.99


def test_waiting_writer_goes_before_new_readers():
    lock = _ReadWriteLock()
    order: list[str] = []
    first_reader = lock.read()
    first_reader.__enter__()

    def write() -> None:
        with lock.write():
            order.append("writer")

    def read() -> None:
        with lock.read():
            order.append("reader")

    writer = threading.Thread(target=write)
    writer.start()
    while lock._writers_waiting == 0:
        time.sleep(0.001)
    reader = threading.Thread(target=read)
    reader.start()
    time.sleep(0.05)
    assert order == []  # the writer waits for the first reader; the new reader waits for the writer
    first_reader.__exit__(None, None, None)
    writer.join(timeout=5)
    reader.join(timeout=5)

    assert order == ["writer", "reader"]


def test_recall_against_brute_force():
    vectors = normalised(random_vectors(5000, dim=64, seed=11))
    queries = normalised(random_vectors(200, dim=64, seed=12))
    index = VectorIndex(64, MODEL, capacity=5000)
    index.add(np.arange(5000), vectors)

    labels, _ = index.query(queries, k=10)

    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    recall = np.mean(
        [len(set(a) & set(b)) / 10 for a, b in zip(labels.tolist(), exact.tolist(), strict=True)]
    )
    assert recall >= 0.95
