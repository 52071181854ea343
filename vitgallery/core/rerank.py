"""The search re-rank and what its scores mean.

A candidate whose keypoints one geometric map carries onto the query's (at least VERIFIED_INLIERS,
core.keypoints) is the same photo: a copy, an edit, a crop; unless the pictures differ once aligned
(another subject on the same background: core.duplicates.features.same_photo). So is one with too few
keypoints to verify it that the duplicates check groups with the query (on the pixels they align, or a
smooth picture's grey levels: grouped_unverified), at the weakest verification's score. A verified hit's score comes from
that evidence, so verified hits order by how many points match (the original of a crop above a smaller
copy of it) and the number means the same whatever space the vectors are in; one that looks even more
alike (an identical file) scores that. Every other candidate scores its cosine in the library's space,
measured from what unrelated photos score there (`background`: the library's mean pairwise cosine, 0
once the whitening has centred the space), so a search made before the whitening is fitted does not
call unrelated photos 0.7 alike.

Chosen on the benchmark's public seeds 1 and 2 (docs/benchmarks.md, "re-rank scores").
"""

from __future__ import annotations

import numpy as np

from vitgallery.core.keypoints import VERIFIED_INLIERS

# The score of the weakest verification: above the cosine of nearly every photo that keypoints did
# not verify, so a verified copy scores at least what it looks like (mAP unchanged from 0.5 up).
VERIFIED_FLOOR = 0.8
VERIFIED_HALF = 40  # matching points beyond the weakest at which a verified score is halfway to 1
# Unverified hits from this score up are mostly the same kind of picture (half or more of them on the
# benchmark's category task, seeds 1 and 2): the window calls them similar, the rest less alike.
LOOKS_SIMILAR = 0.3


def verified_score(inliers: np.ndarray | int) -> np.ndarray:
    """From VERIFIED_FLOOR at VERIFIED_INLIERS points towards 1 (never reached) as points add up."""
    extra = np.maximum(np.asarray(inliers, dtype=np.float64) - VERIFIED_INLIERS, 0.0)
    return VERIFIED_FLOOR + (1.0 - VERIFIED_FLOOR) * extra / (extra + VERIFIED_HALF)


def similarity(cosines: np.ndarray, background: float = 0.0) -> np.ndarray:
    """Cosines measured from what unrelated photos score (`background`) up to 1."""
    return (np.asarray(cosines, dtype=np.float64) - background) / (1.0 - background)


def rerank(candidate_ids: np.ndarray, candidate_sims: np.ndarray, inliers: np.ndarray, *,
           background: float = 0.0, min_inliers: int = VERIFIED_INLIERS,
           same_scene_only: np.ndarray | None = None,
           grouped: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Scores for candidates: verified ones by their evidence, the others by their similarity.
    `same_scene_only`: candidates whose keypoints verify but whose pictures differ (another subject on
    the same background) are scored by their similarity too. `grouped`: candidates with too few keypoints
    to verify them that the duplicates check groups with the query are verified, at the weakest
    verification's score. Ties keep the incoming (cosine) order. Returns (ids, scores), best first."""
    inl = np.asarray(inliers, dtype=np.float64)
    verified = inl >= min_inliers
    if same_scene_only is not None:
        verified &= ~np.asarray(same_scene_only, dtype=bool)
    if grouped is not None:
        verified |= np.asarray(grouped, dtype=bool)
    alike = similarity(candidate_sims, background)
    # a verified hit scores at least what it looks like: an identical file above an unverified look-alike
    scores = np.where(verified, np.maximum(verified_score(inl), alike), alike)
    order = np.argsort(-scores, kind="stable")
    return np.asarray(candidate_ids)[order], scores[order]
