from __future__ import annotations

import os
import shutil

from vitgallery.core.scan import LINK_TO_MISSING_FILE, fingerprint_file, root_is_available, scan_root


def test_finds_photos_skips_hidden_and_other_files(photo_folder):
    (photo_folder / "notes.txt").write_text("not a photo")
    (photo_folder / ".thumbnails").mkdir()
    shutil.copy(photo_folder / "img_00.jpg", photo_folder / ".thumbnails" / "t.jpg")
    (photo_folder / "UPPER.JPG").write_bytes((photo_folder / "img_01.jpg").read_bytes())
    result = scan_root(photo_folder)
    paths = [f.path for f in result.files]
    assert "trip/img_10.jpg" in paths and "UPPER.JPG" in paths
    assert not any(p.startswith(".thumbnails") or p.endswith(".txt") for p in paths)
    assert len(paths) == 13


def test_symlink_loop_is_walked_once(photo_folder):
    os.symlink(photo_folder, photo_folder / "trip" / "loop")
    result = scan_root(photo_folder)
    assert len(result.files) == 12


def test_missing_root_is_offline(tmp_path):
    assert not root_is_available(tmp_path / "gone")
    assert root_is_available(tmp_path)


def test_fingerprint_follows_content_not_name(photo_folder):
    a = fingerprint_file(photo_folder / "img_00.jpg")
    shutil.copy(photo_folder / "img_00.jpg", photo_folder / "copy.jpg")
    assert fingerprint_file(photo_folder / "copy.jpg") == a
    assert fingerprint_file(photo_folder / "img_01.jpg") != a


def test_jpegs_named_jpe_or_jfif_are_photos(tmp_path):
    """The desktop opens every image/jpeg file with vitgallery, .jpe and .jfif included."""
    for name in ("a.jpe", "b.JFIF", "c.jpg"):
        (tmp_path / name).write_bytes(b"\xff\xd8\xff\xe0")
    assert sorted(f.path for f in scan_root(tmp_path).files) == ["a.jpe", "b.JFIF", "c.jpg"]


def test_a_link_to_a_folder_inside_is_not_walked_and_the_photos_keep_their_real_paths(photo_folder, tmp_path):
    (photo_folder / "links").mkdir()
    os.symlink("../trip", photo_folder / "links" / "a_trip_alias")  # sorted before "trip"
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.copy(photo_folder / "img_00.jpg", outside / "far.jpg")
    os.symlink(outside, photo_folder / "far_away")  # a link out of the folder is followed
    paths = [f.path for f in scan_root(photo_folder).files]
    assert "trip/img_10.jpg" in paths and not any(p.startswith("links/") for p in paths)
    assert "far_away/far.jpg" in paths and len(paths) == len(set(paths)) == 13


def test_a_pipe_and_a_link_to_a_missing_file_are_said_not_left_out(photo_folder, tmp_path):
    os.mkfifo(photo_folder / "pipe.jpg")  # stat only: opening it would wait for a writer forever
    (photo_folder / "trip" / "gone.jpg").symlink_to(tmp_path / "unplugged" / "gone.jpg")
    result = scan_root(photo_folder)
    assert [f.path for f in result.files if "img" not in f.path] == []
    assert dict(result.problems) == {"pipe.jpg": "not a regular file (a named pipe)", "trip/gone.jpg": LINK_TO_MISSING_FILE}
    assert result.unreachable == ["trip/gone.jpg"], "a photo the library knows there stays (an unplugged drive)"
