from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.photos import make_photo
from vitgallery.ui.thumbnails import ThumbnailLoader, cache_key, decode_scaled, trim_disk_cache


def test_decode_scaled_fits_the_box_and_follows_exif_rotation(tmp_path: Path) -> None:
    path = tmp_path / "rotated.jpg"
    image = make_photo(2, (800, 400))
    exif = image.getexif()
    exif[0x0112] = 6  # stored landscape, shown portrait
    image.save(path, exif=exif)
    thumb = decode_scaled(path, 100)
    assert (thumb.width(), thumb.height()) == (50, 100)
    small = decode_scaled(path.read_bytes(), 1000)  # never enlarged
    assert (small.width(), small.height()) == (400, 800)


def test_a_name_qt_cannot_spell_is_read_through_python(tmp_path: Path) -> None:
    """Names are bytes: one that is not UTF-8 (an old camera card's Latin-1 "é") has no Qt spelling."""
    path = Path(os.fsdecode(bytes(tmp_path) + b"/\xe9t\xe9.jpg"))
    make_photo(1).save(path)
    assert decode_scaled(path, 64).width() == 64


def test_thumbnails_in_a_latin_1_locale(tmp_path: Path) -> None:
    """Python names files in the locale's encoding, Qt 6 in UTF-8: in an ISO-8859-1 locale a UTF-8
    "é" reached Qt as "Ã©" and every such photo "could not be read"."""
    localedef = shutil.which("localedef")
    if localedef is None or subprocess.run([localedef, "-i", "en_US", "-f", "ISO-8859-1",
                                            str(tmp_path / "en_US.ISO-8859-1")], capture_output=True).returncode:
        pytest.skip("cannot make an ISO-8859-1 locale here")
    make_photo(1).save(Path(os.fsdecode(bytes(tmp_path) + "/été.jpg".encode())))
    code = ("import os, sys; from pathlib import Path; from vitgallery.ui.thumbnails import decode_scaled; "
            "assert sys.getfilesystemencoding() == 'iso8859-1', sys.getfilesystemencoding(); "
            "[photo] = Path(sys.argv[1]).glob('*.jpg'); print(decode_scaled(photo, 64).width())")
    env = {**os.environ, "LOCPATH": str(tmp_path), "LC_ALL": "en_US.ISO-8859-1", "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.split() == ["64"], done.stderr


def test_loader_caches_on_disk_and_in_memory(qtbot, tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    make_photo(5, (300, 200)).save(photo)
    cache = tmp_path / "thumbs"
    loader = ThumbnailLoader(size=60, cache_dir=cache)
    with qtbot.waitSignal(loader.thumbnail_ready, timeout=10_000) as ready:
        assert loader.pixmap(photo) is None
    assert ready.args == [str(photo)]
    first = loader.pixmap(photo)
    assert first is not None and (first.width(), first.height()) == (60, 40)
    cached_files = list(cache.rglob("*.*"))
    # The photo is opaque, so its thumbnail is cached as a JPEG.
    assert [path.name for path in cached_files] == [f"{cache_key(photo, 60)}.jpg"]
    loader.shutdown()

    # A second loader (a new session) reads the disk cache instead of the photo.
    photo_bytes = photo.read_bytes()
    cached_files[0].write_bytes(_png_of_size(12, 8))
    fresh = ThumbnailLoader(size=60, cache_dir=cache)
    with qtbot.waitSignal(fresh.thumbnail_ready, timeout=10_000):
        fresh.pixmap(photo)
    assert fresh.pixmap(photo).width() == 12
    assert photo.read_bytes() == photo_bytes
    fresh.shutdown()


def test_transparent_thumbnails_are_cached_as_png(qtbot, tmp_path: Path) -> None:
    logo = tmp_path / "logo.png"
    Image.new("RGBA", (200, 100), (255, 0, 0, 90)).save(logo)
    loader = ThumbnailLoader(size=50, cache_dir=tmp_path / "thumbs")
    with qtbot.waitSignal(loader.thumbnail_ready, timeout=10_000):
        loader.pixmap(logo)
    assert [path.suffix for path in (tmp_path / "thumbs").rglob("*.*")] == [".png"]
    assert loader.pixmap(logo).hasAlphaChannel()
    loader.shutdown()


def test_editing_a_photo_changes_its_cache_key(tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    make_photo(1).save(photo)
    before = cache_key(photo, 100)
    make_photo(2).save(photo)
    assert cache_key(photo, 100) != before
    assert cache_key(photo, 120) != cache_key(photo, 100)
    assert cache_key(tmp_path / "gone.jpg", 100) is None


def test_grid_change_drops_pending_loads(qtbot, tmp_path: Path) -> None:
    paths = []
    for number in range(30):
        paths.append(tmp_path / f"p{number}.jpg")
        make_photo(number, (1200, 900)).save(paths[-1])
    loader = ThumbnailLoader(size=64, cache_dir=None, max_threads=1)
    ready: list[str] = []
    loader.thumbnail_ready.connect(ready.append)
    for path in paths:
        loader.pixmap(path)
    loader.drop_pending()
    assert loader.pending_count() == 0
    loader.wait_for_done(10_000)
    qtbot.wait(50)  # deliver whatever finished
    # At most the load already running completes, and as it belongs to the old grid it is ignored.
    assert ready == []
    loader.shutdown()


def test_undecodable_file_is_flagged_not_raised(qtbot, tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    loader = ThumbnailLoader(size=64, cache_dir=tmp_path / "thumbs")
    with qtbot.waitSignal(loader.thumbnail_ready, timeout=10_000):
        loader.pixmap(broken)
    assert loader.pixmap(broken) is None and loader.has_failed(broken)
    loader.shutdown()


def _png_of_size(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "red").save(buffer, format="PNG")
    return buffer.getvalue()


def test_disk_cache_is_trimmed_least_recently_used_first(tmp_path: Path) -> None:
    cache = tmp_path / "thumbs"
    (cache / "ab").mkdir(parents=True)
    (cache / "cd").mkdir()
    now = time.time()
    files = []
    for n in range(10):  # 10 thumbnails of 1,000 bytes, used one hour apart, in two folders
        path = cache / ("ab" if n % 2 else "cd") / f"{n:02d}.jpg"
        path.write_bytes(b"x" * 1000)
        os.utime(path, (now - 3600 * (10 - n), now - 3600 * (10 - n)))
        files.append(path)
    stale = cache / "ab" / "half-written.1.2.tmp"
    stale.write_bytes(b"x" * 50)
    os.utime(stale, (now - 7200, now - 7200))
    fresh = cache / "cd" / "being-written.3.4.tmp"
    fresh.write_bytes(b"x" * 50)
    unrelated = cache / "notes.txt"
    unrelated.write_text("not a thumbnail")

    assert trim_disk_cache(cache, limit=20_000) == (1, 50), "under the limit only a crash's leftovers go"
    deleted, freed = trim_disk_cache(cache, limit=8_000)
    # over the limit: the least recently used go until 80 % of it is left
    assert (deleted, freed) == (4, 4000)
    assert [path.exists() for path in files] == [False] * 4 + [True] * 6
    assert fresh.exists() and unrelated.exists()
    assert trim_disk_cache(tmp_path / "missing", limit=0) == (0, 0)


def test_a_cache_hit_counts_as_a_use(qtbot, tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    make_photo(7, (300, 200)).save(photo)
    cache = tmp_path / "thumbs"
    loader = ThumbnailLoader(size=60, cache_dir=cache)
    with qtbot.waitSignal(loader.thumbnail_ready, timeout=10_000):
        loader.pixmap(photo)
    loader.shutdown()
    (cached,) = cache.rglob("*.jpg")
    long_ago = time.time() - 30 * 86400
    os.utime(cached, (long_ago, long_ago))
    again = ThumbnailLoader(size=60, cache_dir=cache)
    with qtbot.waitSignal(again.thumbnail_ready, timeout=10_000):
        again.pixmap(photo)
    again.shutdown()
    assert cached.stat().st_mtime > long_ago + 86400
