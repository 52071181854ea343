"""SIFT keypoints and the one geometric verifier: do two photos show the same scene?

Used by the search re-rank (a query against its top candidates, keypoints stored at index time) and
by the duplicates check (every candidate pair of a library). Both ask the same question the same way:
root-SIFT descriptors, Lowe's ratio test, one query keypoint per candidate keypoint, and the inliers of
an affine RANSAC fit, the mirrored query tried too when the direct fit is weak.

Pure numpy/OpenCV, no torch and no file I/O: decode worker processes import this.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

SIFT_DIM = 128
KEYPOINT_LONG_SIDE = 512  # keypoints are found on a grey copy this long
KEYPOINT_COUNT = 256  # the strongest kept: as good as 512 for re-ranking, half the storage
DEFAULT_CONTRAST = 0.04  # SIFT's contrast threshold, OpenCV's default
# ...and the low one, at which gradients and soft wallpapers get keypoints as textured photos do
LOW_CONTRAST = 0.005
# The matching recipe measured for the re-rank in bench/quality_lab.py (docs/quality.md, "re-rank"):
# unrelated pictures give 0-8 inliers, copies of a textured picture 20-480.
RATIO = 0.8  # Lowe's ratio test on root-SIFT
REPROJECTION_PX = 6.0  # RANSAC inlier distance, in pixels of the KEYPOINT_LONG_SIDE copy
MIRROR_TRY_BELOW = 15  # inliers under which the mirrored query is tried too
VERIFIED_INLIERS = 12  # from this many inliers a pair shows the same scene (the re-rank lifts it)
CANDIDATES_AT_ONCE = 16  # match_against's product: 2 x 256 query rows by 16 x 256 candidates' columns, 8 MB

# A horizontal mirror of a SIFT patch, in its own (rotated) frame, reverses the rows of the 4x4
# grid and negates every gradient angle (orientation bin k -> -k mod 8); measured against SIFT
# run on the mirrored image, this permutation is the one that matches.
_MIRROR_PERMUTATION = (
    np.arange(SIFT_DIM).reshape(4, 4, 8)[::-1][:, :, [(8 - k) % 8 for k in range(8)]].reshape(-1)
)


@dataclass(frozen=True)
class Keypoints:
    """SIFT keypoints of one image analysed at a small size (see extract_keypoints)."""

    xy: np.ndarray  # (n, 2) float32 pixel positions in the analysed image
    descriptors: np.ndarray  # (n, 128) uint8 SIFT descriptors
    width: int  # size of the analysed image
    height: int

    def __len__(self) -> int:
        return len(self.xy)

    @classmethod
    def none(cls, width: int, height: int) -> Keypoints:
        """No keypoints (a blank picture, or one OpenCV refused), for an image of this size."""
        return cls(np.zeros((0, 2), np.float32), np.zeros((0, SIFT_DIM), np.uint8), width, height)

    def strongest(self, n: int) -> Keypoints:
        """The first n, which are the strongest when extracted with `strongest_first`."""
        return self if len(self) <= n else Keypoints(self.xy[:n], self.descriptors[:n], self.width, self.height)

    def mirrored(self) -> Keypoints:
        """The keypoints SIFT would find on the horizontally mirrored image (up to resampling noise)."""
        xy = self.xy.copy()
        xy[:, 0] = self.width - 1 - xy[:, 0]
        return Keypoints(xy, self.descriptors[:, _MIRROR_PERMUTATION], self.width, self.height)

    def to_bytes(self) -> bytes:
        """Compact storage form: header, float16 positions, uint8 descriptors (~132 bytes a keypoint)."""
        header = np.array([len(self.xy), self.width, self.height], dtype=np.int32).tobytes()
        return header + self.xy.astype(np.float16).tobytes() + self.descriptors.astype(np.uint8).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> Keypoints:
        """Raises ValueError for bytes to_bytes cannot have written."""
        n, width, height = (int(v) for v in np.frombuffer(data[:12], dtype=np.int32))
        if n < 0 or len(data) != 12 + n * (4 + SIFT_DIM):
            raise ValueError(f"damaged keypoints: {len(data)} bytes for {n}")
        xy = np.frombuffer(data[12:12 + 4 * n], dtype=np.float16).reshape(n, 2).astype(np.float32)
        desc = np.frombuffer(data[12 + 4 * n:12 + 4 * n + SIFT_DIM * n], dtype=np.uint8).reshape(n, SIFT_DIM)
        return cls(xy, desc, width, height)


def extract_keypoints(gray: np.ndarray, *, long_side: int = KEYPOINT_LONG_SIDE,
                      max_keypoints: int = KEYPOINT_COUNT, low_contrast: bool = False,
                      strongest_first: bool = False) -> Keypoints:
    """SIFT keypoints of a greyscale uint8 image, shrunk first so its long side is at most `long_side`
    (small images are not enlarged). Keeps the `max_keypoints` strongest, with `strongest_first` in
    order of strength (Keypoints.strongest). With `low_contrast`, SIFT's contrast threshold is
    LOW_CONTRAST: a keypoint's contrast is its strength, so where the default finds plenty these are
    the same, and a smooth picture gets keypoints too."""
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError("extract_keypoints needs a 2-D uint8 greyscale image")
    scale = long_side / max(gray.shape)
    if scale < 1.0:
        size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    threshold = LOW_CONTRAST if low_contrast else DEFAULT_CONTRAST
    kps, desc = cv2.SIFT_create(nfeatures=max_keypoints, contrastThreshold=threshold).detectAndCompute(gray, None)
    if desc is None or not kps:
        return Keypoints.none(gray.shape[1], gray.shape[0])
    if strongest_first:
        order = np.argsort([-k.response for k in kps], kind="stable")
        kps, desc = [kps[i] for i in order], desc[order]
    # nfeatures can keep a few more than asked when scores tie
    kps, desc = kps[:max_keypoints], desc[:max_keypoints]
    xy = np.array([k.pt for k in kps], dtype=np.float32)
    return Keypoints(xy, np.clip(np.rint(desc), 0, 255).astype(np.uint8), gray.shape[1], gray.shape[0])


def root_sift(desc: np.ndarray) -> np.ndarray:
    """Hellinger-normalised descriptors, so a dot product compares them better than L2 on raw SIFT."""
    d = desc.astype(np.float32)
    d /= d.sum(axis=1, keepdims=True) + 1e-7
    return np.sqrt(d)


def tentative_matches(q: np.ndarray, c: np.ndarray, ratio: float = RATIO) -> tuple[np.ndarray, np.ndarray]:
    """Lowe's ratio test on root-SIFT descriptors (see root_sift), one query keypoint per candidate
    keypoint: (query index, candidate index) pairs."""
    best, s1, s2 = _best_two(q @ c.T)
    return _passing(best, s1, s2, ratio)


def _best_two(sim: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Along the last axis of similarities (changed in place): the best's index, its similarity and the
    second best's (-1 where there is none)."""
    best = sim.argmax(axis=-1)[..., None]
    s1 = np.take_along_axis(sim, best, axis=-1)[..., 0]
    if sim.shape[-1] < 2:
        return best[..., 0], s1, np.full(s1.shape, -1.0, np.float32)
    np.put_along_axis(sim, best, -np.inf, axis=-1)
    return best[..., 0], s1, sim.max(axis=-1)


def _passing(best: np.ndarray, s1: np.ndarray, s2: np.ndarray, ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """The query keypoints whose best match passes the ratio test, one per candidate keypoint:
    (query index, candidate index) pairs."""
    # unit vectors: squared distance = 2 - 2 * similarity
    keep = np.maximum(2.0 - 2.0 * s1, 0.0) < ratio**2 * np.maximum(2.0 - 2.0 * s2, 0.0)
    rows = np.flatnonzero(keep)
    best, s1 = best[keep], s1[keep]
    # One query keypoint per candidate keypoint (the closest): against a photo with few keypoints,
    # many query keypoints pass the ratio test onto the same few, and RANSAC then counts those
    # repeats as agreeing inliers of a fit that means nothing.
    order = np.argsort(-s1, kind="stable")
    _, first = np.unique(best[order], return_index=True)
    chosen = np.sort(order[first])
    return rows[chosen], best[chosen]


@dataclass(frozen=True)
class KeypointMatch:
    """The best affine map found from a query's keypoints to a candidate's."""

    inliers: int  # 0: no map
    transform: np.ndarray | None  # (2, 3) affine from the query's keypoint coordinates to the candidate's
    mirrored: bool  # the map starts from the mirrored query (Keypoints.mirrored)


NO_MATCH = KeypointMatch(0, None, False)


def fit_affine(src: np.ndarray, dst: np.ndarray) -> tuple[int, np.ndarray | None]:
    """(inliers, (2, 3) map) of a RANSAC affine fit from src to dst points; (0, None) without one."""
    if len(src) < 4:
        return 0, None
    model, mask = cv2.estimateAffine2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=REPROJECTION_PX,
                                       maxIters=500, confidence=0.99, refineIters=0)
    # mirrors are handled by matching the mirrored keypoints; a reflection, a collapse or an extreme
    # zoom here is RANSAC fitting noise
    if model is None or not 1 / 64 < float(np.linalg.det(model[:, :2])) < 64:
        return 0, None
    return int(mask.sum()), model


def match_keypoints(query: Keypoints, candidate: Keypoints, *, try_mirror: bool = True) -> KeypointMatch:
    """The best affine map from the query's keypoints to the candidate's.

    SIFT is rotation invariant, so quarter turns need nothing extra; when the direct fit has fewer
    than MIRROR_TRY_BELOW inliers and `try_mirror`, the mirrored query is tried too and the better
    fit wins (the direct one on a tie). RANSAC's samples come from a fixed seed: one pair, one answer.
    """
    return match_against(query, [candidate], try_mirror=try_mirror)[0]


def match_against(query: Keypoints, candidates: Sequence[Keypoints], *, try_mirror: bool = True) -> list[KeypointMatch]:
    """match_keypoints from the query to each candidate, the same maps. The query's descriptors (and its
    mirror image's) meet the candidates' in one matrix product, up to CANDIDATES_AT_ONCE at a time:
    a duplicates scan compares each photo with about a dozen others, and one product and one pass
    over its rows per pair were most of its time."""
    matches = [NO_MATCH] * len(candidates)
    usable = [n for n, candidate in enumerate(candidates) if len(candidate) >= 4]
    if len(query) < 4 or not usable:
        return matches
    views = [query, query.mirrored()] if try_mirror else [query]
    seen = np.concatenate([root_sift(view.descriptors) for view in views])
    for start in range(0, len(usable), CANDIDATES_AT_ONCE):
        chunk = usable[start:start + CANDIDATES_AT_ONCE]
        longest = max(len(candidates[n]) for n in chunk)
        targets = np.zeros((len(chunk), longest, SIFT_DIM), np.float32)
        for row, n in enumerate(chunk):
            targets[row, :len(candidates[n])] = root_sift(candidates[n].descriptors)
        # (view, query keypoint, candidate, candidate keypoint)
        sim = (seen @ targets.reshape(-1, SIFT_DIM).T).reshape(len(views), len(query), len(chunk), longest)
        for row, n in enumerate(chunk):
            sim[:, :, row, len(candidates[n]):] = -np.inf  # no keypoint there
        best, s1, s2 = _best_two(sim)
        for row, n in enumerate(chunk):
            cv2.setRNGSeed(0)
            for v, view in enumerate(views):  # the direct view, then the mirrored one
                qi, ci = _passing(best[v, :, row], s1[v, :, row], s2[v, :, row], RATIO)
                inliers, transform = fit_affine(view.xy[qi], candidates[n].xy[ci])
                if inliers > matches[n].inliers:
                    matches[n] = KeypointMatch(inliers, transform, mirrored=v == 1)
                if matches[n].inliers >= MIRROR_TRY_BELOW:
                    break
    return matches


def verify_pair(query: Keypoints, candidate: Keypoints, *, try_mirror: bool = True) -> int:
    """Inliers of the best affine map from the query's keypoints to the candidate's (0: no match)."""
    return match_keypoints(query, candidate, try_mirror=try_mirror).inliers


def matched_points(query: Keypoints, candidate: Keypoints, match: KeypointMatch) -> tuple[np.ndarray, np.ndarray]:
    """The keypoint pairs `match` (from match_keypoints) carries across: ((n, 2) positions in the query,
    (n, 2) in the candidate), n = match.inliers; none without a map. Query positions are in the query as
    it is, also when the map starts from its mirror image."""
    none = np.zeros((0, 2), np.float32)
    if match.transform is None:
        return none, none
    seen = query.mirrored() if match.mirrored else query
    qi, ci = tentative_matches(root_sift(seen.descriptors), root_sift(candidate.descriptors))
    carried = seen.xy[qi] @ match.transform[:, :2].T + match.transform[:, 2]
    # The same test RANSAC counted inliers with; mirrored() keeps the keypoints' order, so qi names them in both.
    inside = np.linalg.norm(carried - candidate.xy[ci], axis=1) <= REPROJECTION_PX
    return query.xy[qi[inside]], candidate.xy[ci[inside]]
