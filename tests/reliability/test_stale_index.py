"""A stale index is never trusted: the index file records the database generation it holds, and an index
(in memory or on disk) behind the database catches up, whichever process committed meanwhile."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.reliability.support import (
    add_photos,
    check_saved_index,
    counting_embedder,
    database_vectors,
    index,
)
from vitgallery.core.index import IndexMismatch, read_header
from vitgallery.core.library import DB_NAME, INDEX_NAME, Library

REPO_ROOT = Path(__file__).resolve().parents[2]


def finds_itself(lib: Library, photo: Path, embedder) -> bool:
    """A copy of the photo from outside the library finds the photo first."""
    outside = photo.parent.parent / "outside" / photo.name
    outside.parent.mkdir(exist_ok=True)
    shutil.copyfile(photo, outside)
    return lib.search(outside, k=1, embedder=embedder, verify=False)[0].path == photo


def test_the_window_catches_up_with_photos_the_cli_added(tmp_path):
    """The window's library stays open; the CLI (another Library on the same folder) adds 5 photos;
    F5 in the window and its searches see them, and what it saves on close is right."""
    root, library = tmp_path / "photos", tmp_path / "library"
    add_photos(root, range(12))
    embedder = counting_embedder()
    window = Library.open(root, library)
    index(window, embedder)

    new_photos = add_photos(root, range(12, 17))
    cli = Library.open(root, library)
    assert index(cli, embedder).added == 5
    cli.close()

    embedder.embedded = 0
    summary = index(window, embedder)  # F5
    assert summary.unchanged == 17 and embedder.embedded == 0
    assert window.status().index_size == 17
    assert all(finds_itself(window, photo, embedder) for photo in new_photos)
    window.close()
    vectors = database_vectors(library)
    assert len(vectors) == 17
    check_saved_index(library, vectors)  # accepted only if it holds exactly the database's vectors
    lib = Library.open(root, library)
    assert lib.status().index_size == 17 and lib.notices == []
    lib.close()


def test_a_search_open_while_another_process_indexes_never_stamps_what_it_lacks(tmp_path):
    """A searching process builds its index while an indexer commits batch after batch, then closes
    after the indexer saved: the file it leaves claims no generation it does not hold."""
    root, library = tmp_path / "photos", tmp_path / "library"
    add_photos(root, range(10))
    embedder = counting_embedder()
    lib = Library.open(root, library)
    index(lib, embedder)
    lib.close()
    add_photos(root, range(10, 16))
    (library / INDEX_NAME).with_suffix(".json").unlink()  # the searcher must build its index
    searcher = Library.open(root, library)

    def search_midway(p):
        if p.phase == "embedding" and p.done == 2:
            searcher.search(root / "p0001.jpg", k=3)

    indexer = Library.open(root, library)
    index(indexer, embedder, progress=search_midway)
    indexer.close()
    searcher.close()

    vectors = database_vectors(library)
    assert len(vectors) == 16
    assert read_header(library / INDEX_NAME).count == 16, "the indexer's newer file stays"
    assert check_saved_index(library, vectors)
    lib = Library.open(root, library)
    assert lib.status().index_size == 16
    lib.close()


def test_an_index_file_behind_the_database_is_caught_up_not_trusted(tmp_path):
    """An older index file (saved before the last commits: a process killed before it saved) is loaded
    and given what it lacks, without rebuilding it."""
    root, library = tmp_path / "photos", tmp_path / "library"
    add_photos(root, range(20))
    embedder = counting_embedder()
    lib = Library.open(root, library)
    index(lib, embedder)
    lib.close()
    old_file = {p.name: p.read_bytes() for p in library.glob("index.*")}
    add_photos(root, range(20, 24))  # too few to fit the whitening again: the same index signature
    (root / "p0003.jpg").unlink()
    lib = Library.open(root, library)
    index(lib, embedder)
    lib.close()
    for name, data in old_file.items():  # as if the second run died before it saved
        (library / name).write_bytes(data)

    lib = Library.open(root, library)
    assert lib.status().index_size == 23 and lib.notices == []
    hits = lib.search(root / "p0022.jpg", k=23)
    assert {hit.path.name for hit in hits} == {f"p{i:04d}.jpg" for i in range(24) if i not in (3, 22)}
    lib.close()
    assert check_saved_index(library, database_vectors(library))


def test_cli_index_one_by_one_while_searches_run(tmp_path, cli):
    """`vitgallery index --batch-size 1` while `vitgallery search` runs again and again in other
    processes: afterwards the index holds every photo."""
    root, library = tmp_path / "photos", tmp_path / "library"
    add_photos(root, range(8))
    argv = ["index", str(root), "--library", str(library), "--model", "tiny-test", "--workers", "0"]
    assert cli.run(argv, output=tmp_path / "first.txt")[0] == 0
    add_photos(root, range(8, 30))
    cli.start(argv + ["--batch-size", "1"], embed_log=tmp_path / "embedded.txt", output=tmp_path / "second.txt")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    searches = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = (tmp_path / "embedded.txt").exists() and \
            sum(int(n) for n in (tmp_path / "embedded.txt").read_text().split()) >= 22
        search = subprocess.run([sys.executable, "-m", "vitgallery", "search", str(root / "p0001.jpg"),
                                 "--library", str(library), "--k", "3"],
                                capture_output=True, text=True, cwd=REPO_ROOT, env=env)
        assert search.returncode == 0, search.stderr
        searches += 1
        assert saved_index_holds_its_generation(library)
        if done:
            break
    assert cli.wait() == 0, (tmp_path / "second.txt").read_text()
    assert searches >= 2
    returncode, out = cli.run(["status", "--library", str(library)], output=tmp_path / "status.txt")
    assert "photos       : 30" in out and "index size   : 30" in out, out
    assert check_saved_index(library, database_vectors(library)), "status caught the file up and saved it"


def saved_index_holds_its_generation(library: Path) -> bool:
    """The saved index holds at least every vector written up to the generation it names (no photo
    is ever deleted in the test that asks)."""
    try:
        header = read_header(library / INDEX_NAME)
    except IndexMismatch:
        return True  # none saved yet, or being replaced
    db = sqlite3.connect(library / DB_NAME)
    try:
        written = db.execute("SELECT COUNT(*) FROM files WHERE vector IS NOT NULL AND vector_generation <= ?",
                             (header.generation,)).fetchone()[0]
    finally:
        db.close()
    return header.count >= written
