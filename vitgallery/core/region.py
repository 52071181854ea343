"""Search by a region: the part of a photo a search should use, and that part's pixels.

A region is given in pixels of the photo as a viewer shows it: EXIF orientation applied, at its full
size (before any scaling for the model or the screen). The region is cut out and searched as a photo
of its own: on the sem corpora that beats pooling the whole photo's patch tokens inside it by 9-16 mAP
points (bench/region_search.py --variants; docs/benchmarks.md, "Search by region").
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from vitgallery.core.imageio import DecodeError, model_draft_size, open_image, read_meta

MIN_REGION_SIDE = 8  # pixels: below this a region holds too little for the model or the keypoints


class RegionError(ValueError):
    """A region that does not describe part of the photo; the message says why."""


@dataclass(frozen=True)
class Region:
    """A rectangle of a photo: left, top, width, height in pixels of the oriented full-size photo."""

    x: int
    y: int
    width: int
    height: int

    @classmethod
    def parse(cls, text: str) -> Region:
        """"X,Y,W,H" (whole pixels, spaces allowed)."""
        match = re.fullmatch(r"\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*", text)
        if match is None:
            raise RegionError(f"a region is X,Y,W,H in whole pixels (e.g. 120,80,400,300), not {text!r}")
        return cls(*(int(v) for v in match.groups()))

    def within(self, width: int, height: int) -> Region:
        """The region clipped to a width x height photo; RegionError when little or nothing is left."""
        left, top = min(self.x, width), min(self.y, height)
        right, bottom = min(self.x + self.width, width), min(self.y + self.height, height)
        if right - left < MIN_REGION_SIDE or bottom - top < MIN_REGION_SIDE:
            raise RegionError(f"the region {self.x},{self.y},{self.width},{self.height} leaves less than "
                              f"{MIN_REGION_SIDE}x{MIN_REGION_SIDE} pixels inside the {width}x{height} photo")
        return Region(left, top, right - left, bottom - top)


def region_image(source: Path | str | bytes | Image.Image, region: Region, input_size: int) -> Image.Image:
    """The pixels of `region` of a photo, decoded only as large as the model and the keypoints need.

    Raises DecodeError for a file that is not a photo, RegionError for a region outside it."""
    if isinstance(source, Image.Image):
        full = region.within(source.width, source.height)
        return source.convert("RGB").crop((full.x, full.y, full.x + full.width, full.y + full.height))
    source = source if isinstance(source, bytes) else Path(source)
    meta = read_meta(source)
    full = region.within(meta.width, meta.height)
    # JPEGs decode at 1/2, 1/4 or 1/8 when that keeps the region as large as a whole photo is decoded.
    enough = model_draft_size(input_size)
    draft = math.ceil(enough * min(meta.width, meta.height) / min(full.width, full.height))
    image = open_image(source, draft_size=draft)
    if image.width == 0 or meta.width == 0:
        raise DecodeError("image is 0x0")
    sx, sy = image.width / meta.width, image.height / meta.height
    box = (math.floor(full.x * sx), math.floor(full.y * sy),
           math.ceil((full.x + full.width) * sx), math.ceil((full.y + full.height) * sy))
    return image.crop(box)
