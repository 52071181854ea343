"""What a kill or a change leaves behind is cleared: temporary index files of a save that never ended, the
vector of a photo truncated after it was embedded; and a library whose photo folder was renamed can
follow it."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.reliability.support import (
    add_photos,
    check_saved_index,
    counting_embedder,
    database_vectors,
    index,
)
from vitgallery.core.library import INDEX_NAME, Library, LibraryError


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
