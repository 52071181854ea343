from __future__ import annotations

import numpy as np
from PIL import Image

from tests.photos import textured_image
from vitgallery.core.preprocess import content_box, edited_copies

# ---------------------------------------------------------------- framing


def test_content_box_cuts_a_uniform_frame():
    picture = np.stack([textured_image(5, 120, 80)] * 3, axis=-1)
    framed = np.full((80 + 30, 120 + 50, 3), (200, 30, 90), np.uint8)
    framed[10:90, 20:140] = picture
    # JPEG-like noise on the frame must not stop the trim
    framed[:10] = np.clip(framed[:10].astype(int) + np.random.default_rng(0).integers(-5, 6, framed[:10].shape),
                          0, 255).astype(np.uint8)
    assert content_box(framed) == (20, 10, 140, 90)


def test_content_box_leaves_unframed_pictures_whole():
    picture = np.stack([textured_image(6, 120, 80)] * 3, axis=-1)
    assert content_box(picture) == (0, 0, 120, 80)
    blank = np.full((50, 60, 3), 255, np.uint8)
    box = content_box(blank)
    # an all-white image is trimmed by at most max_trim of each side, never to nothing
    assert box[2] - box[0] >= 60 * 0.2 and box[3] - box[1] >= 50 * 0.2


def _framed_rows_and_columns(image: np.ndarray, colour: np.ndarray, tolerance: int, min_share: float):
    """content_box's definition spelt out: a pixel is the frame's when every channel is within tolerance."""
    close = (np.abs(image.reshape(*image.shape[:2], -1).astype(int) - colour) <= tolerance).all(axis=2)
    return close.mean(axis=1) >= min_share, close.mean(axis=0) >= min_share


def test_content_box_follows_its_definition_in_grey_and_colour():
    rng = np.random.default_rng(3)
    checked = 0
    for _ in range(300):
        h, w = (int(v) for v in rng.integers(8, 90, 2))
        channels = int(rng.choice([1, 3, 4]))
        colour = rng.choice([0, 3, 12, 200, 250, 255], size=channels)
        noise = int(rng.integers(0, 16))
        image = np.clip(colour + rng.integers(-noise, noise + 1, (h, w, channels)), 0, 255)
        top, left = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
        image[top:h - int(rng.integers(0, h // 2)), left:w - int(rng.integers(0, w // 2))] = \
            rng.integers(0, 256, (1, 1, channels))  # the picture: one other colour, so the box is exact
        image = image.astype(np.uint8)
        if channels == 1:
            image = image[:, :, 0]
        box = content_box(image, tolerance=12, min_share=0.98, max_trim=0.4)
        corners = np.stack([image.reshape(h, w, -1)[y, x] for y in (0, -1) for x in (0, -1)]).astype(int)
        if np.abs(corners - corners[0]).max() > 12:
            assert box == (0, 0, w, h)
            continue
        rows, cols = _framed_rows_and_columns(image, np.median(corners, axis=0).astype(int), 12, 0.98)
        left_, top_, right_, bottom_ = box
        # Every row and column cut off is frame, and the first one kept on each side is not (or the cap).
        assert rows[:top_].all() and rows[bottom_:].all() and cols[:left_].all() and cols[right_:].all()
        assert top_ == int(h * 0.4) or not rows[top_]
        assert h - bottom_ == int(h * 0.4) or not rows[bottom_ - 1]
        assert left_ == int(w * 0.4) or not cols[left_]
        assert w - right_ == int(w * 0.4) or not cols[right_ - 1]
        checked += 1
    assert checked > 100


# ---------------------------------------------------------------- edited copies


def test_edited_copies_are_deterministic_and_edited():
    photo = Image.fromarray(np.stack([textured_image(7, 160, 120)] * 3, axis=-1))
    first = edited_copies(photo, 4, seed=11)
    again = edited_copies(photo, 4, seed=11)
    assert len(first) == 4
    for a, b in zip(first, again, strict=True):
        assert a.mode == "RGB"
        assert a.size == b.size and np.array_equal(np.asarray(a), np.asarray(b))
    assert any(c.size != photo.size or not np.array_equal(np.asarray(c), np.asarray(photo)) for c in first)
    assert edited_copies(photo, 4, seed=12) != first


def test_edited_copies_of_a_tiny_picture():
    tiny = Image.new("RGB", (6, 3), (10, 200, 30))
    for seed in range(40):
        assert all(min(c.size) >= 1 for c in edited_copies(tiny, 2, seed=seed))
