"""Safe image decoding for untrusted photo files.

Every photo in a library is decoded here: the scanner, the indexing workers and the search query
all go through `open_image` / `decode_for_model`. A broken, hostile or odd file must never crash
a worker or allocate gigabytes, so decoding:

* tries only an allowlist of formats (`Image.open(formats=...)`), never all of Pillow's plugins;
* refuses images above `MAX_PIXELS` before any pixel is allocated (Pillow checks the header size
  on open; we repeat the check ourselves so a process that disabled Pillow's limit is still safe),
  and above 16 MP refuses files far too small for the size their header claims;
* refuses truncated files (Pillow's `LOAD_TRUNCATED_IMAGES` stays False: half a grey photo
  would be indexed as a real one);
* applies the EXIF orientation, skipping it (not the photo) when the EXIF block is broken;
* returns plain 8-bit RGB whatever the source mode (CMYK, 16-bit, palette, alpha, 1-bit, float);
* maps every failure to `DecodeError` with a short reason a user can read.
"""

from __future__ import annotations

import io
import logging
import os
import re
import stat
import struct
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO

import cv2
import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

from vitgallery.core.keypoints import KEYPOINT_LONG_SIDE, Keypoints
from vitgallery.core.photo_features import PhotoFeatures, analyse_grey
from vitgallery.core.preprocess import TEACHING_KINDS, content_box, edited_copies

logger = logging.getLogger(__name__)

SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(
    # .jpe and .jfif: JPEGs too (the desktop offers "Open with" for every image/jpeg file)
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif"}
)
# The kinds of file read, as a message names them: "AVIF, BMP, GIF, HEIC, …"
SUPPORTED_KINDS = ", ".join(sorted(ext.lstrip(".").upper() for ext in SUPPORTED_EXTENSIONS))

#: Largest image we decode, in pixels. This is Pillow's own DecompressionBombError threshold
#: (2 x its default MAX_IMAGE_PIXELS of 89,478,485, about 179 megapixels). Between 89 and 179 MP
#: Pillow only warns and we decode (108 MP phone sensors exist); above it we refuse. Note that
#: 200 MP phone photos are refused too: a full decode of one needs about 600 MB.
MAX_PIXELS = 2 * 89_478_485
TOO_LARGE = "too many pixels to open safely"

# Above 16 MP, an image must not claim more than 10,000 pixels per byte of file. Real photos
# are far below that (JPEG ~0.2-5 px/byte, a near-blank screenshot ~100); a few hundred bytes
# claiming 160 MP (fuzzing found such a GIF: 1.2 GB and 7 s to refuse as truncated) are not.
_PLAUSIBILITY_FLOOR_PIXELS = 4096 * 4096
_MAX_PIXELS_PER_FILE_BYTE = 10_000

# Skip reasons that name the fix; a file skipped for one is tried again once the fix is installed.
HEIF_PLUGIN_MISSING = "HEIC needs pillow-heif: pip install 'vitgallery[heif]'"
AVIF_SUPPORT_MISSING = "AVIF needs a Pillow with AVIF support: pip install -U 'vitgallery[heif]'"
# Reasons that say nothing about the file's content (see pipeline.failure_may_pass).
FILE_VANISHED = "file vanished"
PERMISSION_DENIED = "permission denied"
READ_ERROR = "read error"
NOT_ENOUGH_MEMORY = "not enough memory to decode"

# Pillow plugin names tried by Image.open, most common first. MPO is how Pillow names the
# multi-picture JPEGs written by many cameras and phones. HEIF is added when pillow-heif loads.
_BASE_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "GIF", "TIFF", "BMP", "AVIF")
_DRAFTABLE_FORMATS = frozenset({"JPEG", "MPO"})

# Exception types Pillow (and pillow-heif) raise for damaged data. Anything else escaping a
# decoder is still turned into a DecodeError, but logged as unexpected (a bug worth reporting).
_DAMAGED_DATA_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    IndexError,
    TypeError,
    KeyError,
    OverflowError,
    ZeroDivisionError,
    RuntimeError,
)

_ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_ORIENTATIONS_SWAPPING_SIDES = frozenset({5, 6, 7, 8})

_HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_EXIF_DATETIME = re.compile(r"(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_EXIF_OFFSET = re.compile(r"([+-])(\d{2}):(\d{2})")
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")

_SHARPNESS_MAX_SIDE = 512

Source = Path | str | bytes


class DecodeError(Exception):
    """A file that cannot be decoded; `reason` is short text meant for the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ImageMeta:
    width: int
    height: int
    taken_at: float | None
    camera: str | None = None  # EXIF make and model, as the camera wrote them
    jpeg_quality: int | None = None  # the IJG quality whose tables the file's luminance table is closest to


@dataclass
class DecodedPhoto:
    pixels: np.ndarray  # uint8 (size, size, 3): the photo, its uniform frame cut off, squeezed to the model input
    width: int  # original size, after EXIF orientation
    height: int
    taken_at: float | None
    sharpness: float
    keypoints: bytes  # Keypoints.to_bytes() of its SIFT keypoints, for verifying matches
    looks: bytes  # PhotoFeatures.looks_to_bytes(): its tiny grey copies, for the duplicates scan
    teaching_views: np.ndarray | None = None  # (views, size, size, 3) when asked for (see Teaching)


@dataclass(frozen=True)
class Teaching:
    """Which views a photo teaches the library's whitening with: preprocess.TEACHING_KINDS[:views], the
    edits drawn from `seed`."""

    seed: int
    views: int


@dataclass
class _Decoded:
    image: Image.Image  # RGB, oriented
    width: int  # before any JPEG draft scaling, after orientation
    height: int
    taken_at: float | None


_heif_registered: bool | None = None


def _register_heif() -> bool:
    """Register pillow-heif's opener on first use (it is optional and slow to import)."""
    global _heif_registered
    if _heif_registered is None:
        try:
            import pillow_heif
        except (ImportError, OSError) as exc:  # OSError: the wheel is there but libheif is not
            logger.debug("HEIC decoding unavailable: %s", exc)
            _heif_registered = False
        else:
            pillow_heif.register_heif_opener()
            _heif_registered = True
    return _heif_registered


def _allowed_formats() -> tuple[str, ...]:
    # Image.open raises KeyError for a name no plugin registered (AVIF needs libavif),
    # so the list only holds registered ones.
    Image.init()
    formats = [name for name in _BASE_FORMATS if name in Image.OPEN]
    if _register_heif() and "HEIF" in Image.OPEN:
        formats.append("HEIF")
    return tuple(formats)


def still_unsupported(reason: str) -> bool:
    """Whether a file skipped for `reason` would be skipped again: False once the missing HEIC or
    AVIF support it names has been installed, so it is worth another try."""
    if reason == HEIF_PLUGIN_MISSING:
        return "HEIF" not in _allowed_formats()
    if reason == AVIF_SUPPORT_MISSING:
        return "AVIF" not in _allowed_formats()
    return True


def route_pillow_warnings() -> None:
    """Send Python's warnings to the log instead of printing them raw; Pillow's (a possible
    decompression bomb, corrupt EXIF data...) go at INFO level, shown with -v: they are about one
    file, which is indexed or skipped with a reason anyway. Called once by each process that decodes."""
    logging.captureWarnings(True)
    show_in_log = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if os.sep + "PIL" + os.sep in filename:
            logger.info("Pillow: %s", message)
        else:
            show_in_log(message, category, filename, lineno, file, line)

    warnings.showwarning = show


def open_image(source: Source, *, draft_size: int | None = None, oriented: bool = True) -> Image.Image:
    """Decode a photo into a fully loaded 8-bit RGB image, EXIF orientation applied.

    `draft_size` lets the JPEG decoder scale down by 1/2, 1/4 or 1/8 while keeping both sides
    at least `draft_size` pixels: much faster when only a small image is needed. `oriented=False`
    leaves the pixels as stored, for what does not depend on a quarter turn or a mirror: turning a
    whole 12 MP photo costs about 43 ms.
    Raises DecodeError for anything that is not a decodable photo.
    """
    return _decode(source, draft_size, oriented=oriented).image


def squeeze_to_model(image: Image.Image, size: int) -> np.ndarray:
    """The whole image resized (not cropped) to size x size, as uint8 HxWx3."""
    resized = image.convert("RGB").resize((size, size), Image.Resampling.BICUBIC, reducing_gap=3.0)
    return np.asarray(resized, dtype=np.uint8)


def model_pixels(image: Image.Image, size: int) -> np.ndarray:
    """What the model sees of a photo: its uniform-colour frame cut off (borders, letterboxing), then
    the rest squeezed to size x size. Indexing and queries both come through here."""
    return squeeze_to_model(trim_frame(working_copy(image)), size)


# Everything after decoding works on a copy at most this long (the model sees 224 px, keypoints
# 512): a PNG or a mutated file may decode to many megapixels, which framing, SIFT and the edited
# copies would otherwise pay for in time and memory (found by bench/fuzz_decode.py).
WORK_LONG_SIDE = 2048


def working_copy(image: Image.Image) -> Image.Image:
    scale = WORK_LONG_SIDE / max(image.size)
    if scale >= 1.0:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)


def trim_frame(image: Image.Image) -> Image.Image:
    box = content_box(np.asarray(image.convert("RGB")))
    return image if box == (0, 0, image.width, image.height) else image.crop(box)


def photo_features(image: Image.Image) -> PhotoFeatures:
    """What a library keeps of a photo to verify matches with (the keypoints a search verifies its
    candidates with, and the duplicates scan's grey copies). OpenCV refusing an odd image gives no keypoints."""
    gray = np.asarray(image.convert("L"))
    try:
        return analyse_grey(gray)
    except cv2.error as exc:
        logger.warning("no keypoints for a %dx%d image: %s", gray.shape[1], gray.shape[0], exc)
        return PhotoFeatures(Keypoints.none(gray.shape[1], gray.shape[0]), np.zeros((1, 1), np.uint8),
                             np.zeros((1, 1), np.uint8))


def model_draft_size(size: int) -> int:
    """The JPEG draft size indexing decodes at for a model input of `size` (queries use the same)."""
    return max(2 * size, KEYPOINT_LONG_SIDE)


def decode_for_model(path: Path | str | bytes, size: int, teaching: Teaching | None = None) -> DecodedPhoto:
    """Decode a photo for indexing: model input, keypoints, metadata, and with `teaching` the views it
    teaches the library's whitening with (made from this decode: no second one).

    Module-level and returning a plain dataclass so that worker processes can run it.
    """
    decoded, work, trimmed, pixels = _model_input(path, size)
    features = photo_features(work)
    return DecodedPhoto(
        pixels=pixels,
        width=decoded.width,
        height=decoded.height,
        taken_at=decoded.taken_at,
        sharpness=sharpness(work),
        keypoints=features.keypoints.to_bytes(),
        looks=features.looks_to_bytes(),
        teaching_views=None if teaching is None else teaching_views(trimmed, pixels, teaching),
    )


def model_input(path: Path | str | bytes, size: int) -> np.ndarray:
    """The model input decode_for_model gives, without the rest: what calibrating a library's int8
    model needs (the keypoints and grey copies are half of a 12 MP photo's decode)."""
    return _model_input(path, size)[3]


def _model_input(path: Path | str | bytes, size: int):
    """(the decode, its working copy, that copy with its frame trimmed, the model input)."""
    decoded = _decode(path, draft_size=model_draft_size(size))
    work = working_copy(decoded.image)
    trimmed = trim_frame(work)
    return decoded, work, trimmed, squeeze_to_model(trimmed, size)


def decode_teaching_views(path: Path | str | bytes, size: int, teaching: Teaching) -> np.ndarray:
    """teaching_views of a photo embedded earlier. Run by worker processes too."""
    trimmed = trim_frame(working_copy(_decode(path, draft_size=model_draft_size(size)).image))
    return teaching_views(trimmed, squeeze_to_model(trimmed, size), teaching)


def teaching_views(trimmed: Image.Image, pixels: np.ndarray, teaching: Teaching) -> np.ndarray:
    """The views a library learns its whitening from, at the model input ((views, size, size, 3) uint8),
    each paired with the photo's own vector: edited copies of the photo (embedded as they are: a frame
    an edit adds is part of what to damp) and its model input (`pixels`) mirrored."""
    kinds = TEACHING_KINDS[: teaching.views]
    copies = iter(edited_copies(trimmed, kinds.count("copy"), seed=teaching.seed))
    size = pixels.shape[0]
    return np.stack([pixels[:, ::-1] if kind == "mirror" else squeeze_to_model(next(copies), size) for kind in kinds])


def read_meta(source: Source) -> ImageMeta:
    """Size (after EXIF orientation), capture time, camera and JPEG quality from the header, without
    decoding pixels."""
    with _opened(source) as (image, _, _):
        # PngImageFile.getexif() decodes the whole image to look for an eXIf chunk after the
        # pixel data; only trust EXIF that was found before it.
        exif = Image.Exif() if image.format == "PNG" and "exif" not in image.info else _read_exif(image)
        orientation = _orientation(exif)
        width, height = image.size
        if orientation in _ORIENTATIONS_SWAPPING_SIDES:
            width, height = height, width
        tables = getattr(image, "quantization", None) if image.format in ("JPEG", "MPO") else None
        return ImageMeta(width=width, height=height, taken_at=_taken_at(exif), camera=_camera(exif),
                         jpeg_quality=jpeg_quality(tables[0]) if tables and 0 in tables else None)


# The luminance quantisation table of the JPEG standard (Annex K), natural order; the IJG library
# (and so most software) scales it by the quality setting.
_STANDARD_LUMINANCE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], dtype=np.float64)


def jpeg_quality(luminance_table: Sequence[int]) -> int | None:
    """The IJG quality (1-100) whose scaled standard table is closest to a file's luminance
    quantisation table (64 values, natural order, as Pillow gives them); None for another size.
    Only says how the file was last saved: a copy re-saved at a high quality after a low one
    still reads high."""
    table = np.asarray(luminance_table, dtype=np.float64)
    if table.shape != (64,):
        return None
    qualities = np.arange(1, 101)
    scales = np.where(qualities < 50, 5000 / qualities, 200 - 2 * qualities)
    scaled = np.clip(np.floor((_STANDARD_LUMINANCE[None, :] * scales[:, None] + 50) / 100), 1, 255)
    return int(qualities[np.abs(scaled - table[None, :]).sum(axis=1).argmin()])


def sharpness(image: Image.Image) -> float:
    """Variance of the Laplacian of a grey copy at most 512 px long: higher is sharper.

    Computed at a fixed scale so that copies of one photo at different resolutions compare.
    """
    gray = image.convert("L")
    gray.thumbnail((_SHARPNESS_MAX_SIDE, _SHARPNESS_MAX_SIDE), Image.Resampling.BILINEAR)
    pixels = np.asarray(gray, dtype=np.float32)
    if pixels.shape[0] < 3 or pixels.shape[1] < 3:
        return 0.0
    laplacian = (
        pixels[:-2, 1:-1] + pixels[2:, 1:-1] + pixels[1:-1, :-2] + pixels[1:-1, 2:] - 4.0 * pixels[1:-1, 1:-1]
    )
    return float(laplacian.var(dtype=np.float64))


def _decode(source: Source, draft_size: int | None, *, oriented: bool = True) -> _Decoded:
    with _opened(source) as (image, label, file_size):
        width, height = image.size
        pixels = width * height
        if pixels > _PLAUSIBILITY_FLOOR_PIXELS and pixels > file_size * _MAX_PIXELS_PER_FILE_BYTE:
            raise DecodeError(f"implausible size ({width}x{height} pixels in a {file_size}-byte file)")
        try:
            if draft_size and image.format in _DRAFTABLE_FORMATS:
                # Must come before load(): it sets the libjpeg scale used while decoding.
                image.draft("RGB", (draft_size, draft_size))
            image.load()
        except Exception as exc:
            raise DecodeError(_load_failure_reason(exc, label, (width, height))) from exc
        # Read after load() (PNG may keep EXIF after the pixels) and before the file closes
        # (TIFF reads its EXIF directory from the file).
        exif = _read_exif(image)
        try:
            rgb = _to_rgb(image)
        except Exception as exc:
            raise DecodeError(_load_failure_reason(exc, label, (width, height))) from exc
    orientation = _orientation(exif)
    if oriented and orientation in _ORIENTATION_TRANSPOSE:
        rgb = rgb.transpose(_ORIENTATION_TRANSPOSE[orientation])
        if orientation in _ORIENTATIONS_SWAPPING_SIDES:
            width, height = height, width
    return _Decoded(image=rgb, width=width, height=height, taken_at=_taken_at(exif))


@contextmanager
def _opened(source: Source) -> Iterator[tuple[Image.Image, str, int]]:
    """Open `source` with the format allowlist and the size limit; yield (image, format, file size)."""
    with _open_stream(source) as (stream, file_size):
        formats = _allowed_formats()
        try:
            image = Image.open(stream, formats=formats)
        except UnidentifiedImageError as exc:
            raise DecodeError(_unidentified_reason(_read_head(stream), formats)) from exc
        except Exception as exc:  # some plugins (WebP, HEIF) start decoding inside open()
            label = _claimed_format(_read_head(stream)) or "image"
            raise DecodeError(_load_failure_reason(exc, label, None)) from exc
        with image:
            # Pillow itself refuses 0-sized images at open; the size limit is ours to enforce.
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise DecodeError(_bomb_reason(width * height))
            yield image, image.format or "image", file_size


@contextmanager
def _open_stream(source: Source) -> Iterator[tuple[IO[bytes], int]]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise DecodeError("empty file")
        yield io.BytesIO(source), len(source)
        return
    path = os.fspath(source)
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise DecodeError("is a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file")
        if info.st_size == 0:
            raise DecodeError("empty file")
        stream = open(path, "rb")  # closed by the `with` below, once the caller is done
    except OSError as exc:
        raise DecodeError(_os_error_reason(exc)) from exc
    with stream:
        yield stream, info.st_size


def _os_error_reason(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return FILE_VANISHED
    if isinstance(exc, PermissionError):
        return PERMISSION_DENIED
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    return f"{READ_ERROR} ({exc.strerror or exc})"


def _load_failure_reason(exc: Exception, label: str, size: tuple[int, int] | None) -> str:
    if isinstance(exc, DecodeError):
        return exc.reason
    if isinstance(exc, Image.DecompressionBombError):
        return _bomb_reason_from_pillow(exc)
    if isinstance(exc, MemoryError):
        return f"{NOT_ENOUGH_MEMORY} {size[0]}x{size[1]}" if size else NOT_ENOUGH_MEMORY
    if isinstance(exc, EOFError) or (isinstance(exc, OSError) and "truncated" in str(exc).lower()):
        return "truncated file"
    if isinstance(exc, OSError) and exc.errno is not None:
        return _os_error_reason(exc)
    if isinstance(exc, _DAMAGED_DATA_ERRORS):
        return f"damaged {label} data ({exc})" if str(exc) else f"damaged {label} data"
    logger.warning("unexpected %s while decoding %s data", type(exc).__name__, label, exc_info=exc)
    return f"unexpected decoder error ({type(exc).__name__}: {exc})"


def _bomb_reason(pixels: int) -> str:
    """Said of a picture above the limit: in words a user reads, not Pillow's "decompression bomb"."""
    return f"{TOO_LARGE} ({pixels / 1e6:.1f} megapixels; photos of up to {MAX_PIXELS / 1e6:.0f} are read)"


def _bomb_reason_from_pillow(exc: Image.DecompressionBombError) -> str:
    match = _BOMB_PIXELS.search(str(exc))
    return _bomb_reason(int(match[1])) if match else TOO_LARGE


def _read_head(stream: IO[bytes]) -> bytes:
    try:
        stream.seek(0)
        return stream.read(64)
    except (OSError, ValueError):  # ValueError: a plugin closed the stream
        return b""


def _unidentified_reason(head: bytes, formats: tuple[str, ...]) -> str:
    """Say why no allowed plugin took the file: a known but unsupported format, or none."""
    claimed = _claimed_format(head)
    if claimed is None:
        return "not an image"
    if claimed == "HEIC":
        return "damaged HEIC header" if "HEIF" in formats else HEIF_PLUGIN_MISSING
    if claimed == "AVIF" and "AVIF" not in formats:
        return AVIF_SUPPORT_MISSING
    return f"damaged {claimed} header" if claimed in formats else f"unsupported format {claimed}"


def _claimed_format(head: bytes) -> str | None:
    """The format the first bytes announce, from signatures alone (nothing is parsed)."""
    family = _isobmff_family(head)
    if family is not None:
        return family
    # Plugins' accept() only looks at the first 16 bytes, as Image.open does.
    prefix = head[:16]
    for name, (_, accept) in Image.OPEN.items():
        if accept is None:
            continue
        try:
            accepted = accept(prefix)
        except Exception:  # some accept() functions index short prefixes blindly
            continue
        if accepted and not isinstance(accepted, str):
            return name
    return None


def _isobmff_family(head: bytes) -> str | None:
    """'HEIC' or 'AVIF' from the ISO-BMFF `ftyp` box brands, None for anything else."""
    if len(head) < 16 or head[4:8] != b"ftyp":
        return None
    box_end = min(int.from_bytes(head[:4], "big"), len(head))
    brands = {head[8:12]} | {head[i : i + 4] for i in range(16, box_end - 3, 4)}
    if brands & _AVIF_BRANDS:
        return "AVIF"
    if brands & _HEIC_BRANDS or head[8:12] in (b"mif1", b"msf1"):
        return "HEIC"
    return None


def _read_exif(image: Image.Image) -> Image.Exif:
    # Broken EXIF must cost the photo its rotation and date, not the photo itself.
    try:
        return image.getexif()
    except Exception as exc:
        logger.debug("ignoring unreadable EXIF: %s", exc)
        return Image.Exif()


def _orientation(exif: Image.Exif) -> int:
    try:
        value = exif.get(ExifTags.Base.Orientation, 1)
    except Exception:
        return 1
    return value if isinstance(value, int) and value in _ORIENTATION_TRANSPOSE else 1


def _camera(exif: Image.Exif) -> str | None:
    """The camera's make and model, the make left out where the model repeats it (many do)."""
    try:
        make = _exif_text(exif.get(ExifTags.Base.Make)).strip()
        model = _exif_text(exif.get(ExifTags.Base.Model)).strip()
    except Exception:
        return None
    if model.casefold().startswith(make.casefold()):
        make = ""
    return " ".join(part for part in (make, model) if part) or None


def _taken_at(exif: Image.Exif) -> float | None:
    """EXIF DateTimeOriginal as a POSIX timestamp.

    Uses OffsetTimeOriginal when the camera wrote one; otherwise the time is the camera's wall
    clock and is read as local time, like every photo manager does.
    """
    try:
        exif_ifd = exif.get_ifd(ExifTags.IFD.Exif)
        stamp = exif_ifd.get(ExifTags.Base.DateTimeOriginal) or exif.get(ExifTags.Base.DateTimeOriginal)
        offset = exif_ifd.get(ExifTags.Base.OffsetTimeOriginal)
        subsec = exif_ifd.get(ExifTags.Base.SubsecTimeOriginal)
    except Exception:
        return None
    match = _EXIF_DATETIME.match(_exif_text(stamp))
    if match is None:
        return None
    try:
        taken = datetime(*(int(part) for part in match.groups()))  # type: ignore[misc]
        fraction = _exif_text(subsec)
        if fraction.isdigit():
            taken += timedelta(seconds=float(f"0.{fraction}"))
        offset_match = _EXIF_OFFSET.fullmatch(_exif_text(offset))
        if offset_match:
            sign = -1 if offset_match[1] == "-" else 1
            zone = timezone(sign * timedelta(hours=int(offset_match[2]), minutes=int(offset_match[3])))
            taken = taken.replace(tzinfo=zone)
        return taken.timestamp()
    except (ValueError, OverflowError, OSError):  # month 13, "0000:00:00", pre-1970 on Windows
        return None


def _exif_text(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return value.strip("\x00 ") if isinstance(value, str) else ""


def _to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode.startswith("I") or mode == "F":
        return Image.fromarray(_high_depth_to_uint8(image)).convert("RGB")
    if image.has_transparency_data:
        return _flatten_on_white(image.convert("RGBA"))
    if mode == "RGB":
        return image
    return image.convert("RGB")


def _flatten_on_white(rgba: Image.Image) -> Image.Image:
    # Transparent areas become white (how viewers show them), not black (what convert("RGB") gives).
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def _high_depth_to_uint8(image: Image.Image) -> np.ndarray:
    """16-bit, 32-bit integer and float grey images scaled to 0-255, not clipped."""
    if image.mode.startswith("I;16"):
        return (np.asarray(image) >> 8).astype(np.uint8)
    values = np.array(image, dtype=np.float32)  # one writable copy, then in-place passes
    if image.mode == "F":
        np.nan_to_num(values, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(values.min()), float(values.max())
    if image.mode == "I" and low >= 0 and high <= 65535:
        low, high = 0.0, 65535.0  # 16-bit samples held in a 32-bit mode
    elif image.mode == "F" and low >= 0 and high <= 1:
        low, high = 0.0, 1.0
    values -= low
    values *= 255.0 / (high - low) if high > low else 0.0
    np.clip(values, 0, 255, out=values)
    return np.rint(values, out=values).astype(np.uint8)
