from __future__ import annotations

import io
import os
import pickle
import struct
import sys
import time
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageFilter, features

from tests.photos import make_photo
from vitgallery.core import imageio
from vitgallery.core.imageio import (
    DecodedPhoto,
    DecodeError,
    ImageMeta,
    Teaching,
    decode_for_model,
    decode_teaching_views,
    open_image,
    read_meta,
    sharpness,
)
from vitgallery.core.keypoints import Keypoints

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def noise_image(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def handmade_png(width: int, height: int, bit_depth: int, colour_type: int, rows: bytes) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )


def exif_bytes(orientation: int | None = None, taken: str | None = None, offset: str | None = None) -> bytes:
    exif = Image.Exif()
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    exif_ifd = exif.get_ifd(ExifTags.IFD.Exif)
    if taken is not None:
        exif_ifd[ExifTags.Base.DateTimeOriginal] = taken
    if offset is not None:
        exif_ifd[ExifTags.Base.OffsetTimeOriginal] = offset
    return exif.tobytes()


def pixel(image: Image.Image, x: int = 0, y: int = 0) -> tuple[int, int, int]:
    return image.getpixel((x, y))  # type: ignore[return-value]


def assert_close(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int) -> None:
    assert all(abs(int(a) - e) <= tolerance for a, e in zip(actual, expected, strict=True)), (
        actual,
        expected,
    )


# --- files that must be refused, each with a clear reason ---------------------------------------


def test_zero_byte_file_is_empty(tmp_path: Path) -> None:
    with pytest.raises(DecodeError) as from_path:
        open_image(write(tmp_path / "empty.jpg", b""))
    with pytest.raises(DecodeError) as from_bytes:
        open_image(b"")
    assert from_path.value.reason == from_bytes.value.reason == "empty file"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_file_is_refused_not_half_decoded(tmp_path: Path, fmt: str) -> None:
    data = encode(noise_image(160, 120), fmt)
    path = write(tmp_path / f"cut.{fmt.lower()}", data[: len(data) * 6 // 10])
    with pytest.raises(DecodeError) as error:
        open_image(path)
    assert error.value.reason == "truncated file"


def test_text_file_with_image_extension_is_not_an_image(tmp_path: Path) -> None:
    path = write(tmp_path / "notes.jpg", b"shopping list: eggs, milk\n")
    with pytest.raises(DecodeError) as error:
        open_image(path)
    assert error.value.reason == "not an image"


def test_image_format_outside_the_allowlist_is_named(tmp_path: Path) -> None:
    path = write(tmp_path / "scan.jpg", encode(noise_image(16, 16), "PCX"))
    with pytest.raises(DecodeError) as error:
        open_image(path)
    assert error.value.reason == "unsupported format PCX"


def test_damaged_header_of_an_allowed_format(tmp_path: Path) -> None:
    zero_width = handmade_png(0, 10, 8, 2, b"")
    with pytest.raises(DecodeError) as error:
        open_image(write(tmp_path / "zero.png", zero_width))
    assert error.value.reason == "damaged PNG header"


def test_pillow_bomb_limit_is_enforced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "big.png", encode(noise_image(400, 300), "PNG"))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)  # Pillow errors above 20,000 pixels
    with pytest.raises(DecodeError) as error:
        open_image(path)
    assert error.value.reason.startswith("too many pixels to open safely (0.1 megapixels; photos of up to 179")


def test_own_pixel_limit_holds_when_pillow_limit_is_disabled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "big.png", encode(noise_image(400, 300), "PNG"))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    monkeypatch.setattr(imageio, "MAX_PIXELS", 100_000)
    with pytest.raises(DecodeError) as error:
        open_image(path)
    assert error.value.reason.startswith("too many pixels to open safely")
    with pytest.raises(DecodeError):
        read_meta(path)


def test_huge_dimension_header_fails_fast_without_allocating(tmp_path: Path) -> None:
    path = write(tmp_path / "huge.png", handmade_png(100_000, 100_000, 8, 2, b"\x00" * 64))
    started = time.perf_counter()
    with pytest.raises(DecodeError) as decoding:
        open_image(path)
    with pytest.raises(DecodeError) as reading_meta:
        read_meta(path)
    assert time.perf_counter() - started < 1.0
    assert decoding.value.reason == reading_meta.value.reason
    assert decoding.value.reason.startswith("too many pixels to open safely (10000.0 megapixels")


# Found by bench/fuzz_decode.py: 154 bytes whose GIF screen claims 33729x4872 (164 MP, under
# Pillow's limit). Decoding it took 1.2 GB and 7 s before failing; now it is refused up front.
FUZZ_TINY_GIF_HUGE_SCREEN = bytes.fromhex(
    "474946383961c18308132a5cc8b0a1c38710234a9c48b1a2c58101010021f90401050001002c000000001000"
    "10008100ff00000000000000000000081d0001081c48b0a0c18308132a5cc8b0a1c38710234a9c48b1a2c581"
    "01010021f90401050001002c0000000010001000810000ff000000000000000000081d0001081c48b0a0c183"
    "08132a5cc8b0a1c38710234a9c48b1a2c5810101003b"
)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_tiny_file_claiming_huge_size_is_refused_before_allocating() -> None:
    started = time.perf_counter()
    with pytest.raises(DecodeError) as error:
        open_image(FUZZ_TINY_GIF_HUGE_SCREEN)
    assert time.perf_counter() - started < 1.0
    assert error.value.reason == "implausible size (33729x4872 pixels in a 154-byte file)"
    assert read_meta(FUZZ_TINY_GIF_HUGE_SCREEN).width == 33729  # the header itself is readable


def test_plausibility_guard_spares_ordinary_compression(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imageio, "_PLAUSIBILITY_FLOOR_PIXELS", 0)
    blank_png = encode(Image.new("RGB", (1000, 1000), (255, 255, 255)), "PNG")  # ~300 px/byte
    assert open_image(blank_png).size == (1000, 1000)
    monkeypatch.setattr(imageio, "_MAX_PIXELS_PER_FILE_BYTE", 100)
    with pytest.raises(DecodeError) as error:
        open_image(blank_png)
    assert error.value.reason.startswith("implausible size (1000x1000 pixels")


def test_unreadable_file_is_permission_denied(tmp_path: Path) -> None:
    path = write(tmp_path / "secret.png", encode(noise_image(8, 8), "PNG"))
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("this user (root?) can read files without read permission")
        with pytest.raises(DecodeError) as error:
            open_image(path)
        assert error.value.reason == "permission denied"
    finally:
        path.chmod(0o644)


def test_vanished_file(tmp_path: Path) -> None:
    with pytest.raises(DecodeError) as error:
        open_image(tmp_path / "gone.jpg")
    assert error.value.reason == "file vanished"


def test_directory_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "album.jpg"
    folder.mkdir()
    with pytest.raises(DecodeError) as error:
        open_image(folder)
    assert error.value.reason == "is a directory"


def test_heic_without_plugin_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imageio, "_heif_registered", None)
    monkeypatch.setitem(sys.modules, "pillow_heif", None)  # makes `import pillow_heif` fail
    ftyp = struct.pack(">I", 24) + b"ftypheic" + b"\x00\x00\x00\x00" + b"mif1heic"
    path = write(tmp_path / "IMG_0001.heic", ftyp + b"\x00" * 200)
    with pytest.raises(DecodeError) as error:
        open_image(path)
    assert error.value.reason == imageio.HEIF_PLUGIN_MISSING
    assert "pip install 'vitgallery[heif]'" in error.value.reason  # the command that fixes it
    assert imageio.still_unsupported(error.value.reason)


def test_avif_without_support_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imageio, "_BASE_FORMATS", tuple(f for f in imageio._BASE_FORMATS if f != "AVIF"))
    avif = struct.pack(">I", 28) + b"ftypavif" + b"\x00\x00\x00\x00" + b"avifmif1miaf"
    with pytest.raises(DecodeError) as error:
        open_image(avif + b"\x00" * 200)
    assert error.value.reason == imageio.AVIF_SUPPORT_MISSING
    assert "pip install -U 'vitgallery[heif]'" in error.value.reason
    assert imageio.still_unsupported(error.value.reason)


def test_skip_reasons_for_missing_support_lapse_once_it_is_installed() -> None:
    pytest.importorskip("pillow_heif")
    assert not imageio.still_unsupported(imageio.HEIF_PLUGIN_MISSING)
    assert imageio.still_unsupported("truncated file")
    if features.check("avif"):
        assert not imageio.still_unsupported(imageio.AVIF_SUPPORT_MISSING)


def test_unexpected_exception_still_becomes_decode_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_conversion(image: Image.Image) -> Image.Image:
        raise AttributeError("bug inside a plugin")

    monkeypatch.setattr(imageio, "_to_rgb", broken_conversion)
    with pytest.raises(DecodeError) as error:
        open_image(encode(noise_image(8, 8), "PNG"))
    assert error.value.reason == "unexpected decoder error (AttributeError: bug inside a plugin)"


def test_decode_error_survives_pickling_between_processes() -> None:
    error = pickle.loads(pickle.dumps(DecodeError("truncated file")))
    assert isinstance(error, DecodeError)
    assert error.reason == "truncated file"


# --- odd but valid files that must decode ------------------------------------------------------


def test_png_named_jpg_decodes(tmp_path: Path) -> None:
    path = write(tmp_path / "photo.jpg", encode(Image.new("RGB", (10, 6), GREEN), "PNG"))
    image = open_image(path)
    assert image.mode == "RGB"
    assert image.size == (10, 6)
    assert pixel(image) == GREEN


def test_cmyk_jpeg_decodes_to_rgb_colours(tmp_path: Path) -> None:
    cmyk_red = Image.new("CMYK", (32, 32), (0, 255, 255, 0))
    image = open_image(write(tmp_path / "print.jpg", encode(cmyk_red, "JPEG", quality=95)))
    assert image.mode == "RGB"
    assert_close(pixel(image, 16, 16), RED, tolerance=30)


@pytest.mark.parametrize(
    ("fmt", "array"),
    [
        ("PNG", np.full((8, 8), 32768, np.uint16)),  # opens as I;16
        ("TIFF", np.full((8, 8), 32768, np.uint16)),
        ("TIFF", np.full((8, 8), 32768, np.int32)),  # opens as I, holding 16-bit samples
        ("TIFF", np.full((8, 8), 0.5, np.float32)),  # opens as F
    ],
)
def test_high_bit_depth_grey_is_scaled_not_clipped(fmt: str, array: np.ndarray) -> None:
    image = open_image(encode(Image.fromarray(array), fmt))
    assert image.mode == "RGB"
    assert_close(pixel(image), (128, 128, 128), tolerance=1)


def test_wide_range_int_image_is_stretched() -> None:
    ramp = np.linspace(-50_000, 150_000, 64, dtype=np.int32).reshape(8, 8)
    image = open_image(encode(Image.fromarray(ramp), "TIFF"))
    assert pixel(image, 0, 0) == (0, 0, 0)
    assert pixel(image, 7, 7) == (255, 255, 255)
    assert_close(pixel(image, 0, 4), (128, 128, 128), tolerance=3)


def test_16_bit_rgb_png_keeps_mid_grey() -> None:
    row = b"\x00" + b"\x80\x00" * 3 * 4  # filter byte, then 4 pixels of 16-bit (32768, 32768, 32768)
    image = open_image(handmade_png(4, 2, 16, 2, row * 2))
    assert_close(pixel(image), (128, 128, 128), tolerance=1)


def test_palette_transparency_becomes_white() -> None:
    palette_image = Image.new("P", (8, 8), 0)
    palette_image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette_image.paste(1, (0, 0, 4, 8))  # left half red, right half index 0 (transparent)
    image = open_image(encode(palette_image, "PNG", transparency=0))
    assert pixel(image, 1, 1) == RED
    assert pixel(image, 6, 1) == (255, 255, 255)


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_is_flattened_onto_white(mode: str) -> None:
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    rgba.paste((0, 0, 0, 255), (0, 0, 4, 8))
    image = open_image(encode(rgba.convert(mode), "PNG"))
    assert pixel(image, 1, 1) == (0, 0, 0)
    assert pixel(image, 6, 1) == (255, 255, 255)


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "CMYK", "YCbCr", "I;16"])
def test_every_common_mode_comes_out_rgb(mode: str) -> None:
    source = noise_image(12, 10).convert(mode) if mode != "I;16" else Image.new("I;16", (12, 10), 1000)
    fmt = "TIFF"  # TIFF can hold all of these modes
    image = open_image(encode(source, fmt))
    assert image.mode == "RGB"
    assert image.size == (12, 10)


@pytest.mark.parametrize(("fmt", "params"), [("GIF", {}), ("WEBP", {"lossless": True})])
def test_animation_gives_its_first_frame(fmt: str, params: dict[str, object]) -> None:
    frames = [Image.new("RGB", (16, 16), colour) for colour in (RED, GREEN, BLUE)]
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0, **params)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    image = open_image(data)
    assert image.mode == "RGB"
    assert_close(pixel(image, 8, 8), RED, tolerance=2)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
@pytest.mark.parametrize(
    "garbage",
    [
        b"Exif\x00\x00" + b"\xde\xad\xbe\xef" * 16,  # not even a TIFF header
        b"Exif\x00\x00II*\x00\x08\x00\x00\x00\xff\xff\x12\x01",  # IFD claiming 65535 entries
        b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00",  # cut tag
    ],
)
def test_broken_exif_skips_rotation_not_the_photo(tmp_path: Path, garbage: bytes) -> None:
    path = write(tmp_path / "odd.jpg", encode(Image.new("RGB", (40, 20), RED), "JPEG", exif=garbage))
    image = open_image(path)
    assert image.size == (40, 20)
    assert_close(pixel(image, 20, 10), RED, tolerance=10)
    assert read_meta(path) == ImageMeta(width=40, height=20, taken_at=None, jpeg_quality=75)  # Pillow's default


def test_exif_orientation_6_rotates_clockwise(tmp_path: Path) -> None:
    landscape = Image.new("RGB", (40, 20), BLUE)
    landscape.paste(RED, (0, 0, 20, 20))  # red left half
    path = write(
        tmp_path / "phone.jpg", encode(landscape, "JPEG", quality=95, exif=exif_bytes(orientation=6))
    )
    image = open_image(path)
    assert image.size == (20, 40)
    assert_close(pixel(image, 10, 5), RED, tolerance=20)  # the left half is now the top half
    assert_close(pixel(image, 10, 35), BLUE, tolerance=20)
    assert read_meta(path) == ImageMeta(width=20, height=40, taken_at=None, jpeg_quality=95)


def test_out_of_range_orientation_is_ignored() -> None:
    image = open_image(encode(Image.new("RGB", (40, 20)), "JPEG", exif=exif_bytes(orientation=99)))
    assert image.size == (40, 20)


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow has no AVIF codec")
def test_avif_decodes() -> None:
    image = open_image(encode(Image.new("RGB", (32, 32), GREEN), "AVIF", quality=95))
    assert_close(pixel(image, 16, 16), GREEN, tolerance=20)


def test_heic_decodes_with_plugin(tmp_path: Path) -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    path = tmp_path / "IMG_0002.heic"
    pillow_heif.from_pillow(Image.new("RGB", (64, 48), BLUE)).save(path, quality=95)
    image = open_image(path)
    assert image.size == (64, 48)
    assert_close(pixel(image, 32, 24), BLUE, tolerance=20)
    assert read_meta(path).width == 64


# --- JPEG draft, metadata, model input, sharpness ----------------------------------------------


def test_jpeg_draft_keeps_at_least_the_requested_size(tmp_path: Path) -> None:
    path = write(tmp_path / "big.jpg", encode(noise_image(2000, 1500), "JPEG"))
    image = open_image(path, draft_size=224)
    assert 224 <= min(image.size) < 1500
    assert image.size[0] > image.size[1]
    assert open_image(path).size == (2000, 1500)


def test_draft_size_is_ignored_by_formats_without_draft() -> None:
    assert open_image(encode(noise_image(600, 400), "PNG"), draft_size=100).size == (600, 400)


def test_decode_for_model_squeezes_the_whole_photo(tmp_path: Path) -> None:
    photo = Image.new("RGB", (2000, 1000), RED)
    photo.paste(BLUE, (1000, 0, 2000, 1000))  # right half blue: must survive (no centre crop)
    exif = exif_bytes(taken="2021:06:15 12:30:45", offset="+02:00")
    path = write(tmp_path / "wide.jpg", encode(photo, "JPEG", quality=95, exif=exif))
    decoded = decode_for_model(path, 224)
    assert isinstance(decoded, DecodedPhoto)
    assert decoded.pixels.shape == (224, 224, 3)
    assert decoded.pixels.dtype == np.uint8
    assert (decoded.width, decoded.height) == (2000, 1000)  # the original, not the JPEG draft
    assert_close(tuple(decoded.pixels[112, 10]), RED, tolerance=20)
    assert_close(tuple(decoded.pixels[112, 213]), BLUE, tolerance=20)
    assert decoded.taken_at == datetime(2021, 6, 15, 10, 30, 45, tzinfo=timezone.utc).timestamp()
    assert decoded.sharpness > 0
    assert pickle.loads(pickle.dumps(decoded)).pixels.tobytes() == decoded.pixels.tobytes()


def test_decode_for_model_reports_rotated_size(tmp_path: Path) -> None:
    path = write(
        tmp_path / "portrait.jpg", encode(noise_image(300, 200), "JPEG", exif=exif_bytes(orientation=8))
    )
    decoded = decode_for_model(path, 64)
    assert (decoded.width, decoded.height) == (200, 300)


def test_the_model_input_alone_is_what_indexing_embeds(tmp_path: Path) -> None:
    """Calibrating a library's int8 model decodes its photos for the model only: the same pixels."""
    framed = Image.new("RGB", (900, 700), (255, 255, 255))
    framed.paste(noise_image(800, 600), (50, 50))
    photos = [
        write(tmp_path / "large.jpg", encode(noise_image(3000, 2000), "JPEG")),  # decoded at a reduced scale
        write(tmp_path / "turned.jpg", encode(noise_image(300, 200), "JPEG", exif=exif_bytes(orientation=6))),
        write(tmp_path / "framed.png", encode(framed, "PNG")),
    ]
    for path in photos:
        assert np.array_equal(imageio.model_input(path, 224), decode_for_model(path, 224).pixels), path.name


def test_read_meta_reads_only_the_header(tmp_path: Path) -> None:
    data = encode(noise_image(640, 480), "JPEG", exif=exif_bytes(taken="2019:01:02 03:04:05"))
    path = write(tmp_path / "cut.jpg", data[: len(data) // 2])
    with pytest.raises(DecodeError):
        open_image(path)  # the pixels are gone ...
    meta = read_meta(path)  # ... but the header is intact
    assert meta == ImageMeta(width=640, height=480, taken_at=datetime(2019, 1, 2, 3, 4, 5).timestamp(), jpeg_quality=75)


@pytest.mark.parametrize("taken", ["0000:00:00 00:00:00", "    :  :     :  :  ", "2020:13:45 25:61:00", ""])
def test_unparseable_capture_time_is_none(taken: str) -> None:
    assert read_meta(encode(Image.new("RGB", (8, 8)), "JPEG", exif=exif_bytes(taken=taken))).taken_at is None


@pytest.mark.parametrize("quality", [10, 50, 75, 92])
def test_read_meta_estimates_the_jpeg_quality_a_file_was_saved_at(quality: int) -> None:
    assert read_meta(encode(noise_image(64, 64), "JPEG", quality=quality)).jpeg_quality == quality


def test_no_exif_means_no_capture_time() -> None:
    assert read_meta(encode(Image.new("RGB", (8, 8)), "PNG")) == ImageMeta(8, 8, None)


def test_capture_time_with_subseconds_and_negative_offset() -> None:
    exif = Image.Exif()
    exif_ifd = exif.get_ifd(ExifTags.IFD.Exif)
    exif_ifd[ExifTags.Base.DateTimeOriginal] = "2023:12:31 23:59:59"
    exif_ifd[ExifTags.Base.OffsetTimeOriginal] = "-05:00"
    exif_ifd[ExifTags.Base.SubsecTimeOriginal] = "25"
    meta = read_meta(encode(Image.new("RGB", (8, 8)), "JPEG", exif=exif.tobytes()))
    expected = datetime(2024, 1, 1, 4, 59, 59, 250000, tzinfo=timezone.utc).timestamp()
    assert meta.taken_at == pytest.approx(expected)
    assert datetime.fromtimestamp(expected, timezone(timedelta(hours=-5))).year == 2023


def test_blurred_copy_is_less_sharp() -> None:
    sharp = noise_image(800, 600)
    blurred = sharp.filter(ImageFilter.GaussianBlur(3))
    assert sharpness(blurred) < sharpness(sharp) / 10
    assert sharpness(Image.new("RGB", (2, 2))) == 0.0


@pytest.mark.parametrize("size", [(1, 1), (3, 200), (200, 2)])
def test_decode_for_model_of_tiny_and_thin_photos(tmp_path: Path, size) -> None:
    """Keypoints, trimming and teaching views cope with pictures too small for them."""
    path = tmp_path / "tiny.png"
    Image.new("RGB", size, (120, 30, 200)).save(path)
    decoded = decode_for_model(path, 32)
    assert decoded.pixels.shape == (32, 32, 3)
    assert decode_teaching_views(path, 32, Teaching(seed=1, views=3)).shape == (3, 32, 32, 3)
    assert len(Keypoints.from_bytes(decoded.keypoints)) == 0


def test_teaching_views_come_with_the_decode_that_embeds_the_photo(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    make_photo(3).save(path)
    decoded = decode_for_model(path, 32)
    assert decoded.teaching_views is None
    for count in (1, 2, 3):
        views = decode_for_model(path, 32, Teaching(seed=7, views=count)).teaching_views
        assert views.shape == (count, 32, 32, 3)
        assert np.array_equal(views, decode_teaching_views(path, 32, Teaching(7, count))), "as a second decode"
    assert np.array_equal(views[1], decoded.pixels[:, ::-1]), "the second view is the mirror image"


def test_a_photo_opencv_refuses_is_indexed_without_keypoints(tmp_path: Path, monkeypatch) -> None:
    import cv2

    def refuse(gray, **kwargs):
        raise cv2.error("simulated refusal")

    from vitgallery.core import photo_features

    monkeypatch.setattr(photo_features, "extract_keypoints", refuse)
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (64, 48), (10, 200, 30)).save(path)
    decoded = decode_for_model(path, 32)
    assert decoded.pixels.shape == (32, 32, 3) and len(Keypoints.from_bytes(decoded.keypoints)) == 0
    kept = photo_features.PhotoFeatures.from_stored(decoded.keypoints, decoded.looks)
    assert len(kept.keypoints) == 0 and kept.complete, "nothing for a scan to look closer at either"


def test_a_very_long_thin_photo_gets_its_edited_copies(tmp_path: Path) -> None:
    """Found by bench/fuzz_decode.py: TIFFs of 32 x 524,312 pixels in 3 KB broke the whitening's edited
    copies (a JPEG re-save past its 65,535-pixel limit; a tilt allocating gigabytes). Everything after
    decoding now works on a copy at most WORK_LONG_SIDE long."""
    path = tmp_path / "thin.png"
    Image.new("RGB", (32, 300_000), (90, 140, 30)).save(path)
    for seed in range(12):  # between them, every kind of edit
        assert decode_teaching_views(path, 32, Teaching(seed, views=3)).shape == (3, 32, 32, 3)
    decoded = decode_for_model(path, 32)
    assert (decoded.width, decoded.height) == (32, 300_000)
