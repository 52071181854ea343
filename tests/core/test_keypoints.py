from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.photos import textured_image
from vitgallery.core.keypoints import (
    CANDIDATES_AT_ONCE,
    MIRROR_TRY_BELOW,
    NO_MATCH,
    VERIFIED_INLIERS,
    KeypointMatch,
    Keypoints,
    extract_keypoints,
    fit_affine,
    match_against,
    match_keypoints,
    root_sift,
    tentative_matches,
    verify_pair,
)

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


def test_the_strongest_keypoints_come_first_when_asked(scene):
    few = {tuple(p) for p in np.round(extract_keypoints(scene, max_keypoints=100).xy)}

    def first_100_among_the_100_strongest(keypoints: Keypoints) -> int:
        return len(few & {tuple(p) for p in np.round(keypoints.strongest(100).xy)})

    ordered = extract_keypoints(scene, max_keypoints=400, strongest_first=True)
    as_found = extract_keypoints(scene, max_keypoints=400)
    assert len(ordered) == len(as_found) == 400
    # (not all 100: a keypoint with two orientations is two, and positions round apart)
    assert first_100_among_the_100_strongest(ordered) > max(60, 2 * first_100_among_the_100_strongest(as_found))
    assert ordered.strongest(10_000) is ordered


def test_extract_keypoints_of_a_blank_image_is_empty():
    kp = extract_keypoints(np.full((100, 100), 200, np.uint8))
    assert len(kp) == 0
    assert verify_pair(kp, kp) == 0
    assert len(extract_keypoints(np.full((100, 100), 200, np.uint8), low_contrast=True)) == 0


def test_a_smooth_picture_gets_keypoints_at_low_contrast(scene):
    smooth = cv2.GaussianBlur(scene, (0, 0), 6) // 4 + 90  # soft shapes, a quarter of the contrast
    plain = extract_keypoints(smooth)
    found = extract_keypoints(smooth, low_contrast=True)
    assert len(plain) < 20 and len(found) > 4 * len(plain)
    shifted = extract_keypoints(np.ascontiguousarray(smooth[10:, 20:]), low_contrast=True)
    assert verify_pair(found, shifted) >= VERIFIED_INLIERS


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
    assert verify_pair(scene_keypoints, other) < VERIFIED_INLIERS
    assert verify_pair(scene_keypoints, noise) < VERIFIED_INLIERS


def test_a_picture_with_few_keypoints_is_not_verified_by_repeats(scene_keypoints):
    """Many query keypoints passing the ratio test onto the same few candidate keypoints must not
    count as agreeing inliers (seen on real photos: a mango with 16 keypoints 'verified' a house)."""
    sparse = np.full((360, 480), 200, np.uint8)
    cv2.circle(sparse, (150, 120), 40, 30, -1)
    cv2.rectangle(sparse, (300, 200), (360, 300), 90, -1)
    few = extract_keypoints(sparse)
    assert 0 < len(few) < 40
    qi, ci = tentative_matches(root_sift(scene_keypoints.descriptors),
                                       root_sift(few.descriptors))
    assert len(np.unique(ci)) == len(ci) <= len(few)
    assert verify_pair(scene_keypoints, few) < VERIFIED_INLIERS


def test_verify_pair_matches_a_mirror_only_when_asked(scene, scene_keypoints):
    mirrored = extract_keypoints(np.ascontiguousarray(scene[:, ::-1]))
    assert verify_pair(scene_keypoints, mirrored, try_mirror=False) < VERIFIED_INLIERS
    assert verify_pair(scene_keypoints, mirrored) >= 40


def test_a_match_carries_its_map_and_which_way_it_goes(scene, scene_keypoints):
    shifted = extract_keypoints(np.ascontiguousarray(scene[20:, 30:]))
    direct = match_keypoints(scene_keypoints, shifted)
    assert not direct.mirrored and direct.inliers >= 40
    # the map takes a point of the scene to where it sits in the crop
    assert np.allclose(direct.transform @ np.array([100.0, 100.0, 1.0]), (70.0, 80.0), atol=2.0)
    mirrored = match_keypoints(scene_keypoints, extract_keypoints(np.ascontiguousarray(scene[:, ::-1])))
    assert mirrored.mirrored and mirrored.inliers >= 40 and mirrored.transform.shape == (2, 3)
    blank = extract_keypoints(np.full((100, 100), 200, np.uint8))
    assert match_keypoints(scene_keypoints, blank) == NO_MATCH


def test_matching_against_many_gives_each_pair_s_own_match(scene, scene_keypoints):
    """One product for many candidates (padded to the longest, in chunks) finds what matching each
    candidate alone finds: the same inliers, the same map, the same side."""

    def alone(query: Keypoints, candidate: Keypoints) -> KeypointMatch:
        if len(query) < 4 or len(candidate) < 4:
            return NO_MATCH
        cv2.setRNGSeed(0)
        best = NO_MATCH
        for mirrored in (False, True):
            seen = query.mirrored() if mirrored else query
            qi, ci = tentative_matches(root_sift(seen.descriptors), root_sift(candidate.descriptors))
            inliers, transform = fit_affine(seen.xy[qi], candidate.xy[ci])
            if inliers > best.inliers:
                best = KeypointMatch(inliers, transform, mirrored)
            if best.inliers >= MIRROR_TRY_BELOW:
                break
        return best

    candidates = [
        extract_keypoints(np.ascontiguousarray(scene[20:, 30:])),  # a crop
        extract_keypoints(np.ascontiguousarray(scene[:, ::-1])),  # a mirror image
        extract_keypoints(textured_image(1)),  # another picture
        extract_keypoints(np.ascontiguousarray(scene[:, ::-1]), max_keypoints=12),  # few keypoints
        extract_keypoints(np.full((100, 100), 200, np.uint8)),  # none
    ] * 4
    assert len(candidates) > CANDIDATES_AT_ONCE
    found = match_against(scene_keypoints, candidates)
    assert found[0].inliers >= 40 and found[1].mirrored and found[4] == NO_MATCH
    for candidate, match in zip(candidates, found, strict=True):
        expected = alone(scene_keypoints, candidate)
        assert (match.inliers, match.mirrored) == (expected.inliers, expected.mirrored)
        assert (match.transform is None) == (expected.transform is None)
        assert match.transform is None or np.array_equal(match.transform, expected.transform)
    assert [m.inliers for m in match_against(scene_keypoints, candidates, try_mirror=False)][1] < VERIFIED_INLIERS


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


@pytest.mark.parametrize("blur", [0, 6])
def test_what_a_library_keeps_is_the_strongest_of_a_closer_look(scene, blur):
    """On a textured picture and a smooth one."""
    from vitgallery.core.keypoints import KEYPOINT_COUNT
    from vitgallery.core.photo_features import closer_keypoints, equalised_keypoints

    picture = scene if blur == 0 else cv2.GaussianBlur(scene, (0, 0), blur) // 4 + 90
    kept, closer = equalised_keypoints(picture), closer_keypoints(picture)
    assert len(kept) == min(KEYPOINT_COUNT, len(closer)) > 50
    strongest = closer.strongest(KEYPOINT_COUNT)

    def rows(kp: Keypoints) -> set[bytes]:
        return {xy.tobytes() + d.tobytes() for xy, d in zip(kp.xy, kp.descriptors)}

    # SIFT gives a second keypoint where a spot has two orientations, as strong as the first: at the
    # cut, one of such a pair may be kept where the other was
    assert len(rows(kept) ^ rows(strongest)) <= 4
    assert (len(kept) < KEYPOINT_COUNT) == bool(blur), "a smooth picture has fewer: all of them are kept"
