"""Synthetic photos for tests."""

from __future__ import annotations

import random
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter


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


def smooth_picture(seed: int) -> Image.Image:
    """Soft shapes on a gradient, blurred: a wallpaper or a hazy sky, with hardly any keypoints."""
    return make_photo(seed, (640, 480)).filter(ImageFilter.GaussianBlur(24))


def textured_image(seed: int, width: int = 480, height: int = 360) -> np.ndarray:
    """A greyscale picture of random overlapping shapes: plenty of corners for SIFT."""
    rng = np.random.default_rng(seed)
    img = np.full((height, width), 128, np.uint8)
    for _ in range(120):
        colour = int(rng.integers(0, 256))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        if rng.random() < 0.5:
            w, h = int(rng.integers(8, 60)), int(rng.integers(8, 60))
            cv2.rectangle(img, (x, y), (x + w, y + h), colour, -1)
        else:
            cv2.circle(img, (x, y), int(rng.integers(5, 30)), colour, -1)
    return cv2.GaussianBlur(img, (3, 3), 0)


SCENE_COPIES = ("a", "b", "c")


def save_copies(scene: int, folder: Path, copies=SCENE_COPIES) -> list[Path]:
    """Copies of one scene in `folder`, named s<scene>_<copy>.jpg: a as saved, b smaller and
    recompressed, c brighter."""
    folder.mkdir(parents=True, exist_ok=True)
    photo = make_photo(100 + scene)
    made = {"a": lambda: photo, "b": lambda: photo.resize((200, 150)),
            "c": lambda: ImageEnhance.Brightness(photo).enhance(1.2)}
    paths = []
    for copy in copies:
        path = folder / f"s{scene}_{copy}.jpg"
        made[copy]().save(path, quality=60 if copy == "b" else 90)
        paths.append(path)
    return paths
