"""Promise 6: the disk filling up while indexing keeps the previous database and index intact;
indexing stops with a message and carries on once there is space again."""

from __future__ import annotations

import errno
import hashlib
import subprocess
from pathlib import Path

import pytest

from tests.reliability.support import (
    add_photos,
    check_saved_index,
    counting_embedder,
    database_vectors,
    index,
)
from vitgallery.core.duplicates import ScanError, scan_duplicates
from vitgallery.core.duplicates.actions import ActionError
from vitgallery.core.library import Library, LibraryError
from vitgallery.core.repair import repair_library
from vitgallery.core.store import StoreError


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MB tmpfs (a library of 120 small photos, 5 MB, fits while it is written); mounting needs root (the test is skipped elsewhere)."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount_point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill up: {mounted.stderr.strip()}")
    yield mount_point
    subprocess.run(["umount", "--lazy", str(mount_point)], check=True)


def fill(disk: Path, leave_bytes: int) -> Path:
    """Fill the disk up to `leave_bytes` of free space; returns the filler file."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as out:
        for chunk in (1 << 16, 1 << 12, 1):  # down to the last byte
            try:
                while out.write(b"\0" * chunk):
                    pass
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    if leave_bytes:
        size = filler.stat().st_size
        with open(filler, "r+b") as out:
            out.truncate(max(0, size - leave_bytes))
    return filler


def snapshot(library: Path) -> dict[str, str]:
    """The checksum of every file of the library folder (temporary files included)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(library.iterdir()) if not p.name.endswith(("-wal", "-shm"))}


def indexed_on(disk: Path, root: Path, photos: int) -> Path:
    """A library on `disk` of `photos` photos in `root`, indexed and closed; its folder."""
    library = disk / "library"
    add_photos(root, range(photos))
    lib = Library.open(root, library)
    index(lib, counting_embedder())
    lib.close()
    return library


@pytest.mark.parametrize("free_bytes", [0, 2 * 1024 * 1024], ids=["full-at-start", "full-mid-run"])
def test_disk_full_keeps_the_previous_state_and_resumes(tmp_path, small_disk, free_bytes):
    root = tmp_path / "photos"
    library = indexed_on(small_disk, root, 20)
    before_vectors = database_vectors(library)
    index_files = {name: digest for name, digest in snapshot(library).items() if name.startswith("index.")}

    add_photos(root, range(20, 120))
    filler = fill(small_disk, free_bytes)
    lib = None
    with pytest.raises(StoreError, match="the disk holding .* is full: free some space"):
        lib = Library.open(root, library)  # a full disk may already stop SQLite from opening
        index(lib, counting_embedder())
    if lib is not None:  # opened, as it is (read only) where the disk was full already
        lib.close()  # a writable one tries to save the index: cannot, says so, leaves the old files alone
        assert lib.store.read_only or any("could not save the index file" in notice for notice in lib.notices)

    filler.unlink()  # SQLite needs a little room even to read a WAL database
    after_vectors = database_vectors(library)
    assert all(after_vectors[i].tobytes() == v.tobytes() for i, v in before_vectors.items())
    files_now = snapshot(library)
    assert {name: files_now.get(name) for name in index_files} == index_files, "the old index files are untouched"
    assert not [name for name in files_now if name.endswith(".tmp")], "no temporary file is left behind"
    check_saved_index(library, after_vectors)

    embedder = counting_embedder()
    lib = Library.open(root, library)
    summary = index(lib, embedder)
    assert summary.added == 120 - len(after_vectors) == embedder.embedded
    lib.close()
    assert check_saved_index(library, database_vectors(library))


def test_cli_says_the_disk_is_full(tmp_path, small_disk, cli):
    root, library = tmp_path / "photos", small_disk / "library"
    add_photos(root, range(12))
    argv = ["index", str(root), "--library", str(library), "--model", "tiny-test", "--workers", "0"]
    env = {"env": {"XDG_DATA_HOME": str(small_disk / "user-data")}}  # where the library would be by default
    assert cli.run(argv, output=tmp_path / "first.txt", **env)[0] == 0
    add_photos(root, range(12, 60))
    filler = fill(small_disk, 0)
    returncode, out = cli.run(argv, output=tmp_path / "full.txt", **env)
    assert returncode == 2 and "is full: free some space" in out and "Traceback" not in out, out
    filler.unlink()
    returncode, out = cli.run(argv, output=tmp_path / "again.txt", **env)
    assert returncode == 0 and "added 48" in out, out


def test_a_duplicates_scan_on_a_full_disk_says_so_and_changes_nothing(tmp_path, small_disk):
    root, library = tmp_path / "photos", small_disk / "library"
    add_photos(root, range(30))
    lib = Library.open(root, library)
    index(lib, counting_embedder())
    before = snapshot(library)
    filler = fill(small_disk, 16 * 1024)  # less than the features of one photo
    with pytest.raises(ScanError, match="no room for the scan's working file .* free some space and scan again"):
        scan_duplicates(lib, workers=1)
    filler.unlink()
    assert snapshot(library) == before and not list(small_disk.glob("**/vitgallery-scan-*"))
    assert scan_duplicates(lib, workers=1).pairs, "with room again, the scan runs"
    lib.close()


@pytest.mark.parametrize("free_bytes", [0, 8 * 1024, 32 * 1024, 128 * 1024])
def test_cli_index_starting_on_a_nearly_full_disk_says_so(tmp_path, small_disk, cli, free_bytes):
    """Whatever the first write of a run meets (the database, its WAL, the index file, the folder that
    remembers the last library), the run ends with the message, never a traceback."""
    root, library = tmp_path / "photos", small_disk / "library"
    add_photos(root, range(8))
    argv = ["index", str(root), "--library", str(library), "--model", "tiny-test", "--workers", "0"]
    env = {"env": {"XDG_DATA_HOME": str(small_disk / "user-data")}}
    assert cli.run(argv, output=tmp_path / "first.txt", **env)[0] == 0
    add_photos(root, range(8, 40))
    filler = fill(small_disk, free_bytes)
    returncode, out = cli.run(argv, output=tmp_path / "full.txt", **env)
    assert "Traceback" not in out, out
    assert returncode == 0 or (returncode == 2 and "is full: free some space" in out), out
    filler.unlink()


def test_a_full_disk_still_shows_and_searches_the_library_and_repair_changes_nothing(tmp_path, small_disk):
    """Reading needs no room: status and search work on a full disk as on a read-only one; repair and a
    move say the disk is full instead of taking it for damage (repair salvaged an empty copy)."""
    root = tmp_path / "photos"
    library = indexed_on(small_disk, root, 12)
    before = snapshot(library)
    filler = fill(small_disk, 0)
    lib = Library.open(library_dir=library)
    try:
        assert lib.photo_count() == 12 and lib.status().photos == 12
        assert len(lib.search(sorted(root.iterdir())[0], k=3)) == 3, "a photo of the library is searched as kept"
        with pytest.raises(ActionError, match="its disk is full: free some space"):
            lib.move_into_folders([(sorted(root.iterdir())[1], tmp_path / "elsewhere")])
    finally:
        lib.close()
    with pytest.raises(LibraryError, match="is full: free some space, then repair again"):
        repair_library(library)
    filler.unlink()
    assert snapshot(library) == before and not list(library.glob("*.salvaged"))


@pytest.mark.parametrize("free_bytes", [32 * 1024, 256 * 1024], ids=["log-and-library", "library-only"])
def test_moves_a_full_disk_kept_the_library_from_noting_are_undone_without_an_index(tmp_path, small_disk, free_bytes):
    """With room for the action's log (some or all of it) but not for the library to note the moves, the
    report says which files moved; the undo finds the library still holding them and asks no index."""
    root = tmp_path / "photos"
    library = indexed_on(small_disk, root, 40)
    lib = Library.open(root, library)
    try:
        filler = fill(small_disk, free_bytes)
        moved = sorted(root.iterdir())[:5]
        report = lib.move_into_folders([(path, tmp_path / "elsewhere") for path in moved])
        assert report.unnoted and "is full: free some space" in report.unnoted, report.summary()
        assert "the library could not note what moved (its next index does)" in report.summary()
        if free_bytes > 32 * 1024:  # the log was written to the end: every file moved, nothing stopped
            assert len(report.done) == 5 and report.stopped is None and "stopped" not in report.summary()
        assert report.done and all(not source.exists() and to.exists() for source, to in report.done)
        filler.unlink()
        back = lib.undo(report.action_id)
        assert len(back.done) == len(report.done) and back.to_index == [], back.summary()
        assert all(path.exists() for path in moved)
        assert back.summary() == f"{len(back.done)} file{'s' if len(back.done) > 1 else ''} put back"
        assert lib.index(counting_embedder(), decode_workers=0).added == 0, "the library held them all along"
    finally:
        lib.close()
