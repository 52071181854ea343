"""Generated problem files, each with what indexing must make of it: indexed, or skipped for a reason."""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from tests.photos import make_photo


@dataclass(frozen=True)
class Expected:
    indexed: bool
    reason: str | None = None  # a word or phrase the skip reason must contain


INDEXED = Expected(True)


def jpeg_bytes(seed: int, **save_options) -> bytes:
    buffer = io.BytesIO()
    make_photo(seed, size=(160, 120)).save(buffer, "JPEG", quality=85, **save_options)
    return buffer.getvalue()


def png_bytes(image: Image.Image, **save_options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **save_options)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_header(width: int, height: int, bit_depth: int, colour_type: int, rows: bytes) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", rows)
            + png_chunk(b"IEND", b""))


def decompression_bomb() -> bytes:
    """A valid 14000 x 14000 1-bit PNG (196 megapixels, over the limit) that is 30 kB on disk."""
    width = height = 14_000
    row = b"\0" * (1 + width // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return png_with_header(width, height, 1, 0, data)


def huge_dimension_header() -> bytes:
    """A PNG header claiming 100000 x 100000 pixels over a few bytes of data."""
    return png_with_header(100_000, 100_000, 8, 2, zlib.compress(b"\0" * 64))


def animated(fmt: str) -> bytes:
    frames = [make_photo(seed, size=(96, 72)) for seed in (40, 41, 42)]
    if fmt == "GIF":
        frames = [frame.convert("P", palette=Image.Palette.ADAPTIVE) for frame in frames]
    buffer = io.BytesIO()
    frames[0].save(buffer, fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buffer.getvalue()


def broken_exif() -> bytes:
    """A JPEG whose EXIF block is garbage: the photo must survive, only its rotation and date go."""
    exif = b"Exif\0\0" + b"MM\0\x2a\0\0\0\x08" + b"\xff\xee" * 40
    good = jpeg_bytes(50)
    app1 = b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif
    return good[:2] + app1 + good[2:]


def heic() -> bytes:
    """A real HEIC file when pillow-heif can write one, else an HEIC-branded header and junk."""
    try:
        import pillow_heif

        buffer = io.BytesIO()
        pillow_heif.from_pillow(make_photo(60, size=(96, 72))).save(buffer, format="HEIF", quality=80)
        return buffer.getvalue()
    except Exception:
        return struct.pack(">I", 24) + b"ftypheic" + b"\0\0\0\0mif1heic" + os.urandom(200)


def write_bad_files(folder: Path) -> dict[str, Expected]:
    """Write every problem file into folder; returns relative path -> what indexing must make of it.

    Files only the scanner sees (symlink loops, FIFOs) and files that need a non-root user
    (unreadable ones) are added by the tests themselves."""
    folder.mkdir(parents=True, exist_ok=True)
    good_jpeg = jpeg_bytes(1)
    good_png = png_bytes(make_photo(2, size=(160, 120)))
    cmyk = io.BytesIO()
    make_photo(3, size=(160, 120)).convert("CMYK").save(cmyk, "JPEG", quality=85)
    palette = make_photo(4, size=(160, 120)).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    palette.info["transparency"] = 0
    sixteen_bit = Image.fromarray(np.asarray(make_photo(5, size=(160, 120)).convert("L"), dtype=np.uint16) * 257)
    files = {
        "zero-byte.jpg": (b"", Expected(False, "empty file")),
        "truncated.jpg": (good_jpeg[: len(good_jpeg) // 2], Expected(False, "truncated")),
        "truncated.png": (good_png[: len(good_png) // 2], Expected(False, "truncated")),
        "bomb.png": (decompression_bomb(), Expected(False, "too many pixels to open safely")),
        "huge-header.png": (huge_dimension_header(), Expected(False, "too many pixels to open safely")),
        "png-named.jpg": (good_png, INDEXED),
        "jpeg-named.webp": (jpeg_bytes(6), INDEXED),
        "text.jpg": (b"Dear diary, today I took no photos.\n" * 20, Expected(False, "not an image")),
        "html.png": (b"<!doctype html><html><body>404 not found</body></html>", Expected(False, "not an image")),
        "cmyk.jpg": (cmyk.getvalue(), INDEXED),
        "sixteen-bit.png": (png_bytes(sixteen_bit), INDEXED),
        "palette-transparency.png": (png_bytes(palette, transparency=0), INDEXED),
        "animated.gif": (animated("GIF"), INDEXED),
        "animated.webp": (animated("WEBP"), INDEXED),
        "broken-exif.jpg": (broken_exif(), INDEXED),
        "photo.heic": (heic(), INDEXED),
        "good.jpg": (good_jpeg, INDEXED),
    }
    for name, (data, _) in files.items():
        (folder / name).write_bytes(data)
    return {name: expected for name, (_, expected) in files.items()}
