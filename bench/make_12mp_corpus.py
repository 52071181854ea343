#!/usr/bin/env python3
"""Make a corpus of 12-megapixel camera-like JPEGs from real base photos, for bench/throughput.py.

usage: python bench/make_12mp_corpus.py BASE_DIR OUT_DIR [--count 320] [--workers N] [--long-side 4000]

Each output is a base photo cropped (70-100 % of each side), colour-shifted, upscaled to 4000x3000
(a third of them portrait, 3000x4000; some stored landscape with an EXIF rotation tag instead),
given a little sensor-like grain so the file is as large as a real camera's (~3-5 MB at quality 90:
the size of the entropy-coded data is what JPEG decoding time follows), and saved with EXIF
DateTimeOriginal. `--long-side 1600` makes 2 MP photos instead (a phone's shared size, ~0.5 MB), for
libraries too large to hold at 12 MP. BASE_DIR: JPEGs of real photos (e.g. /tmp/vg-corpus/dup/images/g*_0.jpg copied
into a folder, or the folder itself with --glob).

`--distinct` makes a library with no duplicates in it instead: each base (one of each picture, bases that
look the same dropped) is cut into non-overlapping tiles of at least 256 px a side (up to 3x3), and each
tile becomes one photo as above, uncropped; no two photos share a pixel. `--count` caps how many.
"""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

LONG_SIDE = 4000  # 12 MP at 4:3
QUALITY = 90
EXIF_ORIENTATION = 0x0112
EXIF_DATETIME_ORIGINAL = 0x9003
EXIF_IFD = 0x8769


MIN_TILE = 256  # pixels a side of a --distinct tile
MAX_TILES = 3  # tiles along a side


def make_one(base: Path, target: Path, seed: int, long_side: int = LONG_SIDE,
             box: tuple[int, int, int, int] | None = None) -> int:
    """Write one variant of `base` (of its `box`, else a random 70-100 % crop), `long_side` pixels on its
    long side at 4:3; return its size in bytes."""
    rng = np.random.default_rng(seed)
    image = Image.open(base).convert("RGB")
    w, h = image.size
    if box is None:
        cw, ch = int(w * rng.uniform(0.7, 1.0)), int(h * rng.uniform(0.7, 1.0))
        left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        box = (left, top, left + cw, top + ch)
    image = image.crop(box)
    image = ImageEnhance.Color(image).enhance(rng.uniform(0.6, 1.4))
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.8, 1.2))
    image = ImageEnhance.Contrast(image).enhance(rng.uniform(0.85, 1.15))

    layout = seed % 3  # 0: landscape, 1: portrait pixels, 2: landscape pixels + EXIF "rotate 90"
    short_side = long_side * 3 // 4
    size = (short_side, long_side) if layout == 1 else (long_side, short_side)
    image = image.resize(size, Image.Resampling.BICUBIC)

    pixels = np.asarray(image, dtype=np.float32)
    grain = rng.standard_normal(pixels.shape[:2], dtype=np.float32)[..., None] * np.float32(rng.uniform(3.0, 5.0))
    pixels = np.clip(pixels + grain, 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels)

    exif = Image.Exif()
    exif.get_ifd(EXIF_IFD)[EXIF_DATETIME_ORIGINAL] = f"2023:{1 + seed % 12:02d}:{1 + seed % 28:02d} 12:00:00"
    if layout == 2:
        exif[EXIF_ORIENTATION] = 6
    image.save(target, quality=QUALITY, exif=exif.tobytes())
    return target.stat().st_size


def distinct_tiles(bases: list[Path]) -> list[tuple[Path, tuple[int, int, int, int]]]:
    """Non-overlapping tiles of each base whose picture no earlier base shows (a 24x24 grey copy
    correlating above 0.95 with one already taken: corpora of several seeds share pictures at other sizes)."""
    taken: list[np.ndarray] = []
    tiles = []
    for base in bases:
        with Image.open(base) as image:
            w, h = image.size
            shape = np.asarray(image.convert("L").resize((24, 24)), dtype=np.float32).reshape(-1)
        shape = (shape - shape.mean()) / (shape.std() + 1e-6)
        if any(float(shape @ other) / len(shape) > 0.95 for other in taken):
            continue
        taken.append(shape)
        across, down = min(MAX_TILES, max(1, w // MIN_TILE)), min(MAX_TILES, max(1, h // MIN_TILE))
        tiles += [(base, (w * i // across, h * j // down, w * (i + 1) // across, h * (j + 1) // down))
                  for j in range(down) for i in range(across)]
    return tiles


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base_dir", type=Path)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--glob", default="*.jpg", help="which files of BASE_DIR are base photos")
    ap.add_argument("--count", type=int, default=320)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--long-side", type=int, default=LONG_SIDE, help="pixels on the long side (4:3 photos)")
    ap.add_argument("--distinct", action="store_true", help="tiles of distinct pictures: no duplicates at all")
    a = ap.parse_args()
    bases = sorted(a.base_dir.glob(a.glob))
    if not bases:
        print(f"no base photos matching {a.glob} in {a.base_dir}", file=sys.stderr)
        return 1
    a.out_dir.mkdir(parents=True, exist_ok=True)
    digits = max(4, len(str(a.count - 1)))
    if a.distinct:
        tiles = distinct_tiles(bases)[:a.count]
        jobs = [(base, a.out_dir / f"t{i:0{digits}d}_{base.stem}.jpg", i, a.long_side, box)
                for i, (base, box) in enumerate(tiles)]
    else:
        jobs = [(bases[i % len(bases)], a.out_dir / f"p{i:0{digits}d}_{bases[i % len(bases)].stem}.jpg", i,
                 a.long_side, None) for i in range(a.count)]
    jobs = [job for job in jobs if not job[1].exists()]
    with ProcessPoolExecutor(max(1, a.workers)) as pool:
        sizes = list(pool.map(make_one, *zip(*jobs))) if jobs else []
    total = sum(p.stat().st_size for p in a.out_dir.glob("*.jpg"))
    count = len(list(a.out_dir.glob("*.jpg")))
    print(f"{a.out_dir}: {count} files ({len(sizes)} new), mean {total / max(count, 1) / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
