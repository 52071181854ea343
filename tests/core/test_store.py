from __future__ import annotations

import os
import sqlite3
import time

import numpy as np
import pytest

from vitgallery.core.store import SCHEMA_VERSION, EmbeddedFile, Store, StoreError


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


def test_a_photo_put_away_comes_back_only_as_the_same_content_and_once(tmp_path):
    from dataclasses import replace

    store = Store(tmp_path / "lib.sqlite3")
    store.start_new_model("model-a", 8)
    photo = replace(embedded("a.jpg", 1), taken_at=12.5, keypoints=b"kp", looks=b"grey")
    [file_id] = store.add_embedded([photo, embedded("b.jpg", 2)])[:1]
    store.add_learning_views([(file_id, np.full((2, 8), 0.5, np.float32))])
    store.put_away_files([file_id])
    assert set(store.files()) == {"b.jpg"} and store.away_sizes() == {photo.size}

    assert store.bring_back([("c.jpg", photo.size, 5, "another content"), ("d.jpg", photo.size + 1, 5, "fp1")]) \
        == ([], True)
    assert store.bring_back([("back/a.jpg", photo.size, 7, "fp1")]) == (["back/a.jpg"], True)
    row = store.file_by_path("back/a.jpg")
    assert row.id == file_id, "under its old id"
    assert (row.size, row.mtime_ns, row.fingerprint, row.width, row.height, row.taken_at, row.sharpness) == \
        (photo.size, 7, "fp1", 640, 480, 12.5, 1.5)
    np.testing.assert_array_equal(store.vectors([row.id])[row.id], photo.vector)
    assert store.photo_features([row.id]) == {row.id: (b"kp", b"grey")} and store.count_learning_photos() == 1
    assert store.bring_back([("copy.jpg", photo.size, 7, "fp1")]) == ([], True), "what was kept came back once"


def evidence(a: int, b: int, inliers: int) -> tuple:
    return (a, b, 0.9, inliers, 0.8, None, 0.0, 0.0, 0.0, 0.0)


def test_a_photo_put_away_comes_back_with_its_scan_evidence_where_its_id_and_partners_are_as_they_were(tmp_path):
    store = Store(tmp_path / "lib.sqlite3")
    store.start_new_model("model-a", 8)
    a, b, c = store.add_embedded([embedded(f"{name}.jpg", seed) for seed, name in enumerate("abc", 1)])
    store.save_duplicate_scan([evidence(a, b, 40), evidence(a, c, 30), evidence(b, c, 20)],
                              [(a, None, '{"grey": false}')], {"version": 5})
    store.put_away_files([a, b])
    assert store.duplicate_pairs().shape[0] == 0 and store.duplicate_photos() == {}
    assert store.bring_back([("back/a.jpg", 101, 7, "fp1")]) == (["back/a.jpg"], True)
    pairs = {(int(r[0]), int(r[1])): int(r[3]) for r in store.duplicate_pairs()}
    assert pairs == {(a, c): 30}, "its pair with b waits for b"
    assert store.duplicate_photos() == {a: (None, '{"grey": false}')}
    assert store.bring_back([("b.jpg", 102, 7, "fp2")]) == (["b.jpg"], True)
    assert {(int(r[0]), int(r[1])): int(r[3]) for r in store.duplicate_pairs()} == {(a, b): 40, (a, c): 30, (b, c): 20}

    # c changes while a is away: their pair is of the old c and stays out; a's id taken meanwhile: a new one
    store.put_away_files([a])
    store.add_embedded([embedded("c.jpg", 9)])
    [taker] = store.add_embedded([embedded("new.jpg", 10)], [a])
    assert taker == a
    assert store.bring_back([("a.jpg", 101, 7, "fp1")]) == (["a.jpg"], False)
    assert store.file_by_path("a.jpg").id not in (a, b, c)
    assert {(int(r[0]), int(r[1])) for r in store.duplicate_pairs()} == set()


def test_evidence_measured_in_another_whitening_comes_back_but_the_scan_is_not_current(tmp_path):
    store = Store(tmp_path / "lib.sqlite3")
    store.start_new_model("model-a", 8)
    a, b = store.add_embedded([embedded("a.jpg", 1), embedded("b.jpg", 2)])
    store.save_duplicate_scan([evidence(a, b, 40)], [], {"version": 5, "whitening": "first"})
    store.put_away_files([a])
    store.set_duplicate_scan_info({"version": 5, "whitening": "refitted"})  # a scan since, after a refit
    assert store.bring_back([("a.jpg", 101, 7, "fp1")]) == (["a.jpg"], False)
    assert [(int(r[0]), int(r[1]), int(r[3])) for r in store.duplicate_pairs()] == [(a, b, 40)], \
        "kept: the next scan scores it again without matching it again"


def test_photos_kept_away_count_with_their_learning_views(tmp_path):
    store = Store(tmp_path / "lib.sqlite3")
    store.start_new_model("model-a", 8)
    a, b, _ = store.add_embedded([embedded(f"{name}.jpg", seed) for seed, name in enumerate("abc", 1)])
    store.add_learning_views([(a, np.full((3, 8), 0.5, np.float32)), (b, np.full((2, 8), 0.5, np.float32))])
    assert store.away_counts() == (0, 0)
    store.put_away_files([a, b])
    assert store.away_counts() == (2, 5)


def test_what_is_kept_away_goes_with_its_model_or_its_age(tmp_path):
    store = Store(tmp_path / "lib.sqlite3")
    store.start_new_model("model-a", 8)
    store.put_away_files(store.add_embedded([embedded("a.jpg", 1), embedded("b.jpg", 2)])[:1])
    store.forget_away_files(before=time.time() - 60)
    assert store.away_sizes() == {101}
    store.start_new_model("model-b", 16)
    assert store.away_sizes() == set()
    store.put_away_files(store.add_embedded([embedded("a.jpg", 1, dim=16)]))
    store.forget_away_files(before=time.time() + 60)
    assert store.away_sizes() == set()


def schema_8_library(path, photos: list[EmbeddedFile] = ()) -> None:
    store = Store(path)
    store.add_embedded(list(photos))
    store.close()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE away_files")
    db.execute("UPDATE meta SET value = '8' WHERE key = 'schema_version'")
    db.commit()
    db.close()


def test_a_schema_8_library_gains_the_table_of_photos_taken_away(tmp_path):
    schema_8_library(tmp_path / "lib.sqlite3")
    store = Store(tmp_path / "lib.sqlite3")
    assert store.get_meta("schema_version") == str(SCHEMA_VERSION) and store.away_sizes() == set()
    store.put_away_files(store.add_embedded([embedded("a.jpg", 1)]))
    assert store.away_sizes() == {101}


def test_a_schema_8_library_that_cannot_be_written_is_read_as_it_is(tmp_path, monkeypatch):
    path = tmp_path / "lib.sqlite3"
    schema_8_library(path, [embedded("a.jpg", 1)])
    with monkeypatch.context() as patched:  # what a file without write permission says, even to root
        patched.setattr("vitgallery.core.store.os.access", lambda p, mode: not (mode & os.W_OK))
        store = Store(path)
    assert store.read_only and store.get_meta("schema_version") == "8"
    assert set(store.files()) == {"a.jpg"} and store.count_files() == 1
    store.close()


def test_the_damage_check_drops_exactly_the_paths_that_leave_the_folder(tmp_path):
    """SQLite picks the rows whose path may leave the folder: none that does may slip past it."""
    from vitgallery.core.store import path_is_confined

    store = Store(tmp_path / "lib.sqlite3")
    store.start_new_model("model-a", 8)
    store.add_embedded([embedded(f"p{n}.jpg", n) for n in range(40)])
    crafted = ["../x.jpg", "a/..", "..", "a/../b.jpg", "/etc/passwd", "", "a\0b.jpg", "a\\..\\b.jpg", "C:/x.jpg",
               "a..b/c.jpg", "...", ".../x.jpg", "x/...", "a/./b.jpg", "a//b.jpg", "ok/p.jpg"]
    with store.transaction():
        for n, path in enumerate(crafted):
            store._db.execute("UPDATE files SET path = ? WHERE id = ?", (path, n + 1))
        store._db.execute("UPDATE files SET path = ? WHERE id = 30", (os.fsencode("ok/\udcff.jpg"),))
        store._db.execute("UPDATE files SET path = ? WHERE id = 31", (os.fsencode("../\udcff.jpg"),))
        store._db.execute("UPDATE files SET path = CAST(x'ff2f2e2e2f612e6a7067' AS TEXT) WHERE id = 32")  # \xff/../a.jpg
        store._db.execute("UPDATE files SET path = CAST(x'ff2f612e6a7067' AS TEXT) WHERE id = 33")  # \xff/a.jpg
    paths = dict(store._db.execute("SELECT id, path FROM files"))  # a text that is not UTF-8 read as the store does
    expected = {file_id for file_id, path in paths.items() if not path_is_confined(os.fsdecode(path))}
    assert {1, 2, 3, 4, 5, 6, 7, 31, 32} <= expected and not {10, 11, 14, 15, 16, 30, 33} & expected
    before = set(paths)
    assert store.drop_damaged_rows()["rows naming files outside the photo folder"] == len(expected)
    assert {file_id for (file_id,) in store._db.execute("SELECT id FROM files")} == before - expected
