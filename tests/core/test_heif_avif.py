"""HEIC and AVIF photos: indexed and found with the heif extra; without it listed as skipped with the
command that fixes it, and indexed on the next run once it is installed. The files are real ones,
written by pillow-heif (HEIC) and Pillow (AVIF)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, features

from tests.photos import make_photo
from vitgallery.core import imageio
from vitgallery.core.library import Library
from vitgallery.core.models import load_embedder

pillow_heif = pytest.importorskip("pillow_heif")
needs_avif = pytest.mark.skipif(not features.check("avif"), reason="this Pillow has no AVIF codec")


def write_heic(path: Path, image: Image.Image) -> Path:
    pillow_heif.from_pillow(image).save(path, quality=90)
    return path


def write_avif(path: Path, image: Image.Image) -> Path:
    image.save(path, "AVIF", quality=90, speed=8)
    return path


@pytest.fixture
def photo_folder(tmp_path: Path) -> Path:
    """Three JPEG photos: enough company for the HEIC and AVIF ones, and quick to index."""
    root = tmp_path / "photos"
    root.mkdir()
    for seed in range(3):
        make_photo(seed).save(root / f"img_{seed}.jpg", quality=90)
    return root


def index(library: Library):
    return library.index(load_embedder("tiny-test"), decode_workers=0, batch_size=4)


@needs_avif
def test_heic_and_avif_photos_are_indexed_and_found(photo_folder: Path, tmp_path: Path) -> None:
    heic = write_heic(photo_folder / "phone.heic", make_photo(40))
    avif = write_avif(photo_folder / "web.avif", make_photo(41))
    library = Library.open(photo_folder, tmp_path / "library")
    try:
        summary = index(library)
        assert (summary.added, summary.skipped) == (5, 0)
        for original, seed in ((heic, 40), (avif, 41)):
            query = tmp_path / f"copy_{seed}.jpg"
            make_photo(seed).save(query, quality=80)
            hits = library.search(query, k=1, embedder=load_embedder("tiny-test"))
            assert hits[0].path == original
    finally:
        library.close()


def test_without_the_extra_heic_is_skipped_with_the_fix_then_indexed_once_installed(
    photo_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    heic = write_heic(photo_folder / "phone.heic", make_photo(40))
    monkeypatch.setattr(imageio, "_heif_registered", False)  # as if pillow-heif were not installed
    library = Library.open(photo_folder, tmp_path / "library")
    try:
        summary = index(library)
        assert summary.skipped_reasons == {imageio.HEIF_PLUGIN_MISSING: 1}
        assert [(entry.path, entry.reason) for entry in library.skipped()] == [(heic.name, imageio.HEIF_PLUGIN_MISSING)]
        assert index(library).skipped == 1  # unchanged and still unsupported: not tried again

        monkeypatch.setattr(imageio, "_heif_registered", None)  # installed: registered on first use
        summary = index(library)
        assert (summary.added, summary.skipped) == (1, 0)
        assert library.skipped() == []
    finally:
        library.close()
