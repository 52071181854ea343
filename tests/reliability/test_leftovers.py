"""What a kill or a change leaves behind is cleared: temporary index files of a save that never ended, the
vector of a photo truncated after it was embedded; and a library whose photo folder was renamed can
follow it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading

import pytest

from tests.reliability.support import (
    add_photos,
    check_saved_index,
    counting_embedder,
    database_vectors,
    index,
)
from vitgallery.core.library import (
    DB_NAME,
    INDEX_NAME,
    Library,
    LibraryError,
    MovedLibrary,
    default_library_dir,
    moved_library,
)


def test_temporary_files_of_a_killed_save_are_removed(tmp_path):
    root, library = tmp_path / "photos", tmp_path / "library"
    add_photos(root, range(10))
    lib = Library.open(root, library)
    index(lib, counting_embedder())
    lib.close()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    killed_save = [library / f".{INDEX_NAME}.{dead.stdout.strip()}.{part}.tmp" for part in ("a1b2", "c3d4", "e5f6")]
    older_kind = library / f".{INDEX_NAME}.x7y8z9w0.tmp"  # named before the pid was in the name
    in_progress = library / f".{INDEX_NAME}.{os.getpid()}.g7h8.tmp"  # another save of this very process
    for path in [*killed_save, older_kind, in_progress]:
        path.write_bytes(b"half a payload")
    os.utime(older_kind, (0, 0))

    add_photos(root, range(10, 12))
    lib = Library.open(root, library)
    index(lib, counting_embedder())
    lib.close()
    assert not any(path.exists() for path in [*killed_save, older_kind])
    assert in_progress.exists()
    in_progress.unlink()
    assert check_saved_index(library, database_vectors(library))


def test_a_photo_truncated_after_it_was_embedded_leaves_the_results(tmp_path):
    root = tmp_path / "photos"
    add_photos(root, range(10))
    lib = Library.open(root, tmp_path / "library")
    index(lib, counting_embedder())
    victim = root / "p0006.jpg"
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])

    summary = index(lib, counting_embedder())
    assert summary.skipped_reasons == {"truncated file": 1} and summary.removed == 0
    assert [s.path for s in lib.skipped()] == ["p0006.jpg"]
    assert "p0006.jpg" not in {row.path for row in lib.photos()}
    assert victim not in {hit.path for hit in lib.search(root / "p0001.jpg", k=20)}

    victim.write_bytes(data)  # restored from a backup
    summary = index(lib, counting_embedder())
    assert summary.added == 1 and lib.skipped() == []
    lib.close()


def test_a_renamed_photo_folder_can_be_followed(tmp_path, cli):
    root, library = tmp_path / "photos", tmp_path / "library"
    add_photos(root, range(8))
    argv = ["--library", str(library), "--model", "tiny-test", "--workers", "0"]
    assert cli.run(["index", str(root), *argv], output=tmp_path / "1.txt")[0] == 0
    renamed = tmp_path / "Photos 2024"
    root.rename(renamed)

    returncode, out = cli.run(["index", str(renamed), *argv], output=tmp_path / "2.txt")
    assert returncode == 2 and "--repoint" in out and "Traceback" not in out, out
    returncode, out = cli.run(["index", str(renamed), *argv, "--repoint"], output=tmp_path / "3.txt")
    assert returncode == 0 and "unchanged 8" in out and "added 0" in out, out
    returncode, out = cli.run(["search", str(renamed / "p0002.jpg"), "--library", str(library), "--k", "3"],
                              output=tmp_path / "4.txt")
    assert returncode == 0 and out.count(str(renamed)) == 4, out

    lib = Library.open(library_dir=library)
    assert lib.root == renamed
    lib.close()
    try:
        Library.open(root, library)
    except LibraryError as exc:
        assert "--repoint" in str(exc)
    else:
        raise AssertionError("the old folder is no longer the library's")


def test_a_renamed_photo_folder_is_found_and_its_library_follows_it_to_the_new_place(tmp_path):
    root, renamed = tmp_path / "photos", tmp_path / "Photos 2024"
    add_photos(root, range(8))
    lib = Library.open(root)  # the default place: one library folder per photo folder
    index(lib, counting_embedder())
    old_dir = lib.library_dir
    lib.close()
    root.rename(renamed)

    moved = moved_library(renamed)
    assert moved == MovedLibrary(old_dir, root, 8)
    lib = Library.open(renamed, moved.library_dir, repoint=True)
    assert lib.library_dir == default_library_dir(renamed) and not old_dir.exists()
    embedder = counting_embedder()
    summary = index(lib, embedder)
    assert (summary.unchanged, summary.added, embedder.embedded) == (8, 0, 0)
    lib.close()
    assert moved_library(renamed) is None  # it has its library now, where the window and the commands look
    lib = Library.open(renamed)
    assert lib.photo_count() == 8
    lib.close()


def indexed_in_the_default_place(tmp_path, photos: int):
    """A folder of `photos` photos, indexed into the library the window and the commands find for it."""
    root = tmp_path / "photos"
    add_photos(root, range(photos))
    lib = Library.open(root)
    index(lib, counting_embedder())
    lib.close()
    return root


def indexed_then_renamed(tmp_path, photos: int):
    """(old place, new place) of a folder indexed in the default place, then renamed."""
    root, renamed = indexed_in_the_default_place(tmp_path, photos), tmp_path / "renamed"
    root.rename(renamed)
    return root, renamed


def test_an_empty_library_of_the_new_place_gives_way_to_the_one_that_follows(tmp_path):
    root, renamed = indexed_then_renamed(tmp_path, 6)
    Library.open(renamed).close()  # an index of the new place stopped before any photo was embedded

    lib = Library.open(renamed, moved_library(renamed).library_dir, repoint=True)
    assert lib.photo_count() == 6 and lib.library_dir == default_library_dir(renamed)
    lib.close()


def test_no_library_follows_to_a_copy_or_to_other_photos_of_the_same_names(tmp_path):
    root = indexed_in_the_default_place(tmp_path, 8)
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    assert moved_library(copy) is None, "the photos' folder is still there: this is a copy"

    shutil.rmtree(root)
    assert moved_library(copy) == MovedLibrary(default_library_dir(root), root, 8)
    other = tmp_path / "other"
    add_photos(other, range(8), size=(160, 120))  # the same names, other photos
    assert moved_library(other) is None
    assert moved_library(copy, tmp_path / "my library") is None, "a library folder the user named is not looked beside"


def test_the_index_command_says_when_the_photos_of_a_gone_folder_are_there_and_repoint_follows_them(tmp_path, cli):
    root, renamed = tmp_path / "photos", tmp_path / "Photos 2025"
    add_photos(root, range(300, 306), size=(112, 84))  # photos no other test's library holds (one user folder)
    argv = ["--model", "tiny-test", "--workers", "0"]
    assert cli.run(["index", str(root), *argv], output=tmp_path / "1.txt")[0] == 0
    root.rename(renamed)

    returncode, out = cli.run(["index", str(renamed), *argv, "--repoint"], output=tmp_path / "2.txt")
    assert returncode == 0 and "unchanged 6" in out and "added 0" in out, out
    returncode, out = cli.run(["index", str(renamed), *argv], output=tmp_path / "3.txt")
    assert returncode == 0 and "unchanged 6" in out and "note:" not in out, out
    followed = re.search(r"\(library (.*)\)", out)[1]

    again = tmp_path / "Photos 2026"
    renamed.rename(again)
    returncode, out = cli.run(["index", str(again), *argv], output=tmp_path / "4.txt")
    assert returncode == 0 and f"these are the photos of {renamed}" in out and "--repoint" in out, out
    assert "added 6" in out, "the run goes on: indexing anew is the user's choice"
    # the library that run made holds nothing the followed one lacks: it gives way
    returncode, out = cli.run(["index", str(again), *argv, "--repoint"], output=tmp_path / "5.txt")
    assert returncode == 0 and f"the library of {renamed} follows its photos here" in out and "unchanged 6" in out, out
    returncode, out = cli.run(["duplicates", "--library", followed, "--history"], output=tmp_path / "6.txt")
    assert returncode == 0 and "it is in" in out and "no action yet" in out, "an old --library finds where it went"


@pytest.mark.parametrize("answer", ["", "n"])
def test_on_a_terminal_the_index_command_asks_to_follow_the_photos_of_a_gone_folder(tmp_path, monkeypatch, capsys, answer):
    from vitgallery.cli import main

    root, renamed = tmp_path / "photos", tmp_path / "renamed"
    add_photos(root, range(6))
    argv = ["--model", "tiny-test", "--workers", "0"]
    assert main(["index", str(root), *argv]) == 0
    root.rename(renamed)
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda: answer)
    assert main(["index", str(renamed), *argv]) == 0
    out = capsys.readouterr()
    assert f"These are the photos of {root}" in out.err and "Follow its library here?" in out.err
    assert ("unchanged 6" in out.out and "added 0" in out.out) if answer == "" else "added 6" in out.out, out


def test_indexing_a_folder_inside_one_with_a_library_says_it_makes_a_separate_one(tmp_path, capsys):
    from vitgallery.cli import main

    root = tmp_path / "photos"
    add_photos(root / "2024", range(4))
    argv = ["--model", "tiny-test", "--workers", "0"]
    assert main(["index", str(root), *argv]) == 0
    assert "note:" not in capsys.readouterr().err
    assert main(["index", str(root / "2024"), *argv]) == 0
    said = capsys.readouterr().err
    assert f"note: {root / '2024'} is inside {root}, which has its own library" in said
    assert str(default_library_dir(root)) in said
    assert main(["index", str(root / "2024"), *argv]) == 0
    assert "note:" not in capsys.readouterr().err, "said once, when the separate library is made"


def test_a_library_does_not_follow_to_a_copy_of_a_folder_still_there_nor_to_another_folder(tmp_path):
    root = indexed_in_the_default_place(tmp_path, 6)
    copy, other = tmp_path / "copy", tmp_path / "other"
    shutil.copytree(root, copy)
    add_photos(other, range(50, 56))
    with pytest.raises(LibraryError, match="is still there"):
        Library.open(copy, default_library_dir(root), repoint=True)
    shutil.rmtree(root)
    with pytest.raises(LibraryError, match="holds none of 6 photos"):
        Library.open(other, default_library_dir(root), repoint=True)
    assert (default_library_dir(root) / DB_NAME).exists(), "refused: the library stays where it was"


def test_a_stopped_index_of_the_new_place_gives_way_to_the_library_that_follows(tmp_path):
    root, renamed = indexed_then_renamed(tmp_path, 8)
    stop = threading.Event()
    partial = Library.open(renamed)  # indexed anew, as a script does, then stopped
    index(partial, counting_embedder(), cancel=stop, progress=lambda p: p.done and stop.set())
    assert 0 < partial.photo_count() < 8
    partial.close()

    moved = moved_library(renamed, own_too=True)
    lib = Library.open(renamed, moved.library_dir, repoint=True)
    assert lib.photo_count() == 8 and lib.followed_from == root
    lib.close()


def test_a_library_of_the_new_place_with_other_photos_stops_the_one_that_would_follow(tmp_path):
    root, renamed = indexed_then_renamed(tmp_path, 6)
    add_photos(renamed, range(90, 91))  # a photo the old library never had
    lib = Library.open(renamed)
    index(lib, counting_embedder())
    lib.close()
    with pytest.raises(LibraryError, match="with 1 photos that the library of"):
        Library.open(renamed, moved_library(renamed, own_too=True).library_dir, repoint=True)
