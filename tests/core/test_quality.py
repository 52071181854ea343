from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from vitgallery.core import quality
from vitgallery.core.quality import (
    Keypoints,
    LibraryWhitening,
    content_box,
    edited_copies,
    extract_keypoints,
    rerank,
    verify_pair,
)


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


# ---------------------------------------------------------------- geometric verification


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    return textured_image(0)


@pytest.fixture(scope="module")
def scene_keypoints(scene) -> Keypoints:
    return extract_keypoints(scene)


def test_extract_keypoints_shrinks_and_caps(scene):
    big = cv2.resize(scene, (960, 720))
    kp = extract_keypoints(big, long_side=512, max_keypoints=100)
    assert (kp.width, kp.height) == (512, 384)
    assert 50 <= len(kp) <= 100
    assert kp.descriptors.dtype == np.uint8 and kp.descriptors.shape == (len(kp), 128)
    assert kp.xy.max(axis=0)[0] < 512 and kp.xy.max(axis=0)[1] < 384


def test_extract_keypoints_of_a_blank_image_is_empty():
    kp = extract_keypoints(np.full((100, 100), 200, np.uint8))
    assert len(kp) == 0
    assert verify_pair(kp, kp) == 0


@pytest.mark.parametrize("edit", ["rot90", "crop_scale", "rot25"])
def test_verify_pair_finds_edited_copies(scene, scene_keypoints, edit):
    h, w = scene.shape
    if edit == "rot90":
        copy = np.ascontiguousarray(np.rot90(scene))
    elif edit == "crop_scale":
        copy = cv2.resize(scene[40:300, 60:420], (252, 182), interpolation=cv2.INTER_AREA)
    else:
        m = cv2.getRotationMatrix2D((w / 2, h / 2), 25, 0.8)
        copy = cv2.warpAffine(scene, m, (w, h))
    assert verify_pair(scene_keypoints, extract_keypoints(copy)) >= 40


def test_verify_pair_rejects_an_unrelated_picture(scene_keypoints):
    other = extract_keypoints(textured_image(1))
    noise = extract_keypoints(np.random.default_rng(2).integers(0, 256, (360, 480), dtype=np.uint8))
    assert verify_pair(scene_keypoints, other) < quality.RERANK_MIN_INLIERS
    assert verify_pair(scene_keypoints, noise) < quality.RERANK_MIN_INLIERS


def test_a_picture_with_few_keypoints_is_not_verified_by_repeats(scene_keypoints):
    """Many query keypoints passing the ratio test onto the same few candidate keypoints must not
    count as agreeing inliers (seen on real photos: a mango with 16 keypoints 'verified' a house)."""
    sparse = np.full((360, 480), 200, np.uint8)
    cv2.circle(sparse, (150, 120), 40, 30, -1)
    cv2.rectangle(sparse, (300, 200), (360, 300), 90, -1)
    few = extract_keypoints(sparse)
    assert 0 < len(few) < 40
    qi, ci = quality.tentative_matches(quality.root_sift(scene_keypoints.descriptors),
                                       quality.root_sift(few.descriptors))
    assert len(np.unique(ci)) == len(ci) <= len(few)
    assert verify_pair(scene_keypoints, few) < quality.RERANK_MIN_INLIERS


def test_verify_pair_matches_a_mirror_only_when_asked(scene, scene_keypoints):
    mirrored = extract_keypoints(np.ascontiguousarray(scene[:, ::-1]))
    assert verify_pair(scene_keypoints, mirrored, try_mirror=False) < quality.RERANK_MIN_INLIERS
    assert verify_pair(scene_keypoints, mirrored) >= 40


def test_mirroring_keypoints_twice_is_the_identity(scene_keypoints):
    twice = scene_keypoints.mirrored().mirrored()
    assert np.allclose(twice.xy, scene_keypoints.xy, atol=1e-4)
    assert np.array_equal(twice.descriptors, scene_keypoints.descriptors)


def test_keypoints_survive_bytes(scene_keypoints):
    data = scene_keypoints.to_bytes()
    assert len(data) == 12 + len(scene_keypoints) * (4 + 128)
    back = Keypoints.from_bytes(data)
    assert np.array_equal(back.descriptors, scene_keypoints.descriptors)
    assert np.abs(back.xy - scene_keypoints.xy).max() < 0.25
    assert (back.width, back.height) == (scene_keypoints.width, scene_keypoints.height)


# ---------------------------------------------------------------- re-ranking and library transforms


def test_rerank_lifts_verified_candidates_only():
    ids, scores = rerank(np.array([7, 8, 9]), np.array([0.9, 0.8, 0.7]), np.array([0, 60, 5]))
    assert ids.tolist() == [8, 7, 9]
    assert scores.tolist() == pytest.approx([1.0, 0.9, 0.7])
    ids, _ = rerank(np.array([7, 8, 9]), np.array([0.9, 0.8, 0.7]), np.array([0, 0, 0]))
    assert ids.tolist() == [7, 8, 9]


def test_rerank_bonus_grows_with_inliers_up_to_full():
    # 20 inliers take half the distance to 1 away, 40 and more all of it
    ids, scores = rerank(np.array([1, 2, 3]), np.array([0.5, 0.5, 0.5]), np.array([20, 40, 400]),
                         min_inliers=12, weight=1.0, full_at=40)
    assert ids.tolist() == [2, 3, 1]
    assert scores.tolist() == pytest.approx([1.0, 1.0, 0.75])


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_centring_separates_vectors_that_share_a_common_part():
    rng = np.random.default_rng(0)
    common = rng.normal(size=16) * 5
    lib = unit(common + rng.normal(size=(50, 16)))
    assert np.mean(lib @ lib.T) > 0.8
    centred = LibraryWhitening.fit(lib).apply(lib)
    assert np.allclose(np.linalg.norm(centred, axis=1), 1.0)
    off_diagonal = (centred @ centred.T)[~np.eye(50, dtype=bool)]
    assert abs(off_diagonal.mean()) < 0.1


def test_full_whitening_gives_identity_covariance():
    rng = np.random.default_rng(1)
    lib = rng.normal(size=(400, 6)) * np.array([10, 5, 1, 1, 0.5, 0.1])
    w = LibraryWhitening.fit(lib, power=1.0, shrink=0.0)
    z = (lib - w.mean) @ w.projection
    assert np.allclose(z.T @ z / len(lib), np.eye(6), atol=1e-3)


def test_pair_whitening_damps_what_edits_change():
    """Photos are a signal in 8 dimensions; an edit adds strong noise in 2 others. Learned from
    (photo, edited photo) pairs, the whitening finds each edited copy's original; plain cosine does not."""
    rng = np.random.default_rng(4)
    n = 300
    signal = np.concatenate([rng.normal(size=(n, 8)), np.zeros((n, 2))], axis=1)

    def edit(x: np.ndarray) -> np.ndarray:
        return x + np.concatenate([rng.normal(size=(n, 8)) * 0.05, rng.normal(size=(n, 2)) * 2.0], axis=1)

    originals, copies = edit(signal), edit(signal)

    def top1(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.mean(np.argmax(unit(a) @ unit(b).T, axis=1) == np.arange(n)))

    w = LibraryWhitening.fit_pairs(originals, edit(signal), edit(signal))
    assert top1(copies, originals) < 0.5
    assert top1(w.apply(copies), w.apply(originals)) > 0.95


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
