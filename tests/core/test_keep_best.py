"""The keep-best rule on generated photos: an original among copies that each show one kind of edit."""

from __future__ import annotations

import io
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import ExifTags, Image, ImageFilter, ImageOps

from tests.photos import make_photo
from vitgallery.core.duplicates import DuplicateMember, KeepRule, PhotoQuality, choose_keeper, scan_duplicates
from vitgallery.core.duplicates.keep import BLOCKY, SOFT, edit_signs
from vitgallery.core.duplicates.quality import blockiness, fine_detail, frame_share, measure_quality
from vitgallery.core.imageio import open_image
from vitgallery.core.library import Library
from vitgallery.core.models import load_embedder


def original() -> Image.Image:
    return make_photo(3, (640, 480))


def copies() -> dict[str, Image.Image]:
    photo = original()
    return {
        "padded": ImageOps.expand(photo, border=60, fill=(30, 160, 200)),  # more pixels, a border
        "stretched": photo.resize((820, 480), Image.BILINEAR),  # more pixels, squashed
        "tilted": photo.rotate(12, resample=Image.BICUBIC, expand=True, fillcolor=(0, 0, 0)),  # grown canvas
        "grey": ImageOps.grayscale(photo).convert("RGB"),
    }


@pytest.fixture(scope="module")
def group(tmp_path_factory):
    root = tmp_path_factory.mktemp("keep") / "photos"
    root.mkdir()
    original().save(root / "original.jpg", quality=92)
    for name, image in copies().items():
        image.save(root / f"{name}.jpg", quality=92)
    for path in root.iterdir():  # one date for all: the date must not be what finds the original
        os.utime(path, ns=(10**18, 10**18))
    library = Library.open(root, root.parent / "library")
    library.index(load_embedder("tiny-test"), decode_workers=0)
    groups = scan_duplicates(library, workers=1).groups()
    library.close()
    assert len(groups) == 1
    return groups[0].members


def test_the_best_copy_is_the_original_not_the_largest(group):
    names = {m.path.stem: m for m in group}
    assert set(names) == {"original", "padded", "stretched", "tilted", "grey"}
    assert choose_keeper(group, KeepRule.RESOLUTION).member.path.stem != "original"
    choice = choose_keeper(group)
    assert choice.member.path.stem == "original" and choice.same_file == ()
    assert choice.reason.startswith("no edits seen; others ")
    assert all(edit in choice.reason for edit in ("grey", "padded", "stretched", "tilted"))


def test_each_copy_shows_its_edit(group):
    signs = {m.path.stem: edit_signs(m, group) for m in group}
    assert signs["original"] == []
    for edit in ("padded", "stretched", "tilted", "grey"):
        assert edit in signs[edit], signs


def test_frame_share_sees_the_corners_of_a_turned_canvas_only():
    assert frame_share(np.asarray(original())) == 0.0
    turned = frame_share(np.asarray(copies()["tilted"]))
    w, h = 640, 480  # the corners a 12-degree turn adds to the canvas
    grown = (w * np.cos(np.radians(12)) + h * np.sin(np.radians(12))) * (w * np.sin(np.radians(12)) + h * np.cos(np.radians(12)))
    assert turned == pytest.approx(1 - w * h / grown, abs=0.02)
    assert frame_share(np.asarray(copies()["padded"])) == 0.0, "a border is seen against the other members"
    plain = np.full((300, 400, 3), 240, np.uint8)
    plain[100:200, 150:250] = np.asarray(make_photo(2, (100, 100)))
    assert frame_share(plain) == 0.0, "a flat background around a subject is no turned canvas"


def grey(image: Image.Image) -> np.ndarray:
    return np.asarray(ImageOps.grayscale(image), np.float32)


def test_fine_detail_sees_an_upscaled_copy():
    sharp = Image.fromarray(np.random.default_rng(0).integers(0, 255, (512, 512), dtype=np.uint8)).filter(
        ImageFilter.GaussianBlur(0.7))  # fine grain, as a sharp photo has at its own resolution
    upscaled = sharp.resize((256, 256), Image.BILINEAR).resize((512, 512), Image.BICUBIC)
    assert fine_detail(grey(upscaled)) < SOFT * fine_detail(grey(sharp))


def test_blockiness_sees_the_blocks_of_a_low_quality_save():
    photo = make_photo(5, (512, 512))
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=10)
    blocky = Image.open(io.BytesIO(buffer.getvalue()))
    assert blockiness(grey(blocky)) > BLOCKY * blockiness(grey(photo))


def test_a_large_photo_is_measured_as_its_whole_pixels_are(tmp_path):
    """measure_quality makes arrays of what it measures only (a 512-px copy, the central 1,024 px): the
    measures are those of the whole photo's pixels, the turned canvas's share within a hundredth."""
    tilted = make_photo(3, (2400, 1800)).rotate(12, resample=Image.BICUBIC, expand=True, fillcolor=(0, 0, 0))
    tilted.save(tmp_path / "tilted.jpg", quality=92)
    measured = measure_quality(tmp_path / "tilted.jpg")

    pixels = np.asarray(open_image(tmp_path / "tilted.jpg"))
    h, w = pixels.shape[:2]
    small = cv2.resize(pixels, (512, round(h * 512 / w)), interpolation=cv2.INTER_AREA)
    assert measured.frame > 0.1 and measured.frame == pytest.approx(frame_share(small), abs=0.01)
    top, left = (h - 1024) // 2 // 8 * 8, (w - 1024) // 2 // 8 * 8
    centre = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)[top:top + 1024, left:left + 1024].astype(np.float32)
    assert (measured.fine_detail, measured.blockiness) == (fine_detail(centre), blockiness(centre))
    assert not measured.grey


@pytest.mark.parametrize("orientation", [3, 5, 6, 8])
def test_a_photo_stored_turned_measures_as_it_is_shown(tmp_path, orientation):
    """measure_quality leaves the pixels as stored (turning a 12 MP photo upright cost 43 ms): each measure
    of them is that of the upright photo, the central part taken a few pixels apart at most."""
    upright = make_photo(4, (1800, 1300)).rotate(9, resample=Image.BICUBIC, expand=True, fillcolor=(0, 0, 0))
    undo = {3: Image.Transpose.ROTATE_180, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90,
            8: Image.Transpose.ROTATE_270}[orientation]
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    upright.transpose(undo).save(tmp_path / "turned.jpg", quality=60, exif=exif.tobytes())
    measured = measure_quality(tmp_path / "turned.jpg")

    pixels = np.asarray(open_image(tmp_path / "turned.jpg"))
    h, w = pixels.shape[:2]
    assert (w, h) == upright.size
    small = cv2.resize(pixels, (512, round(h * 512 / w)), interpolation=cv2.INTER_AREA)
    assert measured.frame > 0.05 and measured.frame == pytest.approx(frame_share(small), abs=0.01)
    top, left = (h - 1024) // 2 // 8 * 8, (w - 1024) // 2 // 8 * 8
    centre = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)[top:top + 1024, left:left + 1024].astype(np.float32)
    assert measured.fine_detail == pytest.approx(fine_detail(centre), rel=0.03)
    assert measured.blockiness == pytest.approx(blockiness(centre), rel=0.03)


def member(name: str, width: int, height: int, *, jpeg_quality: int | None = 90, mtime_ns: int = 0) -> DuplicateMember:
    quality = PhotoQuality(frame=0.0, grey=False, fine_detail=1.0, blockiness=1.0, jpeg_quality=jpeg_quality,
                           camera=None)
    return DuplicateMember(len(name), Path(f"/photos/{name}.jpg"), 1000, mtime_ns, name, width, height, None, 0.0,
                           quality=quality)


def test_among_equal_pictures_the_one_saved_at_the_higher_jpeg_quality_is_kept():
    group = [member("resaved", 800, 600, jpeg_quality=75, mtime_ns=1), member("first", 800, 600, jpeg_quality=92,
                                                                               mtime_ns=2)]
    choice = choose_keeper(group)
    assert choice.member.path.stem == "first" and choice.reason.startswith("saved at a higher JPEG quality")
    same = [member("a", 800, 600, mtime_ns=2), member("b", 800, 600, mtime_ns=1)]
    assert choose_keeper(same).member.path.stem == "b", "then the older"


def test_a_copy_exported_a_day_later_at_a_higher_jpeg_quality_is_not_kept_over_the_original():
    """A JPEG quality says how a file was saved last: a recoloured copy re-saved at 97 a day after its
    quality-92 original was kept, and the original marked to go."""
    day = 86_400 * 10**9
    group = [member("original", 800, 600, jpeg_quality=92, mtime_ns=day),
             member("recoloured", 800, 600, jpeg_quality=97, mtime_ns=2 * day)]
    choice = choose_keeper(group)
    assert choice.member.path.stem == "original" and choice.reason.startswith("oldest of equally good copies")
    # saved within the minute (one export of both): the dates do not tell, the JPEG quality does
    close = [member("original", 800, 600, jpeg_quality=92, mtime_ns=day),
             member("resaved", 800, 600, jpeg_quality=75, mtime_ns=day - 10**9)]
    choice = choose_keeper(close)
    assert choice.member.path.stem == "original" and choice.reason.startswith("saved at a higher JPEG quality")


def test_a_re_save_in_another_format_does_not_win_on_jpeg_quality():
    """A WebP, AVIF or PNG copy has no JPEG quality to compare: it must not count as a lossless 100
    against the JPEG it was made from (a quality-30 WebP was kept over its original)."""
    group = [member("original", 800, 600, jpeg_quality=92, mtime_ns=1),
             member("copy_q30", 800, 600, jpeg_quality=None, mtime_ns=2)]
    choice = choose_keeper(group)
    assert choice.member.path.stem == "original" and "of equally good copies" in choice.reason


def test_a_lead_the_dates_shown_hide_is_said():
    """Dates are shown to the minute: copies saved a moment apart would read as kept for nothing."""
    def reason(*mtimes_s: float) -> str:
        group = [member(f"m{n}", 800, 600, mtime_ns=int(t * 1e9)) for n, t in enumerate(mtimes_s)]
        return choose_keeper(group).reason

    assert reason(100.0, 100.14) == "first saved of equally good copies, by 0.1 s"
    assert reason(100.0, 100.0 + 1e-9) == "first saved of equally good copies, by less than 0.1 s"
    assert reason(100.0, 160.0, 100.5) == "first saved of equally good copies, by 0.5 s"
    assert reason(100.0, 3600.0) == "oldest of equally good copies"


def test_a_member_unlike_the_groups_proportions_is_reshaped_without_a_keypoint_map():
    group = [member("wide", 1000, 600), member("a", 800, 600), member("b", 400, 300), member("c", 200, 150)]
    assert edit_signs(group[0], group) == ["reshaped"] and edit_signs(group[1], group) == []
    assert choose_keeper(group).member.path.stem == "a", "more pixels, but out of proportion"
