"""How the duplicates check compares two photos' features (core.photo_features: what a library keeps
of each photo, and the closer look's SCAN_KEYPOINTS that `analyse_photo` decodes a photo again for).

- Keypoints that fit one affine map (core.keypoints), then how much of the aligned overlap agrees
  pixel-wise (`match_photos`): two photos that only share a background (the same wall, the same sky)
  have many inliers but disagree where their subjects are.
- Where keypoints are too few (gradients, soft abstract wallpapers, blurred skies), a tiny blurred
  copy of one photo is slid over the other at a few scales, mirrored or not, and the best correlation
  of their grey levels says whether they align (`look_likeness`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from vitgallery.core.duplicates.scoring import (
    DEFAULT_THRESHOLD,
    DEFAULT_WEIGHTS,
    LOWEST_THRESHOLD,
    PairShape,
    agreement_counts,
    keypoints_cannot_tell,
    pair_score,
)
from vitgallery.core.imageio import open_image
from vitgallery.core.keypoints import (
    KEYPOINT_COUNT,
    KEYPOINT_LONG_SIDE,
    VERIFIED_INLIERS,
    KeypointMatch,
    match_against,
    match_keypoints,
)
from vitgallery.core.photo_features import (
    AGREEMENT_WINDOW,
    LOOK_MIN_STD,
    LOOK_SIDE,
    PhotoFeatures,
    analyse_grey,
)

AGREEMENT_MIN_WINDOWS = 6  # an overlap smaller than this says nothing
OVERLAY_MAX_SHARE = 0.5  # of the overlap's windows, at most this many are taken for an overlay
AGREEMENT_BLUR = 1.0  # Gaussian sigma in pixels: re-saves and shrunk copies lose the finest detail
FLAT_STD = 4.0  # a window with less grey-level spread has no texture to compare
LOOK_SCALES = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)  # size of the smaller photo's copy relative to the larger's
PADDING_MIN_SHARE = 0.01  # less of a photo outside the other's picture is the map's imprecision
PADDING_FLAT_SHARE = 0.95  # that part is padding when this much of it is one grey level...
PADDING_TOLERANCE = 8  # ...within this many levels (JPEG noise on a flat fill)


@dataclass(frozen=True)
class PairMatch:
    inliers: int  # of the best affine map between the two photos' keypoints
    agreement: float  # share of the overlap that looks the same once aligned (0 without a map)
    shape: PairShape | None = None  # None without a map


NO_PAIR_MATCH = PairMatch(0, 0.0)


def analyse_photo(path: Path) -> PhotoFeatures:
    """Decode small and analyse with all SCAN_KEYPOINTS keypoints (a library keeps fewer: see
    core.photo_features)."""
    image = open_image(path, draft_size=KEYPOINT_LONG_SIDE // 2)
    return analyse_grey(np.asarray(image.convert("L")), complete=True)


def match_photos(a: PhotoFeatures, b: PhotoFeatures, *, look_closer: bool = True) -> PairMatch:
    """Verify a candidate pair: the affine map between their strongest keypoints
    (core.keypoints.match_keypoints), or, where those are worth_a_closer_look and `look_closer`, between
    all their keypoints (see match_closer); then how much of the overlap agrees pixel-wise under that map. Two
    photos that only share a background (the same wall, the same sky) have many inliers but disagree
    where their subjects are; a crop, a re-save or a colour edit of one photo agrees almost everywhere."""
    return match_each(a, [b], look_closer=look_closer)[0]


def match_each(photo: PhotoFeatures, others: Sequence[PhotoFeatures], *, look_closer: bool = True) -> list[PairMatch]:
    """match_photos of `photo` with each of `others`, their strongest keypoints compared at once
    (core.keypoints.match_against)."""
    strongest = [other.keypoints.strongest(KEYPOINT_COUNT) for other in others]
    matches = []
    for other, found in zip(others, match_against(photo.keypoints.strongest(KEYPOINT_COUNT), strongest), strict=True):
        if look_closer and worth_a_closer_look(found.inliers):
            found = _closer_keypoint_match(photo, other) or found
        matches.append(_aligned(photo, other, found))
    return matches


def worth_a_closer_look(inliers: int) -> bool:
    """Whether a pair whose strongest keypoints gave `inliers` is matched on all of them: where more
    fit one map than fit any (some geometry agrees) but too few to verify. Without that, a closer look
    almost never verifies a copy (1-2 pairs a public seed, against 27-53 with it) and is three quarters
    of the pairs a scan would look closer at (docs/benchmarks.md)."""
    return agreement_counts(inliers) and keypoints_cannot_tell(inliers)


def match_closer(a: PhotoFeatures, b: PhotoFeatures) -> PairMatch | None:
    """The closer look of match_photos alone, for a pair whose strongest keypoints verified nothing: the
    match on all their keypoints (both `complete`), None when that verifies nothing either."""
    found = _closer_keypoint_match(a, b)
    return None if found is None else _aligned(a, b, found)


def _closer_keypoint_match(a: PhotoFeatures, b: PhotoFeatures) -> KeypointMatch | None:
    if max(len(a.keypoints), len(b.keypoints)) <= KEYPOINT_COUNT:
        return None  # nothing beyond the strongest
    found = match_keypoints(a.keypoints, b.keypoints)
    return found if found.inliers >= VERIFIED_INLIERS else None


def same_photo(a: PhotoFeatures, b: PhotoFeatures, found: KeypointMatch, whitened_cosine: float) -> bool:
    """Whether keypoints that verify a pair (`found`, VERIFIED_INLIERS or more) show the same photo, not
    just the same scene: a pair the duplicates check could group at its lowest threshold. Another subject
    on the same table or wall maps many of the background's points, but disagrees pixel-wise where the
    subjects are and looks unalike."""
    small_a, a_to_b = _small_copies_map(a, b, found)
    agreement = _agreement(small_a, b.small, a_to_b, unverified_map=False)
    if agreement is None:  # an overlap too small to compare (two crops of different parts): the keypoints decide
        return True
    return pair_score(whitened_cosine, found.inliers, agreement) >= LOWEST_THRESHOLD


class GroupedPair(NamedTuple):
    """What the duplicates check groups a pair on that keypoints alone cannot verify (grouped_unverified):
    one of the two is set."""

    agreement: float | None  # the share of the overlap its few keypoints align that agrees
    likeness: float | None  # its grey levels slid over each other (a smooth picture)


NOT_GROUPED = GroupedPair(None, None)


def may_be_grouped(inliers: int, whitened_cosine: float) -> bool:
    """Whether the duplicates check could group, at its default threshold, a pair keypoints cannot verify
    (under VERIFIED_INLIERS): some geometry fits (more points than fit any map), or it looks alike enough in
    the whitened space for the grey-level slide."""
    return keypoints_cannot_tell(inliers) and (agreement_counts(inliers)
                                               or whitened_cosine >= DEFAULT_WEIGHTS.look_whitened)


def grouped_unverified(a: PhotoFeatures, b: PhotoFeatures, found: KeypointMatch,
                       whitened_cosine: float) -> GroupedPair | None:
    """For a pair that may_be_grouped: how the duplicates check groups it at its default threshold (the
    pixels its few keypoints align, or its grey levels), else None. The search calls such a hit the same
    photo, as the Duplicates page does (no closer look here: the search keeps to the stored keypoints)."""
    if not may_be_grouped(found.inliers, whitened_cosine):
        return None
    agreement = 0.0
    if agreement_counts(found.inliers) and found.transform is not None:
        small_a, a_to_b = _small_copies_map(a, b, found)
        agreement = _agreement(small_a, b.small, a_to_b, unverified_map=True) or 0.0
    likeness = look_likeness(a, b) if whitened_cosine >= DEFAULT_WEIGHTS.look_whitened else None
    if pair_score(whitened_cosine, found.inliers, agreement, likeness) < DEFAULT_THRESHOLD:
        return None
    if pair_score(whitened_cosine, found.inliers, agreement) >= DEFAULT_THRESHOLD:
        return GroupedPair(agreement, None)
    return GroupedPair(None, likeness)


def _aligned(a: PhotoFeatures, b: PhotoFeatures, found: KeypointMatch) -> PairMatch:
    """The pair's match under a keypoint map: its inliers, how much of the overlap agrees, its shape.
    Under a map of no more points than fit any map (scoring.agreement_counts), neither is looked at."""
    if found.transform is None:
        return NO_PAIR_MATCH
    if not agreement_counts(found.inliers):
        return PairMatch(found.inliers, 0.0)
    small_a, a_to_b = _small_copies_map(a, b, found)
    b_to_a = cv2.invertAffineTransform(a_to_b)
    shape = PairShape(*_stretch_and_tilt(found.transform[:, :2]),
                      _flat_outside(small_a, b.small.shape, a_to_b), _flat_outside(b.small, small_a.shape, b_to_a))
    agreement = _agreement(small_a, b.small, a_to_b, keypoints_cannot_tell(found.inliers))
    return PairMatch(found.inliers, agreement or 0.0, shape)


def _small_copies_map(a: PhotoFeatures, b: PhotoFeatures, found: KeypointMatch) -> tuple[np.ndarray, np.ndarray]:
    """(a's small copy as the keypoints matched it, mirrored where they were; the keypoints' map from it to
    b's small copy)."""
    small_a = a.small[:, ::-1] if found.mirrored else a.small
    to_a = small_a.shape[1] / a.keypoints.width
    to_b = b.small.shape[1] / b.keypoints.width
    # the map between keypoint coordinates, rescaled to the two small copies
    a_to_b = np.hstack([found.transform[:, :2] * (to_b / to_a), found.transform[:, 2:] * to_b]).astype(np.float32)
    return small_a, a_to_b


def _stretch_and_tilt(linear: np.ndarray) -> tuple[float, float]:
    """(log of the singular values' ratio, degrees of turn beyond the nearest quarter turn) of a 2x2 map."""
    u, singular, vt = np.linalg.svd(linear)
    turn = u @ vt  # the rotation nearest the map (a reflection cannot occur: mirrors are matched mirrored)
    degrees = float(np.degrees(np.arctan2(turn[1, 0], turn[0, 0])))
    return float(np.log(singular[0] / max(singular[1], 1e-9))), abs((degrees + 45.0) % 90.0 - 45.0)


def _flat_outside(small: np.ndarray, other_shape: tuple[int, int], to_other: np.ndarray) -> float:
    """Share of `small` that lies outside the other photo's picture (mapped by `to_other`) when that part
    is padding: one flat colour that stops where the picture starts, such as a border or the corners a
    rotated copy's canvas grew. 0 when the part outside holds picture (the other photo is a crop), or
    is flat background the picture goes on with (a crop of an artwork on a plain ground)."""
    h, w = small.shape
    inside = cv2.warpAffine(np.ones(other_shape, np.float32), to_other, (w, h),
                            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderValue=0.0)
    # a pixel's width off the other's edge: the fitted map is only that exact
    near = np.ones((3, 3), np.uint8)
    outside = cv2.erode((inside < 0.01).astype(np.uint8), near).astype(bool)
    share = float(outside.mean())
    if share < PADDING_MIN_SHARE:
        return 0.0
    values = small[outside].astype(np.int16)
    colour = int(np.median(values))
    if (np.abs(values - colour) <= PADDING_TOLERANCE).mean() < PADDING_FLAT_SHARE:
        return 0.0
    # the picture's own edge, just inside the other's: padding meets it, a plain ground goes on into it
    edge = cv2.dilate(outside.astype(np.uint8), near, iterations=3).astype(bool) & (inside > 0.99)
    if edge.any() and (np.abs(small[edge].astype(np.int16) - colour) <= PADDING_TOLERANCE).mean() >= 0.5:
        return 0.0
    return share


def _agreement(small_a: np.ndarray, small_b: np.ndarray, a_to_b: np.ndarray, unverified_map: bool) -> float | None:
    """Share of the aligned overlap's windows whose texture matches (normalised cross-correlation, so
    brightness, contrast and colour edits do not count; windows flat in both count as matching), among
    the windows that are not flat in one photo only; None where the overlap has too few windows to say.
    Flat windows agree under any map: under an `unverified_map` (too few inliers to tell) an overlap with
    fewer than AGREEMENT_MIN_WINDOWS windows of texture in both says nothing either (two tiles of one
    gradient are not copies; the grey-level slide still tells smooth copies apart)."""
    h, w = small_a.shape
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    blurred_a = cv2.GaussianBlur(small_a.astype(np.float32), (0, 0), AGREEMENT_BLUR)
    blurred_b = cv2.GaussianBlur(small_b.astype(np.float32), (0, 0), AGREEMENT_BLUR)
    warped = cv2.warpAffine(blurred_b, a_to_b, (w, h), flags=flags)
    inside = cv2.warpAffine(np.ones(small_b.shape, np.float32), a_to_b, (w, h), flags=flags, borderValue=0.0)
    win = AGREEMENT_WINDOW
    rows, cols = h // win, w // win
    if rows == 0 or cols == 0:
        return None

    def blocks(x: np.ndarray) -> np.ndarray:
        return x[:rows * win, :cols * win].reshape(rows, win, cols, win).swapaxes(1, 2).reshape(rows * cols, -1)

    pa, pb = blocks(blurred_a), blocks(warped)
    valid = blocks(inside).min(axis=1) > 0.99
    if valid.sum() < AGREEMENT_MIN_WINDOWS:
        return None
    pa, pb = pa[valid], pb[valid]
    pa, pb = pa - pa.mean(axis=1, keepdims=True), pb - pb.mean(axis=1, keepdims=True)
    sa, sb = pa.std(axis=1), pb.std(axis=1)
    ncc = (pa * pb).mean(axis=1) / np.maximum(sa * sb, 1e-6)
    flat_a, flat_b = sa < FLAT_STD, sb < FLAT_STD
    if unverified_map and (~flat_a & ~flat_b).sum() < AGREEMENT_MIN_WINDOWS:
        return None
    agree = (flat_a & flat_b) | (~flat_a & ~flat_b & (ncc > 0.5))
    # A window flat in one photo only is where an overlay (a caption bar, a sticker, a blacked-out
    # part) covers the picture: it says nothing of the rest, so it is left out (up to OVERLAY_MAX_SHARE).
    compared = max(int((flat_a == flat_b).sum()), len(agree) * (1.0 - OVERLAY_MAX_SHARE))
    if compared < AGREEMENT_MIN_WINDOWS:
        return None
    return float(agree.sum() / compared)


def look_likeness(a: PhotoFeatures, b: PhotoFeatures) -> float | None:
    """How well two photos' small blurred grey copies (PhotoFeatures.look) align, in [-1, 1]: the best
    normalised correlation of either slid over the other at LOOK_SCALES, mirrored or not, or of the two
    squeezed to one square (a squashed copy). Correlation ignores brightness, contrast and a grey
    conversion; the slide finds crops; a frame was trimmed before. None when either copy is plain
    (PhotoFeatures.plain_look): blank pictures and plain gradients align with any other."""
    if a.plain_look or b.plain_look:
        return None
    look_a, look_b = a.look.astype(np.float32), b.look.astype(np.float32)  # kept as uint8: a scan holds one per photo
    best = -1.0
    for large, small in ((look_a, look_b), (look_b, look_a)):
        height, width = large.shape
        for flipped in (small, small[:, ::-1]):
            for scale in LOOK_SCALES:
                w = round(width * scale)
                h = round(w * flipped.shape[0] / flipped.shape[1])
                if h > height:  # taller than the large copy: fit its height instead
                    h = round(height * scale)
                    w = round(h * flipped.shape[1] / flipped.shape[0])
                if min(w, h) < AGREEMENT_WINDOW or w > width or h > height:
                    continue
                template = cv2.resize(np.ascontiguousarray(flipped), (w, h), interpolation=cv2.INTER_AREA)
                if template.std() < LOOK_MIN_STD:
                    continue
                best = max(best, float(cv2.matchTemplate(large, template, cv2.TM_CCOEFF_NORMED).max()))
    side = LOOK_SIDE // 2
    square_a = cv2.resize(look_a, (side, side), interpolation=cv2.INTER_AREA)
    for flipped in (look_b, look_b[:, ::-1]):
        square_b = cv2.resize(np.ascontiguousarray(flipped), (side, side), interpolation=cv2.INTER_AREA)
        best = max(best, float(cv2.matchTemplate(square_a, square_b, cv2.TM_CCOEFF_NORMED)[0, 0]))
    return best
