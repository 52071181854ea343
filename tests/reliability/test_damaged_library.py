"""Every damaged library gives one clear message and a repair path, never a traceback: rows SQLite's
integrity check accepts but vitgallery cannot use, random overwrites, an empty database file, a
read-only library; `vitgallery repair` mends what it can and says what it did."""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import tempfile
from pathlib import Path

import numpy as np
import pytest

from tests.reliability.support import add_photos, check_saved_index, database_vectors
from vitgallery.core.library import DB_NAME

PHOTOS = 12


@pytest.fixture(scope="module")
def good_library(tmp_path_factory, cli):
    base = tmp_path_factory.mktemp("damaged")
    root, library = base / "photos", base / "library"
    add_photos(root, range(PHOTOS))
    returncode, out = cli.run(["index", str(root), "--library", str(library), "--model", "tiny-test",
                               "--workers", "0"], output=base / "index.txt")
    assert returncode == 0, out
    return root, library


def hit_scores(out: str) -> list[float]:
    """The scores `vitgallery search` printed, one per hit line ("  1. 0.391 ...")."""
    return [float(line.split()[1]) for line in out.splitlines() if line.strip().split(".")[0].isdigit()]


def execute(library: Path, *statements: tuple) -> None:
    db = sqlite3.connect(library / DB_NAME)
    with db:
        for statement in statements:
            db.execute(*statement)
    db.close()


def nan_vector(library: Path) -> bytes:
    vector = np.full(int(meta(library, "dim")), np.nan, dtype=np.float32)
    return vector.tobytes()


def meta(library: Path, key: str) -> str:
    db = sqlite3.connect(library / DB_NAME)
    try:
        return db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0]
    finally:
        db.close()


def overwrite_whitening(library: Path) -> None:
    """16 bytes of the projection become huge numbers: every whitened vector points the same way."""
    db = sqlite3.connect(library / DB_NAME)
    with db:
        projection = db.execute("SELECT projection FROM whitening").fetchone()[0]
        db.execute("UPDATE whitening SET projection = ?", (b"\x7f\x7f\x7f\x7f" * 4 + projection[16:],))
    db.close()


DAMAGE = {
    "dim is not a number": lambda lib: execute(lib, ("UPDATE meta SET value = 'abc' WHERE key = 'dim'",)),
    "schema_version is not a number": lambda lib: execute(
        lib, ("UPDATE meta SET value = 'abc' WHERE key = 'schema_version'",)),
    "generation is not a number": lambda lib: execute(lib, ("UPDATE meta SET value = 'x' WHERE key = 'generation'",)),
    "a NaN vector": lambda lib: execute(lib, ("UPDATE files SET vector = ? WHERE id = 3", (nan_vector(lib),))),
    "a short vector": lambda lib: execute(lib, ("UPDATE files SET vector = zeroblob(10) WHERE id = 3",)),
    "a vector not of unit length": lambda lib: execute(
        lib, ("UPDATE files SET vector = ? WHERE id = 4", (np.full(int(meta(lib, "dim")), 7, np.float32).tobytes(),))),
    "a short whitening": lambda lib: execute(lib, ("UPDATE whitening SET projection = substr(projection, 1, 100)",)),
    "an overwritten whitening": lambda lib: overwrite_whitening(lib),
    "a whitening stored as text": lambda lib: execute(
        lib, ("UPDATE whitening SET projection = ? || substr(projection, 17)", (b"\x7f\x7f\x7f\x7f" * 4,))),
    "a short teaching view": lambda lib: execute(
        lib, ("UPDATE learning_views SET vectors = substr(vectors, 1, 100) WHERE file_id = 2",)),
    "short keypoints": lambda lib: execute(lib, ("UPDATE keypoints SET data = substr(data, 1, 50) WHERE file_id = 1",)),
    "a vector store that is none": lambda lib: execute(
        lib, ("INSERT OR REPLACE INTO meta (key, value) VALUES ('vector_store', 'qdrant:nas')",)),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_rows_give_a_message_and_repair_mends_them(good_library, tmp_path, cli, damage):
    root, good = good_library
    library = tmp_path / "library"
    shutil.copytree(good, library)
    DAMAGE[damage](library)

    search = ["search", str(root / "p0001.jpg"), "--library", str(library), "--k", "3"]
    for number, argv in enumerate([["status", "--library", str(library)], search]):
        returncode, out = cli.run(argv, output=tmp_path / f"{number}.txt")
        assert "Traceback" not in out, out
        assert returncode == 0 or "vitgallery repair" in out, out

    returncode, out = cli.run(["repair", "--library", str(library)], output=tmp_path / "repair.txt")
    assert returncode == 0 and "Traceback" not in out and "rebuilt the index file" in out, out
    returncode, out = cli.run(["index", str(root), "--library", str(library), "--model", "tiny-test",
                               "--workers", "0"], output=tmp_path / "index.txt")
    assert returncode == 0 and "Traceback" not in out, out
    returncode, out = cli.run(search, output=tmp_path / "search.txt")
    assert returncode == 0 and len(hit_scores(out)) == 3 and max(hit_scores(out)) > 0.01, out
    vectors = database_vectors(library)
    assert len(vectors) == PHOTOS
    assert all(abs(np.linalg.norm(v) - 1) < 1e-3 for v in vectors.values())
    assert check_saved_index(library, vectors)


@pytest.mark.parametrize("damage", ["a NaN vector", "a short vector", "a short teaching view"])
def test_index_drops_damaged_rows_and_embeds_those_photos_again(good_library, tmp_path, cli, damage):
    root, good = good_library
    library = tmp_path / "library"
    shutil.copytree(good, library)
    DAMAGE[damage](library)
    returncode, out = cli.run(["index", str(root), "--library", str(library), "--model", "tiny-test",
                               "--workers", "0"], output=tmp_path / "index.txt")
    assert returncode == 0 and "Traceback" not in out and "damaged" in out, out
    assert len(database_vectors(library)) == PHOTOS


def test_photos_whose_keypoints_a_salvage_lost_are_embedded_again(good_library, tmp_path, cli, monkeypatch):
    """A damaged database is salvaged row by row; a photo whose keypoints row was lost would have been
    found unchanged by the next index and searched without verification for good."""
    from vitgallery.core import repair

    root, good = good_library
    library = tmp_path / "library"
    shutil.copytree(good, library)
    execute(library, ("DELETE FROM keypoints WHERE file_id IN (SELECT id FROM files ORDER BY id LIMIT 3)",))
    monkeypatch.setattr(repair, "_integrity_problem", lambda database: "rows of a page unreadable (forced)")
    report = repair.repair_library(library)
    assert report.damaged_copy is not None
    assert any("3 photos lost their keypoints" in line for line in report.done), report.done
    assert any("its readable rows were copied to a new file (" in line for line in report.done), report.done
    returncode, out = cli.run(["index", str(root), "--library", str(library), "--model", "tiny-test",
                               "--workers", "0"], output=tmp_path / "index.txt")
    assert returncode == 0 and "added 3," in out and "unchanged 9" in out, out
    assert sqlite3.connect(library / DB_NAME).execute("SELECT COUNT(*) FROM keypoints").fetchone()[0] == PHOTOS


def test_a_database_cut_short_is_said_to_be_unreadable_and_the_next_index_starts_again(good_library, tmp_path, cli):
    """QA: repair of a database cut to half its length said its readable rows were copied, with a count of
    ranges lost, where SQLite could read none: the library it left was empty."""
    root, good = good_library
    library = tmp_path / "library"
    shutil.copytree(good, library)
    for name in (DB_NAME + "-wal", DB_NAME + "-shm"):
        (library / name).unlink(missing_ok=True)
    database = library / DB_NAME
    database.write_bytes(database.read_bytes()[:len(database.read_bytes()) // 2])
    returncode, out = cli.run(["repair", "--library", str(library)], output=tmp_path / "repair.txt")
    assert "Traceback" not in out and "no row of it could be read" in out, out
    returncode, out = cli.run(["index", str(root), "--library", str(library), "--model", "tiny-test",
                               "--workers", "0"], output=tmp_path / "index.txt")
    assert returncode == 0 and f"added {PHOTOS}" in out, out


@pytest.mark.parametrize("seed", range(8))
def test_random_overwrites_never_give_silent_nonsense(good_library, tmp_path, cli, seed):
    """30 random 16-byte overwrites of the database file: each command either works with real scores or
    says what is wrong; repair then brings back a library that searches."""
    root, good = good_library
    library = tmp_path / "library"
    shutil.copytree(good, library)
    database = library / DB_NAME
    data = bytearray(database.read_bytes())
    rng = random.Random(seed)
    for _ in range(30):
        at = rng.randrange(len(data) - 16)
        data[at:at + 16] = rng.randbytes(16)
    database.write_bytes(bytes(data))

    search = ["search", str(root / "p0001.jpg"), "--library", str(library), "--k", "3"]
    returncode, out = cli.run(search, output=tmp_path / "search.txt")
    assert "Traceback" not in out, out
    if returncode == 0:
        assert hit_scores(out) and max(hit_scores(out)) > 0.01, out
    else:
        assert "vitgallery repair" in out, out
    returncode, out = cli.run(["repair", "--library", str(library)], output=tmp_path / "repair.txt")
    assert "Traceback" not in out, out
    if returncode == 0 and "index it again" not in out:
        returncode, out = cli.run(search, output=tmp_path / "search-after.txt")
        assert returncode == 0 and "Traceback" not in out, out


def test_an_empty_database_file_says_what_to_do(good_library, tmp_path, cli):
    root, good = good_library
    library = tmp_path / "library"
    shutil.copytree(good, library)
    for name in (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm"):
        (library / name).unlink(missing_ok=True)
    (library / DB_NAME).write_bytes(b"")
    for argv in (["status", "--library", str(library)], ["search", str(root / "p0001.jpg"), "--library", str(library)]):
        returncode, out = cli.run(argv, output=tmp_path / "out.txt")
        assert returncode == 2 and "Traceback" not in out and "vitgallery index FOLDER --library" in out, out
    returncode, out = cli.run(["index", str(root), "--library", str(library), "--model", "tiny-test",
                               "--workers", "0"], output=tmp_path / "index.txt")
    assert returncode == 0 and f"added {PHOTOS}" in out, out


def test_a_read_only_library_searches_and_says_why_it_cannot_index(tmp_path, cli):
    """As an unprivileged user (root writes anywhere): the database file read-only, then the folder."""
    shared = Path(tempfile.mkdtemp(prefix="vg-read-only-"))
    try:
        shared.chmod(0o777)
        root, library = shared / "photos", shared / "library"
        add_photos(root, range(6))
        user = 65534 if os.geteuid() == 0 else None
        options = {"user": user, "env": {"XDG_DATA_HOME": str(shared / "xdg")}}
        index = ["index", str(root), "--library", str(library), "--model", "tiny-test", "--workers", "0"]
        search = ["search", str(root / "p0001.jpg"), "--library", str(library), "--k", "3"]
        duplicates = ["duplicates", "--library", str(library)]
        if user is not None:
            for path in [shared, *shared.rglob("*")]:
                os.chown(path, user, user)
        assert cli.run(index, output=tmp_path / "first.txt", **options)[0] == 0
        add_photos(root, range(6, 8))
        if user is not None:
            for path in root.iterdir():
                os.chown(path, user, user)
        for read_only, mode in ((library / DB_NAME, 0o444), (library, 0o555)):
            read_only.chmod(mode)
            returncode, out = cli.run(search, output=tmp_path / "search.txt", **options)
            assert returncode == 0 and "Traceback" not in out and len(hit_scores(out)) == 3, out
            returncode, out = cli.run(index, output=tmp_path / "index.txt", **options)
            assert returncode == 2 and "Traceback" not in out and "read-only" in out, out
            returncode, out = cli.run(["repair", "--library", str(library)], output=tmp_path / "repair.txt",
                                      **options)
            assert returncode == 2 and "Traceback" not in out and "cannot be written" in out, out
            assert sorted(p.name for p in library.iterdir() if "damaged" in p.name or "salvaged" in p.name) == []
            if read_only.is_file():  # a scan needs a working file beside the database, not to keep the scan
                returncode, out = cli.run(duplicates, output=tmp_path / "duplicates.txt", **options)
                assert returncode == 0 and "Traceback" not in out and "near-duplicates" in out, out
            read_only.chmod(0o755 if read_only.is_dir() else 0o644)
        returncode, out = cli.run(index, output=tmp_path / "last.txt", **options)
        assert returncode == 0 and "added 2" in out, out
    finally:
        for path in [shared, *shared.rglob("*")]:
            path.chmod(0o777)
        shutil.rmtree(shared)


def test_repair_leaves_a_database_another_process_holds_and_says_so(good_library, tmp_path, monkeypatch):
    """SQLite cannot look into a database held in exclusive locking mode: that is no damage, and a salvage
    would put a copy in place of the healthy file."""
    from vitgallery.core import repair
    from vitgallery.core.library import LibraryError

    library = tmp_path / "library"
    shutil.copytree(good_library[1], library)
    before = (library / DB_NAME).read_bytes()
    holder = sqlite3.connect(library / DB_NAME)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("UPDATE meta SET value = value WHERE key = 'root'")
    holder.commit()
    monkeypatch.setattr(repair, "_INTEGRITY_WAIT_S", 0.2)
    try:
        with pytest.raises(LibraryError, match="could not be checked .*close vitgallery"):
            repair.repair_library(library)
    finally:
        holder.close()
    assert sorted(p.name for p in library.iterdir() if "damaged" in p.name or "salvaged" in p.name) == []
    assert (library / DB_NAME).read_bytes() == before
