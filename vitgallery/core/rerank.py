"""The search re-rank: candidates ordered by cosine, lifted by geometric verification (core.keypoints).

Measured in bench/quality_lab.py (docs/quality.md, "re-rank"): the product form below, lifting
candidates with at least VERIFIED_INLIERS inliers, full at 40.
"""

from __future__ import annotations

import numpy as np

from vitgallery.core.keypoints import VERIFIED_INLIERS

FULL_AT_INLIERS = 40  # inliers at which a candidate's whole distance to 1 is taken away


def rerank(candidate_ids: np.ndarray, candidate_sims: np.ndarray, inliers: np.ndarray, *,
           min_inliers: int = VERIFIED_INLIERS, weight: float = 1.0,
           full_at: int = FULL_AT_INLIERS) -> tuple[np.ndarray, np.ndarray]:
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
