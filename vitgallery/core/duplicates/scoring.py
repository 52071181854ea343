"""How surely two photos are the same shot: the evidence of one pair, its score, and why, in words."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vitgallery.core.keypoints import VERIFIED_INLIERS

# Chosen with bench/duplicates_calibration.py on the public dup and sem corpora (see its docstring).
DEFAULT_THRESHOLD = 0.5
LOWEST_THRESHOLD = 0.01  # the lowest the window's slider goes: a pair scoring less is no duplicate at any setting
_LOOK_STEEPNESS = 4.0  # only sets how fast the slider moves through look-alike pairs
AFFINE_SAMPLE = 3  # point pairs that fix an affine map


@dataclass(frozen=True)
class ScoreWeights:
    """pair_score's parameters. The defaults come from `bench/duplicates_calibration.py --grid 2` on
    freshly indexed seeds 1 and 2 of the v3 public corpus (the most recall, on the worse of the two, with
    precision >= 0.97 and under 2 % of sem photos grouped on each: a wrong "duplicate" can cost a unique
    photo, a missed one only space); the holdout part only checks them (docs/benchmarks.md)."""

    bias: float = -14.0
    whitened: float = 6.0
    inliers: float = 0.75  # per log(1 + inliers)
    agreement: float = 10.0
    # where keypoints cannot tell, both margins must pass: whitened cosine and aligned grey levels
    look_whitened: float = 0.7
    look_likeness: float = 0.97


DEFAULT_WEIGHTS = ScoreWeights()


@dataclass(frozen=True)
class PairShape:
    """How two matched photos differ in geometry, read off the affine map between them: what the
    keep-best rule needs to tell a stretched, tilted or padded copy from its original."""

    stretch: float  # log of the ratio of the map's singular values: 0 when one is a scaled copy of the other
    tilt: float  # degrees the map turns beyond the nearest quarter turn
    padding_a: float  # share of a's picture outside b's that is flat colour (a border, a rotated canvas)
    padding_b: float  # the same for b


@dataclass(frozen=True)
class PairEvidence:
    a: int
    b: int  # file ids, a < b
    whitened: float  # cosine in the library's whitened space (what its index holds)
    inliers: int
    agreement: float
    score: float
    likeness: float | None = None  # grey levels slid over each other (only where keypoints cannot tell)
    shape: PairShape | None = None  # the keypoint map's geometry (None without a map)


def agreement_counts(inliers: int) -> bool:
    """An affine map fits any three point pairs exactly: under a map with no more inliers than that,
    pixels that agree (flat areas agree under any map) are chance, not evidence."""
    return inliers > AFFINE_SAMPLE


def keypoints_cannot_tell(inliers: int) -> bool:
    """Fewer inliers than verify a pair: keypoints say nothing either way (a smooth picture has none)."""
    return inliers < VERIFIED_INLIERS


def pair_score(whitened_cosine: float, inliers: int, agreement: float, likeness: float | None = None,
               weights: ScoreWeights = DEFAULT_WEIGHTS) -> float:
    """How surely two photos are the same shot, in [0, 1] (one pair's pair_scores)."""
    return float(pair_scores(np.array([whitened_cosine]), np.array([inliers]), np.array([agreement]),
                             np.array([np.nan if likeness is None else likeness]), weights)[0])


def pair_scores(whitened_cosine: np.ndarray, inliers: np.ndarray, agreement: np.ndarray, likeness: np.ndarray,
                weights: ScoreWeights = DEFAULT_WEIGHTS) -> np.ndarray:
    """How surely each pair of photos is the same shot, in [0, 1]; `likeness` NaN where not measured.
    Keypoints that fit one affine map and aligned pixels that agree say they are the same picture; the
    whitened cosine says how alike they look. Where keypoints are too few to tell, grey levels that
    align (`likeness`, see look_likeness) can say it instead, together with a high whitened cosine.
    Without either no pair scores above 0.02: blank and one-colour photos are never called duplicates,
    however alike their vectors (different blank pictures are as alike as edited copies of one)."""
    by_points, by_look = _evidence_logits(whitened_cosine, inliers, agreement, likeness, weights)
    return 1.0 / (1.0 + np.exp(-np.clip(np.maximum(by_points, by_look), -60.0, 60.0)))


def _evidence_logits(whitened_cosine: np.ndarray, inliers: np.ndarray, agreement: np.ndarray, likeness: np.ndarray,
                     weights: ScoreWeights) -> tuple[np.ndarray, np.ndarray]:
    """pair_scores' two readings of the evidence, as logits: by the keypoints and the pixels they align
    (with the whitened cosine), and by the grey-level slide (-inf where it was not looked at)."""
    w = weights
    agreement = np.where(agreement_counts(inliers), agreement, 0.0)
    by_points = (w.bias + w.whitened * whitened_cosine + w.inliers * np.log1p(np.maximum(inliers, 0))
                 + w.agreement * agreement)
    margin = np.minimum((whitened_cosine - w.look_whitened) / (1 - w.look_whitened),
                        (likeness - w.look_likeness) / (1 - w.look_likeness))
    looked = ~np.isnan(likeness) & keypoints_cannot_tell(inliers)
    return by_points, np.where(looked, _LOOK_STEEPNESS * np.nan_to_num(margin, nan=-np.inf), -np.inf)


def match_reason(match: PairEvidence | None) -> str:
    """Why a photo is in its group, in words (for a tooltip or a report)."""
    if match is None:
        return "the photo the others in this group were matched to"
    by_points, by_look = _evidence_logits(np.array([match.whitened]), np.array([match.inliers]),
                                          np.array([match.agreement]),
                                          np.array([np.nan if match.likeness is None else match.likeness]),
                                          DEFAULT_WEIGHTS)
    if by_look[0] > by_points[0]:  # the slide, not the keypoints, is what the score rests on
        return (f"too few details to match point by point; its shapes and shades align with "
                f"{match.likeness:.0%} correlation, and it looks {match.whitened:.2f} alike")
    return f"{match.inliers} matching points, {match.agreement:.0%} of the overlap alike once aligned"
