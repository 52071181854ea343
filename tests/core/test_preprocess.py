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
