"""Retrieval-quality building blocks: frame trimming, the library whitening learned from edited
copies, SIFT verification and re-ranking.

Pure functions over numpy arrays and PIL images; no file I/O, no model and no torch (decode worker
processes import this), so tests can drive them with synthetic input.
The recommended pipeline, the alternatives and their measured effect are in docs/quality.md.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

# ---------------------------------------------------------------- framing


def content_box(rgb: np.ndarray, *, tolerance: int = 12, min_share: float = 0.98,
                max_trim: float = 0.4) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of an image without a uniform-colour frame around it.

    A frame is where all four corners share one colour; a row or column belongs to it when at
    least `min_share` of its pixels are within `tolerance` of that colour (JPEG noise). At most
    `max_trim` of each dimension is taken from each side. No frame: the whole image.
    """
    h, w = rgb.shape[:2]
    full = (0, 0, w, h)
    if h < 8 or w < 8:
        return full
    img = rgb.reshape(h, w, -1).astype(np.int16)
    corners = np.stack([img[0, 0], img[0, -1], img[-1, 0], img[-1, -1]])
    if np.abs(corners - corners[0]).max() > tolerance:
        return full
    close = np.abs(img - np.median(corners, axis=0).astype(np.int16)).max(axis=2) <= tolerance
    rows_framed = close.mean(axis=1) >= min_share
    cols_framed = close.mean(axis=0) >= min_share

    def run(flags: np.ndarray, limit: int) -> int:
        stop = np.flatnonzero(~flags[:limit])
        return int(stop[0]) if len(stop) else limit

    top, bottom = run(rows_framed, int(h * max_trim)), run(rows_framed[::-1], int(h * max_trim))
    left, right = run(cols_framed, int(w * max_trim)), run(cols_framed[::-1], int(w * max_trim))
    if top + bottom + left + right == 0:
        return full
    return (left, top, w - right, h - bottom)


# ---------------------------------------------------------------- edited copies for learning the whitening

LEARNING_COPIES = 2  # edited copies per sampled photo (with its mirror image: 3 pairs)

EDIT_KINDS = ("crop", "shrink_jpeg", "grey", "colour", "frame", "caption", "tilt", "squash", "blur")


def _edit(im: Image.Image, kind: str, rng: random.Random) -> Image.Image:
    w, h = im.size
    if kind == "crop":
        share = rng.uniform(0.5, 0.9)
        cw, ch = min(w, max(8, int(w * share**0.5))), min(h, max(8, int(h * share**0.5)))
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        return im.crop((x, y, x + cw, y + ch))
    if kind == "shrink_jpeg":
        s = rng.uniform(0.15, 0.4)
        small = im.resize((max(16, int(w * s)), max(16, int(h * s))), Image.BILINEAR)
        buf = io.BytesIO()
        small.save(buf, "JPEG", quality=rng.randint(10, 40))
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    if kind == "grey":
        return ImageOps.grayscale(im).convert("RGB")
    if kind == "colour":
        im = ImageEnhance.Brightness(im).enhance(rng.uniform(0.6, 1.4))
        im = ImageEnhance.Contrast(im).enhance(rng.uniform(0.6, 1.4))
        return ImageEnhance.Color(im).enhance(rng.uniform(0.3, 1.7))
    if kind == "frame":
        pad = max(2, int(min(w, h) * rng.uniform(0.04, 0.2)))
        return ImageOps.expand(im, border=pad, fill=tuple(rng.randint(0, 255) for _ in range(3)))
    if kind == "caption":
        im = im.copy()
        draw = ImageDraw.Draw(im)
        for _ in range(rng.randint(1, 3)):
            bw, bh = int(w * rng.uniform(0.2, 0.4)), int(h * rng.uniform(0.06, 0.14))
            x, y = rng.randint(0, w - bw), rng.randint(0, h - bh)
            draw.rectangle((x, y, x + bw, y + bh), fill=tuple(rng.randint(0, 255) for _ in range(3)))
        return im
    if kind == "tilt":
        return im.rotate(rng.uniform(-15, 15), resample=Image.BILINEAR, expand=True, fillcolor=(0, 0, 0))
    if kind == "squash":
        return im.resize((max(8, int(w * rng.uniform(0.7, 1.3))), h), Image.BILINEAR)
    if kind == "blur":
        return im.filter(ImageFilter.GaussianBlur(radius=max(1.0, w / rng.uniform(150, 400))))
    raise ValueError(f"unknown edit {kind!r}")


def edited_copies(image: Image.Image, count: int = 2, seed: int = 0) -> list[Image.Image]:
    """`count` copies of a photo, each with one or two everyday edits (EDIT_KINDS: crop, shrink and
    recompress, grey, colour, frame, caption box, slight tilt, aspect squash, blur), deterministic
    for a seed. The photo and its copies make the pairs that LibraryWhitening.fit_pairs learns from."""
    rng = random.Random(seed)
    image = image.convert("RGB")
    copies = []
    for _ in range(count):
        out = image
        for kind in rng.sample(EDIT_KINDS, rng.randint(1, 2)):
            out = _edit(out, kind, rng)
        copies.append(out)
    return copies


# ---------------------------------------------------------------- geometric verification

SIFT_DIM = 128
# A horizontal mirror of a SIFT patch, in its own (rotated) frame, reverses the rows of the 4x4
# grid and negates every gradient angle (orientation bin k -> -k mod 8); measured against SIFT
# run on the mirrored image, this permutation is the one that matches.
_MIRROR_PERMUTATION = (
    np.arange(SIFT_DIM).reshape(4, 4, 8)[::-1][:, :, [(8 - k) % 8 for k in range(8)]].reshape(-1)
)


KEYPOINT_LONG_SIDE = 512  # keypoints are found on a grey copy this long
KEYPOINT_COUNT = 256  # the strongest kept: as good as 512 for re-ranking, half the storage


@dataclass(frozen=True)
class Keypoints:
    """SIFT keypoints of one image analysed at a small size (see extract_keypoints)."""

    xy: np.ndarray  # (n, 2) float32 pixel positions in the analysed image
    descriptors: np.ndarray  # (n, 128) uint8 SIFT descriptors
    width: int  # size of the analysed image
    height: int

    def __len__(self) -> int:
        return len(self.xy)

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
        n, width, height = (int(v) for v in np.frombuffer(data[:12], dtype=np.int32))
        xy = np.frombuffer(data[12:12 + 4 * n], dtype=np.float16).reshape(n, 2).astype(np.float32)
        desc = np.frombuffer(data[12 + 4 * n:12 + 4 * n + SIFT_DIM * n], dtype=np.uint8).reshape(n, SIFT_DIM)
        return cls(xy, desc, width, height)


def extract_keypoints(gray: np.ndarray, *, long_side: int = KEYPOINT_LONG_SIDE,
                      max_keypoints: int = KEYPOINT_COUNT) -> Keypoints:
    """SIFT keypoints of a greyscale uint8 image, shrunk first so its long side is at most `long_side`
    (small images are not enlarged). Keeps the `max_keypoints` strongest."""
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError("extract_keypoints needs a 2-D uint8 greyscale image")
    scale = long_side / max(gray.shape)
    if scale < 1.0:
        size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    sift = cv2.SIFT_create(nfeatures=max_keypoints)
    kps, desc = sift.detectAndCompute(gray, None)
    if desc is None or not kps:
        return Keypoints(np.zeros((0, 2), np.float32), np.zeros((0, SIFT_DIM), np.uint8), gray.shape[1], gray.shape[0])
    # nfeatures can keep a few more than asked when scores tie
    kps, desc = kps[:max_keypoints], desc[:max_keypoints]
    xy = np.array([k.pt for k in kps], dtype=np.float32)
    return Keypoints(xy, np.clip(np.rint(desc), 0, 255).astype(np.uint8), gray.shape[1], gray.shape[0])


def root_sift(desc: np.ndarray) -> np.ndarray:
    """Hellinger-normalised descriptors, so a dot product compares them better than L2 on raw SIFT."""
    d = desc.astype(np.float32)
    d /= d.sum(axis=1, keepdims=True) + 1e-7
    return np.sqrt(d)


def tentative_matches(q: np.ndarray, c: np.ndarray, ratio: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    """Lowe's ratio test on root-SIFT descriptors (see root_sift), one query keypoint per candidate
    keypoint: (query index, candidate index) pairs."""
    sim = q @ c.T
    rows = np.arange(len(q))
    best = sim.argmax(axis=1)
    s1 = sim[rows, best].copy()
    sim[rows, best] = -np.inf
    s2 = sim.max(axis=1) if sim.shape[1] > 1 else np.full(len(q), -1.0, np.float32)
    # unit vectors: squared distance = 2 - 2 * similarity
    keep = np.maximum(2.0 - 2.0 * s1, 0.0) < ratio**2 * np.maximum(2.0 - 2.0 * s2, 0.0)
    rows, best, s1 = rows[keep], best[keep], s1[keep]
    # One query keypoint per candidate keypoint (the closest): against a photo with few keypoints,
    # many query keypoints pass the ratio test onto the same few, and RANSAC then counts those
    # repeats as agreeing inliers of a fit that means nothing.
    order = np.argsort(-s1, kind="stable")
    _, first = np.unique(best[order], return_index=True)
    chosen = np.sort(order[first])
    return rows[chosen], best[chosen]


def _affine_inliers(src: np.ndarray, dst: np.ndarray, reproj_px: float) -> np.ndarray:
    """(len(src),) bool: the points the best RANSAC affine map carries onto dst (none without a map)."""
    none = np.zeros(len(src), bool)
    if len(src) < 4:
        return none
    model, mask = cv2.estimateAffine2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=reproj_px,
                                       maxIters=500, confidence=0.99, refineIters=0)
    if model is None:
        return none
    det = float(np.linalg.det(model[:, :2]))
    # mirrors are handled by matching the mirrored keypoints; a reflection or an extreme zoom
    # here is RANSAC fitting noise
    if not (1 / 64 < det < 64):
        return none
    return mask.ravel().astype(bool)


def matched_keypoints(query: Keypoints, candidate: Keypoints, *, ratio: float = 0.8, reproj_px: float = 6.0,
                      try_mirror: bool = True, enough: int = 15) -> tuple[np.ndarray, np.ndarray]:
    """The keypoints the best affine map carries from the query onto the candidate: ((n, 2) query
    positions, (n, 2) candidate positions), n = 0 without a map.

    SIFT is rotation invariant, so quarter turns need nothing extra; when the direct match gives
    fewer than `enough` inliers and `try_mirror`, the mirrored query is tried too and the better
    map wins (its query positions are given in the unmirrored query).
    """
    none = np.zeros((0, 2), np.float32)
    if len(query) < 4 or len(candidate) < 4:
        return none, none
    cv2.setRNGSeed(0)  # RANSAC samples at random: a fixed seed gives one pair one answer
    c = root_sift(candidate.descriptors)
    qi, ci = tentative_matches(root_sift(query.descriptors), c, ratio)
    keep = _affine_inliers(query.xy[qi], candidate.xy[ci], reproj_px)
    best = (qi[keep], ci[keep])
    if try_mirror and keep.sum() < enough:
        # mirrored() keeps the keypoints' order, so its indices name the same query keypoints
        mirrored = query.mirrored()
        qi, ci = tentative_matches(root_sift(mirrored.descriptors), c, ratio)
        keep = _affine_inliers(mirrored.xy[qi], candidate.xy[ci], reproj_px)
        if keep.sum() > len(best[0]):
            best = (qi[keep], ci[keep])
    return query.xy[best[0]], candidate.xy[best[1]]


def verify_pair(query: Keypoints, candidate: Keypoints, *, ratio: float = 0.8, reproj_px: float = 6.0,
                try_mirror: bool = True, enough: int = 15) -> int:
    """Inliers of the best affine map from the query's keypoints to the candidate's (0: no match);
    see matched_keypoints."""
    return len(matched_keypoints(query, candidate, ratio=ratio, reproj_px=reproj_px, try_mirror=try_mirror,
                                 enough=enough)[0])


# ---------------------------------------------------------------- re-ranking

RERANK_MIN_INLIERS = 12


def rerank(candidate_ids: np.ndarray, candidate_sims: np.ndarray, inliers: np.ndarray, *,
           min_inliers: int = RERANK_MIN_INLIERS, weight: float = 1.0, full_at: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Order candidates by cosine, lifted by geometric verification.

    A candidate with at least `min_inliers` inliers has the share `weight * min(1, inliers / full_at)`
    of its distance to 1 taken away: score = 1 - (1 - cosine) * (1 - share). So a score stays a
    similarity of at most 1 (a full verification reaches it), and grows with the cosine and with
    the inliers. Ties keep the incoming order. Returns (ids, scores), best first.
    """
    sims = np.asarray(candidate_sims, dtype=np.float64)
    inl = np.asarray(inliers, dtype=np.float64)
    share = np.where(inl >= min_inliers, min(weight, 1.0) * np.minimum(1.0, inl / full_at), 0.0)
    scores = 1.0 - (1.0 - sims) * (1.0 - share)
    order = np.argsort(-scores, kind="stable")
    return np.asarray(candidate_ids)[order], scores[order]


# ---------------------------------------------------------------- library-side transforms


@dataclass(frozen=True)
class LibraryWhitening:
    """A linear map learned from the library's own vectors (no labels): x -> normalise((x - mean) @ P).

    `fit_pairs` (the one to use) learns P from pairs of embeddings of the same photo seen two ways
    (e.g. the photo and its mirror image): P = C^-1/2 where C is the covariance of the pair
    differences. Directions in which an edit moves a photo's vector are damped, the rest kept, so
    copies come closer while different photos stay apart. `fit` is plain PCA whitening.
    """

    mean: np.ndarray  # (D,)
    projection: np.ndarray | None  # (D, D) or None: centring only

    @classmethod
    def fit(cls, vectors: np.ndarray, *, power: float = 0.0, shrink: float = 0.1) -> LibraryWhitening:
        """Centring plus PCA whitening: `power` 0 centres only, 1 whitens fully. `shrink` adds a share
        of the mean eigenvalue to every eigenvalue so a small library does not blow up noise."""
        mean = vectors.mean(axis=0)
        if power == 0.0:
            return cls(mean.astype(np.float32), None)
        return cls(mean.astype(np.float32), _inverse_sqrt(np.cov(vectors, rowvar=False, bias=True), power, shrink))

    @classmethod
    def fit_pairs(cls, vectors: np.ndarray, views_a: np.ndarray, views_b: np.ndarray, *,
                  shrink: float = 0.1) -> LibraryWhitening:
        """Centre on the library mean (`vectors`, (N, D)) and whiten by the covariance of the
        differences between matching rows of `views_a` and `views_b` ((M, D) each)."""
        diff = views_a - views_b
        scatter = diff.T @ diff / len(diff)
        return cls(vectors.mean(axis=0).astype(np.float32), _inverse_sqrt(scatter, 1.0, shrink))

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        out = vectors - self.mean
        if self.projection is not None:
            out = out @ self.projection
        return (out / (np.linalg.norm(out, axis=-1, keepdims=True) + 1e-12)).astype(np.float32)


def _inverse_sqrt(cov: np.ndarray, power: float, shrink: float) -> np.ndarray:
    """cov^(-power/2), eigenvalues regularised by `shrink` times their mean."""
    eigval, eigvec = np.linalg.eigh(cov)
    eigval = np.maximum(eigval, 0.0) + shrink * max(float(eigval.mean()), 1e-12)
    return (eigvec * eigval ** (-power / 2) @ eigvec.T).astype(np.float32)
