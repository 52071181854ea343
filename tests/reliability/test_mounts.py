"""A folder that disappears with its drive is offline, not deleted: a sub-folder that was a mount point
and is now an empty folder (unmounted), and a root that suddenly lost most of its photos (replaced by
another folder) keep their photos until the user says to forget them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.reliability.support import add_photos, counting_embedder, index
from vitgallery.core.indexing import MASS_LOSS_MIN_PHOTOS
from vitgallery.core.library import Library


def mount_tmpfs(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.strip()}")


def unmount(folder: Path) -> None:
    subprocess.run(["umount", "--lazy", str(folder)], check=True)


def test_an_unmounted_sub_folder_is_offline_not_deleted(tmp_path):
    root = tmp_path / "photos"
    add_photos(root, range(6))
    camera = root / "camera"
    mount_tmpfs(camera)
    try:
        add_photos(camera, range(6, 16))
        embedder = counting_embedder()
        lib = Library.open(root, tmp_path / "library")
        assert index(lib, embedder).added == 16
    finally:
        unmount(camera)  # the drive is unplugged: an empty folder stays

    summary = index(lib, embedder)
    assert summary.removed == 0 and lib.status().photos == 16
    assert any("10 photos under camera cannot be reached now" in notice for notice in lib.notices), lib.notices
    assert len(lib.search(camera / "p0008.jpg", k=3)) == 3, "found by its stored vector"

    mount_tmpfs(camera)  # plugged in again
    try:
        add_photos(camera, range(6, 16))  # the same photos (new mtimes)
        embedder.embedded = 0
        summary = index(lib, embedder)
        assert summary.removed == 0 and summary.added == 0 and embedder.embedded == 0
        assert summary.moved + summary.unchanged == 16
    finally:
        unmount(camera)
    lib.close()


def replace_root_with_a_stray_photo(root: Path, elsewhere: Path) -> None:
    shutil.move(root, elsewhere)
    add_photos(root, range(900, 901), prefix="stray")


def test_a_root_that_lost_most_of_its_photos_asks_before_forgetting_them(tmp_path):
    root = tmp_path / "photos"
    photos = MASS_LOSS_MIN_PHOTOS + 10
    add_photos(root, range(photos))
    embedder = counting_embedder()
    lib = Library.open(root, tmp_path / "library")
    index(lib, embedder)
    replace_root_with_a_stray_photo(root, tmp_path / "elsewhere")

    summary = index(lib, embedder)
    assert summary.removed == 0 and summary.missing_kept == photos and summary.added == 1
    assert lib.status().photos == photos + 1
    assert any(f"{photos} of {photos} photos are gone" in notice for notice in lib.notices), lib.notices

    summary = index(lib, embedder, forget_missing=True)
    assert summary.removed == photos and summary.missing_kept == 0 and lib.status().photos == 1
    lib.close()


def test_a_few_deleted_photos_are_forgotten_without_asking(tmp_path):
    root = tmp_path / "photos"
    add_photos(root, range(MASS_LOSS_MIN_PHOTOS + 10))
    lib = Library.open(root, tmp_path / "library")
    index(lib, counting_embedder())
    for path in sorted(root.glob("*.jpg"))[:MASS_LOSS_MIN_PHOTOS]:  # most, but only a few
        path.unlink()
    summary = index(lib, counting_embedder())
    assert summary.removed == MASS_LOSS_MIN_PHOTOS and summary.missing_kept == 0
    lib.close()


def test_cli_refuses_to_forget_them_without_forget_missing(tmp_path, cli):
    root, library = tmp_path / "photos", tmp_path / "library"
    photos = MASS_LOSS_MIN_PHOTOS + 10
    add_photos(root, range(photos))
    argv = ["index", str(root), "--library", str(library), "--model", "tiny-test", "--workers", "0"]
    assert cli.run(argv, output=tmp_path / "1.txt")[0] == 0
    replace_root_with_a_stray_photo(root, tmp_path / "elsewhere")

    returncode, out = cli.run(argv, output=tmp_path / "2.txt")
    assert returncode == 3 and f"{photos} of {photos} photos are gone" in out and "--forget-missing" in out, out
    returncode, out = cli.run(["status", "--library", str(library)], output=tmp_path / "3.txt")
    assert f"photos       : {photos + 1}" in out, out
    returncode, out = cli.run(argv + ["--forget-missing"], output=tmp_path / "4.txt")
    assert returncode == 0 and f"removed {photos}" in out, out
