"""Thumbnails shared with the desktop through the freedesktop thumbnail cache, and thumbnails of
formats Qt cannot read (HEIC, AVIF). $XDG_CACHE_HOME is a temporary folder (tests/conftest.py)."""

from __future__ import annotations

import hashlib
import os
import stat
import sys
from pathlib import Path

import pytest
from PIL import Image, features
from PIL.PngImagePlugin import PngInfo

from tests.photos import make_photo
from vitgallery.ui.desktop_thumbnails import DesktopThumbnailCache, file_uri
from vitgallery.ui.thumbnails import ThumbnailLoader, decode_scaled

pytestmark = pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="the standard is for Linux and BSD")


@pytest.fixture
def shared() -> DesktopThumbnailCache:
    cache = DesktopThumbnailCache.for_this_desktop()
    assert cache is not None and cache.root == Path(os.environ["XDG_CACHE_HOME"]) / "thumbnails"
    return cache


def load(qtbot, loader: ThumbnailLoader, path: Path):
    with qtbot.waitSignal(loader.thumbnail_ready, timeout=10_000):
        assert loader.pixmap(path) is None
    return loader.pixmap(path)


def desktop_thumbnail(cache: DesktopThumbnailCache, photo: Path, colour, mtime: int | None = None) -> Path:
    """A thumbnail as a file manager writes it (PNG text chunks, from GLib's URI of the photo)."""
    info = PngInfo()
    info.add_text("Thumb::URI", file_uri(photo))
    info.add_text("Thumb::MTime", str(int(photo.stat().st_mtime) if mtime is None else mtime))
    target = cache.thumbnail_file(photo, "large")
    target.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (256, 192), colour).save(target, pnginfo=info)
    return target


def test_file_names_match_the_ones_glib_computes() -> None:
    # The standard's own example, then escapes as g_filename_to_uri makes them (';' escaped, '!' kept).
    uri = file_uri(Path("/home/jens/photos/me.png"))
    assert hashlib.md5(uri.encode()).hexdigest() == "c6ee772d9e49320e97ec29a7eb5b1697"
    assert file_uri(Path("/tmp/a b;c/été!(1)+&.jpg")) == "file:///tmp/a%20b%3Bc/%C3%A9t%C3%A9!(1)+&.jpg"
    assert DesktopThumbnailCache.flavour_for(160) == ("large", 256)
    assert DesktopThumbnailCache.flavour_for(128) == ("normal", 128)
    assert DesktopThumbnailCache.flavour_for(2000) is None


def test_thumbnails_are_written_to_the_desktop_cache_atomically_and_private(
    qtbot, tmp_path: Path, shared: DesktopThumbnailCache
) -> None:
    photo = tmp_path / "photo.jpg"
    make_photo(3, (800, 600)).save(photo)
    own = tmp_path / "thumbs"
    loader = ThumbnailLoader(size=160, cache_dir=own, shared_cache=shared)
    pixmap = load(qtbot, loader, photo)
    assert (pixmap.width(), pixmap.height()) == (160, 120)
    loader.shutdown()

    written = shared.root / "large" / f"{hashlib.md5(file_uri(photo).encode()).hexdigest()}.png"
    assert sorted(p.relative_to(shared.root) for p in shared.root.rglob("*")) == [
        Path("large"), written.relative_to(shared.root)
    ]  # no temporary file left behind
    with Image.open(written) as thumbnail:
        assert thumbnail.size == (256, 192)
        assert thumbnail.text["Thumb::URI"] == f"file://{photo}"
        assert thumbnail.text["Thumb::MTime"] == str(int(photo.stat().st_mtime))
        assert thumbnail.text["Thumb::Size"] == str(photo.stat().st_size)
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert stat.S_IMODE(written.parent.stat().st_mode) == 0o700
    assert not own.exists() or not any(own.rglob("*.*")), "not stored twice"


def test_the_desktops_current_thumbnail_is_used_and_a_stale_one_replaced(
    qtbot, tmp_path: Path, shared: DesktopThumbnailCache
) -> None:
    fresh, stale = tmp_path / "fresh.jpg", tmp_path / "stale.jpg"
    for seed, photo in enumerate((fresh, stale)):
        make_photo(seed, (400, 300)).save(photo)
    desktop_thumbnail(shared, fresh, (0, 0, 255))
    old = desktop_thumbnail(shared, stale, (0, 0, 255), mtime=int(stale.stat().st_mtime) - 60)
    loader = ThumbnailLoader(size=128, cache_dir=tmp_path / "thumbs", shared_cache=shared)
    # "large" fits 128 too when there is no "normal" one: read and scaled down
    assert load(qtbot, loader, fresh).toImage().pixelColor(60, 40).blue() > 240
    loader.drop_pending()
    assert load(qtbot, loader, stale).toImage().pixelColor(60, 40).blue() < 240, "the photo, not the old thumbnail"
    loader.shutdown()
    normal = shared.thumbnail_file(stale, "normal")
    assert normal.is_file() and old.is_file()  # ours in the flavour for 128 px; the desktop's left alone


def test_a_read_only_desktop_cache_falls_back_to_our_own(qtbot, tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    make_photo(4, (400, 300)).save(photo)
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the thumbnail folder should be")
    loader = ThumbnailLoader(size=96, cache_dir=tmp_path / "thumbs", shared_cache=DesktopThumbnailCache(blocked))
    assert load(qtbot, loader, photo).width() == 96
    loader.shutdown()
    assert len(list((tmp_path / "thumbs").rglob("*.jpg"))) == 1


def test_heic_and_avif_thumbnails_decode_through_the_core(qtbot, tmp_path: Path) -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    heic = tmp_path / "phone.heic"
    pillow_heif.from_pillow(Image.new("RGB", (640, 480), (0, 0, 255))).save(heic, quality=90)
    photos = [heic]
    if features.check("avif"):
        avif = tmp_path / "web.avif"
        Image.new("RGB", (640, 480), (0, 200, 0)).save(avif, "AVIF", quality=90, speed=8)
        photos.append(avif)
    for photo in photos:
        image = decode_scaled(photo, 100)
        assert (image.width(), image.height()) == (100, 75)
        assert decode_scaled(photo.read_bytes(), 100).size() == image.size()  # a dropped file's bytes too
    loader = ThumbnailLoader(size=64, cache_dir=tmp_path / "thumbs")
    blue = load(qtbot, loader, heic).toImage().pixelColor(32, 24)
    assert blue.blue() > 220 and blue.red() < 30
    loader.shutdown()


def test_an_unreadable_heic_keeps_the_decoders_reason(tmp_path: Path) -> None:
    broken = tmp_path / "broken.heic"
    broken.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 100)
    with pytest.raises(OSError, match="HEIC"):
        decode_scaled(broken, 64)
