"""What the keep-best rule measures in a photo: signs that it is an edited copy rather than the original.

Each measure is one a copy gains and an original lacks, whatever the photo shows:
- `frame`: the flat corners a turned copy's canvas grew, so the pixels that hold the picture are fewer
  than the file's (a border is found against the other members, features.PairShape);
- `grey`: no colour left;
- `fine_detail`: the finest octave's share of detail, against the octave below it; an upscaled or
  blurred copy has little (natural photos at their own resolution have about as much as below);
- `blockiness`: 8x8 block edges a low-quality JPEG save left, even when re-saved at a high quality;
- `jpeg_quality` and `camera` from the file's header (core.imageio.read_meta).
How the rule weighs them is in keep.py.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from vitgallery.core.imageio import open_image, read_meta

FRAME_SIDE = 512  # long side of the copy padding is looked for in
FRAME_TOLERANCE = 10  # grey levels: JPEG noise on a flat fill
TRIANGLE_MIN_LEG = 0.02  # a corner triangle's legs span at least this share of the picture's sides...
TRIANGLE_FIT = 0.15  # ...and its area is within this share of half the box they span
DETAIL_SIDE = 1024  # detail and blockiness are measured at the photo's own resolution, on a central part this big
GREY_SPREAD = 8  # channel spread under which a pixel has no colour
GREY_SHARE = 0.01  # a photo with fewer colour pixels than this is grey


@dataclass(frozen=True)
class PhotoQuality:
    frame: float  # share of the picture that is the flat corners of a turned canvas
    grey: bool
    fine_detail: float  # finest octave's detail over the octave below (0: none, about 1: a sharp photo)
    blockiness: float  # block-edge strength over the rest (1: none)
    jpeg_quality: int | None  # as last saved; None for other formats
    camera: str | None  # EXIF make and model

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> PhotoQuality:
        return cls(**json.loads(text))


def measure_quality(path: Path) -> PhotoQuality:
    """Decode a photo at its own resolution and measure it (DecodeError for a photo that cannot be read).
    Only what is measured becomes an array: a whole 12 MP photo as one cost 33 ms of a 157 ms measure,
    and OpenCV's area resize of it to FRAME_SIDE 36 ms more. No measure depends on a quarter turn or a
    mirror (corners stay corners, rows and columns are measured alike), so the pixels stay as stored."""
    meta = read_meta(path)
    image = open_image(path, oriented=False)
    small = _shrink(image, FRAME_SIDE)
    centre = cv2.cvtColor(np.asarray(image.crop(_centre_box(image.size, DETAIL_SIDE))), cv2.COLOR_RGB2GRAY)
    centre = centre.astype(np.float32)
    return PhotoQuality(frame=frame_share(small), grey=is_grey(small),
                        fine_detail=fine_detail(centre), blockiness=blockiness(centre),
                        jpeg_quality=meta.jpeg_quality, camera=meta.camera)


def is_grey(rgb: np.ndarray) -> bool:
    """Whether an RGB image has (next to) no colour left."""
    # Channel by channel: numpy reduces a last axis of 3 an order of magnitude slower.
    red, green, blue = (rgb[..., channel] for channel in range(3))
    spread = np.maximum(np.maximum(red, green), blue).astype(np.int16) - np.minimum(np.minimum(red, green), blue)
    return bool((spread > GREY_SPREAD).mean() < GREY_SHARE)


def frame_share(rgb: np.ndarray) -> float:
    """Share of an RGB image that is the corners a turned copy's canvas grew: flat triangles of one
    colour in at least three corners, each filling half the box its two legs span. A border or a flat
    background touching the corners is not such a triangle (a border is caught against the other
    members instead, see features.PairShape)."""
    h, w = rgb.shape[:2]
    corners = ((0, 0, 1, 1), (w - 1, 0, -1, 1), (0, h - 1, 1, -1), (w - 1, h - 1, -1, -1))
    work = rgb.copy()  # floodFill wants a writable image even when it only marks the mask
    mask = np.zeros((h + 2, w + 2), np.uint8)
    flags = 4 | cv2.FLOODFILL_FIXED_RANGE | cv2.FLOODFILL_MASK_ONLY | (1 << 8)
    for x, y, _, _ in corners:
        if not mask[y + 1, x + 1]:
            cv2.floodFill(work, mask, (x, y), (0, 0, 0), (FRAME_TOLERANCE,) * 3, (FRAME_TOLERANCE,) * 3, flags)
    # the tip where a turned picture touches the canvas's edge can join two triangles by a thin line
    flat = cv2.morphologyEx(mask[1:-1, 1:-1], cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    _, labels = cv2.connectedComponents(flat, connectivity=4)
    found: list[tuple[float, tuple[int, ...]]] = []
    for x, y, step_x, step_y in corners:
        label = labels[y, x]
        if label == 0:
            continue
        region = labels == label
        leg_x = _run(region[y, ::step_x])  # along the corner's row and column
        leg_y = _run(region[::step_y, x])
        if min(leg_x / w, leg_y / h) < TRIANGLE_MIN_LEG or leg_x == w or leg_y == h:
            continue  # no corner, or a band across the picture (a border, letterboxing)
        box = region[::step_y, ::step_x][:leg_y, :leg_x]
        if abs(box.sum() / (leg_x * leg_y / 2) - 1) <= TRIANGLE_FIT:
            found.append((float(box.sum()) / (w * h), tuple(int(c) for c in rgb[y, x])))
    if len(found) < 3:
        return 0.0
    colours = np.array([colour for _, colour in found])
    if np.abs(colours - colours[0]).max() > FRAME_TOLERANCE:
        return 0.0
    return float(sum(share for share, _ in found))


def _run(flags: np.ndarray) -> int:
    """How many leading entries are True."""
    stop = np.flatnonzero(~flags)
    return int(stop[0]) if len(stop) else len(flags)


def fine_detail(grey: np.ndarray) -> float:
    """The detail lost halving a grey image's resolution, over the detail lost halving it once more:
    scale-free, about 1 for a sharp natural photo, near 0 for an upscaled or blurred one."""
    finest = _octave(grey)
    below = _octave(cv2.resize(grey, (max(1, grey.shape[1] // 2), max(1, grey.shape[0] // 2)),
                               interpolation=cv2.INTER_AREA))
    return finest / below if below > 1e-6 else 0.0


def _octave(grey: np.ndarray) -> float:
    h, w = grey.shape
    if min(h, w) < 8:
        return 0.0
    half = cv2.resize(grey, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    back = cv2.resize(half, (w, h), interpolation=cv2.INTER_LINEAR)
    return float(np.mean((grey - back) ** 2))


def blockiness(grey: np.ndarray) -> float:
    """How much stronger the steps between neighbouring pixels are on one 8-pixel grid than elsewhere,
    across rows and columns (the strongest grid phase): 1 for no block edges."""
    out = []
    for steps in (np.abs(np.diff(grey, axis=1)).mean(axis=0), np.abs(np.diff(grey, axis=0)).mean(axis=1)):
        usable = len(steps) // 8 * 8
        if usable < 16:
            return 1.0
        by_phase = steps[:usable].reshape(-1, 8).mean(axis=0)
        out.append(float(by_phase.max() / max(np.delete(by_phase, by_phase.argmax()).mean(), 1e-6)))
    return float(np.mean(out))


def _shrink(image: Image.Image, side: int) -> np.ndarray:
    """The RGB image at most `side` pixels long: averaged by a whole factor first (Pillow's reduce),
    then the rest of the way by area."""
    scale = side / max(image.size)
    if scale >= 1:
        return np.asarray(image)
    factor = int(1 / scale)
    reduced = np.asarray(image.reduce(factor) if factor > 1 else image)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return cv2.resize(reduced, size, interpolation=cv2.INTER_AREA)


def _centre_box(size: tuple[int, int], side: int) -> tuple[int, int, int, int]:
    """The central side x side part of an image of `size` (all of a smaller one), its origin on the
    8-pixel grid, as a crop box."""
    w, h = size
    top, left = max(0, (h - side) // 2) // 8 * 8, max(0, (w - side) // 2) // 8 * 8
    return left, top, min(w, left + side), min(h, top + side)
