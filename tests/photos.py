"""Synthetic photos for tests."""

from __future__ import annotations

import random

from PIL import Image, ImageDraw, ImageFilter


def make_photo(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A synthetic 'photo': a gradient sky and random shapes, different for every seed."""
    rng = random.Random(seed)
    w, h = size
    im = Image.new("RGB", size)
    draw = ImageDraw.Draw(im)
    top, bottom = [rng.randint(0, 255) for _ in range(3)], [rng.randint(0, 255) for _ in range(3)]
    for y in range(h):
        t = y / max(1, h - 1)
        draw.line([(0, y), (w, y)], fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom)))
    for _ in range(12):
        x0, y0 = rng.randint(0, w), rng.randint(0, h)
        x1, y1 = x0 + rng.randint(10, w // 2), y0 + rng.randint(10, h // 2)
        colour = tuple(rng.randint(0, 255) for _ in range(3))
        if rng.random() < 0.5:
            draw.ellipse([x0, y0, x1, y1], fill=colour)
        else:
            draw.rectangle([x0, y0, x1, y1], fill=colour)
    return im.filter(ImageFilter.SMOOTH)


def textured_photo(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A busy 'photo' of many small sharp shapes: plenty of corners for SIFT keypoints."""
    rng = random.Random(seed)
    w, h = size
    im = make_photo(seed, size)
    draw = ImageDraw.Draw(im)
    for _ in range(150):
        x, y = rng.randint(0, w), rng.randint(0, h)
        x1, y1 = x + rng.randint(6, w // 10), y + rng.randint(6, h // 10)
        colour = tuple(rng.randint(0, 255) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x, y, x1, y1], fill=colour)
    return im
