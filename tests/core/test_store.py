from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from vitgallery.core.store import EmbeddedFile, Store, StoreError


def embedded(path: str, seed: int, dim: int = 8) -> EmbeddedFile:
    vec = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    vec /= np.linalg.norm(vec)  # as the model gives them: a stored vector of another length is damage
    return EmbeddedFile(path, 100 + seed, 1_000 + seed, f"fp{seed}", 640, 480, None, 1.5, vec)


def test_wal_and_round_trip(tmp_path):
    store = Store(tmp_path / "lib.sqlite3")
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.start_new_model("model-a", 8)
    gen = store.generation
    ids = store.add_embedded([embedded("a.jpg", 1), embedded("b/c.jpg", 2)])
    assert store.generation == gen + 1
    files = store.files()
    assert set(files) == {"a.jpg", "b/c.jpg"} and all(f.has_vector for f in files.values())
    vectors = store.vectors(ids)
    np.testing.assert_array_equal(vectors[ids[0]], embedded("a.jpg", 1).vector)
    chunks = list(store.iter_vectors(chunk=1))
    assert [int(c[0][0]) for c in chunks] == sorted(ids)
    store.close()
    reopened = Store(tmp_path / "lib.sqlite3")
    assert reopened.get_meta("model_signature") == "model-a"
    assert reopened.count_files() == 2


def test_replacing_a_path_keeps_its_id_and_clears_its_skip(tmp_path):
    store = Store(tmp_path / "lib.sqlite3")
    store.record_skipped("a.jpg", 1, 1, "truncated file")
    [first] = store.add_embedded([embedded("a.jpg", 1)])
    [again] = store.add_embedded([embedded("a.jpg", 5)])
    assert first == again
    assert store.skipped() == {}


def test_move_and_delete(tmp_path):
    store = Store(tmp_path / "lib.sqlite3")
    [fid] = store.add_embedded([embedded("a.jpg", 1)])
    gen = store.generation
    store.move_files([(fid, "moved/a.jpg", 101, 1001)])
    assert store.generation == gen, "a move changes no vector"
    assert store.file_by_path("moved/a.jpg").id == fid
    store.delete_files([fid])
    assert store.files() == {}


def test_new_model_drops_old_vectors(tmp_path):
    store = Store(tmp_path / "lib.sqlite3")
    store.start_new_model("model-a", 8)
    store.add_embedded([embedded("a.jpg", 1)])
    store.start_new_model("model-b", 16)
    assert store.count_files() == 0
    assert store.get_meta("dim") == "16"


def test_failed_write_rolls_back_and_says_why(tmp_path, monkeypatch):
    store = Store(tmp_path / "lib.sqlite3")
    store.add_embedded([embedded("a.jpg", 1)])
    # A full disk surfaces as an OperationalError inside the transaction.
    store._db.execute("CREATE TEMP TRIGGER full BEFORE INSERT ON files BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END")
    with pytest.raises(StoreError, match="disk is full"):
        store.add_embedded([embedded("b.jpg", 2)])
    assert set(store.files()) == {"a.jpg"}
    assert not store._db.in_transaction


def test_not_a_database(tmp_path):
    bad = tmp_path / "lib.sqlite3"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot open"):
        Store(bad)


def test_newer_schema_is_refused(tmp_path):
    Store(tmp_path / "lib.sqlite3").close()
    db = sqlite3.connect(tmp_path / "lib.sqlite3")
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer"):
        Store(tmp_path / "lib.sqlite3")


def test_a_schema_7_library_keeps_its_keypoints_and_gains_their_grey_copies(tmp_path):
    """Photos indexed before keep their keypoints (the search still verifies with them); the duplicates
    scan analyses them, and what it keeps replaces them."""
    from dataclasses import replace

    path = tmp_path / "lib.sqlite3"
    store = Store(path)
    store.start_new_model("model-a", 8)
    old, new = store.add_embedded([replace(embedded("old.jpg", 1), keypoints=b"old recipe"),
                                   replace(embedded("new.jpg", 2), keypoints=b"kp", looks=b"grey")])
    store.close()
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE keypoints_7 (file_id INTEGER PRIMARY KEY REFERENCES files(id) ON DELETE CASCADE,"
               " data BLOB NOT NULL)")  # as schema 7 made it
    db.execute("INSERT INTO keypoints_7 SELECT file_id, data FROM keypoints")
    db.execute("DROP TABLE keypoints")
    db.execute("ALTER TABLE keypoints_7 RENAME TO keypoints")
    db.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    db.commit()
    db.close()

    store = Store(path)
    assert store.keypoints([old, new]) == {old: b"old recipe", new: b"kp"}
    assert store.photo_feature_ids([old, new]) == set() and store.photo_features([old]) == {}
    store.save_photo_features([(old, b"kp2", b"grey2"), (999, b"a photo", b"no longer there")])
    assert store.photo_features([old, new, 999]) == {old: (b"kp2", b"grey2")}
    assert store.keypoints([old]) == {old: b"kp2"}
    assert store._db.execute("SELECT COUNT(*) FROM keypoints").fetchone()[0] == 2
    store.close()
