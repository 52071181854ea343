"""Retrieval-quality building blocks: token pooling, orientation views, re-ranking.

Pure functions over torch tensors / numpy arrays; no I/O and no model loading, so the
embedder and the library can call them and tests can drive them with synthetic input.
The choices and their measured effect are in docs/quality.md.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

POOL_MODES = ("cls", "mean", "gem", "cls+gem", "cls+mean")


def _gem(patches: torch.Tensor, p: float) -> torch.Tensor:
    """Generalised mean over the token axis; clamped because GeM is defined on positives."""
    return patches.clamp(min=1e-6).pow(p).mean(dim=1).pow(1.0 / p)


def pool_tokens(tokens: torch.Tensor, mode: str = "cls", *, num_prefix: int = 1, gem_p: float = 3.0) -> torch.Tensor:
    """Pool ViT output tokens (B, prefix + N, D) into one L2-normalised vector per image.

    "cls": the class token; "mean"/"gem": average / GeM of the patch tokens;
    "cls+gem", "cls+mean": both parts L2-normalised, concatenated, then normalised again
    (so each part weighs the same in the cosine).
    """
    if mode not in POOL_MODES:
        raise ValueError(f"unknown pooling mode {mode!r}; expected one of {POOL_MODES}")
    cls = tokens[:, 0]
    patches = tokens[:, num_prefix:]
    if mode == "cls":
        return F.normalize(cls, dim=-1)
    pooled = patches.mean(dim=1) if mode.endswith("mean") else _gem(patches, gem_p)
    if mode in ("mean", "gem"):
        return F.normalize(pooled, dim=-1)
    return F.normalize(torch.cat([F.normalize(cls, dim=-1), F.normalize(pooled, dim=-1)], dim=-1), dim=-1)


# The dihedral group of the square: every mirror and quarter turn of a photo.
ORIENTATIONS = ("id", "flip", "rot90", "rot180", "rot270", "flip_rot90", "flip_rot180", "flip_rot270")
VIEW_MODES = {
    "none": ("id",),
    "flip": ("id", "flip"),
    "rot": ("id", "rot90", "rot180", "rot270"),
    "rot90s": ("id", "rot90", "rot270"),
    "flip+rot90": ("id", "flip", "rot90", "rot270"),
    "d4": ORIENTATIONS,
}


def orient(batch: torch.Tensor, orientation: str) -> torch.Tensor:
    """Apply one orientation to a (B, C, H, W) batch: optional horizontal mirror, then k quarter turns."""
    if orientation not in ORIENTATIONS:
        raise ValueError(f"unknown orientation {orientation!r}")
    out = batch.flip(-1) if orientation.startswith("flip") else batch
    turns = {"rot90": 1, "rot180": 2, "rot270": 3}.get(orientation.removeprefix("flip_"), 0)
    return torch.rot90(out, turns, dims=(-2, -1)) if turns else out


def orientation_views(batch: torch.Tensor, mode: str = "none") -> list[torch.Tensor]:
    """The batch seen in each orientation of `mode` (see VIEW_MODES); the first is the batch itself."""
    if mode not in VIEW_MODES:
        raise ValueError(f"unknown view mode {mode!r}; expected one of {tuple(VIEW_MODES)}")
    return [orient(batch, o) for o in VIEW_MODES[mode]]


def combine_views(embeddings: list[torch.Tensor]) -> torch.Tensor:
    """One vector per image from its per-view embeddings: the normalised mean."""
    return F.normalize(torch.stack(embeddings).mean(dim=0), dim=-1)


# ---------------------------------------------------------------- geometric verification

SIFT_DIM = 128
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


def extract_keypoints(gray: np.ndarray, *, long_side: int = 512, max_keypoints: int = 512) -> Keypoints:
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


def _root_sift(desc: np.ndarray) -> np.ndarray:
    """Hellinger-normalised descriptors, so a dot product compares them better than L2 on raw SIFT."""
    d = desc.astype(np.float32)
    d /= d.sum(axis=1, keepdims=True) + 1e-7
    return np.sqrt(d)


def _tentative_matches(q: np.ndarray, c: np.ndarray, ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """Lowe's ratio test on root-SIFT distances: (query index, candidate index) pairs."""
    sim = q @ c.T
    rows = np.arange(len(q))
    best = sim.argmax(axis=1)
    s1 = sim[rows, best].copy()
    sim[rows, best] = -np.inf
    s2 = sim.max(axis=1) if sim.shape[1] > 1 else np.full(len(q), -1.0, np.float32)
    # unit vectors: squared distance = 2 - 2 * similarity
    keep = np.maximum(2.0 - 2.0 * s1, 0.0) < ratio**2 * np.maximum(2.0 - 2.0 * s2, 0.0)
    return rows[keep], best[keep]


def _affine_inliers(src: np.ndarray, dst: np.ndarray, reproj_px: float) -> int:
    if len(src) < 4:
        return 0
    model, mask = cv2.estimateAffine2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=reproj_px,
                                       maxIters=500, confidence=0.99, refineIters=0)
    if model is None:
        return 0
    det = float(np.linalg.det(model[:, :2]))
    # mirrors are handled by matching the mirrored keypoints; a reflection or an extreme zoom
    # here is RANSAC fitting noise
    if not (1 / 64 < det < 64):
        return 0
    return int(mask.sum())


def verify_pair(query: Keypoints, candidate: Keypoints, *, ratio: float = 0.8, reproj_px: float = 6.0,
                try_mirror: bool = True, enough: int = 15) -> int:
    """Inliers of the best affine map from the query's keypoints to the candidate's (0: no match).

    SIFT is rotation invariant, so quarter turns need nothing extra; when the direct match gives
    fewer than `enough` inliers and `try_mirror`, the mirrored query is tried too and the better
    count wins.
    """
    if len(query) < 4 or len(candidate) < 4:
        return 0
    c = _root_sift(candidate.descriptors)
    qi, ci = _tentative_matches(_root_sift(query.descriptors), c, ratio)
    best = _affine_inliers(query.xy[qi], candidate.xy[ci], reproj_px)
    if try_mirror and best < enough:
        m = query.mirrored()
        qi, ci = _tentative_matches(_root_sift(m.descriptors), c, ratio)
        best = max(best, _affine_inliers(m.xy[qi], candidate.xy[ci], reproj_px))
    return best


# ---------------------------------------------------------------- re-ranking

RERANK_MIN_INLIERS = 12


def rerank(candidate_ids: np.ndarray, candidate_sims: np.ndarray, inliers: np.ndarray, *,
           min_inliers: int = RERANK_MIN_INLIERS, weight: float = 1.0, full_at: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Order candidates by cosine plus a bonus for geometric verification.

    A candidate with at least `min_inliers` inliers gains `weight * min(1, inliers / full_at)`;
    the others keep their cosine. Ties keep the incoming order. Returns (ids, scores), best first.
    """
    sims = np.asarray(candidate_sims, dtype=np.float64)
    inl = np.asarray(inliers, dtype=np.float64)
    bonus = np.where(inl >= min_inliers, weight * np.minimum(1.0, inl / full_at), 0.0)
    scores = sims + bonus
    order = np.argsort(-scores, kind="stable")
    return np.asarray(candidate_ids)[order], scores[order]


# ---------------------------------------------------------------- library-side transforms


@dataclass(frozen=True)
class LibraryWhitening:
    """Centring (and optional PCA whitening) learned from the library's own vectors, no labels.

    Photos on plain backgrounds share a large common component; removing the library mean (and
    damping its dominant directions) leaves what tells them apart.
    """

    mean: np.ndarray  # (D,)
    projection: np.ndarray | None  # (D, D) or None: centring only

    @classmethod
    def fit(cls, vectors: np.ndarray, *, power: float = 0.0, shrink: float = 0.1) -> LibraryWhitening:
        """`power` 0: centre only; 1: full whitening; between: partial. `shrink` regularises small
        eigenvalues (a fraction of their mean) so a small library does not blow up noise."""
        mean = vectors.mean(axis=0)
        if power == 0.0:
            return cls(mean.astype(np.float32), None)
        centred = vectors - mean
        eigval, eigvec = np.linalg.eigh(centred.T @ centred / len(vectors))
        eigval = np.maximum(eigval, 0.0) + shrink * eigval.mean()
        return cls(mean.astype(np.float32), (eigvec * eigval ** (-power / 2)).astype(np.float32))

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        out = vectors - self.mean
        if self.projection is not None:
            out = out @ self.projection
        return out / (np.linalg.norm(out, axis=-1, keepdims=True) + 1e-12)


def _weighted_neighbour_mean(anchor: np.ndarray, sims: np.ndarray, db: np.ndarray, top_n: int, alpha: float) -> np.ndarray:
    top = np.argpartition(-sims, top_n - 1, axis=1)[:, :top_n]
    w = np.maximum(np.take_along_axis(sims, top, axis=1), 0.0) ** alpha
    out = anchor + np.einsum("qn,qnd->qd", w, db[top])
    return out / (np.linalg.norm(out, axis=1, keepdims=True) + 1e-12)


def alpha_query_expansion(queries: np.ndarray, sims: np.ndarray, db: np.ndarray, top_n: int = 3,
                          alpha: float = 3.0) -> np.ndarray:
    """alpha-QE: each query (Q, D) plus its top-n database vectors weighted by sim^alpha; returns the
    new similarities (Q, N). `sims` is the first search's (Q, N), with any self-match already masked."""
    expanded = _weighted_neighbour_mean(queries, sims, db, top_n, alpha)
    return expanded @ db.T


def database_augmentation(db: np.ndarray, top_n: int = 3, alpha: float = 3.0) -> np.ndarray:
    """DBA: every library vector replaced by itself plus its top-n neighbours weighted by sim^alpha."""
    sims = db @ db.T
    np.fill_diagonal(sims, -np.inf)
    return _weighted_neighbour_mean(db, sims, db, top_n, alpha)
